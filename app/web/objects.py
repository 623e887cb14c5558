"""``GET /objects/{bucket}/{key}``: read access to local object storage over the API.

With ``OPENMPS_STORAGE=local`` there is no S3 server to hand out URLs, so completion messages'
``UrlPattern``/``LastUrl`` point here (``OPENMPS_OBJECT_URL_BASE`` defaults to
``PUBLIC_URL/objects``). Any valid access key may read; with ``s3`` storage the route answers 404
and consumers read from the S3 server itself.
"""

from __future__ import annotations

import mimetypes

from flask import Blueprint, Response

from app.core.errors import JobFailure, NotFound
from app.web.auth import require_tenant
from app.web.context import services

bp = Blueprint("objects", __name__)


@bp.get("/objects/<bucket>/<path:key>")
def get_object(bucket: str, key: str) -> Response:
    require_tenant()
    svc = services()
    if svc.settings.storage != "local":
        raise NotFound("objects are served by the S3 server, not by the API")
    try:
        data = svc.objects.get(bucket, key)
    except (JobFailure, ValueError):
        raise NotFound(f"object {bucket}/{key} does not exist") from None
    return Response(data, mimetype=mimetypes.guess_type(key)[0] or "application/octet-stream")
