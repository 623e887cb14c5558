"""Scheduling: how accepted jobs reach workers (the policy is documented in docs/scheduling.md).

The job store, not Celery, holds the queue. Each pipeline keeps its accepted jobs in a pending
set ranked by priority, then submission order. ``dispatch`` moves at most ``window`` of them at a
time into that pipeline's Celery queue (never past its concurrency cap, never while paused), so
the Celery queues stay short and equal in priority: kombu's round-robin over queues then gives
every pipeline its turn, and ranking inside a pipeline is exact rather than kombu's approximate
priority lists. Whenever a transition frees a slot (a job starts, is taken over, finishes, runs
out of attempts, or is canceled while queued), the job repository dispatches its pipeline again
in the same call (``RedisJobRepository(on_slot_freed=scheduler.dispatch)``, wired in
``app/wiring.py``), so no caller has to remember to.

``reconcile`` is the safety net that makes "no accepted job is lost" hold: it re-sends task
messages that went missing (a send that failed, a broker restart) and jobs whose worker died
(lease expired), and refills every pipeline's window. Duplicated messages are harmless because
``RedisJobRepository.start`` refuses them.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import redis

from app.core.jobs import MAX_PRIORITY, MIN_PRIORITY
from app.core.ports import QueueDepth
from app.storage import keys
from app.storage.jobs import RANK_PRIORITY_FACTOR, now_ms
from app.storage.lua import DISPATCH, RETURN_TO_PENDING

log = logging.getLogger(__name__)

SendTask = Callable[[str, str], None]  # (job_id, pipeline_id) -> None; raises when the broker is unreachable
QueueLength = Callable[[str], int]  # pipeline_id -> task messages waiting in its broker queue


@dataclass(frozen=True)
class QueueStats:
    """What an operator and an autoscaler need about one pipeline's queue, from the job store
    (not Celery's lists, which only ever hold the dispatch window)."""

    pipeline_id: str
    queued: int  # accepted, not yet started: pending + dispatched (as ``QueueDepth.queued``)
    running: int
    oldest_queued_ms: int | None  # creation time (epoch ms) of the oldest queued job; None = none queued
    next_priority: int | None  # priority of the job that will be dispatched next (1-10); None = none pending


@dataclass(frozen=True)
class ReconcileReport:
    resent_dispatched: int = 0
    resent_orphans: int = 0
    dispatched: int = 0


class RedisScheduler:
    def __init__(
        self,
        client: redis.Redis,
        send: SendTask,
        *,
        window: int = 2,
        stale_dispatch_s: float = 120.0,
        lease_ttl_s: float = 15.0,
        queue_length: QueueLength | None = None,
    ) -> None:
        self.r = client
        self.send = send
        self.queue_length = queue_length
        self.window = window
        self.stale_dispatch_ms = int(stale_dispatch_s * 1000)
        self.lease_ttl_ms = int(lease_ttl_s * 1000)
        self._dispatch = client.register_script(DISPATCH)
        self._back_to_pending = client.register_script(RETURN_TO_PENDING)

    def dispatch(self, pipeline_id: str) -> int:
        """Send task messages for the best-ranked pending jobs that fit the window. Returns how many.

        (A submission fills the window inside its own create script instead: ``RedisJobRepository``
        with ``dispatch=`` this scheduler, which then calls ``send_dispatched``.)"""
        ids: list[str] = self._dispatch(
            keys=[
                keys.pipeline(pipeline_id),
                keys.pending(pipeline_id),
                keys.dispatched(pipeline_id),
                keys.running(pipeline_id),
            ],
            args=[self.window, now_ms()],
        )
        return self.send_dispatched(pipeline_id, ids)

    def send_dispatched(self, pipeline_id: str, job_ids: Sequence[str]) -> int:
        """One task message per job a script just moved to dispatched (stored before this is
        called: persist before publish). A job whose message cannot be sent goes back to pending."""
        sent = 0
        for job_id in job_ids:
            try:
                self.send(job_id, pipeline_id)
                sent += 1
            except Exception:  # broker unreachable: put it back; the next dispatch or reconcile retries
                log.warning("could not send task for job %s; returned to pending", job_id, exc_info=True)
                self._return_to_pending(job_id, pipeline_id)
        return sent

    def _return_to_pending(self, job_id: str, pipeline_id: str) -> None:
        self._back_to_pending(
            keys=[keys.job(job_id), keys.pending(pipeline_id), keys.dispatched(pipeline_id)], args=[job_id]
        )

    def depth(self, pipeline_id: str) -> QueueDepth:
        pipe = self.r.pipeline(transaction=False)
        pipe.zcard(keys.pending(pipeline_id))
        pipe.zcard(keys.dispatched(pipeline_id))
        pipe.zcard(keys.running(pipeline_id))
        pending, dispatched, running = pipe.execute()
        return QueueDepth(pipeline_id=pipeline_id, queued=int(pending) + int(dispatched), running=int(running))

    def queue_stats(self, pipeline_id: str) -> QueueStats:
        """Depth, age of the oldest queued job and the next priority, in two round trips.

        Pending ranks are ``(MAX_PRIORITY - priority) * factor + seq`` (see ``jobs.py``), so the
        oldest pending job is the lowest-ranked of *some* priority band: one ``LIMIT 1`` query per
        band finds every candidate, and the dispatched set (at most a window) adds the rest.
        """
        bands = range(MAX_PRIORITY - MIN_PRIORITY + 1)
        pipe = self.r.pipeline(transaction=False)
        pipe.zcard(keys.pending(pipeline_id))
        pipe.zcard(keys.dispatched(pipeline_id))
        pipe.zcard(keys.running(pipeline_id))
        pipe.zrange(keys.pending(pipeline_id), 0, 0, withscores=True)
        pipe.zrange(keys.dispatched(pipeline_id), 0, -1)
        for band in bands:
            low = band * RANK_PRIORITY_FACTOR
            pipe.zrangebyscore(keys.pending(pipeline_id), low, f"({low + RANK_PRIORITY_FACTOR}", start=0, num=1)
        pending, dispatched, running, head, in_flight, *firsts = pipe.execute()
        candidates = list(in_flight) + [ids[0] for ids in firsts if ids]
        oldest: int | None = None
        if candidates:
            pipe = self.r.pipeline(transaction=False)
            for job_id in candidates:
                pipe.hget(keys.job(job_id), "created_ms")
            created = [int(ms) for ms in pipe.execute() if ms]
            oldest = min(created) if created else None
        next_priority = MAX_PRIORITY - int(head[0][1]) // RANK_PRIORITY_FACTOR if head else None
        return QueueStats(pipeline_id, int(pending) + int(dispatched), int(running), oldest, next_priority)

    def pending_ids(self, pipeline_id: str) -> list[str]:
        """Accepted jobs not yet started, in the order they will be dispatched."""
        return list(self.r.zrange(keys.dispatched(pipeline_id), 0, -1)) + list(
            self.r.zrange(keys.pending(pipeline_id), 0, -1)
        )

    def try_lock(self, ttl_s: float) -> bool:
        """One reconciler per interval across all processes."""
        return bool(self.r.set(keys.RECONCILE_LOCK, "1", nx=True, px=max(1, int(ttl_s * 1000))))

    def reconcile(self, pipeline_ids: list[str]) -> ReconcileReport:
        now = now_ms()
        resent_dispatched = resent_orphans = dispatched = 0
        for pid in pipeline_ids:
            for job_id in self._missing_messages(pid, now):
                if not self.r.zadd(keys.dispatched(pid), {job_id: now}, xx=True, ch=True):
                    continue  # it started (or was canceled) since we looked: nothing to re-send
                try:
                    self.send(job_id, pid)
                    resent_dispatched += 1
                except Exception:
                    log.warning("reconcile: could not re-send job %s", job_id, exc_info=True)
            for job_id in self.r.zrange(keys.running(pid), 0, -1):
                if self.r.exists(keys.lease(job_id)):
                    continue
                last = int(self.r.hget(keys.job(job_id), "resent_ms") or 0)
                if now - last < self.lease_ttl_ms:
                    continue
                self.r.hset(keys.job(job_id), "resent_ms", str(now))
                try:
                    self.send(job_id, pid)  # the start guard turns this into a takeover (or fails it: attempts)
                    resent_orphans += 1
                except Exception:
                    log.warning("reconcile: could not re-send orphaned job %s", job_id, exc_info=True)
            dispatched += self.dispatch(pid)
        return ReconcileReport(resent_dispatched, resent_orphans, dispatched)

    def _missing_messages(self, pipeline_id: str, now: int) -> list[str]:
        """Dispatched jobs whose task message has waited too long and may be gone.

        Messages still sitting in the broker queue are not missing (a pipeline no live worker
        consumes, say a gpu pipeline without gpu workers, just waits), so only as many of the
        oldest stale jobs as the broker is short of are re-sent; this keeps duplicates from piling up.
        """
        stale: list[str] = self.r.zrangebyscore(keys.dispatched(pipeline_id), "-inf", now - self.stale_dispatch_ms)
        if not stale or self.queue_length is None:
            return stale
        try:
            waiting = self.queue_length(pipeline_id)
        except Exception:
            log.warning("reconcile: broker queue length of %s unknown", pipeline_id, exc_info=True)
            return []
        short = int(self.r.zcard(keys.dispatched(pipeline_id))) - waiting
        return stale[: max(0, short)]
