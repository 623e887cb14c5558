"""Access keys: an id and a secret that belong to a tenant.

Every API request is authenticated with one; vendor dialects use the same pair as their SDK's
AccessKeyId/AccessKeySecret, which is why a key can be created with a given id and secret. The
secret is stored sealed (``app.storage.secretbox``): the gate needs it back in plaintext to
recompute HMAC signatures, so it is encrypted rather than hashed.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import redis

from app.core.errors import AlreadyExists, InvalidParameter
from app.core.ports import Sealer
from app.storage import keys


@dataclass(frozen=True)
class AccessKey:
    id: str
    secret: str
    tenant: str


class RedisCredentialStore:
    def __init__(self, client: redis.Redis, sealer: Sealer) -> None:
        self.r = client
        self.sealer = sealer
        self.on_delete: Callable[[str], object] | None = None  # told a deleted key's id (a cache forgets it)

    def create(self, tenant: str, *, key_id: str | None = None, secret: str | None = None) -> AccessKey:
        if not tenant or len(tenant) > 64 or not all(c.isalnum() or c in "-_." for c in tenant):
            raise InvalidParameter("tenant", "must be 1-64 characters of letters, digits, '-', '_' or '.'")
        key = AccessKey(
            id=key_id or "OMPS" + secrets.token_hex(8).upper(),
            secret=secret or secrets.token_urlsafe(24),
            tenant=tenant,
        )
        if not key.id or len(key.id) > 128 or any(c in key.id for c in ":/ \t"):
            raise InvalidParameter("access_key_id", "must be 1-128 characters without ':', '/' or spaces")
        created = self.r.hsetnx(keys.access_key(key.id), "secret", self.sealer.seal(key.secret))
        if not created:
            raise AlreadyExists(f"access key {key.id!r} already exists")
        self.r.hset(
            keys.access_key(key.id),
            mapping={"tenant": tenant, "created_ms": str(int(datetime.now(tz=UTC).timestamp() * 1000))},
        )
        return key

    def ensure(self, tenant: str, key_id: str, secret: str) -> AccessKey:
        try:
            return self.create(tenant, key_id=key_id, secret=secret)
        except AlreadyExists:
            found = self.find(key_id)
            assert found is not None
            return found

    def find(self, key_id: str) -> AccessKey | None:
        h = self.r.hgetall(keys.access_key(key_id))
        if not h or "secret" not in h or "tenant" not in h:
            return None
        return AccessKey(id=key_id, secret=self.sealer.open(h["secret"]), tenant=h["tenant"])  # type: ignore[index]

    def secret_for(self, key_id: str) -> str | None:
        found = self.find(key_id)
        return found.secret if found else None

    def tenant_for(self, key_id: str) -> str | None:
        found = self.find(key_id)
        return found.tenant if found else None

    def authenticate(self, key_id: str, secret: str) -> AccessKey | None:
        found = self.find(key_id)
        if found is None or not secrets.compare_digest(found.secret.encode(), secret.encode()):
            return None
        return found

    def delete(self, key_id: str) -> bool:
        deleted = bool(self.r.delete(keys.access_key(key_id)))
        if self.on_delete is not None:
            self.on_delete(key_id)
        return deleted

    def reseal(self, reseal: Callable[[str], str]) -> int:
        """Re-seal every stored secret (``openmps secrets rotate``); returns how many."""
        count = 0
        for key_id in self.list_ids():
            name = keys.access_key(key_id)
            stored = self.r.hget(name, "secret")
            if stored is not None:
                self.r.hset(name, "secret", reseal(stored))  # type: ignore[arg-type]
                count += 1
        return count

    def list_ids(self) -> list[str]:
        prefix = keys.access_key("")
        return sorted(k[len(prefix) :] for k in self.r.scan_iter(match=prefix + "*"))
