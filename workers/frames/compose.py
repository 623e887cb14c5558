"""Sprite sheets (Alibaba ``TileOut`` semantics), a WebVTT storyboard and a JSON index.

Geometry (pixels, 0-based; sheet and cell numbers are 1-based like ``{TileCount}``/``{Count}``):

* cell size: ``cell_width``/``cell_height``; both None = the snapshot size; one given = the
  other follows the snapshot's aspect ratio (like output sizing); cells are resized to it.
* a sheet is ``margin`` on every side, cells ``padding`` apart:
  width = 2*margin + cols*cell_w + (cols-1)*padding, likewise height with lines;
  cell k (0-based within its sheet) sits at row k // cols, column k % cols,
  x = margin + col*(cell_w+padding), y = margin + row*(cell_h+padding).
* a sheet holds at most lines x columns cells; when that grid would pass max_sheet_width/height,
  columns (then lines) shrink to the most that fit. Cells beyond a sheet's capacity start the
  next sheet. Every sheet keeps the full column count; the last one is only as tall as the rows
  it uses.
* ``cell_sel_step`` n: snapshots 1, 1+n, 1+2n, ... become cells.
* ``color``: a keyword, ``#rrggbb``, or ``random`` = one colour per job derived from the job id
  (a re-run produces identical sheets).
"""

from __future__ import annotations

import hashlib
import json
import posixpath
from dataclasses import dataclass

import numpy as np

from app.core.errors import FailureCode, JobFailure
from app.core.specs import ImageFormat, SpriteSpec, parse_color
from workers.frames.encode import resize


@dataclass(frozen=True)
class CellPlace:
    sheet: int  # 1-based
    x: int
    y: int


@dataclass(frozen=True)
class SheetGeometry:
    number: int  # 1-based, the {TileCount} value
    width: int
    height: int
    cells: int


@dataclass(frozen=True)
class Layout:
    cell_width: int
    cell_height: int
    columns: int
    lines: int
    places: tuple[CellPlace, ...]
    sheets: tuple[SheetGeometry, ...]


def cell_size(spec: SpriteSpec, snap_w: int, snap_h: int) -> tuple[int, int]:
    if spec.cell_width is None and spec.cell_height is None:
        return snap_w, snap_h
    if spec.cell_width is not None and spec.cell_height is not None:
        return spec.cell_width, spec.cell_height
    w, h = spec.cell_width, spec.cell_height
    if w is not None:
        return w, max(1, round(w * snap_h / snap_w))
    assert h is not None
    return max(1, round(h * snap_w / snap_h)), h


def selected_cells(snapshot_count: int, step: int) -> list[int]:
    """0-based snapshot positions that become cells."""
    return list(range(0, snapshot_count, step))


