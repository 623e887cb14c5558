"""MNS error codes and HTTP statuses, and the mapping from openmps's native notification errors.

The SDK turns any 4xx/5xx into ``MNSServerException`` only if the XML body carries all of
``Code``, ``Message``, ``RequestId`` and ``HostId``; anything else surfaces as the far less useful
``RespDataDamaged``, so every failure path here must end in an ``MnsError``.
"""

from __future__ import annotations

from flask import Response, request
from werkzeug.exceptions import HTTPException

from app.core.errors import AuthFailure, DomainError, InvalidParameter, Throttled, Unauthenticated, Unavailable
from app.dialects.mns import render
from app.dialects.mns.responses import request_id, xml_response
from app.notify import errors as n


class MnsError(Exception):
    def __init__(self, code: str, message: str, status: int, headers: tuple[tuple[str, str], ...] = ()) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.status = status
        self.headers = headers  # beside the status, e.g. a 405's Allow (RFC 9110)


def malformed_xml(detail: str) -> MnsError:
    return MnsError("MalformedXML", f"The XML you provided was not well-formed: {detail}", 400)


def invalid_argument(message: str) -> MnsError:
    return MnsError("InvalidArgument", message, 400)


def method_not_allowed(*allowed: str) -> MnsError:
    """The request's method on its path, refused; ``allowed`` (the methods the resource serves)
    go into ``Allow``, else the shell adds werkzeug's for a method no route serves."""
    headers = (("Allow", ", ".join(allowed)),) if allowed else ()
    return MnsError("MethodNotAllowed", f"{request.method} is not supported on {request.path}.", 405, headers)


# (native class, MNS code, status); first match wins, so subclasses come before their bases.
_MAP: tuple[tuple[type[DomainError], str, int], ...] = (
    (n.QueueNotFound, "QueueNotExist", 404),
    (n.TopicNotFound, "TopicNotExist", 404),
    (n.SubscriptionNotFound, "SubscriptionNotExist", 404),
    (n.MessageNotFound, "MessageNotExist", 404),
    (n.DeliveryNotFound, "MessageNotExist", 404),
    (n.QueueConflict, "QueueAlreadyExist", 409),
    (n.TopicConflict, "TopicAlreadyExist", 409),
    (n.SubscriptionConflict, "SubscriptionAlreadyExist", 409),
    (n.InvalidReceiptHandle, "ReceiptHandleError", 400),
    (n.InvalidName, "InvalidQueueName", 400),
    (n.MessageTooLarge, "InvalidArgument", 400),
    (n.EndpointRejected, "InvalidArgument", 400),
    (InvalidParameter, "InvalidArgument", 400),
)


def from_domain(exc: DomainError, *, topic_context: bool = False) -> MnsError:
    for cls, code, status in _MAP:
        if isinstance(exc, cls):
            if cls is n.InvalidName and topic_context:
                code = "InvalidTopicName"
            return MnsError(code, exc.message, status)
    return MnsError("InternalError", exc.message, 500)


# The shared gate's refusals, as MNS answers them.
_AUTH: dict[AuthFailure, tuple[str, str, int]] = {
    AuthFailure.MISSING: ("MissingAuthorizationHeader", "The Authorization header is missing.", 400),
    AuthFailure.MALFORMED: ("InvalidAuthorizationHeader", "The Authorization header is not valid.", 400),
    AuthFailure.UNKNOWN_KEY: ("InvalidAccessKeyId", "The access Id you provided is not exist.", 403),
    AuthFailure.BAD_SIGNATURE: (
        "SignatureDoesNotMatch",
        "The request signature we calculated does not match the signature you provided.",
        403,
    ),
    AuthFailure.STALE: ("TimeExpired", "The http request you sent is expired.", 408),
    AuthFailure.REPLAYED: ("SignatureDoesNotMatch", "The request was already received once.", 403),
}


def to_mns(exc: Exception) -> MnsError:
    """Any failure of an MNS request -> the MNS error its client should see."""
    if isinstance(exc, MnsError):
        return exc
    if isinstance(exc, Unauthenticated):
        return MnsError(*_AUTH[exc.reason])
    if isinstance(exc, Throttled):
        # MNS's code for a caller over its request rate; 429 so generic HTTP clients back off too.
        return MnsError("QpsLimitExceeded", "The request rate exceeds this access key's limit.", 429)
    if isinstance(exc, Unavailable):
        return MnsError("ServiceUnavailable", "The service is temporarily unavailable; retry shortly.", 503)
    if isinstance(exc, DomainError):
        return from_domain(exc, topic_context=request.path.startswith("/topics"))
    if isinstance(exc, HTTPException):
        status = exc.code or 500
        if status == 405:  # a method no route serves
            return method_not_allowed()
        return MnsError("InvalidArgument" if status < 500 else "InternalError", exc.description or exc.name, status)
    return MnsError("InternalError", "The service encountered an internal error.", 500)


def render_error(exc: Exception) -> Response:
    err = to_mns(exc)
    response = xml_response(render.error(err.code, err.message, request_id(), request.host_url.rstrip("/")), err.status)
    for name, value in err.headers:
        response.headers[name] = value
    return response
