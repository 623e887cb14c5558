"""The job repository and scheduler against a real redis-server: transitions, guards, ordering."""

from __future__ import annotations

import time

import pytest

from app.core.errors import IdempotencyConflict, InvalidParameter, PipelineNotFound
from app.core.jobs import Manifest, SnapshotJob
from app.core.pipelines import Pipeline, PipelineState
from app.core.ports import JobQuery
from app.core.service import SubmitRequest
from app.core.specs import ObjectRef, OutputTarget, SingleTime, SnapshotSpec
from app.core.states import JobState
from app.storage import keys
from app.storage.jobs import RedisJobRepository, StartOutcome, from_ms
from app.storage.pipelines import RedisPipelineRepository
from app.storage.scheduler import RedisScheduler
from app.wiring import Services

SPEC = SnapshotSpec(input=ObjectRef("media", "a.mp4"), timing=SingleTime(1000), output=OutputTarget("out", "x.jpg"))


def make_job(
    job_id: str, *, priority: int = 6, pipeline: str = "p1", token: str | None = None, created_ms: int | None = None
) -> SnapshotJob:
    return SnapshotJob(
        id=job_id,
        tenant="acme",
        pipeline_id=pipeline,
        spec=SPEC,
        priority=priority,
        client_token=token,
        created_at=from_ms(str(created_ms or int(time.time() * 1000))),
    )


@pytest.fixture
def repo(redis_client) -> RedisJobRepository:  # type: ignore[no-untyped-def]
    RedisPipelineRepository(redis_client).create(Pipeline(id="p1", name="one"))
    return RedisJobRepository(redis_client)


def test_create_and_read_back_round_trips_every_field(repo: RedisJobRepository) -> None:
    job = make_job("j1")
    job.user_data = ""  # empty user data is kept distinct from none
    repo.create(job, "fp")
    got = repo.get("j1")
    assert got.spec == SPEC and got.state is JobState.SUBMITTED and got.user_data == "" and got.priority == 6


def test_client_token_same_body_same_job_other_body_conflict(repo: RedisJobRepository) -> None:
    first = repo.create(make_job("j1", token="t"), "fp-a")
    again = repo.create(make_job("j2", token="t"), "fp-a")
    assert again.id == first.id == "j1"
    with pytest.raises(IdempotencyConflict):
        repo.create(make_job("j3", token="t"), "fp-b")
    assert repo.find("j2") is None and repo.find("j3") is None


def test_start_guard_refuses_duplicates_and_finished_jobs(repo: RedisJobRepository, redis_client) -> None:  # type: ignore[no-untyped-def]
    repo.create(make_job("j1"), "fp")
    first = repo.start("j1", worker="w1", lease_ttl_ms=5000, max_attempts=3)
    assert first.outcome is StartOutcome.STARTED and first.attempts == 1
    assert repo.start("j1", worker="w2", lease_ttl_ms=5000, max_attempts=3).outcome is StartOutcome.DUPLICATE
    assert repo.finish("j1", JobState.SUCCEEDED, lease_token=first.lease_token, manifest=Manifest())
    assert repo.start("j1", worker="w2", lease_ttl_ms=5000, max_attempts=3).outcome is StartOutcome.DUPLICATE
    assert not repo.finish("j1", JobState.FAILED, lease_token=first.lease_token, error_code="X")
    assert repo.get("j1").state is JobState.SUCCEEDED
    assert [e[1]["job_id"] for e in redis_client.xrange(keys.OUTBOX)] == ["j1"]


def test_expired_lease_allows_takeover_and_fences_the_old_attempt(repo: RedisJobRepository, redis_client) -> None:  # type: ignore[no-untyped-def]
    repo.create(make_job("j1"), "fp")
    old = repo.start("j1", worker="w1", lease_ttl_ms=5000, max_attempts=3)
    redis_client.delete(keys.lease("j1"))  # the worker died: its lease expired
    new = repo.start("j1", worker="w2", lease_ttl_ms=5000, max_attempts=3)
    assert new.outcome is StartOutcome.TAKEOVER and new.attempts == 2
    assert not repo.heartbeat("j1", old.lease_token, 5000)
    assert not repo.finish("j1", JobState.SUCCEEDED, lease_token=old.lease_token)
    assert repo.finish("j1", JobState.SUCCEEDED, lease_token=new.lease_token)


