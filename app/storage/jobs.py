"""The Redis job repository: one hash per job, indexes for listing, atomic transitions.

Every write of a job's ``state`` happens here, inside a Lua script that checks the move against
``app.core.states.TRANSITIONS`` (rendered into the script itself, see ``app.storage.lua``) and
moves the job between the scheduling sets in the same step, so a crash between two writes cannot
leave a job half-moved. A refused transition is how a task recognises a duplicate delivery.
Terminal transitions append the job to the outbox stream in the same script (persist before
publish: the notifier only ever sees stored outcomes).
"""

from __future__ import annotations

import base64
import json
import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Protocol

import orjson
import redis

from app.core.errors import (
    DomainError,
    FailureCode,
    IdempotencyConflict,
    InvalidJobState,
    InvalidParameter,
    JobNotFound,
    PipelineNotFound,
)
from app.core.jobs import MAX_PRIORITY, Manifest, NotificationResult, SnapshotJob
from app.core.ports import CountedJobPage, JobPage, JobQuery
from app.core.states import INITIAL_STATE, JobState
from app.storage import keys
from app.storage.jobhash import (
    LISTPACK_VALUE_BYTES,
    attributes,
    encode,
    finish_fields,
    from_ms,
    job_from_hash,
    job_to_hash,
    notification_fields,
    pack_json,
    to_ms,
    written_fields,
    written_objects,
)
from app.storage.lua import (
    CANCEL_QUEUED,
    CREATE,
    DELETE_JOB,
    FINISH,
    HEARTBEAT,
    PUT_EXISTING,
    RECORD_WRITTEN,
    REINDEX_JOBS,
    START,
    SWEEP_JOB,
)
from app.storage.scripts import LeanScript

__all__ = ["RedisJobRepository", "from_ms", "job_from_hash", "job_to_hash", "now_ms", "to_ms"]

RANK_PRIORITY_FACTOR = 10**12  # rank = (MAX_PRIORITY - priority) * factor + submission seq: lowest first
DEFAULT_RETENTION_MS = 30 * 86_400_000  # OPENMPS_JOB_RETENTION_DAYS' default

log = logging.getLogger(__name__)

# pipeline_id -> anything; told after a transition freed one of that pipeline's slots. In
# production it is ``RedisScheduler.dispatch`` (see ``app/wiring.py``).
SlotFreed = Callable[[str], object]


class CreateDispatch(Protocol):
    """What ``create`` needs to fill a pipeline's dispatch window in its own script: the window
    size and a way to send the task messages for the jobs the script moved to dispatched. In
    production it is the ``RedisScheduler`` (``app/wiring.py``); a Protocol because the scheduler
    imports from this module."""

    window: int

    def send_dispatched(self, pipeline_id: str, job_ids: Sequence[str]) -> int: ...


def now_ms() -> int:
    return int(datetime.now(tz=UTC).timestamp() * 1000)


class StartOutcome(StrEnum):
    STARTED = "started"
    TAKEOVER = "takeover"  # a previous attempt's worker died; this attempt runs the job again
    PAUSED = "paused"  # pipeline paused: the job went back to pending, untouched
    BUSY = "busy"  # pipeline at its concurrency cap: back to pending
    DUPLICATE = "duplicate"  # another live attempt holds the job, or it is already finished
    EXHAUSTED = "exhausted"  # too many attempts: the job was failed with WorkerLost
    MISSING = "missing"
    REFUSED = "refused"  # the transition table allows no start from here (never with today's table)


@dataclass(frozen=True)
class Placement:
    """What a transition needs to name a job's keys, read without loading the whole job."""

    pipeline_id: str
    tenant: str
    client_token: str  # "" when none
    state: str

    def idem(self, job_id: str) -> tuple[str, str]:
        """(idempotency key or the job's own key when unused, use flag) for the scripts."""
        if self.client_token:
            return keys.idempotency(self.tenant, self.client_token), "1"
        return keys.job(job_id), "0"

    def expiry_member(self, job_id: str, state: str) -> str:
        return f"{self.tenant}|{self.pipeline_id}|{state}|{job_id}"


@dataclass(frozen=True)
class StartResult:
    outcome: StartOutcome
    lease_token: str
    attempts: int


def _flat(fields: dict[str, str]) -> list[str]:
    return [item for pair in fields.items() for item in pair]


