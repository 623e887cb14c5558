"""The planner: requested times, frame choice, out-of-range policy, and the decode plan."""

from __future__ import annotations

import itertools
import random

import pytest

from app.core.errors import FailureCode, JobFailure
from app.core.specs import Average, FrameType, Series, SingleTime, TimePoints
from workers.frames.plan import (
    FrameTable,
    Target,
    choose_seek,
    decode_plan,
    decode_speed,
    frame_at,
    frames_to_decode,
    independent_runs,
    key_at_or_before,
    lanes_time,
    partition_lanes,
    plan_targets,
    requested_times,
)

# 25 fps, 100 frames (4 s), key frames every 25 frames.
CFR = FrameTable(tuple(i * 40.0 for i in range(100)), (0, 25, 50, 75), 4000.0)
# VFR: 0, 20, 80, 120, 220, 240, ... (20/60/40/100 ms pattern), key frames every 10.
_durs = [20, 60, 40, 100] * 10
VFR = FrameTable(tuple(float(sum(_durs[:i])) for i in range(40)), (0, 10, 20, 30), float(sum(_durs)))


def brute_frame(table: FrameTable, t: float) -> int:
    return max([i for i, p in enumerate(table.pts_ms) if p <= t] or [0])


class TestRequestedTimes:
    def test_single(self) -> None:
        assert requested_times(SingleTime(1234.5), 4000) == [1234.5]

    def test_series_start_plus_interval_seconds(self) -> None:
        assert requested_times(Series(100, 0.25, 4), 4000) == [100, 350, 600, 850]

    def test_series_window_drops_times_after_end_ms(self) -> None:
        assert requested_times(Series(0, 1, 100, end_ms=2500), 4000) == [0, 1000, 2000]
        assert requested_times(Series(0, 1, 2, end_ms=2500), 4000) == [0, 1000]  # count still caps

    def test_series_closing_frame_is_the_videos_last(self) -> None:
        # Huawei's documented example: 20 s every 11 s -> 0, 11, 20.
        assert requested_times(Series(0, 11, 100, closing_frame=True), 20_000) == [0, 11_000, 20_000]
        assert requested_times(Series(0, 1.5, 100, end_ms=9000, closing_frame=True), 4000) == [0, 1500, 3000, 4000]
        # a window that ends inside the video has no closing frame (Huawei: start 100 s, 1 s, every 10 s)
        assert requested_times(Series(0, 1, 100, end_ms=2500, closing_frame=True), 4000) == [0, 1000, 2000]
        assert requested_times(Series(100_000, 10, 100, end_ms=101_000, closing_frame=True), 200_000) == [100_000]
        # already on the end: no second image there; an empty window adds nothing
        assert requested_times(Series(0, 2, 100, closing_frame=True), 4000) == [0, 2000, 4000]
        assert requested_times(Series(5000, 2, 100, closing_frame=True), 4000) == []  # plan_targets fails it

    def test_average_centred_in_equal_slices(self) -> None:
        assert requested_times(Average(4), 4000) == [500, 1500, 2500, 3500]
        assert requested_times(Average(2, start_ms=1000, end_ms=2000), 4000) == [1250, 1750]
        assert requested_times(Average(1), 4000) == [2000]

    def test_average_end_past_duration_is_clamped(self) -> None:
        assert requested_times(Average(2, start_ms=0, end_ms=10_000), 4000) == [1000, 3000]

    def test_average_zero_span(self) -> None:
        assert requested_times(Average(3, start_ms=800, end_ms=800), 4000) == [800, 800, 800]

    def test_points_sorted_duplicates_kept(self) -> None:
        assert requested_times(TimePoints((300, 10, 300, 0)), 4000) == [0, 10, 300, 300]


class TestFrameChoice:
    @pytest.mark.parametrize("table", [CFR, VFR], ids=["cfr", "vfr"])
    def test_exact_is_last_frame_with_pts_le_t_everywhere(self, table: FrameTable) -> None:
        # every boundary, just before and just after it, and mid-frame
        times = set()
        for p in table.pts_ms:
            times.update({p, p - 0.001, p + 0.001, p + 10})
        times.update({0.0, table.duration_ms})
        for t in sorted(x for x in times if x >= 0):
            assert frame_at(table, t) == brute_frame(table, t), t

    def test_boundaries_cfr(self) -> None:
        assert frame_at(CFR, 0) == 0
        assert frame_at(CFR, 39.999) == 0
        assert frame_at(CFR, 40) == 1
        assert frame_at(CFR, 3960) == 99
        assert frame_at(CFR, 4000) == 99

    def test_key_at_or_before(self) -> None:
        assert [key_at_or_before(CFR, f) for f in (0, 24, 25, 26, 99)] == [0, 0, 25, 25, 75]


