"""Tenants' push endpoints, one per (tenant, origin dialect): a JSON string under one key, so a
``put`` replaces the whole setting at once and a reader never sees half of an update."""

from __future__ import annotations

import json

import redis

from app.core.ports import PushEndpoint, RetryStrategy
from app.storage import keys


class RedisPushEndpoints:
    """``PushEndpoints`` in Redis. Needs a client created with ``decode_responses=True``."""

    def __init__(self, client: redis.Redis) -> None:
        self.r = client

    def get(self, tenant: str, origin: str) -> PushEndpoint | None:
        raw = self.r.get(keys.push_endpoint(tenant, origin))
        if raw is None:
            return None
        data = json.loads(raw)
        return PushEndpoint(
            enabled=bool(data["enabled"]),
            url=data.get("url"),
            retry=RetryStrategy(data.get("retry", RetryStrategy.BACKOFF_RETRY.value)),
            content_format=data.get("content_format", ""),
            events=tuple(data.get("events", ())),
        )

    def put(self, tenant: str, origin: str, endpoint: PushEndpoint) -> None:
        data = {
            "enabled": endpoint.enabled,
            "url": endpoint.url,
            "retry": endpoint.retry.value,
            "content_format": endpoint.content_format,
            "events": list(endpoint.events),
        }
        self.r.set(keys.push_endpoint(tenant, origin), json.dumps(data, separators=(",", ":")))
