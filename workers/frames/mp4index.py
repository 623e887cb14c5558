"""The key-frame index of an MP4/MOV file straight from its ``moov`` box, without decoding.

Why parse boxes ourselves: demuxing every packet to learn timestamps and key flags reads the
whole file, which over HTTP means downloading it; the ``moov`` box (stts/ctts/stss + the edit
list) is a few hundred KB at most and costs 2-3 bounded Range requests (notes §9.2).

Times: sample decode times come from ``stts``, composition offsets from ``ctts`` (signed, as
FFmpeg reads them in either box version), and the first non-empty edit's ``media_time`` is
subtracted, which is how FFmpeg's mov demuxer presents them. Results are in the track's
``mdhd`` timescale, i.e. PyAV's ``stream.time_base`` for MP4. Returns None for anything this
parser does not handle (fragmented MP4, no video track, no moov): callers fall back to demuxing.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Callable
from dataclasses import dataclass

ReadAt = Callable[[int, int], bytes]

MAX_MOOV_BYTES = 64 << 20


@dataclass(frozen=True)
class Mp4Track:
    timescale: int
    pts: tuple[int, ...]  # presentation order, sorted, edit shift applied; samples before it dropped
    key_pts: frozenset[int]
    end_pts: int  # presentation end of the last sample
    width: int
    height: int
    rotation: int  # counter-clockwise display rotation from the tkhd matrix (PyAV's convention)


def _boxes(data: bytes, start: int, end: int) -> list[tuple[bytes, int, int]]:
    """(type, payload start, payload end) of the boxes in data[start:end]."""
    out: list[tuple[bytes, int, int]] = []
    pos = start
    while pos + 8 <= end:
        size, kind = struct.unpack_from(">I4s", data, pos)
        header = 8
        if size == 1:
            if pos + 16 > end:
                break
            (size,) = struct.unpack_from(">Q", data, pos + 8)
            header = 16
        elif size == 0:
            size = end - pos
        if size < header or pos + size > end:
            break
        out.append((kind, pos + header, pos + size))
        pos += size
    return out


def find_moov(read_at: ReadAt, file_size: int) -> bytes | None:
    """Walk top-level boxes (reading only their headers) and return the moov payload."""
    pos = 0
    while pos + 8 <= file_size:
        head = read_at(pos, 16)
        if len(head) < 8:
            return None
        size, kind = struct.unpack_from(">I4s", head, 0)
        header = 8
        if size == 1 and len(head) >= 16:
            (size,) = struct.unpack_from(">Q", head, 8)
            header = 16
        elif size == 0:
            size = file_size - pos
        if size < header:
            return None
        if kind == b"moov":
            if size > MAX_MOOV_BYTES or pos + size > file_size:
                return None
            return read_at(pos + header, size - header)
        pos += size
    return None


def parse_video_track(moov: bytes) -> Mp4Track | None:
    for kind, start, end in _boxes(moov, 0, len(moov)):
        if kind == b"mvex":
            return None  # fragmented: samples live in moof boxes
        if kind == b"trak":
            track = _parse_trak(moov, start, end)
            if track is not None:
                return track
    return None


def _find(data: bytes, start: int, end: int, path: list[bytes]) -> tuple[int, int] | None:
    for kind, s, e in _boxes(data, start, end):
        if kind == path[0]:
            return (s, e) if len(path) == 1 else _find(data, s, e, path[1:])
    return None


def _parse_trak(d: bytes, start: int, end: int) -> Mp4Track | None:
    hdlr = _find(d, start, end, [b"mdia", b"hdlr"])
    if hdlr is None or d[hdlr[0] + 8 : hdlr[0] + 12] != b"vide":
        return None
    mdhd = _find(d, start, end, [b"mdia", b"mdhd"])
    stbl = _find(d, start, end, [b"mdia", b"minf", b"stbl"])
    if mdhd is None or stbl is None:
        return None
    version = d[mdhd[0]]
    timescale = struct.unpack_from(">I", d, mdhd[0] + (20 if version == 1 else 12))[0]
    stts = _find(d, stbl[0], stbl[1], [b"stts"])
    if stts is None or timescale == 0:
        return None
    deltas: list[int] = []
    for count, delta in _table(d, stts, ">II"):
        deltas.extend([delta] * count)
    n = len(deltas)
    if n == 0:
        return None
    offsets = [0] * n
    ctts = _find(d, stbl[0], stbl[1], [b"ctts"])
    if ctts is not None:
        i = 0
        for count, off in _table(d, ctts, ">Ii"):
            for _ in range(count):
                if i < n:
                    offsets[i] = off
                    i += 1
    stss = _find(d, stbl[0], stbl[1], [b"stss"])
    sync = {s - 1 for (s,) in _table(d, stss, ">I")} if stss is not None else set(range(n))
    shift = _edit_shift(d, start, end)
    dts = 0
    samples: list[tuple[int, bool]] = []
    end_pts = 0
    for i in range(n):
        pts = dts + offsets[i] - shift
        end_pts = max(end_pts, pts + deltas[i])
        if pts >= 0:
            samples.append((pts, i in sync))
        dts += deltas[i]
    if not samples:
        return None
    samples.sort()
    tkhd = _find(d, start, end, [b"tkhd"])
    width = height = rotation = 0
    if tkhd is not None:
        width, height = struct.unpack_from(">II", d, tkhd[1] - 8)
        width, height = width >> 16, height >> 16
        a, b = struct.unpack_from(">ii", d, tkhd[1] - 8 - 36)
        # FFmpeg's av_display_rotation_get: -atan2(b, a), in degrees, counter-clockwise.
        rotation = int(round(-math.degrees(math.atan2(b, a)))) % 360
    return Mp4Track(
        timescale=timescale,
        pts=tuple(p for p, _ in samples),
        key_pts=frozenset(p for p, k in samples if k),
        end_pts=end_pts,
        width=width,
        height=height,
        rotation=rotation,
    )


def _table(d: bytes, box: tuple[int, int], fmt: str) -> list[tuple[int, ...]]:
    """Entries of a full box laid out as: version/flags, entry count, entries."""
    start, end = box
    (count,) = struct.unpack_from(">I", d, start + 4)
    size = struct.calcsize(fmt)
    count = min(count, (end - start - 8) // size)
    return [struct.unpack_from(fmt, d, start + 8 + i * size) for i in range(count)]


def _edit_shift(d: bytes, start: int, end: int) -> int:
    """media_time of the first non-empty edit (0 without an edit list)."""
    elst = _find(d, start, end, [b"edts", b"elst"])
    if elst is None:
        return 0
    version = d[elst[0]]
    fmt = ">Qq" if version == 1 else ">Ii"
    size = struct.calcsize(fmt) + 4  # + media_rate
    (count,) = struct.unpack_from(">I", d, elst[0] + 4)
    for i in range(count):
        off = elst[0] + 8 + i * size
        if off + size > elst[1]:
            break
        _, media_time = struct.unpack_from(fmt, d, off)
        if media_time != -1:
            return int(media_time)
    return 0
