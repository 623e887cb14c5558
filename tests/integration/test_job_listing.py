"""Listing by pipeline and state reads one index (``keys.tenant_pipeline_state_jobs``), which every
script that moves, deletes or expires a job keeps exact, on a real redis-server; a store holding
jobs from before that index existed still lists right, and ``reindex`` rebuilds it."""

from __future__ import annotations

import time

import pytest
import redis

from app.core.jobs import Manifest
from app.core.pipelines import Pipeline
from app.core.ports import JobQuery
from app.core.states import JobState
from app.storage import keys
from app.storage.jobs import RedisJobRepository, from_ms, now_ms
from app.storage.pipelines import RedisPipelineRepository
from tests.integration.test_job_store import make_job

PIPELINES = ("p1", "p2")
RETENTION_MS = 60_000


@pytest.fixture
def repo(redis_client: redis.Redis) -> RedisJobRepository:
    for pid in PIPELINES:
        RedisPipelineRepository(redis_client).create(Pipeline(id=pid, name=pid))
    return RedisJobRepository(redis_client, retention_ms=RETENTION_MS)


class Store:
    """The jobs a test made and the brute-force answer to every listing."""

    def __init__(self, repo: RedisJobRepository, r: redis.Redis) -> None:
        self.repo, self.r = repo, r
        self.created: dict[str, tuple[str, int]] = {}  # id -> (pipeline, created ms)
        self.base = int(time.time() * 1000)

    def create(self, n: int) -> None:
        for i in range(n):
            job_id = f"j{len(self.created):02d}"
            pipeline = PIPELINES[i % 2]
            created = self.base + (len(self.created) // 3) * 10  # three jobs share each millisecond
            self.repo.create(make_job(job_id, pipeline=pipeline, created_ms=created), job_id)
            self.created[job_id] = (pipeline, created)

    def expected(
        self, pipeline: str, state: JobState, after: int | None = None, before: int | None = None
    ) -> list[str]:
        rows = [
            (created, job_id)
            for job_id, (pid, created) in self.created.items()
            if pid == pipeline
            and self.repo.state_of(job_id) is state
            and (after is None or created >= after)
            and (before is None or created <= before)
        ]
        return [job_id for _, job_id in sorted(rows, reverse=True)]

    def paged(self, query: JobQuery) -> list[str]:
        ids: list[str] = []
        token: str | None = None
        while True:
            page = self.repo.list("acme", JobQuery(**{**query.__dict__, "page_token": token}))
            assert len(page.jobs) <= query.limit
            ids += [j.id for j in page.jobs]
            if page.next_page_token is None:
                return ids
            token = page.next_page_token

    def check(self) -> None:
        """Every (pipeline, state) listing, token-paged and offset-paged, with and without a time
        window, against the jobs' stored states; and the index itself holds exactly those jobs."""
        for pipeline in PIPELINES:
            for state in JobState:
                want = self.expected(pipeline, state)
                index = keys.tenant_pipeline_state_jobs("acme", pipeline, state.value)
                held = dict(self.r.zrange(index, 0, -1, withscores=True))
                assert held == {job_id: self.created[job_id][1] for job_id in want}, (pipeline, state)
                assert self.paged(JobQuery(state=state, pipeline_id=pipeline, limit=2)) == want, (pipeline, state)
                at = [
                    self.repo.list_at("acme", JobQuery(state=state, pipeline_id=pipeline, limit=2), o) for o in (0, 2)
                ]
                assert [j.id for p in at for j in p.jobs] == want[:4] and {p.total for p in at} == {len(want)}
                after, before = from_ms(str(self.base + 10)), from_ms(str(self.base + 20))
                window = JobQuery(
                    state=state, pipeline_id=pipeline, created_after=after, created_before=before, limit=1
                )
                assert self.paged(window) == self.expected(pipeline, state, self.base + 10, self.base + 20)


def test_listing_by_pipeline_and_state_follows_every_transition_delete_and_expiry(
    repo: RedisJobRepository, redis_client: redis.Redis
) -> None:
    store = Store(repo, redis_client)
    store.create(14)
    store.check()
    leases = {}
    for job_id in ("j00", "j01", "j02", "j03", "j04", "j05"):
        leases[job_id] = repo.start(job_id, worker="w", lease_ttl_ms=60_000, max_attempts=3).lease_token
    store.check()
    assert repo.finish("j00", JobState.SUCCEEDED, lease_token=leases["j00"], manifest=Manifest())
    assert repo.finish("j01", JobState.FAILED, lease_token=leases["j01"], error_code="InternalError")
    assert repo.finish("j02", JobState.CANCELED, lease_token=leases["j02"])
    assert repo.cancel_queued("j06") and repo.cancel_queued("j07")
    redis_client.delete(keys.lease("j03"))  # its worker died: the takeover stays running
    assert repo.start("j03", worker="w2", lease_ttl_ms=60_000, max_attempts=3).outcome.value == "takeover"
    redis_client.delete(keys.lease("j04"))
    assert repo.start("j04", worker="w2", lease_ttl_ms=60_000, max_attempts=1).outcome.value == "exhausted"
    store.check()
    assert repo.delete("j00") and not repo.delete("j05")  # a running job is never deleted
    store.check()
    assert repo.sweep_expired(now=now_ms() + RETENTION_MS + 1) == 5  # j01 j02 j04 j06 j07
    store.check()
    for pipeline in PIPELINES:
        for state in JobState:  # a listing that matches nothing, and another tenant's view
            assert repo.list("other", JobQuery(state=state, pipeline_id=pipeline)).jobs == []


def test_a_store_from_before_the_index_lists_right_until_reindex_rebuilds_it(
    repo: RedisJobRepository, redis_client: redis.Redis
) -> None:
    store = Store(repo, redis_client)
    store.create(10)
    lease = repo.start("j00", worker="w", lease_ttl_ms=60_000, max_attempts=3).lease_token
    assert repo.finish("j00", JobState.SUCCEEDED, lease_token=lease)
    repo.start("j01", worker="w", lease_ttl_ms=60_000, max_attempts=3)
    repo.cancel_queued("j03")
    per_state = [keys.tenant_pipeline_state_jobs("acme", p, s.value) for p in PIPELINES for s in JobState]
    # What an older version stored: no per-(pipeline, state) index at all.
    redis_client.delete(*per_state)
    old = RedisJobRepository(redis_client, retention_ms=RETENTION_MS)  # a process started after the upgrade
    for pipeline in PIPELINES:
        for state in JobState:
            want = store.expected(pipeline, state)
            assert [j.id for j in old.list("acme", JobQuery(state=state, pipeline_id=pipeline, limit=3)).jobs] == want[
                :3
            ]
            counted = old.list_at("acme", JobQuery(state=state, pipeline_id=pipeline, limit=3), 0)
            assert counted.total == len(want) and [j.id for j in counted.jobs] == want[:3]
    # A job from before enters the index at its next transition, into its new state only.
    old.start("j02", worker="w", lease_ttl_ms=60_000, max_attempts=3)
    assert redis_client.zrange(keys.tenant_pipeline_state_jobs("acme", "p1", "running"), 0, -1) == ["j02"]
    # An older process still running beside this one left a stray entry (a started job still
    # under submitted): reindex takes it out along with adding every missing entry.
    redis_client.zadd(keys.tenant_pipeline_state_jobs("acme", "p2", "submitted"), {"j01": 1})
    report = old.reindex(batch=3)
    assert report.pipelines == 2 and report.changed == 9 + 1  # the 9 missing entries in, the stray out
    assert old._pipeline_state_index_complete("acme", "p1") and old._pipeline_state_index_complete("acme", "p2")
    store.check()
    assert old.reindex().changed == 0  # idempotent


def test_a_job_whose_hash_expired_before_the_sweep_is_skipped_without_shortening_a_page(
    repo: RedisJobRepository, redis_client: redis.Redis
) -> None:
    store = Store(repo, redis_client)
    store.create(12)
    p1 = [job_id for job_id, (pid, _) in store.created.items() if pid == "p1"]
    for job_id in p1:
        assert repo.cancel_queued(job_id)
    redis_client.delete(keys.job(p1[1]), keys.job(p1[2]), keys.job(p1[4]))  # their TTL ran out; no sweep yet
    want = store.expected("p1", JobState.CANCELED)
    assert len(want) == 3
    assert store.paged(JobQuery(state=JobState.CANCELED, pipeline_id="p1", limit=1)) == want
    assert store.paged(JobQuery(state=JobState.CANCELED, limit=2)) == want