def test_attempt_cap_fails_a_job_that_keeps_killing_workers(repo: RedisJobRepository, redis_client) -> None:  # type: ignore[no-untyped-def]
    repo.create(make_job("j1"), "fp")
    for _ in range(2):
        repo.start("j1", worker="w", lease_ttl_ms=5000, max_attempts=2)
        redis_client.delete(keys.lease("j1"))
    assert repo.start("j1", worker="w", lease_ttl_ms=5000, max_attempts=2).outcome is StartOutcome.EXHAUSTED
    job = repo.get("j1")
    assert job.state is JobState.FAILED and job.error_code == "WorkerLost" and "2 times" in (job.error_message or "")


def test_paused_pipeline_parks_the_job_untouched(repo: RedisJobRepository, redis_client) -> None:  # type: ignore[no-untyped-def]
    pipes = RedisPipelineRepository(redis_client)
    p = pipes.find("p1")
    assert p is not None
    p.state = PipelineState.PAUSED
    pipes.save(p)
    repo.create(make_job("j1"), "fp")
    assert repo.start("j1", worker="w", lease_ttl_ms=5000, max_attempts=3).outcome is StartOutcome.PAUSED
    assert repo.get("j1").state is JobState.SUBMITTED and repo.get("j1").attempts == 0
    assert redis_client.zrange(keys.pending("p1"), 0, -1) == ["j1"]


def test_dispatch_sends_by_priority_then_submission_order_within_the_window(
    repo: RedisJobRepository, redis_client
) -> None:  # type: ignore[no-untyped-def]
    sent: list[str] = []
    sched = RedisScheduler(redis_client, lambda job_id, pipeline: sent.append(job_id), window=2)
    for job_id, prio in [("a", 6), ("b", 10), ("c", 1), ("d", 10), ("e", 6)]:
        repo.create(make_job(job_id, priority=prio), job_id)
    assert sched.dispatch("p1") == 2 and sent == ["b", "d"]
    assert sched.dispatch("p1") == 0  # window full until those start
    for job_id in ["b", "d"]:
        repo.start(job_id, worker="w", lease_ttl_ms=5000, max_attempts=3)
    sched.dispatch("p1")
    assert sent == ["b", "d", "a", "e"]
    assert sched.depth("p1").queued == 3 and sched.depth("p1").running == 2


def test_concurrency_cap_limits_dispatch_and_start(repo: RedisJobRepository, redis_client) -> None:  # type: ignore[no-untyped-def]
    pipes = RedisPipelineRepository(redis_client)
    p = pipes.find("p1")
    assert p is not None
    p.max_concurrency = 1
    pipes.save(p)
    sent: list[str] = []
    sched = RedisScheduler(redis_client, lambda job_id, pipeline: sent.append(job_id), window=5)
    for job_id in ["a", "b", "c"]:
        repo.create(make_job(job_id), job_id)
    sched.dispatch("p1")
    assert sent == ["a"]
    repo.start("a", worker="w", lease_ttl_ms=5000, max_attempts=3)
    assert sched.dispatch("p1") == 0
    # a stray duplicate message for b cannot start it past the cap either
    assert repo.start("b", worker="w", lease_ttl_ms=5000, max_attempts=3).outcome is StartOutcome.BUSY


def test_failed_send_returns_the_job_to_pending(repo: RedisJobRepository, redis_client) -> None:  # type: ignore[no-untyped-def]
    def broken(job_id: str, pipeline: str) -> None:
        raise ConnectionError("broker down")

    repo.create(make_job("a"), "a")
    assert RedisScheduler(redis_client, broken, window=2).dispatch("p1") == 0
    assert redis_client.zrange(keys.pending("p1"), 0, -1) == ["a"]


def test_reconcile_resends_orphans_once_per_lease(repo: RedisJobRepository, redis_client) -> None:  # type: ignore[no-untyped-def]
    sent: list[str] = []
    sched = RedisScheduler(redis_client, lambda job_id, pipeline: sent.append(job_id), window=2, lease_ttl_s=60)
    repo.create(make_job("a"), "a")
    repo.start("a", worker="w", lease_ttl_ms=5000, max_attempts=3)
    assert sched.reconcile(["p1"]).resent_orphans == 0  # lease alive
    redis_client.delete(keys.lease("a"))
    assert sched.reconcile(["p1"]).resent_orphans == 1 and sent == ["a"]
    assert sched.reconcile(["p1"]).resent_orphans == 0  # not again within a lease period


