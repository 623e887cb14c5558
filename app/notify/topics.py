"""MNS-style topics and subscriptions; publish fans a message out to queues and HTTP endpoints.

A publish is written in one MULTI: the copy for every queue subscriber and a pending delivery for
every HTTP subscriber. It is idempotent by message id (queue sends and delivery records ignore an
id they already hold), so the notifier may repeat a publish after a crash without duplicates.
HTTP deliveries are only recorded here; the notifier's push loop sends them.

The notification envelope (``XML`` / ``JSON`` / ``SIMPLIFIED``) is built here and not in the MNS
dialect: it is what subscribers receive whichever API created the subscription.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from enum import StrEnum
from xml.sax.saxutils import escape

import redis

from app.core.errors import InvalidParameter
from app.core.ports import Sealer
from app.notify import queue_lua
from app.notify.delivery import Delivery, DeliveryStore, Strategy
from app.notify.errors import (
    MessageTooLarge,
    SubscriptionConflict,
    SubscriptionNotFound,
    TopicConflict,
    TopicNotFound,
)
from app.notify.queues import (
    KEY_PREFIX,
    OutgoingMessage,
    QueueStore,
    SentMessage,
    body_md5,
    check_name,
    create_hash,
    new_message_id,
    update_hash,
)
from app.notify.signing import new_webhook_secret
from app.notify.ssrf import EndpointGuard

XMLNS = "http://mns.aliyuncs.com/doc/v1/"
QUEUE_ENDPOINT_RE = re.compile(r"^acs:mns:([^:]*):([^:]+):queues/([A-Za-z][A-Za-z0-9-]{0,119})$")
MAX_FILTER_TAG = 16
TOPIC_RETENTION_S = 86400  # MessageRetentionPeriod reported for every topic (fixed in MNS)


class ContentFormat(StrEnum):
    XML = "XML"
    JSON = "JSON"
    SIMPLIFIED = "SIMPLIFIED"


@dataclass(frozen=True)
class TopicAttributes:
    maximum_message_size: int = 65536
    logging_enabled: bool = False


@dataclass(frozen=True)
class TopicInfo:
    name: str
    attributes: TopicAttributes
    create_time: int
    last_modify_time: int
    message_count: int


@dataclass(frozen=True)
class SubscriptionSpec:
    """What a subscriber asks for. ``endpoint`` is an http(s) URL or ``acs:mns:{region}:{account}:queues/{q}``."""

    endpoint: str
    notify_strategy: str = Strategy.BACKOFF_RETRY.value
    content_format: str = ContentFormat.XML.value
    filter_tag: str = ""


@dataclass(frozen=True)
class Subscription:
    topic: str
    name: str
    spec: SubscriptionSpec
    create_time: int
    last_modify_time: int
    webhook_secret: str  # Standard Webhooks key for HTTP endpoints, shown to the account owner


@dataclass(frozen=True)
class Notification:
    account: str
    topic: str
    subscription: str
    message_id: str
    message: str
    tag: str
    publish_ms: int


def render_envelope(fmt: ContentFormat, n: Notification) -> tuple[str, str]:
    """(body, content type) as MNS pushes it in ``fmt``."""
    if fmt is ContentFormat.SIMPLIFIED:
        return n.message, "text/plain;charset=utf-8"
    fields_ = {
        "TopicOwner": n.account,
        "TopicName": n.topic,
        "Subscriber": n.account,
        "SubscriptionName": n.subscription,
        "MessageId": n.message_id,
        "Message": n.message,
        "MessageMD5": body_md5(n.message),
        "MessageTag": n.tag,
        "PublishTime": str(n.publish_ms),
    }
    if fmt is ContentFormat.JSON:
        return json.dumps(fields_, ensure_ascii=False), "application/json;charset=utf-8"
    inner = "".join(f"<{k}>{escape(v)}</{k}>" for k, v in fields_.items())
    return (
        f'<?xml version="1.0" encoding="utf-8"?><Notification xmlns="{XMLNS}">{inner}</Notification>',
        "text/xml;charset=utf-8",
    )


def delivery_id(*parts: str) -> str:
    """Deterministic, so the same message to the same subscriber is the same delivery record."""
    return hashlib.sha1("\x1f".join(parts).encode()).hexdigest()[:32]


class TopicStore:
    """An account's topics. Subscriptions' webhook secrets are stored sealed (``sealer``) and
    handed to their deliveries sealed; ``Subscription`` objects carry them in plaintext."""

    def __init__(
        self, client: redis.Redis, account: str, deliveries: DeliveryStore, guard: EndpointGuard, sealer: Sealer
    ) -> None:
        self.r = client
        self.account = account
        self.deliveries = deliveries
        self.guard = guard
        self.sealer = sealer
        self.queues = QueueStore(client, account)
        self._create_hash = client.register_script(queue_lua.CREATE_HASH)
        self._update_hash = client.register_script(queue_lua.UPDATE_HASH)
        self._incr_field = client.register_script(queue_lua.INCR_FIELD)

    def _names(self) -> str:
        return f"{KEY_PREFIX}:{self.account}:topics"

    def _base(self, topic: str) -> str:
        return f"{KEY_PREFIX}:{self.account}:t:{topic}"

    def _subs(self, topic: str) -> str:
        return f"{self._base(topic)}:subs"

    # -- topics --------------------------------------------------------------------------------

    def create(self, name: str, attrs: TopicAttributes) -> bool:
        check_name(name)
        _check_size(attrs.maximum_message_size)
        now = str(int(time.time()))
        fields_ = {"CreateTime": now, "LastModifyTime": now, "MessageCount": "0", **_encode_topic(attrs)}
        if not create_hash(self._create_hash, self._base(name), self._names(), name, fields_):
            if self.attributes(name) != attrs:
                raise TopicConflict(f"The topic {name} already exists with different attributes.")
            return False
        return True

    def set_attributes(self, name: str, attrs: TopicAttributes) -> None:
        self.attributes(name)
        _check_size(attrs.maximum_message_size)
        fields_ = {**_encode_topic(attrs), "LastModifyTime": str(int(time.time()))}
        if not update_hash(self._update_hash, self._base(name), fields_):
            raise TopicNotFound(f"The topic {name} does not exist.")

    def attributes(self, name: str) -> TopicAttributes:
        return _decode_topic(self._hash(name))

    def info(self, name: str) -> TopicInfo:
        raw = self._hash(name)  # one read: a whole hash, even if a delete or update runs meanwhile
        return TopicInfo(
            name,
            _decode_topic(raw),
            int(raw["CreateTime"]),
            int(raw["LastModifyTime"]),
            int(raw.get("MessageCount", 0)),
        )

    def _hash(self, name: str) -> dict[str, str]:
        raw: dict[str, str] = self.r.hgetall(self._base(name))
        if not raw:
            raise TopicNotFound(f"The topic {name} does not exist.")
        return raw

    def delete(self, name: str) -> None:
        self.r.delete(self._base(name), self._subs(name))
        self.r.srem(self._names(), name)

    def list(self, prefix: str = "") -> list[str]:
        return sorted(n for n in self.r.smembers(self._names()) if n.startswith(prefix))

    # -- subscriptions -------------------------------------------------------------------------

    def subscribe(self, topic: str, name: str, spec: SubscriptionSpec) -> bool:
        """Create; True if new. The same spec again is a no-op, a different one conflicts."""
        self.attributes(topic)
        check_name(name)
        spec = self._validate(spec)
        existing = self.r.hget(self._subs(topic), name)
        if existing is not None:
            if _sub_from_json(existing, self.sealer).spec != spec:
                raise SubscriptionConflict(f"The subscription {name} already exists with different attributes.")
            return False
        now = int(time.time())
        secret = new_webhook_secret() if not _queue_target(spec.endpoint) else ""
        sub = Subscription(topic, name, spec, now, now, secret)
        return bool(self.r.hsetnx(self._subs(topic), name, _sub_to_json(sub, self.sealer)))

    def set_subscription(self, topic: str, name: str, strategy: str) -> Subscription:
        sub = self.subscription(topic, name)
        spec = self._validate(replace(sub.spec, notify_strategy=strategy))
        sub = replace(sub, spec=spec, last_modify_time=int(time.time()))
        self.r.hset(self._subs(topic), name, _sub_to_json(sub, self.sealer))
        return sub

    def subscription(self, topic: str, name: str) -> Subscription:
        self.attributes(topic)
        raw = self.r.hget(self._subs(topic), name)
        if raw is None:
            raise SubscriptionNotFound(f"The subscription {name} does not exist.")
        return _sub_from_json(raw, self.sealer)

    def subscriptions(self, topic: str) -> list[Subscription]:
        self.attributes(topic)
        found = (_sub_from_json(v, self.sealer) for v in self.r.hvals(self._subs(topic)))
        return sorted(found, key=lambda s: s.name)

    def unsubscribe(self, topic: str, name: str) -> None:
        self.attributes(topic)
        self.r.hdel(self._subs(topic), name)

    def _validate(self, spec: SubscriptionSpec) -> SubscriptionSpec:
        try:
            Strategy(spec.notify_strategy)
        except ValueError:
            raise InvalidParameter(
                "", f"NotifyStrategy must be BACKOFF_RETRY or EXPONENTIAL_DECAY_RETRY, got {spec.notify_strategy!r}."
            ) from None
        try:
            ContentFormat(spec.content_format)
        except ValueError:
            raise InvalidParameter(
                "", f"NotifyContentFormat must be XML, JSON or SIMPLIFIED, got {spec.content_format!r}."
            ) from None
        if len(spec.filter_tag) > MAX_FILTER_TAG:
            raise InvalidParameter("", f"FilterTag is longer than {MAX_FILTER_TAG} characters.")
        target = _queue_target(spec.endpoint)
        if target is not None:
            if target[0] != self.account:
                raise InvalidParameter("", "A queue endpoint must name a queue of the same account.")
        else:
            self.guard.check_literal(spec.endpoint)
        return spec

    # -- publish -------------------------------------------------------------------------------

    def publish(self, topic: str, body: str, tag: str = "", message_id: str | None = None) -> SentMessage:
        attrs = self.attributes(topic)
        if len(body.encode("utf-8")) > attrs.maximum_message_size:
            raise MessageTooLarge(
                "",
                f"The length of message should not be larger than MaximumMessageSize ({attrs.maximum_message_size}).",
            )
        mid = message_id or new_message_id()
        sec, usec = self.r.time()
        publish_ms = sec * 1000 + usec // 1000
        pipe = self.r.pipeline(transaction=True)
        for sub in self.subscriptions(topic):
            if sub.spec.filter_tag and sub.spec.filter_tag != tag:
                continue
            fmt = ContentFormat(sub.spec.content_format)
            n = Notification(self.account, topic, sub.name, mid, body, tag, publish_ms)
            envelope, content_type = render_envelope(fmt, n)
            target = _queue_target(sub.spec.endpoint)
            if target is not None:
                # A missing queue drops this copy, as MNS does; the other subscribers still get theirs.
                self.queues.send_in(pipe, target[1], OutgoingMessage(envelope), mid)
                continue
            self.deliveries.enqueue(
                Delivery(
                    id=delivery_id(self.account, "topic", topic, sub.name, mid),
                    message_id=mid,
                    account=self.account,
                    source=f"topic/{topic}/{sub.name}",
                    endpoint=sub.spec.endpoint,
                    strategy=sub.spec.notify_strategy,
                    content_type=content_type,
                    body=envelope,
                    tag=tag,
                    simplified=fmt is ContentFormat.SIMPLIFIED,
                    webhook_secret=self.sealer.seal(sub.webhook_secret) if sub.webhook_secret else "",
                ),
                pipe,
            )
        # Guarded: a bare HINCRBY after a concurrent delete would recreate a hash holding only the count.
        self._incr_field(keys=[self._base(topic)], args=["MessageCount", 1], client=pipe)
        pipe.execute()
        return SentMessage(mid, body_md5(body))


def _queue_target(endpoint: str) -> tuple[str, str] | None:
    """(account, queue) of a queue endpoint, or None for an HTTP endpoint."""
    m = QUEUE_ENDPOINT_RE.match(endpoint)
    return (m.group(2), m.group(3)) if m else None


def _check_size(size: int) -> None:
    if not 1024 <= size <= 65536:
        raise InvalidParameter("", "The value of MaximumMessageSize should between 1024 and 65536.")


def _encode_topic(attrs: TopicAttributes) -> dict[str, str]:
    return {"MaximumMessageSize": str(attrs.maximum_message_size), "LoggingEnabled": str(attrs.logging_enabled)}


def _decode_topic(raw: dict[str, str]) -> TopicAttributes:
    return TopicAttributes(int(raw["MaximumMessageSize"]), raw["LoggingEnabled"] == "True")


def _sub_to_json(sub: Subscription, sealer: Sealer) -> str:
    data = asdict(sub)
    if sub.webhook_secret:
        data["webhook_secret"] = sealer.seal(sub.webhook_secret)
    return json.dumps(data)


def _sub_from_json(raw: str, sealer: Sealer) -> Subscription:
    data = json.loads(raw)
    data["spec"] = SubscriptionSpec(**data["spec"])
    if data.get("webhook_secret"):
        data["webhook_secret"] = sealer.open(data["webhook_secret"])
    return Subscription(**data)


def reseal_subscriptions(client: redis.Redis, reseal: Callable[[str], str]) -> int:
    """Re-seal every subscription's webhook secret (``openmps secrets rotate``); returns how many."""
    count = 0
    for name in client.scan_iter(match=f"{KEY_PREFIX}:*:t:*:subs"):
        for sub_name, raw in client.hgetall(name).items():
            data = json.loads(raw)
            if data.get("webhook_secret"):
                data["webhook_secret"] = reseal(data["webhook_secret"])
                client.hset(name, sub_name, json.dumps(data))
                count += 1
    return count
