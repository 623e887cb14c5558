"""The WSGI application: ``create_app(settings, services, dialects)`` mounts every API dialect.

The dialects are found by ``app.gateway.registry`` (never imported here by name) and each is
handed the same ``DialectServices``. Every error handler is the app's own: the shell works out
which dialect a failed request belongs to (the blueprint that routed it, else the first
dialect whose ``owns`` claims it, else the native one) and lets that dialect render the error,
so a routing 404/405, a 413, a crash or an unreachable store reach each client in its own
format, never as HTML or a traceback. The one HTML surface, the console (``app.console``), is
registered here too and renders its own errors as pages; ``app.web.probes`` adds ``/healthz``,
``/readyz`` and ``/metrics``.
"""

from __future__ import annotations

import logging
import random
import re
import time
from collections.abc import Callable, Sequence
from typing import Any, cast

import redis
from flask import Flask, Response, g, jsonify, request
from werkzeug.exceptions import HTTPException, RequestHeaderFieldsTooLarge, RequestURITooLarge

from app.console import ConsoleServices, install_console, session_key
from app.core.errors import DomainError, Unavailable
from app.gateway import registry
from app.gateway.bodies import check_json_depth
from app.gateway.dialect import Dialect, DialectServices
from app.gateway.gate import AuthScheme, Caller, KeyRecord, RequestGate
from app.gateway.raw import RawRequest, current_globals, current_request
from app.notify.delivery import DeliveryStore
from app.settings import Settings
from app.storage.nonces import RedisNonceBook
from app.storage.throttle import RedisTokenBucket
from app.web.jsonprovider import OrjsonProvider
from app.web.objects import create_objects_blueprint
from app.web.probes import create_probes_blueprint, install_metrics
from app.wiring import Services, build_services, ensure_default_pipeline

log = logging.getLogger(__name__)
access_log = logging.getLogger("openmps.access")
DEFAULT_DIALECT = "native"
MAX_BODY_BYTES = 1 << 20
# Below gunicorn's own caps (``app/web/gunicorn_config.py``: 8190-byte request line, 8190-byte
# header lines), so the app, not gunicorn's HTML page, answers most oversized requests, in the
# dialect's format. Longer ones never reach the app: gunicorn answers them itself.
MAX_TARGET_BYTES = 8000  # request-target (path and query) as sent
MAX_HEADER_BYTES = 8000  # one header's name and value
MAX_HEADERS_TOTAL = 32 * 1024
_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")


def create_app(
    settings: Settings | None = None,
    services: Services | None = None,
    dialects: Sequence[Dialect] | None = None,
    gate: RequestGate | None = None,
) -> Flask:
    """``dialects`` None: the ones ``OPENMPS_DIALECTS`` names (default: all installed); ``gate``
    None: one over the services' access keys (tests hand in their own, e.g. with a skewed clock)."""
    settings = settings or Settings.from_env()
    services = services or build_services(settings)
    mounted = list(dialects) if dialects is not None else registry.load(settings.dialects)
    flask_app = OpenmpsFlask("openmps")
    flask_app.json = OrjsonProvider(flask_app)
    # Never redirect: a signed SDK request cannot follow one (strict slashes 308, merged '//').
    flask_app.url_map.strict_slashes = False
    flask_app.url_map.merge_slashes = False
    flask_app.config["MAX_CONTENT_LENGTH"] = MAX_BODY_BYTES
    ensure_default_pipeline(services)

    gate = cast(RequestGate, TenantRecordingGate(gate or build_gate(services)))
    handed = DialectServices(
        settings=settings, snapshots=services.snapshots, gate=gate, redis=services.redis, sealer=services.sealer
    )
    by_blueprint: dict[str, Dialect] = {}
    for dialect in mounted:
        blueprint = dialect.create_blueprint(handed)
        flask_app.register_blueprint(blueprint)
        by_blueprint[blueprint.name] = dialect
    flask_app.register_blueprint(create_objects_blueprint(services, gate))
    flask_app.register_blueprint(create_probes_blueprint(settings, services))
    install_metrics(flask_app, settings, services)
    console = install_console(flask_app, console_services(settings, services, gate))
    by_blueprint[console.name] = console
    surfaces = [*mounted, console]
    fallback = next((d for d in mounted if d.name == DEFAULT_DIALECT), mounted[0] if mounted else None)

    def owner() -> Dialect | None:
        if request.blueprint in by_blueprint:
            return by_blueprint[request.blueprint]
        return next((d for d in surfaces if d.owns(request)), fallback)

    @flask_app.before_request
    def assign_request_id() -> None:
        ctx = current_globals()
        ctx.started = time.perf_counter()
        given = current_request().headers.get("X-Request-Id", "")
        # Only correlates log lines, so no system call for it (job ids stay from ``secrets``).
        ctx.request_id = given if given and _REQUEST_ID.fullmatch(given) else f"{random.getrandbits(128):032x}"

    @flask_app.before_request
    def refuse_oversized() -> None:
        """414/431 before anything reads the request, rendered by the owning dialect."""
        req = current_request()
        environ = req.environ
        target = environ.get("RAW_URI") or environ.get("REQUEST_URI")
        if not target:
            query = environ.get("QUERY_STRING", "")
            target = environ.get("PATH_INFO", "") + (f"?{query}" if query else "")
        if len(target) > MAX_TARGET_BYTES:
            raise RequestURITooLarge(f"the request target is longer than {MAX_TARGET_BYTES} bytes")
        # Straight from the WSGI environ (``HTTP_X_NAME`` is the header ``X-Name``): werkzeug's
        # header view builds every name anew, a measurable share of a submission's cost.
        sizes = [len(name) - 5 + len(value) for name, value in environ.items() if name.startswith("HTTP_")]
        sizes += [len(name) + len(environ[name]) for name in ("CONTENT_TYPE", "CONTENT_LENGTH") if environ.get(name)]
        if any(size > MAX_HEADER_BYTES for size in sizes) or sum(sizes) > MAX_HEADERS_TOTAL:
            raise RequestHeaderFieldsTooLarge(
                f"a header is longer than {MAX_HEADER_BYTES} bytes, or all are longer than {MAX_HEADERS_TOTAL}"
            )
        if req.is_json:
            check_json_depth(req.get_data(cache=True))  # before any dialect parses it (RecursionError)

    @flask_app.after_request
    def echo_request_id(response: Response) -> Response:
        # Not ``setdefault``: werkzeug's response headers answer a missing name by raising (and
        # building) a BadRequestKeyError, a measurable share of a submission's cost.
        if not any(name.lower() == "x-request-id" for name, _ in response.headers):
            response.headers.add("X-Request-Id", current_globals().get("request_id", ""))
        access_line(response)
        return response

    @flask_app.errorhandler(Exception)
    def any_error(exc: Exception) -> Response | tuple[Response, int]:
        dialect = owner()
        if isinstance(exc, redis.exceptions.ConnectionError | redis.exceptions.TimeoutError):
            log.warning("job store unreachable: %s", exc)
            exc = Unavailable("the job store is unreachable; retry shortly")
        elif not isinstance(exc, (DomainError, HTTPException, *(dialect.expected_errors if dialect else ()))):
            log.exception("unhandled error in request %s", g.get("request_id"))
        if dialect is None:  # no dialect mounted at all: plain JSON
            status = exc.code if isinstance(exc, HTTPException) and exc.code else 500
            rendered = flask_app.make_response((jsonify({"code": type(exc).__name__, "message": str(exc)}), status))
        else:
            rendered = flask_app.make_response(dialect.render_error(exc))
        if isinstance(exc, HTTPException):
            # The headers HTTP asks for beside the status (a 405's Allow, RFC 9110; a 416's
            # Content-Range), whichever dialect rendered the body; never its HTML Content-Type.
            for name, value in exc.get_headers():
                if name.lower() != "content-type" and name not in rendered.headers:
                    rendered.headers[name] = value
        return rendered

    return flask_app


