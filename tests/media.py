"""Test videos whose every frame says which frame it is.

``make_video`` writes a small video where frame *i* (0-based, presentation order) shows the
number *i* as a grid of big black/white blocks (2 rows x 12 columns: a guard column on each side,
20 data cells = 16 bits of index + a 4-bit check). The blocks are large, so the code survives JPEG
at quality 60 and downscaling to ~64 px wide; ``read_frame_index`` reads it back from any output
image and raises ``ValueError`` when the image carries no valid code (a black frame, a sideways or
upside-down image). Tests prove *which* frame an engine captured, not merely that it made an image.

Encoding: H.264 (libx264 through PyAV's bundled FFmpeg, B-frames on, fixed GOP) by default;
``codec="mpeg4"`` or a missing libx264 falls back to MPEG-4 Part 2 through OpenCV's VideoWriter
(CFR only, no rotation; OpenCV picks its own GOP of 12 frames). Timestamps in ``VideoFacts`` are read back from the written file by
demuxing (no decoding), in milliseconds from the first frame, so tests compare against what the
container really says rather than what was intended.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np

ROWS = 2
COLS = 12  # column 0 and column 11 are guards
DATA_BITS = 16
CHECK_BITS = 4
MAX_INDEX = (1 << DATA_BITS) - 1


@dataclass(frozen=True)
class VideoFacts:
    """What a generated video holds. ``pts_ms[i]`` is frame i's presentation time (0-based frames,
    ms from the first frame); ``key_frames`` are frame indices of key frames (presentation order).
    ``duration_ms`` = the end of the last frame (its pts + its duration)."""

    path: Path
    width: int  # stored (coded) size; with ``rotation`` 90/270 the displayed size is swapped
    height: int
    pts_ms: tuple[float, ...]
    key_frames: tuple[int, ...]
    duration_ms: float
    codec: str
    rotation: int | None = None
    black_lead_frames: int = 0

    @property
    def frame_count(self) -> int:
        return len(self.pts_ms)

    def frame_at(self, t_ms: float) -> int:
        """The frame a player shows at ``t_ms``: the last frame with pts <= t (exact mode)."""
        best = 0
        for i, p in enumerate(self.pts_ms):
            if p <= t_ms + 1e-6:
                best = i
        return best

    def key_at(self, t_ms: float) -> int:
        """The key frame at or before ``t_ms`` (keyframe mode)."""
        i = self.frame_at(t_ms)
        return max(k for k in self.key_frames if k <= i)


def _check(index: int) -> int:
    """A 4-bit check that a flipped or misread code is unlikely to satisfy."""
    return ((index & 0xF) ^ ((index >> 4) * 3) ^ ((index >> 8) * 5) ^ ((index >> 12) * 7)) & 0xF


def _cells(index: int) -> list[list[bool]]:
    """True = white. Row-major 2 x 12; the guards are white (left) and black (right)."""
    bits = [(index >> b) & 1 == 1 for b in range(DATA_BITS)]
    bits += [(_check(index) >> b) & 1 == 1 for b in range(CHECK_BITS)]
    grid: list[list[bool]] = []
    for r in range(ROWS):
        row = [True]
        row += bits[r * (COLS - 2) : (r + 1) * (COLS - 2)]
        row.append(False)
        grid.append(row)
    return grid


def draw_frame_index(index: int, width: int, height: int) -> np.ndarray:
    """A BGR image of ``width`` x ``height`` encoding ``index`` (0 <= index <= 65535)."""
    if not 0 <= index <= MAX_INDEX:
        raise ValueError(f"index {index} does not fit in {DATA_BITS} bits")
    img = np.zeros((height, width, 3), np.uint8)
    for r, row in enumerate(_cells(index)):
        y0, y1 = r * height // ROWS, (r + 1) * height // ROWS
        for c, white in enumerate(row):
            if white:
                x0, x1 = c * width // COLS, (c + 1) * width // COLS
                img[y0:y1, x0:x1] = 255
    return img


def read_frame_index(image_bgr: np.ndarray) -> int:
    """The frame index drawn by ``draw_frame_index``; ``ValueError`` when there is none.

    Samples the central half of each cell (so block edges, JPEG ringing and resampling blur do
    not matter) and thresholds its mean luma at mid-grey.
    """
    if image_bgr.ndim == 3:
        gray = cv2.cvtColor(image_bgr, cv2.COLOR_BGR2GRAY)
    else:
        gray = image_bgr
    h, w = gray.shape[:2]
    if w < COLS * 2 or h < ROWS * 2:
        raise ValueError(f"image {w}x{h} is too small to carry a frame code")
    values: list[list[bool]] = []
    for r in range(ROWS):
        y0, y1 = r * h / ROWS, (r + 1) * h / ROWS
        row: list[bool] = []
        for c in range(COLS):
            x0, x1 = c * w / COLS, (c + 1) * w / COLS
            ya, yb = int(y0 + (y1 - y0) / 4), int(np.ceil(y1 - (y1 - y0) / 4))
            xa, xb = int(x0 + (x1 - x0) / 4), int(np.ceil(x1 - (x1 - x0) / 4))
            mean = float(gray[ya:yb, xa:xb].mean())
            if 80 < mean < 175:
                raise ValueError(f"cell ({r},{c}) is neither black nor white (mean luma {mean:.0f})")
            row.append(mean >= 128)
        values.append(row)
    if not all(values[r][0] for r in range(ROWS)) or any(values[r][COLS - 1] for r in range(ROWS)):
        raise ValueError("guard columns not found: no frame code, or the image is not upright")
    bits = [v for r in range(ROWS) for v in values[r][1 : COLS - 1]]
    index = sum(1 << b for b in range(DATA_BITS) if bits[b])
    check = sum(1 << b for b in range(CHECK_BITS) if bits[DATA_BITS + b])
    if check != _check(index):
        raise ValueError(f"check bits do not match index {index}")
    return index


def vfr_durations_ms(frames: int) -> list[int]:
    """A deterministic variable-frame-rate pattern: 20, 60, 40, 100 ms, repeating."""
    pattern = [20, 60, 40, 100]
    return [pattern[i % len(pattern)] for i in range(frames)]


def make_video(
    path: Path,
    *,
    seconds: float = 4.0,
    fps: int = 25,
    width: int = 320,
    height: int = 240,
    gop: int = 25,
    codec: str = "h264",
    vfr: bool = False,
    black_lead_frames: int = 0,
    rotation: int | None = None,
    bframes: int = 2,
    crf: int = 18,
) -> VideoFacts:
    """Write a video and return what it holds.

    ``width``/``height`` are the *displayed* size: with ``rotation`` (90, 180 or 270, the
    counter-clockwise display rotation stored in the container's display matrix) the frames are
    stored rotated so that a player that honours the matrix shows the code upright. ``vfr`` uses
    ``vfr_durations_ms`` instead of 1/fps per frame (``seconds`` then bounds the total). The first
    ``black_lead_frames`` frames are solid black (they carry no code).
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    if vfr:
        durations: list[int] = []
        total = 0
        for d in vfr_durations_ms(10_000):
            if total + d > seconds * 1000:
                break
            durations.append(d)
            total += d
        n = len(durations)
    else:
        n = int(round(seconds * fps))
        durations = []
    if codec == "h264" and "libx264" in av.codecs_available:
        _write_pyav(path, n, fps, width, height, gop, durations, black_lead_frames, rotation, bframes, crf)
        used = "h264"
    elif rotation is None and not vfr:
        _write_opencv(path, n, fps, width, height, black_lead_frames)
        used = "mpeg4"
    else:
        raise RuntimeError("rotation and VFR need H.264 through PyAV (libx264)")
    pts, keys, duration = probe_facts(path)
    if len(pts) != n:
        raise RuntimeError(f"wrote {n} frames but the container holds {len(pts)}")
    return VideoFacts(path, width, height, pts, keys, duration, used, rotation, black_lead_frames)


def _frame_image(i: int, width: int, height: int, black_lead: int, rotation: int | None) -> np.ndarray:
    if i < black_lead:
        img = np.zeros((height, width, 3), np.uint8)
    else:
        img = draw_frame_index(i, width, height)
    # Stored = displayed rotated clockwise by the CCW display angle, so display undoes it.
    if rotation == 90:
        img = cv2.rotate(img, cv2.ROTATE_90_CLOCKWISE)
    elif rotation == 180:
        img = cv2.rotate(img, cv2.ROTATE_180)
    elif rotation == 270:
        img = cv2.rotate(img, cv2.ROTATE_90_COUNTERCLOCKWISE)
    return img


def _write_pyav(
    path: Path,
    n: int,
    fps: int,
    width: int,
    height: int,
    gop: int,
    durations_ms: list[int],
    black_lead: int,
    rotation: int | None,
    bframes: int,
    crf: int,
) -> None:
    sw, sh = (height, width) if rotation in (90, 270) else (width, height)
    with av.open(str(path), "w", format="mp4") as out:
        if durations_ms:
            stream = out.add_stream("libx264", rate=1000)
            stream.time_base = Fraction(1, 1000)
        else:
            stream = out.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = sw, sh, "yuv420p"
        stream.options = {
            "crf": str(crf),
            "preset": "ultrafast" if sw * sh > 1280 * 720 else "veryfast",
            "x264-params": f"keyint={gop}:min-keyint={gop}:scenecut=0:bframes={bframes}",
        }
        if rotation:
            stream.set_display_rotation(rotation)
        t = 0
        for i in range(n):
            frame = av.VideoFrame.from_ndarray(_frame_image(i, width, height, black_lead, rotation), format="bgr24")
            if durations_ms:
                frame.pts, frame.time_base = t, Fraction(1, 1000)
                t += durations_ms[i]
            else:
                frame.pts = i
                frame.time_base = Fraction(1, fps)
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)


