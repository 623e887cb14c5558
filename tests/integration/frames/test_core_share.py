"""The task holds its job's share of the host's cores while the job runs, and lets go however the
job ends: ``workers.tasks.execute`` in this process against a real redis-server, its jobs counted
where every worker on the host counts them (``workers.pipeline.core_share``)."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from app.core.jobs import SnapshotJob
from app.core.pipelines import DEFAULT_PIPELINE_ID
from app.core.specs import Average, ObjectRef, OutputTarget, SingleTime, SnapshotSpec
from app.core.states import JobState
from app.settings import Settings
from app.storage.jobs import from_ms, now_ms
from tests.media import make_video
from tests.stack import make_services
from workers.pipeline import core_share
from workers.tasks import execute


def submit(settings: Settings, job_id: str, spec: SnapshotSpec) -> SnapshotJob:
    services = make_services(settings)
    job = SnapshotJob(
        id=job_id, tenant="acme", pipeline_id=DEFAULT_PIPELINE_ID, spec=spec, created_at=from_ms(str(now_ms()))
    )
    services.jobs.create(job, "fp")
    services.redis.close()
    return job


def test_a_running_job_is_counted_on_its_host_until_it_ends(settings: Settings, tmp_path: Path) -> None:
    services = make_services(settings)
    video = make_video(tmp_path / "v.mp4", seconds=8, fps=25, width=640, height=360, gop=50)
    services.objects.put("media", "v.mp4", video.path.read_bytes(), "video/mp4")
    spec = SnapshotSpec(ObjectRef("media", "v.mp4"), Average(60), OutputTarget("out", "c/{index:5}.jpg"))
    job = submit(settings, "j-counted", spec)
    host = core_share(settings).jobs
    seen: list[int] = []
    runner = threading.Thread(target=lambda: execute(services, job.id, worker="test:1"))
    runner.start()
    while runner.is_alive():
        seen.append(host.count())
        time.sleep(0.005)
    runner.join()
    assert services.jobs.get(job.id).state is JobState.SUCCEEDED
    assert 1 in seen and max(seen) == 1, seen
    assert host.count() == 0 and list(host.directory.iterdir()) == []
    services.redis.close()


def test_a_failed_job_lets_go_of_its_share(settings: Settings) -> None:
    services = make_services(settings)
    spec = SnapshotSpec(ObjectRef("media", "missing.mp4"), SingleTime(0), OutputTarget("out", "m.jpg"))
    job = submit(settings, "j-missing", spec)
    host = core_share(settings).jobs
    execute(services, job.id, worker="test:1")
    done = services.jobs.get(job.id)
    assert done.state is JobState.FAILED and done.error_code == "InputNotFound", done.error_code
    assert host.directory.is_dir()  # it was registered...
    assert host.count() == 0 and list(host.directory.iterdir()) == []  # ...and let go
    services.redis.close()
