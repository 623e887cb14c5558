"""``GET /objects/{bucket}/{key}``: read access to local object storage over the API.

With ``OPENMPS_STORAGE=local`` there is no S3 server to hand out URLs, so completion messages'
URLs point here (``OPENMPS_OBJECT_URL_BASE`` defaults to ``PUBLIC_URL/objects``). Requests are
authenticated with an access key over HTTP Basic through the shared request gate; with ``s3``
storage the route answers 404 and consumers read from the S3 server itself.
"""

from __future__ import annotations

import mimetypes

from flask import Blueprint, Response, request

from app.core.errors import JobFailure, NotFound
from app.gateway.gate import RequestGate, http_basic
from app.gateway.raw import RawRequest
from app.wiring import Services


def create_objects_blueprint(services: Services, gate: RequestGate) -> Blueprint:
    bp = Blueprint("objects", __name__)

    @bp.get("/objects/<bucket>/<path:key>")
    def get_object(bucket: str, key: str) -> Response:
        gate.admit(RawRequest.from_flask(request), http_basic)
        if services.settings.storage != "local":
            raise NotFound("objects are served by the S3 server, not by the API")
        try:
            data = services.objects.get(bucket, key)
        except (JobFailure, ValueError):
            raise NotFound(f"object {bucket}/{key} does not exist") from None
        return Response(data, mimetype=mimetypes.guess_type(key)[0] or "application/octet-stream")

    return bp
