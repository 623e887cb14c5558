"""The real object graph for tests: settings tuned for fast recovery, services with test buckets."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from app.settings import Settings
from app.wiring import Services, build_services, ensure_default_pipeline

BUCKETS = ("media", "out")


def fast_settings(redis_url: str, data_dir: Path, **overrides: Any) -> Settings:
    """Short leases and sync intervals, so crash recovery and new pipelines show up in seconds."""
    base: dict[str, Any] = {
        "redis_url": redis_url,
        "data_dir": data_dir,
        "storage": "local",
        "lease_ttl_s": 3.0,
        "heartbeat_interval_s": 0.5,
        "queue_sync_interval_s": 0.5,
        "allow_private_endpoints": True,
        # Tests poll fast with one key; the throttle itself is tested with its own settings.
        "throttle_rate": 10_000.0,
        "throttle_burst": 10_000,
    }
    return Settings(**{**base, **overrides})


def make_services(settings: Settings) -> Services:
    services = build_services(settings)
    ensure_default_pipeline(services)
    for bucket in BUCKETS:
        services.objects.make_bucket(bucket)
    return services
