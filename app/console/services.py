"""What the console is handed by ``create_app``, and the key that signs its sessions."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

import redis

from app.core.service import SnapshotService
from app.gateway.gate import RequestGate
from app.notify.delivery import DeliveryStore
from app.settings import Settings
from app.storage import keys
from app.storage.objects import ObjectStore
from app.storage.scheduler import QueueStats

SESSION_LIFETIME = timedelta(hours=8)


@dataclass(frozen=True)
class ConsoleServices:
    settings: Settings
    snapshots: SnapshotService
    gate: RequestGate  # logins are admitted like API requests (same keys, same throttle)
    deliveries: DeliveryStore
    objects: ObjectStore  # the console serves a visible job's own outputs to the browser
    queue_stats: Callable[[str], QueueStats]
    is_operator: Callable[[str], bool]  # access key id -> operator rights
    session_key: bytes


def session_key(settings: Settings, client: redis.Redis) -> bytes:
    """The key that signs console cookies: derived from ``OPENMPS_CONSOLE_SECRET`` (a distinct
    purpose string, so the configured value never signs anything directly), else one random key per
    deployment, created by whichever API process starts first."""
    if settings.console_secret:
        return hmac.new(settings.console_secret.encode(), b"openmps console session v1", hashlib.sha256).digest()
    client.set(keys.CONSOLE_SECRET, secrets.token_hex(32), nx=True)
    return bytes.fromhex(str(client.get(keys.CONSOLE_SECRET)))
