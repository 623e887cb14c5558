"""run_snapshot end to end on generated videos with a LocalObjectStore.

Every assertion about *which* frame was captured reads the frame index drawn into the video
back out of the uploaded image (JPEG, usually downscaled).
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import cv2
import numpy as np
import pytest

from app.core.errors import FailureCode, JobCanceled, JobFailure
from app.core.jobs import Manifest, SnapshotJob
from app.core.specs import (
    Average,
    BlackFrameSpec,
    FrameType,
    ImageFormat,
    ObjectRef,
    OutputSize,
    OutputTarget,
    Series,
    SingleTime,
    SnapshotSpec,
    TimePoints,
    Timing,
)
from app.storage.objects import LocalObjectStore
from tests.integration.frames.conftest import Videos
from tests.media import VideoFacts, read_frame_index
from workers.pipeline import MediaLimits, MemoryOutputLog, run_snapshot

LIMITS = MediaLimits(max_frame_pixels=4096 * 4096, max_decoded_frames=100_000, deadline=None)


@pytest.fixture
def store(tmp_path: Path) -> LocalObjectStore:
    s = LocalObjectStore(tmp_path / "objects")
    s.make_bucket("in")
    s.make_bucket("out")
    return s


def put_video(store: LocalObjectStore, facts: VideoFacts, key: str = "v.mp4") -> str:
    store.put("in", key, facts.path.read_bytes(), "video/mp4")
    return key


def job(timing: Timing, *, key: str = "v.mp4", job_id: str = "job1", **kw: object) -> SnapshotJob:
    spec = SnapshotSpec(
        input=ObjectRef("in", key),
        timing=timing,
        output=OutputTarget("out", "snaps/{job_id}/{index:5}.jpg"),
        **kw,  # type: ignore[arg-type]
    )
    return SnapshotJob(id=job_id, tenant="t", pipeline_id="default", spec=spec)


def image(store: LocalObjectStore, key: str) -> np.ndarray:
    return cv2.imdecode(np.frombuffer(store.get("out", key), np.uint8), cv2.IMREAD_COLOR)


def captured(store: LocalObjectStore, m: Manifest) -> list[int]:
    return [read_frame_index(image(store, i.key)) for i in m.images]


EXACT_CASES = {
    "single-boundary": SingleTime(1000),
    "single-mid": SingleTime(1019.5),
    "single-just-before-boundary": SingleTime(999.9),
    "single-at-end": SingleTime(3980),
    "series": Series(start_ms=130, interval_s=0.37, count=12),
    "average": Average(count=7),
    "points": TimePoints((3000, 20, 20, 0, 2222.2, 1500)),
}


@pytest.mark.parametrize("decoder", ["pyav", "opencv"])
@pytest.mark.parametrize("kind", ["cfr", "vfr"])
@pytest.mark.parametrize("case", list(EXACT_CASES))
def test_exact_mode_captures_the_frame_shown_at_t(
    store: LocalObjectStore, videos: Videos, kind: str, case: str, decoder: str
) -> None:
    facts = getattr(videos, kind)
    put_video(store, facts)
    timing = EXACT_CASES[case]
    m = run_snapshot(job(timing, size=OutputSize(width=96), quality=60), store, limits=LIMITS, decoder=decoder)
    expected = [facts.frame_at(i.requested_ms) for i in m.images]
    assert captured(store, m) == expected
    assert [i.actual_ms for i in m.images] == [facts.pts_ms[f] for f in expected]
    assert m.decoder == decoder
    assert [i.index for i in m.images] == list(range(1, len(m.images) + 1))


@pytest.mark.parametrize("kind", ["cfr", "vfr"])
def test_keyframe_mode_returns_key_frames_only(store: LocalObjectStore, videos: Videos, kind: str) -> None:
    facts = getattr(videos, kind)
    put_video(store, facts)
    m = run_snapshot(
        job(Average(count=10), frame_type=FrameType.KEYFRAME, size=OutputSize(width=64)), store, limits=LIMITS
    )
    got = captured(store, m)
    assert len(got) == 10
    assert set(got) <= set(facts.key_frames)
    assert got == [facts.key_at(i.requested_ms) for i in m.images]


def test_average_spreads_n_frames_at_planned_times(store: LocalObjectStore, videos: Videos) -> None:
    facts = videos.cfr
    put_video(store, facts)
    m = run_snapshot(job(Average(count=8, start_ms=1000, end_ms=3000)), store, limits=LIMITS)
    assert [i.requested_ms for i in m.images] == [1125 + 250 * k for k in range(8)]
    assert captured(store, m) == [facts.frame_at(1125 + 250 * k) for k in range(8)]


def test_series_past_the_end_keeps_frames_that_exist(store: LocalObjectStore, videos: Videos) -> None:
    facts = videos.cfr
    put_video(store, facts)
    m = run_snapshot(job(Series(start_ms=2000, interval_s=1, count=5)), store, limits=LIMITS)
    assert [i.requested_ms for i in m.images] == [2000, 3000, 4000]
    assert captured(store, m) == [50, 75, 99]


def test_single_exact_past_the_end_fails(store: LocalObjectStore, videos: Videos) -> None:
    put_video(store, videos.cfr)
    with pytest.raises(JobFailure) as err:
        run_snapshot(job(SingleTime(4100)), store, limits=LIMITS)
    assert err.value.code is FailureCode.TIME_OUT_OF_RANGE
    assert "4000 ms" in err.value.message


@pytest.mark.parametrize(
    ("size", "expected"),
    [
        (OutputSize(), (320, 240)),
        (OutputSize(width=80), (80, 60)),
        (OutputSize(height=30), (40, 30)),
        (OutputSize(width=100, height=20), (100, 20)),
        (OutputSize(width=1000), (320, 240)),
    ],
)
def test_sizes_and_aspect(store: LocalObjectStore, videos: Videos, size: OutputSize, expected: tuple[int, int]) -> None:
    put_video(store, videos.cfr)
    m = run_snapshot(job(SingleTime(2000), size=size), store, limits=LIMITS)
    img = image(store, m.images[0].key)
    assert (img.shape[1], img.shape[0]) == expected == (m.images[0].width, m.images[0].height)
    assert (m.source_width, m.source_height, m.source_duration_ms) == (320, 240, 4000.0)
    if expected[0] >= 64:
        assert read_frame_index(img) == 50


@pytest.mark.parametrize("fmt", [ImageFormat.PNG, ImageFormat.WEBP])
def test_other_formats(store: LocalObjectStore, videos: Videos, fmt: ImageFormat) -> None:
    put_video(store, videos.cfr)
    spec_job = job(SingleTime(400), format=fmt)
    m = run_snapshot(spec_job, store, limits=LIMITS)
    assert read_frame_index(image(store, m.images[0].key)) == 10


def test_keys_follow_template_and_rerun_overwrites(store: LocalObjectStore, videos: Videos) -> None:
    put_video(store, videos.cfr)
    j = job(Series(0, 1, 3), job_id="abc")
    m1 = run_snapshot(j, store, limits=LIMITS)
    m2 = run_snapshot(j, store, limits=LIMITS)
    keys = ["snaps/abc/00001.jpg", "snaps/abc/00002.jpg", "snaps/abc/00003.jpg"]
    assert [i.key for i in m1.images] == [i.key for i in m2.images] == keys
    assert store.list_keys("out") == keys
    assert all(i.bytes == len(store.get("out", i.key)) for i in m2.images)


def test_progress_is_reported_per_image(store: LocalObjectStore, videos: Videos) -> None:
    put_video(store, videos.cfr)
    seen: list[tuple[int, int]] = []
    run_snapshot(job(Series(0, 0.5, 4)), store, limits=LIMITS, on_progress=lambda d, t: seen.append((d, t)))
    assert seen == [(1, 4), (2, 4), (3, 4), (4, 4)]


def test_cancel_deletes_uploads(store: LocalObjectStore, videos: Videos) -> None:
    put_video(store, videos.cfr)
    done: list[int] = []
    with pytest.raises(JobCanceled):
        run_snapshot(
            job(Series(0, 0.5, 6)),
            store,
            limits=LIMITS,
            on_progress=lambda d, t: done.append(d),
            should_cancel=lambda: len(done) >= 2,
        )
    # Canceled once two images were done; an image already being encoded beside the decoder
    # (the upload helper thread) may still report before the poll sees it, never all six.
    assert done[:2] == [1, 2] and len(done) < 6
    assert store.list_keys("out") == []


def test_cancel_after_a_takeover_also_deletes_what_the_dead_attempt_wrote(
    store: LocalObjectStore, videos: Videos
) -> None:
    put_video(store, videos.cfr)
    the_job = job(Series(0, 0.5, 6))
    written = MemoryOutputLog()  # the job store's written set, shared by the job's attempts
    run_snapshot(the_job, store, limits=LIMITS, written=written)  # the first attempt wrote every image, then died
    assert len(store.list_keys("out")) == 6
    done: list[int] = []
    with pytest.raises(JobCanceled):
        run_snapshot(
            the_job,
            store,
            limits=LIMITS,
            on_progress=lambda d, t: done.append(d),
            should_cancel=lambda: len(done) >= 2,
            written=written,
        )
    assert store.list_keys("out") == [] and written.recorded() == []


def test_cancel_leaves_an_object_that_only_shares_a_planned_key(store: LocalObjectStore, videos: Videos) -> None:
    """Only objects the job wrote are cleaned up: one already sitting at its 6th key, which the
    job had not reached when it was canceled, stays byte for byte."""
    put_video(store, videos.cfr)
    the_job = job(Series(0, 0.5, 6))
    sixth = the_job.spec.output.key_for(the_job.id, 6)
    store.put("out", sixth, b"someone else's bytes", "image/jpeg")
    done: list[int] = []
    with pytest.raises(JobCanceled):
        run_snapshot(
            the_job, store, limits=LIMITS, on_progress=lambda d, t: done.append(d), should_cancel=lambda: len(done) >= 2
        )
    assert store.list_keys("out") == [sixth] and store.get("out", sixth) == b"someone else's bytes"


def test_black_frame_avoidance_moves_forward(store: LocalObjectStore, videos: Videos) -> None:
    facts = videos.black_lead
    put_video(store, facts)
    plain = run_snapshot(job(SingleTime(0)), store, limits=LIMITS)
    with pytest.raises(ValueError):
        read_frame_index(image(store, plain.images[0].key))  # solid black: no code
    m = run_snapshot(job(TimePoints((0, 100, 1000)), black_frames=BlackFrameSpec()), store, limits=LIMITS)
    assert captured(store, m) == [12, 12, 25]
    assert [i.substituted_ms for i in m.images] == [480.0, 480.0 - 80.0, None]
    assert [i.actual_ms for i in m.images] == [480.0, 480.0, 1000.0]


def test_black_frame_window_bounds_the_search(store: LocalObjectStore, videos: Videos) -> None:
    put_video(store, videos.black_lead)
    m = run_snapshot(job(SingleTime(0), black_frames=BlackFrameSpec(search_window_ms=200)), store, limits=LIMITS)
    assert m.images[0].substituted_ms is None and m.images[0].actual_ms == 0.0
    assert any("kept the blank one" in n for n in m.notes)


@pytest.mark.parametrize("decoder", ["pyav", "opencv"])
def test_rotated_input_comes_out_upright(store: LocalObjectStore, videos: Videos, decoder: str) -> None:
    facts = videos.rot90
    put_video(store, facts)
    m = run_snapshot(job(TimePoints((0, 520)), size=OutputSize(width=160)), store, limits=LIMITS, decoder=decoder)
    assert (m.source_width, m.source_height) == (320, 240)
    assert [(i.width, i.height) for i in m.images] == [(160, 120), (160, 120)]
    assert captured(store, m) == [0, 13]


def test_mpeg4_input(store: LocalObjectStore, videos: Videos) -> None:
    facts = videos.mpeg4
    put_video(store, facts)
    m = run_snapshot(job(Average(count=5), size=OutputSize(width=64)), store, limits=LIMITS)
    assert captured(store, m) == [facts.frame_at(i.requested_ms) for i in m.images]


def test_gpu_request_falls_back_to_cpu_and_says_so(store: LocalObjectStore, videos: Videos) -> None:
    put_video(store, videos.cfr)
    m = run_snapshot(job(SingleTime(1000)), store, limits=LIMITS, decoder="gpu")
    if m.decoder == "gpu":  # a machine with NVDEC: the frame must still be right
        assert captured(store, m) == [25]
        return
    assert m.decoder == "pyav (gpu unavailable)"
    assert any("GPU decode unavailable" in n for n in m.notes)
    assert captured(store, m) == [25]


def test_matroska_input_through_the_demux_index(store: LocalObjectStore, videos: Videos, tmp_path: Path) -> None:
    exe = shutil.which("ffmpeg")
    assert exe is not None
    mkv = tmp_path / "v.mkv"
    subprocess.run([exe, "-v", "error", "-i", str(videos.vfr.path), "-c", "copy", str(mkv)], check=True)
    store.put("in", "v.mkv", mkv.read_bytes(), "video/x-matroska")
    m = run_snapshot(job(Series(30, 0.33, 11), key="v.mkv", size=OutputSize(width=64)), store, limits=LIMITS)
    assert captured(store, m) == [videos.vfr.frame_at(i.requested_ms) for i in m.images]