def layout(spec: SpriteSpec, n_cells: int, cell_w: int, cell_h: int) -> Layout:
    """Pure geometry for ``n_cells`` cells of cell_w x cell_h."""
    pad, margin = spec.padding, spec.margin

    def fits(cell: int, limit: int) -> int:
        return max(0, (limit - 2 * margin + pad) // (cell + pad))

    cols = min(spec.columns, fits(cell_w, spec.max_sheet_width))
    lines = min(spec.lines, fits(cell_h, spec.max_sheet_height))
    if cols < 1 or lines < 1:
        raise JobFailure(
            FailureCode.MEDIA_LIMIT_EXCEEDED,
            f"a {cell_w}x{cell_h} cell with margin {margin} does not fit a "
            f"{spec.max_sheet_width}x{spec.max_sheet_height} sprite sheet",
        )
    per_sheet = cols * lines
    places: list[CellPlace] = []
    sheets: list[SheetGeometry] = []
    width = 2 * margin + cols * cell_w + (cols - 1) * pad
    for start in range(0, n_cells, per_sheet):
        count = min(per_sheet, n_cells - start)
        rows = -(-count // cols)
        number = len(sheets) + 1
        sheets.append(SheetGeometry(number, width, 2 * margin + rows * cell_h + (rows - 1) * pad, count))
        for k in range(count):
            r, c = divmod(k, cols)
            places.append(CellPlace(number, margin + c * (cell_w + pad), margin + r * (cell_h + pad)))
    return Layout(cell_w, cell_h, cols, lines, tuple(places), tuple(sheets))


def background_bgr(color: str, job_id: str) -> tuple[int, int, int]:
    parsed = parse_color(color)
    if parsed == "random":
        digest = hashlib.sha256(job_id.encode()).digest()
        return digest[0], digest[1], digest[2]
    if not isinstance(parsed, tuple):
        raise JobFailure(FailureCode.INTERNAL_ERROR, f"sprite colour {color!r} was not validated")
    r, g, b = parsed
    return b, g, r


def render_sheets(lay: Layout, cells: list[np.ndarray], bgr: tuple[int, int, int]) -> list[np.ndarray]:
    """Paint cells (already BGR; resized here to the cell size) onto their sheets."""
    canvases = [np.full((s.height, s.width, 3), bgr, np.uint8) for s in lay.sheets]
    for place, image in zip(lay.places, cells, strict=True):
        cell = resize(image, lay.cell_width, lay.cell_height)
        canvases[place.sheet - 1][place.y : place.y + lay.cell_height, place.x : place.x + lay.cell_width] = cell
    return canvases


_EXTENSIONS = {"jpg": ImageFormat.JPEG, "jpeg": ImageFormat.JPEG, "png": ImageFormat.PNG, "webp": ImageFormat.WEBP}


def sheet_format(key: str, default: ImageFormat) -> ImageFormat:
    """A sheet's format follows its key's extension (``.png`` sheets are PNG), else the job's."""
    ext = key.rsplit(".", 1)[-1].lower() if "." in posixpath.basename(key) else ""
    return _EXTENSIONS.get(ext, default)


def _vtt_time(ms: float) -> str:
    total = max(0, int(round(ms)))
    h, rest = divmod(total, 3_600_000)
    m, rest = divmod(rest, 60_000)
    s, milli = divmod(rest, 1000)
    return f"{h:02d}:{m:02d}:{s:02d}.{milli:03d}"


@dataclass(frozen=True)
class Cue:
    start_ms: float
    end_ms: float
    sheet_key: str
    x: int
    y: int
    w: int
    h: int


def storyboard_cues(lay: Layout, cell_times_ms: list[float], keys: list[str], duration_ms: float) -> list[Cue]:
    """Cell i covers [its time, the next cell's time); the first starts at 0 and the last ends at
    the duration, so every instant of the video maps to exactly one cell."""
    cues: list[Cue] = []
    for i, place in enumerate(lay.places):
        start = 0.0 if i == 0 else cell_times_ms[i]
        end = cell_times_ms[i + 1] if i + 1 < len(lay.places) else max(duration_ms, cell_times_ms[i])
        cues.append(Cue(start, end, keys[place.sheet - 1], place.x, place.y, lay.cell_width, lay.cell_height))
    return cues


def render_vtt(cues: list[Cue], vtt_key: str) -> str:
    """Cue payloads are sheet URLs relative to the VTT (they sit in the same folder)."""
    base = posixpath.dirname(vtt_key)
    lines = ["WEBVTT", ""]
    for cue in cues:
        rel = posixpath.relpath(cue.sheet_key, base) if base else cue.sheet_key
        lines.append(f"{_vtt_time(cue.start_ms)} --> {_vtt_time(cue.end_ms)}")
        lines.append(f"{rel}#xywh={cue.x},{cue.y},{cue.w},{cue.h}")
        lines.append("")
    return "\n".join(lines)


def render_index(
    lay: Layout, cues: list[Cue], numbers: list[int], sheets: list[tuple[str, int]], duration_ms: float
) -> str:
    """JSON twin of the VTT, with image numbers and sheet sizes; ``sheets`` = (key, bytes)."""
    doc = {
        "version": 1,
        "duration_ms": duration_ms,
        "cell_width": lay.cell_width,
        "cell_height": lay.cell_height,
        "columns": lay.columns,
        "lines": lay.lines,
        "sheets": [
            {"number": g.number, "key": k, "width": g.width, "height": g.height, "cells": g.cells, "bytes": b}
            for g, (k, b) in zip(lay.sheets, sheets, strict=True)
        ],
        "cells": [
            {
                "image": n,
                "sheet": p.sheet,
                "x": c.x,
                "y": c.y,
                "w": c.w,
                "h": c.h,
                "start_ms": c.start_ms,
                "end_ms": c.end_ms,
            }
            for n, p, c in zip(numbers, lay.places, cues, strict=True)
        ],
    }
    return json.dumps(doc, indent=1)
