"""The official aliyun-mns-sdk, unmodified, against openmps's MNS queues."""

from __future__ import annotations

import threading
import time

import pytest
from mns.account import Account
from mns.mns_exception import MNSServerException
from mns.queue import Message, QueueMeta

from tests.integration.notify.conftest import AK, SK, MnsServer


def _queue(server: MnsServer, name: str, **meta: int) -> object:
    q = Account(server.url, AK, SK).get_queue(name)
    q.create(QueueMeta(**meta))
    return q


def test_send_receive_delete_round_trip(mns_server: MnsServer) -> None:
    q = _queue(mns_server, "snap-queue", vis_timeout=30, polling_wait_sec=0)
    sent = q.send_message(Message('{"JobId":"abc","x":"<&>"} 中文'))
    got = q.receive_message(wait_seconds=1)
    assert got.message_id == sent.message_id
    assert got.message_body == '{"JobId":"abc","x":"<&>"} 中文'.encode()
    assert got.dequeue_count == 1
    assert got.next_visible_time - got.first_dequeue_time == 30_000
    assert "+" not in got.receipt_handle and "/" not in got.receipt_handle
    q.delete_message(got.receipt_handle)
    with pytest.raises(MNSServerException) as exc:
        q.receive_message(wait_seconds=0)
    assert exc.value.type == "MessageNotExist"


def test_visibility_timeout_expiry_reappears_with_dequeue_count_2(mns_server: MnsServer) -> None:
    q = _queue(mns_server, "vt-queue", vis_timeout=1)
    q.send_message(Message("hello"))
    first = q.receive_message(wait_seconds=1)
    assert first.dequeue_count == 1
    t0 = time.monotonic()
    second = q.receive_message(wait_seconds=5)  # long poll until the 1 s visibility timeout expires
    waited = time.monotonic() - t0
    assert second.message_id == first.message_id
    assert second.dequeue_count == 2
    assert second.receipt_handle != first.receipt_handle
    assert 0.5 < waited < 3.0
    # The first handle is stale: deleting with it fails as MNS does (404 MessageNotExist).
    with pytest.raises(MNSServerException) as exc:
        q.delete_message(first.receipt_handle)
    assert exc.value.type == "MessageNotExist"
    q.delete_message(second.receipt_handle)


def test_change_visibility_rotates_the_handle(mns_server: MnsServer) -> None:
    q = _queue(mns_server, "cv-queue", vis_timeout=30)
    q.send_message(Message("m"))
    got = q.receive_message(wait_seconds=1)
    changed = q.change_message_visibility(got.receipt_handle, 1)
    assert changed.receipt_handle != got.receipt_handle
    with pytest.raises(MNSServerException) as exc:
        q.delete_message(got.receipt_handle)
    assert exc.value.type == "MessageNotExist"
    again = q.receive_message(wait_seconds=4)
    assert again.dequeue_count == 2


def test_long_poll_returns_when_a_message_arrives(mns_server: MnsServer) -> None:
    q = _queue(mns_server, "lp-queue")
    sender = Account(mns_server.url, AK, SK).get_queue("lp-queue")
    t0 = time.monotonic()
    threading.Timer(0.5, lambda: sender.send_message(Message("late"))).start()
    got = q.receive_message(wait_seconds=5)
    assert got.message_body == b"late"
    assert 0.4 < time.monotonic() - t0 < 2.0
    with pytest.raises(MNSServerException) as exc:
        t1 = time.monotonic()
        q.receive_message(wait_seconds=1)
    assert exc.value.type == "MessageNotExist"
    assert time.monotonic() - t1 >= 0.95


def test_priority_delay_batch_and_peek(mns_server: MnsServer) -> None:
    q = _queue(mns_server, "batch-queue")
    q.set_encoding(False)
    low, high = Message("low", priority=16), Message("high", priority=1)
    delayed = Message("later", delay_seconds=1)
    q.batch_send_message([low, high, delayed])
    peeked = q.batch_peek_message(16)
    assert [m.message_body for m in peeked] == ["high", "low"]
    got = q.batch_receive_message(16, wait_seconds=0)
    assert [m.message_body for m in got] == ["high", "low"]
    q.batch_delete_message([m.receipt_handle for m in got])
    later = q.receive_message(wait_seconds=3)
    assert later.message_body == "later"
    with pytest.raises(MNSServerException) as exc:
        q.batch_delete_message([later.receipt_handle, got[0].receipt_handle])
    assert exc.value.type == "MessageNotExist"


def test_create_twice_same_and_different_attributes(mns_server: MnsServer) -> None:
    acc = Account(mns_server.url, AK, SK)
    q = acc.get_queue("dup-queue")
    url = q.create(QueueMeta(vis_timeout=30))
    assert url.endswith("/queues/dup-queue")
    assert q.create(QueueMeta(vis_timeout=30)) == url
    with pytest.raises(MNSServerException) as exc:
        q.create(QueueMeta(vis_timeout=60))
    assert exc.value.type == "QueueAlreadyExist"
    meta = q.get_attributes()
    assert meta.visibility_timeout == 30 and meta.active_messages == 0
    with pytest.raises(MNSServerException) as exc:
        acc.get_queue("missing").send_message(Message("x"))
    assert exc.value.type == "QueueNotExist"
