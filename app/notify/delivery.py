"""HTTP push delivery: MNS retry strategies, a due-time sorted set, dead letters, a delivery log.

Why a sorted set and not Celery countdowns: EXPONENTIAL_DECAY_RETRY spans ~24 h with gaps up to
512 s, and Celery holds ETA tasks unacked in worker memory, redelivering them in a loop once they
outlive the broker's visibility timeout (``docs/queue-semantics.md`` §4.1). Here each pending delivery is
one member of ``openmps:push:due`` scored by the epoch ms it is next due. A claim re-scores it to
``now + lease`` before the attempt, so a notifier killed mid-request leaves it to be retried when
the lease runs out; nothing is ever removed from the set until its outcome is written.

Keys: ``openmps:push:d:{id}`` hash (the delivery), ``openmps:push:log:{id}`` list (one JSON line
per attempt), ``openmps:push:due`` zset, ``openmps:push:dead`` zset (dead letters, scored by the
time they died), ``openmps:push:msg:{message id}`` set (deliveries of one message; it expires
with the last of them to finish).

Ordered groups (a job's progress events and its completion push to the same URL,
``app.notify.progress``): deliveries that share an ``order_key`` are POSTed one at a time, across
notifier processes (``openmps:push:lock:{key}``, a lease as long as one attempt may take), and its side events
(``order_seq`` > 0) are attempted at most once each, in ``order_seq`` order (the pending ones are
``openmps:push:group:{key}``: one that is not the first waits). A side event is dropped, unsent,
when one with a higher ``order_seq`` was attempted already (``openmps:push:seq:{key}``: an
abandoned attempt's late event), when the group's terminal delivery (the one whose id is the
``order_key``: the job's completion push) exists, or once older than ``SIDE_RETENTION_S``. A dropped delivery is
kept, state ``dropped``, for ``SIDE_RETENTION_S``, and is never a dead letter.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from dataclasses import dataclass, fields
from enum import StrEnum

import redis

from app.notify.errors import DeliveryNotFound

PREFIX = "openmps:push"
DUE = f"{PREFIX}:due"
DEAD = f"{PREFIX}:dead"
PUSH_TIMEOUT_S = 5.0  # MNS: success is a 2xx within 5 s
BACKOFF_RETRIES = 3
BACKOFF_MIN_S, BACKOFF_MAX_S = 10.0, 20.0
EXPONENTIAL_RETRIES = 176
EXPONENTIAL_CAP_S = 512.0
RETENTION_S = 7 * 24 * 3600  # finished deliveries and their logs are kept this long
SIDE_RETENTION_S = 600  # a side event's, once attempted or dropped: a job may send thousands
ORDER_LOCK_MS = int(PUSH_TIMEOUT_S * 1000) + 5000  # one attempt, with room for the SSRF guard's lookup


class Strategy(StrEnum):
    BACKOFF_RETRY = "BACKOFF_RETRY"
    EXPONENTIAL_DECAY_RETRY = "EXPONENTIAL_DECAY_RETRY"


class DeliveryState(StrEnum):
    PENDING = "pending"
    DELIVERED = "delivered"
    DEAD = "dead"
    DROPPED = "dropped"  # a side event not sent (stale, superseded) or whose one attempt failed


def retry_delay(strategy: Strategy, failures: int, rng: random.Random) -> float | None:
    """Seconds to wait after the ``failures``-th failed attempt (1-based), or None when exhausted.

    BACKOFF_RETRY: 3 retries, each after U(10, 20) s. EXPONENTIAL_DECAY_RETRY: 176 retries after
    1, 2, 4 ... 256 s, then 512 s each (86 015 s in all, 177 attempts).
    """
    if failures < 1:
        raise ValueError("failures counts failed attempts and starts at 1")
    if strategy is Strategy.BACKOFF_RETRY:
        return rng.uniform(BACKOFF_MIN_S, BACKOFF_MAX_S) if failures <= BACKOFF_RETRIES else None
    if failures > EXPONENTIAL_RETRIES:
        return None
    return min(2.0 ** (failures - 1), EXPONENTIAL_CAP_S)


def schedule(strategy: Strategy, rng: random.Random) -> list[float]:
    """Every retry delay of a delivery that never succeeds, in order."""
    out: list[float] = []
    while (delay := retry_delay(strategy, len(out) + 1, rng)) is not None:
        out.append(delay)
    return out


@dataclass(frozen=True)
class Delivery:
    """One message bound for one HTTP endpoint. ``body`` is exactly what every attempt POSTs."""

    id: str
    message_id: str  # the same on every attempt: webhook-id and x-mns-message-id
    account: str
    source: str  # "topic/{topic}/{subscription}" or "job/{job id}"
    endpoint: str
    strategy: str
    content_type: str
    body: str
    tag: str = ""
    simplified: bool = False  # SIMPLIFIED format adds x-mns-message-id / x-mns-message-tag headers
    webhook_secret: str = ""  # sealed (app.core.ports.Sealer); the pusher opens it to sign an attempt
    attempts: int = 0
    state: str = DeliveryState.PENDING
    created_ms: int = 0
    last_status: int = 0  # HTTP status of the last attempt, 0 = no response
    last_error: str = ""
    order_key: str = ""  # deliveries sharing it go one at a time (the module docstring)
    order_seq: int = 0  # > 0: a side event of its group, attempted at most once, in this order

    @property
    def is_side_event(self) -> bool:
        return self.order_seq > 0


@dataclass(frozen=True)
class Attempt:
    attempt: int  # 1-based
    at_ms: int
    status: int  # 0 = no HTTP response (refused, timeout, SSRF guard)
    ok: bool
    error: str
    duration_ms: int
    next_due_ms: int  # 0 when no retry follows
    dead: bool = False  # this attempt made the delivery a dead letter


_ENQUEUE = """
local d, id = KEYS[1], ARGV[1]
if redis.call('EXISTS', d) == 1 then return 0 end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
for i = 3, #ARGV, 2 do redis.call('HSET', d, ARGV[i], ARGV[i + 1]) end
redis.call('HSET', d, 'created_ms', now)
redis.call('ZADD', KEYS[2], now, id)
redis.call('SADD', KEYS[3], id)
if ARGV[2] ~= '' then redis.call('PEXPIRE', KEYS[3], ARGV[2]) end
if KEYS[4] then
  redis.call('ZADD', KEYS[4], redis.call('HGET', d, 'order_seq'), id)
  redis.call('PEXPIRE', KEYS[4], ARGV[2])
