"""Operator rights: which access keys may see and act on every tenant's jobs (the console).

A right belongs to one access key, not to a tenant: a tenant can hold an ordinary key for its
programs and an operator key for its people, and deleting the key takes the right with it. Kept
beside the credential store rather than in the key's hash so granting and revoking never rewrite
the key itself.
"""

from __future__ import annotations

import redis

from app.storage import keys


class RedisOperatorRoster:
    def __init__(self, client: redis.Redis) -> None:
        self.r = client

    def grant(self, key_id: str) -> None:
        self.r.sadd(keys.OPERATORS, key_id)

    def revoke(self, key_id: str) -> bool:
        return bool(self.r.srem(keys.OPERATORS, key_id))

    def is_operator(self, key_id: str) -> bool:
        return bool(self.r.sismember(keys.OPERATORS, key_id))

    def key_ids(self) -> list[str]:
        return sorted(self.r.smembers(keys.OPERATORS))  # type: ignore[arg-type]
