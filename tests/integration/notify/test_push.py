"""HTTP push to topic subscribers: both signatures, MNS retry schedules (time-scaled), one
message id across attempts, dead letters, redelivery, the delivery log, the SSRF guard."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator

import pytest
import redis
from mns.account import Account
from mns.subscription import SubscriptionMeta
from mns.topic import TopicMessage, TopicMeta

from app.notify.delivery import Delivery, DeliveryState, DeliveryStore
from app.notify.push import Pusher
from app.notify.signing import CERT_PATH, load_signing_key
from app.notify.ssrf import EndpointGuard
from app.notify.topics import TopicStore
from tests.integration.notify.conftest import AK, SK, MnsServer
from tests.integration.notify.receiver import Receiver
from tests.stack import shared_sealer

SCALE = 0.05  # 1 s of MNS schedule = 50 ms here


@pytest.fixture
def receiver(mns_server: MnsServer) -> Iterator[Receiver]:
    r = Receiver(cert_prefix=mns_server.url + "/mns/")
    yield r
    r.close()


def _pusher(server: MnsServer, *, allow_private: bool = True, lease_s: float = 30.0) -> Pusher:
    return Pusher(
        DeliveryStore(server.redis),
        load_signing_key(server.redis, shared_sealer()),
        EndpointGuard(allow_private=allow_private),
        sealer=shared_sealer(),
        public_url=server.url,
        time_scale=SCALE,
        lease_s=lease_s,
    )


def _subscribe(server: MnsServer, receiver: Receiver, strategy: str, fmt: str = "JSON") -> str:
    topic = Account(server.url, AK, SK).get_topic("push-topic")
    topic.create(TopicMeta())
    topic.get_subscription("hook").subscribe(
        SubscriptionMeta(receiver.url + "/hook?src=mns", notify_strategy=strategy, notify_content_format=fmt)
    )
    store = TopicStore(
        server.redis, server.account, DeliveryStore(server.redis), EndpointGuard(allow_private=True), shared_sealer()
    )
    receiver.webhook_secret = store.subscription("push-topic", "hook").webhook_secret
    receiver.fetch_cert(server.url + CERT_PATH)
    return topic.publish_message(TopicMessage('{"JobId":"j1"}', "snapshot")).message_id


def _run_until(pusher: Pusher, done: threading.Event | None, predicate: object, timeout: float) -> None:
    stop = threading.Event()
    t = threading.Thread(target=pusher.run, args=(stop,))
    t.start()
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline and not predicate():  # type: ignore[operator]
            time.sleep(0.01)
    finally:
        stop.set()
        t.join(10)


def test_both_signatures_verify_and_mns_headers_are_present(mns_server: MnsServer, receiver: Receiver) -> None:
    message_id = _subscribe(mns_server, receiver, "BACKOFF_RETRY", fmt="SIMPLIFIED")
    _run_until(_pusher(mns_server), None, lambda: receiver.got, 5)
    (req,) = receiver.got
    assert req.mns_signature_ok and req.webhook_signature_ok
    assert req.path == "/hook?src=mns"
    assert req.body == b'{"JobId":"j1"}'
    assert req.headers["x-mns-version"] == "2015-06-06" and req.headers["x-mns-request-id"]
    assert req.headers["x-mns-message-id"] == req.headers["webhook-id"] == message_id
    assert req.headers["x-mns-message-tag"] == "snapshot"
    # Tampering is caught by both verifiers.
    assert not receiver._webhook_ok(req.body + b" ", req.headers)
    assert not receiver._mns_ok("POST", "/other", req.headers)
    assert set(receiver.certs) == {mns_server.url + CERT_PATH}  # served by the MNS blueprint itself


def test_exponential_decay_schedule_until_the_receiver_recovers(mns_server: MnsServer, receiver: Receiver) -> None:
    receiver.answer = lambda n: 503 if n <= 5 else 204
    message_id = _subscribe(mns_server, receiver, "EXPONENTIAL_DECAY_RETRY")
    _run_until(_pusher(mns_server), None, lambda: len(receiver.got) >= 6, 15)
    assert len(receiver.got) == 6
    gaps = [round((b.at - a.at) / SCALE, 2) for a, b in zip(receiver.got, receiver.got[1:])]
    print("observed gaps in MNS seconds:", gaps)
    for gap, expected in zip(gaps, [1, 2, 4, 8, 16], strict=True):
        assert expected * 0.95 <= gap <= expected + 4, gaps  # never early; late by at most 200 ms of latency
    assert {r.headers["webhook-id"] for r in receiver.got} == {message_id}
    assert all(r.mns_signature_ok and r.webhook_signature_ok for r in receiver.got)
    store = DeliveryStore(mns_server.redis)
    (d,) = store.for_message(message_id)
    assert d.state == DeliveryState.DELIVERED and d.attempts == 6
    log = store.log(d.id)
    assert [a.status for a in log] == [503] * 5 + [204]
    assert log[-1].ok and log[-1].next_due_ms == 0


def test_backoff_exhausted_leaves_a_dead_letter_then_redelivery_succeeds(
    mns_server: MnsServer, receiver: Receiver
) -> None:
    receiver.answer = lambda n: 500
    message_id = _subscribe(mns_server, receiver, "BACKOFF_RETRY")
    store = DeliveryStore(mns_server.redis)
    _run_until(_pusher(mns_server), None, lambda: store.dead_letters(), 10)
    assert len(receiver.got) == 4  # the first attempt and 3 retries
    gaps = [(b.at - a.at) / SCALE for a, b in zip(receiver.got, receiver.got[1:])]
    print("observed BACKOFF gaps in MNS seconds:", [round(g, 2) for g in gaps])
    assert all(10 * 0.95 <= g <= 20 + 4 for g in gaps), gaps
    (dead,) = store.dead_letters()
    assert dead.message_id == message_id and dead.state == DeliveryState.DEAD and dead.last_status == 500

    receiver.answer = lambda n: 204
    store.redeliver(dead.id)
    _run_until(_pusher(mns_server), None, lambda: store.get(dead.id).state == DeliveryState.DELIVERED, 5)
    assert store.get(dead.id).state == DeliveryState.DELIVERED
    assert store.dead_letters() == []
    assert [a.status for a in store.log(dead.id)] == [500, 500, 500, 500, 204]
    assert {r.headers["webhook-id"] for r in receiver.got} == {message_id}


@pytest.mark.parametrize("strategy", ["BACKOFF_RETRY", "EXPONENTIAL_DECAY_RETRY"])
def test_a_guard_refusal_is_dead_lettered_on_the_first_attempt(
    mns_server: MnsServer, receiver: Receiver, strategy: str
) -> None:
    """The address is refused at connect time; refusing it 176 more times over a day would change
    nothing, so the delivery dies at once, with the guard's reason recorded."""
    message_id = _subscribe(mns_server, receiver, strategy)
    store = DeliveryStore(mns_server.redis)
    (d,) = store.for_message(message_id)
    attempt = _pusher(mns_server, allow_private=False).deliver(d.id)
    assert attempt is not None and not attempt.ok and attempt.status == 0 and attempt.attempt == 1
    assert attempt.next_due_ms == 0 and "loopback" in attempt.error and "permanent" in attempt.error
    dead = store.get(d.id)
    assert dead.state == DeliveryState.DEAD and dead.attempts == 1 and "loopback" in dead.last_error
    assert [x.id for x in store.dead_letters()] == [d.id]
    assert mns_server.redis.zscore("openmps:push:due", d.id) is None
    assert receiver.got == []