def _objects(members: set[str]) -> list[tuple[str, str]]:
    """(bucket, key) of a written set's "bucket/key" members."""
    return sorted((m.split("/", 1)[0], m.split("/", 1)[1]) for m in members if "/" in m)


def _script_json(data: object) -> str:
    """JSON for a script's argument, UTF-8 as is (like HSET's): orjson, a measurable share of a
    batch's cost cheaper than ``json.dumps``; Python's for what orjson refuses (a lone surrogate
    in a vendor's free text), which the client then encodes as it always has."""
    try:
        return orjson.dumps(data).decode()
    except TypeError:  # orjson.JSONEncodeError
        return json.dumps(data, separators=(",", ":"), ensure_ascii=False)


def _index_keys(tenant: str, pipeline_id: str, state: str) -> list[str]:
    """The listing indexes a job in ``state`` sits in (creation, deletion and the sweep)."""
    return [
        keys.tenant_jobs(tenant),
        keys.tenant_state_jobs(tenant, state),
        keys.tenant_pipeline_jobs(tenant, pipeline_id),
        keys.tenant_pipeline_state_jobs(tenant, pipeline_id, state),
    ]


def _moved_index_keys(placement: Placement, *states: JobState) -> list[str]:
    """The per-(tenant, pipeline, state) indexes a transition script moves the job between."""
    return [keys.tenant_pipeline_state_jobs(placement.tenant, placement.pipeline_id, s.value) for s in states]


