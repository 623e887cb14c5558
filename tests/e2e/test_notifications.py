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
from tests.media import make_not_a_video, make_video
from tests.servers import serve_wsgi
from tests.workerproc import REPO, WorkerProcess, settings_env


@pytest.fixture
def notifier(settings: Settings, tmp_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    log = open(tmp_path / "notifier.log", "ab")  # noqa: SIM115
    proc = subprocess.Popen([sys.executable, "-m", "app.notify.notifier"], cwd=REPO, stdout=log, stderr=subprocess.STDOUT,
                            env={**os.environ, **settings_env(settings), "PYTHONPATH": str(REPO)})
    yield proc
    proc.terminate()
    proc.wait(15)


def test_pipeline_queue_receives_completion_messages(
    client: FlaskClient, key: AccessKey, services: Services, tmp_path: Path,
    start_worker: Callable[..., WorkerProcess], notifier: subprocess.Popen[bytes],
) -> None:
    video = make_video(tmp_path / "v.mp4", seconds=3, fps=25, width=320, height=240, gop=25)
    services.objects.put("media", "v.mp4", video.path.read_bytes(), "video/mp4")
    services.objects.put("media", "bad.mp4", make_not_a_video(tmp_path / "bad.mp4").read_bytes(), "video/mp4")
    server, url = serve_wsgi(create_app(services.settings, services))
    try:
        queue = Account(url, key.id, key.secret).get_queue("snap-done")
        queue.create(QueueMeta())
        queue.set_encoding(False)  # MPS writes raw JSON into the queue, as Alibaba's consumer samples expect
        resp = client.post("/api/v1/pipelines", headers=basic(key), json={"name": "notified", "notify": {"queue": "snap-done"}})
        assert resp.status_code == 201, resp.get_data(as_text=True)
        pipeline_id = resp.get_json()["id"]
        start_worker()
        ok = client.post("/api/v1/jobs", headers=basic(key), json={
            "input": {"bucket": "media", "key": "v.mp4"}, "output": {"bucket": "out", "key": "n/{JobId}/{Count}.jpg"},
            "snapshot": {"mode": "points", "points_ms": [500, 1500]}, "pipeline_id": pipeline_id, "user_data": "ticket-9"}).get_json()
        bad = client.post("/api/v1/jobs", headers=basic(key), json={
            "input": {"bucket": "media", "key": "bad.mp4"}, "output": {"bucket": "out", "key": "n/{JobId}.jpg"},
            "snapshot": {"mode": "single", "time_ms": 0}, "pipeline_id": pipeline_id}).get_json()
        received = {}
        deadline = time.monotonic() + 60
        while len(received) < 2 and time.monotonic() < deadline:
            try:
                msg = queue.receive_message(3)
            except MNSServerException as exc:  # MessageNotExist after the long poll: keep waiting
                assert exc.type == "MessageNotExist", exc
                continue
            body = json.loads(msg.message_body)
            received[body["JobId"]] = body
            queue.delete_message(msg.receipt_handle)
        assert set(received) == {ok["id"], bad["id"]}, (
            received, [services.jobs.get(j["id"]) for j in (ok, bad)], (tmp_path / "notifier.log").read_text()[-3000:])
        success, failure = received[ok["id"]], received[bad["id"]]
        assert success["State"] == success["state"] == "Success" and success["Type"] == "Snapshot"
        assert success["UserData"] == success["userData"] == "ticket-9"
        assert success["Count"] == 2 and success["TimeArray"] == [500, 1500]
        assert failure["State"] == "Fail" and failure["Code"] == failure["code"] == "InputUnreadable" and failure["Msg"]
        deadline = time.monotonic() + 10
        while services.jobs.get(ok["id"]).notification is None and time.monotonic() < deadline:
            time.sleep(0.1)
        recorded = services.jobs.get(ok["id"]).notification
        assert recorded is not None and recorded.message_id and recorded.error_code is None
    finally:
        server.shutdown()
        server.server_close()
