"""One snapshot request through every dialect — native, Alibaba MPS, JD Cloud, Huawei MPC — each
through its official SDK, produces the same frames: the same drawn frame index and the same
pixels (one core job model, one frame engine; a dialect only translates)."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator
from pathlib import Path

import cv2
import httpx
import numpy as np
import pytest
from aliyunsdkcore.client import AcsClient
from aliyunsdkmts.request.v20140618.SubmitSnapshotJobRequest import SubmitSnapshotJobRequest
from huaweicloudsdkcore.auth.credentials import BasicCredentials
from huaweicloudsdkcore.http.http_config import HttpConfig
from huaweicloudsdkmpc.v1 import CreateThumbnailsTaskRequest, CreateThumbReq, MpcClient, ObsObjInfo, ThumbnailPara
from jdcloud_sdk.core.config import Config
from jdcloud_sdk.core.credential import Credential
from jdcloud_sdk.core.logger import ERROR, Logger
from jdcloud_sdk.services.mps.apis.CreateThumbnailTaskRequest import (
    CreateThumbnailTaskParameters,
    CreateThumbnailTaskRequest,
)
from jdcloud_sdk.services.mps.client.MpsClient import MpsClient
from jdcloud_sdk.services.mps.models.ThumbnailTaskRule import ThumbnailTaskRule
from jdcloud_sdk.services.mps.models.ThumbnailTaskSource import ThumbnailTaskSource
from jdcloud_sdk.services.mps.models.ThumbnailTaskTarget import ThumbnailTaskTarget

from app.core.jobs import SnapshotJob
from app.settings import Settings
from app.web import create_app
from app.wiring import Services
from tests.media import VideoFacts, make_video, read_frame_index
from tests.servers import serve_wsgi
from tests.workerproc import WorkerProcess

AK, SK, TENANT = "testAccessKeyId", "testAccessKeySecret", "acme"
PROJECT = "0123456789abcdef0123456789abcdef"
AT_S = 2  # every vendor can name a whole second
WIDTH = 160


@pytest.fixture
def stack(settings: Settings, services: Services, tmp_path: Path) -> Iterator[tuple[str, VideoFacts]]:
    services.credentials.create(TENANT, key_id=AK, secret=SK)
    video = make_video(tmp_path / "v.mp4", seconds=4, fps=25, width=320, height=240, gop=25)
    services.objects.put("media", "in/v.mp4", video.path.read_bytes(), "video/mp4")
    worker = WorkerProcess(settings, tmp_path).start()
    server, url = serve_wsgi(create_app(settings, services))
    yield url, video
    server.shutdown()
    server.server_close()
    worker.stop()


def _native(url: str) -> str:
    auth = "Basic " + base64.b64encode(f"{AK}:{SK}".encode()).decode()
    body = {
        "input": {"bucket": "media", "key": "in/v.mp4"},
        "output": {"bucket": "out", "key": "parity/native/{JobId}.jpg"},
        "snapshot": {"mode": "single", "time_ms": AT_S * 1000, "width": WIDTH},
    }
    resp = httpx.post(f"{url}/api/v1/jobs", json=body, headers={"Authorization": auth})
    assert resp.status_code == 202, resp.text
    return str(resp.json()["id"])


def _mps(url: str) -> str:
    client = AcsClient(AK, SK, "cn-hangzhou")
    client.add_endpoint("cn-hangzhou", "Mts", url.removeprefix("http://"))
    req = SubmitSnapshotJobRequest()
    req.set_Input(json.dumps({"Bucket": "media", "Location": "oss-cn-hangzhou", "Object": "in%2Fv.mp4"}))
    output = {"Bucket": "out", "Location": "oss-cn-hangzhou", "Object": "parity%2Fmps.jpg"}
    req.set_SnapshotConfig(json.dumps({"OutputFile": output, "Time": str(AT_S * 1000), "Width": str(WIDTH)}))
    job = json.loads(client.do_action_with_exception(req))["SnapshotJob"]
    assert job["State"] == "Success", job  # synchronous: the image is there already
    return str(job["Id"])


def _jd(url: str) -> str:
    client = MpsClient(Credential(AK, SK), Config(endpoint=url.removeprefix("http://"), scheme="http"), Logger(ERROR))
    params = CreateThumbnailTaskParameters(
        "cn-north-1",
        ThumbnailTaskSource("media", "in/v.mp4"),
        ThumbnailTaskTarget("out", destKeyPrefix="parity/jd", widthInPixel=WIDTH),
    )
    params.setRule(ThumbnailTaskRule(mode="single", keyFrame=False, startTimeInSecond=AT_S))
    resp = client.send(CreateThumbnailTaskRequest(params))
    assert resp.error is None, resp.error
    return str(resp.result["taskID"])


def _huawei(url: str) -> str:
    client = (
        MpcClient.new_builder()
        .with_credentials(BasicCredentials(AK, SK, PROJECT))
        .with_endpoint(url)
        .with_http_config(HttpConfig(timeout=(5, 30)))
        .build()
    )
    body = CreateThumbReq(
        input=ObsObjInfo(bucket="media", location="cn-north-4", object="in/v.mp4"),
        output=ObsObjInfo(bucket="out", location="cn-north-4", object="parity/huawei"),
        thumbnail_para=ThumbnailPara(type="DOTS", dots=[AT_S], width=WIDTH, format=1),
        sync=1,
    )
    return str(client.create_thumbnails_task(CreateThumbnailsTaskRequest(body=body)).task_id)


def _finished(services: Services, job_id: str) -> SnapshotJob:
    deadline = time.monotonic() + 60
    while not (job := services.snapshots.get(TENANT, job_id)).is_terminal:
        assert time.monotonic() < deadline, job
        time.sleep(0.05)
    assert job.state.value == "succeeded", (job.error_code, job.error_message)
    return job


def test_the_same_request_gives_the_same_frame_in_every_dialect(
    stack: tuple[str, VideoFacts], services: Services
) -> None:
    url, video = stack
    ids = {"native": _native(url), "mts": _mps(url), "jdcloud": _jd(url), "huawei": _huawei(url)}
    pixels = {}
    for origin, job_id in ids.items():
        job = _finished(services, job_id)
        assert job.origin == origin and len(job.manifest.images) == 1
        data = services.objects.get("out", job.manifest.images[0].key)
        pixels[origin] = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    expected = video.frame_at(AT_S * 1000)
    assert {origin: read_frame_index(img) for origin, img in pixels.items()} == dict.fromkeys(ids, expected)
    assert {img.shape for img in pixels.values()} == {(120, WIDTH, 3)}
    reference = pixels["native"].astype(np.int16)
    for origin, img in pixels.items():
        # Same frame, same size; JPEG settings may differ per vendor default, so compare closely, not bytewise.
        assert np.abs(img.astype(np.int16) - reference).mean() < 2.0, origin
