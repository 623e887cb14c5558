"""MNS response framing: the request id MNS stamps on every answer and the XML response itself."""

from __future__ import annotations

import uuid

from flask import Response, request

from app.notify.signing import MNS_VERSION


def request_id() -> str:
    """MNS's 24-character request id, one per request (the error body repeats it)."""
    rid = request.environ.get("openmps.mns_request_id")
    if not rid:
        rid = uuid.uuid4().hex[:24].upper()
        request.environ["openmps.mns_request_id"] = rid
    return str(rid)


def xml_response(body: bytes, status: int, location: str | None = None) -> Response:
    resp = Response(body, status, content_type="text/xml;charset=utf-8")
    resp.headers["x-mns-request-id"] = request_id()
    resp.headers["x-mns-version"] = MNS_VERSION
    if location:
        resp.headers["Location"] = location
    return resp
