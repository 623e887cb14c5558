"""Snapshot jobs end to end: API -> job store -> per-pipeline Celery queue -> real worker process
-> OpenCV/PyAV -> object storage, for every mode, on both storage backends, with crash recovery.

Every assertion about an image reads the frame index the test video drew into that frame, so
the tests prove *which* frame was captured.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import httpx
import numpy as np
import pytest
from flask.testing import FlaskClient
from minio import Minio

from app.settings import Settings
from app.storage import keys
from app.storage.credentials import AccessKey
from app.web import create_app
from app.wiring import Services, build_services, ensure_default_pipeline
from tests.e2e.conftest import basic
from tests.media import VideoFacts, make_not_a_video, make_truncated_video, make_video, read_frame_index
from tests.servers import S3Server
from tests.stack import TEST_SECRET_KEY
from tests.workerproc import WorkerProcess


def upload(services: Services, path: Path, key: str) -> None:
    services.objects.put("media", key, path.read_bytes(), "video/mp4")


def submit(
    client: FlaskClient,
    key: AccessKey,
    snapshot: dict[str, Any],
    *,
    video_key: str = "v.mp4",
    out_key: str = "o/{JobId}/{Count}.jpg",
    wait: float = 10,
    **extra: Any,
) -> dict[str, Any]:
    body = {
        "input": {"bucket": "media", "key": video_key},
        "output": {"bucket": "out", "key": out_key},
        "snapshot": snapshot,
        **extra,
    }
    resp = client.post("/api/v1/jobs", json=body, headers=basic(key), query_string={"wait": wait})
    assert resp.status_code in (200, 202), resp.get_data(as_text=True)
    return resp.get_json()


def finished(client: FlaskClient, key: AccessKey, job_id: str, timeout: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        job = client.get(f"/api/v1/jobs/{job_id}", headers=basic(key)).get_json()
        if job["state"] not in ("submitted", "running") or time.monotonic() > deadline:
            return job
        time.sleep(0.1)


def image(services: Services, key: str) -> np.ndarray:
    data = services.objects.get("out", key)
    img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    assert img is not None
    return img


def captured(services: Services, job: dict[str, Any]) -> list[int]:
    return [read_frame_index(image(services, i["key"])) for i in job["manifest"]["images"]]


@pytest.fixture
def video(services: Services, tmp_path: Path) -> VideoFacts:
    facts = make_video(tmp_path / "v.mp4", seconds=4, fps=25, width=320, height=240, gop=25)
    upload(services, facts.path, "v.mp4")
    return facts


def test_every_mode_captures_the_right_frames(
    client: FlaskClient,
    key: AccessKey,
    services: Services,
    video: VideoFacts,
    start_worker: Callable[..., WorkerProcess],
) -> None:
    start_worker(concurrency=2)
    d = video.duration_ms
    cases: list[tuple[dict[str, Any], list[int]]] = [
        ({"mode": "single", "time_ms": 1000}, [video.frame_at(1000)]),  # a frame boundary (25 fps)
        ({"mode": "single", "time_ms": 1019.9}, [video.frame_at(1019.9)]),  # mid-frame: the frame on screen
        (
            {"mode": "series", "start_ms": 100, "interval_s": 0.5, "count": 5},
            [video.frame_at(100 + 500 * i) for i in range(5)],
        ),
        ({"mode": "points", "points_ms": [3000, 40, 40, 1500]}, [video.frame_at(t) for t in (40, 40, 1500, 3000)]),
        ({"mode": "single", "time_ms": 1900, "frame_type": "keyframe"}, [video.key_at(1900)]),
    ]
    jobs = [(submit(client, key, snap, wait=0), expected) for snap, expected in cases]
    for job, expected in jobs:
        done = finished(client, key, job["id"])
        assert done["state"] == "succeeded", done
        assert captured(services, done) == expected
        assert [i["key"] for i in done["manifest"]["images"]] == [
            f"o/{done['id']}/{n:05d}.jpg" for n in range(1, len(expected) + 1)
        ]
        for img, frame in zip(done["manifest"]["images"], expected, strict=True):
            assert img["actual_ms"] == pytest.approx(video.pts_ms[frame], abs=1)
    average = finished(client, key, submit(client, key, {"mode": "average", "count": 4}, wait=0)["id"])
    assert average["state"] == "succeeded" and len(average["manifest"]["images"]) == 4
    planned = [i["requested_ms"] for i in average["manifest"]["images"]]
    assert planned == sorted(planned) and 0 <= planned[0] and planned[-1] < d
    assert captured(services, average) == [video.frame_at(t) for t in planned]
    assert average["progress"] == {"done": 4, "total": 4}


def test_sizes_formats_and_aspect_ratio(
    client: FlaskClient,
    key: AccessKey,
    services: Services,
    video: VideoFacts,
    start_worker: Callable[..., WorkerProcess],
) -> None:
    start_worker()
    wide = finished(client, key, submit(client, key, {"mode": "single", "time_ms": 500, "width": 160})["id"])
    assert (wide["manifest"]["images"][0]["width"], wide["manifest"]["images"][0]["height"]) == (160, 120)
    assert image(services, wide["manifest"]["images"][0]["key"]).shape[:2] == (120, 160)
    both = finished(
        client,
        key,
        submit(
            client,
            key,
            {"mode": "single", "time_ms": 500, "width": 100, "height": 50, "format": "png"},
            out_key="p/{JobId}.png",
        )["id"],
    )
    assert image(services, both["manifest"]["images"][0]["key"]).shape[:2] == (50, 100)
    assert services.objects.get("out", both["manifest"]["images"][0]["key"])[:8] == b"\x89PNG\r\n\x1a\n"
    never_up = finished(client, key, submit(client, key, {"mode": "single", "time_ms": 500, "width": 1280})["id"])
    assert image(services, never_up["manifest"]["images"][0]["key"]).shape[:2] == (240, 320)
    webp = finished(
        client,
        key,
        submit(
            client, key, {"mode": "single", "time_ms": 700, "format": "webp", "quality": 70}, out_key="w/{JobId}.webp"
        )["id"],
    )
    data = services.objects.get("out", webp["manifest"]["images"][0]["key"])
    assert data[:4] == b"RIFF" and data[8:12] == b"WEBP"
    assert read_frame_index(image(services, webp["manifest"]["images"][0]["key"])) == video.frame_at(700)


def test_bad_media_fails_the_job_with_a_reason_and_the_worker_lives_on(
    client: FlaskClient,
    key: AccessKey,
    services: Services,
    video: VideoFacts,
    tmp_path: Path,
    start_worker: Callable[..., WorkerProcess],
) -> None:
    start_worker()
    upload(services, make_not_a_video(tmp_path / "notvideo.mp4"), "notvideo.mp4")
    upload(services, make_truncated_video(tmp_path / "trunc.mp4", video.path), "trunc.mp4")
    not_video = finished(
        client, key, submit(client, key, {"mode": "single", "time_ms": 0}, video_key="notvideo.mp4")["id"]
    )
    assert not_video["state"] == "failed" and not_video["error"]["code"] == "InputUnreadable", not_video
    trunc = finished(client, key, submit(client, key, {"mode": "single", "time_ms": 3900}, video_key="trunc.mp4")["id"])
    assert trunc["state"] == "failed" and trunc["error"]["code"] == "InputUnreadable", trunc
    late = finished(client, key, submit(client, key, {"mode": "single", "time_ms": 60_000})["id"])
    assert late["state"] == "failed" and late["error"]["code"] == "TimeOutOfRange"
    assert "4000" in late["error"]["message"], late["error"]  # the message states the duration
    series = finished(
        client, key, submit(client, key, {"mode": "series", "start_ms": 3000, "interval_s": 0.6, "count": 6})["id"]
    )
    assert (
        series["state"] == "succeeded" and len(series["manifest"]["images"]) == 2
    )  # 3000 and 3600 exist; 4200 on are past the end
    ok = finished(client, key, submit(client, key, {"mode": "single", "time_ms": 100})["id"])
    assert ok["state"] == "succeeded" and captured(services, ok) == [video.frame_at(100)]


def test_sigkill_of_a_worker_mid_job_reruns_it_once_on_another_worker(
    client: FlaskClient,
    key: AccessKey,
    services: Services,
    tmp_path: Path,
    start_worker: Callable[..., WorkerProcess],
) -> None:
    slow = make_video(tmp_path / "slow.mp4", seconds=8, fps=25, width=1280, height=720, gop=250)
    upload(services, slow.path, "slow.mp4")
    first = start_worker()
    job = submit(client, key, {"mode": "average", "count": 60, "format": "png"}, video_key="slow.mp4", wait=0)
    deadline = time.monotonic() + 60
    while services.jobs.get(job["id"]).progress_done < 3:
        assert time.monotonic() < deadline, first.log()
        time.sleep(0.02)
    first.kill()
    assert services.jobs.get(job["id"]).state.value == "running"
    start_worker()  # another worker; the dead one's lease expires and the job is re-sent to it
    done = finished(client, key, job["id"], timeout=90)
    assert done["state"] == "succeeded" and done["attempts"] == 2, done
    images = done["manifest"]["images"]
    assert len(images) == 60 and len({i["key"] for i in images}) == 60
    assert sorted(services.objects.list_keys("out", f"o/{job['id']}/")) == sorted(i["key"] for i in images)
    terminal_events = [e for _, e in services.redis.xrange(keys.OUTBOX) if e["job_id"] == job["id"]]
    assert len(terminal_events) == 1  # it ended once


def test_s3_backend_end_to_end(
    s3_server: S3Server,
    redis_url: str,
    tmp_path: Path,
    start_worker: Callable[..., WorkerProcess],
) -> None:
    settings = Settings(
        redis_url=redis_url,
        data_dir=tmp_path / "d",
        storage="s3",
        s3_endpoint=s3_server.endpoint,
        s3_access_key=s3_server.access_key,
        s3_secret_key=s3_server.secret_key,
        s3_region="us-east-1",
        lease_ttl_s=3.0,
        heartbeat_interval_s=0.5,
        queue_sync_interval_s=0.5,
        secret_keys=(TEST_SECRET_KEY,),
    )
    services = build_services(settings)
    ensure_default_pipeline(services)
    s3 = Minio(s3_server.endpoint, access_key="testing", secret_key="testing", secure=False, region="us-east-1")
    for bucket in ("media", "out"):
        if not s3.bucket_exists(bucket):
            s3.make_bucket(bucket)
    facts = make_video(tmp_path / "s3.mp4", seconds=3, fps=25, width=320, height=240, gop=25)
    s3.fput_object("media", "in/s3.mp4", str(facts.path))
    key = services.credentials.create("acme")
    services.grants.grant("acme", "media", read=True)
    services.grants.grant("acme", "out", read=True, write=True)
    client = create_app(settings, services).test_client()
    start_worker(settings=settings)
    job = submit(client, key, {"mode": "points", "points_ms": [200, 2500]}, video_key="in/s3.mp4", wait=10)
    job = finished(client, key, job["id"])
    assert job["state"] == "succeeded", job
    got = [
        read_frame_index(cv2.imdecode(np.frombuffer(s3.get_object("out", i["key"]).read(), np.uint8), cv2.IMREAD_COLOR))
        for i in job["manifest"]["images"]
    ]
    assert got == [facts.frame_at(200), facts.frame_at(2500)]
    # Each image's URL is presigned: the S3 server serves it to a client with no credentials.
    for image in job["manifest"]["images"]:
        assert "X-Amz-Signature=" in image["url"], image["url"]
        fetched = httpx.get(image["url"], timeout=10)
        assert fetched.status_code == 200 and fetched.content == s3.get_object("out", image["key"]).read()
    # (moto does not check signatures, so refusal of a tampered one is shown for local URLs only.)
    missing = client.post(
        "/api/v1/jobs",
        headers=basic(key),
        json={
            "input": {"bucket": "media", "key": "in/nope.mp4"},
            "output": {"bucket": "out", "key": "x.jpg"},
            "snapshot": {"mode": "single", "time_ms": 0},
        },
    )
    assert missing.status_code == 400 and missing.get_json()["code"] == "InputNotFound"