def test_listing_filters_and_pages_newest_first(repo: RedisJobRepository) -> None:
    base = int(time.time() * 1000)
    for i in range(7):
        repo.create(make_job(f"j{i}", created_ms=base + i * 10), f"j{i}")
    repo.start("j6", worker="w", lease_ttl_ms=5000, max_attempts=3)
    page1 = repo.list("acme", JobQuery(limit=3))
    assert [j.id for j in page1.jobs] == ["j6", "j5", "j4"] and page1.next_page_token
    page2 = repo.list("acme", JobQuery(limit=3, page_token=page1.next_page_token))
    assert [j.id for j in page2.jobs] == ["j3", "j2", "j1"]
    page3 = repo.list("acme", JobQuery(limit=3, page_token=page2.next_page_token))
    assert [j.id for j in page3.jobs] == ["j0"] and page3.next_page_token is None
    running = repo.list("acme", JobQuery(state=JobState.RUNNING))
    assert [j.id for j in running.jobs] == ["j6"]
    window = repo.list("acme", JobQuery(created_after=from_ms(str(base + 20)), created_before=from_ms(str(base + 40))))
    assert [j.id for j in window.jobs] == ["j4", "j3", "j2"]
    assert repo.list("other", JobQuery()).jobs == []


def test_listing_by_position_counts_every_match(repo: RedisJobRepository, redis_client) -> None:  # type: ignore[no-untyped-def]
    RedisPipelineRepository(redis_client).create(Pipeline(id="p2", name="two"))
    base = int(time.time() * 1000)
    for i in range(7):
        repo.create(make_job(f"j{i}", created_ms=base + i * 10, pipeline="p2" if i % 2 else "p1"), f"j{i}")
    repo.start("j5", worker="w", lease_ttl_ms=5000, max_attempts=3)
    repo.start("j2", worker="w", lease_ttl_ms=5000, max_attempts=3)
    pages = [repo.list_at("acme", JobQuery(limit=3), offset) for offset in (0, 3, 6, 9)]
    assert [[j.id for j in p.jobs] for p in pages] == [["j6", "j5", "j4"], ["j3", "j2", "j1"], ["j0"], []]
    assert {p.total for p in pages} == {7}
    # the same order as token paging
    assert [j.id for j in repo.list("acme", JobQuery(limit=7)).jobs] == [f"j{i}" for i in range(6, -1, -1)]
    running = repo.list_at("acme", JobQuery(state=JobState.RUNNING, limit=1), 1)
    assert [j.id for j in running.jobs] == ["j2"] and running.total == 2
    window = repo.list_at(
        "acme", JobQuery(created_after=from_ms(str(base + 20)), created_before=from_ms(str(base + 40)), limit=2), 1
    )
    assert [j.id for j in window.jobs] == ["j3", "j2"] and window.total == 3
    both = repo.list_at("acme", JobQuery(state=JobState.SUBMITTED, pipeline_id="p2", limit=5), 0)
    assert [j.id for j in both.jobs] == ["j3", "j1"] and both.total == 2
    assert repo.list_at("other", JobQuery(), 0).total == 0


def test_listing_by_position_checks_its_arguments(services) -> None:  # type: ignore[no-untyped-def]
    svc = services.snapshots
    assert svc.list_jobs_at("acme", JobQuery(limit=100), 0).total == 0
    for query, offset, field in [
        (JobQuery(limit=0), 0, "limit"),
        (JobQuery(limit=101), 0, "limit"),
        (JobQuery(), -1, "offset"),
        (JobQuery(page_token="x"), 0, "page_token"),
        (JobQuery(created_after=from_ms("2000"), created_before=from_ms("1000")), 0, "created_after"),
    ]:
        with pytest.raises(InvalidParameter) as info:
            svc.list_jobs_at("acme", query, offset)
        assert info.value.field == field


