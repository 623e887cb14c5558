"""Queue model details the SDK tests do not reach: the dead-letter queue and idempotent resend."""

from __future__ import annotations

import pytest
import redis

from app.notify.errors import MessageNotFound
from app.notify.queues import OutgoingMessage, QueueAttributes, QueueStore


def test_message_moves_to_the_dead_letter_queue_after_max_receives(redis_client: redis.Redis) -> None:
    store = QueueStore(redis_client, "acme")
    store.create("dlq", QueueAttributes())
    store.create("work", QueueAttributes(visibility_timeout=1, dead_letter_queue="dlq", max_receive_count=2))
    sent = store.send("work", OutgoingMessage("poison"))
    first = store.receive("work", wait_seconds=0)[0]
    second = store.receive("work", wait_seconds=2)[0]  # visible again after 1 s
    assert (first.dequeue_count, second.dequeue_count) == (1, 2)
    with pytest.raises(MessageNotFound):  # the third receive moves it instead of delivering it
        store.receive("work", wait_seconds=2)
    dead = store.receive("dlq", wait_seconds=0)[0]
    assert dead.message_id == sent.message_id and dead.body == "poison" and dead.dequeue_count == 1
    assert dead.enqueue_time == first.enqueue_time  # retention clock not reset by the move


def test_resending_an_id_is_a_no_op_even_after_delete(redis_client: redis.Redis) -> None:
    store = QueueStore(redis_client, "acme")
    store.create("once", QueueAttributes())
    store.send("once", OutgoingMessage("a"), message_id="0" * 32)
    got = store.receive("once", wait_seconds=0)[0]
    store.delete_message("once", got.receipt_handle)
    store.send("once", OutgoingMessage("a"), message_id="0" * 32)
    with pytest.raises(MessageNotFound):
        store.receive("once", wait_seconds=0)
