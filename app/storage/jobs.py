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
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from enum import StrEnum

import redis

from app.core.errors import (
    FailureCode,
    IdempotencyConflict,
    InvalidJobState,
    InvalidParameter,
    JobNotFound,
    PipelineNotFound,
)
from app.core.jobs import DEFAULT_ORIGIN, DEFAULT_PRIORITY, MAX_PRIORITY, Manifest, NotificationResult, SnapshotJob
from app.core.ports import CountedJobPage, JobPage, JobQuery
from app.core.progress import ProgressEvents
from app.core.specs import spec_from_dict, spec_to_dict
from app.core.states import INITIAL_STATE, JobState
from app.storage import keys
from app.storage.lua import CANCEL_QUEUED, CREATE, DELETE_JOB, FINISH, HEARTBEAT, HSET_EXISTING, START, SWEEP_JOB

RANK_PRIORITY_FACTOR = 10**12  # rank = (MAX_PRIORITY - priority) * factor + submission seq: lowest first
DEFAULT_RETENTION_MS = 30 * 86_400_000  # OPENMPS_JOB_RETENTION_DAYS' default

log = logging.getLogger(__name__)

# pipeline_id -> anything; told after a transition freed one of that pipeline's slots. In
# production it is ``RedisScheduler.dispatch`` (see ``app/wiring.py``).
SlotFreed = Callable[[str], object]


def to_ms(dt: datetime | None) -> str:
    return "" if dt is None else str(int(dt.timestamp() * 1000))


def from_ms(raw: str | None) -> datetime | None:
    return None if not raw else datetime.fromtimestamp(int(raw) / 1000, tz=UTC)


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


def job_to_hash(job: SnapshotJob) -> dict[str, str]:
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


def job_from_hash(h: dict[str, str]) -> SnapshotJob:
    return SnapshotJob(
        id=h["id"],
        tenant=h["tenant"],
        pipeline_id=h["pipeline_id"],
        spec=spec_from_dict(json.loads(h["spec"])),
        state=JobState(h["state"]),
        priority=int(h.get("priority") or DEFAULT_PRIORITY),
        user_data=h.get("user_data") if h.get("has_user_data") == "1" else None,
        client_token=h.get("client_token") or None,
        webhook_url=h.get("webhook_url") or None,
        created_at=from_ms(h.get("created_ms")),
        started_at=from_ms(h.get("started_ms")),
        finished_at=from_ms(h.get("finished_ms")),
        attempts=int(h.get("attempts") or 0),
        progress_done=int(h.get("progress_done") or 0),
        progress_total=int(h.get("progress_total") or 0),
        manifest=Manifest.from_dict(json.loads(h["manifest"])) if h.get("manifest") else Manifest(),
        error_code=h.get("error_code") or None,
        error_message=h.get("error_message") or None,
        notification=NotificationResult(**json.loads(h["notification"])) if h.get("notification") else None,
        origin=h.get("origin") or DEFAULT_ORIGIN,
        dialect_data=json.loads(h["dialect_data"]) if h.get("dialect_data") else {},
        retry_of=h.get("retry_of") or None,
        progress_events=ProgressEvents.from_dict(json.loads(h["progress_events"]))
        if h.get("progress_events")
        else None,
    )