def test_concurrent_pipeline_updates_of_different_fields_both_stick(redis_client) -> None:  # type: ignore[no-untyped-def]
    pipes = RedisPipelineRepository(redis_client)
    pipes.create(Pipeline(id="p2", name="old"))
    first, second = pipes.find("p2"), pipes.find("p2")  # two requests read the same version
    assert first is not None and second is not None
    first.name = "renamed"
    pipes.save(first, frozenset({"name"}))
    second.state = PipelineState.PAUSED
    pipes.save(second, frozenset({"state"}))
    final = pipes.find("p2")
    assert final is not None and final.name == "renamed" and final.state is PipelineState.PAUSED


def test_a_job_cannot_land_in_a_deleted_pipeline(repo: RedisJobRepository, redis_client) -> None:  # type: ignore[no-untyped-def]
    """Delete and create are each one atomic script, so a submission racing a delete either lands
    first (and the delete is refused) or is refused itself; it never orphans a job."""
    pipes = RedisPipelineRepository(redis_client)
    pipes.create(Pipeline(id="p3", name="short-lived"))
    repo.create(make_job("a", pipeline="p3"), "a")
    assert not pipes.delete_if_empty("p3")
    repo.cancel_queued("a")
    assert pipes.delete_if_empty("p3") and pipes.find("p3") is None
    with pytest.raises(PipelineNotFound):
        repo.create(make_job("b", pipeline="p3"), "b")
    assert repo.find("b") is None


def test_every_pipeline_change_moves_the_registry_version(redis_client) -> None:  # type: ignore[no-untyped-def]
    pipes = RedisPipelineRepository(redis_client)
    seen = [pipes.version()]
    pipes.create(Pipeline(id="p4", name="v"))
    seen.append(pipes.version())
    p = pipes.find("p4")
    assert p is not None
    p.state = PipelineState.PAUSED
    pipes.save(p, frozenset({"state"}))
    seen.append(pipes.version())
    assert pipes.delete_if_empty("p4")
    seen.append(pipes.version())
    assert seen == sorted(set(seen)), seen  # strictly increasing: workers never miss a change


def test_a_stray_message_for_a_running_job_releases_its_window_slot(repo: RedisJobRepository, redis_client) -> None:  # type: ignore[no-untyped-def]
    """If a re-send raced the start and left the running job in ``dispatched``, the duplicate
    delivery it causes cleans that up instead of holding a window slot until the job ends."""
    repo.create(make_job("a"), "a")
    repo.start("a", worker="w", lease_ttl_ms=5000, max_attempts=3)
    redis_client.zadd(keys.dispatched("p1"), {"a": 1})
    assert repo.start("a", worker="w2", lease_ttl_ms=5000, max_attempts=3).outcome is StartOutcome.DUPLICATE
    assert redis_client.zscore(keys.dispatched("p1"), "a") is None
    assert redis_client.zscore(keys.running("p1"), "a") is not None


def test_reconcile_does_not_put_a_started_job_back_in_flight(repo: RedisJobRepository, redis_client) -> None:  # type: ignore[no-untyped-def]
    sent: list[str] = []
    sched = RedisScheduler(
        redis_client,
        lambda job_id, pipeline: sent.append(job_id),
        window=2,
        stale_dispatch_s=0,
        queue_length=lambda pipeline: 0,
    )
    repo.create(make_job("a"), "a")
    sched.dispatch("p1")
    original = sched._missing_messages

    def start_in_between(pipeline_id: str, now: int) -> list[str]:
        stale = original(pipeline_id, now)
        repo.start("a", worker="w", lease_ttl_ms=5000, max_attempts=3)  # the job starts right then
        return stale

    sched._missing_messages = start_in_between  # type: ignore[method-assign]
    assert sched.reconcile(["p1"]).resent_dispatched == 0
    assert redis_client.zscore(keys.dispatched("p1"), "a") is None and sent == ["a"]


