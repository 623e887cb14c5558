"""``python -m bench.run``: the worker's frame path side by side with the ffmpeg CLI.

For each input x workload it times (warm, in-process, medians) ``run_snapshot`` on a local store
and the ffmpeg CLI producing the same frames three ways (one process per frame with ``-ss``
before ``-i``; one process with a ``select`` filter; ``-skip_frame nokey`` for key frames), and
computes two decode lower bounds = frames that must be decoded (the planner's decode plan) / a
decode rate on that input (PyAV, every frame decoded, nothing converted): the issue's bound with
one decoder on one thread (``LB``: a job that keeps to one core cannot go under it; the target
is even100 and sprite at <= 0.6 of it, which only a job using both cores reaches), and the
stricter one at the frame-threaded rate of one decoder on every core (``threaded LB``). Both
rates are timed as cells of the same interleaved rounds (``decode sample``), so load from other
processes on this shared machine slows the bounds as it slows the worker; the threaded bound at
the rate measured once at the start is printed beside them.

The worker runs in the default configuration, exactly as a Celery worker runs a job: it holds
its share of this host's cores for the run (``workers.pipeline.core_share`` from
``Settings.from_env()``, nothing overridden), and being the only job on the host it gets every
usable CPU (parallel GOP lanes, ``plan.partition_lanes``). Its CPU seconds per wall second are
printed (``cores used``). For ``even100`` and ``sprite`` the same job with one decoder on one
thread runs beside it (``worker 1 lane``). Ends with one ``SUMMARY name=value ...`` line, with the
1-minute load average at the start and the end. ``BENCH_QUICK=1`` runs a reduced set.
"""

from __future__ import annotations

import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import av

from app.core.jobs import SnapshotJob
from app.core.specs import (
    Average,
    FrameType,
    ObjectRef,
    OutputSize,
    OutputTarget,
    Series,
    SingleTime,
    SnapshotSpec,
    SpriteSpec,
    Timing,
)
from app.settings import Settings
from app.storage.objects import LocalObjectStore
from bench.inputs import Input, ensure
from bench.rangebench import range_read_fraction
from workers.frames.encode import encode_image
from workers.frames.plan import FrameTable, decode_plan, frames_to_decode, plan_targets
from workers.frames.probe import open_input
from workers.pipeline import MediaLimits, core_share, run_snapshot

QUICK = os.environ.get("BENCH_QUICK") == "1"
# The worker's share of this host's cores, as the task takes it (workers/tasks.py).
SHARE = core_share(Settings.from_env())
LIMITS = MediaLimits(max_frame_pixels=8192 * 8192, max_decoded_frames=10_000_000, deadline=None)
FF = shutil.which("ffmpeg") or "ffmpeg"
SPRITE_W = 160
SAMPLE_FRAMES = 250  # the decode sample of each round: one GOP of the GOP-250 inputs (~1.3 s at 1080p)
LONG_ROUND_S = 60.0  # a first round longer than this is the only one


def cpu_s() -> float:
    """CPU seconds of this process, all threads (the worker runs in it; ffmpeg does not)."""
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def measure(cells: dict[str, Callable[[], object]]) -> dict[str, float]:
    """Median wall time per cell, the cells interleaved round by round (A B C A B C ...), so
    load from other processes on this shared 2-core box hits every method alike; also the
    median of the worker's CPU seconds per wall second (``worker_cpus``) and of the decode
    samples' frame rates (``decode_fps``: frame threads; ``decode_1t_fps``: one thread).

    Three rounds: after a discarded warm-up when every cell of the first round took at most
    5 s; else the first round counts and two follow, unless it took over ``LONG_ROUND_S`` (the
    10-minute input) or in quick mode, where one round is all."""
    times: dict[str, list[float]] = {k: [] for k in cells}
    cpus: list[float] = []
    rates: dict[str, list[float]] = {"decode_sample": [], "decode_sample_1t": []}

    def round_() -> None:
        for name, fn in cells.items():
            c0, t0 = cpu_s(), time.perf_counter()
            value = fn()
            wall = time.perf_counter() - t0
            times[name].append(wall)
            if name == "worker":
                cpus.append((cpu_s() - c0) / wall)
            if name in rates:
                assert isinstance(value, float)
                rates[name].append(value)

    round_()
    first = sum(v[0] for v in times.values())
    if not QUICK and max(v[0] for v in times.values()) <= 5.0:
        times, cpus = {k: [] for k in cells}, []
        rates = {k: [] for k in rates}
        rounds = 3
    else:
        rounds = 0 if QUICK or first > LONG_ROUND_S else 2
    for _ in range(rounds):
        round_()
    medians = {k: statistics.median(v) for k, v in times.items()}
    for name, key in (("decode_sample", "decode_fps"), ("decode_sample_1t", "decode_1t_fps")):
        if rates[name]:
            medians[key] = statistics.median(rates[name])
    return {**medians, "worker_cpus": statistics.median(cpus)}


