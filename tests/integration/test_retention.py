"""Retention in the job store: every way a job ends gives its hash (holding what it wrote by then),
its written set and its idempotency record the retention TTL and an expiry entry; the sweep clears the index entries of
jobs whose retention ended and never touches queued or running jobs."""

from __future__ import annotations

import time

import redis

from app.core.jobs import NotificationResult
from app.core.pipelines import Pipeline
from app.core.states import JobState
from app.storage import keys
from app.storage.jobs import RedisJobRepository, now_ms
from app.storage.pipelines import RedisPipelineRepository
from tests.integration.test_job_store import make_job

RETENTION_MS = 60_000


def indexed(r: redis.Redis, job_id: str, state: str) -> list[bool]:
    return [
        r.zscore(k, job_id) is not None
        for k in (
            keys.tenant_jobs("acme"),
            keys.tenant_state_jobs("acme", state),
            keys.tenant_pipeline_jobs("acme", "p1"),
        )
    ]


def test_every_terminal_transition_starts_the_retention_and_the_sweep_clears_only_finished_jobs(
    redis_client: redis.Redis,
) -> None:
    RedisPipelineRepository(redis_client).create(Pipeline(id="p1", name="one"))
    repo = RedisJobRepository(redis_client, retention_ms=RETENTION_MS)
    for job_id in ("done", "canceled", "exhausted", "queued", "running"):
        repo.create(make_job(job_id, token=f"tok-{job_id}"), "fp")
    done = repo.start("done", worker="w", lease_ttl_ms=60_000, max_attempts=3)
    repo.record_written("done", "out", "x.jpg")
    assert repo.finish("done", JobState.SUCCEEDED, lease_token=done.lease_token)
    assert repo.cancel_queued("canceled")
    repo.start("exhausted", worker="w", lease_ttl_ms=1, max_attempts=1)
    time.sleep(0.01)  # its lease runs out: the next delivery finds its one attempt spent
    assert repo.start("exhausted", worker="w", lease_ttl_ms=60_000, max_attempts=1).outcome.value == "exhausted"
    repo.start("running", worker="w", lease_ttl_ms=60_000, max_attempts=3)

    for job_id in ("done", "canceled", "exhausted"):
        assert 0 < redis_client.pttl(keys.job(job_id)) <= RETENTION_MS, job_id
        assert 0 < redis_client.pttl(keys.idempotency("acme", f"tok-{job_id}")) <= RETENTION_MS, job_id
    # What it wrote went into its hash (which expires): no set is left to outlive it.
    assert not redis_client.exists(keys.written("done")) and repo.written("done") == [("out", "x.jpg")]
    for job_id in ("queued", "running"):
        assert (
            redis_client.pttl(keys.job(job_id)) == -1
            and redis_client.pttl(keys.idempotency("acme", f"tok-{job_id}")) == -1
        )
    assert redis_client.zcard(keys.JOBS_EXPIRY) == 3

    assert repo.sweep_expired(now=now_ms()) == 0  # nothing has reached its end yet
    assert repo.sweep_expired(now=now_ms() + RETENTION_MS + 1) == 3
    assert indexed(redis_client, "done", "succeeded") == [False] * 3
    assert indexed(redis_client, "canceled", "canceled") == [False] * 3
    assert indexed(redis_client, "exhausted", "failed") == [False] * 3
    assert indexed(redis_client, "queued", "submitted") == [True] * 3
    assert indexed(redis_client, "running", "running") == [True] * 3
    assert repo.state_of("queued") is JobState.SUBMITTED and repo.state_of("running") is JobState.RUNNING
    assert redis_client.zcard(keys.JOBS_EXPIRY) == 0


def test_a_notification_recorded_after_the_job_expired_does_not_recreate_it(redis_client: redis.Redis) -> None:
    repo = RedisJobRepository(redis_client)
    repo.record_notification("long-gone", NotificationResult(message_id="m"))
    assert not redis_client.exists(keys.job("long-gone"))


def test_an_object_recorded_after_the_job_finished_expires_with_it(redis_client: redis.Redis) -> None:
    """A taken-over attempt that still writes after the job ended: its record gets the job's
    remaining retention instead of living on, and none is made once the job is gone."""
    RedisPipelineRepository(redis_client).create(Pipeline(id="p1", name="one"))
    repo = RedisJobRepository(redis_client, retention_ms=RETENTION_MS)
    repo.create(make_job("j"), "fp")
    started = repo.start("j", worker="w", lease_ttl_ms=60_000, max_attempts=3)
    repo.record_written("j", "out", "a.jpg")
    assert repo.finish("j", JobState.SUCCEEDED, lease_token=started.lease_token)
    repo.record_written("j", "out", "late.jpg")
    # The job's TTL first: both only fall, so if the record expires no later than the job, the
    # record's TTL read after it is no greater (read the other way round, a millisecond between
    # the reads made the job's look shorter).
    job_ttl = redis_client.pttl(keys.job("j"))
    assert 0 < redis_client.pttl(keys.written("j")) <= job_ttl
    assert repo.written("j") == [("out", "a.jpg"), ("out", "late.jpg")]
    repo.record_written("gone", "out", "b.jpg")
    assert not redis_client.exists(keys.written("gone"))
