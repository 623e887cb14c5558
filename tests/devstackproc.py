"""``python -m app.devstack up`` (what ``make up`` runs) as a real subprocess on a free port, with
its own data dir under a scratch "checkout" folder, for tests that follow the README as a user would."""

from __future__ import annotations

import os
import re
import shlex
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from app.devstack import free_port
from tests.workerproc import REPO


@dataclass
class DevStack:
    home: Path  # plays the checkout: has .venv/bin/openmps and var/dev (the stack's data dir)
    proc: subprocess.Popen[str]
    exports: dict[str, str] = field(default_factory=dict)
    output: list[str] = field(default_factory=list)

    @property
    def data_dir(self) -> Path:
        return self.home / "var" / "dev"

    def shell_env(self) -> dict[str, str]:
        """A user's shell after pasting the printed export lines (and no other OPENMPS_* variable)."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("OPENMPS_")}
        return {**env, **self.exports}

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)


def install_cli(home: Path) -> None:
    """``home/.venv/bin/openmps``: this checkout's console script, run by the test's interpreter."""
    bin_dir = home / ".venv" / "bin"
    bin_dir.mkdir(parents=True, exist_ok=True)
    script = bin_dir / "openmps"
    script.write_text(
        f'#!/bin/sh\nPYTHONPATH={shlex.quote(str(REPO))} exec {shlex.quote(sys.executable)} -m app.cli "$@"\n'
    )
    script.chmod(0o755)


def start_devstack(home: Path, timeout_s: float = 90.0) -> DevStack:
    install_cli(home)
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENMPS_")}
    env.update(
        {"OPENMPS_DATA_DIR": str(home / "var" / "dev"), "OPENMPS_PORT": str(free_port()), "PYTHONPATH": str(REPO)}
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "app.devstack", "up"],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    stack = DevStack(home, proc)
    deadline = time.monotonic() + timeout_s
    assert proc.stdout is not None
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            stack.stop()
            raise RuntimeError("make up exited before it was ready:\n" + "".join(stack.output))
        stack.output.append(line)
        if line.startswith("export "):
            for name, value in (part.split("=", 1) for part in shlex.split(line[len("export ") :])):
                stack.exports[name] = value
            return stack
    stack.stop()
    raise RuntimeError("make up printed no export line in time:\n" + "".join(stack.output))


def readme_blocks(text: str, marker: str = "<!-- quickstart -->") -> list[str]:
    """The fenced ```sh blocks right after ``marker`` in the README, in order."""
    pattern = re.compile(re.escape(marker) + r"\s*\n```sh\n(.*?)\n```", re.S)
    return pattern.findall(text)
