"""Completion messages across the whole stack: API -> worker -> outbox -> notifier process -> an
MNS queue bound to the pipeline, read with the official ``aliyun-mns-sdk``; and a job's own
webhook, verified with Standard Webhooks."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from flask.testing import FlaskClient
from mns.account import Account
from mns.mns_exception import MNSServerException
from mns.queue import QueueMeta

from app.settings import Settings
from app.storage.credentials import AccessKey
from app.web import create_app
from app.wiring import Services
from tests.e2e.conftest import basic
from tests.integration.notify.receiver import Receiver
from tests.media import make_not_a_video, make_video
from tests.servers import free_port, serve_wsgi
from tests.stack import fast_settings, make_services
from tests.workerproc import REPO, WorkerProcess, settings_env


def start_notifier(settings: Settings, log_dir: Path) -> subprocess.Popen[bytes]:
    log = open(log_dir / "notifier.log", "ab")  # noqa: SIM115 - closed by the OS when the child exits
    return subprocess.Popen(
        [sys.executable, "-m", "app.notify.notifier"],
        cwd=REPO,
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**os.environ, **settings_env(settings), "PYTHONPATH": str(REPO)},
    )


@pytest.fixture
def notifier(settings: Settings, tmp_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    proc = start_notifier(settings, tmp_path)
    yield proc
    proc.terminate()
    proc.wait(15)


def test_pipeline_queue_receives_completion_messages(
    client: FlaskClient,
    key: AccessKey,
    services: Services,
    tmp_path: Path,
    start_worker: Callable[..., WorkerProcess],
    notifier: subprocess.Popen[bytes],
) -> None:
    video = make_video(tmp_path / "v.mp4", seconds=3, fps=25, width=320, height=240, gop=25)
    services.objects.put("media", "v.mp4", video.path.read_bytes(), "video/mp4")
    services.objects.put("media", "bad.mp4", make_not_a_video(tmp_path / "bad.mp4").read_bytes(), "video/mp4")
    server, url = serve_wsgi(create_app(services.settings, services))
    try:
        queue = Account(url, key.id, key.secret).get_queue("snap-done")
        queue.create(QueueMeta())
        queue.set_encoding(False)  # MPS writes raw JSON into the queue, as Alibaba's consumer samples expect
        resp = client.post(
            "/api/v1/pipelines", headers=basic(key), json={"name": "notified", "notify": {"queue": "snap-done"}}
        )
        assert resp.status_code == 201, resp.get_data(as_text=True)
        pipeline_id = resp.get_json()["id"]
        start_worker()
        ok = client.post(
            "/api/v1/jobs",
            headers=basic(key),
            json={
                "input": {"bucket": "media", "key": "v.mp4"},
                "output": {"bucket": "out", "key": "n/{JobId}/{Count}.jpg"},
                "snapshot": {"mode": "points", "points_ms": [500, 1500]},
                "pipeline_id": pipeline_id,
                "user_data": "ticket-9",
            },
        ).get_json()
        bad = client.post(
            "/api/v1/jobs",
            headers=basic(key),
            json={
                "input": {"bucket": "media", "key": "bad.mp4"},
                "output": {"bucket": "out", "key": "n/{JobId}.jpg"},
                "snapshot": {"mode": "single", "time_ms": 0},
                "pipeline_id": pipeline_id,
            },
        ).get_json()
        received = {}
        deadline = time.monotonic() + 60
        while len(received) < 2 and time.monotonic() < deadline:
            try:
                msg = queue.receive_message(3)
            except MNSServerException as exc:  # MessageNotExist after the long poll: keep waiting
                assert exc.type == "MessageNotExist", exc
                continue
            body = json.loads(msg.message_body)
            received[body["job"]["id"]] = body
            queue.delete_message(msg.receipt_handle)
        assert set(received) == {ok["id"], bad["id"]}, (
            received,
            [services.jobs.get(j["id"]) for j in (ok, bad)],
            (tmp_path / "notifier.log").read_text()[-3000:],
        )
        success, failure = received[ok["id"]], received[bad["id"]]
        # Jobs submitted through the native API announce themselves with the native event.
        assert success["event"] == "job.succeeded" and success["job"]["state"] == "succeeded"
        assert success["job"]["user_data"] == "ticket-9"
        assert [i["requested_ms"] for i in success["job"]["manifest"]["images"]] == [500, 1500]
        assert len(success["urls"]["images"]) == 2
        # The message's URLs are signed: one fetches the image with no credentials at all.
        first_key = success["job"]["manifest"]["images"][0]["key"]
        signed = urlsplit(success["urls"]["images"][0])
        assert signed.path.endswith(first_key) and "signature=" in signed.query
        assert success["job"]["manifest"]["images"][0]["url"] == success["urls"]["images"][0]
        fetched = client.get(f"{signed.path}?{signed.query}")
        assert fetched.status_code == 200 and fetched.data == services.objects.get("out", first_key)
        assert failure["event"] == "job.failed" and failure["job"]["error"]["code"] == "InputUnreadable"
        message = failure["job"]["error"]["message"]
        assert message and str(services.settings.data_dir) not in message and "/objects/" not in message, message
        deadline = time.monotonic() + 10
        while services.jobs.get(ok["id"]).notification is None and time.monotonic() < deadline:
            time.sleep(0.1)
        recorded = services.jobs.get(ok["id"]).notification
        assert recorded is not None and recorded.message_id and recorded.error_code is None
    finally:
        server.shutdown()
        server.server_close()


def test_job_webhook_is_pushed_with_both_signatures(
    redis_url: str,
    tmp_path: Path,
    start_worker: Callable[..., WorkerProcess],
) -> None:
    api_port = free_port()
    settings = fast_settings(redis_url, tmp_path / "data", public_url=f"http://127.0.0.1:{api_port}")
    services = make_services(settings)
    video = make_video(tmp_path / "v.mp4", seconds=2, fps=25, width=320, height=240, gop=25)
    services.objects.put("media", "v.mp4", video.path.read_bytes(), "video/mp4")
    key = services.credentials.create("acme")
    server, _ = serve_wsgi(create_app(settings, services), port=api_port)
    client = create_app(settings, services).test_client()
    secret = client.get("/api/v1/webhook-secret", headers=basic(key)).get_json()["secret"]
    receiver = Receiver(cert_prefix=settings.effective_public_url, webhook_secret=secret)
    notifier = start_notifier(settings, tmp_path)
    try:
        start_worker(settings=settings)
        job = client.post(
            "/api/v1/jobs",
            headers=basic(key),
            json={
                "input": {"bucket": "media", "key": "v.mp4"},
                "output": {"bucket": "out", "key": "h/{JobId}.jpg"},
                "snapshot": {"mode": "single", "time_ms": 400},
                "webhook_url": f"{receiver.url}/hooks/openmps",
            },
        ).get_json()
        deadline = time.monotonic() + 60
        while not receiver.got and time.monotonic() < deadline:
            time.sleep(0.1)
        assert receiver.got, (tmp_path / "notifier.log").read_text()[-3000:]
        push = receiver.got[0]
        assert push.path == "/hooks/openmps"
        assert push.mns_signature_ok and push.webhook_signature_ok
        body = json.loads(push.body)
        assert body["event"] == "job.succeeded" and body["job"]["id"] == job["id"] and len(body["urls"]["images"]) == 1
        assert push.headers["webhook-id"] == services.jobs.get(job["id"]).notification.message_id  # type: ignore[union-attr]
    finally:
        notifier.terminate()
        notifier.wait(15)
        receiver.close()
        server.shutdown()
        server.server_close()
