"""Fixtures that build the real object graph against the session's redis-server."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from app.settings import Settings
from app.storage.credentials import AccessKey
from app.wiring import Services, build_services, ensure_default_pipeline


@pytest.fixture
def settings(redis_url: str, tmp_path: Path) -> Settings:
    return Settings(redis_url=redis_url, data_dir=tmp_path / "data", storage="local", lease_ttl_s=3.0,
                    heartbeat_interval_s=0.5, allow_private_endpoints=True)


@pytest.fixture
def services(settings: Settings) -> Iterator[Services]:
    svc = build_services(settings)
    ensure_default_pipeline(svc)
    for bucket in ("media", "out"):
        svc.objects.make_bucket(bucket)
    yield svc
    svc.redis.close()


@pytest.fixture
def tenant_key(services: Services) -> AccessKey:
    return services.credentials.create("acme")
