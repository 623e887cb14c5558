"""Killing the notifier (SIGKILL, a real subprocess) during delivery loses no notification.

The first notifier is killed while a webhook push is in flight (the receiver holds the request).
Meanwhile more jobs finish, and one outbox entry is read by a consumer that dies before acking.
A second notifier must deliver everything: every job's completion message is in the pipeline's
queue exactly once, every webhook arrives, with one message id per job, and every job records it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from app.notify.delivery import DeliveryState, DeliveryStore
from app.notify.messages import completion_message_id
from app.notify.notifier import GROUP
from app.notify.queues import QueueAttributes, QueueStore
from app.storage import keys
from app.storage.jobs import RedisJobRepository
from tests.integration.notify.conftest import MnsServer
from tests.integration.notify.jobs import finish_job, make_pipeline
from tests.integration.notify.receiver import Receiver
from tests.stack import TEST_SECRET_KEY

ROOT = Path(__file__).resolve().parents[3]


def _start_notifier(redis_url: str, public_url: str) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "OPENMPS_REDIS_URL": redis_url,
        "OPENMPS_PUBLIC_URL": public_url,
        "OPENMPS_ALLOW_PRIVATE_ENDPOINTS": "true",
        "OPENMPS_NOTIFY_TIME_SCALE": "0.01",
        "OPENMPS_NOTIFY_LEASE_S": "1",
        "OPENMPS_SECRET_KEY": TEST_SECRET_KEY,
    }
    return subprocess.Popen(
        [sys.executable, "-m", "app.notify.notifier"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def _wait(predicate: object, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return True
        time.sleep(0.05)
    return False


def test_sigkill_mid_delivery_loses_nothing(mns_server: MnsServer, redis_url: str) -> None:
    r = mns_server.redis
    QueueStore(r, mns_server.account).create("done-q", QueueAttributes())
    pipeline = make_pipeline(r, mns_server.account, queue="done-q")
    hold = threading.Event()
    receiver = Receiver(cert_prefix=mns_server.url + "/mns/", hold=hold)
    first = second = None
    try:
        jobs = [
            finish_job(r, mns_server.account, pipeline.id, webhook_url=receiver.url + "/job-hook") for _ in range(4)
        ]
        first = _start_notifier(redis_url, mns_server.url)
        assert receiver.entered.wait(20), "the first notifier never pushed"
        first.send_signal(signal.SIGKILL)  # mid-request: the receiver is still holding it
        first.wait(10)
        hold.set()

        jobs += [
            finish_job(r, mns_server.account, pipeline.id, webhook_url=receiver.url + "/job-hook") for _ in range(3)
        ]
        # A consumer reads one entry and dies before acking it: only XAUTOCLAIM can recover it.
        ghost = r.xreadgroup(GROUP, "ghost", {keys.OUTBOX: ">"}, count=1)
        assert ghost, "expected an unread outbox entry for the ghost consumer"

        second = _start_notifier(redis_url, mns_server.url)
        ids = {completion_message_id(j.id) for j in jobs}
        deliveries = DeliveryStore(r)

        def all_delivered() -> bool:
            found = [d for mid in ids for d in deliveries.for_message(mid)]  # one snapshot, then judge it
            return len(found) == len(ids) and all(d.state == DeliveryState.DELIVERED for d in found)

        assert _wait(
            all_delivered,
            30,
        ), "webhook deliveries did not all complete"
        assert _wait(lambda: r.xpending(keys.OUTBOX, GROUP)["pending"] == 0, 10)
    finally:
        for proc in (first, second):
            if proc is not None and proc.poll() is None:
                proc.terminate()
                proc.wait(10)
        receiver.close()

    repo = RedisJobRepository(r)
    for job in jobs:
        note = repo.get(job.id).notification
        assert note is not None and note.message_id == completion_message_id(job.id) and note.error_code is None
    received = QueueStore(r, mns_server.account).receive("done-q", count=16, wait_seconds=0)
    assert sorted(m.message_id for m in received) == sorted(ids)  # each exactly once
    got_ids = {rec.headers["webhook-id"] for rec in receiver.got}
    assert got_ids == ids, [
        (d, DeliveryStore(r).log(d.id)) for m in ids - got_ids for d in DeliveryStore(r).for_message(m)
    ]
    assert len(receiver.got) >= len(ids) + 1  # the killed attempt was repeated
    assert all(rec.mns_signature_ok for rec in receiver.got)
