"""Sprite geometry, colours, multi-sheet splits, keys, and the WebVTT storyboard."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from app.core import outputs
from app.core.errors import FailureCode, JobFailure
from app.core.specs import ImageFormat, OutputTarget, SpriteSpec
from workers.frames import compose


def sprite(**kw: object) -> SpriteSpec:
    return SpriteSpec(target=OutputTarget("out", "s/{job_id}/sheet-{sheet:5}.jpg"), **kw)  # type: ignore[arg-type]


def test_default_grid_is_10x10_of_snapshot_size() -> None:
    lay = compose.layout(sprite(), 100, 64, 36)
    assert (lay.columns, lay.lines) == (10, 10)
    assert [(g.width, g.height, g.cells) for g in lay.sheets] == [(640, 360, 100)]
    assert lay.places[0] == compose.CellPlace(1, 0, 0)
    assert lay.places[11] == compose.CellPlace(1, 64, 36)
    assert lay.places[99] == compose.CellPlace(1, 576, 324)


def test_padding_and_margin_positions_and_sheet_size() -> None:
    lay = compose.layout(sprite(lines=2, columns=3, padding=4, margin=10), 6, 20, 10)
    g = lay.sheets[0]
    assert (g.width, g.height) == (2 * 10 + 3 * 20 + 2 * 4, 2 * 10 + 2 * 10 + 4)
    xs = [(p.x, p.y) for p in lay.places]
    assert xs == [(10, 10), (34, 10), (58, 10), (10, 24), (34, 24), (58, 24)]


def test_split_into_sheets_when_cells_exceed_grid() -> None:
    lay = compose.layout(sprite(lines=2, columns=2), 9, 10, 10)
    assert [(g.number, g.cells, g.width, g.height) for g in lay.sheets] == [
        (1, 4, 20, 20),
        (2, 4, 20, 20),
        (3, 1, 20, 10),  # last sheet only as tall as its rows
    ]
    assert [p.sheet for p in lay.places] == [1, 1, 1, 1, 2, 2, 2, 2, 3]
    assert lay.places[4] == compose.CellPlace(2, 0, 0)


def test_grid_shrinks_to_max_sheet_size() -> None:
    lay = compose.layout(sprite(max_sheet_width=100, max_sheet_height=64), 20, 30, 30)
    # 3 columns of 30 fit in 100, 2 lines in 64
    assert (lay.columns, lay.lines) == (3, 2)
    assert all(g.width <= 100 and g.height <= 64 for g in lay.sheets)
    assert len(lay.sheets) == 4


def test_cell_that_cannot_fit_fails() -> None:
    with pytest.raises(JobFailure) as err:
        compose.layout(sprite(margin=40, max_sheet_width=64), 1, 30, 30)
    assert err.value.code is FailureCode.MEDIA_LIMIT_EXCEEDED


def test_cell_size_rules() -> None:
    assert compose.cell_size(sprite(), 64, 48) == (64, 48)
    assert compose.cell_size(sprite(cell_width=32), 64, 48) == (32, 24)
    assert compose.cell_size(sprite(cell_height=12), 64, 48) == (16, 12)
    assert compose.cell_size(sprite(cell_width=10, cell_height=50), 64, 48) == (10, 50)


def test_cell_sel_step() -> None:
    assert compose.selected_cells(10, 3) == [0, 3, 6, 9]
    assert compose.selected_cells(4, 1) == [0, 1, 2, 3]


def test_render_places_cells_and_background_colour() -> None:
    lay = compose.layout(sprite(lines=1, columns=2, padding=2, margin=1, color="#102030"), 2, 4, 4)
    cells = [np.full((8, 8, 3), 255, np.uint8), np.zeros((4, 4, 3), np.uint8)]
    (sheet,) = compose.render_sheets(lay, cells, compose.background_bgr("#102030", "j"))
    assert sheet.shape == (6, 2 + 8 + 2, 3)
    assert tuple(sheet[0, 0]) == (0x30, 0x20, 0x10)  # margin, BGR
    assert tuple(sheet[1, 5]) == (0x30, 0x20, 0x10)  # padding column
    assert sheet[1:5, 1:5].min() == 255  # first cell, resized to 4x4
    assert sheet[1:5, 7:11].max() == 0


def test_random_colour_is_per_job_and_stable() -> None:
    a = compose.background_bgr("random", "job-a")
    assert a == compose.background_bgr("random", "job-a")
    assert a != compose.background_bgr("random", "job-b")
    assert compose.background_bgr("red", "x") == (0, 0, 255)


def test_sheet_keys() -> None:
    assert outputs.sheet_key("s/{job_id}/t-{sheet:5}.jpg", "J", 2, 3) == "s/J/t-00002.jpg"
    assert outputs.sheet_key("s/{job_id}.jpg", "J", 1, 1) == "s/J.jpg"
    assert outputs.sheet_key("s/{job_id}.jpg", "J", 2, 3) == "s/J-00002.jpg"
    assert outputs.storyboard_keys("s/{job_id}/t-{sheet:5}.jpg", "J") == ("s/J/t.vtt", "s/J/t.json")
    assert outputs.storyboard_keys("s/{job_id}/{sheet:5}.jpg", "J") == ("s/J/storyboard.vtt", "s/J/storyboard.json")


def _parse_vtt(text: str) -> list[tuple[str, str, str, tuple[int, ...]]]:
    cues = re.findall(r"(\S+) --> (\S+)\n(\S+)#xywh=(\d+),(\d+),(\d+),(\d+)", text)
    return [(a, b, c, tuple(int(v) for v in rest)) for a, b, c, *rest in cues]


def test_vtt_cues_point_at_the_right_cells() -> None:
    lay = compose.layout(sprite(lines=2, columns=2, padding=1, margin=2), 5, 16, 9)
    keys = [outputs.sheet_key("s/J/t-{sheet:5}.jpg", "J", g.number, 2) for g in lay.sheets]
    times = [500.0, 1500.0, 2500.0, 3500.0, 4500.0]
    cues = compose.storyboard_cues(lay, times, keys, 5000.0)
    text = compose.render_vtt(cues, "s/J/t.vtt")
    assert text.startswith("WEBVTT\n")
    parsed = _parse_vtt(text)
    assert parsed[0] == ("00:00:00.000", "00:00:01.500", "t-00001.jpg", (2, 2, 16, 9))
    assert parsed[3] == ("00:00:03.500", "00:00:04.500", "t-00001.jpg", (19, 12, 16, 9))
    assert parsed[4] == ("00:00:04.500", "00:00:05.000", "t-00002.jpg", (2, 2, 16, 9))
    index = json.loads(compose.render_index(lay, cues, [1, 3, 5, 7, 9], [(k, 10) for k in keys], 5000.0))
    assert [c["image"] for c in index["cells"]] == [1, 3, 5, 7, 9]
    assert index["cells"][3] == {
        "image": 7,
        "sheet": 1,
        "x": 19,
        "y": 12,
        "w": 16,
        "h": 9,
        "start_ms": 3500.0,
        "end_ms": 4500.0,
    }
    assert [s["key"] for s in index["sheets"]] == keys


def test_vtt_time_format_hours() -> None:
    assert compose._vtt_time(3_723_004.4) == "01:02:03.004"


def test_sheet_format_follows_key() -> None:
    assert compose.sheet_format("a/b.PNG", ImageFormat.JPEG) is ImageFormat.PNG
    assert compose.sheet_format("a/b.webp", ImageFormat.JPEG) is ImageFormat.WEBP
    assert compose.sheet_format("a.b/c", ImageFormat.PNG) is ImageFormat.PNG