class RedisJobRepository:
    """Jobs in Redis. ``client`` must be created with ``decode_responses=True``.

    ``on_slot_freed`` is called with the pipeline id right after a stored transition that freed one
    of the pipeline's slots: start and takeover (the job left the dispatch window), cancel of a
    queued job (it may have been in the window), finish and exhausted attempts (a running slot,
    which is what a concurrency cap counts). Refilling here, in the one place that performs those
    transitions, means no caller (task, use case) can forget to. It is a callback rather than the
    scheduler itself because the scheduler imports from this module, and because readers such as
    the notifier need a repository that never dispatches (they pass none). The transition is stored
    before the callback runs, so a refill that fails is logged, never raised into the transition's
    caller: the scheduler's reconcile pass refills every window anyway.
    """

    def __init__(
        self,
        client: redis.Redis,
        *,
        on_slot_freed: SlotFreed | None = None,
        retention_ms: int = DEFAULT_RETENTION_MS,
        dispatch: CreateDispatch | None = None,
    ) -> None:
        self.r = client
        self.on_slot_freed = on_slot_freed
        self.dispatch = dispatch
        self.retention_ms = retention_ms
        self._complete_indexes: set[tuple[str, str]] = set()  # see _pipeline_state_index_complete
        self._delete_job = client.register_script(DELETE_JOB)
        self._sweep_job = client.register_script(SWEEP_JOB)
        self._create = LeanScript(client, CREATE)  # the submit path's one round trip
        self._start = client.register_script(START)
        self._finish = client.register_script(FINISH)
        self._cancel_queued = client.register_script(CANCEL_QUEUED)
        self._heartbeat = client.register_script(HEARTBEAT)
        self._put_existing = client.register_script(PUT_EXISTING)
        self._record_written = client.register_script(RECORD_WRITTEN)
        self._reindex_jobs = client.register_script(REINDEX_JOBS)

    def _slot_freed(self, pipeline_id: str) -> None:
        if self.on_slot_freed is None:
            return
        try:
            self.on_slot_freed(pipeline_id)
        except Exception:  # stored already; reconcile refills the window
            log.warning("refilling pipeline %s after a freed slot failed", pipeline_id, exc_info=True)

    # --- creation and reads -------------------------------------------------------------

    def create(self, job: SnapshotJob, fingerprint: str) -> SnapshotJob:
        """Store a new job and queue it as pending in its pipeline, atomically; with ``dispatch``
        wired, the same script also fills the pipeline's dispatch window (one round trip when the
        window is full, and the task messages are sent only after the script stored everything).

        With a client token: the same token and fingerprint return the job stored first; the same
        token with another fingerprint raises ``IdempotencyConflict``. A pipeline that is gone (or
        another tenant's) raises ``PipelineNotFound``. The script refuses a job not in the initial
        state, or an id already in use, with ``InvalidJobState``: both are bugs of the caller,
        never a client's doing.
        """
        outcome = self.create_many([(job, fingerprint)])[0]
        if isinstance(outcome, DomainError):
            raise outcome
        return outcome

    def create_many(self, jobs: Sequence[tuple[SnapshotJob, str]]) -> list[SnapshotJob | DomainError]:
        """``create`` for several (job, fingerprint) pairs in one script call: each is stored or
        refused on its own, in order (a client token stored by one is seen by a later one), and
        each pipeline that received a job has its window filled once, at the end. Returns, per
        pair, the stored job (the earlier one for a repeated token) or the error ``create`` would
        raise. A job another request stored under the same token is loaded in one more round trip.
        """
        if not jobs:
            return []
        script_keys: list[str] = [keys.SCHED_SEQ]
        batch: list[list[object]] = []
        n_idx = 0
        pipelines: list[str] = []  # distinct, in order of first use
        for job, fingerprint in jobs:
            idem_key = keys.idempotency(job.tenant, job.client_token) if job.client_token else ""
            index_keys = _index_keys(job.tenant, job.pipeline_id, job.state.value)
            if n_idx and len(index_keys) != n_idx:
                raise ValueError("every job of one create lists in the same number of indexes")
            n_idx = len(index_keys)
            script_keys += [
                keys.job(job.id),
                idem_key or keys.job(job.id),
                keys.pipeline(job.pipeline_id),
                keys.pending(job.pipeline_id),
                *index_keys,
            ]
            batch.append(
                [
                    job.id,
                    fingerprint,
                    "1" if idem_key else "0",
                    to_ms(job.created_at),
                    MAX_PRIORITY - job.priority,
                    job.tenant,
                    job_to_hash(job),
                ]
            )
            if job.pipeline_id not in pipelines:
                pipelines.append(job.pipeline_id)
        for pid in pipelines:
            script_keys += [keys.pipeline(pid), keys.pending(pid), keys.dispatched(pid), keys.running(pid)]
        window = self.dispatch.window if self.dispatch is not None else 0
        args: list[str | int] = [len(jobs), n_idx, len(pipelines), window, now_ms(), RANK_PRIORITY_FACTOR]
        args.append(_script_json(batch))
        results, sent = self._create(keys=script_keys, args=args)
        if self.dispatch is not None:
            for pid, ids in zip(pipelines, sent, strict=True):
                if ids:
                    self._send_dispatched(pid, ids)
        outcomes: list[SnapshotJob | DomainError] = []
        existing: dict[int, str] = {}  # position -> id of the job stored earlier under its token
        for pos, ((job, fingerprint), (status, first, second)) in enumerate(zip(jobs, results, strict=True)):
            outcomes.append(job)
            if status == "created":
                continue
            if status == "no_pipeline":
                outcomes[pos] = PipelineNotFound(f"pipeline {job.pipeline_id!r} does not exist")
            elif status == "refused":
                outcomes[pos] = InvalidJobState(
                    f"job id {job.id!r} is already in use (a {first} job)"
                    if first
                    else f"a job is created {INITIAL_STATE.value}, not {job.state.value}"
                )
            elif second != fingerprint:  # "exists"
                outcomes[pos] = IdempotencyConflict(
                    f"client token {job.client_token!r} was already used for a different request (job {first})"
                )
            else:
                existing[pos] = first
        created = {job.id: job for (job, _), (status, _, _) in zip(jobs, results, strict=True) if status == "created"}
        for pos, job_id in list(existing.items()):
            if job_id in created:  # a token repeated within this call: the job stored for its first use
                outcomes[pos] = created[job_id]
                del existing[pos]
        if existing:
            found = self.get_many(list(existing.values()))
            for (pos, job_id), stored in zip(existing.items(), found, strict=True):
                outcomes[pos] = stored if stored is not None else JobNotFound(f"job {job_id!r} does not exist")
        return outcomes

    def _send_dispatched(self, pipeline_id: str, job_ids: Sequence[str]) -> None:
        """The jobs are stored and dispatched already: a send that fails is logged, never raised
        into the submission (the scheduler returns unsent jobs to pending; reconcile re-sends)."""
        assert self.dispatch is not None
        try:
            self.dispatch.send_dispatched(pipeline_id, job_ids)
        except Exception:
            log.warning("sending tasks for pipeline %s after a create failed", pipeline_id, exc_info=True)

    def get(self, job_id: str) -> SnapshotJob:
        h = self.r.hgetall(keys.job(job_id))
        if not h:
            raise JobNotFound(f"job {job_id!r} does not exist")
        return job_from_hash(h)  # type: ignore[arg-type]

    def find(self, job_id: str) -> SnapshotJob | None:
        h = self.r.hgetall(keys.job(job_id))
        return job_from_hash(h) if h else None  # type: ignore[arg-type]

    def get_many(self, job_ids: list[str]) -> list[SnapshotJob | None]:
        pipe = self.r.pipeline(transaction=False)
        for jid in job_ids:
            pipe.hgetall(keys.job(jid))
        return [job_from_hash(h) if h else None for h in pipe.execute()]

    def tenants(self) -> list[str]:
        """Every tenant that has jobs in the store, sorted (operators' views span them all)."""
        prefix = keys.tenant_jobs("")
        found = {k[len(prefix) :] for k in self.r.scan_iter(match=prefix + "*", count=1000)}
        return sorted(t for t in found if ":" not in t)  # tenant names never hold ':' (credentials.py)

    def list_all(self, query: JobQuery) -> JobPage:
        """Every tenant's jobs, newest first, with the same filters and page tokens as ``list``.

        Each tenant's listing is cut at the same cursor (created ms, then id, both descending), so
        merging the tenants' pages and keeping the first ``limit`` is exact across pages."""
        found: list[SnapshotJob] = []
        more = False
        for tenant in self.tenants():
            page = self.list(tenant, query)
            found += page.jobs
            more = more or page.next_page_token is not None
        found.sort(key=lambda j: (int(to_ms(j.created_at) or 0), j.id), reverse=True)
        more = more or len(found) > query.limit
        found = found[: query.limit]
        token = encode_page_token(int(to_ms(found[-1].created_at) or 0), found[-1].id) if more and found else None
        return JobPage(jobs=found, next_page_token=token)

    def state_of(self, job_id: str) -> JobState | None:
        raw = self.r.hget(keys.job(job_id), "state")
        return JobState(raw) if raw else None

    def _listing_index(self, tenant: str, query: JobQuery) -> str:
        """The one index whose members are the jobs matching the query's state and pipeline.

        Both filters at once read the per-(pipeline, state) index once it holds every job of the
        pipeline; until then (jobs stored before it existed, see ``reindex``) the pipeline's
        index, whose jobs ``list`` then filters by state as they load."""
        if query.pipeline_id and query.state:
            if self._pipeline_state_index_complete(tenant, query.pipeline_id):
                return keys.tenant_pipeline_state_jobs(tenant, query.pipeline_id, query.state.value)
            return keys.tenant_pipeline_jobs(tenant, query.pipeline_id)
        if query.pipeline_id:
            return keys.tenant_pipeline_jobs(tenant, query.pipeline_id)
        if query.state:
            return keys.tenant_state_jobs(tenant, query.state.value)
        return keys.tenant_jobs(tenant)

    def _pipeline_state_index_complete(self, tenant: str, pipeline_id: str) -> bool:
        """Whether every job of the pipeline is in its per-state index: the counts agree.

        Every script keeps a job in at most one per-(pipeline, state) index, only while it is in
        the pipeline's index and in the one of its stored state, so equal counts mean all are
        there, and stay so (nothing written since this version can leave one out). Only jobs
        stored before it (or by an older process still running) make the sum fall short, and
        each such job enters at its next transition, its sweep or ``reindex``. A "yes" is
        remembered for this repository's life; a "no" is asked again next time."""
        if (tenant, pipeline_id) in self._complete_indexes:
            return True
        pipe = self.r.pipeline(transaction=True)  # the counts from one snapshot
        pipe.zcard(keys.tenant_pipeline_jobs(tenant, pipeline_id))
        for state in JobState:
            pipe.zcard(keys.tenant_pipeline_state_jobs(tenant, pipeline_id, state.value))
        total, *per_state = pipe.execute()
        if int(total) != sum(int(n) for n in per_state):
            return False
        if len(self._complete_indexes) >= 4096:  # bounded: a process that lists many pipelines re-asks
            self._complete_indexes.clear()
        self._complete_indexes.add((tenant, pipeline_id))
        return True

    def list(self, tenant: str, query: JobQuery) -> JobPage:
        """A page of the tenant's jobs, newest first (created ms, then id, both descending), read
        from the one index that answers the state and pipeline filters; only an origin filter
        (and a state filter on an index being rebuilt, ``_listing_index``) skips loaded jobs."""
        index = self._listing_index(tenant, query)
        max_score: str = "+inf"
        cursor: tuple[int, str] | None = None
        if query.page_token:
            cursor = decode_page_token(query.page_token)
            max_score = str(cursor[0])
        if query.created_before is not None:
            before = int(to_ms(query.created_before))
            max_score = str(min(before, int(max_score))) if max_score != "+inf" else str(before)
        min_score = to_ms(query.created_after) if query.created_after is not None else "-inf"
        found: list[SnapshotJob] = []
        # One more than a page tells whether another follows (and a page token's own job comes
        # first); an origin filter, or a state filter on the pipeline's index, skips some of what
        # it reads, so read ahead further then.
        skips = bool(query.origin) or (
            bool(query.state) and index == keys.tenant_pipeline_jobs(tenant, query.pipeline_id or "")
        )
        offset, batch = 0, max(query.limit * 2, 20) if skips else query.limit + 1 + (cursor is not None)
        while len(found) <= query.limit:
            rows = self.r.zrevrangebyscore(index, max_score, min_score, start=offset, num=batch, withscores=True)
            if not rows:
                break
            offset += len(rows)
            candidates = [
                jid
                for jid, score in rows
                if cursor is None or int(score) < cursor[0] or (int(score) == cursor[0] and jid < cursor[1])
            ]
            for job in self.get_many(candidates):
                if job is None:
                    continue
                if query.state and job.state != query.state:
                    continue
                if query.pipeline_id and job.pipeline_id != query.pipeline_id:
                    continue
                if query.origin and job.origin != query.origin:
                    continue
                found.append(job)
                if len(found) > query.limit:
                    break
        next_token = None
        if len(found) > query.limit:
            found = found[: query.limit]
            last = found[-1]
            next_token = encode_page_token(int(to_ms(last.created_at)), last.id)
        return JobPage(jobs=found, next_page_token=next_token)

    def list_at(self, tenant: str, query: JobQuery, offset: int) -> CountedJobPage:
        """Offset paging with a total, in ``list``'s order (score = created ms, then id, both
        descending). One index answers the state and pipeline filters (``_listing_index``): ZCOUNT
        for the total and a LIMIT range for the page, without loading any other job. Only while
        the per-(pipeline, state) index is incomplete do both filters at once intersect the
        pipeline's and the state's indexes in the time range (ids only, no hashes)."""
        max_score = str(int(to_ms(query.created_before))) if query.created_before is not None else "+inf"
        min_score = to_ms(query.created_after) if query.created_after is not None else "-inf"
        index = self._listing_index(tenant, query)
        if query.pipeline_id and query.state and index == keys.tenant_pipeline_jobs(tenant, query.pipeline_id):
            in_state = set(
                self.r.zrangebyscore(keys.tenant_state_jobs(tenant, query.state.value), min_score, max_score)
            )
            ids = [
                jid
                for jid in self.r.zrevrangebyscore(
                    keys.tenant_pipeline_jobs(tenant, query.pipeline_id), max_score, min_score
                )
                if jid in in_state
            ]
            total, page_ids = len(ids), ids[offset : offset + query.limit]
        else:
            pipe = self.r.pipeline(transaction=True)  # the count and the page from one snapshot
            pipe.zcount(index, min_score, max_score)
            pipe.zrevrangebyscore(index, max_score, min_score, start=offset, num=query.limit)
            total, page_ids = pipe.execute()
        return CountedJobPage(jobs=[j for j in self.get_many(list(page_ids)) if j is not None], total=int(total))

    # --- transitions (the only writers of ``state``) --------------------------------------

    def placement(self, job_id: str) -> Placement | None:
        pipeline_id, tenant, token, state = self.r.hmget(
            keys.job(job_id), ["pipeline_id", "tenant", "client_token", "state"]
        )
        if pipeline_id is None or tenant is None:
            return None
        return Placement(pipeline_id, tenant, token or "", state or "")

    def _retention_args(self, job_id: str, placement: Placement, state: JobState) -> list[str]:
        """use_idem, retention_ms, expire_at_ms, expiry member: the RETAIN part of a script's ARGV."""
        _, use_idem = placement.idem(job_id)
        expire_at = now_ms() + self.retention_ms
        return [use_idem, str(self.retention_ms), str(expire_at), placement.expiry_member(job_id, state.value)]

    def _retention_keys(self, job_id: str, placement: Placement) -> list[str]:
        idem_key, _ = placement.idem(job_id)
        return [idem_key, keys.written(job_id), keys.JOBS_EXPIRY]

    def start(self, job_id: str, *, worker: str, lease_ttl_ms: int, max_attempts: int) -> StartResult:
        """submitted -> running (or running -> running when the previous attempt's lease expired)."""
        job_key = keys.job(job_id)
        placement = self.placement(job_id)
        if placement is None:
            return StartResult(StartOutcome.MISSING, "", 0)
        pipeline_id, tenant = placement.pipeline_id, placement.tenant
        token = base64.urlsafe_b64encode(os.urandom(12)).decode()
        worker = worker.encode()[:LISTPACK_VALUE_BYTES].decode(errors="ignore")  # informational: keep the hash small
        res = self._start(
            keys=[
                job_key,
                keys.pipeline(pipeline_id),
                keys.pending(pipeline_id),
                keys.dispatched(pipeline_id),
                keys.running(pipeline_id),
                keys.lease(job_id),
                keys.OUTBOX,
                keys.tenant_state_jobs(tenant, JobState.SUBMITTED.value),
                keys.tenant_state_jobs(tenant, JobState.RUNNING.value),
                keys.tenant_state_jobs(tenant, JobState.FAILED.value),
                *self._retention_keys(job_id, placement),
                *_moved_index_keys(placement, JobState.SUBMITTED, JobState.RUNNING, JobState.FAILED),
            ],
            args=[
                job_id,
                now_ms(),
                lease_ttl_ms,
                token,
                max_attempts,
                worker,
                FailureCode.WORKER_LOST.value,
                *self._retention_args(job_id, placement, JobState.FAILED),
            ],
        )
        result = StartResult(StartOutcome(res[0]), token, int(res[1]))
        if result.outcome in (StartOutcome.STARTED, StartOutcome.TAKEOVER, StartOutcome.EXHAUSTED):
            self._slot_freed(pipeline_id)
        return result

    def heartbeat(self, job_id: str, lease_token: str, lease_ttl_ms: int) -> bool:
        """Extend the lease if this attempt still holds it. False = the job was taken over or ended."""
        return bool(self._heartbeat(keys=[keys.lease(job_id)], args=[lease_token, lease_ttl_ms]))

    def finish(
        self,
        job_id: str,
        target: JobState,
        *,
        lease_token: str | None,
        manifest: Manifest | None = None,
        error_code: str | None = None,
        error_message: str | None = None,
    ) -> bool:
        """Move a job to a terminal state. False when refused (lost lease, already ended, or a move
        the transition table forbids). Non-terminal targets are not this script's business: the
        lease, the outbox and the indexes it touches assume the job ends here."""
        if not target.is_terminal:
            raise ValueError(f"finish moves a job to a terminal state, not {target.value}")
        pipe = self.r.pipeline(transaction=False)
        pipe.hgetall(keys.job(job_id))
        pipe.smembers(keys.written(job_id))
        stored, recorded = pipe.execute()
        if not stored or "tenant" not in stored:
            return False
        job = job_from_hash(stored)
        placement = Placement(job.pipeline_id, job.tenant, job.client_token or "", job.state.value)
        pipeline_id, tenant = placement.pipeline_id, placement.tenant
        fields = {"finished_ms": str(now_ms()), **finish_fields(manifest, error_code, error_message)}
        # What it wrote, folded into the hash (jobhash.py); FINISH keeps the set if it grew since.
        objects = _objects(recorded)
        written = written_fields(objects, job.spec.output.bucket, manifest) if objects else {}
        res = self._finish(
            keys=[
                keys.job(job_id),
                keys.lease(job_id),
                keys.running(pipeline_id),
                keys.pending(pipeline_id),
                keys.dispatched(pipeline_id),
                keys.OUTBOX,
                keys.tenant_state_jobs(tenant, JobState.SUBMITTED.value),
                keys.tenant_state_jobs(tenant, JobState.RUNNING.value),
                keys.tenant_state_jobs(tenant, target.value),
                *self._retention_keys(job_id, placement),
                *_moved_index_keys(placement, JobState.SUBMITTED, JobState.RUNNING, target),
            ],
            args=[
                job_id,
                target.value,
                lease_token or "",
                *self._retention_args(job_id, placement, target),
                str(len(recorded)) if objects else "-1",
                len(written),
                *_flat(written),
                *_flat(fields),
            ],
        )
        if res != "ok":
            return False
        self._slot_freed(pipeline_id)
        return True

    def cancel_queued(self, job_id: str) -> bool:
        """submitted -> canceled, removing it from its pipeline's queue. False if not submitted.

        A canceled job that was dispatched held a window slot: it is refilled now, not at the next
        reconcile (``on_slot_freed``)."""
        placement = self.placement(job_id)
        if placement is None:
            return False
        pipeline_id, tenant = placement.pipeline_id, placement.tenant
        res = self._cancel_queued(
            keys=[
                keys.job(job_id),
                keys.pending(pipeline_id),
                keys.dispatched(pipeline_id),
                keys.OUTBOX,
                keys.tenant_state_jobs(tenant, JobState.SUBMITTED.value),
                keys.tenant_state_jobs(tenant, JobState.CANCELED.value),
                *self._retention_keys(job_id, placement),
                *_moved_index_keys(placement, JobState.SUBMITTED, JobState.CANCELED),
            ],
            args=[job_id, str(now_ms()), *self._retention_args(job_id, placement, JobState.CANCELED)],
        )
        if res != "ok":
            return False
        self._slot_freed(pipeline_id)
        return True

    # --- side fields that never change state ---------------------------------------------

    def request_cancel(self, job_id: str) -> None:
        self.r.hset(keys.job(job_id), "cancel_requested", "1")

    def cancel_requested(self, job_id: str) -> bool:
        return self.r.hget(keys.job(job_id), "cancel_requested") == "1"

    def record_progress(self, job_id: str, done: int, total: int) -> None:
        self.r.hset(keys.job(job_id), mapping={"progress_done": str(done), "progress_total": str(total)})

    def record_notification(self, job_id: str, result: NotificationResult) -> None:
        """Only onto a stored job: a bare HSET after the job's retention ended would recreate its
        hash holding this one field, with no TTL."""
        self._put_existing(keys=[keys.job(job_id)], args=_flat(notification_fields(result)))

    # --- what a job wrote, deletion and retention -----------------------------------------

    def record_written(self, job_id: str, bucket: str, key: str) -> None:
        """Called right after each object the job writes is stored (workers), so cleanup deletes
        only those: never an object that merely shares a planned key. Into the job's written set
        while the job is stored (``RECORD_WRITTEN``)."""
        self._record_written(keys=[keys.job(job_id), keys.written(job_id)], args=[f"{bucket}/{key}"])

    def _written(self, job_id: str) -> tuple[dict[str, str], list[tuple[str, str]]]:
        pipe = self.r.pipeline(transaction=False)
        pipe.hgetall(keys.job(job_id))
        pipe.smembers(keys.written(job_id))
        stored, recorded = pipe.execute()
        return stored, written_objects(stored, _objects(recorded)) if stored else _objects(recorded)

    def written(self, job_id: str) -> list[tuple[str, str]]:
        """Every object the job's attempts wrote, sorted: its set, and once it finished, what its
        hash's ``written`` attribute holds (``jobhash.written_objects``)."""
        return self._written(job_id)[1]

    def forget_written(self, job_id: str, objects: list[tuple[str, str]]) -> None:
        """Drop deleted objects from the record (cancel cleanup, before the job finishes). On a
        finished job the hash's ``written`` attribute is rewritten too, listing every object left."""
        if not objects:
            return
        self.r.srem(keys.written(job_id), *(f"{b}/{k}" for b, k in objects))
        stored, every = self._written(job_id)
        if attributes(stored).get("written"):
            gone = set(objects)
            left = [list(o) for o in every if o not in gone]
            fields = encode({"written": pack_json({"objects": left})}, keep_empty=True)
            self._put_existing(keys=[keys.job(job_id)], args=_flat(fields))

    def delete(self, job_id: str) -> bool:
        placement = self.placement(job_id)
        if placement is None:
            return False
        idem_key, use_idem = placement.idem(job_id)
        return bool(
            self._delete_job(
                keys=[
                    keys.job(job_id),
                    *_index_keys(placement.tenant, placement.pipeline_id, placement.state),
                    idem_key,
                    keys.written(job_id),
                    keys.JOBS_EXPIRY,
                ],
                args=[job_id, placement.state, use_idem, placement.expiry_member(job_id, placement.state)],
            )
        )

    def sweep_expired(self, *, now: int | None = None, batch: int = 500) -> int:
        """Clear the index entries of finished jobs whose retention ended (workers run this with
        the reconcile pass). Returns how many jobs were swept; queued and running jobs are never
        in the expiry set, and one found there anyway is left alone."""
        cutoff = now_ms() if now is None else now
        swept = 0
        while True:
            due: list[str] = self.r.zrangebyscore(keys.JOBS_EXPIRY, "-inf", cutoff, start=0, num=batch)
            for member in due:
                parts = member.split("|")
                if len(parts) != 4:
                    self.r.zrem(keys.JOBS_EXPIRY, member)
                    continue
                tenant, pipeline_id, state, job_id = parts
                swept += int(
                    self._sweep_job(
                        keys=[
                            keys.job(job_id),
                            *_index_keys(tenant, pipeline_id, state),
                            keys.written(job_id),
                            keys.JOBS_EXPIRY,
                        ],
                        args=[job_id, member],
                    )
                )
            if len(due) < batch:
                return swept

    def reindex(self, *, batch: int = 500) -> ReindexReport:
        """Rebuild every per-(tenant, pipeline, state) index (``openmps store reindex``).

        For stores that hold jobs from before that index existed: listing by pipeline and state
        is right without it (``_listing_index`` falls back to filtering the pipeline's index) but
        reads the whole pipeline. Jobs enter it anyway at their next transition and finished ones
        leave with the retention sweep, so a store heals by itself within the retention; this
        makes it at once, and repairs what an older process still running beside a newer one
        wrote (run it once the last older process is gone). Safe while the service runs: each
        batch is one script that derives the entries from the indexes every version keeps."""
        prefix = keys.tenant_jobs("")
        pairs: set[tuple[str, str]] = set()
        for name in self.r.scan_iter(match=prefix + "*", count=1000):
            tenant, _, rest = name[len(prefix) :].partition(":")
            kind, _, tail = rest.partition(":")
            if kind == "p":
                pairs.add((tenant, tail))
            elif kind == "ps":
                pairs.add((tenant, tail.partition(":")[2]))
        seen = changed = 0
        for tenant, pipeline_id in sorted(pairs):
            by_state = [keys.tenant_pipeline_state_jobs(tenant, pipeline_id, s.value) for s in JobState]
            script_keys = [keys.tenant_pipeline_jobs(tenant, pipeline_id)]
            for state, index in zip(JobState, by_state, strict=True):
                script_keys += [keys.tenant_state_jobs(tenant, state.value), index]
            for source in [script_keys[0], *by_state]:  # stray entries of the per-state ones go too
                ids: list[str] = []
                for job_id, _ in self.r.zscan_iter(source, count=batch):
                    ids.append(job_id)
                    if len(ids) == batch:
                        changed += int(self._reindex_jobs(keys=script_keys, args=ids))
                        seen, ids = seen + len(ids), []
                if ids:
                    changed += int(self._reindex_jobs(keys=script_keys, args=ids))
                    seen += len(ids)
            self._complete_indexes.discard((tenant, pipeline_id))
        return ReindexReport(len(pairs), seen, changed)


@dataclass(frozen=True)
class ReindexReport:
    pipelines: int  # (tenant, pipeline) pairs whose per-state indexes were rebuilt
    entries: int  # index members looked at (a job counts once per index it was found in)
    changed: int  # entries added or removed


def encode_page_token(score: int, job_id: str) -> str:
    return base64.urlsafe_b64encode(f"{score}:{job_id}".encode()).decode().rstrip("=")


def decode_page_token(token: str) -> tuple[int, str]:
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
        score, job_id = raw.split(":", 1)
        return int(score), job_id
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidParameter("page_token", "is not valid") from exc
