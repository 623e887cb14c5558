"""Nonces seen, for replay refusal: one key per (access key, nonce), expiring with the window.

A key per nonce (``SET NX EX``) rather than one set per access key because Redis expires keys,
not set members; the cost is one small string per signed request for 30 minutes.
"""

from __future__ import annotations

import hashlib

import redis

from app.storage import keys

MAX_NONCE_CHARS = 128


class RedisNonceBook:
    def __init__(self, client: redis.Redis) -> None:
        self.r = client

    def first_use(self, access_key_id: str, nonce: str, ttl_s: int) -> bool:
        # A long nonce is kept by its digest, so a client cannot make the server store large keys.
        value = nonce if len(nonce) <= MAX_NONCE_CHARS else hashlib.sha256(nonce.encode()).hexdigest()
        return bool(self.r.set(keys.nonce(access_key_id, value), "1", nx=True, ex=max(1, ttl_s)))
