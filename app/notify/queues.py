"""MNS-style queues in Redis: visibility timeout, rotating receipt handles, delay, retention,
priority, long polling, batches, peek and a dead-letter queue.

Layout (every key built by ``QueueKeys``; the Lua scripts append the same suffixes to the queue's
base key, so a queue's keys share one prefix and ``delete_queue`` can find them all):

* ``{base}``            hash: the queue's attributes (MNS names, integer seconds)
* ``{base}:m:{id}``     hash: one message; PEXPIREAT = enqueue time + retention, so Redis drops it
* ``{base}:ready``      zset of Active messages, score ``priority * 1e12 + seq`` (1 = highest, FIFO within)
* ``{base}:timer``      zset of Delayed and Inactive messages, score = epoch ms when they turn Active
* ``{base}:seq``        counter for FIFO order; ``{base}:wake`` list that long pollers BLPOP on
* ``{base}:sent:{id}``  marker kept for the retention period: a resend of the same id is a no-op

Every message is in exactly one of ``ready``/``timer``. All times come from the Redis server's
clock (``TIME`` inside the scripts), so API processes on different hosts agree on visibility.
Receipt handles are ``{message id}-{random hex}``: URL-safe, so the SDK can put them unencoded
in a query string, and new on every receive and visibility change; a handle is honoured only while
it is the message's current one and the message is still Inactive.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import time
import uuid
from dataclasses import dataclass, fields, replace

import redis
from redis.commands.core import Script

from app.core.errors import InvalidParameter
from app.notify import queue_lua
from app.notify.errors import (
    InvalidName,
    InvalidReceiptHandle,
    MessageNotFound,
    MessageTooLarge,
    QueueConflict,
    QueueNotFound,
)

KEY_PREFIX = "openmps:mns"
MAX_BATCH = 16
MAX_LONG_POLL_S = 30
NAME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9-]{0,119}$")
HANDLE_RE = re.compile(r"^([0-9A-F]{32})-([0-9a-f]{16,64})$")


class QueueKeys:
    """Key builders for one account's queues; the only place queue key names are spelled."""

    def __init__(self, account: str) -> None:
        self.account = account

    @property
    def names(self) -> str:
        return f"{KEY_PREFIX}:{self.account}:queues"

    def base(self, queue: str) -> str:
        return f"{KEY_PREFIX}:{self.account}:q:{queue}"

    def message(self, queue: str, message_id: str) -> str:
        return f"{self.base(queue)}:m:{message_id}"

    def wake(self, queue: str) -> str:
        return f"{self.base(queue)}:wake"


@dataclass(frozen=True)
class QueueAttributes:
    """Queue attributes, MNS ranges and defaults (seconds, bytes). ``max_receive_count`` 0 = no DLQ."""

    visibility_timeout: int = 30
    maximum_message_size: int = 65536
    message_retention_period: int = 345600
    delay_seconds: int = 0
    polling_wait_seconds: int = 0
    logging_enabled: bool = False
    dead_letter_queue: str = ""
    max_receive_count: int = 0

    def validate(self) -> QueueAttributes:
        _range(self.visibility_timeout, 1, 43200, "VisibilityTimeout")
        _range(self.maximum_message_size, 1024, 65536, "MaximumMessageSize")
        _range(self.message_retention_period, 60, 604800, "MessageRetentionPeriod")
        _range(self.delay_seconds, 0, 604800, "DelaySeconds")
        _range(self.polling_wait_seconds, 0, MAX_LONG_POLL_S, "PollingWaitSeconds")
        _range(self.max_receive_count, 0, 1000, "MaxReceiveCount")
        if self.dead_letter_queue:
            check_name(self.dead_letter_queue)
        return self


@dataclass(frozen=True)
class QueueInfo:
    name: str
    attributes: QueueAttributes
    create_time: int  # epoch seconds, as MNS reports it
    last_modify_time: int
    active_messages: int
    inactive_messages: int
    delay_messages: int


@dataclass(frozen=True)
class SentMessage:
    message_id: str
    body_md5: str


