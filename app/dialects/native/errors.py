"""Native error codes -> HTTP statuses. Every error body is ``{code, message, request_id}``."""

from __future__ import annotations

from app.core import errors as e

STATUS_BY_TYPE: list[tuple[type[e.DomainError], int]] = [
    (e.Unauthenticated, 401),
    (e.InputNotFound, 400),  # the request named an input that is not there: the caller's mistake
    (e.NotFound, 404),
    (e.IdempotencyConflict, 409),
    (e.Conflict, 409),
    (e.InvalidParameter, 400),
    (e.Unavailable, 503),
]


def status_for(error: e.DomainError) -> int:
    for kind, status in STATUS_BY_TYPE:
        if isinstance(error, kind):
            return status
    return 400
