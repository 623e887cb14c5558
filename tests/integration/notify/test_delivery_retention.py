"""A message's set of deliveries (``openmps:push:msg:{id}``) expires with the last of them to
finish, as the deliveries and their logs do: a busy topic must not leave one set per message
behind forever."""

from __future__ import annotations

import redis

from app.notify.delivery import RETENTION_S, Delivery, DeliveryState, DeliveryStore


def _delivery(delivery_id: str, message_id: str) -> Delivery:
    return Delivery(
        id=delivery_id,
        message_id=message_id,
        account="acct",
        source="topic/t/s",
        endpoint="http://127.0.0.1:9/hook",
        strategy="BACKOFF_RETRY",
        content_type="application/json",
        body="{}",
    )


def _ttl_s(r: redis.Redis, key: str) -> float:
    return int(r.pttl(key)) / 1000


def test_the_message_set_expires_with_its_last_finished_delivery(redis_client: redis.Redis) -> None:
    store = DeliveryStore(redis_client)
    first, second = _delivery("d-1", "m-1"), _delivery("d-2", "m-1")
    store.enqueue(first)
    store.enqueue(second)
    key = store.message_key("m-1")
    assert int(redis_client.pttl(key)) == -1  # both pending: kept

    store.record(first, ok=True, delay_ms=0, status=204, error="", duration_ms=3)
    assert 0 < _ttl_s(redis_client, key) <= RETENTION_S
    assert [d.id for d in store.for_message("m-1")] == ["d-1", "d-2"]

    redis_client.pexpire(key, 60_000)  # as if the first finished long ago
    store.record(second, ok=False, delay_ms=-1, status=500, error="boom", duration_ms=3)
    assert RETENTION_S - 60 < _ttl_s(redis_client, key) <= RETENTION_S  # renewed by the later one
    assert store.get("d-2").state == DeliveryState.DEAD


def test_a_redelivered_dead_letter_keeps_its_message_set_until_it_finishes(redis_client: redis.Redis) -> None:
    store = DeliveryStore(redis_client)
    dead = _delivery("d-3", "m-2")
    store.enqueue(dead)
    store.record(dead, ok=False, delay_ms=-1, status=500, error="boom", duration_ms=3)
    key = store.message_key("m-2")
    assert _ttl_s(redis_client, key) > 0

    store.redeliver("d-3")
    assert int(redis_client.pttl(key)) == -1  # pending again: kept however long it takes
    store.record(store.get("d-3"), ok=True, delay_ms=0, status=204, error="", duration_ms=3)
    assert 0 < _ttl_s(redis_client, key) <= RETENTION_S
    assert [d.id for d in store.for_message("m-2")] == ["d-3"]
