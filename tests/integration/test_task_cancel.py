"""The task's stop paths run in-process: a cancel while storage fails transiently, and an attempt
that lost its lease to a takeover.

Runs ``workers.tasks.execute`` in this process against a real redis-server (and, for the first, an
S3 endpoint nobody listens on), so the retry loop, the Watch thread and the lease meet for real.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

from app.core.jobs import SnapshotJob
from app.core.pipelines import DEFAULT_PIPELINE_ID
from app.core.specs import Average, ImageFormat, ObjectRef, OutputTarget, SingleTime, SnapshotSpec
from app.core.states import JobState
from app.settings import Settings
from app.storage import keys
from app.storage.jobs import StartOutcome, from_ms, now_ms
from app.wiring import Services, build_services, ensure_default_pipeline
from tests.media import make_video
from tests.servers import free_port
from tests.stack import TEST_SECRET_KEY, fast_settings, make_services
from workers.tasks import execute


def run_in_background(
    services: Services, job_id: str, spec: SnapshotSpec, *, worker: str
) -> tuple[SnapshotJob, threading.Thread, list[StartOutcome]]:
    """Store a job on the default pipeline and run the task's ``execute`` for it in a thread."""
    job = SnapshotJob(
        id=job_id, tenant="acme", pipeline_id=DEFAULT_PIPELINE_ID, spec=spec, created_at=from_ms(str(now_ms()))
    )
    services.jobs.create(job, "fp")
    outcome: list[StartOutcome] = []
    runner = threading.Thread(target=lambda: outcome.append(execute(services, job.id, worker=worker)))
    runner.start()
    return job, runner, outcome


def test_cancel_during_transient_storage_retries_ends_canceled_not_failed(redis_url: str, tmp_path: Path) -> None:
    settings = Settings(
        redis_url=redis_url,
        data_dir=tmp_path,
        storage="s3",
        s3_endpoint=f"127.0.0.1:{free_port()}",
        s3_access_key="k",
        s3_secret_key="s",
        s3_region="us-east-1",
        lease_ttl_s=3.0,
        heartbeat_interval_s=0.5,
        secret_keys=(TEST_SECRET_KEY,),
    )
    services = build_services(settings)
    ensure_default_pipeline(services)
    spec = SnapshotSpec(input=ObjectRef("media", "v.mp4"), timing=SingleTime(0), output=OutputTarget("out", "x.jpg"))
    job, runner, outcome = run_in_background(services, "j-retry", spec, worker="test:1")
    deadline = time.monotonic() + 30
    while services.jobs.state_of(job.id) is not JobState.RUNNING:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    services.snapshots.cancel("acme", job.id)
    runner.join(60)
    done = services.jobs.get(job.id)
    assert outcome == [StartOutcome.STARTED]
    assert done.state is JobState.CANCELED, (done.state, done.error_code, done.error_message)
    services.redis.close()


def test_an_attempt_that_lost_its_lease_stops_and_leaves_state_and_outputs_alone(
    redis_url: str, tmp_path: Path
) -> None:
    """A worker that stalled past its lease was taken over: when it wakes, it must not keep
    writing the job's keys, delete them, or finish the job the newer attempt now owns."""
    settings = fast_settings(redis_url, tmp_path / "data")
    services = make_services(settings)
    video = make_video(tmp_path / "v.mp4", seconds=6, fps=25, width=1280, height=720, gop=150)
    services.objects.put("media", "v.mp4", video.path.read_bytes(), "video/mp4")
    spec = SnapshotSpec(
        input=ObjectRef("media", "v.mp4"),
        timing=Average(count=40),
        output=OutputTarget("out", "s/{index:5}.png"),
        format=ImageFormat.PNG,
    )
    job, runner, outcome = run_in_background(services, "j-stale", spec, worker="stale:1")
    deadline = time.monotonic() + 30
    while services.jobs.get(job.id).progress_done < 2:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    services.redis.delete(keys.lease(job.id))  # the lease ran out while this worker stalled...
    newer = services.jobs.start(job.id, worker="newer:1", lease_ttl_ms=60_000, max_attempts=3)
    assert newer.outcome is StartOutcome.TAKEOVER  # ...and another worker took the job over
    runner.join(60)
    assert not runner.is_alive() and outcome == [StartOutcome.STARTED]
    after = services.jobs.get(job.id)
    assert after.state is JobState.RUNNING and after.attempts == 2  # still the newer attempt's job
    assert 2 <= len(services.objects.list_keys("out", "s/")) < 40  # stopped early, deleted nothing
    assert services.redis.get(keys.lease(job.id)) == newer.lease_token
    services.redis.close()