def _write_opencv(path: Path, n: int, fps: int, width: int, height: int, black_lead: int) -> None:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"mp4v"), float(fps), (width, height))
    if not writer.isOpened():
        raise RuntimeError("OpenCV VideoWriter cannot write MPEG-4")
    try:
        for i in range(n):
            writer.write(_frame_image(i, width, height, black_lead, None))
    finally:
        writer.release()


def probe_facts(path: Path) -> tuple[tuple[float, ...], tuple[int, ...], float]:
    """(pts in ms from the first frame in presentation order, key frame indices, duration ms),
    read by demuxing packets only."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        tb = float(stream.time_base or 0)
        packets = [(p.pts, p.is_keyframe, p.duration or 0) for p in container.demux(stream) if p.pts is not None]
    packets.sort()
    first = packets[0][0]
    pts = tuple(round((p - first) * tb * 1000, 6) for p, _, _ in packets)
    keys = tuple(i for i, (_, k, _) in enumerate(packets) if k)
    duration = round((packets[-1][0] - first + packets[-1][2]) * tb * 1000, 6)
    return pts, keys, duration


def make_bulky_video(
    path: Path,
    *,
    seconds: float,
    width: int = 320,
    height: int = 240,
    fps: int = 25,
    gop: int = 25,
    noise: int = 20,
    qp: int = 30,
) -> VideoFacts:
    """A bitrate-heavy H.264 video (ffmpeg's testsrc2 + temporal noise), for byte-count tests.

    Frames carry no frame code; identify them by ``actual_ms``. About 32 MB for 60 s at the
    defaults; raise ``noise`` or lower ``qp`` for more bytes per second.
    """
    exe = shutil.which("ffmpeg")
    if exe is None:
        raise RuntimeError("ffmpeg CLI not found")
    path.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [
            exe,
            "-v",
            "error",
            "-y",
            "-f",
            "lavfi",
            "-i",
            f"testsrc2=size={width}x{height}:rate={fps}",
            "-vf",
            f"noise=alls={noise}:allf=t",
            "-t",
            str(seconds),
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-qp",
            str(qp),
            "-g",
            str(gop),
            "-keyint_min",
            str(gop),
            "-sc_threshold",
            "0",
            str(path),
        ],
        check=True,
    )
    pts, keys, duration = probe_facts(path)
    return VideoFacts(path, width, height, pts, keys, duration, "h264")


def make_not_a_video(path: Path) -> Path:
    """A file with a video-like name that holds text (what a mislabelled upload looks like)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"this is not a video, just some text pretending to be one\n" * 200)
    return path


