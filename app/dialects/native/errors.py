"""Core errors -> native HTTP statuses and bodies. Every error body is ``{code, message, request_id}``
(``responses.ErrorBody``), and an ``InvalidParameter`` adds ``errors``: every ``{field, reason}`` found at once.

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


def field_errors(error: e.InvalidParameter) -> list[dict[str, str]]:
    """Each ``(field, reason)`` in native names; ``{index}`` in a reason reads ``{Count}`` here."""
    return [
        {"field": native_field(field), "reason": templates.to_vendor(reason, NEUTRAL_SPELLING)}
        for field, reason in error.errors
    ]


def message_for(error: e.DomainError) -> str:
    if isinstance(error, e.InvalidParameter):
        return "; ".join(f"{x['field']} {x['reason']}" if x["field"] else x["reason"] for x in field_errors(error))
    if isinstance(error, e.Unauthenticated) and error.reason not in (e.AuthFailure.MISSING, e.AuthFailure.MALFORMED):
        return "the access key id or secret is not valid"  # never tell which of the two was wrong
    return error.message


def render_error(exc: Exception) -> Response:
    if isinstance(exc, e.DomainError):
        errors = field_errors(exc) if isinstance(exc, e.InvalidParameter) else None
        response = error_response(code_for(exc), message_for(exc), status_for(exc), errors)
        if isinstance(exc, e.Throttled):
            response.headers["Retry-After"] = str(max(1, math.ceil(exc.retry_after_s)))
        return response
    if isinstance(exc, HTTPException):
        status = exc.code or 400
        code = HTTP_CODES.get(status, "BadRequest" if status < 500 else "InternalError")
        return error_response(code, exc.description or code, status)  # the shell adds a 405's Allow
    return error_response("InternalError", "the server failed to process the request; it was logged", 500)


def error_response(code: str, message: str, status: int, errors: list[dict[str, str]] | None = None) -> Response:
    body: dict[str, object] = {"code": code, "message": message, "request_id": g.get("request_id")}
    if errors is not None:
        body["errors"] = errors
    response = jsonify(body)
    response.status_code = status
    return response
