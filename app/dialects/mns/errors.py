"""MNS error codes and HTTP statuses, and the mapping from openmps's native notification errors.

The SDK turns any 4xx/5xx into ``MNSServerException`` only if the XML body carries all of
``Code``, ``Message``, ``RequestId`` and ``HostId``; anything else surfaces as the far less useful
``RespDataDamaged``, so every failure path here must end in an ``MnsError``.
"""

from __future__ import annotations

from app.core.errors import DomainError, InvalidParameter
from app.notify import errors as n


class MnsError(Exception):
    def __init__(self, code: str, message: str, status: int) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.status = status


def malformed_xml(detail: str) -> MnsError:
    return MnsError("MalformedXML", f"The XML you provided was not well-formed: {detail}", 400)


def invalid_argument(message: str) -> MnsError:
    return MnsError("InvalidArgument", message, 400)


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