def targets(timing, frame_type=FrameType.EXACT, table=CFR):  # type: ignore[no-untyped-def]
    return plan_targets(timing, frame_type, table)


class TestOutOfRange:
    def test_single_exact_past_end_fails_with_duration(self) -> None:
        with pytest.raises(JobFailure) as err:
            targets(SingleTime(4000.5))
        assert err.value.code is FailureCode.TIME_OUT_OF_RANGE
        assert "4000 ms" in err.value.message

    def test_single_exact_at_duration_is_last_frame(self) -> None:
        assert [t.frame for t in targets(SingleTime(4000))] == [99]

    def test_single_keyframe_past_end_takes_last_key(self) -> None:
        assert [t.frame for t in targets(SingleTime(99_999), FrameType.KEYFRAME)] == [75]

    def test_series_keeps_existing_frames_and_counts_them(self) -> None:
        got = targets(Series(3000, 0.5, 5))
        assert [(t.number, t.requested_ms, t.frame) for t in got] == [(1, 3000, 75), (2, 3500, 87), (3, 4000, 99)]

    def test_closing_frame_is_the_last_frame(self) -> None:
        got = targets(Series(0, 1.5, 10_000, closing_frame=True))  # CFR: 100 frames, 4000 ms
        assert [(t.requested_ms, t.frame) for t in got] == [(0, 0), (1500, 37), (3000, 75), (4000, 99)]

    def test_points_drop_trailing(self) -> None:
        got = targets(TimePoints((5000, 10, 4001)))
        assert [(t.number, t.frame) for t in got] == [(1, 0)]

    def test_nothing_in_range_fails(self) -> None:
        for timing in (Series(4500, 1, 3), TimePoints((4001, 9000))):
            with pytest.raises(JobFailure) as err:
                targets(timing)
            assert err.value.code is FailureCode.TIME_OUT_OF_RANGE

    def test_average_start_past_end_fails(self) -> None:
        with pytest.raises(JobFailure) as err:
            targets(Average(3, start_ms=5000))
        assert err.value.code is FailureCode.TIME_OUT_OF_RANGE


class TestTargets:
    def test_keyframe_mode_only_key_frames_duplicates_kept(self) -> None:
        got = targets(Average(8), FrameType.KEYFRAME)
        assert all(t.frame in CFR.key_frames for t in got)
        assert [t.frame for t in got] == [0, 0, 25, 25, 50, 50, 75, 75]
        assert [t.number for t in got] == list(range(1, 9))

    def test_vfr_exact(self) -> None:
        got = targets(TimePoints((0, 19.99, 20, 79.9, 80, 119, 120)), table=VFR)
        assert [t.frame for t in got] == [0, 0, 1, 1, 2, 2, 3]


class TestDecodePlan:
    def test_first_read_seeks_to_key_before_target(self) -> None:
        steps = decode_plan(CFR, [Target(1, 1200, 30)])
        assert (steps[0].seek_to, steps[0].decode) == (25, 6)

    def test_same_gop_decodes_forward(self) -> None:
        steps = decode_plan(CFR, [Target(1, 0, 26), Target(2, 0, 40)])
        assert [(s.seek_to, s.decode) for s in steps] == [(25, 2), (None, 14)]

    def test_next_gop_seeks_when_cheaper(self) -> None:
        steps = decode_plan(CFR, [Target(1, 0, 10), Target(2, 0, 60)])
        assert [(s.seek_to, s.decode) for s in steps] == [(0, 11), (50, 11)]

    def test_key_right_after_position_decodes_forward(self) -> None:
        # position 24, key 25: seeking saves nothing
        steps = decode_plan(CFR, [Target(1, 0, 24), Target(2, 0, 30)])
        assert [(s.seek_to, s.decode) for s in steps] == [(0, 25), (None, 6)]

    def test_duplicate_frame_is_reused(self) -> None:
        steps = decode_plan(CFR, [Target(1, 0, 5), Target(2, 0, 5)])
        assert [(s.seek_to, s.decode) for s in steps] == [(0, 6), (None, 0)]

    def test_choose_seek_backwards_target(self) -> None:
        assert choose_seek(CFR, 60, 30) == 25
        assert choose_seek(CFR, None, 0) == 0
        assert choose_seek(CFR, 30, 30) is None

    @pytest.mark.parametrize("seed", range(20))
    def test_plan_is_optimal_against_brute_force(self, seed: int) -> None:
        """For sorted targets the greedy seek rule decodes no more than any seek/forward choice."""
        rng = random.Random(seed)
        frames = sorted(rng.sample(range(100), rng.randint(1, 5)))
        tg = [Target(i + 1, 0, f) for i, f in enumerate(frames)]
        best = None
        for choice in itertools.product([False, True], repeat=len(frames)):
            pos, cost = None, 0
            for seek, f in zip(choice, frames):
                if pos is None or seek or f < pos:
                    cost += f - key_at_or_before(CFR, f) + 1
                else:
                    cost += f - pos
                pos = f
            best = cost if best is None else min(best, cost)
        assert frames_to_decode(decode_plan(CFR, tg)) == best

    def test_table_requires_key_frame_zero(self) -> None:
        with pytest.raises(ValueError):
            FrameTable((0.0, 40.0), (1,), 80.0)