def make_truncated_video(path: Path, source: Path, keep_fraction: float = 0.3) -> Path:
    """The first ``keep_fraction`` of ``source``'s bytes: an upload cut short.

    Written by ``make_video`` (moov at the end, as PyAV's mp4 muxer writes it), the truncated file
    has no index at all, so it is unreadable rather than merely short.
    """
    data = source.read_bytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data[: max(1, int(len(data) * keep_fraction))])
    return path


def ffmpeg_frame(path: Path, t_ms: float) -> np.ndarray:
    """The frame the ffmpeg CLI shows at ``t_ms`` (accurate seek, autorotate): a reference."""
    exe = shutil.which("ffmpeg")
    if exe is None:
        raise RuntimeError("ffmpeg CLI not found")
    out = subprocess.run(
        [
            exe,
            "-v",
            "error",
            "-ss",
            f"{t_ms / 1000:.3f}",
            "-i",
            str(path),
            "-frames:v",
            "1",
            "-f",
            "image2pipe",
            "-c:v",
            "png",
            "-",
        ],
        check=True,
        capture_output=True,
    ).stdout
    img = cv2.imdecode(np.frombuffer(out, np.uint8), cv2.IMREAD_COLOR)
    if img is None:
        raise RuntimeError("ffmpeg returned no frame")
    return img
