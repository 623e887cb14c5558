"""Open an input (local path or presigned URL) and learn its frame table without decoding.

The frame table (every frame's pts and which are key frames) drives all planning. It comes from
the MP4 ``moov`` box when the input is MP4/MOV (cheap locally, 2-3 Range requests remotely), and
otherwise from demuxing every packet (no decoding, but it reads the whole file). Failures are
mapped to ``JobFailure`` codes here, in one place, so every backend reports hostile input alike.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import av
import av.error

from app.core.errors import FailureCode, JobFailure
from workers.frames.mp4index import Mp4Track, find_moov, parse_video_track
from workers.frames.plan import FrameTable
from workers.frames.rangeio import RangeReader

# url -> a Range reader on it: ``RangeReader`` for a presigned object-store URL; a tenant's own
# URL gets one whose every request goes through the SSRF guard (``workers/urlinput.py``).
OpenReader = Callable[[str], RangeReader]


def is_url(locator: str) -> bool:
    return locator.startswith(("http://", "https://"))


def ms_of(pts: int, origin: int, time_base: Fraction) -> float:
    """pts (stream time base) -> ms from the first frame. One formula for table and decoder, so
    the decoder can match frames against the table by exact float equality."""
    # Integer numerator / integer denominator: one correctly rounded division, ~20x cheaper
    # than Fraction arithmetic (this runs for every frame of the table).
    return round((pts - origin) * 1000 * time_base.numerator / time_base.denominator, 6)


@dataclass(frozen=True)
class StreamIndex:
    """A FrameTable plus the integer pts the decoder sees (``pts[i]`` for table frame i)."""

    table: FrameTable
    pts: tuple[int, ...]
    origin: int
    time_base: Fraction
    source: str  # "mp4" (moov box) or "demux" (packet scan)


@dataclass
class OpenedInput:
    """An open PyAV container and what is known about its video stream before decoding."""

    container: Any  # av.container.InputContainer
    stream: Any  # av.video.stream.VideoStream
    reader: RangeReader | None
    index: StreamIndex
    coded_width: int
    coded_height: int
    codec: str
    rotation: int | None  # from the MP4 tkhd matrix; None = not known before decoding

    def close(self) -> None:
        self.container.close()
        if self.reader is not None:
            self.reader.close()


def check_pixels(width: int, height: int, max_pixels: int) -> None:
    if width * height > max_pixels:
        raise JobFailure(
            FailureCode.MEDIA_LIMIT_EXCEEDED,
            f"frames are {width}x{height} = {width * height} pixels; the limit is {max_pixels}",
        )


def open_input(
    locator: str, *, max_frame_pixels: int, frame_threads: bool = True, open_reader: OpenReader = RangeReader
) -> OpenedInput:
    """Open, check the pixel limit, and build the frame table. Raises ``JobFailure``.

    ``frame_threads`` False decodes on one thread: right for key-frame-only jobs, where each
    read is one key frame after a seek and frame threading only adds pipeline delay (frames
    decoded and thrown away before the first one comes out).
    """
    reader: RangeReader | None = None
    track: Mp4Track | None = None
    try:
        if is_url(locator):
            reader = open_reader(locator)
            if reader.size == 0:
                raise JobFailure(FailureCode.INPUT_UNREADABLE, "the input object is empty")
            track = _mp4_track(reader.read_at, reader.size)
            reader.seek(0)
            container = av.open(reader, mode="r", buffer_size=1 << 16)
        else:
            if not os.path.isfile(locator):
                raise JobFailure(FailureCode.INPUT_NOT_FOUND, "the input file does not exist")
            if os.path.getsize(locator) == 0:
                raise JobFailure(FailureCode.INPUT_UNREADABLE, "the input file is empty")
            with open(locator, "rb") as fh:
                track = _mp4_track(lambda off, n: _pread(fh, off, n), os.path.getsize(locator))
            container = av.open(locator, mode="r")
    except JobFailure:
        if reader is not None:
            reader.close()
        raise
    except av.error.FFmpegError as exc:
        if reader is not None:
            reader.close()
        raise JobFailure(FailureCode.INPUT_UNREADABLE, f"not a readable media file: {exc}") from exc
    try:
        return _describe(container, reader, track, max_frame_pixels, frame_threads)
    except BaseException:
        container.close()
        if reader is not None:
            reader.close()
        raise


def _pread(fh: Any, offset: int, size: int) -> bytes:
    fh.seek(offset)
    data: bytes = fh.read(size)
    return data


def _mp4_track(read_at: Any, size: int) -> Mp4Track | None:
    head = read_at(0, 12)
    if len(head) < 12 or head[4:8] not in (b"ftyp", b"moov", b"free", b"mdat", b"wide", b"skip"):
        return None
    moov = find_moov(read_at, size)
    return parse_video_track(moov) if moov else None


def _describe(
    container: Any, reader: RangeReader | None, track: Mp4Track | None, max_pixels: int, frame_threads: bool
) -> OpenedInput:
    if not container.streams.video:
        raise JobFailure(FailureCode.INPUT_UNREADABLE, "the input has no video stream")
    stream = container.streams.video[0]
    ctx = stream.codec_context
    if ctx is None or not getattr(ctx, "is_decoder", True):
        raise JobFailure(FailureCode.UNSUPPORTED_CODEC, "no decoder for the input's video codec")
    width, height = int(ctx.width or 0), int(ctx.height or 0)
    if width <= 0 or height <= 0:
        raise JobFailure(FailureCode.INPUT_UNREADABLE, "the video stream has no frame size (corrupt or truncated)")
    check_pixels(width, height, max_pixels)
    tb = stream.time_base
    if tb is None:
        raise JobFailure(FailureCode.INPUT_UNREADABLE, "the video stream has no time base")
    index = _index_from_mp4(track, stream, tb) if track is not None else None
    if index is None:
        index = _index_from_demux(container, stream, tb)
    set_decode_threads(ctx, 0 if frame_threads else 1)
    rotation = track.rotation if track is not None else None
    return OpenedInput(container, stream, reader, index, width, height, str(ctx.name), rotation)


def set_decode_threads(ctx: Any, threads: int) -> None:
    """Decode on ``threads`` cores: 0 = FFmpeg's frame threads at its own count (CPUs + 1), n > 1
    = n + 1 frame threads (FFmpeg's own rule for its count: a frame thread often waits for the
    frame before it, so n threads keep fewer than n cores busy; measured at 1080p on 2 cores, 2
    threads decode 1.2x one, 3 threads 1.7x), 1 = one thread. Frame threads: ~1.6x lower latency
    for +3-8% CPU (notes §4); PyAV's default SLICE threading does nothing for single-slice x264
    streams. Only before the codec opens (the first decode)."""
    if threads == 1:
        ctx.thread_type = "SLICE"
        ctx.thread_count = 1
    else:
        ctx.thread_type = "AUTO"
        ctx.thread_count = max(0, threads + 1) if threads > 0 else 0


def reopen_input(
    locator: str, like: OpenedInput, *, threads: int, open_reader: OpenReader = RangeReader
) -> OpenedInput:
    """Another container on the input ``like`` was opened from, for a parallel decode lane.

    The frame table is reused rather than read again (no moov parse: over HTTP that saves 2-3
    range requests per lane); a URL gets a Range reader of its own (each lane seeks on its own).
    Raises ``JobFailure`` when the input no longer looks like what ``like`` indexed.
    """
    reader: RangeReader | None = None
    try:
        if is_url(locator):
            reader = open_reader(locator)
            if like.reader is not None and reader.size != like.reader.size:
                raise JobFailure(FailureCode.INPUT_UNREADABLE, "the input object changed while it was being read")
            container = av.open(reader, mode="r", buffer_size=1 << 16)
        else:
            container = av.open(locator, mode="r")
    except JobFailure:
        if reader is not None:
            reader.close()
        raise
    except (av.error.FFmpegError, OSError) as exc:
        if reader is not None:
            reader.close()
        raise JobFailure(FailureCode.INPUT_UNREADABLE, f"the input could not be opened again: {exc}") from exc
    try:
        streams = container.streams.video
        if not streams or streams[0].time_base != like.index.time_base:
            raise JobFailure(FailureCode.INPUT_UNREADABLE, "the input changed while it was being read")
        stream = streams[0]
        set_decode_threads(stream.codec_context, threads)
    except BaseException:
        container.close()
        if reader is not None:
            reader.close()
        raise
    return OpenedInput(
        container, stream, reader, like.index, like.coded_width, like.coded_height, like.codec, like.rotation
    )


def _index_from_mp4(track: Mp4Track, stream: Any, tb: Fraction) -> StreamIndex | None:
    """Trust the moov table only when it agrees with what libavformat loaded."""
    if tb != Fraction(1, track.timescale):
        return None
    entries = [e for e in stream.index_entries if not e.is_discard]
    if len(entries) != len(track.pts):
        return None
    origin = track.pts[0]
    if stream.start_time is not None and stream.start_time != origin:
        return None
    keys = tuple(i for i, p in enumerate(track.pts) if p in track.key_pts)
    if not keys or keys[0] != 0:
        keys = (0, *[k for k in keys if k != 0])
    table = FrameTable(
        pts_ms=tuple(ms_of(p, origin, tb) for p in track.pts),
        key_frames=keys,
        duration_ms=ms_of(track.end_pts, origin, tb),
    )
    return StreamIndex(table, track.pts, origin, tb, "mp4")


def _index_from_demux(container: Any, stream: Any, tb: Fraction) -> StreamIndex:
    """Scan packets (no decoding) for pts, duration and key flags, then rewind."""
    rows: dict[int, tuple[bool, int]] = {}
    try:
        for packet in container.demux(stream):
            ts = packet.pts if packet.pts is not None else packet.dts
            if ts is None or packet.size == 0:
                continue
            rows[ts] = (bool(packet.is_keyframe), int(packet.duration or 0))
    except av.error.FFmpegError:
        pass  # a damaged tail: keep what demuxed cleanly
    if not rows:
        raise JobFailure(FailureCode.INPUT_UNREADABLE, "the video stream holds no frames (corrupt or truncated)")
    pts = tuple(sorted(rows))
    origin = pts[0]
    keys = tuple(i for i, p in enumerate(pts) if rows[p][0])
    if not keys or keys[0] != 0:
        keys = (0, *[k for k in keys if k != 0])
    last_duration = rows[pts[-1]][1] or (pts[-1] - pts[-2] if len(pts) > 1 else 0)
    table = FrameTable(
        pts_ms=tuple(ms_of(p, origin, tb) for p in pts),
        key_frames=keys,
        duration_ms=ms_of(pts[-1] + last_duration, origin, tb),
    )
    try:
        container.seek(origin, stream=stream, backward=True)
    except av.error.FFmpegError as exc:
        raise JobFailure(FailureCode.INPUT_UNREADABLE, f"the input cannot be rewound: {exc}") from exc
    return StreamIndex(table, pts, origin, tb, "demux")
