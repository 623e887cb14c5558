"""Run a job's decode lanes at once and hand their results on in order, on the calling thread.

A lane is one group of ``plan.partition_lanes``: it owns a decoder (its own container, and its
own Range reader for a URL) and produces its targets' results in order. Lanes run on threads:
PyAV releases the GIL inside FFmpeg's decode, so two single-threaded decoders on two cores run
1.9-2.0x one (measured on the 1080p GOP-250 input: 2 threads 2.21 s, 2 processes 2.16-2.20 s, one
thread 4.26-4.29 s for the same 500 frames), and threads share the job's budget, store client
and cancel flag without pickling anything.

The caller's ``consume`` sees every result of lane 0, then of lane 1, ..., exactly the order a
sequential run produces them in, so the manifest, progress and the error a job ends with are
those of a sequential run: a lane that fails hands its error on only once every earlier lane's
results are consumed (the sequential run would have produced them first). When ``consume`` or a
lane raises, ``stop`` is set (decoders check it on every frame, see ``capture.Budget``), every
lane thread is joined, and the error is raised here.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

G = TypeVar("G")
R = TypeVar("R")

POLL_S = 0.25  # the consuming thread wakes this often, so signals (soft time limits) reach it


@dataclass(frozen=True)
class _End:
    pass


@dataclass(frozen=True)
class _Failed:
    error: BaseException


_END = _End()


@dataclass
class _Lane(Generic[R]):
    out: queue.SimpleQueue[R | _End | _Failed]
    thread: threading.Thread | None = None


def run_lanes(
    groups: Sequence[G],
    work: Callable[[int, G, Callable[[R], None]], None],
    consume: Callable[[R], None],
    stop: threading.Event,
    *,
    name: str = "lane",
) -> None:
    """``work(i, groups[i], deliver)`` runs on a thread per group and calls ``deliver`` with each
    result in order; ``consume`` is called with all results, lane by lane, on this thread."""
    lanes: list[_Lane[R]] = [_Lane(queue.SimpleQueue()) for _ in groups]

    def body(i: int) -> None:
        out = lanes[i].out
        try:
            work(i, groups[i], out.put)
        except BaseException as exc:  # handed to the consuming thread, raised there
            out.put(_Failed(exc))
        else:
            out.put(_END)

    for i, lane in enumerate(lanes):
        lane.thread = threading.Thread(target=body, args=(i,), name=f"{name}-{i}", daemon=True)
        lane.thread.start()
    try:
        for lane in lanes:
            while True:
                try:
                    item = lane.out.get(timeout=POLL_S)
                except queue.Empty:
                    continue
                if isinstance(item, _End):
                    break
                if isinstance(item, _Failed):
                    raise item.error
                consume(item)
    except BaseException:
        stop.set()
        raise
    finally:
        for lane in lanes:
            assert lane.thread is not None
            lane.thread.join()
