"""The Lua scripts obey the one transition table (``app.core.states``), on a real redis-server.

For every (from, to) pair of states, a job is put in ``from`` through the real scripts, then each
script path that writes ``to`` is tried on its own fresh copy of that job, and what Redis holds
afterwards is compared with the table:

* safety: no path enters ``to`` unless ``can_transition(from, to)`` (a script that writes a state
  the table forbids fails here, whatever the reason it thought it had);
* completeness: when the table allows ``from -> to``, some path performs it (an edge added to the
  table without a script that can take it fails here too);
* bookkeeping: whatever happened, the job sits in exactly the listing indexes of its stored state
  (the tenant's per state and the pipeline's per state), in the scheduling sets that state
  implies, holds a lease only while running, and was announced on the outbox once if terminal,
  never otherwise.

A path "enters" ``to`` when it changed the job's hash and left ``state`` at ``to``: the change is
what tells a takeover (running -> running, attempts + 1) from a refused duplicate delivery.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass

import pytest
import redis

from app.core.errors import InvalidJobState
from app.core.jobs import SnapshotJob
from app.core.pipelines import Pipeline
from app.core.specs import ObjectRef, OutputTarget, SingleTime, SnapshotSpec
from app.core.states import JobState, can_create, can_transition
from app.storage import keys
from app.storage.jobs import RedisJobRepository, StartOutcome, from_ms
from app.storage.pipelines import RedisPipelineRepository

PIPELINE = "p1"
TENANT = "acme"
MAX_ATTEMPTS = 3
LEASE_MS = 60_000  # longer than any test: a lease only goes when a test deletes it ("expired")
SPEC = SnapshotSpec(input=ObjectRef("media", "a.mp4"), timing=SingleTime(1000), output=OutputTarget("out", "x.jpg"))


def make_job(job_id: str, state: JobState = JobState.SUBMITTED) -> SnapshotJob:
    return SnapshotJob(
        id=job_id,
        tenant=TENANT,
        pipeline_id=PIPELINE,
        spec=SPEC,
        state=state,
        created_at=from_ms(str(int(time.time() * 1000))),
    )


@dataclass(frozen=True)
class Placed:
    job_id: str
    lease_token: str | None  # of the attempt that started the job; None if it never ran


@pytest.fixture
def repo(redis_client: redis.Redis) -> RedisJobRepository:
    RedisPipelineRepository(redis_client).create(Pipeline(id=PIPELINE, name="contract"))
    return RedisJobRepository(redis_client)


def place(repo: RedisJobRepository, job_id: str, state: JobState) -> Placed:
    """A job in ``state``, got there the way production gets there: the real scripts only."""
    repo.create(make_job(job_id), "fp")
    token: str | None = None
    if state is JobState.CANCELED:
        repo.cancel_queued(job_id)
    elif state is not JobState.SUBMITTED:
        started = repo.start(job_id, worker="first:1", lease_ttl_ms=LEASE_MS, max_attempts=MAX_ATTEMPTS)
        assert started.outcome is StartOutcome.STARTED
        token = started.lease_token
        if state is not JobState.RUNNING:
            repo.finish(job_id, state, lease_token=token, error_code="X" if state is JobState.FAILED else None)
    assert repo.state_of(job_id) is state, f"could not put a job in {state} through the scripts"
    return Placed(job_id, token)


# --- every script path that writes a state, by the state it writes ---------------------------------

Path = Callable[[RedisJobRepository, redis.Redis, Placed], None]


def create_again(repo: RedisJobRepository, r: redis.Redis, placed: Placed) -> None:
    with contextlib.suppress(InvalidJobState):  # the refusal is judged by what Redis holds, below
        repo.create(make_job(placed.job_id), "fp-again")


def deliver(repo: RedisJobRepository, r: redis.Redis, placed: Placed) -> None:
    """A task message arrives (first delivery, or a duplicate while the attempt's lease is live)."""
    repo.start(placed.job_id, worker="second:1", lease_ttl_ms=LEASE_MS, max_attempts=MAX_ATTEMPTS)


def deliver_after_lease_expired(repo: RedisJobRepository, r: redis.Redis, placed: Placed) -> None:
    """The reconciler's re-send once the worker died: a takeover while attempts remain."""
    r.delete(keys.lease(placed.job_id))
    repo.start(placed.job_id, worker="second:1", lease_ttl_ms=LEASE_MS, max_attempts=MAX_ATTEMPTS)


def deliver_after_attempts_ran_out(repo: RedisJobRepository, r: redis.Redis, placed: Placed) -> None:
    """The same re-send when the job already used its one allowed attempt: failed (WorkerLost)."""
    r.delete(keys.lease(placed.job_id))
    repo.start(placed.job_id, worker="second:1", lease_ttl_ms=LEASE_MS, max_attempts=1)


def finish_as(target: JobState, *, check_lease: bool) -> Path:
    def finish(repo: RedisJobRepository, r: redis.Redis, placed: Placed) -> None:
        repo.finish(
            placed.job_id,
            target,
            lease_token=placed.lease_token if check_lease else None,
            error_code="X" if target is JobState.FAILED else None,
        )

    return finish


def cancel_queued(repo: RedisJobRepository, r: redis.Redis, placed: Placed) -> None:
    repo.cancel_queued(placed.job_id)


PATHS: dict[JobState, dict[str, Path]] = {
    JobState.SUBMITTED: {"create under the same id": create_again},
    JobState.RUNNING: {
        "start": deliver,
        "takeover": deliver_after_lease_expired,
    },
    JobState.SUCCEEDED: {
        "finish": finish_as(JobState.SUCCEEDED, check_lease=True),
        "finish, no lease check": finish_as(JobState.SUCCEEDED, check_lease=False),
    },
    JobState.FAILED: {
        "finish": finish_as(JobState.FAILED, check_lease=True),
        "finish, no lease check": finish_as(JobState.FAILED, check_lease=False),
        "attempts exhausted": deliver_after_attempts_ran_out,
    },
    JobState.CANCELED: {
        "finish": finish_as(JobState.CANCELED, check_lease=True),
        "finish, no lease check": finish_as(JobState.CANCELED, check_lease=False),
        "cancel queued": cancel_queued,
    },
}


def test_every_state_has_its_writing_paths() -> None:
    assert set(PATHS) == set(JobState)


def bookkeeping_problems(r: redis.Redis, job_id: str) -> list[str]:
    """What the stored state implies about the job's other keys and does not hold, if anything."""
    state = JobState(r.hget(keys.job(job_id), "state"))
    problems = []
    indexed = sorted(s.value for s in JobState if r.zscore(keys.tenant_state_jobs(TENANT, s.value), job_id) is not None)
    if indexed != [state.value]:
        problems.append(f"a {state} job is listed under {indexed}")
    by_pipeline = sorted(
        s.value
        for s in JobState
        if r.zscore(keys.tenant_pipeline_state_jobs(TENANT, PIPELINE, s.value), job_id) is not None
    )
    if by_pipeline != [state.value]:
        problems.append(f"a {state} job is listed by pipeline and state under {by_pipeline}")
    sets = {
        name
        for name, key in [
            ("pending", keys.pending(PIPELINE)),
            ("dispatched", keys.dispatched(PIPELINE)),
            ("running", keys.running(PIPELINE)),
        ]
        if r.zscore(key, job_id) is not None
    }
    expected = {JobState.SUBMITTED: [{"pending"}, {"dispatched"}], JobState.RUNNING: [{"running"}]}
    if sets not in expected.get(state, [set()]):
        problems.append(f"a {state} job is in the scheduling sets {sorted(sets)}")
    if bool(r.exists(keys.lease(job_id))) != (state is JobState.RUNNING):
        problems.append(f"a {state} job {'holds' if r.exists(keys.lease(job_id)) else 'lacks'} a lease")
    announced = sum(1 for _, entry in r.xrange(keys.OUTBOX) if entry["job_id"] == job_id)
    if announced != (1 if state.is_terminal else 0):
        problems.append(f"a {state} job was announced on the outbox {announced} times")
    return problems


PAIRS = [(source, target) for source in JobState for target in JobState]


@pytest.mark.parametrize(("source", "target"), PAIRS, ids=[f"{s}->{t}" for s, t in PAIRS])
def test_the_scripts_take_exactly_the_transitions_the_table_allows(
    repo: RedisJobRepository, redis_client: redis.Redis, source: JobState, target: JobState
) -> None:
    entered: dict[str, bool] = {}
    problems: list[str] = []
    for n, (name, path) in enumerate(PATHS[target].items()):
        placed = place(repo, f"job-{n}", source)
        before = redis_client.hgetall(keys.job(placed.job_id))
        path(repo, redis_client, placed)
        after = redis_client.hgetall(keys.job(placed.job_id))
        entered[name] = after != before and after.get("state") == target.value
        problems += [f"{name} on a {source} job: {p}" for p in bookkeeping_problems(redis_client, placed.job_id)]
    allowed = can_transition(source, target)
    forbidden = [name for name, moved in entered.items() if moved and not allowed]
    assert not forbidden, f"{forbidden} moved a {source} job to {target}, which TRANSITIONS forbids"
    if allowed:
        assert any(entered.values()), f"TRANSITIONS allows {source} -> {target}, but no script path performs it"
    assert not problems


@pytest.mark.parametrize("state", list(JobState), ids=str)
def test_a_new_job_is_stored_only_in_the_initial_state(
    repo: RedisJobRepository, redis_client: redis.Redis, state: JobState
) -> None:
    with contextlib.suppress(InvalidJobState):
        repo.create(make_job("new", state), "fp")
    stored = redis_client.hget(keys.job("new"), "state")
    assert (stored == state.value) == can_create(state)
    if can_create(state):
        assert not bookkeeping_problems(redis_client, "new")
    else:
        assert stored is None and not redis_client.zcard(keys.pending(PIPELINE))
        assert not redis_client.zcard(keys.tenant_jobs(TENANT))
