"""Fault injection (``make test-slow``): Redis crashes lose no accepted job.

Uses its own redis-server (AOF, fsync always) so killing it does not disturb other tests.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from app.core.states import JobState
from app.web import create_app
from tests.e2e.conftest import basic
from tests.media import make_video
from tests.servers import RedisServer
from tests.stack import fast_settings, make_services
from tests.workerproc import WorkerProcess

pytestmark = pytest.mark.slow


def test_redis_crash_loses_no_accepted_job(tmp_path: Path) -> None:
    server = RedisServer(tmp_path / "redis")
    server.start()
    settings = fast_settings(server.url, tmp_path / "data")
    services = make_services(settings)
    video = make_video(tmp_path / "v.mp4", seconds=6, fps=25, width=640, height=360, gop=50)
    services.objects.put("media", "v.mp4", video.path.read_bytes(), "video/mp4")
    key = services.credentials.create("acme")
    client = create_app(settings, services).test_client()
    worker = WorkerProcess(settings, tmp_path).start()
    try:
        ids = []
        for i in range(12):
            resp = client.post(
                "/api/v1/jobs",
                headers=basic(key),
                json={
                    "input": {"bucket": "media", "key": "v.mp4"},
                    "output": {"bucket": "out", "key": f"o/{i}/{{Count}}.png"},
                    "snapshot": {"mode": "average", "count": 12, "format": "png"},
                },
            )
            assert resp.status_code == 202
            ids.append(resp.get_json()["id"])
        deadline = time.monotonic() + 30
        while not any(services.jobs.get(i).state is JobState.RUNNING for i in ids):
            assert time.monotonic() < deadline, worker.log()
            time.sleep(0.05)
        server.kill()  # crash mid-job: no shutdown, no final save beyond the AOF
        time.sleep(1.0)
        server.start()
        deadline = time.monotonic() + 180
        while True:
            states = [services.jobs.get(i).state for i in ids]
            if all(s is JobState.SUCCEEDED for s in states):
                break
            assert time.monotonic() < deadline, (states, worker.log())
            time.sleep(0.25)
        for i in ids:
            assert len(services.jobs.get(i).manifest.images) == 12
    finally:
        worker.stop()
        server.stop()