class OpenmpsFlask(Flask):
    """Flask, asking once per function rather than on every call whether it is a coroutine.

    Flask runs each hook, view and handler through ``ensure_sync``, whose ``inspect`` check costs
    about 2 % of a submission over the six it makes; its docstring invites overriding it. The
    functions are the app's own hooks and views, a fixed set (bounded here all the same)."""

    _MAX_REMEMBERED = 4096

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._synced: dict[Callable[..., Any], Callable[..., Any]] = {}

    def ensure_sync(self, func: Callable[..., Any]) -> Callable[..., Any]:
        synced = self._synced.get(func)
        if synced is None:
            synced = super().ensure_sync(func)
            if len(self._synced) < self._MAX_REMEMBERED:
                self._synced[func] = synced
        return synced


def console_services(settings: Settings, services: Services, gate: RequestGate) -> ConsoleServices:
    return ConsoleServices(
        settings=settings,
        snapshots=services.snapshots,
        gate=gate,
        deliveries=DeliveryStore(services.redis),
        objects=services.objects,
        queue_stats=services.scheduler.queue_stats,
        is_operator=services.operators.is_operator,
        session_key=session_key(settings, services.redis),
    )


class TenantRecordingGate:
    """The gate every dialect admits through, noting the admitted tenant for the access line."""

    def __init__(self, inner: RequestGate) -> None:
        self.inner = inner

    def admit(self, raw: RawRequest, scheme: AuthScheme) -> Caller:
        caller = self.inner.admit(raw, scheme)
        g.tenant = caller.tenant
        return caller

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def access_line(response: Response) -> None:
    """One line per request: method, path (never the query string: it can carry a presigned
    URL's signature), status, duration, request id and the tenant once a dialect admitted it.
    Credentials never appear: they travel in headers, and no header is logged."""
    ctx, req = current_globals(), current_request()
    started = ctx.get("started")
    duration_ms = round((time.perf_counter() - started) * 1000, 1) if started is not None else None
    tenant = ctx.get("tenant")
    fields = {
        "method": req.method,
        "path": req.path,
        "status": response.status_code,
        "duration_ms": duration_ms,
        "request_id": ctx.get("request_id"),
        "tenant": tenant,
    }
    access_log.info(
        "%s %s %s %sms request_id=%s tenant=%s",
        req.method,
        req.path,
        response.status_code,
        duration_ms,
        fields["request_id"],
        tenant or "-",
        extra=fields,
    )


def build_gate(services: Services) -> RequestGate:
    """The request gate over the access keys, nonces and token buckets in the job store's Redis."""
    settings = services.settings

    def key_record(access_key_id: str) -> KeyRecord | None:
        found = services.access_keys(access_key_id)  # cached for OPENMPS_CACHE_TTL_S (app/storage/cache.py)
        return None if found is None else KeyRecord(secret=found.secret, tenant=found.tenant)

    return RequestGate(
        key_record,
        RedisNonceBook(services.redis),
        RedisTokenBucket(services.redis, rate=settings.throttle_rate, burst=settings.throttle_burst),
        clock_skew_s=settings.request_clock_skew_s,
    )
