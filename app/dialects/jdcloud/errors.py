"""Every failure of a JD request in JD's envelope: ``{requestId, error: {code, status, message}}``.

JD's convention (its common error table, docs.jdcloud.com/cn/common-declaration/api/error-codes):
``code`` is the HTTP status as an integer and ``status`` a canonical word (``INVALID_ARGUMENT``,
``UNAUTHENTICATED``, ``NOT_FOUND``, ``RATE_LIMIT``, ...). The SDK reads only the body (it ignores
the HTTP status) and only when ``requestId`` is truthy (``docs/vendor-wire.md`` §3.3), so every
answer here, a routing 404 and a crash included, carries one; the HTTP status matches ``code``
for other clients.
"""

from __future__ import annotations

import math
import uuid

from flask import Response, g, jsonify
from werkzeug.exceptions import HTTPException

from app.core import errors as e

# Neutral field paths (app.core) -> JD's parameter names.
FIELDS = {
    "input.bucket": "source.bucket",
    "input.key": "source.key",
    "output.bucket": "target.destBucket",
    "output.key": "target.destKeyPrefix",
    "snapshot.width": "target.widthInPixel",
    "snapshot.height": "target.heightInPixel",
    "snapshot.count": "rule.count",
    "snapshot.time_ms": "rule.startTimeInSecond",
    "snapshot.start_ms": "rule.startTimeInSecond",
    "snapshot.end_ms": "rule.endTimeInSecond",
    "url": "endpoint",
    "created_after": "begin",
    "created_before": "end",
}

HTTP_STATUS = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "HTTP_FORBIDDEN",
    404: "NOT_FOUND",
    405: "HTTP_METHOD_NOT_ALLOWED",
    409: "ABORTED",
    413: "OUT_OF_RANGE",
    429: "RATE_LIMIT",
    500: "INTERNAL",
    501: "NOT_IMPLEMENTED",
    503: "UNAVAILABLE",
}

_AUTH_MESSAGES = {
    e.AuthFailure.UNKNOWN_KEY: "authentication failed: the access key is not valid",
    e.AuthFailure.BAD_SIGNATURE: "authentication failed: the signature does not match",
    e.AuthFailure.REPLAYED: "authentication failed: x-jdcloud-nonce was already used; sign every request anew",
}


class JdError(Exception):
    """A refusal in JD's words: ``code`` is the HTTP status, ``status`` JD's canonical word."""

    def __init__(self, code: int, message: str, status: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.status = status or HTTP_STATUS.get(code, "INVALID_ARGUMENT" if code < 500 else "INTERNAL")
        self.message = message


def invalid(field: str, reason: str) -> JdError:
    return JdError(400, f"{field} {reason}" if field else reason)


def jd_field(field: str) -> str:
    if field in FIELDS:
        return FIELDS[field]
    head, dot, rest = field.partition(".")
    return FIELDS[head] + dot + rest if head in FIELDS and dot else field


def to_jd(exc: Exception) -> JdError:
    if isinstance(exc, JdError):
        return exc
    if isinstance(exc, e.InvalidParameter):
        field = jd_field(exc.field)
        return JdError(400, f"{field} {exc.reason}" if field else exc.reason)
    if isinstance(exc, e.Unauthenticated):
        return JdError(401, _AUTH_MESSAGES.get(exc.reason, f"authentication failed: {exc.message}"))
    if isinstance(exc, e.Throttled):
        return JdError(429, exc.message)
    if isinstance(exc, e.AccessDenied):  # no bucket grant for the source or the target
        return JdError(403, exc.message)
    if isinstance(exc, e.JobNotFound):
        return JdError(404, exc.message.replace("job", "task", 1))
    if isinstance(exc, e.InputNotFound):
        return JdError(404, f"source {exc.message.removeprefix('input ')}")
    if isinstance(exc, e.NotFound):
        return JdError(404, exc.message)
    if isinstance(exc, e.AlreadyExists | e.IdempotencyConflict):
        return JdError(409, exc.message, "ALREADY_EXISTS")
    if isinstance(exc, e.InvalidJobState):
        return JdError(400, exc.message, "FAILED_PRECONDITION")
    if isinstance(exc, e.Conflict):
        return JdError(409, exc.message)
    if isinstance(exc, e.Unavailable):
        return JdError(503, exc.message)
    if isinstance(exc, e.DomainError):
        return JdError(400, exc.message)
    if isinstance(exc, HTTPException):
        code = exc.code or 500
        return JdError(code, exc.description or exc.name)
    return JdError(500, "the server failed to process the request; it was logged")


def render_error(exc: Exception) -> Response:
    err = to_jd(exc)
    request_id = g.get("request_id") or uuid.uuid4().hex
    response = jsonify(
        {"requestId": request_id, "error": {"code": err.code, "status": err.status, "message": err.message}}
    )
    response.status_code = err.code
    response.headers["x-jdcloud-request-id"] = request_id
    if isinstance(exc, e.Throttled):
        response.headers["Retry-After"] = str(max(1, math.ceil(exc.retry_after_s)))
    return response
