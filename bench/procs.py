"""Processes the scale benchmarks start: a private redis-server, gunicorn, and their cleanup.

Everything binds to 127.0.0.1 on free ports (the fleet benchmark adds addresses inside network
namespaces it creates), runs in its own process group, and is stopped by ``Procs.stop`` (also
when the benchmark fails: use it as a context manager).
"""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType

import redis

from app.devstack import free_port, redis_binary

ROOT = Path(__file__).resolve().parent.parent


def wait_for(probe: Callable[[], object], what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            probe()
            return
        except Exception as exc:  # not up yet
            last = exc
            time.sleep(0.1)
    raise SystemExit(f"{what} did not come up in {timeout:.0f} s: {last}")


def procfile_gunicorn_options() -> list[str]:
    """The Procfile's ``web`` gunicorn options (workers, threads, worker class ...) without
    ``--bind`` and the app, so the benchmark serves under exactly the deployed configuration.
    ``BENCH_GUNICORN`` (e.g. ``--workers 3 --threads 2``) replaces the workers/threads part, to
    compare configurations before one is written into the Procfile."""
    override = os.environ.get("BENCH_GUNICORN")
    if override:
        return ["-c", "python:app.web.gunicorn_config", *shlex.split(override)]
    for line in (ROOT / "Procfile").read_text().splitlines():
        if line.startswith("web:"):
            args = shlex.split(line.split(":", 1)[1])
            break
    else:
        raise SystemExit("Procfile has no web: line")
    args = args[args.index("gunicorn") + 1 :]
    out: list[str] = []
    skip = False
    for a in args[:-1]:  # the last argument is the app
        if skip:
            skip = False
            continue
        if a in ("--bind", "-b"):
            skip = True
            continue
        if a.startswith("--bind="):
            continue
        out.append(a)
    return out


class Procs:
    """Child processes started by one benchmark run, stopped together."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.children: list[tuple[str, subprocess.Popen[bytes]]] = []
        workdir.mkdir(parents=True, exist_ok=True)

    def __enter__(self) -> Procs:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()

    def spawn(self, name: str, cmd: list[str], env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
        log = open(self.workdir / f"{name}.log", "ab")  # noqa: SIM115 - lives as long as the child
        proc = subprocess.Popen(
            cmd,
            env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            cwd=ROOT,
        )
        self.children.append((name, proc))
        return proc

    def redis(self, name: str = "redis", *, bind: str = "127.0.0.1") -> str:
        """A private redis-server configured as deploy/docker-compose.yml runs it (AOF every second)."""
        port = free_port()
        data = self.workdir / name
        data.mkdir(exist_ok=True)
        cmd = [redis_binary(), "--bind", bind, "--port", str(port), "--dir", str(data), "--save", ""]
        cmd += ["--appendonly", "yes", "--appendfsync", "everysec", "--maxmemory-policy", "noeviction"]
        cmd += ["--protected-mode", "no"]
        self.spawn(name, cmd)
        url = f"redis://{bind}:{port}/0"
        wait_for(lambda: redis.Redis.from_url(url).ping(), "redis-server")
        return url

    def gunicorn(self, name: str, app: str, env: dict[str, str]) -> str:
        port = free_port()
        cmd = [sys.executable, "-m", "gunicorn", *procfile_gunicorn_options(), "--bind", f"127.0.0.1:{port}", app]
        self.spawn(name, cmd, env)
        return f"http://127.0.0.1:{port}"

    def stop(self) -> None:
        for _, proc in reversed(self.children):
            if proc.poll() is None:
                try:
                    os.killpg(proc.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
        deadline = time.monotonic() + 15
        for _, proc in reversed(self.children):
            try:
                proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                proc.wait()
        self.children.clear()
