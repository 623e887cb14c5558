"""Retry through the native API, the Python client and the CLI (click's runner), against a served
API (real socket), a real worker process and local storage: a failed job is retried as a new job
that names it and succeeds once its input is fixed; a job in any other state is a 409; another
tenant's job is a 404 like any unknown job."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

from app.cli import cli
from app.settings import Settings
from app.storage.credentials import AccessKey
from app.web import create_app
from app.wiring import Services
from openmps.client import ApiError, Client
from tests.media import make_not_a_video, make_video
from tests.servers import serve_wsgi
from tests.workerproc import WorkerProcess

BODY = {
    "input": {"bucket": "media", "key": "in/clip.mp4"},
    "output": {"bucket": "out", "key": "retry/{JobId}/{Count}.jpg"},
    "snapshot": {"mode": "points", "points_ms": [500, 1500]},
    "user_data": "ticket-7",
}


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in [n for n in os.environ if n.startswith("OPENMPS_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("OPENMPS_DATA_DIR", str(tmp_path / "no-stack-here"))


@pytest.fixture
def api_url(services: Services) -> Iterator[str]:
    server, url = serve_wsgi(create_app(services.settings, services))
    yield url
    server.shutdown()
    server.server_close()


@pytest.fixture
def worker(settings: Settings, tmp_path: Path) -> Iterator[WorkerProcess]:
    proc = WorkerProcess(settings, tmp_path).start()
    yield proc
    proc.stop()


@pytest.fixture
def failed_job(api_url: str, services: Services, tmp_path: Path, worker: WorkerProcess) -> str:
    """A job that failed because its input was not a video; the input is then fixed in place."""
    services.objects.put("media", "in/clip.mp4", make_not_a_video(tmp_path / "bad.mp4").read_bytes(), "video/mp4")
    key = services.credentials.create("acme")
    with Client(api_url, key.id, key.secret) as client:
        job = client.wait(client.submit(BODY).id, timeout_s=60, poll_s=0.1)
    assert (job.state, job.error_code) == ("failed", "InputUnreadable")
    video = make_video(tmp_path / "v.mp4", seconds=2.0, fps=25)
    services.objects.put("media", "in/clip.mp4", video.path.read_bytes(), "video/mp4")
    return job.id


def basic(key: AccessKey) -> tuple[str, str]:
    return key.id, key.secret


def test_retry_over_http_and_the_client(api_url: str, services: Services, failed_job: str) -> None:
    acme = services.credentials.create("acme")
    beta = services.credentials.create("beta")
    resp = httpx.post(f"{api_url}/api/v1/jobs/{failed_job}/retry", auth=basic(acme))
    assert resp.status_code == 202, resp.text
    again = resp.json()
    assert again["id"] != failed_job and again["retry_of"] == failed_job
    assert again["state"] in ("submitted", "running") and again["user_data"] == "ticket-7"
    assert again["spec"]["input"] == {"bucket": "media", "key": "in/clip.mp4"}
    with Client(api_url, acme.id, acme.secret) as client:
        done = client.wait(again["id"], timeout_s=60, poll_s=0.1)
        assert done.state == "succeeded" and [i.requested_ms for i in done.images] == [500, 1500]
        assert done.retry_of == failed_job
        old = client.get(failed_job)
        assert old.state == "failed" and old.retry_of is None  # left as it ended, with no back-link

        with pytest.raises(ApiError) as refused:
            client.retry(done.id)  # succeeded: nothing to retry
        assert (refused.value.status, refused.value.code) == (409, "InvalidJobState")
        assert "succeeded" in refused.value.message and refused.value.request_id

        second = client.retry(failed_job)  # a failed job may be retried again: another new job
        assert second.retry_of == failed_job and second.id not in (failed_job, done.id)
        assert client.wait(second.id, timeout_s=60, poll_s=0.1).state == "succeeded"

    other = httpx.post(f"{api_url}/api/v1/jobs/{failed_job}/retry", auth=basic(beta))
    unknown = httpx.post(f"{api_url}/api/v1/jobs/{'0' * 32}/retry", auth=basic(beta))
    assert other.status_code == unknown.status_code == 404
    assert other.json()["code"] == unknown.json()["code"] == "JobNotFound"
    assert other.json()["message"].replace(failed_job, "ID") == unknown.json()["message"].replace("0" * 32, "ID")
    assert services.jobs.get(failed_job).state.value == "failed"


def run(*args: str, env: dict[str, str]) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args), env=env)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, result.stdout, result.stderr


def test_retry_with_the_cli(api_url: str, services: Services, failed_job: str) -> None:
    acme = services.credentials.create("acme")
    env = {"OPENMPS_URL": api_url, "OPENMPS_ACCESS_KEY": acme.id, "OPENMPS_SECRET": acme.secret}
    code, stdout, stderr = run("jobs", "retry", failed_job, "--wait", env=env)
    assert code == 0, stderr
    head, *urls = stdout.splitlines()
    new_id = head.split("\t")[0]
    assert new_id != failed_job and head.split("\t")[1:] == ["succeeded", "2/2 images"] and len(urls) == 2
    assert stderr.strip().splitlines()[-1].split()[1:] == ["succeeded", "images", "2/2"]  # the progress lines

    code, stdout, _ = run("jobs", "retry", failed_job, "--json", env=env)
    assert code == 0 and json.loads(stdout)["retry_of"] == failed_job
    code, stdout, _ = run("jobs", "retry", failed_job, env=env)
    assert code == 0 and stdout.endswith(f"\tretry of {failed_job}\n")

    code, stdout, stderr = run("jobs", "retry", new_id, env=env)
    assert (code, stdout) == (1, "") and stderr.startswith("openmps: InvalidJobState: ")
    assert len(stderr.strip().splitlines()) == 1

    beta = services.credentials.create("beta")
    other = {"OPENMPS_URL": api_url, "OPENMPS_ACCESS_KEY": beta.id, "OPENMPS_SECRET": beta.secret}
    code, _, stderr = run("jobs", "retry", failed_job, env=other)
    assert code == 1 and stderr.startswith("openmps: JobNotFound: ")
