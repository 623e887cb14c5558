"""Sprites end to end: sheets, cells read back through the VTT's xywh fragments, keep-cells off."""

from __future__ import annotations

import json
import re
from pathlib import Path

import cv2
import numpy as np
import pytest

from app.core.jobs import SnapshotJob
from app.core.specs import Average, ObjectRef, OutputSize, OutputTarget, SnapshotSpec, SpriteSpec
from app.storage.objects import LocalObjectStore
from tests.integration.frames.conftest import Videos
from tests.media import read_frame_index
from workers.pipeline import MediaLimits, run_snapshot

LIMITS = MediaLimits(max_frame_pixels=4096 * 4096, max_decoded_frames=100_000, deadline=None)


@pytest.fixture
def store(tmp_path: Path, videos: Videos) -> LocalObjectStore:
    s = LocalObjectStore(tmp_path / "objects")
    for b in ("in", "out", "sprites"):
        s.make_bucket(b)
    s.put("in", "v.mp4", videos.cfr.path.read_bytes(), "video/mp4")
    return s


def decode(data: bytes) -> np.ndarray:
    return cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)


def sprite_job(sprite: SpriteSpec, count: int) -> SnapshotJob:
    spec = SnapshotSpec(
        ObjectRef("in", "v.mp4"),
        Average(count),
        OutputTarget("out", "img/{job_id}/{index:5}.jpg"),
        size=OutputSize(width=96),
        quality=85,
        sprite=sprite,
    )
    return SnapshotJob(id="sp1", tenant="t", pipeline_id="p", spec=spec)


def test_sheets_vtt_and_index_point_at_the_right_frames(store: LocalObjectStore, videos: Videos) -> None:
    sprite = SpriteSpec(
        target=OutputTarget("sprites", "{job_id}/sheet-{sheet:5}.jpg"),
        lines=2,
        columns=3,
        padding=3,
        margin=5,
        color="#00ff00",
        cell_sel_step=2,
    )
    m = run_snapshot(sprite_job(sprite, 15), store, limits=LIMITS)
    facts = videos.cfr
    cells = [i for i in m.images if (i.index - 1) % 2 == 0]  # 8 cells: 1, 3, ..., 15
    assert [s.key for s in m.sheets] == ["sp1/sheet-00001.jpg", "sp1/sheet-00002.jpg"]
    assert [(s.width, s.height, s.cells) for s in m.sheets] == [
        (2 * 5 + 3 * 96 + 2 * 3, 2 * 5 + 2 * 72 + 3, 6),
        (2 * 5 + 3 * 96 + 2 * 3, 2 * 5 + 72, 2),
    ]
    assert m.storyboard_key == "sp1/sheet.vtt" and m.index_key == "sp1/sheet.json"
    vtt = store.get("sprites", m.storyboard_key).decode()
    cues = re.findall(r"(\S+) --> (\S+)\n(\S+)#xywh=(\d+),(\d+),(\d+),(\d+)", vtt)
    assert len(cues) == len(cells) == 8
    sheets = {s.key: decode(store.get("sprites", s.key)) for s in m.sheets}
    for cue, img in zip(cues, cells, strict=True):
        _, _, name, *xywh = cue
        x, y, w, h = map(int, xywh)
        crop = sheets[f"sp1/{name}"][y : y + h, x : x + w]
        assert read_frame_index(crop) == facts.frame_at(img.requested_ms)
    sheet = sheets["sp1/sheet-00001.jpg"]
    b, g, r = (int(v) for v in sheet[1, 1])
    assert g > 200 and r < 60 and b < 60  # margin colour
    index = json.loads(store.get("sprites", m.index_key))
    assert [c["image"] for c in index["cells"]] == [c.index for c in cells]
    assert all(i.uploaded for i in m.images) and len(store.list_keys("out")) == 15


def test_keep_cells_off_uploads_only_sheets(store: LocalObjectStore, videos: Videos) -> None:
    sprite = SpriteSpec(target=OutputTarget("sprites", "{job_id}/{sheet:5}.png"), keep_cells=False, cell_width=32)
    m = run_snapshot(sprite_job(sprite, 12), store, limits=LIMITS)
    assert store.list_keys("out") == []
    assert not any(i.uploaded for i in m.images)
    assert [(s.width, s.height, s.cells) for s in m.sheets] == [(320, 48, 12)]  # 10 columns, 2 rows of 32x24
    data = store.get("sprites", "sp1/00001.png")
    assert data.startswith(b"\x89PNG")  # the sheet's format follows its key
    sheet = decode(data)
    assert read_frame_index(sheet[24:48, 32:64]) == videos.cfr.frame_at(m.images[11].requested_ms)
    assert store.list_keys("sprites") == ["sp1/00001.png", "sp1/storyboard.json", "sp1/storyboard.vtt"]
