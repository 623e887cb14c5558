"""An input removed from storage behind the submit path's existence cache: the job it let in is
never lost or stuck, a real worker ends it FAILED with ``InputNotFound``."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from flask.testing import FlaskClient

from app.storage.credentials import AccessKey
from app.wiring import Services
from tests.e2e.conftest import basic
from tests.media import make_video
from tests.workerproc import WorkerProcess


def finished(client: FlaskClient, key: AccessKey, job_id: str, timeout: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        job = client.get(f"/api/v1/jobs/{job_id}", headers=basic(key)).get_json()
        if job["state"] not in ("submitted", "running") or time.monotonic() > deadline:
            return dict(job)
        time.sleep(0.1)


def test_an_input_deleted_after_a_cached_existence_check_fails_its_job_with_input_not_found(
    client: FlaskClient,
    key: AccessKey,
    services: Services,
    tmp_path: Path,
    start_worker: Callable[..., WorkerProcess],
) -> None:
    video = make_video(tmp_path / "v.mp4", seconds=2, fps=25, width=160, height=120, gop=25)
    services.objects.put("media", "v.mp4", video.path.read_bytes(), "video/mp4")
    h = basic(key)
    # A paused pipeline holds the jobs until the input is gone, so no worker sees it before.
    pid = client.post("/api/v1/pipelines", json={"name": "held", "state": "paused"}, headers=h).get_json()["id"]
    job = {
        "input": {"bucket": "media", "key": "v.mp4"},
        "output": {"bucket": "out", "key": "o/{JobId}/{Count}.jpg"},
        "snapshot": {"mode": "single", "time_ms": 500},
        "pipeline_id": pid,
    }
    first = client.post("/api/v1/jobs", json=job, headers=h)
    assert first.status_code == 202, first.get_json()
    services.objects.delete("media", "v.mp4")  # behind the cache's back: straight to the store
    assert services.snapshots.objects.object_exists("media", "v.mp4")  # the cache still says it is there
    second = client.post("/api/v1/jobs", json=job, headers=h)
    assert second.status_code == 202, second.get_json()  # let in on the cached answer
    start_worker()
    assert client.patch(f"/api/v1/pipelines/{pid}", json={"state": "active"}, headers=h).status_code == 200
    for resp in (first, second):
        done = finished(client, key, resp.get_json()["id"])
        assert done["state"] == "failed", done
        assert done["error"]["code"] == "InputNotFound", done["error"]
    assert services.scheduler.depth(pid).queued == 0 and services.scheduler.depth(pid).running == 0
    # Once the cache entry is gone (OPENMPS_CACHE_TTL_S), submission itself refuses the input again.
    services.snapshots.objects.objects.clear()  # type: ignore[attr-defined]
    refused = client.post("/api/v1/jobs", json=job, headers=h)
    assert refused.status_code == 400 and refused.get_json()["code"] == "InputNotFound"
