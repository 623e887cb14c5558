"""One served openmps stack per test module for the Huawei SDK tests: a real redis-server (the
session's), local object storage, the WSGI app on a loopback port, and the official
``huaweicloudsdkmpc`` client pointed at it (``with_endpoint`` + ``BasicCredentials``).

Module scope keeps the added test time small; the modules here therefore never use the
function-scoped ``redis_url``/``services`` fixtures (those flush the database per test).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import httpx
import numpy as np
import pytest
import redis
from huaweicloudsdkcore.auth.credentials import BasicCredentials
from huaweicloudsdkcore.http.http_config import HttpConfig
from huaweicloudsdkcore.sdk_request import SdkRequest
from huaweicloudsdkcore.signer.signer import Signer
from huaweicloudsdkmpc.v1 import ListThumbnailsTaskRequest, MpcClient
from werkzeug.serving import BaseWSGIServer

from app.gateway.gate import RequestGate
from app.web import build_gate, create_app
from app.wiring import Services
from tests.media import VideoFacts, make_video, read_frame_index
from tests.servers import RedisServer, serve_wsgi
from tests.stack import fast_settings, make_services
from tests.workerproc import WorkerProcess

AK, SK = "testAccessKeyId", "testAccessKeySecret"
PROJECT = "0123456789abcdef0123456789abcdef"


@dataclass
class Stack:
    services: Services
    url: str
    server: BaseWSGIServer
    video: VideoFacts
    tmp: Path
    gate: RequestGate
    workers: list[WorkerProcess] = field(default_factory=list)

    def client(self, ak: str = AK, sk: str = SK, project: str | None = PROJECT, timeout: float = 30) -> MpcClient:
        credentials = BasicCredentials(ak, sk, project) if project is not None else BasicCredentials(ak, sk)
        return (
            MpcClient.new_builder()
            .with_credentials(credentials)
            .with_endpoint(self.url)
            .with_http_config(HttpConfig(timeout=(5, timeout)))
            .build()
        )

    def start_worker(self) -> WorkerProcess:
        worker = WorkerProcess(self.services.settings, self.tmp).start()
        self.workers.append(worker)
        return worker

    def image(self, bucket: str, key: str) -> np.ndarray:
        img = cv2.imdecode(np.frombuffer(self.services.objects.get(bucket, key), np.uint8), cv2.IMREAD_COLOR)
        assert img is not None, key
        return img

    def drawn(self, bucket: str, key: str) -> int:
        return read_frame_index(self.image(bucket, key))


@pytest.fixture(scope="module")
def stack(redis_server: RedisServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    flusher = redis.Redis.from_url(redis_server.url)
    flusher.flushall()
    flusher.close()
    tmp = tmp_path_factory.mktemp("huawei")
    settings = fast_settings(redis_server.url, tmp / "data")
    services = make_services(settings)
    services.credentials.create("acme", key_id=AK, secret=SK)
    video = make_video(tmp / "v.mp4", seconds=4, fps=25, width=320, height=240, gop=25)
    services.objects.put("media", "in/v.mp4", video.path.read_bytes(), "video/mp4")
    gate = build_gate(services)
    server, url = serve_wsgi(create_app(settings, services, gate=gate))
    s = Stack(services=services, url=url, server=server, video=video, tmp=tmp, gate=gate)
    yield s
    for worker in s.workers:
        worker.stop()
    server.shutdown()
    services.redis.close()


def finished(client: MpcClient, task_id: str, timeout: float = 60) -> Any:
    """The task (ThumbTask) once it left WAITING/PROCESSING, polled with ListThumbnailsTask."""
    deadline = time.monotonic() + timeout
    while True:
        task = client.list_thumbnails_task(ListThumbnailsTaskRequest(task_id=[task_id])).task_array[0]
        if task.status not in ("WAITING", "PROCESSING") or time.monotonic() > deadline:
            return task
        time.sleep(0.1)


def signed_request(
    base_url: str,
    method: str,
    path: str,
    *,
    query: list[tuple[str, Any]] | None = None,
    headers: dict[str, str] | None = None,
    body: bytes = b"",
    ak: str = AK,
    sk: str = SK,
) -> httpx.Response:
    """A request signed by the SDK's own signer, sent as it signed it: for shapes its service
    clients never send (a mismatched X-Project-Id, a chosen X-Sdk-Date, other paths)."""
    host = base_url.split("://", 1)[1]
    request = SdkRequest(
        method=method,
        schema="http",
        host=host,
        resource_path=path,
        query_params=list(query or []),
        header_params={"Content-Type": "application/json", **(headers or {})},
        body=body,
    )
    Signer(BasicCredentials(ak, sk)).sign(request)
    with httpx.Client() as http:
        return http.request(method, request.url, headers=request.header_params, content=body or None)
