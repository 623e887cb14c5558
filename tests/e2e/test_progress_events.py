"""Progress events across the whole stack: API -> a real worker process -> the push loop of a real
notifier process -> a loopback receiver that verifies MNS's and Standard Webhooks' signatures
(``standardwebhooks``) on every request. Private endpoints are allowed in the test settings."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

from app.settings import Settings
from app.web import create_app
from app.wiring import Services
from tests.e2e.conftest import basic
from tests.e2e.test_notifications import start_notifier
from tests.integration.notify.receiver import Received, Receiver
from tests.media import make_video
from tests.servers import free_port, serve_wsgi
from tests.stack import fast_settings, make_services
from tests.workerproc import WorkerProcess


def test_a_job_of_twenty_images_reports_every_five_then_completes(
    redis_url: str, tmp_path: Path, start_worker: Callable[..., WorkerProcess]
) -> None:
    api_port = free_port()
    settings: Settings = fast_settings(redis_url, tmp_path / "data", public_url=f"http://127.0.0.1:{api_port}")
    services: Services = make_services(settings)
    # Large frames, one key frame and PNG: a job of a few seconds, so its events have time to go out
    # before its completion event supersedes them (on a loaded machine as well).
    video = make_video(tmp_path / "v.mp4", seconds=8, fps=25, width=1280, height=720, gop=250)
    services.objects.put("media", "v.mp4", video.path.read_bytes(), "video/mp4")
    key = services.credentials.create("acme")
    server, _ = serve_wsgi(create_app(settings, services), port=api_port)
    client = create_app(settings, services).test_client()
    secret = client.get("/api/v1/webhook-secret", headers=basic(key)).get_json()["secret"]
    receiver = Receiver(cert_prefix=settings.effective_public_url, webhook_secret=secret)
    notifier = start_notifier(settings, tmp_path)
    try:
        start_worker(settings=settings)
        _wait_for_text(tmp_path / "notifier.log", "running")  # its push loop is up
        resp = client.post(
            "/api/v1/jobs",
            headers=basic(key),
            json={
                "input": {"bucket": "media", "key": "v.mp4"},
                "output": {"bucket": "out", "key": "p/{JobId}/{Count}.jpg"},
                "snapshot": {"mode": "series", "start_ms": 0, "interval_s": 0.4, "count": 20, "format": "png"},
                "webhook_url": f"{receiver.url}/hooks/done",
                "progress": {"webhook_url": f"{receiver.url}/hooks/progress", "every_images": 5},
            },
        )
        assert resp.status_code == 202, resp.get_data(as_text=True)
        job = resp.get_json()
        assert job["progress"] == {
            "done": 0,
            "total": 20,
            "webhook_url": f"{receiver.url}/hooks/progress",
            "every_images": 5,
            "every_s": None,
        }

        def at(path: str) -> list[Received]:
            return [r for r in receiver.got if r.path == path]

        deadline = time.monotonic() + 90
        while len(at("/hooks/done")) + len(at("/hooks/progress")) < 2 or not _has_completion(at("/hooks/progress")):
            assert time.monotonic() < deadline, (tmp_path / "notifier.log").read_text()[-3000:]
            time.sleep(0.1)
        time.sleep(1.0)  # anything that would follow the completion event arrives within this
        stored = services.jobs.get(job["id"])
        assert stored.state.value == "succeeded" and len(stored.manifest.images) == 20
        assert stored.started_at and stored.finished_at
        print(f"job ran {(stored.finished_at - stored.started_at).total_seconds():.2f} s")

        got = at("/hooks/progress")
        assert all(r.webhook_signature_ok and r.mns_signature_ok for r in receiver.got)
        events = [json.loads(r.body) for r in got]
        *progress, last = events
        assert last["event"] == "job.succeeded" and last["job"]["id"] == job["id"]  # the completion comes last
        assert progress, "no progress event arrived"
        for event in progress:
            assert event.keys() == {"type", "event", "job_id", "images_done", "images_total", "state", "at"}
            assert event["type"] == event["event"] == "job.progress"
            assert (event["job_id"], event["images_total"], event["state"]) == (job["id"], 20, "running")
        done = [e["images_done"] for e in progress]
        print("progress events at images", done)
        assert all(n % 5 == 0 and 5 <= n <= 20 for n in done), done  # exactly every 5 images, never between
        assert all(b - a >= 5 for a, b in zip(done, done[1:])), done  # increasing, never closer than asked
        assert [e["at"] for e in progress] == sorted(e["at"] for e in progress)
        assert len({r.headers["webhook-id"] for r in got}) == len(got)  # one message per event
        (completion,) = at("/hooks/done")  # the job's own webhook: only the completion, once
        assert json.loads(completion.body) == last
        assert stored.notification is not None and stored.notification.error_code is None
    finally:
        notifier.terminate()
        notifier.wait(15)
        receiver.close()
        server.shutdown()
        server.server_close()


def _wait_for_text(path: Path, text: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not (path.exists() and text in path.read_text()):
        assert time.monotonic() < deadline, f"{path.name} never said {text!r}"
        time.sleep(0.05)


def _has_completion(got: list[Received]) -> bool:
    return any(json.loads(r.body).get("event") == "job.succeeded" for r in got)
