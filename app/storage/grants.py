"""Bucket grants in Redis: one hash per tenant, ``scope -> "r" | "w" | "rw"``.

``grant`` adds permissions to a scope (``--read`` on a scope that has write leaves both);
``revoke`` takes them away (both when none is named) and drops a scope left with none. The
matching rules live in ``app.core.grants``.
"""

from __future__ import annotations

from collections.abc import Callable

import redis

from app.core.errors import InvalidParameter
from app.core.grants import Grant, parse_scope
from app.storage import keys

MAX_TENANT = 64


def _flags(read: bool, write: bool) -> str:
    return ("r" if read else "") + ("w" if write else "")


def _grant(scope: str, flags: str) -> Grant:
    bucket, prefix = parse_scope(scope)
    return Grant(bucket, prefix, read="r" in flags, write="w" in flags)


class RedisGrantRepository:
    """``app.core.ports.BucketGrants``; ``client`` with ``decode_responses=True``."""

    def __init__(self, client: redis.Redis, *, on_change: Callable[[str], object] | None = None) -> None:
        self.r = client
        self.on_change = on_change  # told the tenant after its grants changed (a cache forgets them)

    def _changed(self, tenant: str) -> None:
        if self.on_change is not None:
            self.on_change(tenant)

    def grant(self, tenant: str, scope: str, *, read: bool = False, write: bool = False) -> Grant:
        _check_tenant(tenant)
        if not (read or write):
            raise InvalidParameter("", "name --read, --write or both")
        bucket, prefix = parse_scope(scope)
        scope = Grant(bucket, prefix).scope
        current = self.r.hget(keys.grants(tenant), scope) or ""
        flags = _flags(read or "r" in current, write or "w" in current)
        pipe = self.r.pipeline(transaction=True)
        pipe.hset(keys.grants(tenant), scope, flags)
        pipe.sadd(keys.GRANT_TENANTS, tenant)
        pipe.execute()
        self._changed(tenant)
        return _grant(scope, flags)

    def revoke(self, tenant: str, scope: str, *, read: bool = True, write: bool = True) -> Grant | None:
        """What is left of the scope's grant afterwards (None: nothing)."""
        bucket, prefix = parse_scope(scope)
        scope = Grant(bucket, prefix).scope
        current = self.r.hget(keys.grants(tenant), scope) or ""
        flags = _flags("r" in current and not read, "w" in current and not write)
        if flags:
            self.r.hset(keys.grants(tenant), scope, flags)
            self._changed(tenant)
            return _grant(scope, flags)
        self.r.hdel(keys.grants(tenant), scope)
        if not self.r.hlen(keys.grants(tenant)):
            self.r.srem(keys.GRANT_TENANTS, tenant)
        self._changed(tenant)
        return None

    def grants_for(self, tenant: str) -> list[Grant]:
        raw: dict[str, str] = self.r.hgetall(keys.grants(tenant))  # type: ignore[assignment]
        return sorted((_grant(scope, flags) for scope, flags in raw.items()), key=lambda g: g.scope)

    def list_all(self) -> list[tuple[str, Grant]]:
        tenants = sorted(self.r.smembers(keys.GRANT_TENANTS))  # type: ignore[arg-type]
        return [(t, g) for t in tenants for g in self.grants_for(t)]


def _check_tenant(tenant: str) -> None:
    if not tenant or len(tenant) > MAX_TENANT or not all(c.isalnum() or c in "-_." for c in tenant):
        raise InvalidParameter("tenant", "must be 1-64 characters of letters, digits, '-', '_' or '.'")
