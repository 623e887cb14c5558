"""run_lanes: results in lane order on the calling thread, errors in the order a sequential run
meets them, every lane thread joined before it returns or raises."""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest

from workers.frames.lanes import run_lanes


def test_results_come_lane_by_lane_in_order_even_when_later_lanes_finish_first() -> None:
    first_may_go = threading.Event()
    consumer = threading.current_thread()
    seen: list[tuple[int, threading.Thread]] = []

    def work(i: int, group: list[int], deliver: Callable[[int], None]) -> None:
        if i == 0:
            assert first_may_go.wait(5)
        for x in group:
            deliver(x)
        if i == 2:
            first_may_go.set()  # lane 0 starts only once the last lane has delivered everything

    def consume(x: int) -> None:
        seen.append((x, threading.current_thread()))

    run_lanes([[1, 2], [3], [4, 5, 6]], work, consume, threading.Event())
    assert [x for x, _ in seen] == [1, 2, 3, 4, 5, 6]
    assert all(t is consumer for _, t in seen)


def test_a_later_lanes_error_surfaces_after_the_earlier_lanes_results() -> None:
    seen: list[int] = []
    stop = threading.Event()

    def work(i: int, group: list[int], deliver: Callable[[int], None]) -> None:
        if i == 1:
            raise LookupError("lane 1 broke")
        for x in group:
            deliver(x)

    with pytest.raises(LookupError, match="lane 1 broke"):
        run_lanes([[1, 2], [3], [4]], work, seen.append, stop)
    assert seen == [1, 2]  # lane 0 complete, nothing after the failing lane
    assert stop.is_set()


def test_a_consumer_error_stops_the_lanes_and_joins_them() -> None:
    stop = threading.Event()
    started: list[threading.Thread] = []

    def work(i: int, group: list[int], deliver: Callable[[int], None]) -> None:
        started.append(threading.current_thread())
        deliver(i)
        assert stop.wait(5)  # a long decode that checks the stop flag

    def consume(x: int) -> None:
        raise ValueError("recording failed")

    with pytest.raises(ValueError, match="recording failed"):
        run_lanes([[0], [1], [2]], work, consume, stop)
    assert len(started) == 3 and not any(t.is_alive() for t in started)


def test_a_lane_that_delivers_nothing_is_fine() -> None:
    seen: list[int] = []
    run_lanes([[], [7]], lambda i, g, deliver: [deliver(x) for x in g], seen.append, threading.Event())
    assert seen == [7]
