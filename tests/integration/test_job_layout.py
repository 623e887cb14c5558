"""The job hash on a real redis-server with Redis's default configuration: new jobs stay listpacks
through their whole life, and a job stored by the version before this layout (every attribute one
field, empty ones too, plain JSON, a written set, no per-pipeline-and-state index entry) still
reads, lists, transitions and expires."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict

import pytest
import redis

from app.core.jobs import Manifest, NotificationResult, OutputImage, SnapshotJob
from app.core.pipelines import Pipeline
from app.core.ports import JobQuery
from app.core.progress import ProgressEvents
from app.core.specs import spec_to_dict
from app.core.states import JobState
from app.storage import keys
from app.storage.jobs import RedisJobRepository, StartOutcome, now_ms, to_ms
from app.storage.pipelines import RedisPipelineRepository
from tests.integration.test_job_store import make_job

RETENTION_MS = 60_000


def legacy_hash(job: SnapshotJob) -> dict[str, str]:
    """What ``job_to_hash`` stored before ``app/storage/jobhash.py`` (copied as it was)."""
    return {
        "id": job.id,
        "tenant": job.tenant,
        "pipeline_id": job.pipeline_id,
        "state": job.state.value,
        "priority": str(job.priority),
        "user_data": job.user_data if job.user_data is not None else "",
        "has_user_data": "1" if job.user_data is not None else "0",
        "client_token": job.client_token or "",
        "webhook_url": job.webhook_url or "",
        "spec": json.dumps(spec_to_dict(job.spec), separators=(",", ":")),
        "created_ms": to_ms(job.created_at),
        "started_ms": to_ms(job.started_at),
        "finished_ms": to_ms(job.finished_at),
        "attempts": str(job.attempts),
        "progress_done": str(job.progress_done),
        "progress_total": str(job.progress_total),
        "manifest": json.dumps(job.manifest.to_dict(), separators=(",", ":")),
        "error_code": job.error_code or "",
        "error_message": job.error_message or "",
        "notification": json.dumps(asdict(job.notification)) if job.notification else "",
        "origin": job.origin,
        "dialect_data": json.dumps(job.dialect_data, separators=(",", ":")) if job.dialect_data else "",
        "retry_of": job.retry_of or "",
        "progress_events": json.dumps(job.progress_events.to_dict()) if job.progress_events else "",
    }


@pytest.fixture
def repo(redis_client: redis.Redis) -> RedisJobRepository:
    assert redis_client.config_get("hash-max-listpack-value")["hash-max-listpack-value"] == "64"  # as shipped
    RedisPipelineRepository(redis_client).create(Pipeline(id="p1", name="one"))
    return RedisJobRepository(redis_client, retention_ms=RETENTION_MS)


def store_legacy(repo: RedisJobRepository, r: redis.Redis, job: SnapshotJob) -> None:
    """``job`` queued as the version before stored it: its old hash, no per-(pipeline, state) entry."""
    repo.create(job, job.id)
    placed = r.hmget(keys.job(job.id), ["rank", "seq"])
    r.delete(keys.job(job.id))
    r.hset(keys.job(job.id), mapping={**legacy_hash(job), "rank": placed[0], "seq": placed[1]})
    r.delete(keys.tenant_pipeline_state_jobs(job.tenant, job.pipeline_id, job.state.value))


def encodings(r: redis.Redis, *job_ids: str) -> set[str]:
    return {r.object("encoding", keys.job(j)) for j in job_ids}


def test_a_job_stays_a_listpack_through_its_life(repo: RedisJobRepository, redis_client: redis.Redis) -> None:
    job = make_job("new", token="tok")
    job.user_data, job.webhook_url = "ü" * 400, "https://hooks.example.com/" + "x" * 300
    job.dialect_data = {"echo": '{"Input":{"Location":"oss-cn-hangzhou"}}', "mode": "multi"}
    job.progress_total = 20
    job.progress_events = ProgressEvents("https://hooks.example.com/" + "q" * 100, every_images=5, every_s=2.5)
    repo.create(job, "fp")
    started = repo.start("new", worker="w" * 200, lease_ttl_ms=60_000, max_attempts=3)  # a long host name
    repo.record_progress("new", 3, 20)
    repo.request_cancel("new")
    images = [OutputImage(n, n * 1e3, n * 1e3, f"x/{n:05d}.jpg", 320, 180, 14_000) for n in range(1, 21)]
    for image in images:
        repo.record_written("new", "out", image.key)
    repo.record_written("new", "out", "x/index.json")
    manifest = Manifest(images=images, decoder="pyav", notes=["n" * 200])
    assert repo.finish("new", JobState.SUCCEEDED, lease_token=started.lease_token, manifest=manifest)
    noise = hashlib.sha512(b"push").hexdigest() * 2  # does not compress below 64 bytes
    repo.record_notification("new", NotificationResult(error_code="PushFailed", error_message=noise))
    assert any(name.startswith("notification.") for name in redis_client.hkeys(keys.job("new")))
    repo.record_notification("new", NotificationResult(message_id="m-2"))  # shorter: no old piece left
    assert encodings(redis_client, "new") == {"listpack"}
    got = repo.get("new")
    assert (got.user_data, got.webhook_url, got.dialect_data) == (job.user_data, job.webhook_url, job.dialect_data)
    assert got.manifest == manifest and got.notification == NotificationResult(message_id="m-2")
    assert got.progress_done == 20 and repo.cancel_requested("new") and got.progress_events == job.progress_events
    assert not redis_client.exists(keys.written("new"))  # folded into the hash
    assert repo.written("new") == sorted([("out", i.key) for i in images] + [("out", "x/index.json")])
    # a job that ran out of attempts gets a long message from the script itself, also split
    repo.create(make_job("lost"), "fp2")
    repo.start("lost", worker="w", lease_ttl_ms=60_000, max_attempts=1)
    redis_client.delete(keys.lease("lost"))
    assert repo.start("lost", worker="w", lease_ttl_ms=60_000, max_attempts=1).outcome is StartOutcome.EXHAUSTED
    assert encodings(redis_client, "lost") == {"listpack"}
    assert "1 times (crash, kill or out of memory)" in (repo.get("lost").error_message or "")


def test_a_job_stored_before_the_layout_reads_transitions_lists_and_expires(
    repo: RedisJobRepository, redis_client: redis.Redis
) -> None:
    old = make_job("old", token="tok-old")
    old.user_data, old.dialect_data, old.progress_total = "order 4711", {"mode": "multi"}, 1
    old.progress_events = ProgressEvents("https://hooks.example.com/progress", every_images=10)
    store_legacy(repo, redis_client, old)
    queued = make_job("queued")
    store_legacy(repo, redis_client, queued)
    lost = make_job("lost")
    store_legacy(repo, redis_client, lost)
    assert encodings(redis_client, "old") == {"hashtable"}  # the spec JSON alone is longer than 64 bytes
    assert repo.get("old") == old and repo.get("queued") == queued

    started = repo.start("old", worker="w", lease_ttl_ms=60_000, max_attempts=3)
    assert started.outcome is StartOutcome.STARTED
    redis_client.sadd(keys.written("old"), "out/x.jpg")  # recorded by a worker of the version before
    image = OutputImage(1, 1000.0, 990.0, "x.jpg", 320, 180, 14_000)
    assert repo.finish("old", JobState.SUCCEEDED, lease_token=started.lease_token, manifest=Manifest(images=[image]))
    repo.record_notification("old", NotificationResult(message_id="m-1"))
    done = repo.get("old")
    assert done.state is JobState.SUCCEEDED and done.manifest.images == [image] and done.progress_done == 1
    assert done.user_data == "order 4711" and done.dialect_data == {"mode": "multi"} and done.spec == old.spec
    assert done.notification == NotificationResult(message_id="m-1")
    fields = redis_client.hgetall(keys.job("old"))
    assert "manifest" not in fields and "manifest.0" in fields  # the old whole field went with the new value
    assert repo.written("old") == [("out", "x.jpg")]

    repo.start("lost", worker="w", lease_ttl_ms=60_000, max_attempts=1)
    redis_client.delete(keys.lease("lost"))
    assert repo.start("lost", worker="w", lease_ttl_ms=60_000, max_attempts=1).outcome is StartOutcome.EXHAUSTED
    failed = repo.get("lost")
    assert failed.state is JobState.FAILED and failed.error_code == "WorkerLost" and "1 times" in failed.error_message

    # Listing by pipeline and state: "queued" never moved, so the index is incomplete and the
    # listing reads the pipeline's index instead; reindex completes it.
    submitted = JobQuery(state=JobState.SUBMITTED, pipeline_id="p1")
    assert [j.id for j in repo.list("acme", submitted).jobs] == ["queued"]
    assert [j.id for j in repo.list("acme", JobQuery(state=JobState.SUCCEEDED, pipeline_id="p1")).jobs] == ["old"]
    assert repo.reindex().changed == 1
    assert redis_client.zrange(keys.tenant_pipeline_state_jobs("acme", "p1", "submitted"), 0, -1) == ["queued"]
    assert repo.cancel_queued("queued") and repo.get("queued").state is JobState.CANCELED

    assert repo.delete("lost") and repo.find("lost") is None
    assert repo.sweep_expired(now=now_ms() + RETENTION_MS + 1) == 2  # old, queued
    for job_id in ("old", "queued", "lost"):
        assert not redis_client.exists(keys.job(job_id), keys.written(job_id))
    assert not [k for k in redis_client.scan_iter(match="openmps:jobs:t:*") if redis_client.zcard(k)]
