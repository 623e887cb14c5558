"""Prometheus metrics and readiness against the real stack: after a known set of jobs (succeeded,
failed, queued on a paused pipeline) the API's ``/metrics`` reports exactly those counts and depths,
a worker's own ``/metrics`` (its pool children's files merged by its main process) reports exactly
those attempts, the notifier's reports its push; gunicorn with two workers reports the same totals
whichever process answers; ``/readyz`` follows Redis down and back up."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from app.core.pipelines import PipelineState
from app.core.service import PipelineChanges
from app.settings import Settings
from app.web import create_app
from app.wiring import Services
from tests.e2e.conftest import basic
from tests.integration.notify.receiver import Receiver
from tests.media import make_video
from tests.servers import RedisServer, free_port, serve_wsgi
from tests.stack import fast_settings, make_services
from tests.workerproc import REPO, WorkerProcess, settings_env

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(url: str) -> Samples:
    resp = httpx.get(url, timeout=10)
    assert resp.status_code == 200, resp.text
    out: Samples = {}
    for family in text_string_to_metric_families(resp.text):
        for s in family.samples:
            out[(s.name, frozenset(s.labels.items()))] = s.value
    return out


def value(samples: Samples, name: str, **labels: str) -> float:
    """The sample with exactly these labels (a missing one is 0, as Prometheus treats absence)."""
    return samples.get((name, frozenset(labels.items())), 0.0)


def matching(samples: Samples, name: str, **labels: str) -> list[tuple[dict[str, str], float]]:
    want = set(labels.items())
    return [(dict(lab), v) for (n, lab), v in samples.items() if n == name and want <= set(lab)]


def wait_until(check: Callable[[], bool], what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def spawn(args: list[str], settings: Settings, log: Path, **extra: str) -> subprocess.Popen[bytes]:
    out = open(log, "ab")  # noqa: SIM115 - closed by the OS when the child exits
    env = {**os.environ, **settings_env(settings), "PYTHONPATH": str(REPO), **extra}
    return subprocess.Popen(args, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)


def test_metrics_report_exactly_the_jobs_run(
    redis_url: str, tmp_path: Path, start_worker: Callable[..., WorkerProcess]
) -> None:
    api_port, worker_port, notifier_port = free_port(), free_port(), free_port()
    settings = fast_settings(redis_url, tmp_path / "data", public_url=f"http://127.0.0.1:{api_port}")
    services = make_services(settings)
    video = make_video(tmp_path / "v.mp4", seconds=3, fps=25, width=160, height=120, gop=25)
    services.objects.put("media", "v.mp4", video.path.read_bytes(), "video/mp4")
    key = services.credentials.create("acme")
    work = services.snapshots.create_pipeline("acme", "work")
    held = services.snapshots.create_pipeline("acme", "held")
    services.snapshots.update_pipeline("acme", held.id, PipelineChanges(state=PipelineState.PAUSED))
    server, url = serve_wsgi(create_app(settings, services), port=api_port)
    secret = httpx.get(f"{url}/api/v1/webhook-secret", headers=basic(key)).json()["secret"]
    receiver = Receiver(cert_prefix=settings.effective_public_url, webhook_secret=secret)
    notifier = spawn(
        [sys.executable, "-m", "app.notify.notifier"],
        settings,
        tmp_path / "notifier.log",
        OPENMPS_METRICS_PORT=str(notifier_port),
    )
    start_worker(
        settings=settings,
        concurrency=2,
        extra_env={
            "OPENMPS_METRICS_PORT": str(worker_port),
            "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "metrics-worker"),
            "OPENMPS_HOST": "127.0.0.1",
        },
    )

    def submit(pipeline: str, snapshot: dict[str, object], **extra: object) -> str:
        body = {
            "input": {"bucket": "media", "key": "v.mp4"},
            "output": {"bucket": "out", "key": "o/{JobId}/{Count}.jpg"},
            "snapshot": snapshot,
            "pipeline_id": pipeline,
            **extra,
        }
        resp = httpx.post(f"{url}/api/v1/jobs", json=body, headers=basic(key), timeout=10)
        assert resp.status_code == 202, resp.text
        return str(resp.json()["id"])

    try:
        t0 = time.time()
        waiting = [submit(held.id, {"mode": "single", "time_ms": 0}) for _ in range(4)]
        series = {"mode": "series", "start_ms": 0, "interval_s": 0.5, "count": 3}
        done = [submit(work.id, series, webhook_url=f"{receiver.url}/hook"), submit(work.id, series)]
        failed = submit(work.id, {"mode": "single", "time_ms": 60_000})
        wait_until(lambda: all(services.jobs.get(j).is_terminal for j in [*done, failed]), "the work pipeline's jobs")
        wait_until(lambda: len(receiver.got) == 1, "the webhook push")
        api = scrape(f"{url}/metrics")
        elapsed = time.time() - t0

        assert value(api, "openmps_jobs", pipeline=work.id, state="succeeded") == 2
        assert value(api, "openmps_jobs", pipeline=work.id, state="failed") == 1
        assert value(api, "openmps_jobs", pipeline=held.id, state="submitted") == 4
        assert sum(v for _, v in matching(api, "openmps_jobs")) == 7  # nothing else anywhere
        labels = {"resource_class": "cpu"}
        assert value(api, "openmps_queue_depth", pipeline=held.id, pipeline_state="paused", **labels) == 4
        assert value(api, "openmps_queue_depth", pipeline=work.id, pipeline_state="active", **labels) == 0
        assert value(api, "openmps_queue_depth", pipeline="default", pipeline_state="active", **labels) == 0
        age = value(api, "openmps_queue_oldest_age_seconds", pipeline=held.id, pipeline_state="paused", **labels)
        assert 0 < age <= elapsed + 1
        assert value(api, "openmps_queue_oldest_age_seconds", pipeline=work.id, pipeline_state="active", **labels) == 0
        assert value(api, "openmps_workers_alive", resource_class="cpu") == 1
        assert value(api, "openmps_worker_slots", resource_class="cpu") == 2
        assert value(api, "openmps_workers_alive", resource_class="gpu") == 0
        assert value(api, "openmps_fleet_busy_ratio", resource_class="cpu") == 0
        assert value(api, "openmps_http_requests_total", surface="native", status="202") == 7

        worker = scrape(f"http://127.0.0.1:{worker_port}/metrics")
        assert value(worker, "openmps_job_duration_seconds_count", resource_class="cpu", state="succeeded") == 2
        assert value(worker, "openmps_job_duration_seconds_count", resource_class="cpu", state="failed") == 1
        assert value(worker, "openmps_images_total", resource_class="cpu") == 6
        assert value(worker, "openmps_job_images_per_second_count", resource_class="cpu") == 2
        for stage in ("decode", "encode", "upload"):
            assert value(worker, "openmps_job_stage_seconds_count", resource_class="cpu", stage=stage) == 3
        assert value(worker, "openmps_job_stage_seconds_sum", resource_class="cpu", stage="decode") > 0
        assert value(worker, "openmps_worker_pool_slots") == 2
        assert value(worker, "openmps_worker_busy_ratio") == 0
        assert value(worker, "openmps_worker_busy_seconds_total") > 0
        assert not matching(worker, "openmps_jobs")  # store facts come from the API only

        notes = scrape(f"http://127.0.0.1:{notifier_port}/metrics")
        assert value(notes, "openmps_notify_attempts_total", outcome="ok") == 1
        assert value(notes, "openmps_notify_attempts_total", outcome="failed") == 0

        # Resume: the paused jobs run, and both views move to match.
        services.snapshots.update_pipeline("acme", held.id, PipelineChanges(state=PipelineState.ACTIVE))
        wait_until(lambda: all(services.jobs.get(j).is_terminal for j in waiting), "the resumed jobs")
        api = scrape(f"{url}/metrics")
        assert value(api, "openmps_jobs", pipeline=held.id, state="succeeded") == 4
        assert value(api, "openmps_queue_depth", pipeline=held.id, pipeline_state="active", **labels) == 0
        worker = scrape(f"http://127.0.0.1:{worker_port}/metrics")
        assert value(worker, "openmps_job_duration_seconds_count", resource_class="cpu", state="succeeded") == 6
    finally:
        notifier.terminate()
        notifier.wait(15)
        receiver.close()
        server.shutdown()
        server.server_close()


def test_gunicorn_workers_report_one_set_of_totals(redis_url: str, tmp_path: Path, services: Services) -> None:
    """Two gunicorn workers, multiprocess files: every scrape, whichever worker answers it, counts
    every request either worker served."""
    port = free_port()
    settings = services.settings.with_(port=port)
    proc = spawn(
        [sys.executable, "-m", "gunicorn", "-c", "python:app.web.gunicorn_config", "--workers", "2"]
        + ["--threads", "1", "--bind", f"127.0.0.1:{port}", "app.web:create_app()"],
        settings,
        tmp_path / "gunicorn.log",
        PROMETHEUS_MULTIPROC_DIR=str(tmp_path / "metrics-web"),
    )
    try:
        base = f"http://127.0.0.1:{port}"

        def up() -> bool:
            try:
                return httpx.get(f"{base}/healthz", timeout=1).status_code == 200
            except httpx.HTTPError:
                return False

        wait_until(up, "gunicorn", timeout=30)

        def unauthenticated(_: int) -> int:
            return httpx.get(f"{base}/api/v1/jobs", timeout=5).status_code  # a new connection each

        with ThreadPoolExecutor(8) as pool:  # one thread per worker: both must take connections
            assert set(pool.map(unauthenticated, range(40))) == {401}
        assert len(_pid_files(tmp_path / "metrics-web")) == 2, "both gunicorn workers served requests"
        for _ in range(6):
            samples = scrape(f"{base}/metrics")
            assert value(samples, "openmps_http_requests_total", surface="native", status="401") == 40
    finally:
        proc.terminate()
        proc.wait(15)


def _pid_files(directory: Path) -> frozenset[str]:
    return frozenset(p.name.rsplit("_", 1)[-1] for p in directory.glob("counter_*.db"))


def test_readyz_follows_redis_down_and_back(tmp_path: Path, start_worker: Callable[..., WorkerProcess]) -> None:
    redis_server = RedisServer(tmp_path / "redis")
    redis_server.start()
    try:
        settings = fast_settings(redis_server.url, tmp_path / "data")
        services = make_services(settings)
        client = create_app(settings, services).test_client()
        first = client.get("/readyz")
        assert (
            first.status_code == 503
            and first.get_json()["checks"]["workers:cpu"] == "failed: RuntimeError: no live cpu worker"
        )
        start_worker(settings=settings)
        wait_until(lambda: client.get("/readyz").status_code == 200, "ready with a live worker")
        assert client.get("/readyz").get_json() == {
            "status": "ready",
            "checks": {"redis": "ok", "objects": "ok", "workers:cpu": "ok (1 alive)"},
        }

        redis_server.stop()
        down = client.get("/readyz")
        assert down.status_code == 503 and down.get_json()["status"] == "not ready"
        assert down.get_json()["checks"]["redis"].startswith("failed: ConnectionError")
        assert client.get("/healthz").status_code == 200  # liveness does not depend on Redis

        redis_server.start()  # same port, same AOF
        wait_until(lambda: client.get("/readyz").status_code == 200, "ready again once Redis is back")
    finally:
        redis_server.stop()


@pytest.mark.parametrize("classes", ["cpu,gpu"])
def test_readyz_needs_every_configured_worker_class(services: Services, classes: str) -> None:
    settings = services.settings.with_(ready_worker_classes=tuple(classes.split(",")))
    services.fleet.beat("cpu", "cpu@host", concurrency=2, ttl_s=30)
    body = create_app(settings, services).test_client().get("/readyz").get_json()
    assert body["status"] == "not ready"
    assert body["checks"]["workers:cpu"] == "ok (1 alive)" and "no live gpu worker" in body["checks"]["workers:gpu"]
    services.fleet.beat("gpu", "gpu@host", concurrency=1, ttl_s=30)
    assert create_app(settings, services).test_client().get("/readyz").status_code == 200
    services.fleet.leave("gpu", "gpu@host")
    assert create_app(settings, services).test_client().get("/readyz").status_code == 503


def test_a_metrics_token_keeps_the_series_from_anyone_without_it(services: Services) -> None:
    """The series name every tenant's pipelines: with OPENMPS_METRICS_TOKEN set, a tenant's own
    credentials, a wrong token or none get a 401 and no series; the scraper's token gets them."""
    token = "scrape-" + "x" * 30
    client = create_app(services.settings.with_(metrics_token=token), services).test_client()
    refused = [
        client.get("/metrics"),
        client.get("/metrics", headers={"Authorization": "Bearer wrong"}),
        client.get("/metrics", headers={"Authorization": f"Basic {token}"}),
        client.get("/metrics", headers={"Authorization": f"Bearer {token}x"}),
    ]
    for resp in refused:
        assert resp.status_code == 401 and resp.headers["WWW-Authenticate"].startswith("Bearer")
        assert b"openmps_" not in resp.data and resp.get_json()["code"] == "Unauthenticated"
    allowed = client.get("/metrics", headers={"Authorization": f"Bearer {token}"})
    assert allowed.status_code == 200 and b"openmps_queue_depth" in allowed.data
    open_again = create_app(services.settings, services).test_client().get("/metrics")  # unset: open
    assert open_again.status_code == 200