def ff(args: list[str]) -> None:
    subprocess.run([FF, "-v", "error", "-nostdin", "-y", *args], check=True)


class Bench:
    def __init__(self, inp: Input, work: Path) -> None:
        self.inp = inp
        self.work = work
        root = work / "store"
        (root / "in").mkdir(parents=True, exist_ok=True)
        link = root / "in" / inp.path.name
        if not link.exists():
            link.symlink_to(inp.path)
        self.store = LocalObjectStore(root)
        self.store.make_bucket("out")
        opened = open_input(str(inp.path), max_frame_pixels=LIMITS.max_frame_pixels)
        self.table: FrameTable = opened.index.table
        opened.close()
        self.rate = max(self._decode_rate(), self._decode_rate())  # best of two, before the rounds
        # One decoder on one thread: the floor a job decoding in several lanes is compared with too.
        self.rate_1t = self._decode_rate(threads=1)
        self.key_cost = self._key_decode_cost()
        # Each round's decode sample: the same frames every time, whatever the load at the start.
        self.sample_frames = min(self.table.frame_count, SAMPLE_FRAMES)

    def decode_sample(self, threads: int = 0) -> Callable[[], object]:
        """A round's cell: decode ``sample_frames`` frames from the start, as ``_decode_rate``
        (``threads`` 1: one decoder thread); its rate counts from the first frame out (steady
        state: opening the file and filling the frame threads' pipeline would make a short
        sample slower than a long run, and the bound looser)."""
        return lambda: self._decode_rate(threads, limit=self.sample_frames, steady=True)

    def _decode_rate(self, threads: int = 0, limit: int | None = None, *, steady: bool = False) -> float:
        """Frames per second, PyAV with frame threads (``threads`` 0: FFmpeg's count; 1: one
        thread), decoding everything (nothing converted); ``steady``: from the first frame."""
        limit = limit or (600 if QUICK else 1500)
        with av.open(str(self.inp.path)) as c:
            s = c.streams.video[0]
            s.codec_context.thread_type = "AUTO" if threads != 1 else "SLICE"
            s.codec_context.thread_count = threads
            n = 0
            t0 = time.perf_counter()
            for _ in c.decode(s):
                n += 1
                if n == 1 and steady:
                    t0 = time.perf_counter()
                if n >= limit:
                    break
            return (n - 1 if steady else n) / (time.perf_counter() - t0)

    def _key_decode_cost(self) -> float:
        """Seconds per key frame: decode the first few key frames alone, one thread, from their
        packets (the cost a key-frame-only job cannot avoid)."""
        with av.open(str(self.inp.path)) as c:
            s = c.streams.video[0]
            keys = [p for p in c.demux(s) if p.is_keyframe][:5]
            ctx = av.CodecContext.create(s.codec_context.name, "r")
            ctx.extradata = s.codec_context.extradata
            runs = []
            for p in keys:
                t0 = time.perf_counter()
                ctx.decode(p)
                ctx.decode(None)  # drain: the key frame comes out
                runs.append(time.perf_counter() - t0)
                ctx.flush_buffers()
            return statistics.median(runs) if runs else 1 / self.rate

    def encode_cost(self, j: SnapshotJob) -> float:
        """Per unique target: one YUV->BGR conversion at output size + one encode (notes §4 LB)."""
        targets = {t.frame for t in plan_targets(j.spec.timing, j.spec.frame_type, self.table)}
        width = j.spec.size.width
        with av.open(str(self.inp.path)) as c:
            frame = next(c.decode(video=0))
            runs = []
            for _ in range(5):
                t0 = time.perf_counter()
                if width is None:
                    img = frame.to_ndarray(format="bgr24")
                else:
                    h = round(width * frame.height / frame.width)
                    img = frame.to_ndarray(format="bgr24", width=width, height=h, interpolation="AREA")
                if j.spec.sprite is None or j.spec.sprite.keep_cells:
                    encode_image(img, j.spec.format, j.spec.quality)
                runs.append(time.perf_counter() - t0)
        return len(targets) * statistics.median(runs)

    def job(self, timing: Timing, frame_type: FrameType = FrameType.EXACT, **kw: object) -> SnapshotJob:
        spec = SnapshotSpec(
            ObjectRef("in", self.inp.path.name),
            timing,
            OutputTarget("out", "b/{job_id}/{index:5}.jpg"),
            frame_type=frame_type,
            **kw,
        )  # type: ignore[arg-type]
        return SnapshotJob(id="bench", tenant="b", pipeline_id="b", spec=spec)

    def worker(self, j: SnapshotJob, decode_threads: int | None = None) -> Callable[[], object]:
        """The job as the task runs it: holding its share of this host's cores for the run
        (``decode_threads`` None), or with that many threads."""

        def go() -> None:
            with SHARE.hold() as threads:
                if decode_threads is None:
                    self.threads = threads
                run_snapshot(j, self.store, limits=LIMITS, decode_threads=decode_threads or threads)

        return go

    def lower_bound(self, j: SnapshotJob, rate: float | None = None) -> float:
        """Decode seconds the plan cannot avoid: at ``rate`` (a rounds' decode sample, frames
        per second), or at the frame-threaded rate measured at the start."""
        targets = plan_targets(j.spec.timing, j.spec.frame_type, self.table)
        frames = frames_to_decode(decode_plan(self.table, targets))
        if j.spec.frame_type is FrameType.KEYFRAME:
            return frames * self.key_cost  # each is a key frame: ~5x an average frame
        return frames / (rate or self.rate)

    def frames(self, j: SnapshotJob) -> list[int]:
        return [t.frame for t in plan_targets(j.spec.timing, j.spec.frame_type, self.table)]

    def out(self, name: str) -> str:
        d = self.work / "ff"
        d.mkdir(exist_ok=True)
        return str(d / name)

    def ff_per_frame(self, frames: list[int], extra: list[str] | None = None) -> Callable[[], object]:
        def go() -> None:
            for k, f in enumerate(frames):
                t = self.table.pts_ms[f] / 1000
                ff(
                    [
                        *(extra or []),
                        "-ss",
                        f"{t:.3f}",
                        "-i",
                        str(self.inp.path),
                        "-frames:v",
                        "1",
                        "-q:v",
                        "2",
                        self.out(f"per_{k}.jpg"),
                    ]
                )

        return go

    def ff_select(self, frames: list[int], vf_tail: str = "", n_out: int | None = None) -> Callable[[], object]:
        uniq = sorted(set(frames))
        expr = "+".join(f"eq(n\\,{f})" for f in uniq)
        vf = f"select='{expr}'{vf_tail}"
        count = n_out if n_out is not None else len(uniq)
        return lambda: ff(
            [
                "-i",
                str(self.inp.path),
                "-vf",
                vf,
                "-fps_mode",
                "passthrough",
                "-frames:v",
                str(count),
                "-q:v",
                "2",
                self.out("sel_%03d.jpg"),
            ]
        )

    def ff_nokey_per(self, frames: list[int]) -> Callable[[], object]:
        return self.ff_per_frame(frames, ["-skip_frame", "nokey", "-noaccurate_seek"])

    def ff_nokey_select(self, frames: list[int]) -> Callable[[], object]:
        keys = list(self.table.key_frames)
        ordinals = sorted({keys.index(f) for f in frames})
        expr = "+".join(f"eq(n\\,{o})" for o in ordinals)
        return lambda: ff(
            [
                "-skip_frame",
                "nokey",
                "-i",
                str(self.inp.path),
                "-vf",
                f"select='{expr}'",
                "-fps_mode",
                "passthrough",
                "-frames:v",
                str(len(ordinals)),
                "-q:v",
                "2",
                self.out("key_%03d.jpg"),
            ]
        )