@dataclass(frozen=True)
class QueueMessage:
    """A received or peeked message. Times are epoch milliseconds; ``receipt_handle`` empty on peek."""

    message_id: str
    body: str
    body_md5: str
    priority: int
    enqueue_time: int
    first_dequeue_time: int
    dequeue_count: int
    next_visible_time: int
    receipt_handle: str


@dataclass(frozen=True)
class OutgoingMessage:
    body: str
    priority: int = 8
    delay_seconds: int | None = None  # None: the queue's DelaySeconds


def _range(value: int, low: int, high: int, name: str) -> None:
    if not low <= value <= high:
        raise InvalidParameter("", f"The value of {name} should between {low} and {high}.")


def check_name(name: str) -> str:
    if not NAME_RE.match(name):
        raise InvalidName(
            "", f"The name {name!r} is invalid: start with a letter; letters, digits and '-'; at most 120."
        )
    return name


def create_hash(script: Script, key: str, names: str, name: str, values: dict[str, str]) -> bool:
    """Write a new queue's or topic's whole attribute hash and list its name, in one step.

    False (and nothing written) if it already exists; the caller compares attributes.
    """
    args = [name]
    for k, v in values.items():
        args += [k, v]
    return bool(script(keys=[key, names], args=args))


def update_hash(script: Script, key: str, values: dict[str, str]) -> bool:
    """Overwrite fields of an existing attribute hash; False (nothing written) once it is gone."""
    args: list[str] = []
    for k, v in values.items():
        args += [k, v]
    return bool(script(keys=[key], args=args))


def body_md5(body: str) -> str:
    """MNS's MessageBodyMD5: upper-case hex MD5 of the body exactly as sent (UTF-8)."""
    return hashlib.md5(body.encode("utf-8")).hexdigest().upper()


def new_message_id() -> str:
    return uuid.uuid4().hex.upper()


def split_handle(handle: str) -> str:
    """The message id inside a receipt handle; a handle of any other shape was never ours."""
    m = HANDLE_RE.match(handle)
    if not m:
        raise InvalidReceiptHandle("", "The receipt handle you provide is not valid.")
    return m.group(1)


_ATTR_NAMES = {
    "visibility_timeout": "VisibilityTimeout",
    "maximum_message_size": "MaximumMessageSize",
    "message_retention_period": "MessageRetentionPeriod",
    "delay_seconds": "DelaySeconds",
    "polling_wait_seconds": "PollingWaitSeconds",
    "logging_enabled": "LoggingEnabled",
    "dead_letter_queue": "DeadLetterQueue",
    "max_receive_count": "MaxReceiveCount",
}


