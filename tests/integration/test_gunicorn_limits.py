"""The API as the Procfile runs it (gunicorn with ``app.web.gunicorn_config``): an oversized
request line that gunicorn lets through gets the app's JSON 414; what only gunicorn can answer
(a request line over its 8190-byte cap) is what the README says it is; gunicorn's own log lines
are written, not lost to a logging error."""

from __future__ import annotations

import http.client
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.settings import Settings
from tests.servers import free_port
from tests.workerproc import REPO, settings_env


@pytest.fixture
def gunicorn(settings: Settings, tmp_path: Path) -> Iterator[int]:
    port = free_port()
    log = open(tmp_path / "gunicorn.log", "wb")  # noqa: SIM115 - closed below, once gunicorn has exited
    env = {**os.environ, **settings_env(settings), "PYTHONPATH": str(REPO)}
    cmd = [sys.executable, "-m", "gunicorn", "-c", "python:app.web.gunicorn_config", "--workers", "1"]
    proc = subprocess.Popen(
        [*cmd, "--bind", f"127.0.0.1:{port}", "app.web:create_app()"],
        cwd=REPO,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 30
    while True:
        try:
            if get(port, "/healthz")[0] == 200:
                break
        except OSError:
            pass
        assert proc.poll() is None and time.monotonic() < deadline, "gunicorn did not start"
        time.sleep(0.1)
    yield port
    proc.terminate()
    proc.wait(15)
    log.close()


def get(port: int, target: str) -> tuple[int, str, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", target)
        resp = conn.getresponse()
        return resp.status, resp.getheader("Content-Type") or "", resp.read()
    finally:
        conn.close()


def test_gunicorn_passes_long_request_lines_to_the_app_up_to_its_cap(gunicorn: int) -> None:
    status, kind, data = get(gunicorn, "/api/v1/jobs?x=" + "a" * 8100)  # > the app's 8000, < gunicorn's 8190
    assert status == 414 and kind.startswith("application/json")
    assert json.loads(data)["code"] == "URITooLong"
    status, kind, _ = get(gunicorn, "/api/v1/jobs?x=" + "a" * 9000)  # past gunicorn's hard cap: its own page
    assert status == 414 and not kind.startswith("application/json")
    status, kind, data = get(gunicorn, "/api//v1/jobs")
    assert status == 404 and json.loads(data)["code"] == "NotFound"


def test_gunicorns_own_log_lines_are_written(gunicorn: int, tmp_path: Path) -> None:
    """gunicorn formats its lines with ``%(process)d``: the app's logging set-up must leave the
    record's process id in place (``app/logs.py``), or each of them is lost to a logging error."""
    assert get(gunicorn, "/healthz")[0] == 200
    text = (tmp_path / "gunicorn.log").read_text()
    assert "Booting worker with pid" in text
    assert "Logging error" not in text and "Traceback" not in text
