"""Hostile and failing inputs: each fails with its own code, and the process carries on.

After every failure a normal job runs in the same process and must succeed, so a failure that
leaves decoder state, file handles or threads behind shows up here.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import pytest

from app.core.errors import FailureCode, JobFailure
from app.core.jobs import SnapshotJob
from app.core.specs import (
    Average,
    ObjectRef,
    OutputSize,
    OutputTarget,
    Series,
    SingleTime,
    SnapshotSpec,
    Timing,
)
from app.storage.objects import LocalObjectStore
from tests.integration.frames.conftest import Videos
from tests.media import make_not_a_video, make_truncated_video, make_video, read_frame_index
from workers.pipeline import MediaLimits, run_snapshot

OK = MediaLimits(max_frame_pixels=4096 * 4096, max_decoded_frames=100_000, deadline=None)


def make_job(key: str, timing: Timing = SingleTime(1000)) -> SnapshotJob:
    spec = SnapshotSpec(
        ObjectRef("in", key), timing, OutputTarget("out", "o/{job_id}-{index:5}.jpg"), size=OutputSize(width=64)
    )
    return SnapshotJob(id=key.replace("/", "_"), tenant="t", pipeline_id="p", spec=spec)


class SlowLocator(LocalObjectStore):
    """Can take longer to locate the input than a job's deadline allows (``delay`` seconds, once)."""

    delay = 0.0

    def media_locator(self, bucket: str, key: str) -> str:
        time.sleep(self.delay)
        self.delay = 0.0
        return super().media_locator(bucket, key)


def _corrupt_middle(src: Path, dst: Path) -> Path:
    data = bytearray(src.read_bytes())
    rng = np.random.default_rng(7)
    start = len(data) // 3
    data[start : start + len(data) // 3] = rng.integers(0, 256, len(data) // 3, dtype=np.uint8).tobytes()
    dst.write_bytes(bytes(data))
    return dst


@pytest.fixture
def store(tmp_path: Path, videos: Videos) -> LocalObjectStore:
    s = SlowLocator(tmp_path / "objects")
    s.make_bucket("in")
    s.make_bucket("out")
    s.put("in", "good.mp4", videos.cfr.path.read_bytes(), "video/mp4")
    return s


def run_good(store: LocalObjectStore) -> None:
    m = run_snapshot(make_job("good.mp4"), store, limits=OK)
    img = cv2.imdecode(np.frombuffer(store.get("out", m.images[0].key), np.uint8), cv2.IMREAD_COLOR)
    assert read_frame_index(img) == 25


Case = Callable[[Path, LocalObjectStore, Videos], tuple[SnapshotJob, MediaLimits]]


def not_a_video(tmp: Path, store: LocalObjectStore, v: Videos) -> tuple[SnapshotJob, MediaLimits]:
    store.put("in", "text.mp4", make_not_a_video(tmp / "t.mp4").read_bytes(), "video/mp4")
    return make_job("text.mp4"), OK


def truncated(tmp: Path, store: LocalObjectStore, v: Videos) -> tuple[SnapshotJob, MediaLimits]:
    store.put("in", "cut.mp4", make_truncated_video(tmp / "c.mp4", v.cfr.path).read_bytes(), "video/mp4")
    return make_job("cut.mp4"), OK


def empty(tmp: Path, store: LocalObjectStore, v: Videos) -> tuple[SnapshotJob, MediaLimits]:
    store.put("in", "empty.mp4", b"", "video/mp4")
    return make_job("empty.mp4"), OK


def missing(tmp: Path, store: LocalObjectStore, v: Videos) -> tuple[SnapshotJob, MediaLimits]:
    return make_job("nope.mp4"), OK


def too_many_pixels(tmp: Path, store: LocalObjectStore, v: Videos) -> tuple[SnapshotJob, MediaLimits]:
    big = make_video(tmp / "big.mp4", seconds=0.4, width=1920, height=1088, gop=5)
    store.put("in", "big.mp4", big.path.read_bytes(), "video/mp4")
    return make_job("big.mp4", SingleTime(0)), MediaLimits(1920 * 1080, 100_000, None)


def too_many_frames_planned(tmp: Path, store: LocalObjectStore, v: Videos) -> tuple[SnapshotJob, MediaLimits]:
    # frame 99 needs 25 frames from key 75; 20 allowed
    return make_job("good.mp4", SingleTime(3990)), MediaLimits(4096 * 4096, 20, None)


def too_many_frames_total(tmp: Path, store: LocalObjectStore, v: Videos) -> tuple[SnapshotJob, MediaLimits]:
    return make_job("good.mp4", Series(0, 0.2, 20)), MediaLimits(4096 * 4096, 50, None)


def deadline_before_start(tmp: Path, store: LocalObjectStore, v: Videos) -> tuple[SnapshotJob, MediaLimits]:
    return make_job("good.mp4"), MediaLimits(4096 * 4096, 100_000, time.monotonic() - 1)


def deadline_while_decoding(tmp: Path, store: LocalObjectStore, v: Videos) -> tuple[SnapshotJob, MediaLimits]:
    # the slow locator uses 0.3 s of a 0.1 s budget: the first decoded frame is past the deadline
    assert isinstance(store, SlowLocator)
    store.delay = 0.3
    return make_job("good.mp4", Average(5)), MediaLimits(4096 * 4096, 100_000, time.monotonic() + 0.1)


CASES: dict[str, tuple[Case, FailureCode]] = {
    "not-a-video": (not_a_video, FailureCode.INPUT_UNREADABLE),
    "truncated": (truncated, FailureCode.INPUT_UNREADABLE),
    "empty": (empty, FailureCode.INPUT_UNREADABLE),
    "missing": (missing, FailureCode.INPUT_NOT_FOUND),
    "pixels": (too_many_pixels, FailureCode.MEDIA_LIMIT_EXCEEDED),
    "frames-planned": (too_many_frames_planned, FailureCode.MEDIA_LIMIT_EXCEEDED),
    "frames-total": (too_many_frames_total, FailureCode.MEDIA_LIMIT_EXCEEDED),
    "deadline-before": (deadline_before_start, FailureCode.SNAPSHOT_TIMEOUT),
    "deadline-decoding": (deadline_while_decoding, FailureCode.SNAPSHOT_TIMEOUT),
}


@pytest.mark.parametrize("decoder", ["pyav", "opencv"])
@pytest.mark.parametrize("name", list(CASES))
def test_failure_code_then_next_job_succeeds(
    tmp_path: Path, store: LocalObjectStore, videos: Videos, name: str, decoder: str
) -> None:
    case, code = CASES[name]
    j, limits = case(tmp_path, store, videos)
    with pytest.raises(JobFailure) as err:
        run_snapshot(j, store, limits=limits, decoder=decoder)
    assert err.value.code is code, err.value.message
    assert err.value.transient is False
    run_good(store)


def test_corrupt_middle_fails_cleanly_or_succeeds(tmp_path: Path, store: LocalObjectStore, videos: Videos) -> None:
    bad = _corrupt_middle(videos.cfr.path, tmp_path / "bad.mp4")
    store.put("in", "bad.mp4", bad.read_bytes(), "video/mp4")
    try:
        m = run_snapshot(make_job("bad.mp4", Average(6)), store, limits=OK)
    except JobFailure as exc:
        assert exc.code is FailureCode.INPUT_UNREADABLE
    else:
        assert len(m.images) == 6
    run_good(store)
