"""run_snapshot's output options: keys named by the requested second (``{time_s}``), the closing
frame of an interval series, and the tar archive of every image (``SnapshotSpec.archive``).

Which frame an image holds is read back from the index the test video draws into each frame.
"""

from __future__ import annotations

import io
import tarfile
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pytest

from app.core.errors import JobCanceled
from app.core.jobs import SnapshotJob
from app.core.specs import ArchiveSpec, ObjectRef, OutputTarget, Series, SnapshotSpec, TimePoints
from app.storage.objects import LocalObjectStore
from tests.integration.frames.conftest import Videos
from tests.media import read_frame_index
from workers.pipeline import MediaLimits, run_snapshot

LIMITS = MediaLimits(max_frame_pixels=4096 * 4096, max_decoded_frames=100_000, deadline=None)


@pytest.fixture
def store(tmp_path: Path, videos: Videos) -> LocalObjectStore:
    s = LocalObjectStore(tmp_path / "objects")
    s.make_bucket("in")
    s.make_bucket("out")
    s.put("in", "v.mp4", videos.cfr.path.read_bytes(), "video/mp4")
    return s


def job(spec: SnapshotSpec, job_id: str = "j1") -> SnapshotJob:
    return SnapshotJob(id=job_id, tenant="t", pipeline_id="default", spec=spec)


def drawn(data: bytes) -> int:
    return read_frame_index(cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR))


SERIES = SnapshotSpec(
    input=ObjectRef("in", "v.mp4"),
    timing=Series(start_ms=0, interval_s=1.5, count=10_000, closing_frame=True),
    output=OutputTarget("out", "o/{job_id}/snap_{time_s}.jpg"),
)


def test_keys_carry_the_requested_second_and_the_series_closes_on_the_last_frame(
    store: LocalObjectStore, videos: Videos
) -> None:
    m = run_snapshot(job(SERIES), store, limits=LIMITS)
    v = videos.cfr  # 4 s at 25 fps: 0, 1.5, 3 s, then the last frame at the 4 s end
    assert [i.key for i in m.images] == ["o/j1/snap_0.jpg", "o/j1/snap_1.jpg", "o/j1/snap_3.jpg", "o/j1/snap_4.jpg"]
    assert [drawn(store.get("out", i.key)) for i in m.images] == [
        v.frame_at(0),
        v.frame_at(1500),
        v.frame_at(3000),
        v.frame_count - 1,
    ]
    assert m.archive_key is None


def test_archive_only_packs_every_image_and_uploads_no_single_image(store: LocalObjectStore, videos: Videos) -> None:
    spec = replace(
        SERIES,
        timing=TimePoints((2000.0, 500.0)),
        archive=ArchiveSpec(OutputTarget("out", "o/{job_id}/pack.tar")),
    )
    m = run_snapshot(job(spec), store, limits=LIMITS)
    assert m.archive_key == "o/j1/pack.tar"
    assert store.list_keys("out") == ["o/j1/pack.tar"]
    assert [(i.key, i.uploaded) for i in m.images] == [("o/j1/snap_0.jpg", False), ("o/j1/snap_2.jpg", False)]
    with tarfile.open(fileobj=io.BytesIO(store.get("out", "o/j1/pack.tar"))) as tar:
        members = tar.getmembers()
        assert [t.name for t in members] == ["snap_0.jpg", "snap_2.jpg"]
        contents = [tar.extractfile(t).read() for t in members]  # type: ignore[union-attr]
    assert [drawn(c) for c in contents] == [videos.cfr.frame_at(500), videos.cfr.frame_at(2000)]
    assert [len(c) for c in contents] == [i.bytes for i in m.images]


def test_archive_beside_the_images_when_they_are_kept(store: LocalObjectStore) -> None:
    spec = replace(
        SERIES, timing=TimePoints((1000.0,)), archive=ArchiveSpec(OutputTarget("out", "t/{job_id}.tar"), True)
    )
    m = run_snapshot(job(spec), store, limits=LIMITS)
    assert store.list_keys("out") == ["o/j1/snap_1.jpg", "t/j1.tar"]
    assert m.images[0].uploaded
    with tarfile.open(fileobj=io.BytesIO(store.get("out", "t/j1.tar"))) as tar:
        assert tar.extractfile("snap_1.jpg").read() == store.get("out", "o/j1/snap_1.jpg")  # type: ignore[union-attr]


def test_cancel_before_the_archive_leaves_nothing(store: LocalObjectStore) -> None:
    spec = replace(SERIES, archive=ArchiveSpec(OutputTarget("out", "o/{job_id}/pack.tar")))
    done: list[int] = []
    with pytest.raises(JobCanceled):
        run_snapshot(
            job(spec),
            store,
            limits=LIMITS,
            on_progress=lambda d, t: done.append(d),
            should_cancel=lambda: len(done) >= 4,  # every image done: the archive is next
        )
    assert store.list_keys("out") == []