def _index_keys(tenant: str, pipeline_id: str, state: str) -> list[str]:
    return [
        keys.tenant_jobs(tenant),
        keys.tenant_state_jobs(tenant, state),
        keys.tenant_pipeline_jobs(tenant, pipeline_id),
    ]


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
        self, client: redis.Redis, *, on_slot_freed: SlotFreed | None = None, retention_ms: int = DEFAULT_RETENTION_MS
    ) -> None:
        self.r = client
        self.on_slot_freed = on_slot_freed
        self.retention_ms = retention_ms
        self._delete_job = client.register_script(DELETE_JOB)
        self._sweep_job = client.register_script(SWEEP_JOB)
        self._create = client.register_script(CREATE)
        self._start = client.register_script(START)
        self._finish = client.register_script(FINISH)
        self._cancel_queued = client.register_script(CANCEL_QUEUED)
        self._heartbeat = client.register_script(HEARTBEAT)
        self._hset_existing = client.register_script(HSET_EXISTING)

    def _slot_freed(self, pipeline_id: str) -> None:
        if self.on_slot_freed is None:
            return
        try:
            self.on_slot_freed(pipeline_id)
        except Exception:  # stored already; reconcile refills the window
            log.warning("refilling pipeline %s after a freed slot failed", pipeline_id, exc_info=True)

    # --- creation and reads -------------------------------------------------------------

    def create(self, job: SnapshotJob, fingerprint: str) -> SnapshotJob:
        """Store a new job and queue it as pending in its pipeline, atomically.

        With a client token: the same token and fingerprint return the job stored first; the same
        token with another fingerprint raises ``IdempotencyConflict``. The script refuses a job not
        in the initial state, or an id already in use, with ``InvalidJobState``: both are bugs of
        the caller, never a client's doing.
        """
        idem_key = keys.idempotency(job.tenant, job.client_token) if job.client_token else ""
        fields = job_to_hash(job)
        flat: list[str] = []
        for k, v in fields.items():
            flat += [k, v]
        result = self._create(
            keys=[
                keys.job(job.id),
                idem_key or keys.job(job.id),
                *_index_keys(job.tenant, job.pipeline_id, job.state.value),
                keys.pending(job.pipeline_id),
                keys.SCHED_SEQ,
                keys.pipeline(job.pipeline_id),
            ],
            args=[
                job.id,
                fingerprint,
                "1" if idem_key else "0",
                to_ms(job.created_at),
                MAX_PRIORITY - job.priority,
                RANK_PRIORITY_FACTOR,
                *flat,
            ],
        )
        status = result[0]
        if status == "no_pipeline":
            raise PipelineNotFound(f"pipeline {job.pipeline_id!r} does not exist")
        if status == "refused":
            stored_state = result[1]  # of the job already stored under this id, "" if none
            if stored_state:
                raise InvalidJobState(f"job id {job.id!r} is already in use (a {stored_state} job)")
            raise InvalidJobState(f"a job is created {INITIAL_STATE.value}, not {job.state.value}")
        existing_id, existing_fp = result[1], result[2]
        if status == "exists":
            if existing_fp != fingerprint:
                raise IdempotencyConflict(
                    f"client token {job.client_token!r} was already used for a different request (job {existing_id})"
                )
            return self.get(existing_id)
        return job

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

    def list(self, tenant: str, query: JobQuery) -> JobPage:
        if query.pipeline_id:
            index = keys.tenant_pipeline_jobs(tenant, query.pipeline_id)
        elif query.state:
            index = keys.tenant_state_jobs(tenant, query.state.value)
        else:
            index = keys.tenant_jobs(tenant)
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
        offset, batch = 0, max(query.limit * 2, 20)
        while len(found) <= query.limit:
            rows = self.r.zrevrangebyscore(index, max_score, min_score, start=offset, num=batch, withscores=True)
            if not rows:
                break
            offset += len(rows)
            candidates = [
                (jid, int(score))
                for jid, score in rows
                if cursor is None or int(score) < cursor[0] or (int(score) == cursor[0] and jid < cursor[1])
            ]
            for job in self.get_many([jid for jid, _ in candidates]):
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
        descending). One index answers a filter on state or pipeline alone: ZCOUNT for the total
        and a LIMIT range for the page, without loading any other job. Both filters at once
        intersect the two indexes' ids in the time range (ids only, no hashes)."""
        max_score = str(int(to_ms(query.created_before))) if query.created_before is not None else "+inf"
        min_score = to_ms(query.created_after) if query.created_after is not None else "-inf"
        if query.pipeline_id and query.state:
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
            if query.pipeline_id:
                index = keys.tenant_pipeline_jobs(tenant, query.pipeline_id)
            elif query.state:
                index = keys.tenant_state_jobs(tenant, query.state.value)
            else:
                index = keys.tenant_jobs(tenant)
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
        placement = self.placement(job_id)
        if placement is None:
            return False
        pipeline_id, tenant = placement.pipeline_id, placement.tenant
        fields: dict[str, str] = {"finished_ms": str(now_ms())}
        if manifest is not None:
            fields["manifest"] = json.dumps(manifest.to_dict(), separators=(",", ":"))
            fields["progress_done"] = str(len(manifest.images))
        if error_code is not None:
            fields["error_code"] = error_code
            fields["error_message"] = error_message or ""
        flat: list[str] = []
        for k, v in fields.items():
            flat += [k, v]
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
            ],
            args=[job_id, target.value, lease_token or "", *self._retention_args(job_id, placement, target), *flat],
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
        self._hset_existing(keys=[keys.job(job_id)], args=["notification", json.dumps(asdict(result))])

    # --- what a job wrote, deletion and retention -----------------------------------------

    def record_written(self, job_id: str, bucket: str, key: str) -> None:
        """Called right after each object the job writes is stored (workers), so cleanup deletes
        only those: never an object that merely shares a planned key."""
        self.r.sadd(keys.written(job_id), f"{bucket}/{key}")

    def written(self, job_id: str) -> list[tuple[str, str]]:
        members: set[str] = self.r.smembers(keys.written(job_id))  # type: ignore[assignment]
        return sorted(tuple(m.split("/", 1)) for m in members if "/" in m)  # type: ignore[misc]

    def forget_written(self, job_id: str, objects: list[tuple[str, str]]) -> None:
        if objects:
            self.r.srem(keys.written(job_id), *(f"{b}/{k}" for b, k in objects))

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


def encode_page_token(score: int, job_id: str) -> str:
    return base64.urlsafe_b64encode(f"{score}:{job_id}".encode()).decode().rstrip("=")


def decode_page_token(token: str) -> tuple[int, str]:
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
        score, job_id = raw.split(":", 1)
        return int(score), job_id
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidParameter("page_token", "is not valid") from exc
