"""Parsing MNS request bodies and query strings into openmps records.

Element lookup ignores the namespace (the SDK always sends ``xmlns="http://mns.aliyuncs.com/doc/v1/"``,
hand-written clients often do not). Anything unparsable becomes ``MalformedXML``; a value of the
wrong type becomes ``InvalidArgument``, never an exception the blueprint would turn into a 500.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import unquote
from xml.etree import ElementTree

import defusedxml.ElementTree as SafeElementTree
from defusedxml import DefusedXmlException

from app.dialects.mns.errors import MnsError, invalid_argument, malformed_xml
from app.notify.queues import OutgoingMessage, QueueAttributes
from app.notify.topics import SubscriptionSpec, TopicAttributes


@dataclass(frozen=True)
class TopicMessageIn:
    body: str
    tag: str


def _root(body: bytes, expected: tuple[str, ...]) -> ElementTree.Element:
    if not body.strip():
        raise malformed_xml("the request body is empty")
    try:
        # defusedxml refuses entity expansion (billion laughs) and external entities.
        root = SafeElementTree.fromstring(body)
    except ElementTree.ParseError as exc:
        raise malformed_xml(str(exc)) from None
    except DefusedXmlException as exc:
        raise malformed_xml(f"entities and DTDs are not allowed ({type(exc).__name__})") from None
    if _local(root.tag) not in expected:
        raise malformed_xml(f"root element must be one of {', '.join(expected)}, got {_local(root.tag)}")
    return root


def _local(tag: str) -> str:
    return tag.rpartition("}")[2]


def _children(el: ElementTree.Element) -> dict[str, ElementTree.Element]:
    return {_local(c.tag): c for c in el}


def _text(el: ElementTree.Element | None) -> str | None:
    return None if el is None else (el.text or "")


def _int(values: dict[str, ElementTree.Element], name: str) -> int | None:
    raw = _text(values.get(name))
    if raw is None:
        return None
    try:
        return int(raw.strip())
    except ValueError:
        raise invalid_argument(f"The value of {name} must be an integer, got {raw!r}.") from None


def _bool(values: dict[str, ElementTree.Element], name: str) -> bool | None:
    raw = _text(values.get(name))
    if raw is None:
        return None
    if raw.strip().lower() not in ("true", "false"):
        raise invalid_argument(f"The value of {name} must be True or False, got {raw!r}.")
    return raw.strip().lower() == "true"


def queue_attributes(body: bytes, base: QueueAttributes) -> QueueAttributes:
    """Fields present override ``base`` (defaults on create, current values on SetQueueAttributes)."""
    values: dict[str, object] = {}
    if body.strip():
        c = _children(_root(body, ("Queue",)))
        for attr, name in (
            ("visibility_timeout", "VisibilityTimeout"),
            ("maximum_message_size", "MaximumMessageSize"),
            ("message_retention_period", "MessageRetentionPeriod"),
            ("delay_seconds", "DelaySeconds"),
            ("polling_wait_seconds", "PollingWaitSeconds"),
        ):
            v = _int(c, name)
            if v is not None:
                values[attr] = v
        logging = _bool(c, "LoggingEnabled")
        if logging is not None:
            values["logging_enabled"] = logging
        dlq = c.get("DlqPolicy")  # openmps accepts MNS's DlqPolicy as nested elements
        if dlq is not None:
            d = _children(dlq)
            enabled = _bool(d, "Enabled")
            target = (_text(d.get("DeadLetterTargetQueue")) or "").strip()
            count = _int(d, "MaxReceiveCount") or 0
            values["dead_letter_queue"] = target if enabled is not False else ""
            values["max_receive_count"] = count if enabled is not False else 0
    base_values = {**base.__dict__, **values}
    return QueueAttributes(**base_values)  # type: ignore[arg-type]


def _message(c: dict[str, ElementTree.Element]) -> OutgoingMessage:
    body = _text(c.get("MessageBody"))
    if not body:
        raise invalid_argument("MessageBody is required and must not be empty.")
    priority = _int(c, "Priority")
    return OutgoingMessage(
        body=body, priority=8 if priority is None else priority, delay_seconds=_int(c, "DelaySeconds")
    )


def queue_messages(body: bytes) -> tuple[list[OutgoingMessage], bool]:
    """Returns (messages, is_batch): ``<Message>`` is SendMessage, ``<Messages>`` BatchSendMessage."""
    root = _root(body, ("Message", "Messages"))
    if _local(root.tag) == "Message":
        return [_message(_children(root))], False
    items = [_message(_children(m)) for m in root if _local(m.tag) == "Message"]
    if not items:
        raise invalid_argument("A batch must hold at least one Message.")
    return items, True


def receipt_handles(body: bytes) -> list[str]:
    root = _root(body, ("ReceiptHandles",))
    handles = [(h.text or "").strip() for h in root if _local(h.tag) == "ReceiptHandle"]
    if not handles:
        raise MnsError("MissingReceiptHandle", "The ReceiptHandle is missing.", 400)
    return handles


def topic_attributes(body: bytes, base: TopicAttributes) -> TopicAttributes:
    if not body.strip():
        return base
    c = _children(_root(body, ("Topic",)))
    size = _int(c, "MaximumMessageSize")
    logging = _bool(c, "LoggingEnabled")
    return TopicAttributes(
        maximum_message_size=base.maximum_message_size if size is None else size,
        logging_enabled=base.logging_enabled if logging is None else logging,
    )


def subscription(body: bytes, base: SubscriptionSpec | None) -> SubscriptionSpec:
    c = _children(_root(body, ("Subscription",))) if body.strip() else {}
    endpoint = (_text(c.get("Endpoint")) or "").strip()
    strategy = (_text(c.get("NotifyStrategy")) or "").strip()
    fmt = (_text(c.get("NotifyContentFormat")) or "").strip()
    tag = _text(c.get("FilterTag"))
    if base is None:
        if not endpoint:
            raise invalid_argument("Endpoint is required.")
        return SubscriptionSpec(endpoint, strategy or "BACKOFF_RETRY", fmt or "XML", (tag or "").strip())
    return SubscriptionSpec(base.endpoint, strategy or base.notify_strategy, base.content_format, base.filter_tag)


def topic_message(body: bytes) -> TopicMessageIn:
    c = _children(_root(body, ("Message",)))
    text = _text(c.get("MessageBody"))
    if not text:
        raise invalid_argument("MessageBody is required and must not be empty.")
    return TopicMessageIn(text, (_text(c.get("MessageTag")) or "").strip())


def raw_query(query: bytes) -> dict[str, str]:
    """Split the raw query ourselves: a receipt handle must reach us byte for byte (``+`` stays ``+``).

    Keys are matched case-insensitively (the SDK sends ``ReceiptHandle``, MNS docs also show
    ``receiptHandle``); values are percent-decoded but ``+`` is not turned into a space.
    """
    out: dict[str, str] = {}
    for part in query.decode("latin-1").split("&"):
        if not part:
            continue
        key, _, value = part.partition("=")
        out[unquote(key).lower()] = unquote(value)
    return out
