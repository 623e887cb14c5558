"""End-to-end fixtures: real redis-server, a real Celery worker process, the API's test client."""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient

from app.settings import Settings
from app.storage.credentials import AccessKey
from app.web import create_app
from app.wiring import Services
from tests.devstackproc import DevStack, start_devstack
from tests.workerproc import WorkerProcess


@pytest.fixture
def key(services: Services) -> AccessKey:
    return services.credentials.create("acme")


@pytest.fixture
def client(services: Services) -> FlaskClient:
    return create_app(services.settings, services).test_client()


@pytest.fixture
def start_worker(settings: Settings, tmp_path: Path) -> Iterator[Callable[..., WorkerProcess]]:
    started: list[WorkerProcess] = []

    def start(**kw: Any) -> WorkerProcess:
        worker = WorkerProcess(kw.pop("settings", settings), tmp_path, **kw).start()
        started.append(worker)
        return worker

    yield start
    for w in started:
        w.stop()


def basic(key: AccessKey) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{key.id}:{key.secret}".encode()).decode()}


@pytest.fixture(scope="session")
def devstack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevStack]:
    """``make up`` in a scratch checkout (its own redis-server, gunicorn API, worker, notifier)."""
    stack = start_devstack(tmp_path_factory.mktemp("checkout"))
    yield stack
    stack.stop()
