"""The worker's progress emitter: throttled by the core rule, sent off the run's thread, never
raising into the job, and silent once closed."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime

from app.core.progress import ProgressEvents
from app.notify.progress import ATTEMPT_STRIDE
from workers.progress import MAX_QUEUED, ProgressEmitter

URL = "https://hooks.example/p"


class Recorder:
    """Stands in for the Redis-backed publisher (tested against a real Redis in
    tests/e2e/test_progress_events.py): records, or raises when told to, or blocks."""

    def __init__(self, *, fail: bool = False, gate: threading.Event | None = None) -> None:
        self.events: list[tuple[int, int, int]] = []
        self.fail, self.gate = fail, gate
        self.calls = 0

    def publish(self, seq: int, done: int, total: int, at: datetime) -> None:
        self.calls += 1
        if self.gate is not None:
            self.gate.wait(5)
        if self.fail:
            raise ConnectionError("redis is down")
        self.events.append((seq, done, total))


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def wait_for(predicate: object, timeout: float = 3.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate() and time.monotonic() < deadline:  # type: ignore[operator]
        time.sleep(0.01)


def emitter(progress: ProgressEvents, publisher: Recorder, clock: Clock, attempt: int = 1) -> ProgressEmitter:
    wall = lambda: datetime(2026, 1, 2, tzinfo=UTC)  # noqa: E731
    return ProgressEmitter(progress, publisher, job_id="j1", attempt=attempt, total=20, clock=clock, wall=wall).start()


def test_every_five_images_of_twenty_and_nothing_after_close() -> None:
    rec, clock = Recorder(), Clock()
    em = emitter(ProgressEvents(URL, every_images=5), rec, clock, attempt=2)
    for n in range(1, 21):
        em.observe(n, 20)
        clock.now += 0.01
    em.close()
    assert rec.events == [(2 * ATTEMPT_STRIDE + i, 5 * i, 20) for i in (1, 2, 3, 4)]
    em.observe(25, 20)  # a stray report after the job ended
    clock.now += 1000
    time.sleep(0.3)
    assert len(rec.events) == 4


def test_the_time_rule_fires_between_images() -> None:
    rec, clock = Recorder(), Clock()
    em = emitter(ProgressEvents(URL, every_s=2), rec, clock)
    em.observe(1, 20)
    clock.now += 2.5  # a long seek: no image finishes, the heartbeat still goes out
    wait_for(lambda: rec.events)
    em.close()
    assert [(done, total) for _, done, total in rec.events] == [(1, 20)]


def test_a_failing_publisher_never_reaches_the_job() -> None:
    rec, clock = Recorder(fail=True), Clock()
    em = emitter(ProgressEvents(URL, every_images=1), rec, clock)
    for n in range(1, 6):
        em.observe(n, 5)  # does not raise
    wait_for(lambda: rec.calls == 5)
    em.close()
    assert rec.calls == 5 and rec.events == []


def test_a_stuck_publisher_holds_neither_observe_nor_close_for_long() -> None:
    gate = threading.Event()
    rec, clock = Recorder(gate=gate), Clock()
    em = emitter(ProgressEvents(URL, every_images=1), rec, clock)
    started = time.monotonic()
    for n in range(1, 3 * MAX_QUEUED):
        em.observe(n, 100)
    observed = time.monotonic() - started
    em.close()  # waits CLOSE_WAIT_S at most, then gives up on what is left
    closed = time.monotonic() - started
    gate.set()
    time.sleep(0.1)
    assert observed < 0.5 and closed < 2.0
    assert len(rec.events) <= 1  # only the one that was already in the publisher's hands
