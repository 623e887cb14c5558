"""MNS XML responses. Every text value is escaped: a ``<`` or ``&`` in a message body would
otherwise break the SDK's minidom parse and surface as ``RespDataDamaged``. Characters XML 1.0
cannot carry at all (control characters, lone surrogates, U+FFFE/U+FFFF: say a queue name with
``%08`` echoed in an error message) become U+FFFD, so every answer is well-formed XML."""

from __future__ import annotations

import re
from collections.abc import Iterable
from xml.sax.saxutils import escape

from app.notify.delivery import Attempt, Delivery
from app.notify.queues import QueueInfo, QueueMessage, SentMessage
from app.notify.topics import TOPIC_RETENTION_S, XMLNS, Subscription, TopicInfo

DECL = '<?xml version="1.0" encoding="UTF-8"?>'
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def text(value: object) -> str:
    """``value`` as XML character data: escaped, with what XML cannot carry replaced."""
    return escape(_NOT_XML.sub("\ufffd", str(value)))


def _fields(pairs: Iterable[tuple[str, object]]) -> str:
    return "".join(f"<{k}>{text(v)}</{k}>" for k, v in pairs)


def document(root: str, inner: str) -> bytes:
    return f'{DECL}<{root} xmlns="{XMLNS}">{inner}</{root}>'.encode()


def error(code: str, message: str, request_id: str, host_id: str) -> bytes:
    return document(
        "Error", _fields([("Code", code), ("Message", message), ("RequestId", request_id), ("HostId", host_id)])
    )


def _message_fields(m: QueueMessage, *, received: bool) -> list[tuple[str, object]]:
    pairs: list[tuple[str, object]] = [("MessageId", m.message_id)]
    if received:
        pairs.append(("ReceiptHandle", m.receipt_handle))
    pairs += [
        ("MessageBodyMD5", m.body_md5),
        ("MessageBody", m.body),
        ("EnqueueTime", m.enqueue_time),
    ]
    if received:
        pairs.append(("NextVisibleTime", m.next_visible_time))
    pairs += [("FirstDequeueTime", m.first_dequeue_time), ("DequeueCount", m.dequeue_count), ("Priority", m.priority)]
    return pairs


def received(messages: list[QueueMessage], *, batch: bool, peek: bool) -> bytes:
    if not batch:
        return document("Message", _fields(_message_fields(messages[0], received=not peek)))
    inner = "".join(f"<Message>{_fields(_message_fields(m, received=not peek))}</Message>" for m in messages)
    return document("Messages", inner)


def sent(messages: list[SentMessage], *, batch: bool) -> bytes:
    if not batch:
        return document(
            "Message", _fields([("MessageId", messages[0].message_id), ("MessageBodyMD5", messages[0].body_md5)])
        )
    inner = "".join(
        f"<Message>{_fields([('MessageId', m.message_id), ('MessageBodyMD5', m.body_md5)])}</Message>" for m in messages
    )
    return document("Messages", inner)


def batch_delete_errors(errors: list[tuple[str, str, str]]) -> bytes:
    """``(handle, code, message)`` per failed entry, the shape the SDK's BatchDeleteMessageDecoder reads."""
    inner = "".join(
        f"<Error>{_fields([('ErrorCode', c), ('ErrorMessage', m), ('ReceiptHandle', h)])}</Error>" for h, c, m in errors
    )
    return document("Errors", inner)


def change_visibility(handle: str, next_visible_ms: int) -> bytes:
    return document("ChangeVisibility", _fields([("ReceiptHandle", handle), ("NextVisibleTime", next_visible_ms)]))


def queue_info(q: QueueInfo) -> bytes:
    a = q.attributes
    return document(
        "Queue",
        _fields(
            [
                ("QueueName", q.name),
                ("CreateTime", q.create_time),
                ("LastModifyTime", q.last_modify_time),
                ("VisibilityTimeout", a.visibility_timeout),
                ("MaximumMessageSize", a.maximum_message_size),
                ("MessageRetentionPeriod", a.message_retention_period),
                ("DelaySeconds", a.delay_seconds),
                ("PollingWaitSeconds", a.polling_wait_seconds),
                ("ActiveMessages", q.active_messages),
                ("InactiveMessages", q.inactive_messages),
                ("DelayMessages", q.delay_messages),
                ("LoggingEnabled", a.logging_enabled),
            ]
        ),
    )


def url_list(root: str, item: str, url_tag: str, urls: list[str]) -> bytes:
    return document(root, "".join(f"<{item}>{_fields([(url_tag, u)])}</{item}>" for u in urls))


def topic_info(t: TopicInfo) -> bytes:
    return document(
        "Topic",
        _fields(
            [
                ("TopicName", t.name),
                ("CreateTime", t.create_time),
                ("LastModifyTime", t.last_modify_time),
                ("MaximumMessageSize", t.attributes.maximum_message_size),
                ("MessageRetentionPeriod", TOPIC_RETENTION_S),
                ("MessageCount", t.message_count),
                ("LoggingEnabled", t.attributes.logging_enabled),
            ]
        ),
    )


def subscription_info(account: str, s: Subscription) -> bytes:
    """Includes openmps's ``WebhookSecret`` (Standard Webhooks key); the SDK ignores unknown elements."""
    return document(
        "Subscription",
        _fields(
            [
                ("TopicOwner", account),
                ("TopicName", s.topic),
                ("SubscriptionName", s.name),
                ("Endpoint", s.spec.endpoint),
                ("NotifyStrategy", s.spec.notify_strategy),
                ("NotifyContentFormat", s.spec.content_format),
                ("FilterTag", s.spec.filter_tag),
                ("CreateTime", s.create_time),
                ("LastModifyTime", s.last_modify_time),
                ("WebhookSecret", s.webhook_secret),
            ]
        ),
    )


def deliveries(items: list[tuple[Delivery, list[Attempt]]]) -> bytes:
    """openmps extension: deliveries of a message with their attempt log (times in epoch ms)."""
    out = []
    for d, attempts in items:
        head = _fields(
            [
                ("DeliveryId", d.id),
                ("MessageId", d.message_id),
                ("Source", d.source),
                ("Endpoint", d.endpoint),
                ("NotifyStrategy", d.strategy),
                ("State", d.state),
                ("Attempts", d.attempts),
                ("LastStatus", d.last_status),
                ("LastError", d.last_error),
            ]
        )
        log = "".join(
            "<Attempt>"
            + _fields(
                [
                    ("Number", a.attempt),
                    ("Time", a.at_ms),
                    ("Status", a.status),
                    ("Success", a.ok),
                    ("Error", a.error),
                    ("DurationMs", a.duration_ms),
                    ("NextAttemptTime", a.next_due_ms),
                ]
            )
            + "</Attempt>"
            for a in attempts
        )
        out.append(f"<Delivery>{head}<Log>{log}</Log></Delivery>")
    return document("Deliveries", "".join(out))
