"""Progress events through the real push loop (real redis-server, a loopback receiver): signed,
in order, one attempt each, never overlapping or following their job's completion event."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime

import pytest
from cryptography import x509

from app.core.jobs import SnapshotJob
from app.core.progress import ProgressEvents
from app.core.specs import ObjectRef, OutputTarget, SingleTime, SnapshotSpec
from app.notify.delivery import Delivery, DeliveryState, DeliveryStore, Strategy
from app.notify.messages import completion_message_id
from app.notify.progress import ProgressPublisher, completion_delivery_id, event_seq
from app.notify.push import Pusher
from app.notify.signing import CERT_PATH, load_signing_key, tenant_webhook_secret
from app.notify.ssrf import EndpointGuard
from app.wiring import Services
from tests.integration.notify.receiver import Receiver
from tests.stack import shared_sealer

PUBLIC_URL = "http://openmps.test"
AT = datetime(2026, 3, 4, 5, 6, 7, 890000, tzinfo=UTC)


@pytest.fixture
def receiver(services: Services) -> Iterator[Receiver]:
    r = Receiver(cert_prefix=PUBLIC_URL, webhook_secret=tenant_webhook_secret(services.redis, shared_sealer(), "acme"))
    key = load_signing_key(services.redis, shared_sealer())
    r.certs[PUBLIC_URL + CERT_PATH] = x509.load_pem_x509_certificate(key.certificate_pem)  # as if fetched
    yield r
    r.close()


def job_for(receiver: Receiver, *, own_url: bool = False) -> SnapshotJob:
    url = f"{receiver.url}/progress" if own_url else f"{receiver.url}/hook"
    return SnapshotJob(
        id="job-1",
        tenant="acme",
        pipeline_id="default",
        spec=SnapshotSpec(input=ObjectRef("media", "v.mp4"), timing=SingleTime(0), output=OutputTarget("out", "x.jpg")),
        webhook_url=f"{receiver.url}/hook",
        progress_events=ProgressEvents(url, every_images=5),
    )


def completion(services: Services, job: SnapshotJob, url: str) -> Delivery:
    """The completion push as ``OutboxConsumer.notify`` enqueues it for a URL with progress events."""
    push_id = completion_delivery_id(job, url)
    delivery = Delivery(
        id=push_id,
        message_id=completion_message_id(job.id),
        account=job.tenant,
        source=f"job/{job.id}",
        endpoint=url,
        strategy=Strategy.EXPONENTIAL_DECAY_RETRY.value,
        content_type="application/json;charset=utf-8",
        body='{"event":"job.succeeded"}',
        webhook_secret=shared_sealer().seal(tenant_webhook_secret(services.redis, shared_sealer(), job.tenant)),
        order_key=push_id,
    )
    DeliveryStore(services.redis).enqueue(delivery)
    return delivery


def pusher(services: Services) -> Pusher:
    return Pusher(
        DeliveryStore(services.redis),
        load_signing_key(services.redis, shared_sealer()),
        EndpointGuard(allow_private=True),
        sealer=shared_sealer(),
        public_url=PUBLIC_URL,
        time_scale=0.01,
    )


def run_until(services: Services, predicate: Callable[[], bool], timeout: float = 10) -> None:
    stop = threading.Event()
    t = threading.Thread(target=pusher(services).run, args=(stop,))
    t.start()
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline and not predicate():
            time.sleep(0.01)
    finally:
        stop.set()
        t.join(10)


def bodies(receiver: Receiver) -> list[dict[str, object]]:
    return [json.loads(r.body) for r in receiver.got]


def states(services: Services, ids: list[str]) -> list[str]:
    return [DeliveryStore(services.redis).get(i).state for i in ids]


def test_events_are_signed_in_order_and_none_follows_the_completion(services: Services, receiver: Receiver) -> None:
    job = job_for(receiver)
    publisher = ProgressPublisher(services.redis, shared_sealer(), job)
    for n in (1, 2, 3):
        publisher.publish(event_seq(1, n), 5 * n, 20, AT)
    run_until(services, lambda: len(receiver.got) == 3)
    assert [b["images_done"] for b in bodies(receiver)] == [5, 10, 15]
    assert bodies(receiver)[0] == {
        "type": "job.progress",
        "event": "job.progress",
        "job_id": "job-1",
        "images_done": 5,
        "images_total": 20,
        "state": "running",
        "at": "2026-03-04T05:06:07.890Z",
    }
    assert all(r.webhook_signature_ok and r.mns_signature_ok for r in receiver.got)
    assert len({r.headers["webhook-id"] for r in receiver.got}) == 3  # one message id per event
    assert all(r.path == "/hook" for r in receiver.got)

    done = completion(services, job, f"{receiver.url}/hook")
    publisher.publish(event_seq(1, 4), 20, 20, AT)  # too late: the job's completion is already enqueued
    run_until(services, lambda: services.redis.zcard("openmps:push:due") == 0)
    assert DeliveryStore(services.redis).get(done.id).state == DeliveryState.DELIVERED
    assert [b.get("images_done", b.get("event")) for b in bodies(receiver)] == [5, 10, 15, "job.succeeded"]
    time.sleep(0.2)
    assert len(receiver.got) == 4
    (late,) = [d for d in _side_events(DeliveryStore(services.redis)) if d.order_seq == event_seq(1, 4)]
    assert late.state == DeliveryState.DROPPED and late.attempts == 0 and late.last_error.startswith("superseded")


def test_a_stale_event_is_dropped_unsent(services: Services, receiver: Receiver) -> None:
    publisher = ProgressPublisher(services.redis, shared_sealer(), job_for(receiver))
    publisher.publish(event_seq(1, 2), 10, 20, AT)
    run_until(services, lambda: len(receiver.got) == 1)
    publisher.publish(event_seq(1, 1), 5, 20, AT)  # enqueued after a later one went out
    store = DeliveryStore(services.redis)
    run_until(services, lambda: store.r.zcard("openmps:push:due") == 0)
    assert [b["images_done"] for b in bodies(receiver)] == [10]
    (stale,) = [d for d in _side_events(store) if d.order_seq == event_seq(1, 1)]
    assert stale.state == DeliveryState.DROPPED and stale.attempts == 0 and stale.last_error.startswith("stale")


def test_a_failed_event_gets_one_attempt_and_is_no_dead_letter(services: Services, receiver: Receiver) -> None:
    receiver.answer = lambda n: 500
    publisher = ProgressPublisher(services.redis, shared_sealer(), job_for(receiver, own_url=True))
    publisher.publish(event_seq(1, 1), 5, 20, AT)
    store = DeliveryStore(services.redis)
    run_until(services, lambda: store.r.zcard("openmps:push:due") == 0)
    time.sleep(0.2)  # a retry (time scale 0.01) would come within this
    assert len(receiver.got) == 1 and receiver.got[0].path == "/progress"
    (event,) = _side_events(store)
    assert event.state == DeliveryState.DROPPED and event.attempts == 1 and event.last_status == 500
    assert store.dead_letters() == []
    assert 0 < store.r.pttl(store.key(event.id)) <= 600_000  # kept a short while, not a week


def test_a_group_never_has_two_posts_at_once(services: Services, receiver: Receiver) -> None:
    """The completion push waits for the progress event being POSTed, then follows it."""
    job = job_for(receiver)
    receiver.hold = threading.Event()
    ProgressPublisher(services.redis, shared_sealer(), job).publish(event_seq(1, 1), 5, 20, AT)
    stop = threading.Event()
    t = threading.Thread(target=pusher(services).run, args=(stop,))
    t.start()
    try:
        assert receiver.entered.wait(5)  # the progress event is being POSTed, and is held there
        done = completion(services, job, f"{receiver.url}/hook")
        time.sleep(0.5)  # the completion is due all along, and is claimed again and again meanwhile
        assert len(receiver.got) == 1
        receiver.hold.set()
        deadline = time.monotonic() + 5
        while DeliveryStore(services.redis).get(done.id).state != DeliveryState.DELIVERED:
            assert time.monotonic() < deadline
            time.sleep(0.01)
    finally:
        receiver.hold.set()
        stop.set()
        t.join(10)
    assert [b.get("images_done", b.get("event")) for b in bodies(receiver)] == [5, "job.succeeded"]
    assert DeliveryStore(services.redis).get(done.id).attempts == 1


def _side_events(store: DeliveryStore) -> list[Delivery]:
    ids = [k.rsplit(":", 1)[1] for k in store.r.scan_iter(match=store.key("*"))]
    return [d for d in (store.get(i) for i in ids) if d.is_side_event]
