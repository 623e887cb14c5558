"""Real Celery worker processes for integration tests (``celery ... worker`` as a subprocess)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

from app.settings import Settings

REPO = Path(__file__).resolve().parent.parent


def settings_env(settings: Settings) -> dict[str, str]:
    """The OPENMPS_* environment that reproduces ``settings`` in a child process."""
    env = {
        "OPENMPS_REDIS_URL": settings.redis_url,
        "OPENMPS_DATA_DIR": str(settings.data_dir),
        "OPENMPS_STORAGE": settings.storage,
        "OPENMPS_S3_ENDPOINT": settings.s3_endpoint,
        "OPENMPS_S3_ACCESS_KEY": settings.s3_access_key,
        "OPENMPS_S3_SECRET_KEY": settings.s3_secret_key,
        "OPENMPS_S3_REGION": settings.s3_region or "",
        "OPENMPS_LEASE_TTL_S": str(settings.lease_ttl_s),
        "OPENMPS_HEARTBEAT_S": str(settings.heartbeat_interval_s),
        "OPENMPS_MAX_ATTEMPTS": str(settings.max_attempts),
        "OPENMPS_DISPATCH_WINDOW": str(settings.dispatch_window),
        "OPENMPS_QUEUE_SYNC_S": str(settings.queue_sync_interval_s),
        "OPENMPS_JOB_TIMEOUT_S": str(settings.job_soft_time_limit_s),
        "OPENMPS_JOB_HARD_TIMEOUT_S": str(settings.job_time_limit_s),
        "OPENMPS_MAX_FRAME_PIXELS": str(settings.max_frame_pixels),
        "OPENMPS_MAX_DECODED_FRAMES": str(settings.max_decoded_frames),
        "OPENMPS_NOTIFY_TIME_SCALE": str(settings.notify_time_scale),
        "OPENMPS_ALLOW_PRIVATE_ENDPOINTS": "true" if settings.allow_private_endpoints else "false",
        "OPENMPS_ALLOW_URL_INPUTS": "true" if settings.allow_url_inputs else "false",
        "OPENMPS_MAX_URL_INPUT_BYTES": str(settings.max_url_input_bytes),
        "OPENMPS_URL_INPUT_TIMEOUT_S": str(settings.url_input_timeout_s),
        "OPENMPS_WORKER_CLASS": settings.worker_class,
        "OPENMPS_SECRET_KEY": ",".join(settings.secret_keys),
        "OPENMPS_URL_TTL_S": str(settings.url_ttl_s),
        "OPENMPS_LOG_FORMAT": settings.log_format,
        "OPENMPS_JOB_RETENTION_DAYS": repr(settings.job_retention_s / 86400),
    }
    if settings.public_url:
        env["OPENMPS_PUBLIC_URL"] = settings.public_url
    return env


class WorkerProcess:
    """One ``celery worker`` (prefork) in its own process group, logging to a file."""

    def __init__(
        self,
        settings: Settings,
        log_dir: Path,
        *,
        concurrency: int = 1,
        worker_class: str = "cpu",
        extra_env: dict[str, str] | None = None,
    ) -> None:
        self.name = f"w{uuid.uuid4().hex[:6]}"
        self.log_path = log_dir / f"{self.name}.log"
        env = {
            **os.environ,
            **settings_env(settings),
            "OPENMPS_WORKER_CLASS": worker_class,
            "PYTHONPATH": str(REPO),
            **(extra_env or {}),
        }
        self.cmd = [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "workers.celery_app:celery_app",
            "worker",
            "--loglevel",
            "INFO",
            "--concurrency",
            str(concurrency),
            "--pool",
            "prefork",
            "--hostname",
            f"{self.name}@test",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
        ]
        self.env = env
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 60.0) -> WorkerProcess:
        log = open(self.log_path, "ab")  # noqa: SIM115 - closed by the OS when the child exits
        self.proc = subprocess.Popen(
            self.cmd, env=self.env, cwd=REPO, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        deadline = time.monotonic() + timeout
        while b"ready." not in self.log_path.read_bytes():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"worker did not start:\n{self.log()}")
            time.sleep(0.1)
        return self

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-6000:]

    def kill(self) -> None:
        """SIGKILL the whole worker (main process and its pool children): a crash, not a shutdown."""
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        """Celery's warm shutdown: SIGTERM to the main process alone, which lets its pool finish
        and hand back every task's result before it ends the pool. (SIGTERM to the whole group
        also ended a pool child whose last result the main process had not read yet, which it
        then logged as a WorkerLostError traceback.) Anything left after 20 s is SIGKILLed."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                pass
        if self.proc:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)  # pool children the shutdown left behind
            except ProcessLookupError:
                pass
            if self.proc.poll() is None:
                self.proc.wait(10)
