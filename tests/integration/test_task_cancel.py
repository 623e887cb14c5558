"""The task's cancel path when the job cannot make progress: storage failing transiently.

Runs ``workers.tasks.execute`` in this process (a real redis-server, an S3 endpoint nobody
listens on) so the retry loop, the Watch thread and the cancel request meet for real.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

from app.core.jobs import SnapshotJob
from app.core.pipelines import DEFAULT_PIPELINE_ID
from app.core.specs import ObjectRef, OutputTarget, SingleTime, SnapshotSpec
from app.core.states import JobState
from app.settings import Settings
from app.storage.jobs import StartOutcome, from_ms, now_ms
from app.wiring import build_services, ensure_default_pipeline
from tests.servers import free_port
from workers.tasks import execute


def test_cancel_during_transient_storage_retries_ends_canceled_not_failed(redis_url: str, tmp_path: Path) -> None:
    settings = Settings(redis_url=redis_url, data_dir=tmp_path, storage="s3", s3_endpoint=f"127.0.0.1:{free_port()}",
                        s3_access_key="k", s3_secret_key="s", s3_region="us-east-1", lease_ttl_s=3.0,
                        heartbeat_interval_s=0.5)
    services = build_services(settings)
    ensure_default_pipeline(services)
    spec = SnapshotSpec(input=ObjectRef("media", "v.mp4"), timing=SingleTime(0), output=OutputTarget("out", "x.jpg"))
    job = SnapshotJob(id="j-retry", tenant="acme", pipeline_id=DEFAULT_PIPELINE_ID, spec=spec,
                      created_at=from_ms(str(now_ms())))
    services.jobs.create(job, "fp")
    outcome: list[StartOutcome] = []
    runner = threading.Thread(target=lambda: outcome.append(execute(services, job.id, worker="test:1")))
    runner.start()
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
