"""Retention end to end: with a shortened ``OPENMPS_JOB_RETENTION_DAYS`` a job a real worker ran
is gone afterwards (hash, index entries, idempotency record), swept by the workers' periodic pass,
while a queued and a running job are untouched."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from app.settings import Settings
from app.storage import keys
from app.web import create_app
from app.wiring import Services
from tests.e2e.conftest import basic
from tests.media import make_video
from tests.stack import make_services
from tests.workerproc import WorkerProcess

RETENTION_S = 2.0


def job_body(pipeline_id: str, token: str | None = None) -> dict[str, object]:
    body: dict[str, object] = {
        "input": {"bucket": "media", "key": "v.mp4"},
        "output": {"bucket": "out", "key": "r/{JobId}.jpg"},
        "snapshot": {"mode": "single", "time_ms": 100},
        "pipeline_id": pipeline_id,
    }
    if token:
        body["client_token"] = token
    return body


def index_keys(pipeline_id: str, state: str) -> list[str]:
    return [
        keys.tenant_jobs("acme"),
        keys.tenant_state_jobs("acme", state),
        keys.tenant_pipeline_jobs("acme", pipeline_id),
    ]


def test_finished_jobs_expire_and_queued_and_running_ones_stay(
    settings: Settings, tmp_path: Path, start_worker: Callable[..., WorkerProcess]
) -> None:
    short = settings.with_(job_retention_s=RETENTION_S)
    services: Services = make_services(short)
    video = make_video(tmp_path / "v.mp4", seconds=1, fps=25, width=160, height=120, gop=25)
    services.objects.put("media", "v.mp4", video.path.read_bytes(), "video/mp4")
    key = services.credentials.create("acme")
    client = create_app(short, services).test_client()
    paused = client.post("/api/v1/pipelines", headers=basic(key), json={"name": "held", "state": "paused"}).get_json()
    gpu = client.post("/api/v1/pipelines", headers=basic(key), json={"name": "gpu", "resource_class": "gpu"}).get_json()
    queued = client.post("/api/v1/jobs", headers=basic(key), json=job_body(paused["id"], "tok-q")).get_json()
    running = client.post("/api/v1/jobs", headers=basic(key), json=job_body(gpu["id"], "tok-r")).get_json()
    # No gpu worker runs here: this job is started by hand, as a gpu worker elsewhere would have.
    assert services.jobs.start(running["id"], worker="gpu-elsewhere", lease_ttl_ms=120_000, max_attempts=3).lease_token
    start_worker(settings=short)
    done = client.post("/api/v1/jobs?wait=10", headers=basic(key), json=job_body("default", "tok-d")).get_json()
    assert done["state"] == "succeeded", done
    r = services.redis
    assert r.zscore(keys.tenant_jobs("acme"), done["id"]) is not None

    deadline = time.monotonic() + 30
    while any(r.zscore(k, done["id"]) is not None for k in index_keys("default", "succeeded")):
        assert time.monotonic() < deadline, "the finished job was never swept"
        time.sleep(0.2)
    assert not r.exists(keys.job(done["id"]), keys.written(done["id"]), keys.idempotency("acme", "tok-d"))
    assert client.get(f"/api/v1/jobs/{done['id']}", headers=basic(key)).status_code == 404

    for job, pipeline_id, state, token in (
        (queued, paused["id"], "submitted", "tok-q"),
        (running, gpu["id"], "running", "tok-r"),
    ):
        assert services.jobs.state_of(job["id"]).value == state
        assert r.pttl(keys.job(job["id"])) == -1 and r.pttl(keys.idempotency("acme", token)) == -1
        assert all(r.zscore(k, job["id"]) is not None for k in index_keys(pipeline_id, state)), state