def workloads(b: Bench) -> dict[str, dict[str, float]]:
    dur = b.table.duration_ms
    w2 = Series(start_ms=0.05 * dur + 480, interval_s=dur / 10 / 1000, count=10)
    jobs = {
        "exact1": b.job(SingleTime(0.7 * dur + 480)),  # +0.48 s: not on a key frame (notes §2)
        "exact10": b.job(w2),
        "even100": b.job(Average(100)),
        "keyframe10": b.job(w2, FrameType.KEYFRAME),
        "sprite": b.job(
            Average(100),
            size=OutputSize(width=SPRITE_W),
            sprite=SpriteSpec(OutputTarget("out", "b/{job_id}/sprite-{sheet:5}.jpg"), keep_cells=False),
        ),
    }
    rows: dict[str, dict[str, float]] = {}
    for name, j in jobs.items():
        frames = b.frames(j)
        cells: dict[str, Callable[[], object]] = {"worker": b.worker(j)}
        if j.spec.frame_type is not FrameType.KEYFRAME:
            cells["decode_sample"] = b.decode_sample()  # the threaded lower bound's rate, in the same rounds
            if name != "exact1":  # the bound (one thread): where a job can use both cores
                cells["decode_sample_1t"] = b.decode_sample(threads=1)
        if name in ("even100", "sprite") and len(os.sched_getaffinity(0)) > 1:
            cells["worker_1lane"] = b.worker(j, 1)  # the same job decoded by one decoder, side by side
        if name in ("exact1", "exact10"):
            cells["ff_per_frame"] = b.ff_per_frame(frames)
            cells["ff_select"] = b.ff_select(frames)
        elif name == "even100":
            cells["ff_select"] = b.ff_select(frames)
        elif name == "keyframe10":
            cells["ff_per_frame"] = b.ff_per_frame(frames)
            cells["ff_nokey_per"] = b.ff_nokey_per(frames)
            cells["ff_nokey_select"] = b.ff_nokey_select(frames)
        else:
            cells["ff_select_tile"] = b.ff_select(frames, f",scale={SPRITE_W}:-2,tile=10x10", n_out=1)
        row = measure(cells)
        row["threaded_lb"] = b.lower_bound(j, row.get("decode_fps"))
        row["lower_bound_start"] = b.lower_bound(j)
        # The lower bound (one decoder thread); the threaded one where none was timed.
        row["lower_bound"] = b.lower_bound(j, row["decode_1t_fps"]) if "decode_1t_fps" in row else row["threaded_lb"]
        row["threads"] = b.threads
        row["lb_with_encode"] = row["threaded_lb"] + b.encode_cost(j)
        rows[name] = row
        print(f"  {b.inp.name} {name}: " + ", ".join(f"{k}={v:.3f}s" for k, v in row.items()), flush=True)
    return rows


