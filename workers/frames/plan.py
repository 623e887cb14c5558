"""Pure planning: which times a job asks for, which frame answers each, and how to decode them.

No I/O here: every function is a function of (frame table, spec values). Units: all times are
milliseconds of media time measured from the first presented frame (frame 0 is at 0 ms), frame
numbers are 0-based indices in *presentation* order, output numbers (``{Count}``) are 1-based.

Semantics (the contract the integration tests check by reading frame codes back):

* exact: the frame a player shows at t = the last frame whose pts <= t (CFR and VFR alike).
* keyframe: the nearest key frame at or before t (Alibaba ``intra``); several requests may map to
  the same key frame, and each still yields its own image (one file per request).
* "past the end" means t > duration, where duration = end of the last frame (last pts + its
  duration). t == duration is the last frame: a player paused at the very end shows it.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass

from app.core.errors import FailureCode, JobFailure
from app.core.specs import Average, FrameType, Series, SingleTime, TimePoints, Timing

# Float noise guard (ms): 1 ns of media time, far below any real frame spacing.
EPS_MS = 1e-6


@dataclass(frozen=True)
class FrameTable:
    """Every frame of the video stream in presentation order.

    ``pts_ms`` is strictly increasing, ``pts_ms[0] == 0``. ``key_frames`` holds the sorted indices
    of frames a decoder can start from (key frames); index 0 is always one.
    """

    pts_ms: tuple[float, ...]
    key_frames: tuple[int, ...]
    duration_ms: float

    def __post_init__(self) -> None:
        if not self.pts_ms:
            raise ValueError("a frame table needs at least one frame")
        if not self.key_frames or self.key_frames[0] != 0:
            raise ValueError("frame 0 must be a key frame")

    @property
    def frame_count(self) -> int:
        return len(self.pts_ms)


@dataclass(frozen=True)
class Target:
    """One image to produce: ``number`` is its 1-based ``{Count}``; ``frame`` the frame index."""

    number: int
    requested_ms: float
    frame: int


@dataclass(frozen=True)
class Step:
    """How to reach ``target.frame`` from the previous step's frame.

    ``seek_to`` is the key frame index to seek to first (None: keep decoding forward);
    ``decode`` is how many frames the decoder outputs for this step (0 when the previous step
    already produced the same frame, which is then reused).
    """

    target: Target
    seek_to: int | None
    decode: int


def requested_times(timing: Timing, duration_ms: float) -> list[float]:
    """The times a timing asks for, sorted ascending, before any out-of-range policy.

    * single: [time_ms]
    * series: start_ms + i * interval_s * 1000 for i in 0..count-1, those after ``end_ms`` dropped;
      with ``closing_frame``, when the window reaches the end of the video (``end_ms`` None or at or
      past the duration), one more at the duration (the last frame), unless the last point is
      already there (within ``EPS_MS``) or the window is empty (start past the end)
    * average: ``count`` points centred in ``count`` equal slices of [start_ms, end_ms]
      (end_ms None, or past the end, = the duration): start + (i + 0.5) * (end - start) / count.
      Centring keeps points off the very first frame (often black) and off the end boundary,
      and makes N points of a 10 s clip land at 0.5 s, 1.5 s, ... for N = 10.
    * points: the points, sorted (duplicates kept).
    """
    if isinstance(timing, SingleTime):
        return [float(timing.time_ms)]
    if isinstance(timing, Series):
        step = timing.interval_s * 1000.0
        times = [timing.start_ms + i * step for i in range(timing.count)]
        if timing.end_ms is not None:
            times = [t for t in times if t <= timing.end_ms + EPS_MS]
        if timing.closing_frame and (timing.end_ms is None or timing.end_ms >= duration_ms - EPS_MS):
            # Times past the end would be dropped anyway; the closing frame must follow the last kept one.
            times = [t for t in times if t <= duration_ms + EPS_MS]
            if duration_ms >= timing.start_ms - EPS_MS and (not times or times[-1] < duration_ms - EPS_MS):
                times.append(duration_ms)
        return times
    if isinstance(timing, Average):
        end = duration_ms if timing.end_ms is None else min(timing.end_ms, duration_ms)
        span = max(0.0, end - timing.start_ms)
        return [timing.start_ms + (i + 0.5) * span / timing.count for i in range(timing.count)]
    if isinstance(timing, TimePoints):
        return sorted(float(p) for p in timing.points_ms)
    raise TypeError(f"unknown timing {timing!r}")  # pragma: no cover - the union is closed


def frame_at(table: FrameTable, t_ms: float) -> int:
    """Exact mode: index of the last frame with pts <= t (frame 0 for t before it)."""
    return max(0, bisect.bisect_right(table.pts_ms, t_ms + EPS_MS) - 1)


def key_at_or_before(table: FrameTable, frame: int) -> int:
    """The key frame at or before ``frame`` (a decoder must start there to produce ``frame``)."""
    return table.key_frames[bisect.bisect_right(table.key_frames, frame) - 1]


def plan_targets(timing: Timing, frame_type: FrameType, table: FrameTable) -> list[Target]:
    """Requested times -> frames, applying the out-of-range policy.

    * A single EXACT time past the end fails (``TIME_OUT_OF_RANGE``, message gives the duration).
      A single KEYFRAME time past the end takes the last key frame (Alibaba: "single-intra
      returns the nearest keyframe").
    * Series / average / points keep the times that exist and drop the rest (they are trailing,
      since times are sorted); numbering stays contiguous from 1. If none exists, the job fails.
    * Average with start_ms past the end fails: it has no span to spread over.
    """
    duration = table.duration_ms
    times = requested_times(timing, duration)
    single = isinstance(timing, SingleTime)
    if isinstance(timing, Average) and timing.start_ms > duration + EPS_MS:
        raise _out_of_range(f"start_ms {timing.start_ms:g} is past the end", duration)
    if single and frame_type is FrameType.KEYFRAME:
        kept = times
    else:
        kept = [t for t in times if t <= duration + EPS_MS]
    if not kept:
        what = f"time {times[0]:g} ms is" if single else "every requested time is"
        raise _out_of_range(f"{what} past the end", duration)
    targets: list[Target] = []
    for number, t in enumerate(kept, start=1):
        frame = frame_at(table, t)
        if frame_type is FrameType.KEYFRAME:
            frame = key_at_or_before(table, frame)
        targets.append(Target(number, t, frame))
    return targets


def _out_of_range(what: str, duration_ms: float) -> JobFailure:
    return JobFailure(FailureCode.TIME_OUT_OF_RANGE, f"{what}: the video's duration is {duration_ms:.0f} ms")


def choose_seek(table: FrameTable, position: int | None, frame: int) -> int | None:
    """Seek or decode forward? Returns the key frame to seek to, or None to decode on.

    ``position`` is the last frame the decoder output (None: nothing decoded yet, or after a
    failed read). Forward decoding from ``position`` outputs ``frame - position`` frames; a seek to
    the key frame K at or before ``frame`` outputs ``frame - K + 1``. Seek only when that is
    strictly fewer (K > position + 1), or when the target lies behind the decoder. Decoding
    order differs from presentation order only inside a GOP, so counting in presentation order
    is exact for closed GOPs and a close estimate otherwise.
    """
    key = key_at_or_before(table, frame)
    if position is None or frame < position:
        return key
    if frame == position:
        return None
    return key if key > position + 1 else None


def decode_plan(table: FrameTable, targets: list[Target]) -> list[Step]:
    """Steps for targets in the order given (callers pass them sorted by frame).

    Minimises decoded frames under the seek-to-key-frame model: ``sum(step.decode)`` is the
    decode lower bound the benchmark divides by the measured decode rate.
    """
    steps: list[Step] = []
    position: int | None = None
    for target in targets:
        if position is not None and target.frame == position:
            steps.append(Step(target, None, 0))
            continue
        seek = choose_seek(table, position, target.frame)
        start = seek if seek is not None else (position if position is not None else -1) + 1
        steps.append(Step(target, seek, target.frame - start + 1))
        position = target.frame
    return steps


def frames_to_decode(steps: list[Step]) -> int:
    return sum(s.decode for s in steps)


# A parallel decode lane opens its own container (about one key frame's decode, notes §4) and
# starts on a key frame (~5 frames' cost): below ~2 s of 25 fps video a lane costs more than
# it saves, so a plan is only split when every lane gets at least this many decoded frames.
MIN_LANE_FRAMES = 50

# A decoder with frame threads on n cores decodes about n ** this as fast as one thread
# (``decode_speed``). Measured with PyAV on the 2-core benchmark machine, 1080p and 4K H.264,
# FFmpeg's cores + 1 threads (``probe.set_decode_threads``): 1.58-1.72x one thread; 2 ** 0.7 = 1.62.
# Frame threads scale below linearly (each waits for the rows of the frame before it), so beyond
# two cores the exponent is an assumption that keeps lanes, which scale linearly, preferred.
FRAME_THREAD_EXPONENT = 0.7


def independent_runs(steps: list[Step]) -> list[list[Step]]:
    """The sequential plan cut before each of its seeks (the first step's aside).

    Each run starts with a seek to a key frame and then only decodes forward, so it needs
    nothing from the runs before it: a decoder of its own reaches the same frames by decoding
    the same ``sum(step.decode)`` frames. A step that reuses the previous frame (``decode`` 0,
    never a seek) stays in its run, so duplicate times never cross a cut.
    """
    runs: list[list[Step]] = []
    for step in steps:
        if not runs or step.seek_to is not None:
            runs.append([])
        runs[-1].append(step)
    return runs


def decode_speed(cores: int) -> float:
    """How many times one thread's rate one decoder reaches on ``cores`` cores (frame threads)."""
    return float(max(1, cores) ** FRAME_THREAD_EXPONENT)


def lanes_time(costs: list[int], cores: int) -> float:
    """Wall time, in one thread's frame decodes, of decoding groups of ``costs`` frames at once,
    each on ``cores // len(costs)`` cores (the split ``capture_all`` makes)."""
    return max(costs) / decode_speed(cores // len(costs))


def partition_lanes(
    table: FrameTable, targets: list[Target], lanes: int, *, min_frames: int = MIN_LANE_FRAMES
) -> list[list[Target]]:
    """Split ``targets`` (sorted by frame) into at most ``lanes`` groups that separate decoders
    can work on at once, in order: group i holds earlier frames than group i + 1. ``lanes`` is
    the job's decode budget in cores; each group's decoder gets ``lanes // groups`` of them.

    Groups are whole ``independent_runs`` of the sequential plan, contiguous, never more than
    ``total frames // min_frames``. For each number of groups the split is balanced so the largest
    group decodes as few frames as possible; of those splits it takes the one whose wall time
    (``lanes_time``: the largest group at its decoder's ``decode_speed``) is smallest, and of
    equal ones the fewest groups (fewer containers to open). So a plan whose runs do not divide
    evenly (two GOPs of 475 and 200 frames on 2 cores) stays in one decoder with frame threads
    on both cores, rather than one lane decoding 70% of it on one thread while the other core
    idles. Concatenated, the groups are ``targets``; their decode counts sum to the sequential
    plan's (``frames_to_decode``). One group = decode sequentially.
    """
    if not targets:
        return []
    runs = independent_runs(decode_plan(table, targets))
    costs = [frames_to_decode(run) for run in runs]
    total = sum(costs)
    wanted = max(1, min(lanes, len(runs), total // max(1, min_frames)))
    best, best_time = [list(range(len(costs)))], lanes_time([total], lanes)
    for n in range(2, wanted + 1):
        split = _balanced(costs, n)
        time = lanes_time([sum(costs[i] for i in g) for g in split], lanes)
        if time < best_time:
            best, best_time = split, time
    return [[step.target for i in members for step in runs[i]] for members in best]


def _balanced(costs: list[int], groups: int) -> list[list[int]]:
    """A contiguous split of ``costs`` into at most ``groups`` groups with the smallest maximum:
    the smallest capacity C at which greedy packing in order needs <= ``groups`` groups (binary
    search over C; greedy is optimal for contiguous packing at a given C)."""
    lo, hi = max(costs), sum(costs)
    while lo < hi:
        mid = (lo + hi) // 2
        if len(_pack(costs, mid)) <= groups:
            hi = mid
        else:
            lo = mid + 1
    return _pack(costs, lo)


def _pack(costs: list[int], capacity: int) -> list[list[int]]:
    """Indices of ``costs`` packed in order into groups whose sums stay <= ``capacity``."""
    groups: list[list[int]] = []
    load = capacity + 1
    for i, cost in enumerate(costs):
        if load + cost > capacity:
            groups.append([])
            load = 0
        groups[-1].append(i)
        load += cost
    return groups
