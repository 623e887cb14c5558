"""Errors raised by the notification model (queues, topics, subscriptions, deliveries).

Native codes only; the MNS dialect (``app/dialects/mns/errors.py``) maps each class onto an MNS
error code and HTTP status, so the model stays free of vendor details.
"""

from __future__ import annotations

from app.core.errors import AlreadyExists, DomainError, InvalidParameter, NotFound


class QueueNotFound(NotFound):
    code = "QueueNotFound"


class TopicNotFound(NotFound):
    code = "TopicNotFound"


class SubscriptionNotFound(NotFound):
    code = "SubscriptionNotFound"


class MessageNotFound(NotFound):
    """No visible message (empty queue after the wait) or a receipt handle that is no longer current."""

    code = "MessageNotFound"


class DeliveryNotFound(NotFound):
    code = "DeliveryNotFound"


class QueueConflict(AlreadyExists):
    """A create with attributes different from the existing queue's."""

    code = "QueueConflict"


class TopicConflict(AlreadyExists):
    code = "TopicConflict"


class SubscriptionConflict(AlreadyExists):
    code = "SubscriptionConflict"


class InvalidReceiptHandle(InvalidParameter):
    """A receipt handle that openmps never issued in that shape (as opposed to a stale one)."""

    code = "InvalidReceiptHandle"


class InvalidName(InvalidParameter):
    code = "InvalidName"


class MessageTooLarge(InvalidParameter):
    code = "MessageTooLarge"


class EndpointRejected(DomainError):
    """A push endpoint the SSRF guard refuses (private, loopback, metadata address, bad URL).

    ``permanent`` False only for a name that did not resolve (DNS may answer later); every other
    refusal is final, and its delivery is dead-lettered at once."""

    code = "EndpointRejected"

    def __init__(self, message: str, *, permanent: bool = True) -> None:
        super().__init__(message)
        self.permanent = permanent
