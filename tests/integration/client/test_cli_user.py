"""The user side of the ``openmps`` CLI through click's CliRunner, against a served API (real
socket), a real worker process and local storage; connection by --url/--key/--secret or env."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from importlib.metadata import version
from pathlib import Path
from urllib.parse import urlsplit

import cv2
import httpx
import numpy as np
import pytest
from click.testing import CliRunner

from app.cli import cli, main
from app.settings import Settings
from app.storage.credentials import AccessKey
from app.web import create_app
from app.wiring import Services
from tests.media import make_video, read_frame_index
from tests.servers import free_port, serve_wsgi
from tests.urlserver import MediaServer
from tests.workerproc import WorkerProcess


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
def key(services: Services) -> AccessKey:
    services.grants.grant("acme", "media", read=True, write=True)
    return services.credentials.create("acme")


def run(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args), env=env)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, result.stdout, result.stderr


def test_submit_a_local_file_with_wait_prints_progress_then_the_outputs(
    api_url: str, key: AccessKey, services: Services, settings: Settings, tmp_path: Path
) -> None:
    video = make_video(tmp_path / "v.mp4", seconds=4.0, fps=25)
    env = {"OPENMPS_URL": api_url, "OPENMPS_ACCESS_KEY": key.id, "OPENMPS_SECRET": key.secret}
    worker = WorkerProcess(settings, tmp_path).start()
    try:
        args = ("jobs", "submit", str(video.path), "--mode", "points", "--points", "1000,2000,3000")
        code, stdout, stderr = run(*args, "--output", "out/cli/{JobId}/{Count}.jpg", "--wait", env=env)
    finally:
        worker.stop()
    assert code == 0, stderr
    assert "uploading" in stderr and stderr.strip().splitlines()[-1].split()[1:] == ["succeeded", "images", "3/3"]
    head, *paths = stdout.splitlines()
    job_id = head.split("\t")[0]
    assert head.split("\t")[1:] == ["succeeded", "3/3 images"]
    for url, frame in zip(paths, (25, 50, 75), strict=True):
        signed = urlsplit(url)
        body = httpx.get(f"{api_url}{signed.path}?{signed.query}").content
        assert read_frame_index(cv2.imdecode(np.frombuffer(body, np.uint8), cv2.IMREAD_COLOR)) == frame
    # the same job through show/list, as text and as JSON
    code, stdout, _ = run("--url", api_url, "--key", key.id, "--secret", key.secret, "jobs", "show", job_id, "--json")
    assert code == 0 and json.loads(stdout)["state"] == "succeeded"
    code, stdout, _ = run("jobs", "list", "--json", env=env)
    assert code == 0 and [j["id"] for j in json.loads(stdout)["jobs"]] == [job_id]
    code, stdout, _ = run("jobs", "list", env=env)
    assert code == 0 and job_id in stdout and "succeeded" in stdout
    written = services.jobs.written(job_id)
    assert len(written) == 3
    code, stdout, _ = run("jobs", "delete", job_id, "--outputs", env=env)
    assert (code, stdout) == (0, f"{job_id}\tdeleted\n")
    assert all(services.objects.stat(bucket, key) is None for bucket, key in written)
    code, _, stderr = run("jobs", "show", job_id, env=env)
    assert code == 1 and stderr.startswith("openmps: JobNotFound: ")


def test_submit_a_url_with_wait_reads_it_through_the_worker(
    api_url: str, key: AccessKey, services: Services, settings: Settings, tmp_path: Path
) -> None:
    """An http(s) SOURCE becomes a URL input (private addresses allowed here, as in a dev stack);
    without --output the images go to the --upload-to bucket."""
    video = make_video(tmp_path / "v.mp4", seconds=4.0, fps=25)
    media = MediaServer()
    media.objects["/clip.mp4"] = video.path.read_bytes()
    media.start()
    env = {"OPENMPS_URL": api_url, "OPENMPS_ACCESS_KEY": key.id, "OPENMPS_SECRET": key.secret}
    worker = WorkerProcess(settings, tmp_path).start()
    try:
        args = ("jobs", "submit", media.url("/clip.mp4?t=1"), "--mode", "single", "--time-ms", "2000")
        code, stdout, stderr = run(*args, "--wait", "--json", env=env)
    finally:
        worker.stop()
        media.stop()
    assert code == 0, stderr
    job = json.loads(stdout)
    assert job["state"] == "succeeded" and job["spec"]["input"] == {"url": media.url("/clip.mp4?t=1")}
    image = job["manifest"]["images"][0]
    assert image["key"].startswith(f"snapshots/{job['id']}/")
    data = services.objects.get("media", image["key"])
    assert read_frame_index(cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)) == video.frame_at(2000)
    assert media.requests_for("/clip.mp4")  # the worker read it from the server


def test_pipelines_through_the_api(api_url: str, key: AccessKey) -> None:
    env = {"OPENMPS_URL": api_url, "OPENMPS_ACCESS_KEY": key.id, "OPENMPS_SECRET": key.secret}
    code, stdout, _ = run("pipelines", "create", "thumbs", "--max-concurrency", "2", "--json", env=env)
    assert code == 0
    created = json.loads(stdout)
    assert (created["name"], created["max_concurrency"]) == ("thumbs", 2)
    code, stdout, _ = run("pipelines", "pause", created["id"], env=env)
    assert (code, stdout) == (0, f"{created['id']}\tpaused\n")
    code, stdout, _ = run("pipelines", "list", "--json", env=env)
    rows = {p["id"]: p for p in json.loads(stdout)}
    assert rows[created["id"]]["state"] == "paused" and rows[created["id"]]["depth"] == {"queued": 0, "running": 0}
    code, stdout, _ = run("pipelines", "show", created["id"], env=env)
    assert code == 0 and stdout.startswith(f"{created['id']}\tthumbs\tpaused\tcpu\tqueued=0")
    code, _, _ = run("pipelines", "resume", created["id"], env=env)
    assert code == 0
    code, stdout, _ = run("pipelines", "delete", created["id"], env=env)
    assert (code, stdout) == (0, f"{created['id']}\tdeleted\n")
    code, _, stderr = run("pipelines", "show", created["id"], env=env)
    assert code == 1 and stderr.startswith("openmps: PipelineNotFound: ")


def test_errors_are_one_line_with_a_nonzero_exit(api_url: str, key: AccessKey) -> None:
    cases = [
        ({"OPENMPS_URL": api_url, "OPENMPS_ACCESS_KEY": key.id, "OPENMPS_SECRET": "wrong"}, ["jobs", "list"], 1),
        (
            {"OPENMPS_URL": api_url, "OPENMPS_ACCESS_KEY": key.id, "OPENMPS_SECRET": key.secret},
            ["jobs", "show", "x"],
            1,
        ),
        (
            {"OPENMPS_URL": f"http://127.0.0.1:{free_port()}", "OPENMPS_ACCESS_KEY": "k", "OPENMPS_SECRET": "s"},
            ["jobs", "list"],
            3,
        ),
        ({}, ["jobs", "list"], 2),  # no API configured and no running stack
        (
            {"OPENMPS_URL": api_url, "OPENMPS_ACCESS_KEY": key.id, "OPENMPS_SECRET": key.secret},
            ["jobs", "submit", "nobucketkey"],
            2,
        ),
        (
            {"OPENMPS_URL": api_url, "OPENMPS_ACCESS_KEY": key.id, "OPENMPS_SECRET": key.secret},
            ["jobs", "submit", "http://169.254.169.254/latest/meta-data/"],
            1,
        ),
    ]
    expected = ["InvalidAccessKey", "JobNotFound", "cannot reach", "no API to talk to", "BUCKET/KEY", "link-local"]
    for (env, args, code), text in zip(cases, expected, strict=True):
        got, stdout, stderr = run(*args, env=env)
        assert got == code, (args, stdout, stderr)
        assert stderr.startswith("openmps: ") and len(stderr.strip().splitlines()) == 1 and text in stderr, stderr
        assert "Traceback" not in stderr + stdout


def test_version_and_the_console_entry_point(capsys: pytest.CaptureFixture[str]) -> None:
    code, stdout, _ = run("--version")
    assert code == 0 and stdout.strip() == f"openmps, version {version('openmps')}"
    assert main(["jobs", "list"]) == 2  # main() returns click's exit code instead of raising
    assert capsys.readouterr().err.startswith("openmps: no API to talk to")
    assert main(["secrets", "generate-key", "--json"]) == 0
    assert len(json.loads(capsys.readouterr().out)["secret_key"]) > 20
