"""One served openmps stack per test module, driven by Alibaba's official SDKs, unmodified.

``stack`` serves the real app (every dialect mounted) on a loopback port over the session's
redis-server; ``worker`` adds a real Celery worker process and ``notifier`` the notifier process,
both for the whole module. Tests share the stack, so each names its own pipelines and objects.
Modules tune the stack's settings with a module-level ``STACK_SETTINGS`` dict.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import redis
from alibabacloud_mts20140618.client import Client as TeaClient
from alibabacloud_tea_openapi.models import Config
from aliyunsdkcore.client import AcsClient
from aliyunsdkcore.request import RpcRequest

from app.settings import Settings
from app.web import create_app
from app.wiring import Services
from tests.servers import RedisServer, serve_wsgi
from tests.stack import fast_settings, make_services
from tests.workerproc import REPO, WorkerProcess, settings_env

AK = "testAccessKeyId"
SK = "testAccessKeySecret"
TENANT = "acme"
REGION = "cn-hangzhou"


@dataclass
class Stack:
    settings: Settings
    services: Services
    port: int
    tmp: Path

    @property
    def endpoint(self) -> str:
        return f"127.0.0.1:{self.port}"

    def classic(self, key: str = AK, secret: str = SK) -> AcsClient:
        client = AcsClient(key, secret, REGION)
        client.add_endpoint(REGION, "Mts", self.endpoint)
        return client

    def tea(self, key: str = AK, secret: str = SK, **config: Any) -> TeaClient:
        options = {"region_id": REGION, "endpoint": self.endpoint, "protocol": "http", **config}
        return TeaClient(Config(access_key_id=key, access_key_secret=secret, **options))

    def put(self, key: str, data: bytes, bucket: str = "media") -> None:
        self.services.objects.put(bucket, key, data, "video/mp4")


@dataclass(frozen=True)
class Reply:
    status: int
    headers: Mapping[str, str]
    content: bytes

    def json(self) -> Any:
        return json.loads(self.content)


def http(method: str, url: str, *, data: bytes | None = None, headers: Mapping[str, str] | None = None) -> Reply:
    """A plain HTTP request (for clients that read raw bodies), error statuses included."""
    req = urllib.request.Request(url, data=data, method=method, headers=dict(headers or {}))
    try:
        with urllib.request.urlopen(req, timeout=15) as resp:
            return Reply(resp.status, dict(resp.headers), resp.read())
    except urllib.error.HTTPError as exc:
        return Reply(exc.code, dict(exc.headers), exc.read())


def call(client: AcsClient, request: RpcRequest) -> dict[str, Any]:
    """A classic SDK call: it returns raw bytes, which callers parse as JSON."""
    return json.loads(client.do_action_with_exception(request))


@pytest.fixture(scope="module")
def stack(
    request: pytest.FixtureRequest, redis_server: RedisServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    client = redis.Redis.from_url(redis_server.url)
    client.flushall()
    client.close()
    tmp = tmp_path_factory.mktemp("mts")
    overrides = getattr(request.module, "STACK_SETTINGS", {})
    settings = fast_settings(redis_server.url, tmp / "data", **overrides)
    services = make_services(settings)
    services.credentials.create(TENANT, key_id=AK, secret=SK)
    server, _ = serve_wsgi(create_app(settings, services))
    yield Stack(settings, services, server.server_port, tmp)
    server.shutdown()
    server.server_close()
    services.redis.close()


@pytest.fixture(scope="module")
def worker(stack: Stack) -> Iterator[WorkerProcess]:
    proc = WorkerProcess(stack.settings, stack.tmp, concurrency=2).start()
    yield proc
    proc.stop()


@pytest.fixture(scope="module")
def notifier(stack: Stack) -> Iterator[subprocess.Popen[bytes]]:
    log = open(stack.tmp / "notifier.log", "ab")  # noqa: SIM115 - closed by the OS when the child exits
    proc = subprocess.Popen(
        [sys.executable, "-m", "app.notify.notifier"],
        cwd=REPO,
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**os.environ, **settings_env(stack.settings), "PYTHONPATH": str(REPO)},
    )
    yield proc
    proc.terminate()
    proc.wait(15)
