"""Benchmark inputs, generated once into bench/out/ (git-ignored) and reused.

Synthetic but realistic: ffmpeg's ``testsrc2`` (moving pattern) with light temporal grain so the
bitrate resembles camera footage, x264 with B-frames and a fixed GOP (``-g N -keyint_min N
-sc_threshold 0``), faststart. The 10-minute input is a 60-s clip looped by stream copy (no
re-encode), the >= 1 GB range-test object likewise.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

OUT = Path(__file__).resolve().parent / "out"


@dataclass(frozen=True)
class Input:
    name: str
    path: Path
    label: str


def _ffmpeg() -> str:
    exe = shutil.which("ffmpeg")
    if exe is None:
        raise SystemExit("bench needs the ffmpeg CLI on PATH")
    return exe


def _encode(path: Path, *, size: str, seconds: int, gop: int, preset: str, crf: int, noise: int) -> None:
    tmp = path.with_suffix(".tmp.mp4")
    subprocess.run(
        [
            _ffmpeg(),
            "-v",
            "error",
            "-y",
            "-f",
            "lavfi",
            "-i",
            f"testsrc2=size={size}:rate=25",
            "-vf",
            f"noise=alls={noise}:allf=t",
            "-t",
            str(seconds),
            "-c:v",
            "libx264",
            "-preset",
            preset,
            "-crf",
            str(crf),
            "-g",
            str(gop),
            "-keyint_min",
            str(gop),
            "-sc_threshold",
            "0",
            "-pix_fmt",
            "yuv420p",
            "-movflags",
            "+faststart",
            str(tmp),
        ],
        check=True,
    )
    tmp.rename(path)


def _loop(src: Path, dst: Path, times: int) -> None:
    tmp = dst.with_suffix(".tmp.mp4")
    subprocess.run(
        [
            _ffmpeg(),
            "-v",
            "error",
            "-y",
            "-stream_loop",
            str(times - 1),
            "-i",
            str(src),
            "-c",
            "copy",
            "-movflags",
            "+faststart",
            str(tmp),
        ],
        check=True,
    )
    tmp.rename(dst)


def ensure(name: str, quick: bool) -> Input:
    """Make (or reuse) one input. Names: a/b (1080p GOP 250/25, 60 s), c (4K GOP 250, 30 s),
    d (720p, 10 min, GOP 250), big (>= 1 GB, for the range test). Quick mode: shorter a and c."""
    OUT.mkdir(parents=True, exist_ok=True)
    secs = 20 if quick else 60
    specs = {
        "a": (
            f"a_1080p_gop250_{secs}s.mp4",
            f"1080p G250 {secs}s",
            dict(size="1920x1080", seconds=secs, gop=250, preset="veryfast", crf=23, noise=8),
        ),
        "b": (
            "b_1080p_gop25_60s.mp4",
            "1080p G25 60s",
            dict(size="1920x1080", seconds=60, gop=25, preset="veryfast", crf=23, noise=8),
        ),
        "c": (
            f"c_2160p_gop250_{secs // 2}s.mp4",
            f"4K G250 {secs // 2}s",
            dict(size="3840x2160", seconds=secs // 2, gop=250, preset="ultrafast", crf=23, noise=6),
        ),
        "d60": (
            "d_720p_gop250_60s.mp4",
            "720p 60s",
            dict(size="1280x720", seconds=60, gop=250, preset="veryfast", crf=23, noise=8),
        ),
    }
    if name in specs:
        file, label, kw = specs[name]
        path = OUT / file
        if not path.exists():
            print(f"generating {path.name} ...", flush=True)
            _encode(path, **kw)  # type: ignore[arg-type]
        return Input(name, path, label)
    if name == "d":
        src = ensure("d60", quick)
        path = OUT / "d_720p_10min.mp4"
        if not path.exists():
            print(f"generating {path.name} ...", flush=True)
            _loop(src.path, path, 10)
        return Input(name, path, "720p 10min")
    if name == "big":
        src = ensure("b", quick) if not quick else ensure("a", quick)
        size = src.path.stat().st_size
        target = (256 << 20) if quick else (1 << 30)
        times = -(-target // size)
        path = OUT / f"big_{'256m' if quick else '1g'}.mp4"
        if not path.exists():
            print(f"generating {path.name} ({times} x {src.path.name}) ...", flush=True)
            _loop(src.path, path, times)
        return Input(name, path, f"{path.stat().st_size / 1e6:.0f} MB object")
    raise KeyError(name)
