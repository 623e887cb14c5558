"""Flower sees the workers' tasks: task events are on by default (``OPENMPS_TASK_EVENTS``), and
Flower started the way ``make flower`` starts it, on the same broker, lists each job's task."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx

from app.web import create_app
from app.wiring import Services
from tests.e2e.conftest import basic
from tests.media import make_video
from tests.servers import free_port
from tests.workerproc import REPO, WorkerProcess, settings_env


def test_flower_lists_the_snapshot_tasks(
    services: Services, tmp_path: Path, start_worker: Callable[..., WorkerProcess]
) -> None:
    settings = services.settings
    port = free_port()
    log = open(tmp_path / "flower.log", "ab")  # noqa: SIM115 - closed below
    flower = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "workers.celery_app:celery_app", "flower"]
        + ["--address=127.0.0.1", f"--port={port}"],
        cwd=REPO,
        env={**os.environ, **settings_env(settings), "PYTHONPATH": str(REPO), "FLOWER_UNAUTHENTICATED_API": "true"},
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{base}/healthcheck", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert flower.poll() is None and time.monotonic() < deadline, (tmp_path / "flower.log").read_text()
            time.sleep(0.2)
        start_worker()
        video = make_video(tmp_path / "v.mp4", seconds=1, fps=25, width=160, height=120, gop=25)
        services.objects.put("media", "v.mp4", video.path.read_bytes(), "video/mp4")
        key = services.credentials.create("acme")
        body = {
            "input": {"bucket": "media", "key": "v.mp4"},
            "output": {"bucket": "out", "key": "o/{JobId}/{Count}.jpg"},
            "snapshot": {"mode": "single", "time_ms": 0},
        }
        client = create_app(settings, services).test_client()
        job = client.post("/api/v1/jobs?wait=10", json=body, headers=basic(key)).get_json()
        assert job["state"] == "succeeded", job
        deadline = time.monotonic() + 30
        while True:
            tasks = httpx.get(f"{base}/api/tasks", timeout=5).json()
            seen = [
                t
                for t in tasks.values()
                if t.get("name") == "openmps.snapshot.run" and t.get("args") == f"['{job['id']}']"
            ]
            if seen and seen[0]["state"] == "SUCCESS":
                break
            assert time.monotonic() < deadline, f"Flower never saw the task: {tasks}"
            time.sleep(0.3)
        assert seen[0]["result"] == "'started'"
    finally:
        flower.terminate()
        flower.wait(15)
        log.close()
