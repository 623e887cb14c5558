"""Fixtures that build the real object graph against the session's redis-server."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from app.settings import Settings
from app.storage.credentials import AccessKey
from app.wiring import Services
from tests.stack import fast_settings, make_services


@pytest.fixture
def settings(redis_url: str, tmp_path: Path) -> Settings:
    return fast_settings(redis_url, tmp_path / "data")


@pytest.fixture
def services(settings: Settings) -> Iterator[Services]:
    svc = make_services(settings)
    yield svc
    svc.redis.close()


@pytest.fixture
def tenant_key(services: Services) -> AccessKey:
    return services.credentials.create("acme")
