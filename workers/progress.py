"""The worker's side of progress events: decide when one is due, hand it off, never hold the job.

``observe`` is called on the run's thread with every image done; it only decides (the pure
``app.core.progress.progress_due``) and queues the event. A sender thread enqueues queued events
for the notifier's push loop (``app.notify.progress``) and checks the time rule every ``TICK_S``,
so an event falls due on time even while no image finishes. Nothing here raises into the job: a
Redis error drops the event with a log line, and events the sender cannot keep up with are
dropped oldest first. ``close`` is called before the job's terminal state is recorded, so no
event of this attempt is enqueued after it (the push loop drops any that would arrive after the
completion event).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

from app.core.progress import Mark, ProgressEvents, progress_due
from app.notify.progress import event_seq

log = logging.getLogger(__name__)

TICK_S = 0.25  # how late a time-based event may fall due
MAX_QUEUED = 16  # events waiting for the sender; more means Redis is slow, and old news is dropped first
CLOSE_WAIT_S = 0.5  # how long ``close`` lets the sender finish what is queued


class Publisher(Protocol):
    """``app.notify.progress.ProgressPublisher``: enqueue one event (may raise)."""

    def publish(self, seq: int, done: int, total: int, at: datetime) -> None: ...


@dataclass(frozen=True)
class _Event:
    seq: int
    done: int
    total: int
    at: datetime


class ProgressEmitter:
    """One attempt's progress events. Thread-safe: the run's thread observes, the sender sends."""

    def __init__(
        self,
        progress: ProgressEvents,
        publisher: Publisher,
        *,
        job_id: str,
        attempt: int,
        total: int,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], datetime] = lambda: datetime.now(tz=UTC),
    ) -> None:
        self.progress, self.publisher = progress, publisher
        self.job_id, self.attempt = job_id, attempt
        self.clock, self.wall = clock, wall
        self._lock = threading.Lock()
        self._last = Mark(done=0, at=clock())  # the run's start counts as the last event
        self._done, self._total = 0, total
        self._number = 0
        self._queue: deque[_Event] = deque()
        self._wake = threading.Event()
        self._closed = False
        self._abandoned = False  # ``close`` stopped waiting: the sender enqueues nothing more
        self._thread = threading.Thread(target=self._send_loop, name=f"progress-{job_id}", daemon=True)

    def start(self) -> ProgressEmitter:
        self._thread.start()
        return self

    def observe(self, done: int, total: int) -> None:
        """The run's ``on_progress``: ``done`` of ``total`` images are done."""
        with self._lock:
            self._done, self._total = done, total
            queued = self._check()
        if queued:
            self._wake.set()

    def close(self) -> None:
        """No event after this one returns; what is queued gets ``CLOSE_WAIT_S`` to go out."""
        with self._lock:
            self._closed = True
        self._wake.set()
        self._thread.join(CLOSE_WAIT_S)
        with self._lock:
            self._abandoned = True
            left = len(self._queue)
            self._queue.clear()
        if left:
            log.warning("job %s: %d progress event(s) not enqueued before the job ended; dropped", self.job_id, left)

    def _check(self) -> bool:
        """Queue an event if one is due (holding ``_lock``)."""
        now = self.clock()
        if self._closed or not progress_due(self.progress, self._last, self._done, now):
            return False
        self._last = Mark(done=self._done, at=now)
        self._number += 1
        if len(self._queue) >= MAX_QUEUED:
            dropped = self._queue.popleft()
            log.warning("job %s: progress event %d dropped (the sender is behind)", self.job_id, dropped.done)
        self._queue.append(_Event(event_seq(self.attempt, self._number), self._done, self._total, self.wall()))
        return True

    def _send_loop(self) -> None:
        while True:
            self._wake.wait(TICK_S)
            self._wake.clear()
            with self._lock:
                self._check()  # the time rule, between images
                batch = list(self._queue)
                self._queue.clear()
                closed = self._closed
            for event in batch:
                if self._abandoned:
                    log.warning("job %s: progress event at %d images dropped (the job ended)", self.job_id, event.done)
                    continue
                try:
                    self.publisher.publish(event.seq, event.done, event.total, event.at)
                except Exception:  # noqa: BLE001 - a side channel never fails its job
                    log.warning("job %s: progress event at %d images dropped", self.job_id, event.done, exc_info=True)
            if closed:
                return
