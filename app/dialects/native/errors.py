"""Core errors -> native HTTP statuses and bodies. Every error body is ``{code, message, request_id}``.

The shell (``app.web``) hands every failure of a native request here: domain errors, werkzeug's
routing and size errors, and crashes (already logged), so native clients only ever see JSON.
"""

from __future__ import annotations

import math

from flask import Response, g, jsonify
from werkzeug.exceptions import HTTPException

from app.core import errors as e
from app.core import templates
from app.dialects.native.schema import NEUTRAL_SPELLING

STATUS_BY_TYPE: list[tuple[type[e.DomainError], int]] = [
    (e.Unauthenticated, 401),
    (e.AccessDenied, 403),
    (e.Throttled, 429),
    (e.TooLarge, 413),
    (e.InputNotFound, 400),  # the request named an input that is not there: the caller's mistake
    (e.NotFound, 404),
    (e.IdempotencyConflict, 409),
    (e.Conflict, 409),
    (e.InvalidParameter, 400),
    (e.Unavailable, 503),
]

# Native spellings of the neutral codes that differ from them (kept as before for native clients).
CODE_BY_TYPE: list[tuple[type[e.DomainError], str]] = [
    (e.Unauthenticated, "InvalidAccessKey"),
    (e.Throttled, "Throttling"),
]

HTTP_CODES = {
    404: "NotFound",
    405: "MethodNotAllowed",
    413: "RequestTooLarge",
    414: "URITooLong",
    431: "HeadersTooLarge",
}

# Neutral field paths whose native names differ (the native body nests sprites under snapshot).
FIELD_PREFIXES = (("sprite.", "snapshot.sprite."),)


def status_for(error: e.DomainError) -> int:
    for kind, status in STATUS_BY_TYPE:
        if isinstance(error, kind):
            return status
    return 400


def code_for(error: e.DomainError) -> str:
    for kind, code in CODE_BY_TYPE:
        if isinstance(error, kind):
            return code
    return error.code


def native_field(field: str) -> str:
    for neutral, native in FIELD_PREFIXES:
        if field.startswith(neutral):
            return native + field[len(neutral) :]
    return field


def message_for(error: e.DomainError) -> str:
    if isinstance(error, e.InvalidParameter):
        reason = templates.to_vendor(error.reason, NEUTRAL_SPELLING)  # "{index}" reads "{Count}" here
        return f"{native_field(error.field)} {reason}" if error.field else reason
    if isinstance(error, e.Unauthenticated) and error.reason not in (e.AuthFailure.MISSING, e.AuthFailure.MALFORMED):
        return "the access key id or secret is not valid"  # never tell which of the two was wrong
    return error.message


def render_error(exc: Exception) -> Response:
    if isinstance(exc, e.DomainError):
        response = error_response(code_for(exc), message_for(exc), status_for(exc))
        if isinstance(exc, e.Throttled):
            response.headers["Retry-After"] = str(max(1, math.ceil(exc.retry_after_s)))
        return response
    if isinstance(exc, HTTPException):
        status = exc.code or 400
        code = HTTP_CODES.get(status, "BadRequest" if status < 500 else "InternalError")
        return error_response(code, exc.description or code, status)
    return error_response("InternalError", "the server failed to process the request; it was logged", 500)


def error_response(code: str, message: str, status: int) -> Response:
    response = jsonify({"code": code, "message": message, "request_id": g.get("request_id")})
    response.status_code = status
    return response
