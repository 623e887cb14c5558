"""An MNS endpoint on 127.0.0.1 (the real app with only the MNS dialect mounted) and access keys.

The official SDK keeps one HTTP/1.1 keep-alive connection, so the werkzeug server must speak
HTTP/1.1 and be threaded (a long poll holds a thread while other calls go on).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest
import redis

from app.gateway import registry
from app.settings import Settings
from app.web import create_app
from app.wiring import Services
from tests.servers import serve_wsgi

AK = "testAccessKeyId"
SK = "testAccessKeySecret"
TENANT = "acme"


@dataclass(frozen=True)
class MnsServer:
    url: str
    account: str
    redis: redis.Redis


@pytest.fixture
def mns_server(settings: Settings, services: Services, redis_client: redis.Redis) -> Iterator[MnsServer]:
    services.credentials.create(TENANT, key_id=AK, secret=SK)
    flask_app = create_app(settings, services, dialects=registry.load(["mns"]))
    server, url = serve_wsgi(flask_app)
    yield MnsServer(url, TENANT, redis_client)
    server.shutdown()
    server.server_close()