def test_an_unresolvable_name_is_retried_not_dead_lettered(mns_server: MnsServer) -> None:
    store = DeliveryStore(mns_server.redis)
    store.enqueue(
        Delivery("d-dns", "m-dns", "acme", "job/j", "http://no-such-host.invalid/h", "BACKOFF_RETRY", "text/plain", "x")
    )
    attempt = _pusher(mns_server, allow_private=False).deliver("d-dns")
    assert attempt is not None and not attempt.ok and attempt.next_due_ms > 0
    assert store.get("d-dns").state == DeliveryState.PENDING


def test_a_store_error_inside_an_attempt_is_logged_with_the_delivery_id(
    redis_client: redis.Redis, caplog: pytest.LogCaptureFixture
) -> None:
    class BrokenStore(DeliveryStore):
        def get(self, delivery_id: str) -> Delivery:
            raise redis.ConnectionError("store went away")

    store = BrokenStore(redis_client)
    store.enqueue(Delivery("d1", "m1", "acme", "job/j1", "http://127.0.0.1:9/hook", "BACKOFF_RETRY", "text/plain", "x"))
    pusher = Pusher(
        store,
        load_signing_key(redis_client, shared_sealer()),
        EndpointGuard(allow_private=True),
        sealer=shared_sealer(),
        public_url="http://api",
    )
    with caplog.at_level(logging.ERROR, logger="app.notify.push"):
        _run_until(pusher, None, lambda: any(r.exc_info for r in caplog.records), 5)
    (record, *_) = [r for r in caplog.records if r.exc_info]
    assert "d1" in record.getMessage() and record.exc_info is not None
    assert isinstance(record.exc_info[1], redis.ConnectionError)
