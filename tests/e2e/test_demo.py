"""``make demo`` (``python -m app.devstack demo``) end to end, as a fresh checkout runs it: every
mode through the HTTP API, completion messages from the MNS queue, and the command-line path
(upload a local file, submit, wait with progress, fetch an output URL)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from app.devstack import free_port
from tests.workerproc import REPO


def test_make_demo_succeeds_through_the_api_the_queue_and_the_command_line(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENMPS_")}
    env.update({"OPENMPS_DATA_DIR": str(tmp_path / "demo"), "OPENMPS_PORT": str(free_port()), "PYTHONPATH": str(REPO)})
    done = subprocess.run(
        [sys.executable, "-m", "app.devstack", "demo"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    assert "command line: openmps jobs submit" in done.stdout
    assert "succeeded\t6/6 images" in done.stdout
    assert "bytes of image/jpeg" in done.stdout
    assert "command line ok" in done.stdout
    assert "Traceback" not in done.stdout + done.stderr
