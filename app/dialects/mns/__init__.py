"""Alibaba MNS dialect: the MNS REST API over openmps's queues, topics and push deliveries.

Mount with ``register(flask_app, services)`` (add it to ``app.web.EXTRA_SURFACES``); it serves
``/queues/...``, ``/topics/...`` and the ``/mns/...`` extensions at the application root.
"""

from __future__ import annotations

from typing import Protocol

import redis
from flask import Flask

from app.dialects.mns.routes import MnsServices, create_mns_blueprint
from app.notify.ssrf import EndpointGuard
from app.settings import Settings
from app.storage.credentials import RedisCredentialStore

__all__ = ["MnsServices", "create_mns_blueprint", "register"]


class HostServices(Protocol):
    """The part of ``app.wiring.Services`` this dialect uses."""

    settings: Settings
    redis: redis.Redis
    credentials: RedisCredentialStore


def register(flask_app: Flask, services: HostServices) -> None:
    flask_app.register_blueprint(
        create_mns_blueprint(
            MnsServices(
                redis=services.redis,
                secret_lookup=services.credentials.secret_for,
                account_lookup=services.credentials.tenant_for,
                guard=EndpointGuard(allow_private=services.settings.allow_private_endpoints),
                clock_skew_s=services.settings.request_clock_skew_s,
            )
        )
    )
