"""Settings: the only reader of ``os.environ``.

Read once (``Settings.from_env()``) by each process's entry point and passed down. Every
variable is listed, with its default, in the README's configuration table.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any


class SettingsError(ValueError):
    """A variable holds a value no process could run with; the message names the variable."""


def _bool(value: str) -> bool:
    return value.strip().lower() in {"1", "true", "yes", "on"}


def _dialect_ports(raw: str) -> tuple[tuple[str, int], ...]:
    """``mts=8101,jdcloud=8102`` -> (("mts", 8101), ("jdcloud", 8102))."""
    pairs: list[tuple[str, int]] = []
    for item in raw.split(","):
        if not item.strip():
            continue
        name, sep, port = item.partition("=")
        if not sep or not port.strip().isdigit():
            raise SettingsError(f"OPENMPS_DIALECT_PORTS must look like 'mts=8101,jdcloud=8102', got {raw!r}")
        pairs.append((name.strip(), int(port)))
    return tuple(pairs)


def _retention_s(raw: str) -> float:
    """``OPENMPS_JOB_RETENTION_DAYS`` (fractions allowed) -> seconds; must be a finite number > 0."""
    if not raw.strip():
        return Settings.job_retention_s
    try:
        days = float(raw)
    except ValueError:
        days = math.nan
    if not (math.isfinite(days) and days > 0):
        raise SettingsError(f"OPENMPS_JOB_RETENTION_DAYS must be a number of days > 0, got {raw!r}")
    return days * 86400.0


WORKER_CLASSES = ("cpu", "gpu")


def _worker_classes(raw: str) -> tuple[str, ...]:
    """``cpu,gpu`` -> ("cpu", "gpu"); empty = /readyz checks no workers."""
    found = tuple(dict.fromkeys(c.strip() for c in raw.split(",") if c.strip()))
    unknown = [c for c in found if c not in WORKER_CLASSES]
    if unknown:
        raise ValueError(f"OPENMPS_READY_WORKER_CLASSES may name {' and '.join(WORKER_CLASSES)}, got {raw!r}")
    return found


def _non_negative(name: str, value: int) -> int:
    if value < 0:
        raise ValueError(f"{name} must be >= 0, got {value}")
    return value


def usable_cpus() -> int:
    """CPUs this process may run on (its affinity mask, e.g. a container's cpuset)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not on Linux
        return os.cpu_count() or 1


@dataclass(frozen=True)
class Settings:
    redis_url: str = "redis://127.0.0.1:6379/0"
    broker_url: str | None = None  # defaults to redis_url
    data_dir: Path = Path("var")
    host: str = "127.0.0.1"
    port: int = 8080
    public_url: str | None = None  # how others reach the API (signing-cert URL, LastUrl); defaults to http://host:port

    storage: str = "local"  # "local" | "s3"
    s3_endpoint: str = "127.0.0.1:9000"
    s3_access_key: str = ""
    s3_secret_key: str = ""
    s3_region: str | None = None
    s3_secure: bool = False

    job_soft_time_limit_s: int = 540  # SnapshotTimeout for one job (wall time)
    job_time_limit_s: int = 600  # hard kill of the task; must stay below visibility_timeout_s
    visibility_timeout_s: int = 1800
    max_attempts: int = 3  # a job that crashes its worker this many times fails (WorkerLost)
    lease_ttl_s: float = 15.0  # a running job's heartbeat lease; expiry = its worker died
    heartbeat_interval_s: float = 3.0
    dispatch_window: int = 2  # task messages in flight per pipeline (see the scheduling policy)
    worker_concurrency: int = 2
    decode_threads: int = 0  # per job; 0 = the host's CPUs shared by its running jobs (workers/frames/cores.py)
    worker_class: str = "cpu"  # "cpu" | "gpu": which pipelines' queues this worker consumes
    queue_sync_interval_s: float = 2.0  # how often workers pick up new pipelines' queues

    max_frame_pixels: int = 8192 * 8192
    max_decoded_frames: int = 200_000

    notify_time_scale: float = 1.0  # multiplies every retry interval; tests use e.g. 0.01
    allow_private_endpoints: bool = False  # SSRF guard off: private webhooks and URL inputs (dev, tests)
    allow_url_inputs: bool = True  # jobs may name an http(s) URL as their input
    max_url_input_bytes: int = 50 << 30  # a larger URL input fails the job (InputTooLarge)
    url_input_timeout_s: float = 30.0  # one request to a URL input: connect, and the whole response
    request_clock_skew_s: int = 900
    notify_lease_s: float = 30.0  # an outbox entry or push attempt held this long by a dead notifier is retried
    notify_concurrency: int = 8  # concurrent HTTP push attempts per notifier process
    object_url_base: str | None = None  # prefix of LastUrl/UrlPattern in completion messages
    dialects: tuple[str, ...] = ()  # API dialects to mount; empty = every installed one
    dialect_ports: tuple[tuple[str, int], ...] = ()  # (dialect, port): also serve it alone on that port
    throttle_rate: float = 50.0  # requests per second per access key (0 = no throttling)
    throttle_burst: int = 50  # requests one access key may send at once
    mts_sync_budget_s: float = 5.0  # MPS sync SubmitSnapshotJob: longer -> SnapshotTimeOut (SDKs time out at 10 s)
    secret_keys: tuple[str, ...] = ()  # OPENMPS_SECRET_KEY: the first seals secrets at rest and signs URLs, all open
    url_ttl_s: int = 3600  # lifetime of signed/presigned object URLs
    max_upload_bytes: int = 1 << 30  # largest object PUT /api/v1/objects/... accepts
    log_format: str = "text"  # "text" | "json" (app/logs.py)
    job_retention_s: float = 30 * 86400.0  # finished jobs are forgotten this long after they end
    cache_ttl_s: float = 2.0  # submit-path lookups kept this long per process (app/storage/cache.py); 0 = off

    console_secret: str | None = None  # signs console sessions; None = a random key kept in Redis
    task_events: bool = True  # Celery task events (what Flower shows)
    metrics_port: int = 0  # workers and the notifier serve /metrics on HOST:this port; 0 = off
    # prometheus-client's own variable (it reads it too): where processes of one host write their
    # metric files, so any process can report them all (gunicorn's workers, Celery's pool children).
    prometheus_multiproc_dir: Path | None = None
    ready_worker_classes: tuple[str, ...] = ("cpu",)  # /readyz needs a live worker of each
    ready_bucket: str | None = None  # /readyz asks the object store about it; None = a made-up name
    metrics_token: str | None = None  # the API's /metrics asks for it as a bearer token; None = open

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        d = cls()
        get = env.get

        def num(name: str, default: Any, kind: type) -> Any:
            raw = get(name)
            if raw in (None, ""):
                return default
            try:
                value = kind(raw)
            except ValueError:
                noun = "an integer" if kind is int else "a number"
                raise SettingsError(f"{name} must be {noun}, got {raw!r}") from None
            if kind is float and not math.isfinite(value):
                raise SettingsError(f"{name} must be a finite number, got {raw!r}")
            return value

        redis_url = get("OPENMPS_REDIS_URL", d.redis_url)
        settings = cls(
            redis_url=redis_url,
            broker_url=get("OPENMPS_BROKER_URL") or None,
            data_dir=Path(get("OPENMPS_DATA_DIR", str(d.data_dir))),
            host=get("OPENMPS_HOST", d.host),
            port=num("OPENMPS_PORT", d.port, int),
            public_url=get("OPENMPS_PUBLIC_URL") or None,
            storage=get("OPENMPS_STORAGE", d.storage),
            s3_endpoint=get("OPENMPS_S3_ENDPOINT", d.s3_endpoint),
            s3_access_key=get("OPENMPS_S3_ACCESS_KEY", d.s3_access_key),
            s3_secret_key=get("OPENMPS_S3_SECRET_KEY", d.s3_secret_key),
            s3_region=get("OPENMPS_S3_REGION") or None,
            s3_secure=_bool(get("OPENMPS_S3_SECURE", "false")),
            job_soft_time_limit_s=num("OPENMPS_JOB_TIMEOUT_S", d.job_soft_time_limit_s, int),
            job_time_limit_s=num("OPENMPS_JOB_HARD_TIMEOUT_S", d.job_time_limit_s, int),
            visibility_timeout_s=num("OPENMPS_VISIBILITY_TIMEOUT_S", d.visibility_timeout_s, int),
            max_attempts=num("OPENMPS_MAX_ATTEMPTS", d.max_attempts, int),
            lease_ttl_s=num("OPENMPS_LEASE_TTL_S", d.lease_ttl_s, float),
            heartbeat_interval_s=num("OPENMPS_HEARTBEAT_S", d.heartbeat_interval_s, float),
            dispatch_window=num("OPENMPS_DISPATCH_WINDOW", d.dispatch_window, int),
            worker_concurrency=num("OPENMPS_WORKER_CONCURRENCY", d.worker_concurrency, int),
            decode_threads=_non_negative("OPENMPS_DECODE_THREADS", num("OPENMPS_DECODE_THREADS", 0, int)),
            worker_class=get("OPENMPS_WORKER_CLASS", d.worker_class),
            queue_sync_interval_s=num("OPENMPS_QUEUE_SYNC_S", d.queue_sync_interval_s, float),
            max_frame_pixels=num("OPENMPS_MAX_FRAME_PIXELS", d.max_frame_pixels, int),
            max_decoded_frames=num("OPENMPS_MAX_DECODED_FRAMES", d.max_decoded_frames, int),
            notify_time_scale=num("OPENMPS_NOTIFY_TIME_SCALE", d.notify_time_scale, float),
            allow_private_endpoints=_bool(get("OPENMPS_ALLOW_PRIVATE_ENDPOINTS", "false")),
            allow_url_inputs=_bool(get("OPENMPS_ALLOW_URL_INPUTS", "true")),
            max_url_input_bytes=num("OPENMPS_MAX_URL_INPUT_BYTES", d.max_url_input_bytes, int),
            url_input_timeout_s=num("OPENMPS_URL_INPUT_TIMEOUT_S", d.url_input_timeout_s, float),
            request_clock_skew_s=num("OPENMPS_CLOCK_SKEW_S", d.request_clock_skew_s, int),
            notify_lease_s=num("OPENMPS_NOTIFY_LEASE_S", d.notify_lease_s, float),
            notify_concurrency=num("OPENMPS_NOTIFY_CONCURRENCY", d.notify_concurrency, int),
            object_url_base=get("OPENMPS_OBJECT_URL_BASE") or None,
            dialects=tuple(n.strip() for n in get("OPENMPS_DIALECTS", "").split(",") if n.strip()),
            dialect_ports=_dialect_ports(get("OPENMPS_DIALECT_PORTS", "")),
            throttle_rate=num("OPENMPS_THROTTLE_RATE", d.throttle_rate, float),
            throttle_burst=num("OPENMPS_THROTTLE_BURST", d.throttle_burst, int),
            mts_sync_budget_s=num("OPENMPS_MTS_SYNC_BUDGET_S", d.mts_sync_budget_s, float),
            secret_keys=tuple(k.strip() for k in get("OPENMPS_SECRET_KEY", "").split(",") if k.strip()),
            url_ttl_s=num("OPENMPS_URL_TTL_S", d.url_ttl_s, int),
            max_upload_bytes=num("OPENMPS_MAX_UPLOAD_BYTES", d.max_upload_bytes, int),
            log_format=get("OPENMPS_LOG_FORMAT") or d.log_format,
            job_retention_s=_retention_s(get("OPENMPS_JOB_RETENTION_DAYS", "")),
            cache_ttl_s=num("OPENMPS_CACHE_TTL_S", d.cache_ttl_s, float),
            console_secret=get("OPENMPS_CONSOLE_SECRET") or None,
            task_events=_bool(get("OPENMPS_TASK_EVENTS", "true")),
            metrics_port=num("OPENMPS_METRICS_PORT", d.metrics_port, int),
            prometheus_multiproc_dir=Path(get("PROMETHEUS_MULTIPROC_DIR", ""))
            if get("PROMETHEUS_MULTIPROC_DIR")
            else None,
            ready_bucket=get("OPENMPS_READY_BUCKET") or None,
            metrics_token=get("OPENMPS_METRICS_TOKEN") or None,
            ready_worker_classes=_worker_classes(get("OPENMPS_READY_WORKER_CLASSES", ",".join(d.ready_worker_classes))),
        )
        settings.validate()
        return settings

    def validate(self) -> None:
        """Refuse values no process could run with, naming the variable (checked once at start)."""
        choices = {
            "OPENMPS_STORAGE": (self.storage, ("local", "s3")),
            "OPENMPS_WORKER_CLASS": (self.worker_class, ("cpu", "gpu")),
            "OPENMPS_LOG_FORMAT": (self.log_format, ("text", "json")),
        }
        for name, (value, allowed) in choices.items():
            if value not in allowed:
                raise SettingsError(f"{name} must be one of {', '.join(allowed)}, got {value!r}")
        positive = {
            "OPENMPS_PORT": self.port,
            "OPENMPS_JOB_TIMEOUT_S": self.job_soft_time_limit_s,
            "OPENMPS_JOB_HARD_TIMEOUT_S": self.job_time_limit_s,
            "OPENMPS_VISIBILITY_TIMEOUT_S": self.visibility_timeout_s,
            "OPENMPS_MAX_ATTEMPTS": self.max_attempts,
            "OPENMPS_LEASE_TTL_S": self.lease_ttl_s,
            "OPENMPS_HEARTBEAT_S": self.heartbeat_interval_s,
            "OPENMPS_DISPATCH_WINDOW": self.dispatch_window,
            "OPENMPS_WORKER_CONCURRENCY": self.worker_concurrency,
            "OPENMPS_QUEUE_SYNC_S": self.queue_sync_interval_s,
            "OPENMPS_MAX_UPLOAD_BYTES": self.max_upload_bytes,
            "OPENMPS_MAX_URL_INPUT_BYTES": self.max_url_input_bytes,
            "OPENMPS_URL_INPUT_TIMEOUT_S": self.url_input_timeout_s,
            "OPENMPS_NOTIFY_TIME_SCALE": self.notify_time_scale,
            "OPENMPS_CLOCK_SKEW_S": self.request_clock_skew_s,
            "OPENMPS_NOTIFY_CONCURRENCY": self.notify_concurrency,
            "OPENMPS_THROTTLE_BURST": self.throttle_burst,
        }
        for name, number in positive.items():
            if number <= 0:
                raise SettingsError(f"{name} must be greater than 0, got {number}")
        if not 0 < self.port < 65536:
            raise SettingsError(f"OPENMPS_PORT must be a TCP port (1-65535), got {self.port}")
        if not 1 <= self.url_ttl_s <= 7 * 86400:
            raise SettingsError(f"OPENMPS_URL_TTL_S must be 1 s to 7 days (S3's limit), got {self.url_ttl_s}")
        if not 0 <= self.cache_ttl_s <= 60:
            raise SettingsError(f"OPENMPS_CACHE_TTL_S must be 0 (off) to 60 seconds, got {self.cache_ttl_s}")
        if self.throttle_rate < 0:
            raise SettingsError(f"OPENMPS_THROTTLE_RATE must be >= 0 (0 = off), got {self.throttle_rate}")
        if self.job_time_limit_s >= self.visibility_timeout_s:
            raise SettingsError(
                "OPENMPS_JOB_HARD_TIMEOUT_S must be less than OPENMPS_VISIBILITY_TIMEOUT_S, or the broker re-delivers "
                f"running jobs ({self.job_time_limit_s} >= {self.visibility_timeout_s})"
            )

    @property
    def effective_decode_threads(self) -> int:
        """Decode threads one job may use when the host's running jobs cannot be counted
        (``workers.frames.cores.CoreShare.fallback``): the setting, or this machine's usable
        CPUs shared among the worker's concurrent jobs, so a busy worker never runs more decode
        threads than it has cores."""
        if self.decode_threads > 0:
            return self.decode_threads
        return max(1, usable_cpus() // max(1, self.worker_concurrency))

    @property
    def effective_broker_url(self) -> str:
        return self.broker_url or self.redis_url

    @property
    def effective_public_url(self) -> str:
        return self.public_url or f"http://{self.host}:{self.port}"

    @property
    def effective_object_url_base(self) -> str:
        """Where stored images are reachable: path-style S3 URLs, or the API's own prefix."""
        if self.object_url_base:
            return self.object_url_base.rstrip("/")
        if self.storage == "s3":
            return f"{'https' if self.s3_secure else 'http'}://{self.s3_endpoint}"
        return f"{self.effective_public_url}/objects"

    def with_(self, **changes: Any) -> Settings:
        return replace(self, **changes)


STACK_FILE = "stack.json"  # written by `make up` into its data dir: how the CLI finds a running stack


@dataclass(frozen=True)
class ClientEnv:
    """What the ``openmps`` command line reads from the environment: where the API is, the access
    key it signs with, and where a running ``make up`` stack left its ``stack.json``."""

    url: str | None = None  # OPENMPS_URL
    access_key: str | None = None  # OPENMPS_ACCESS_KEY
    secret: str | None = None  # OPENMPS_SECRET
    data_dir: Path = Path("var/dev")  # OPENMPS_DATA_DIR (the stack file's folder; `make up`'s default)
    server_env: Mapping[str, str] | None = None  # the whole environment, for Settings.from_env

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> ClientEnv:
        env = dict(os.environ if environ is None else environ)
        return cls(
            url=env.get("OPENMPS_URL") or None,
            access_key=env.get("OPENMPS_ACCESS_KEY") or None,
            secret=env.get("OPENMPS_SECRET") or None,
            data_dir=Path(env.get("OPENMPS_DATA_DIR") or "var/dev"),
            server_env=env,
        )