def ratio(row: dict[str, float], *peers: str) -> float:
    best = min(row[p] for p in peers if p in row)
    return row["worker"] / best


def main() -> int:
    names = ["a"] if QUICK else ["a", "b", "c", "d"]
    results: dict[str, dict[str, dict[str, float]]] = {}
    labels: dict[str, str] = {}
    rates_1t: dict[str, float] = {}  # one-thread decode rate / frame-threaded rate, per input
    load_start = os.getloadavg()[0]
    print(f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())} on {len(os.sched_getaffinity(0))} CPUs")
    with tempfile.TemporaryDirectory(prefix="openmps-bench-") as tmp:
        for name in names:
            inp = ensure(name, QUICK)
            b = Bench(inp, Path(tmp) / name)
            labels[name] = (
                f"{inp.label} ({inp.path.stat().st_size / 1e6:.0f} MB, decode {b.rate:.0f} fps, "
                f"one thread {b.rate_1t:.0f} fps)"
            )
            rates_1t[name] = b.rate_1t / b.rate
            print(f"{name}: {labels[name]}", flush=True)
            results[name] = workloads(b)
        big = ensure("big", QUICK)
        frac, read, size = range_read_fraction(big.path)
    print()
    print(
        "| input | workload | worker s | LB s (1 thread) | worker/LB | threaded LB s | worker/threaded LB "
        "| threaded LB+conv+enc s | worker/that | ffmpeg per-frame s | ffmpeg select s | ffmpeg nokey best s "
        "| worker/best ffmpeg | worker 1 lane s | 1 lane/threaded LB | decode threads | cores used "
        "| threaded LB at start s |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for name, rows in results.items():
        for wl, row in rows.items():
            nokey = min((row[k] for k in ("ff_nokey_per", "ff_nokey_select") if k in row), default=None)
            sel = row.get("ff_select", row.get("ff_select_tile"))
            peers = [v for k, v in row.items() if k.startswith("ff_")]
            one_lane = row.get("worker_1lane")
            cells = [
                labels[name].split(" (")[0],
                wl,
                f"{row['worker']:.3f}",
                f"{row['lower_bound']:.3f}" if "decode_1t_fps" in row else "-",
                f"{row['worker'] / row['lower_bound']:.2f}" if "decode_1t_fps" in row else "-",
                f"{row['threaded_lb']:.3f}",
                f"{row['worker'] / row['threaded_lb']:.2f}" if row["threaded_lb"] else "-",
                f"{row['lb_with_encode']:.3f}",
                f"{row['worker'] / row['lb_with_encode']:.2f}",
                f"{row['ff_per_frame']:.3f}" if "ff_per_frame" in row else "-",
                f"{sel:.3f}" if sel is not None else "-",
                f"{nokey:.3f}" if nokey is not None else "-",
                f"{row['worker'] / min(peers):.2f}",
                f"{one_lane:.3f}" if one_lane is not None else "-",
                f"{one_lane / row['threaded_lb']:.2f}" if one_lane is not None and row["threaded_lb"] else "-",
                f"{row['threads']:.0f}",
                f"{row['worker_cpus']:.2f}",
                f"{row['lower_bound_start']:.3f}",
            ]
            print("| " + " | ".join(cells) + " |")
    print(f"\nrange read: {read} of {size} bytes ({frac:.4f}) for one exact frame at 95% of {big.label}")
    a = results["a"]
    summary = {
        "input": "a_1080p_gop250" + ("_quick" if QUICK else ""),
        "exact1_vs_ffmpeg_per_frame": a["exact1"]["worker"] / a["exact1"]["ff_per_frame"],
        "exact10_vs_ffmpeg_per_frame": a["exact10"]["worker"] / a["exact10"]["ff_per_frame"],
        "exact10_vs_lower_bound": a["exact10"]["worker"] / a["exact10"]["lower_bound"],
        "exact10_vs_threaded_lower_bound": a["exact10"]["worker"] / a["exact10"]["threaded_lb"],
        "exact10_vs_lb_with_encode": a["exact10"]["worker"] / a["exact10"]["lb_with_encode"],
        "keyframe10_vs_ffmpeg_nokey": ratio(a["keyframe10"], "ff_nokey_per", "ff_nokey_select"),
        "even100_vs_ffmpeg_select": a["even100"]["worker"] / a["even100"]["ff_select"],
        # The target: <= 0.6 of the one-thread decode lower bound timed in the same rounds.
        "even100_vs_lower_bound": a["even100"]["worker"] / a["even100"]["lower_bound"],
        "sprite_vs_ffmpeg": a["sprite"]["worker"] / a["sprite"]["ff_select_tile"],
        "sprite_vs_lower_bound": a["sprite"]["worker"] / a["sprite"]["lower_bound"],
        # Stricter: against one decoder on every core (frame threads), also timed in the rounds.
        "even100_vs_threaded_lower_bound": a["even100"]["worker"] / a["even100"]["threaded_lb"],
        "sprite_vs_threaded_lower_bound": a["sprite"]["worker"] / a["sprite"]["threaded_lb"],
        "decode_threads": int(a["even100"]["threads"]),
        "even100_cores_used": a["even100"]["worker_cpus"],
        "sprite_cores_used": a["sprite"]["worker_cpus"],
        # Against the threaded rate measured once before the rounds (best of two), not in them.
        "even100_vs_threaded_lower_bound_at_start": a["even100"]["worker"] / a["even100"]["lower_bound_start"],
        "sprite_vs_threaded_lower_bound_at_start": a["sprite"]["worker"] / a["sprite"]["lower_bound_start"],
        # The one-thread bound from the one-thread rate measured once at the start (x threaded/1-thread).
        "even100_vs_lower_bound_at_start": a["even100"]["worker"] / a["even100"]["lower_bound_start"] * rates_1t["a"],
        "sprite_vs_lower_bound_at_start": a["sprite"]["worker"] / a["sprite"]["lower_bound_start"] * rates_1t["a"],
        **{
            f"{w}_1lane_vs_threaded_lower_bound": a[w]["worker_1lane"] / a[w]["threaded_lb"]
            for w in ("even100", "sprite")
            if "worker_1lane" in a[w]
        },
        "range_read_fraction": frac,
        "range_object_mb": size / 1e6,
        "load1_start": load_start,
        "load1_end": os.getloadavg()[0],
    }
    print("SUMMARY " + " ".join(f"{k}={v:.3f}" if isinstance(v, float) else f"{k}={v}" for k, v in summary.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
