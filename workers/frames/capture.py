"""Decoders behind one small Protocol: reach a planned frame, convert it, say when it was.

``FrameDecoder.read(frame, seek_to, size)`` is driven by the planner: ``seek_to`` is the key frame
index to seek to first (or None to decode forward). Decoders identify frames by their pts, never
by counting, so a seek that lands early or late, or a table/decoder disagreement, cannot shift
the result silently: exact mode always returns the last decoded frame with pts <= the target.

PyAV is the primary backend (keyframe-accurate seeks, frame threads, scaling inside the colour
conversion; notes §9). OpenCV is the fallback backend: it seeks by time and grabs forward.
Every decoded frame is charged to a ``Budget`` (frame limit, deadline, cancellation).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

import av
import av.error
import cv2
import numpy as np

from app.core.errors import FailureCode, JobCanceled, JobFailure
from app.core.specs import OutputSize
from workers.frames.encode import output_size, resize
from workers.frames.plan import EPS_MS, FrameTable, frame_at, key_at_or_before
from workers.frames.probe import OpenedInput, StreamIndex, ms_of, set_decode_threads

MAX_DECODE_ERRORS = 32


class Stopped(Exception):
    """A parallel decode lane was told to stop: the run is ending because of something another
    lane or the caller raised, which is what the job records (never this)."""


@dataclass
class Budget:
    """What a job may spend. ``tick`` is called once per decoded frame, from every decode lane
    of the job (the count is shared, so the frame limit holds for the job as a whole)."""

    max_frames: int
    deadline: float | None = None  # time.monotonic() value
    should_cancel: Callable[[], bool] = lambda: False
    frames: int = 0
    stop: threading.Event = field(default_factory=threading.Event, repr=False, compare=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def tick(self) -> None:
        with self._lock:
            self.frames += 1
            frames = self.frames
        if self.stop.is_set():
            raise Stopped("the run is ending")
        if frames > self.max_frames:
            raise JobFailure(
                FailureCode.MEDIA_LIMIT_EXCEEDED, f"the job needs more than {self.max_frames} decoded frames"
            )
        if self.deadline is not None and time.monotonic() > self.deadline:
            raise JobFailure(FailureCode.SNAPSHOT_TIMEOUT, f"the job ran past its deadline after {frames} frames")
        if frames % 16 == 0 and self.should_cancel():
            raise JobCanceled("canceled while decoding")


@dataclass(frozen=True)
class Captured:
    """One output-ready frame: BGR, upright, at the requested size."""

    image: np.ndarray
    frame: int  # table index (0-based, presentation order)
    pts_ms: float
    source_width: int  # displayed size of the source, after rotation
    source_height: int


class FrameDecoder(Protocol):
    name: str
    table: FrameTable
    position: int | None  # last frame handed out or skipped; None before the first read

    def read(self, frame: int, seek_to: int | None, size: OutputSize) -> Captured: ...
    def read_next(self, size: OutputSize) -> Captured | None: ...
    def close(self) -> None: ...


def displayed(width: int, height: int, rotation: int) -> tuple[int, int]:
    return (height, width) if rotation % 180 == 90 else (width, height)


def rotate_upright(image: np.ndarray, rotation: int) -> np.ndarray:
    """Apply the display matrix: ``rotation`` is counter-clockwise degrees (PyAV convention)."""
    r = rotation % 360
    if r == 90:
        return cv2.rotate(image, cv2.ROTATE_90_COUNTERCLOCKWISE)
    if r == 180:
        return cv2.rotate(image, cv2.ROTATE_180)
    if r == 270:
        return cv2.rotate(image, cv2.ROTATE_90_CLOCKWISE)
    return image


class PyAVDecoder:
    name = "pyav"

    def __init__(self, opened: OpenedInput, budget: Budget, *, keyframes_only: bool = False) -> None:
        """``keyframes_only``: every read targets a key frame (FrameType.KEYFRAME jobs), so a
        read seeks, decodes that one packet and drains the decoder, rather than decoding the
        frames a B-frame reorder delay would otherwise pull in after it."""
        self._keyframes_only = keyframes_only
        self._in = opened
        self._index: StreamIndex = opened.index
        self.table = opened.index.table
        self._budget = budget
        self._frames: Iterator[Any] | None = None
        self._pending: Any = None  # a decoded frame not yet handed out (pushback)
        self.position: int | None = None
        self._errors = 0
        self._skip_before: int | None = None  # pts (stream time base) below which NONREF frames are skipped

    def limit_threads(self, threads: int) -> bool:
        """Decode with ``threads`` frame threads (1 = one thread), if nothing was decoded yet
        (FFmpeg fixes the thread count when the codec opens). False when it is too late."""
        ctx = self._in.stream.codec_context
        if ctx.is_open:
            return False
        set_decode_threads(ctx, 1 if self._keyframes_only else threads)
        return True

    # --- decoding ---------------------------------------------------------------------------

    def _iter_frames(self) -> Iterator[Any]:
        container, stream = self._in.container, self._in.stream
        ctx = stream.codec_context
        skipping = False
        for packet in container.demux(stream):
            # Frames nothing refers to (most B-frames) and that come before the target need not
            # be decoded at all: ~half the frames of an x264 stream, ~25% of the decode time.
            # The target's own packet has pts >= the target, so it is always decoded; FFmpeg's
            # frame threads copy skip_frame per packet, so toggling here is safe.
            skip = self._skip_before is not None and packet.pts is not None and packet.pts < self._skip_before
            if skip != skipping:
                ctx.skip_frame = "NONREF" if skip else "DEFAULT"
                skipping = skip
            try:
                frames = packet.decode()
            except av.error.FFmpegError as exc:
                # A damaged packet: the decoder conceals what it can; give up on a wreck.
                self._errors += 1
                if self._errors > MAX_DECODE_ERRORS:
                    raise JobFailure(FailureCode.INPUT_UNREADABLE, f"too many decode errors: {exc}") from exc
                continue
            yield from frames

    def _next(self) -> Any:
        if self._pending is not None:
            frame, self._pending = self._pending, None
            return frame
        if self._frames is None:
            self._frames = self._iter_frames()
        try:
            frame = next(self._frames)
        except StopIteration:
            return None
        except av.error.FFmpegError as exc:
            raise JobFailure(FailureCode.INPUT_UNREADABLE, f"the input is corrupt: {exc}") from exc
        self._budget.tick()
        return frame

    def _seek(self, key: int) -> None:
        try:
            self._in.container.seek(self._index.pts[key], stream=self._in.stream, backward=True)
        except av.error.FFmpegError as exc:
            raise JobFailure(FailureCode.INPUT_UNREADABLE, f"seek failed: {exc}") from exc
        self._frames = None
        self._pending = None
        self.position = None

    def _ms(self, frame: Any) -> float:
        pts = frame.pts if frame.pts is not None else frame.dts
        return ms_of(int(pts), self._index.origin, self._index.time_base)

    # --- Protocol ---------------------------------------------------------------------------

    def read(self, frame: int, seek_to: int | None, size: OutputSize) -> Captured:
        if self._keyframes_only and seek_to == frame:
            alone = self._read_key_alone(frame, size)
            if alone is not None:
                return alone
        target_ms = self.table.pts_ms[frame]
        self._skip_before = self._index.pts[frame]
        if seek_to is not None:
            self._seek(seek_to)
        retry_key = seek_to
        best: Any = None  # last decoded frame with pts <= target
        while True:
            f = self._next()
            if f is None:
                if best is not None:
                    return self._capture(best, size)
                raise JobFailure(
                    FailureCode.INPUT_UNREADABLE, f"the stream ended before {target_ms:.0f} ms (truncated or corrupt)"
                )
            ms = self._ms(f)
            if ms > target_ms + EPS_MS:
                if best is not None:
                    self._pending = f
                    return self._capture(best, size)
                # Landed after the target (B-frame reordering or a coarse index): start from the
                # key frame before the one we used, once per key frame.
                if retry_key is not None and retry_key > 0:
                    retry_key = key_at_or_before(self.table, retry_key - 1)
                    self._seek(retry_key)
                    continue
                return self._capture(f, size)
            self.position = frame_at(self.table, ms)
            if abs(ms - target_ms) <= EPS_MS:
                return self._capture(f, size)
            best = f

    def _read_key_alone(self, key: int, size: OutputSize) -> Captured | None:
        """Seek, decode the key frame's packet alone, drain. None (caller falls back to the
        general path) when the seek does not land exactly on that packet."""
        self._seek(key)
        ctx = self._in.stream.codec_context
        want = self._index.pts[key]
        try:
            for packet in self._in.container.demux(self._in.stream):
                if packet.size == 0 or packet.pts is None:
                    continue
                if packet.pts != want:
                    return None
                frames = [*ctx.decode(packet), *ctx.decode(None)]
                break
            else:
                return None
        except av.error.FFmpegError as exc:
            raise JobFailure(FailureCode.INPUT_UNREADABLE, f"the key frame at {key} is corrupt: {exc}") from exc
        finally:
            ctx.flush_buffers()  # leave draining mode; the next read seeks anyway
            self._frames = None
            self.position = None
        for f in frames:
            self._budget.tick()
            if f.pts == want:
                captured = self._capture(f, size)
                self.position = None  # the decoder was drained: nothing to continue from
                return captured
        return None

    def read_next(self, size: OutputSize) -> Captured | None:
        self._skip_before = None  # every following frame is a candidate
        f = self._next()
        if f is None:
            return None
        self.position = frame_at(self.table, self._ms(f))
        return self._capture(f, size)

    def _capture(self, f: Any, size: OutputSize) -> Captured:
        ms = self._ms(f)
        rotation = int(getattr(f, "rotation", 0) or 0)
        src_w, src_h = displayed(f.width, f.height, rotation)
        out_w, out_h = output_size(src_w, src_h, size)
        conv_w, conv_h = displayed(out_w, out_h, rotation)
        if (conv_w, conv_h) == (f.width, f.height):
            image = f.to_ndarray(format="bgr24")
        else:
            # One swscale pass does YUV->BGR and the area downscale: 3-4x cheaper than
            # converting at full size and resizing with cv2 (notes §6).
            image = f.to_ndarray(format="bgr24", width=conv_w, height=conv_h, interpolation="AREA")
        image = rotate_upright(np.ascontiguousarray(image), rotation)
        idx = frame_at(self.table, ms)
        self.position = idx
        return Captured(image, idx, ms, src_w, src_h)

    def close(self) -> None:
        self._frames = None
        self._pending = None
        self._in.close()


class OpenCVDecoder:
    """Fallback: cv2.VideoCapture on the same locator, driven by the same plan.

    OpenCV seeks by time and lands on a key frame ~16 frames before it (notes §5), then
    ``grab()``s forward; frames are identified by ``CAP_PROP_POS_MSEC`` against the table.
    OpenCV applies the display rotation itself (``CAP_PROP_ORIENTATION_AUTO``).
    """

    name = "opencv"

    def __init__(self, locator: str, table: FrameTable, budget: Budget) -> None:
        self.table = table
        self._budget = budget
        self._cap = cv2.VideoCapture(locator, cv2.CAP_FFMPEG)
        if not self._cap.isOpened():
            raise JobFailure(FailureCode.INPUT_UNREADABLE, "OpenCV cannot open the input")
        self._origin_ms: float | None = None
        self.position: int | None = None
        self._last: tuple[float, np.ndarray] | None = None

    def _grab(self) -> float | None:
        if not self._cap.grab():
            return None
        self._budget.tick()
        ms = float(self._cap.get(cv2.CAP_PROP_POS_MSEC))
        if self._origin_ms is None:
            self._origin_ms = ms
        return round(ms - self._origin_ms, 6)

    def _seek(self, key: int) -> None:
        if self._origin_ms is None:
            self._grab()  # learn the stream's start time before the first seek
        self._cap.set(cv2.CAP_PROP_POS_MSEC, self.table.pts_ms[key] + (self._origin_ms or 0.0))
        self.position = None

    def read(self, frame: int, seek_to: int | None, size: OutputSize) -> Captured:
        target_ms = self.table.pts_ms[frame]
        if seek_to is not None:
            self._seek(seek_to)
        backoff_ms = 1000.0
        while True:
            ms = self._grab()
            if ms is None:
                raise JobFailure(FailureCode.INPUT_UNREADABLE, f"the stream ended before {target_ms:.0f} ms")
            if ms > target_ms + 0.5:
                if backoff_ms > 8000.0:  # the container cannot seek precisely: take the nearest
                    return self._retrieve(ms, size)
                # OpenCV landed past the target: go back further and grab forward.
                self._cap.set(cv2.CAP_PROP_POS_MSEC, max(0.0, target_ms - backoff_ms) + (self._origin_ms or 0.0))
                backoff_ms *= 2
                continue
            if ms >= target_ms - 0.5:
                return self._retrieve(ms, size)

    def read_next(self, size: OutputSize) -> Captured | None:
        ms = self._grab()
        return None if ms is None else self._retrieve(ms, size)

    def _retrieve(self, ms: float, size: OutputSize) -> Captured:
        ok, image = self._cap.retrieve()
        if not ok or image is None:
            raise JobFailure(FailureCode.INPUT_UNREADABLE, f"OpenCV could not decode the frame at {ms:.0f} ms")
        src_h, src_w = image.shape[:2]
        out_w, out_h = output_size(src_w, src_h, size)
        idx = frame_at(self.table, ms)
        self.position = idx
        return Captured(resize(image, out_w, out_h), idx, self.table.pts_ms[idx], src_w, src_h)

    def close(self) -> None:
        self._cap.release()
