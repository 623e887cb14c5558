"""Integration fixtures (the object graph itself comes from tests/conftest.py)."""

from __future__ import annotations

import pytest

from app.storage.credentials import AccessKey
from app.wiring import Services


@pytest.fixture
def tenant_key(services: Services) -> AccessKey:
    return services.credentials.create("acme")