class QueueStore:
    """One account's queues. Needs a ``redis.Redis`` created with ``decode_responses=True``."""

    def __init__(self, client: redis.Redis, account: str) -> None:
        self.r = client
        self.account = account
        self.keys = QueueKeys(account)
        self._send = client.register_script(queue_lua.SEND)
        self._receive = client.register_script(queue_lua.RECEIVE)
        self._peek = client.register_script(queue_lua.PEEK)
        self._handle_op = client.register_script(queue_lua.HANDLE_OP)
        self._delete_queue = client.register_script(queue_lua.DELETE_QUEUE)
        self._counts = client.register_script(queue_lua.COUNTS)
        self._create_hash = client.register_script(queue_lua.CREATE_HASH)
        self._update_hash = client.register_script(queue_lua.UPDATE_HASH)

    # -- queues -------------------------------------------------------------------------------

    def create(self, name: str, attrs: QueueAttributes) -> bool:
        """Create; True if new. Same attributes again is a no-op (MNS 204), different ones conflict."""
        check_name(name)
        attrs.validate()
        now = str(int(time.time()))
        fields_ = {"CreateTime": now, "LastModifyTime": now, **_encode(attrs)}
        if not create_hash(self._create_hash, self.keys.base(name), self.keys.names, name, fields_):
            if self.attributes(name) != attrs:
                raise QueueConflict(f"The queue {name} already exists with different attributes.")
            return False
        return True

    def set_attributes(self, name: str, attrs: QueueAttributes) -> None:
        self.attributes(name)  # raises QueueNotFound
        attrs.validate()
        fields_ = {**_encode(attrs), "LastModifyTime": str(int(time.time()))}
        if not update_hash(self._update_hash, self.keys.base(name), fields_):
            raise QueueNotFound(f"The queue {name} does not exist.")

    def attributes(self, name: str) -> QueueAttributes:
        return _decode(self._hash(name))

    def info(self, name: str) -> QueueInfo:
        raw = self._hash(name)  # one read: a whole hash, even if a delete or update runs meanwhile
        active, inactive, delayed = (int(x) for x in self._counts(args=[self.keys.base(name)]))
        return QueueInfo(
            name, _decode(raw), int(raw["CreateTime"]), int(raw["LastModifyTime"]), active, inactive, delayed
        )

    def _hash(self, name: str) -> dict[str, str]:
        raw: dict[str, str] = self.r.hgetall(self.keys.base(name))
        if not raw:
            raise QueueNotFound(f"The queue {name} does not exist.")
        return raw

    def delete(self, name: str) -> None:
        """Delete a queue and its messages; deleting a missing queue succeeds, as in MNS."""
        self._delete_queue(args=[self.keys.base(name)])
        self.r.srem(self.keys.names, name)

    def list(self, prefix: str = "") -> list[str]:
        return sorted(n for n in self.r.smembers(self.keys.names) if n.startswith(prefix))

    def exists(self, name: str) -> bool:
        return bool(self.r.exists(self.keys.base(name)))

    # -- messages -----------------------------------------------------------------------------

    def send(self, name: str, message: OutgoingMessage, message_id: str | None = None) -> SentMessage:
        """Send one message. ``message_id`` lets a caller resend idempotently (same id, one copy)."""
        return self.send_batch(name, [message], [message_id or new_message_id()])[0]

    def send_batch(
        self, name: str, messages: list[OutgoingMessage], message_ids: list[str] | None = None
    ) -> list[SentMessage]:
        if not 1 <= len(messages) <= MAX_BATCH:
            raise InvalidParameter("", f"A batch holds 1 to {MAX_BATCH} messages.")
        attrs = self.attributes(name)
        ids = message_ids or [new_message_id() for _ in messages]
        total = sum(len(m.body.encode("utf-8")) for m in messages)
        if total > attrs.maximum_message_size:
            raise MessageTooLarge(
                "",
                f"The length of message should not be larger than MaximumMessageSize ({attrs.maximum_message_size}).",
            )
        pipe = self.r.pipeline(transaction=True)
        out = [self.send_in(pipe, name, msg, mid) for msg, mid in zip(messages, ids, strict=True)]
        if 0 in pipe.execute():
            raise QueueNotFound(f"The queue {name} does not exist.")
        return out

    def send_in(self, pipe: redis.client.Pipeline, name: str, msg: OutgoingMessage, message_id: str) -> SentMessage:
        """Queue a send inside the caller's MULTI (a topic publish groups all its copies this way).

        The size limit is the caller's to check; a missing queue shows up as a 0 in the results.
        """
        _range(msg.priority, 1, 16, "Priority")
        if msg.delay_seconds is not None:
            _range(msg.delay_seconds, 0, 604800, "DelaySeconds")
        md5 = body_md5(msg.body)
        delay = "" if msg.delay_seconds is None else str(msg.delay_seconds)
        self._send(args=[self.keys.base(name), message_id, msg.body, md5, msg.priority, delay], client=pipe)
        return SentMessage(message_id, md5)

    def receive(self, name: str, count: int = 1, wait_seconds: int | None = None) -> list[QueueMessage]:
        """Receive up to ``count`` messages, long-polling up to ``wait_seconds`` (None: queue default).

        Raises ``MessageNotFound`` when nothing became visible within the wait, as MNS answers 404.
        """
        if not 1 <= count <= MAX_BATCH:
            raise InvalidParameter("", f"numOfMessages should between 1 and {MAX_BATCH}.")
        attrs = self.attributes(name)
        wait = attrs.polling_wait_seconds if wait_seconds is None else wait_seconds
        _range(wait, 0, MAX_LONG_POLL_S, "waitseconds")
        dlq = self.keys.base(attrs.dead_letter_queue) if attrs.dead_letter_queue else ""
        deadline = time.monotonic() + wait
        base = self.keys.base(name)
        while True:
            tokens = [secrets.token_hex(12) for _ in range(count)]
            res = self._receive(args=[base, count, dlq, *tokens])
            if res[0] == 0:
                raise QueueNotFound(f"The queue {name} does not exist.")
            if res[0] == 1:
                return _messages(res[1:])
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise MessageNotFound("Message not exist.")
            # Sleep until a send wakes us, the next Delayed/Inactive message turns Active, or the
            # deadline: whichever is first (server clock for the timer; a little slack for skew).
            next_due = float(res[1])
            pause = min(remaining, 1.0)
            if next_due >= 0:
                pause = min(pause, max(0.01, next_due / 1000 - self._server_time() + 0.005))
            self.r.blpop([self.keys.wake(name)], timeout=pause)

    def peek(self, name: str, count: int = 1) -> list[QueueMessage]:
        if not 1 <= count <= MAX_BATCH:
            raise InvalidParameter("", f"numOfMessages should between 1 and {MAX_BATCH}.")
        res = self._peek(args=[self.keys.base(name), count])
        if res[0] == 0:
            raise QueueNotFound(f"The queue {name} does not exist.")
        found = _messages(res[1:])
        if not found:
            raise MessageNotFound("Message not exist.")
        return [replace(m, next_visible_time=0) for m in found]

    def change_visibility(self, name: str, handle: str, visibility_timeout: int) -> tuple[str, int]:
        """New timeout counted from now; returns (new receipt handle, next visible ms)."""
        split_handle(handle)
        _range(visibility_timeout, 0, 43200, "VisibilityTimeout")
        res = self._handle_op(args=[self.keys.base(name), handle, secrets.token_hex(12), visibility_timeout])
        self._check_handle_result(name, res)
        return str(res[1]), int(res[2])

    def delete_message(self, name: str, handle: str) -> None:
        split_handle(handle)
        self._check_handle_result(name, self._handle_op(args=[self.keys.base(name), handle, "", 0]))

    def delete_batch(self, name: str, handles: list[str]) -> list[tuple[str, Exception]]:
        """Delete each; returns (handle, error) for the ones that failed (MNS reports per entry)."""
        if not 1 <= len(handles) <= MAX_BATCH:
            raise InvalidParameter("", f"A batch holds 1 to {MAX_BATCH} receipt handles.")
        self.attributes(name)
        failed: list[tuple[str, Exception]] = []
        for h in handles:
            try:
                self.delete_message(name, h)
            except (InvalidReceiptHandle, MessageNotFound) as exc:
                failed.append((h, exc))
        return failed

    def _check_handle_result(self, name: str, res: list[object]) -> None:
        if res[0] == 0:
            raise QueueNotFound(f"The queue {name} does not exist.")
        if res[0] == 3:
            raise MessageNotFound("Message not exist.")

    def _server_time(self) -> float:
        sec, usec = self.r.time()
        return float(sec) + usec / 1e6


def _encode(attrs: QueueAttributes) -> dict[str, str]:
    return {_ATTR_NAMES[f.name]: str(getattr(attrs, f.name)) for f in fields(attrs)}


def _decode(raw: dict[str, str]) -> QueueAttributes:
    values: dict[str, object] = {}
    for f in fields(QueueAttributes):
        text = raw.get(_ATTR_NAMES[f.name])
        if text is None:
            continue
        values[f.name] = text == "True" if f.type in ("bool", bool) else (text if f.type in ("str", str) else int(text))
    return QueueAttributes(**values)  # type: ignore[arg-type]


def _messages(flat: list[str]) -> list[QueueMessage]:
    out = []
    for i in range(0, len(flat) - len(flat) % 9, 9):
        mid, body, md5, prio, enq, first, dc, nextvis, handle = flat[i : i + 9]
        out.append(QueueMessage(mid, body, md5, int(prio), int(enq), int(first), int(dc), int(nextvis), handle))
    return out