def test_every_transition_that_frees_a_slot_refills_its_pipeline(redis_client) -> None:  # type: ignore[no-untyped-def]
    """The repository, not its callers, dispatches after start, takeover, finish, exhausted
    attempts and cancel of a queued job; moves that free nothing (duplicates, refusals) do not."""
    RedisPipelineRepository(redis_client).create(Pipeline(id="p1", name="one"))
    freed: list[str] = []
    repo = RedisJobRepository(redis_client, on_slot_freed=freed.append)
    repo.create(make_job("a"), "a")
    assert freed == []  # a new job frees nothing (submit dispatches it itself)
    first = repo.start("a", worker="w", lease_ttl_ms=5000, max_attempts=3)
    assert freed == ["p1"]
    repo.start("a", worker="w2", lease_ttl_ms=5000, max_attempts=3)  # duplicate: lease is live
    assert freed == ["p1"]
    redis_client.delete(keys.lease("a"))
    second = repo.start("a", worker="w2", lease_ttl_ms=5000, max_attempts=3)
    assert second.outcome is StartOutcome.TAKEOVER and freed == ["p1"] * 2
    assert not repo.finish("a", JobState.SUCCEEDED, lease_token=first.lease_token)  # fenced off
    assert freed == ["p1"] * 2
    assert repo.finish("a", JobState.SUCCEEDED, lease_token=second.lease_token)
    assert freed == ["p1"] * 3
    repo.create(make_job("b"), "b")
    assert repo.cancel_queued("b") and freed == ["p1"] * 4
    assert not repo.cancel_queued("b") and freed == ["p1"] * 4
    repo.create(make_job("c"), "c")
    repo.start("c", worker="w", lease_ttl_ms=5000, max_attempts=1)
    redis_client.delete(keys.lease("c"))
    assert repo.start("c", worker="w", lease_ttl_ms=5000, max_attempts=1).outcome is StartOutcome.EXHAUSTED
    assert freed == ["p1"] * 6


def test_a_finished_job_hands_its_running_slot_on_under_a_cap(redis_client) -> None:  # type: ignore[no-untyped-def]
    pipes = RedisPipelineRepository(redis_client)
    pipes.create(Pipeline(id="p1", name="one", max_concurrency=1))
    sent: list[str] = []
    sched = RedisScheduler(redis_client, lambda job_id, pipeline: sent.append(job_id), window=5)
    repo = RedisJobRepository(redis_client, on_slot_freed=sched.dispatch)
    for job_id in ["a", "b"]:
        repo.create(make_job(job_id), job_id)
    sched.dispatch("p1")
    started = repo.start("a", worker="w", lease_ttl_ms=5000, max_attempts=3)
    assert sent == ["a"]  # the start refilled the window, but the cap holds b back
    assert repo.finish("a", JobState.SUCCEEDED, lease_token=started.lease_token)
    assert sent == ["a", "b"]  # the finish freed the running slot and dispatched at once


def test_a_failing_refill_does_not_fail_the_stored_transition(redis_client) -> None:  # type: ignore[no-untyped-def]
    def broken(pipeline_id: str) -> None:
        raise ConnectionError("redis blip while dispatching")

    RedisPipelineRepository(redis_client).create(Pipeline(id="p1", name="one"))
    repo = RedisJobRepository(redis_client, on_slot_freed=broken)
    repo.create(make_job("a"), "a")
    assert repo.start("a", worker="w", lease_ttl_ms=5000, max_attempts=3).outcome is StartOutcome.STARTED
    assert repo.get("a").state is JobState.RUNNING


def test_dialect_data_is_stored_with_the_job_and_bounded(services: Services) -> None:
    """What a dialect must echo back (a vendor's Location as sent) rides with the job, opaque to the core."""
    services.objects.put("media", "v.mp4", b"not looked at before a worker runs", "video/mp4")
    spec = SnapshotSpec(ObjectRef("media", "v.mp4"), SingleTime(0), OutputTarget("out", "d/{job_id}.jpg"))
    data = {"echo": '{"Input":{"Location":"oss-cn-hangzhou"}}', "mode": "multi"}
    job = services.snapshots.submit("acme", SubmitRequest(spec, dialect_data=data))
    assert services.snapshots.get("acme", job.id).dialect_data == data
    plain = services.snapshots.submit("acme", SubmitRequest(spec))
    assert services.snapshots.get("acme", plain.id).dialect_data == {}
    with pytest.raises(InvalidParameter, match="dialect_data"):
        services.snapshots.submit("acme", SubmitRequest(spec, dialect_data={"k": "x" * 9000}))
