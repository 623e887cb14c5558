"""URL inputs end to end: the native API -> job store -> a real Celery worker process -> a loopback
HTTP server that serves a real test video with Range support (``tests/urlserver.py``).

With private endpoints allowed (a dev stack), a job reads the right frames from the URL, and a
missing or oversized input fails with its code. With them refused (production's default), a
literal loopback address is a 400 at submission, and a name that resolves to loopback
(``localhost``) is refused by the worker's SSRF guard: the job fails with the guard's reason and
the server never sees a request. Frames are identified by the index the test video draws into
each one; the tenant's token in the URL's query never reaches the worker's log.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient

from app.settings import Settings
from app.storage.credentials import AccessKey
from app.web import create_app
from app.wiring import Services
from tests.e2e.conftest import basic
from tests.e2e.test_snapshot_jobs import captured, finished
from tests.media import VideoFacts, make_video
from tests.stack import make_services
from tests.urlserver import MediaServer
from tests.workerproc import WorkerProcess

TOKEN = "X-Signature=tenant-s3cr3t"
MAX_BYTES = 4 << 20


@pytest.fixture
def video(tmp_path: Path) -> VideoFacts:
    return make_video(tmp_path / "v.mp4", seconds=4, fps=25, width=320, height=240, gop=25)


@pytest.fixture
def media(video: VideoFacts) -> Iterator[MediaServer]:
    server = MediaServer()
    server.objects["/v.mp4"] = video.path.read_bytes()
    server.objects["/big.mp4"] = os.urandom(MAX_BYTES + 1)
    server.start()
    yield server
    server.stop()


def submit_url(client: FlaskClient, key: AccessKey, url: str, snapshot: dict[str, Any]) -> Any:
    body = {"input": {"url": url}, "output": {"bucket": "out", "key": "u/{JobId}/{Count}.jpg"}, "snapshot": snapshot}
    return client.post("/api/v1/jobs", json=body, headers=basic(key))


def test_url_jobs_with_private_endpoints_allowed(
    client: FlaskClient,
    key: AccessKey,
    services: Services,
    settings: Settings,
    media: MediaServer,
    video: VideoFacts,
    start_worker: Callable[..., WorkerProcess],
) -> None:
    worker = start_worker(settings=settings.with_(max_url_input_bytes=MAX_BYTES))
    url = media.url(f"/v.mp4?{TOKEN}")
    points = [40, 1500, 3000]
    ok = submit_url(client, key, url, {"mode": "points", "points_ms": points})
    missing = submit_url(client, key, media.url(f"/nope.mp4?{TOKEN}"), {"mode": "single", "time_ms": 0})
    big = submit_url(client, key, media.url("/big.mp4"), {"mode": "single", "time_ms": 0})
    assert [r.status_code for r in (ok, missing, big)] == [202, 202, 202], ok.get_data(as_text=True)

    done = finished(client, key, ok.get_json()["id"])
    assert done["state"] == "succeeded", done
    assert captured(services, done) == [video.frame_at(t) for t in points]
    assert done["spec"]["input"] == {"url": url}  # its own tenant sees the URL as given
    assert any(n.startswith("input read over HTTP") for n in done["manifest"]["notes"])
    assert all(s.range and not s.range.endswith("-") for s in media.requests_for("/v.mp4"))  # bounded ranges

    gone = finished(client, key, missing.get_json()["id"])
    assert gone["state"] == "failed" and gone["error"]["code"] == "InputNotFound", gone
    assert "404" in gone["error"]["message"]
    large = finished(client, key, big.get_json()["id"])
    assert large["state"] == "failed" and large["error"]["code"] == "InputTooLarge", large
    assert f"{MAX_BYTES + 1} bytes" in large["error"]["message"]
    assert len(media.requests_for("/big.mp4")) == 1  # the first range told the size; nothing else read

    assert TOKEN not in worker.log() and "tenant-s3cr3t" not in worker.log()
    assert f"job {gone['id']} failed: InputNotFound" in worker.log()


def test_private_urls_are_refused_when_not_allowed(
    settings: Settings, media: MediaServer, start_worker: Callable[..., WorkerProcess]
) -> None:
    strict_settings = settings.with_(allow_private_endpoints=False)
    strict = make_services(strict_settings)
    try:
        client = create_app(strict_settings, strict).test_client()
        key = strict.credentials.create("acme")
        literal = submit_url(client, key, media.url("/v.mp4"), {"mode": "single", "time_ms": 0})
        assert literal.status_code == 400, literal.get_data(as_text=True)
        assert literal.get_json()["code"] == "InvalidParameter"
        assert "127.0.0.1 is loopback" in literal.get_json()["message"]

        start_worker(settings=strict_settings)
        named = submit_url(client, key, media.url(f"/v.mp4?{TOKEN}", host="localhost"), {"mode": "single"})
        assert named.status_code == 202, named.get_data(as_text=True)  # a name: the worker resolves it
        job = finished(client, key, named.get_json()["id"])
        assert job["state"] == "failed" and job["error"]["code"] == "InputRefused", job
        assert "localhost resolves to" in job["error"]["message"] and "loopback" in job["error"]["message"]
        assert TOKEN not in job["error"]["message"]
        assert media.seen == []  # refused before any connection
    finally:
        strict.redis.close()