end
return 1
"""

# Claim up to ARGV[1] due deliveries, pushing each one's due time out by the lease (ARGV[2] ms).
_CLAIM = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, tonumber(ARGV[1]))
for _, id in ipairs(ids) do redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), id) end
return ids
"""

# Write an attempt's outcome. ARGV: id, ok (1/0), delay ms (-1 = exhausted), status, error, duration,
# retention ms, exhausted state ('dead' or 'dropped': only a dead one is listed in the dead set).
# Returns the attempt record as JSON (with server times filled in).
_RECORD = """
local d, log = KEYS[1], KEYS[2]
local id, ok, delay, status, err, dur = ARGV[1], ARGV[2], tonumber(ARGV[3]), ARGV[4], ARGV[5], ARGV[6]
if redis.call('HGET', d, 'state') ~= 'pending' then return '' end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local n = redis.call('HINCRBY', d, 'attempts', 1)
local next_due = 0
if ok == '1' then
  redis.call('HSET', d, 'state', 'delivered')
  redis.call('ZREM', KEYS[3], id)
elseif delay < 0 then
  redis.call('HSET', d, 'state', ARGV[8])
  redis.call('ZREM', KEYS[3], id)
  if ARGV[8] == 'dead' then redis.call('ZADD', KEYS[4], now, id) end
else
  next_due = now + delay
  redis.call('ZADD', KEYS[3], next_due, id)
end
redis.call('HSET', d, 'last_status', status, 'last_error', err)
local rec = cjson.encode({attempt = n, at_ms = now - tonumber(dur), status = tonumber(status),
  ok = ok == '1', error = err, duration_ms = tonumber(dur), next_due_ms = next_due,
  dead = ok ~= '1' and delay < 0 and ARGV[8] == 'dead'})
redis.call('RPUSH', log, rec)
if next_due == 0 then
  redis.call('PEXPIRE', d, ARGV[7]); redis.call('PEXPIRE', log, ARGV[7])
  -- The message's set of deliveries lives as long as its last finished one (-1: no expiry yet).
  local ttl = redis.call('PTTL', KEYS[5])
  if ttl == -1 or (ttl >= 0 and ttl < tonumber(ARGV[7])) then redis.call('PEXPIRE', KEYS[5], ARGV[7]) end
end
return rec
"""

