"""The README's quick start, run as written: the blocks marked ``<!-- quickstart -->`` are taken
from README.md itself and run with bash against ``make up`` (a real stack: private redis-server,
gunicorn API, Celery worker, notifier), in a shell holding only the export lines it printed."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import httpx

from app.settings import STACK_FILE
from tests.devstackproc import DevStack, readme_blocks, start_devstack
from tests.workerproc import REPO


def test_make_up_prints_exports_seeds_the_sample_and_writes_its_stack_file(devstack: DevStack) -> None:
    assert set(devstack.exports) == {"OPENMPS_URL", "OPENMPS_ACCESS_KEY", "OPENMPS_SECRET"}
    info = json.loads((devstack.data_dir / STACK_FILE).read_text())
    assert info["url"] == devstack.exports["OPENMPS_URL"]
    assert info["access_key_id"] == devstack.exports["OPENMPS_ACCESS_KEY"]
    assert info["redis_url"].startswith("redis://127.0.0.1:")
    assert (devstack.data_dir / STACK_FILE).stat().st_mode & 0o077 == 0  # it holds a secret
    sample = devstack.data_dir / "objects" / "media" / "samples" / "sample.mp4"
    assert sample.stat().st_size > 10_000


def test_every_quick_start_block_in_the_readme_runs_as_written(devstack: DevStack) -> None:
    blocks = readme_blocks((REPO / "README.md").read_text())
    assert len(blocks) >= 3, "the README lost its marked quick-start blocks"
    jobs = 0
    for block in blocks:
        done = subprocess.run(
            ["bash", "-e", "-o", "pipefail", "-c", block],
            cwd=devstack.home,
            env=devstack.shell_env(),
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, f"README block failed ({done.returncode}):\n{block}\n{done.stdout}\n{done.stderr}"
        assert "Traceback" not in done.stderr
        for line in done.stdout.splitlines():
            if line.startswith("{") and '"state"' in line:  # a job the block submitted
                assert json.loads(line)["state"] == "succeeded", line
                jobs += 1
    assert jobs >= 2  # the quick start's and the Submitting a job section's curl, finished within wait
    # `openmps keys create` found the running stack by itself: the pair it made works against the API
    auth = ("testAccessKeyId", "testAccessKeySecret")
    assert httpx.get(devstack.exports["OPENMPS_URL"] + "/api/v1/jobs", auth=auth).status_code == 200


def test_the_stack_file_goes_away_when_the_stack_stops(tmp_path: Path) -> None:
    stack = start_devstack(tmp_path)
    try:
        assert httpx.get(stack.exports["OPENMPS_URL"] + "/healthz").status_code == 200
        assert (stack.data_dir / STACK_FILE).exists()
    finally:
        stack.stop()
    assert stack.proc.returncode == 0
    assert not (stack.data_dir / STACK_FILE).exists()
