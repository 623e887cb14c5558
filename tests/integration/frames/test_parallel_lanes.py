"""Parallel GOP decode returns exactly what the sequential path returns.

The same job runs twice on the same input, once with ``decode_threads=1`` (one lane) and once
with several (independent GOP ranges decoded at once, ``plan.partition_lanes``); every output
image's drawn frame index is read back and must match between the two runs and the frame a
player shows at the requested time. Local files and presigned S3 URLs (each lane its own Range
reader), for evenly spread, series, points with duplicates and sprite jobs. With the budget the
task gives a job (``cores.CoreShare``: the host's cores shared by the jobs running on it), a job
alone splits into lanes and one among as many jobs as cores does not, with the same frames.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path
from uuid import uuid4

import cv2
import numpy as np
import pytest

from app.core.errors import JobCanceled
from app.core.jobs import Manifest, SnapshotJob
from app.core.specs import (
    Average,
    FrameType,
    ObjectRef,
    OutputSize,
    OutputTarget,
    Series,
    SnapshotSpec,
    SpriteSpec,
    TimePoints,
    Timing,
)
from app.storage.objects import LocalObjectStore, ObjectStore, S3ObjectStore
from tests.integration.frames.conftest import Videos
from tests.media import VideoFacts, read_frame_index
from tests.servers import S3Server
from workers.frames.cores import CoreShare, HostJobs
from workers.pipeline import MediaLimits, run_snapshot

LIMITS = MediaLimits(max_frame_pixels=4096 * 4096, max_decoded_frames=100_000, deadline=None)
LANES = 3


@pytest.fixture(scope="module")
def long_video(videos: Videos) -> VideoFacts:
    """12 s at 25 fps, a key frame every 50 frames: 300 frames in 6 GOPs (B-frames on)."""
    return videos.get("gops", seconds=12, fps=25, width=320, height=240, gop=50)


@dataclass(frozen=True)
class Place:
    store: ObjectStore
    src: str  # holds v.mp4
    one: str  # outputs of the one-lane run
    many: str  # outputs of the parallel run


@pytest.fixture(params=["local", "s3"])
def place(request: pytest.FixtureRequest, tmp_path: Path, long_video: VideoFacts) -> Place:
    s: ObjectStore
    if request.param == "local":
        s = LocalObjectStore(tmp_path / "objects")
    else:
        srv: S3Server = request.getfixturevalue("s3_server")
        s = S3ObjectStore(srv.endpoint, srv.access_key, srv.secret_key, region=srv.region)
    suffix = uuid4().hex[:8]
    p = Place(s, f"in-{suffix}", f"one-{suffix}", f"many-{suffix}")
    for bucket in (p.src, p.one, p.many):
        s.make_bucket(bucket)
    s.put(p.src, "v.mp4", long_video.path.read_bytes(), "video/mp4")
    return p


def make_job(p: Place, out: str, timing: Timing, **kw: object) -> SnapshotJob:
    sprite = kw.pop("sprite", None)
    spec = SnapshotSpec(
        ObjectRef(p.src, "v.mp4"),
        timing,
        OutputTarget(out, "img/{job_id}/{index:5}.jpg"),
        size=OutputSize(width=96),
        sprite=SpriteSpec(OutputTarget(out, "sheets/{job_id}/{sheet:5}.png"), **sprite) if sprite else None,  # type: ignore[arg-type]
        **kw,  # type: ignore[arg-type]
    )
    return SnapshotJob(id="lanes", tenant="t", pipeline_id="p", spec=spec)


def drawn(store: ObjectStore, bucket: str, key: str) -> int:
    return read_frame_index(cv2.imdecode(np.frombuffer(store.get(bucket, key), np.uint8), cv2.IMREAD_COLOR))


def sheet_cells(store: ObjectStore, bucket: str, m: Manifest) -> list[int]:
    """The drawn index of every cell of every sheet, in the order of the JSON index."""
    assert m.index_key is not None
    index = json.loads(store.get(bucket, m.index_key))
    sheets = {
        s["number"]: cv2.imdecode(np.frombuffer(store.get(bucket, s["key"]), np.uint8), cv2.IMREAD_COLOR)
        for s in index["sheets"]
    }
    return [
        read_frame_index(sheets[c["sheet"]][c["y"] : c["y"] + c["h"], c["x"] : c["x"] + c["w"]]) for c in index["cells"]
    ]


def lane_count(m: Manifest) -> int:
    notes = [n for n in m.notes if n.startswith("decoded in ")]
    return int(notes[0].split()[2]) if notes else 1


def without_lane_notes(m: Manifest) -> list[str]:
    # The HTTP note counts bytes and requests, which differ with the number of readers.
    return [n for n in m.notes if not n.startswith(("decoded in ", "input read over HTTP"))]


CASES: dict[str, tuple[Timing, dict[str, object]]] = {
    "even": (Average(40), {}),
    "series": (Series(300, 0.9, 12), {}),
    # Late in each GOP, so that each lane decodes most of its GOPs (lanes beat frame threads).
    "points_with_duplicates": (TimePoints((11_900, 1_900, 1_900, 3_900, 7_900, 7_900, 9_999, 5_900)), {}),
    "keyframes": (Average(60), {"frame_type": FrameType.KEYFRAME}),
    "sprite": (Average(30), {"sprite": {"keep_cells": False, "columns": 5, "lines": 4}}),
    "sprite_and_cells": (Average(24), {"sprite": {"columns": 4, "lines": 4, "cell_sel_step": 2}}),
}


@pytest.mark.parametrize("case", list(CASES))
def test_parallel_lanes_return_the_sequential_frames(place: Place, long_video: VideoFacts, case: str) -> None:
    timing, kw = CASES[case]
    store = place.store
    keyframes = kw.get("frame_type") is FrameType.KEYFRAME
    sprite = kw.get("sprite")
    one = run_snapshot(make_job(place, place.one, timing, **dict(kw)), store, limits=LIMITS, decode_threads=1)
    progress: list[tuple[int, int]] = []
    many = run_snapshot(
        make_job(place, place.many, timing, **dict(kw)),
        store,
        limits=LIMITS,
        decode_threads=LANES,
        on_progress=lambda done, total: progress.append((done, total)),
    )
    assert lane_count(one) == 1
    # Key-frame jobs decode one frame per image: 60 frames here, one lane's worth.
    assert lane_count(many) == 1 if keyframes else 2 <= lane_count(many) <= LANES, many.notes
    # Same frames (pts), sizes, bytes and keys, in the same order; the same sheets.
    assert [replace(i, key="") for i in many.images] == [replace(i, key="") for i in one.images]
    assert [replace(s, key="") for s in many.sheets] == [replace(s, key="") for s in one.sheets]
    assert without_lane_notes(many) == without_lane_notes(one)
    assert progress == [(n, len(one.images)) for n in range(1, len(one.images) + 1)]
    assert store.list_keys(place.many) == store.list_keys(place.one)
    expected = [
        long_video.key_at(i.requested_ms) if keyframes else long_video.frame_at(i.requested_ms) for i in one.images
    ]
    if isinstance(sprite, dict) and not sprite.get("keep_cells", True):
        assert sheet_cells(store, place.many, many) == sheet_cells(store, place.one, one) == expected
        return
    got_one = [drawn(store, place.one, i.key) for i in one.images]
    got_many = [drawn(store, place.many, i.key) for i in many.images]
    assert got_many == got_one == expected
    if sprite:
        assert sheet_cells(store, place.many, many) == sheet_cells(store, place.one, one) == expected[::2]


def test_a_cancel_during_a_parallel_run_deletes_every_image(place: Place) -> None:
    done: list[int] = []
    with pytest.raises(JobCanceled):
        run_snapshot(
            make_job(place, place.many, Average(40)),
            place.store,
            limits=LIMITS,
            decode_threads=LANES,
            on_progress=lambda d, t: done.append(d),
            should_cancel=lambda: len(done) >= 3,
        )
    assert 3 <= len(done) < 40
    assert place.store.list_keys(place.many) == []


def test_the_hosts_share_splits_a_job_alone_and_not_one_among_as_many_jobs_as_cores(
    place: Place, long_video: VideoFacts, tmp_path: Path
) -> None:
    store = place.store
    crowded_bucket = place.many.replace("many-", "crowded-")
    store.make_bucket(crowded_bucket)
    share = CoreShare(HostJobs(tmp_path / "run" / "jobs"), cores=LANES)
    timing = Series(300, 0.9, 12)
    one = run_snapshot(make_job(place, place.one, timing), store, limits=LIMITS, decode_threads=1)
    with share.hold() as alone:
        many = run_snapshot(make_job(place, place.many, timing), store, limits=LIMITS, decode_threads=alone)
    others = [share.jobs.register() for _ in range(LANES - 1)]  # the host's other cores are busy
    try:
        with share.hold() as among:
            crowded = run_snapshot(make_job(place, crowded_bucket, timing), store, limits=LIMITS, decode_threads=among)
    finally:
        for other in others:
            other.release()
    assert (alone, among) == (LANES, 1)
    assert 2 <= lane_count(many) <= LANES and lane_count(crowded) == 1, (many.notes, crowded.notes)
    assert [replace(i, key="") for i in many.images] == [replace(i, key="") for i in one.images]
    assert [replace(i, key="") for i in crowded.images] == [replace(i, key="") for i in one.images]
    expected = [long_video.frame_at(i.requested_ms) for i in one.images]
    for bucket, m in ((place.one, one), (place.many, many), (crowded_bucket, crowded)):
        assert [drawn(store, bucket, i.key) for i in m.images] == expected
    assert share.jobs.count() == 0
