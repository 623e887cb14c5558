"""The WSGI application: ``create_app(settings, services)`` mounts every API surface.

Errors are answered in JSON (``{code, message, request_id}``) at the app level, so routing
errors (404/405) and unexpected exceptions never produce HTML or a traceback.
"""

from __future__ import annotations

import logging
import uuid

import redis
from flask import Flask, Response, g, jsonify, request
from werkzeug.exceptions import HTTPException

from app.core.errors import DomainError
from app.dialects.mns import register as register_mns
from app.dialects.native.errors import status_for
from app.dialects.native.routes import bp as native_bp
from app.settings import Settings
from app.web.context import EXTENSION_KEY
from app.web.objects import bp as objects_bp
from app.wiring import Services, build_services, ensure_default_pipeline

log = logging.getLogger(__name__)


def create_app(settings: Settings | None = None, services: Services | None = None) -> Flask:
    settings = settings or Settings.from_env()
    services = services or build_services(settings)
    flask_app = Flask("openmps")
    flask_app.url_map.strict_slashes = False  # never redirect: signed SDK requests cannot follow
    flask_app.extensions[EXTENSION_KEY] = services
    ensure_default_pipeline(services)

    flask_app.register_blueprint(native_bp)
    flask_app.register_blueprint(objects_bp)
    register_mns(flask_app, services)  # MNS paths at the root: /queues/..., /topics/..., /mns/...

    @flask_app.before_request
    def assign_request_id() -> None:
        g.request_id = request.headers.get("X-Request-Id") or uuid.uuid4().hex

    @flask_app.after_request
    def echo_request_id(response: Response) -> Response:
        response.headers.setdefault("X-Request-Id", g.get("request_id", ""))
        return response

    @flask_app.get("/healthz")
    def healthz() -> Response:
        services.redis.ping()
        return jsonify({"status": "ok"})

    @flask_app.errorhandler(DomainError)
    def domain_error(exc: DomainError) -> tuple[Response, int]:
        return error_json(exc.code, exc.message), status_for(exc)

    @flask_app.errorhandler(redis.exceptions.ConnectionError)
    @flask_app.errorhandler(redis.exceptions.TimeoutError)
    def store_unavailable(exc: Exception) -> tuple[Response, int]:
        log.warning("job store unreachable: %s", exc)
        return error_json("ServiceUnavailable", "the job store is unreachable; retry shortly"), 503

    @flask_app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> tuple[Response, int]:
        code = {404: "NotFound", 405: "MethodNotAllowed", 413: "RequestTooLarge"}.get(exc.code or 400, "BadRequest")
        return error_json(code, exc.description or code), exc.code or 400

    @flask_app.errorhandler(Exception)
    def unexpected(exc: Exception) -> tuple[Response, int]:
        log.exception("unhandled error in request %s", g.get("request_id"))
        return error_json("InternalError", "the server failed to process the request; it was logged"), 500

    flask_app.config["MAX_CONTENT_LENGTH"] = 1 << 20
    return flask_app


def error_json(code: str, message: str) -> Response:
    return jsonify({"code": code, "message": message, "request_id": g.get("request_id")})
