"""Finished jobs made through the lead's real repository (so the outbox entry is the real one)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import redis

from app.core.jobs import Manifest, OutputImage, SnapshotJob
from app.core.pipelines import NotifyTarget, Pipeline
from app.core.specs import ObjectRef, OutputTarget, SnapshotSpec, TimePoints
from app.core.states import JobState
from app.storage.jobs import RedisJobRepository, StartOutcome
from app.storage.pipelines import RedisPipelineRepository

POINTS = (1000.0, 2500.0, 4000.0)


def make_pipeline(client: redis.Redis, tenant: str, *, topic: str | None = None, queue: str | None = None) -> Pipeline:
    p = Pipeline(
        id=f"p-{uuid.uuid4().hex[:8]}", name="notify-test", tenant=tenant, notify=NotifyTarget(topic=topic, queue=queue)
    )
    return RedisPipelineRepository(client).create(p)


def finish_job(
    client: redis.Redis,
    tenant: str,
    pipeline_id: str,
    *,
    succeed: bool = True,
    webhook_url: str | None = None,
    origin: str = "mts",
) -> SnapshotJob:
    """Create, start and finish a time-point job; the repository appends it to the outbox."""
    repo = RedisJobRepository(client)
    spec = SnapshotSpec(
        input=ObjectRef("in", "video.mp4"),
        timing=TimePoints(POINTS),
        output=OutputTarget("out", "shots/{job_id}/{index:5}.jpg"),
    )
    job = SnapshotJob(
        id=uuid.uuid4().hex,
        tenant=tenant,
        pipeline_id=pipeline_id,
        spec=spec,
        user_data='{"k":"v"}',
        webhook_url=webhook_url,
        created_at=datetime.now(tz=UTC),
        origin=origin,
    )
    repo.create(job, fingerprint=job.id)
    started = repo.start(job.id, worker="test", lease_ttl_ms=60_000, max_attempts=3)
    assert started.outcome is StartOutcome.STARTED
    if succeed:
        images = [
            OutputImage(i + 1, t, t, spec.output.key_for(job.id, i + 1), 64, 36, 100) for i, t in enumerate(POINTS)
        ]
        assert repo.finish(
            job.id, JobState.SUCCEEDED, lease_token=started.lease_token, manifest=Manifest(images=images)
        )
    else:
        assert repo.finish(
            job.id,
            JobState.FAILED,
            lease_token=started.lease_token,
            error_code="InputNotFound",
            error_message="no such object",
        )
    return repo.get(job.id)
