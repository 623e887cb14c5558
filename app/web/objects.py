"""``GET /objects/{bucket}/{key}``: read access to local object storage over the API.

With ``OPENMPS_STORAGE=local`` there is no S3 server to hand out URLs, so job JSON and completion
messages carry URLs that point here (``OPENMPS_OBJECT_URL_BASE`` defaults to ``PUBLIC_URL/objects``),
signed with an expiry (``?expires=&signature=``, ``app.storage.urls``): such a URL works without
credentials, in an ``<img>`` tag, until it expires. A read without a signature needs an access
key (HTTP Basic, through the shared request gate) whose tenant holds a read grant covering the
object. With ``s3`` storage the route answers 404: consumers read (presigned) from the S3 server.

Refusals, cheapest first and never revealing whether an object exists: a name no object can have
(404), a bad or expired signature (403), no or wrong credentials (401), no read grant (403).
"""

from __future__ import annotations

import mimetypes

from flask import Blueprint, Response, request

from app.core.errors import AccessDenied, JobFailure, NotFound
from app.core.names import bucket_problem, key_problem
from app.gateway.gate import RequestGate, http_basic
from app.gateway.raw import RawRequest
from app.storage.urls import LocalSignedUrls
from app.wiring import Services

SERVED_TYPES = ("image/", "video/", "text/vtt", "application/json")  # anything else: a download


def create_objects_blueprint(services: Services, gate: RequestGate) -> Blueprint:
    bp = Blueprint("objects", __name__)
    signed = services.object_urls if isinstance(services.object_urls, LocalSignedUrls) else None

    @bp.get("/objects/<bucket>/<path:key>")
    def get_object(bucket: str, key: str) -> Response:
        if bucket_problem(bucket) or key_problem(key):
            raise NotFound(f"object {bucket}/{key} does not exist")
        if "signature" in request.args or "expires" in request.args:
            refusal = (
                signed.refusal(bucket, key, request.args.get("expires", ""), request.args.get("signature", ""))
                if signed is not None
                else "signed URLs are not served here"
            )
            if refusal:
                raise AccessDenied(refusal)
        else:
            caller = gate.admit(RawRequest.from_flask(request), http_basic)
            services.snapshots.authorize_read(caller.tenant, bucket, key)
        if services.settings.storage != "local":
            raise NotFound("objects are served by the S3 server, not by the API")
        try:
            data = services.objects.get(bucket, key)
        except (JobFailure, ValueError):
            raise NotFound(f"object {bucket}/{key} does not exist") from None
        kind = mimetypes.guess_type(key)[0] or "application/octet-stream"
        if not kind.startswith(SERVED_TYPES):
            kind = "application/octet-stream"
        response = Response(data, mimetype=kind)
        # Object bytes are not the API's pages: never sniffed into HTML, never scripted.
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Content-Security-Policy"] = "default-src 'none'; sandbox"
        return response

    return bp
