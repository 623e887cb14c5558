"""One served openmps (every dialect mounted) for a whole test module, with the JD test key."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis

from app.web import create_app
from app.wiring import Services
from tests.integration.dialects.jdcloud.sdk import AK, SK
from tests.servers import RedisServer, serve_wsgi
from tests.stack import fast_settings, make_services

TENANT = "acme"


@dataclass(frozen=True)
class Served:
    url: str
    services: Services
    tmp: Path


@pytest.fixture(scope="module")
def served(redis_server: RedisServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """Module-scoped: the module's tests share one store, so each one names its own objects."""
    plain = redis.Redis.from_url(redis_server.url)
    plain.flushall()
    plain.close()
    tmp = tmp_path_factory.mktemp("jdcloud")
    settings = fast_settings(redis_server.url, tmp / "data")
    services = make_services(settings)
    services.credentials.create(TENANT, key_id=AK, secret=SK)
    server, url = serve_wsgi(create_app(settings, services))
    yield Served(url, services, tmp)
    server.shutdown()
    server.server_close()
    services.redis.close()