# Drop a pending delivery unsent. KEYS: delivery, log, due, message set. ARGV: id, reason, retention ms.
_DROP = """
if redis.call('HGET', KEYS[1], 'state') ~= 'pending' then return 0 end
redis.call('HSET', KEYS[1], 'state', 'dropped', 'last_error', ARGV[2])
redis.call('ZREM', KEYS[3], ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[3]); redis.call('PEXPIRE', KEYS[2], ARGV[3])
local ttl = redis.call('PTTL', KEYS[4])
if ttl == -1 or (ttl >= 0 and ttl < tonumber(ARGV[3])) then redis.call('PEXPIRE', KEYS[4], ARGV[3]) end
return 1
"""

# Raise an ordered group's high-water mark to ARGV[1] when that is higher; 0 when it is not.
# KEYS: the mark. ARGV: seq, ttl ms.
_ADVANCE = """
local seen = tonumber(redis.call('GET', KEYS[1]) or '0')
if tonumber(ARGV[1]) <= seen then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1
"""

# Release an ordered group's lock if this holder (ARGV[1]) still holds it.
_UNLOCK = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


class DeliveryStore:
    """Deliveries in Redis. Needs a ``redis.Redis`` created with ``decode_responses=True``."""

    def __init__(self, client: redis.Redis) -> None:
        self.r = client
        self._enqueue = client.register_script(_ENQUEUE)
        self._claim = client.register_script(_CLAIM)
        self._record = client.register_script(_RECORD)
        self._drop = client.register_script(_DROP)
        self._advance = client.register_script(_ADVANCE)
        self._unlock = client.register_script(_UNLOCK)

    @staticmethod
    def key(delivery_id: str) -> str:
        return f"{PREFIX}:d:{delivery_id}"

    @staticmethod
    def log_key(delivery_id: str) -> str:
        return f"{PREFIX}:log:{delivery_id}"

    @staticmethod
    def message_key(message_id: str) -> str:
        return f"{PREFIX}:msg:{message_id}"

    def enqueue(self, delivery: Delivery, pipe: redis.client.Pipeline | None = None) -> None:
        """Due at once. Idempotent by id, so a publish repeated after a crash adds nothing. A side
        event's message set expires with it (a message of its own per event, thousands a job)."""
        args: list[str] = [delivery.id, str(2 * SIDE_RETENTION_S * 1000) if delivery.is_side_event else ""]
        for f in fields(Delivery):
            if f.name not in ("id", "created_ms"):
                args += [f.name, _to_text(getattr(delivery, f.name))]
        keys = [self.key(delivery.id), DUE, self.message_key(delivery.message_id)]
        if delivery.is_side_event:
            keys.append(self.group_key(delivery.order_key))
        self._enqueue(keys=keys, args=args, client=pipe or self.r)

    @staticmethod
    def group_key(order_key: str) -> str:
        """The pending side events of an ordered group, scored by ``order_seq``."""
        return f"{PREFIX}:group:{order_key}"

    def group_head(self, order_key: str) -> str | None:
        """The group's first side event still to send (lowest ``order_seq``), forgetting those
        already sent, dropped or expired. Called under the group's lock."""
        group = self.group_key(order_key)
        while head := self.r.zrange(group, 0, 0):
            (member,) = head
            if (
                self.r.hget(self.key(member), "state") == DeliveryState.PENDING
                and self.r.zscore(DUE, member) is not None
            ):
                return str(member)
            self.r.zrem(group, member)
        return None

    def get(self, delivery_id: str) -> Delivery:
        raw = self.r.hgetall(self.key(delivery_id))
        if not raw:
            raise DeliveryNotFound(f"no delivery {delivery_id}")
        return _from_hash(delivery_id, raw)

    def log(self, delivery_id: str) -> list[Attempt]:
        return [Attempt(**json.loads(line)) for line in self.r.lrange(self.log_key(delivery_id), 0, -1)]

    def for_message(self, message_id: str) -> list[Delivery]:
        out = []
        for did in sorted(self.r.smembers(self.message_key(message_id))):
            try:
                out.append(self.get(did))
            except DeliveryNotFound:
                continue  # expired after its retention
        return out

    def dead_letters(self, limit: int = 100) -> list[Delivery]:
        out = []
        for did in self.r.zrevrange(DEAD, 0, limit - 1):
            try:
                out.append(self.get(did))
            except DeliveryNotFound:
                self.r.zrem(DEAD, did)
        return out

    def redeliver(self, delivery_id: str) -> Delivery:
        """Start the delivery over (a fresh schedule, same message id), e.g. after a dead letter."""
        delivery = self.get(delivery_id)
        pipe = self.r.pipeline(transaction=True)
        pipe.hset(self.key(delivery_id), mapping={"state": DeliveryState.PENDING.value, "attempts": "0"})
        pipe.persist(self.key(delivery_id))
        pipe.persist(self.log_key(delivery_id))
        pipe.persist(self.message_key(delivery.message_id))
        pipe.zrem(DEAD, delivery_id)
        pipe.zadd(DUE, {delivery_id: 0})
        pipe.execute()
        return self.get(delivery_id)

    def claim(self, limit: int, lease_ms: int) -> list[str]:
        if limit <= 0:
            return []
        return list(self._claim(keys=[DUE], args=[limit, lease_ms]))

    def seconds_until_next_due(self) -> float | None:
        head = self.r.zrange(DUE, 0, 0, withscores=True)
        if not head:
            return None
        sec, usec = self.r.time()
        return head[0][1] / 1000 - (sec + usec / 1e6)

    def record(
        self, delivery: Delivery, *, ok: bool, delay_ms: int, status: int, error: str, duration_ms: int
    ) -> Attempt | None:
        """Store an attempt's outcome; ``delay_ms`` < 0 when the schedule is exhausted: a dead
        letter, or for a side event (never retried) a dropped delivery, kept a shorter time."""
        side = delivery.is_side_event
        keys = [self.key(delivery.id), self.log_key(delivery.id), DUE, DEAD, self.message_key(delivery.message_id)]
        retention_ms = (SIDE_RETENTION_S if side else RETENTION_S) * 1000
        exhausted = DeliveryState.DROPPED if side else DeliveryState.DEAD
        args = [delivery.id, "1" if ok else "0", delay_ms, status, error[:500], duration_ms, retention_ms, exhausted]
        rec = self._record(keys=keys, args=args)
        return Attempt(**json.loads(rec)) if rec else None

    def drop(self, delivery: Delivery, reason: str) -> bool:
        """Give up a pending delivery unsent (a stale or superseded side event); False if not pending."""
        keys = [self.key(delivery.id), self.log_key(delivery.id), DUE, self.message_key(delivery.message_id)]
        return bool(self._drop(keys=keys, args=[delivery.id, reason[:500], SIDE_RETENTION_S * 1000]))

    def exists(self, delivery_id: str) -> bool:
        return bool(self.r.exists(self.key(delivery_id)))

    def postpone(self, delivery_id: str, delay_ms: int) -> None:
        """Due again in ``delay_ms`` (its group is busy), without counting an attempt."""
        sec, usec = self.r.time()
        self.r.zadd(DUE, {delivery_id: sec * 1000 + usec // 1000 + delay_ms}, xx=True)

    def lock_order(self, order_key: str, holder: str) -> bool:
        """Hold the group's lock (``ORDER_LOCK_MS``, so a holder that dies releases it)."""
        return bool(self.r.set(f"{PREFIX}:lock:{order_key}", holder, nx=True, px=ORDER_LOCK_MS))

    def unlock_order(self, order_key: str, holder: str) -> None:
        self._unlock(keys=[f"{PREFIX}:lock:{order_key}"], args=[holder])

    def advance_order(self, order_key: str, seq: int) -> bool:
        """Record that the group's side event ``seq`` is being sent; False when one with the same
        or a higher ``seq`` was (this one is stale then)."""
        return bool(self._advance(keys=[f"{PREFIX}:seq:{order_key}"], args=[seq, SIDE_RETENTION_S * 1000]))

    def drop_due(self, delivery_id: str) -> None:
        self.r.zrem(DUE, delivery_id)

    def reseal(self, reseal: Callable[[str], str]) -> int:
        """Re-seal every stored delivery's webhook secret (``openmps secrets rotate``)."""
        count = 0
        for name in self.r.scan_iter(match=self.key("*")):
            stored = self.r.hget(name, "webhook_secret")
            if stored:
                self.r.hset(name, "webhook_secret", reseal(stored))
                count += 1
        return count


def _to_text(value: object) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    return str(value)


def _from_hash(delivery_id: str, raw: dict[str, str]) -> Delivery:
    values: dict[str, object] = {"id": delivery_id}
    for f in fields(Delivery):
        if f.name == "id" or f.name not in raw:
            continue
        text = raw[f.name]
        values[f.name] = text == "1" if f.type == "bool" else int(text) if f.type == "int" else text
    return Delivery(**values)  # type: ignore[arg-type]
