"""The Python client against a real stack: a served API, a real worker, local object storage."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest

from app.settings import Settings
from app.storage.credentials import AccessKey
from app.web import create_app
from app.wiring import Services
from openmps.client import ApiError, Client, ConnectionFailed, Job, WaitTimedOut, input_for
from tests.media import make_video, read_frame_index
from tests.servers import free_port, serve_wsgi
from tests.workerproc import WorkerProcess


@pytest.fixture
def api_url(services: Services) -> Iterator[str]:
    server, url = serve_wsgi(create_app(services.settings, services))
    yield url
    server.shutdown()
    server.server_close()


@pytest.fixture
def client(api_url: str, services: Services) -> Iterator[Client]:
    key: AccessKey = services.credentials.create("acme")
    with Client(api_url, key.id, key.secret) as c:
        yield c


def _body(snapshot: dict[str, object], out: str = "c/{JobId}/{Count}.jpg") -> dict[str, object]:
    return {"input": {"bucket": "media", "key": "v.mp4"}, "output": {"bucket": "out", "key": out}, "snapshot": snapshot}


def test_submit_wait_with_progress_and_read_the_frames(
    client: Client, services: Services, settings: Settings, tmp_path: Path
) -> None:
    video = make_video(tmp_path / "v.mp4", seconds=4.0, fps=25)
    services.objects.put("media", "v.mp4", video.path.read_bytes(), "video/mp4")
    worker = WorkerProcess(settings, tmp_path).start()
    try:
        job = client.submit(_body({"mode": "points", "points_ms": [1000, 2000, 3000]}))
        seen: list[Job] = []
        done = client.wait(job.id, timeout_s=60, poll_s=0.05, on_progress=seen.append)
    finally:
        worker.stop()
    assert done.state == "succeeded" and done.done == done.total == 3
    assert seen[-1].state == "succeeded" and all(a.raw != b.raw for a, b in zip(seen, seen[1:]))
    for image, expected_frame in zip(done.images, (25, 50, 75), strict=True):
        pixels = cv2.imdecode(np.frombuffer(services.objects.get("out", image.key), np.uint8), cv2.IMREAD_COLOR)
        assert read_frame_index(pixels) == expected_frame


def test_api_errors_carry_the_server_code(client: Client) -> None:
    with pytest.raises(ApiError) as info:
        client.get("no-such-job")
    assert info.value.status == 404 and info.value.code == "JobNotFound" and info.value.request_id
    with pytest.raises(ApiError) as info:
        client.submit(_body({"mode": "single", "time_ms": -1}))
    assert info.value.status == 400 and info.value.code == "InvalidParameter" and "time_ms" in info.value.message


def test_bad_credentials_and_an_unreachable_server(api_url: str) -> None:
    with Client(api_url, "nobody", "nothing") as bad, pytest.raises(ApiError) as info:
        bad.list_jobs()
    assert info.value.status == 401 and info.value.code == "InvalidAccessKey"
    with Client(f"http://127.0.0.1:{free_port()}", "k", "s", timeout_s=2) as down, pytest.raises(ConnectionFailed):
        down.list_jobs()


def test_paging_cancel_and_pipelines(client: Client, services: Services, tmp_path: Path) -> None:
    services.objects.put("media", "v.mp4", make_video(tmp_path / "v.mp4", seconds=1.0).path.read_bytes(), "video/mp4")
    pipeline = client.create_pipeline("held", state="paused")
    ids = [
        client.submit({**_body({"mode": "single", "time_ms": 0}, "p/{JobId}.jpg"), "pipeline_id": pipeline["id"]}).id
        for _ in range(5)
    ]
    page = client.list_jobs(limit=2)
    assert len(page.jobs) == 2 and page.next_page_token
    assert [j.id for j in client.iter_jobs(page_size=2)] == list(reversed(ids))
    assert client.get_pipeline(pipeline["id"])["depth"]["queued"] == 5
    assert client.cancel(ids[0]).state == "canceled"
    with pytest.raises(WaitTimedOut) as info:
        client.wait(ids[1], timeout_s=0.3, poll_s=0.1)  # the pipeline is paused: it stays queued
    assert info.value.job.state == "submitted"
    assert client.resume_pipeline(pipeline["id"])["state"] == "active"
    listed = client.list_pipelines()
    assert pipeline["id"] in [p["id"] for p in listed["pipelines"]]
    with pytest.raises(ApiError) as not_empty:
        client.delete_pipeline(pipeline["id"])
    assert not_empty.value.code == "PipelineNotEmpty"


def test_an_input_from_one_string_url_or_bucket_key(client: Client) -> None:
    assert input_for("https://cdn.example.com/v.mp4?sig=1") == {"url": "https://cdn.example.com/v.mp4?sig=1"}
    assert input_for("media/in/v.mp4") == {"bucket": "media", "key": "in/v.mp4"}
    with pytest.raises(ValueError, match="http\\(s\\) URL or BUCKET/KEY"):
        input_for("v.mp4")
    body = {**_body({"mode": "single", "time_ms": 0}), "input": input_for("https://cdn.example.com/v.mp4")}
    assert client.submit(body).raw["spec"]["input"] == {"url": "https://cdn.example.com/v.mp4"}
    body["input"] = input_for("http://169.254.169.254/latest/meta-data/")
    with pytest.raises(ApiError) as refused:
        client.submit(body)
    assert (refused.value.status, refused.value.code) == (400, "InvalidParameter")
    assert "link-local" in refused.value.message