# 60 s at 25 fps with 250-frame GOPs (the benchmark's 1080p input): 1500 frames, 6 key frames.
GOP250 = FrameTable(tuple(i * 40.0 for i in range(1500)), tuple(range(0, 1500, 250)), 60_000.0)


def random_table(rng: random.Random) -> FrameTable:
    n = rng.randint(1, 400)
    keys = sorted({0, *rng.sample(range(n), rng.randint(0, max(0, n // 20)))})
    return FrameTable(tuple(i * 40.0 for i in range(n)), tuple(keys), n * 40.0)


def random_targets(rng: random.Random, table: FrameTable) -> list[Target]:
    frames = sorted(rng.choice(range(table.frame_count)) for _ in range(rng.randint(1, 60)))
    return [Target(i + 1, table.pts_ms[f], f) for i, f in enumerate(frames)]


def group_cost(table: FrameTable, group: list[Target]) -> int:
    """What a fresh decoder of its own decodes for ``group`` (it starts with a seek)."""
    return frames_to_decode(decode_plan(table, group))


class TestParallelLanes:
    def test_runs_are_cut_before_each_seek(self) -> None:
        tg = [Target(i + 1, 0, f) for i, f in enumerate([3, 10, 10, 30, 40, 80])]
        runs = independent_runs(decode_plan(CFR, tg))
        assert [[s.target.frame for s in run] for run in runs] == [[3, 10, 10], [30, 40], [80]]
        assert all(run[0].seek_to is not None for run in runs)
        assert all(s.seek_to is None for run in runs for s in run[1:])

    def test_even100_on_gop250_splits_into_three_gops_each(self) -> None:
        tg = plan_targets(Average(100), FrameType.EXACT, GOP250)
        lanes = partition_lanes(GOP250, tg, 2)
        assert [len(g) for g in lanes] == [50, 50]
        assert lanes[0][-1].frame < 750 <= lanes[1][0].frame
        assert [group_cost(GOP250, g) for g in lanes] == [729, 729]  # targets at frames 7, 22, ... 1492
        assert sum(group_cost(GOP250, g) for g in lanes) == frames_to_decode(decode_plan(GOP250, tg))

    def test_one_lane_single_target_or_one_gop_is_sequential(self) -> None:
        tg = plan_targets(Average(100), FrameType.EXACT, GOP250)
        assert partition_lanes(GOP250, tg, 1) == [tg]
        one = plan_targets(SingleTime(30_000), FrameType.EXACT, GOP250)
        assert partition_lanes(GOP250, one, 4) == [one]
        same_gop = plan_targets(Series(0, 0.5, 10), FrameType.EXACT, GOP250)  # frames 0..225: GOP 0
        assert partition_lanes(GOP250, same_gop, 4) == [same_gop]
        assert partition_lanes(GOP250, [], 2) == []

    def test_small_plans_are_not_split(self) -> None:
        # 10 key frames: 10 decoded frames in 10 runs, below MIN_LANE_FRAMES for a second lane.
        tg = plan_targets(Series(0, 10, 6), FrameType.KEYFRAME, GOP250)
        assert len(independent_runs(decode_plan(GOP250, tg))) == 6
        assert partition_lanes(GOP250, tg, 4) == [tg]
        # Six 1-frame runs on 4 cores: two groups of 3 on 2 cores each (3 / 2 ** 0.7 = 1.85
        # frames' time) beat three groups of 2, or four of at most 2, on one core each (2).
        assert [len(g) for g in partition_lanes(GOP250, tg, 4, min_frames=1)] == [3, 3]
        assert [len(g) for g in partition_lanes(GOP250, tg, 3, min_frames=1)] == [2, 2, 2]

    def test_never_more_lanes_than_runs_or_asked(self) -> None:
        tg = plan_targets(Average(100), FrameType.EXACT, GOP250)
        assert len(partition_lanes(GOP250, tg, 16)) == 6  # six GOPs
        assert len(partition_lanes(GOP250, tg, 3)) == 3
        assert len(partition_lanes(GOP250, tg, 16, min_frames=400)) == 3  # 1475 // 400

    def test_duplicates_stay_together(self) -> None:
        tg = [Target(i + 1, 0, f) for i, f in enumerate([10, 60, 60, 60, 85, 85])]
        lanes = partition_lanes(CFR, tg, 3, min_frames=1)
        assert [[t.frame for t in g] for g in lanes] == [[10], [60, 60, 60], [85, 85]]

    @pytest.mark.parametrize("seed", range(40))
    def test_groups_are_independent_in_order_and_optimally_balanced(self, seed: int) -> None:
        rng = random.Random(seed)
        table = random_table(rng)
        tg = random_targets(rng, table)
        lanes = rng.randint(1, 5)
        min_frames = rng.choice([1, 10, 50])
        groups = partition_lanes(table, tg, lanes, min_frames=min_frames)
        # In order, nothing lost, nothing repeated.
        assert [t for g in groups for t in g] == tg
        assert all(g for g in groups)
        # Independent: fresh decoders per group decode exactly what the sequential plan decodes.
        sequential = frames_to_decode(decode_plan(table, tg))
        assert sum(group_cost(table, g) for g in groups) == sequential
        # Fastest: no contiguous split of the runs into at most as many groups has a smaller wall
        # time (the largest group at the speed of its share of the cores), nor an equal one
        # with fewer groups.
        runs = independent_runs(decode_plan(table, tg))
        costs = [frames_to_decode(r) for r in runs]
        k = max(1, min(lanes, len(runs), sequential // min_frames))
        assert len(groups) <= k
        if len(costs) <= 12:
            splits = [
                [sum(costs[a:b]) for a, b in zip((0, *cut), (*cut, len(costs)), strict=True)]
                for n in range(k)
                for cut in itertools.combinations(range(1, len(costs)), n)
            ]
            got = lanes_time([group_cost(table, g) for g in groups], lanes)
            fastest = min(lanes_time(split, lanes) for split in splits)
            assert got == pytest.approx(fastest)
            assert len(groups) == min(len(split) for split in splits if lanes_time(split, lanes) <= got + 1e-9)

    def test_a_split_that_leaves_a_core_idle_stays_one_decoder_with_frame_threads(self) -> None:
        # 4K G250 30 s (the benchmark's exact10): ten frames whose plan runs 200 + 475 frames
        # (it decodes on through the key frame at 500). Two one-thread lanes take 475 frames'
        # time; one decoder on both cores 675 / 2 ** 0.7 = 416; on 4 cores, 675 / 4 ** 0.7 = 256
        # beats two lanes of 2 cores (475 / 2 ** 0.7 = 292) too.
        table = FrameTable(tuple(i * 40.0 for i in range(750)), (0, 250, 500), 30_000.0)
        tg = plan_targets(Series(1980, 3.0, 10), FrameType.EXACT, table)
        runs = [frames_to_decode(r) for r in independent_runs(decode_plan(table, tg))]
        assert runs == [200, 475]
        assert partition_lanes(table, tg, 2) == partition_lanes(table, tg, 4) == [tg]
        assert lanes_time([675], 2) < lanes_time([200, 475], 2)
        # Even runs still split: six GOPs of ~240 frames on 2 cores, 3 + 3 each.
        assert len(partition_lanes(GOP250, plan_targets(Average(100), FrameType.EXACT, GOP250), 2)) == 2

    def test_decode_speed_is_one_thread_on_one_core_and_grows_slower_than_the_cores(self) -> None:
        assert decode_speed(1) == 1.0
        assert decode_speed(0) == 1.0
        assert 1.5 < decode_speed(2) < 1.7
        assert decode_speed(2) < decode_speed(4) < 4
