"""The real object graph for tests: settings tuned for fast recovery, services with test buckets."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from app.settings import Settings
from app.storage.secretbox import SecretBox
from app.wiring import Services, build_services, ensure_default_pipeline

BUCKETS = ("media", "out")
TEST_SECRET_KEY = "openmps-tests-secret-key-0123456789abcdef"  # seals secrets at rest in tests
# Tenants the tests that are not about isolation submit as; they may use every test bucket.
# (tests/e2e/test_tenant_isolation.py sets up its own tenants with narrow grants.)
TRUSTED_TENANTS = ("acme",)


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
        "secret_keys": (TEST_SECRET_KEY,),
    }
    return Settings(**{**base, **overrides})


def make_services(settings: Settings) -> Services:
    """The object graph with the test buckets, and read+write on them for ``TRUSTED_TENANTS``."""
    services = build_services(settings)
    ensure_default_pipeline(services)
    for bucket in BUCKETS:
        services.objects.make_bucket(bucket)
        for tenant in TRUSTED_TENANTS:
            services.grants.grant(tenant, bucket, read=True, write=True)
    return services


def shared_sealer() -> SecretBox:
    """The sealer every test process shares (the key ``fast_settings`` configures)."""
    return SecretBox((TEST_SECRET_KEY,))
