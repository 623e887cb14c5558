"""The ``openmps`` console script as a real subprocess against ``make up`` (gunicorn API, Celery
worker): run from the checkout with no OPENMPS_* variable at all, it finds the stack by itself."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from urllib.parse import urlsplit

import cv2
import httpx
import numpy as np

from app.devstack import free_port, make_sample_video
from tests.devstackproc import DevStack


def openmps(stack: DevStack, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("OPENMPS_")}
    return subprocess.run(
        [str(stack.home / ".venv" / "bin" / "openmps"), *args],
        cwd=stack.home,
        env={**base, **(env or {})},
        capture_output=True,
        text=True,
        timeout=180,
    )


def test_submit_a_local_file_with_wait_shows_progress_and_ends_with_the_output_urls(
    devstack: DevStack, tmp_path: Path
) -> None:
    video = tmp_path / "holiday clip.mp4"
    make_sample_video(video, seconds=6)
    done = openmps(
        devstack, "jobs", "submit", str(video), "--mode", "average", "--count", "6", "--width", "160", "--wait"
    )
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    progress = [line for line in done.stderr.splitlines() if " images " in line]
    assert progress and progress[-1].split()[1:] == ["succeeded", "images", "6/6"]
    head, *urls = done.stdout.splitlines()
    assert head.split("\t")[1:] == ["succeeded", "6/6 images"]
    assert len(urls) == 6
    for url in urls:
        body = httpx.get(url).content  # signed: no key needed
        assert cv2.imdecode(np.frombuffer(body, np.uint8), cv2.IMREAD_COLOR).shape[1] == 160
    assert urlsplit(urls[0]).netloc == urlsplit(devstack.exports["OPENMPS_URL"]).netloc


def test_json_output_parses(devstack: DevStack) -> None:
    listed = openmps(devstack, "jobs", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    jobs = json.loads(listed.stdout)["jobs"]
    shown = openmps(devstack, "--json", "jobs", "show", jobs[0]["id"]) if jobs else None
    if shown is not None:
        assert shown.returncode == 0 and json.loads(shown.stdout)["id"] == jobs[0]["id"]
    pipelines = openmps(devstack, "pipelines", "list", "--json")
    assert pipelines.returncode == 0 and "depth" in json.loads(pipelines.stdout)[0]


def test_bad_key_unknown_job_and_unreachable_api_are_one_line_errors(devstack: DevStack) -> None:
    cases = [
        (["--key", "nope", "--secret", "wrong", "jobs", "list"], None, 1, "InvalidAccessKey"),
        (["jobs", "show", "0" * 32], None, 1, "JobNotFound"),
        (["jobs", "list"], {"OPENMPS_URL": f"http://127.0.0.1:{free_port()}"}, 3, "cannot reach"),
    ]
    key = (devstack.data_dir / "secret.key").read_text().strip()
    cases += [
        (["keys", "list"], {"OPENMPS_REDIS_URL": f"redis://127.0.0.1:{free_port()}/0"}, 2, "OPENMPS_SECRET_KEY"),
        (
            ["keys", "list"],
            {"OPENMPS_REDIS_URL": f"redis://127.0.0.1:{free_port()}/0", "OPENMPS_SECRET_KEY": key},
            3,
            "unreachable",
        ),
    ]
    for args, env, code, text in cases:
        done = openmps(devstack, *args, env=env)
        assert done.returncode == code, (args, done.stdout, done.stderr)
        assert len(done.stderr.strip().splitlines()) == 1 and text in done.stderr, (args, done.stderr)
        assert done.stderr.startswith("openmps: ")


def test_on_a_terminal_the_progress_is_a_live_bar(devstack: DevStack) -> None:
    # rich treats the pipe as an interactive terminal with these (what a shell on a tty gets)
    tty = {"TTY_COMPATIBLE": "1", "TTY_INTERACTIVE": "1"}
    done = openmps(devstack, "jobs", "submit", "media/samples/sample.mp4", "--count", "8", "--wait", env=tty)
    assert done.returncode == 0, done.stderr
    frames = [line for line in done.stderr.split("\n") if "images" in line]
    assert "━" in frames[-1] and "succeeded" in frames[-1] and "8/8" in frames[-1]
    assert done.stdout.splitlines()[0].split("\t")[1:] == ["succeeded", "8/8 images"]
