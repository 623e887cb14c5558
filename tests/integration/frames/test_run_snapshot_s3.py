"""run_snapshot against a real S3 server (moto over HTTP): presigned URL in, objects out.

The input is read through the bounded Range reader; the range test proves one frame near the
end of a 30+ MB object reads only a small fraction of it.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any
from uuid import uuid4

import cv2
import numpy as np
import pytest
from minio import Minio

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
from app.storage.objects import S3ObjectStore
from tests.integration.frames.conftest import Videos
from tests.media import VideoFacts, make_bulky_video, make_not_a_video, read_frame_index
from tests.servers import S3Server
from tests.unit.frames.test_gpu import FakeNvc
from workers.frames import gpu
from workers.frames.capture import Budget, PyAVDecoder
from workers.frames.probe import open_input
from workers.frames.rangeio import RangeReader
from workers.pipeline import MediaLimits, run_snapshot

LIMITS = MediaLimits(max_frame_pixels=4096 * 4096, max_decoded_frames=100_000, deadline=None)


@pytest.fixture
def buckets(s3_server: S3Server) -> Iterator[tuple[S3ObjectStore, Minio, str, str]]:
    store = S3ObjectStore(s3_server.endpoint, s3_server.access_key, s3_server.secret_key, region=s3_server.region)
    client = Minio(
        s3_server.endpoint, s3_server.access_key, s3_server.secret_key, secure=False, region=s3_server.region
    )
    src, dst = f"in-{uuid4().hex[:8]}", f"out-{uuid4().hex[:8]}"
    client.make_bucket(src)
    client.make_bucket(dst)
    yield store, client, src, dst


def upload(client: Minio, bucket: str, key: str, path: Path) -> None:
    client.fput_object(bucket, key, str(path), content_type="video/mp4")


def make_job(src: str, dst: str, key: str, timing: Timing, **kw: object) -> SnapshotJob:
    spec = SnapshotSpec(ObjectRef(src, key), timing, OutputTarget(dst, "s3/{job_id}/{index:5}.jpg"), **kw)  # type: ignore[arg-type]
    return SnapshotJob(id="s3job", tenant="t", pipeline_id="p", spec=spec)


def read_index(store: S3ObjectStore, bucket: str, key: str) -> int:
    return read_frame_index(cv2.imdecode(np.frombuffer(store.get(bucket, key), np.uint8), cv2.IMREAD_COLOR))


@pytest.mark.parametrize("kind", ["cfr", "vfr"])
def test_series_over_presigned_url(buckets: tuple[S3ObjectStore, Minio, str, str], videos: Videos, kind: str) -> None:
    store, client, src, dst = buckets
    facts: VideoFacts = getattr(videos, kind)
    upload(client, src, "v.mp4", facts.path)
    m = run_snapshot(make_job(src, dst, "v.mp4", Series(90, 0.45, 9), size=OutputSize(width=80)), store, limits=LIMITS)
    expected = [facts.frame_at(i.requested_ms) for i in m.images]
    assert [read_index(store, dst, i.key) for i in m.images] == expected
    assert store.list_keys(dst) == [f"s3/s3job/{n:05d}.jpg" for n in range(1, len(expected) + 1)]
    assert any(n.startswith("input read over HTTP") for n in m.notes)


def test_missing_object_and_not_a_video(
    buckets: tuple[S3ObjectStore, Minio, str, str], tmp_path: Path, videos: Videos
) -> None:
    store, client, src, dst = buckets
    with pytest.raises(JobFailure) as err:
        run_snapshot(make_job(src, dst, "absent.mp4", SingleTime(0)), store, limits=LIMITS)
    assert err.value.code is FailureCode.INPUT_NOT_FOUND
    upload(client, src, "text.mp4", make_not_a_video(tmp_path / "t.mp4"))
    with pytest.raises(JobFailure) as err:
        run_snapshot(make_job(src, dst, "text.mp4", SingleTime(0)), store, limits=LIMITS)
    assert err.value.code is FailureCode.INPUT_UNREADABLE
    upload(client, src, "ok.mp4", videos.cfr.path)
    m = run_snapshot(make_job(src, dst, "ok.mp4", Average(3)), store, limits=LIMITS)
    assert [read_index(store, dst, i.key) for i in m.images] == [16, 50, 83]


def test_one_frame_near_the_end_reads_a_small_fraction(
    buckets: tuple[S3ObjectStore, Minio, str, str], tmp_path_factory: pytest.TempPathFactory
) -> None:
    store, client, src, dst = buckets
    facts = make_bulky_video(tmp_path_factory.mktemp("bulky") / "bulky.mp4", seconds=60)
    size = facts.path.stat().st_size
    assert size > 20_000_000
    upload(client, src, "bulky.mp4", facts.path)
    url = store.media_locator(src, "bulky.mp4")
    opened = open_input(url, max_frame_pixels=1 << 30)
    dec = PyAVDecoder(opened, Budget(10_000))
    try:
        t = 0.93 * facts.duration_ms
        target = facts.frame_at(t)
        key = facts.key_at(t)
        got = dec.read(target, key, OutputSize(width=64))
        assert got.pts_ms == facts.pts_ms[target]
        assert opened.reader is not None
        fraction = opened.reader.bytes_read / size
        assert fraction < 0.15, f"read {opened.reader.bytes_read} of {size} bytes"
    finally:
        dec.close()
    m = run_snapshot(make_job(src, dst, "bulky.mp4", SingleTime(t)), store, limits=LIMITS)
    assert m.images[0].actual_ms == facts.pts_ms[target]
    note = next(n for n in m.notes if n.startswith("input read over HTTP"))
    assert int(note.split()[4]) / size < 0.15, note


def test_gpu_decode_of_a_url_closes_its_range_reader_once(
    buckets: tuple[S3ObjectStore, Minio, str, str], videos: Videos, monkeypatch: pytest.MonkeyPatch
) -> None:
    """NVDEC (faked: no GPU here) reads a URL through the Range reader, so the pipeline hands the
    reader to the GPU decoder, whose close must close it: once, before run_snapshot returns."""
    store, client, src, dst = buckets
    upload(client, src, "g.mp4", videos.cfr.path)
    monkeypatch.setattr(gpu, "load_nvcodec", lambda: (FakeNvc, ""))
    readers: list[RangeReader] = []  # held here, so garbage collection cannot close them for us
    closes: list[RangeReader] = []
    init, close = RangeReader.__init__, RangeReader.close

    def spy_init(self: RangeReader, *args: Any, **kw: Any) -> None:
        readers.append(self)
        init(self, *args, **kw)

    def spy_close(self: RangeReader) -> None:
        closes.append(self)
        close(self)

    monkeypatch.setattr(RangeReader, "__init__", spy_init)
    monkeypatch.setattr(RangeReader, "close", spy_close)
    m = run_snapshot(make_job(src, dst, "g.mp4", SingleTime(1000)), store, limits=LIMITS, decoder="gpu")
    assert m.decoder == "gpu"
    (reader,) = readers
    assert reader.closed and closes == [reader]
