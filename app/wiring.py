"""Builds the object graph a process needs from its Settings: one place, no globals.

The API, the workers, the notifier and the CLI each call ``build_services(settings)`` once at
start-up (after fork, for prefork workers) and pass the result down.
"""

from __future__ import annotations

from dataclasses import dataclass

import redis
from celery import Celery

from app.core.pipelines import DEFAULT_PIPELINE_ID, Pipeline
from app.core.ports import ObjectUrls
from app.core.service import SnapshotService
from app.notify.signing import RedisWebhookSecrets
from app.notify.ssrf import EndpointGuard
from app.queueing import make_celery, queue_length_probe, snapshot_task_sender
from app.settings import Settings
from app.storage.cache import CachedCatalog, CachedGrants, CachedKeys, CachedPipelines
from app.storage.credentials import AccessKey, RedisCredentialStore
from app.storage.endpoints import RedisPushEndpoints
from app.storage.grants import RedisGrantRepository
from app.storage.jobs import RedisJobRepository
from app.storage.objects import LocalObjectStore, ObjectStore, S3ObjectStore, StoreCatalog, StoreUploads
from app.storage.operators import RedisOperatorRoster
from app.storage.pipelines import RedisPipelineRepository
from app.storage.scheduler import RedisScheduler
from app.storage.secretbox import SecretBox
from app.storage.urls import object_urls
from app.storage.workers import RedisWorkerRegistry


@dataclass
class Services:
    settings: Settings
    redis: redis.Redis
    celery: Celery
    jobs: RedisJobRepository
    pipelines: RedisPipelineRepository
    credentials: RedisCredentialStore
    scheduler: RedisScheduler
    objects: ObjectStore
    snapshots: SnapshotService
    grants: RedisGrantRepository
    sealer: SecretBox
    object_urls: ObjectUrls
    operators: RedisOperatorRoster
    fleet: RedisWorkerRegistry  # worker heartbeats (readiness, busy ratio)
    # The request gate's access-key lookup: the store's, kept OPENMPS_CACHE_TTL_S (app/storage/cache.py).
    access_keys: CachedKeys[AccessKey]


def redis_client(settings: Settings) -> redis.Redis:
    return redis.Redis.from_url(
        settings.redis_url, decode_responses=True, socket_timeout=30, socket_connect_timeout=5, health_check_interval=25
    )


def build_services(settings: Settings, *, celery_app: Celery | None = None) -> Services:
    client = redis_client(settings)
    celery = celery_app or make_celery(settings)
    pipelines = RedisPipelineRepository(client)
    scheduler = RedisScheduler(
        client,
        snapshot_task_sender(celery),
        window=settings.dispatch_window,
        stale_dispatch_s=max(60.0, settings.lease_ttl_s * 4),
        lease_ttl_s=settings.lease_ttl_s,
        queue_length=queue_length_probe(celery),
    )
    # A transition that frees a window or running slot refills its pipeline, and a create fills
    # it in its own script (see RedisJobRepository).
    jobs = RedisJobRepository(
        client,
        on_slot_freed=scheduler.dispatch,
        retention_ms=int(settings.job_retention_s * 1000),
        dispatch=scheduler,
    )
    objects = object_store(settings)
    sealer = SecretBox(settings.secret_keys)
    credentials = RedisCredentialStore(client, sealer)
    grants = RedisGrantRepository(client)
    # Submission's lookups, cached for a few seconds per process (what is safe to keep, and why:
    # app/storage/cache.py). A change made through this process clears its entry at once.
    ttl = settings.cache_ttl_s
    cached_grants = CachedGrants(grants, ttl)
    grants.on_change = cached_grants.forget
    access_keys = CachedKeys(credentials.find, ttl)
    credentials.on_delete = access_keys.forget
    urls = object_urls(settings, objects)
    return Services(
        settings=settings,
        redis=client,
        celery=celery,
        jobs=jobs,
        pipelines=pipelines,
        credentials=credentials,
        scheduler=scheduler,
        objects=objects,
        snapshots=SnapshotService(
            jobs,
            pipelines,
            scheduler,
            CachedCatalog(StoreCatalog(objects), ttl),
            grants=grants,
            object_urls=urls,
            endpoints=EndpointGuard(allow_private=settings.allow_private_endpoints),
            webhook_secrets=RedisWebhookSecrets(client, sealer),
            push_endpoints=RedisPushEndpoints(client),
            uploads=StoreUploads(objects),
            max_upload_bytes=settings.max_upload_bytes,
            submit_pipelines=CachedPipelines(pipelines, ttl),
            submit_grants=cached_grants,
            allow_url_inputs=settings.allow_url_inputs,
        ),
        grants=grants,
        sealer=sealer,
        object_urls=urls,
        operators=RedisOperatorRoster(client),
        fleet=RedisWorkerRegistry(client),
        access_keys=access_keys,
    )


def object_store(settings: Settings) -> ObjectStore:
    """The backend ``OPENMPS_STORAGE`` names: ``s3`` (any S3-compatible server) or ``local``."""
    if settings.storage == "s3":
        return S3ObjectStore(
            settings.s3_endpoint,
            settings.s3_access_key,
            settings.s3_secret_key,
            region=settings.s3_region,
            secure=settings.s3_secure,
        )
    if settings.storage == "local":
        return LocalObjectStore(settings.data_dir / "objects")
    raise ValueError(f"OPENMPS_STORAGE must be 'local' or 's3', got {settings.storage!r}")


def ensure_default_pipeline(services: Services) -> Pipeline:
    return services.pipelines.ensure(Pipeline(id=DEFAULT_PIPELINE_ID, name="Default"))
