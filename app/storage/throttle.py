"""A token bucket per access key, in Redis, shared by every API process and dialect.

A small Lua script rather than Flask-Limiter: the key to limit on (the access key id) is known
only after the dialect's signature is verified, the refusal must be rendered in each dialect's
own format (Flask-Limiter answers HTML 429 from a decorator), and its Redis extra pins redis-py
below 8. The script reads Redis's own clock (``TIME``), so API hosts with drifting clocks share
one bucket correctly.
"""

from __future__ import annotations

import redis

from app.storage import keys

# KEYS: bucket   ARGV: rate per second, burst
# Returns 0 when a token was taken, else the milliseconds until one is available.
TAKE = """
local t = redis.call("TIME")
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local rate, burst = tonumber(ARGV[1]), tonumber(ARGV[2])
local state = redis.call("HMGET", KEYS[1], "tokens", "ms")
local tokens = tonumber(state[1]) or burst
local last = tonumber(state[2]) or now
tokens = math.min(burst, tokens + math.max(0, now - last) * rate / 1000)
local wait = 0
if tokens >= 1 then tokens = tokens - 1 else wait = math.ceil((1 - tokens) * 1000 / rate) end
redis.call("HSET", KEYS[1], "tokens", tostring(tokens), "ms", string.format("%d", now))
redis.call("PEXPIRE", KEYS[1], math.ceil(burst * 1000 / rate) + 1000)
return wait
"""


class RedisTokenBucket:
    """``rate`` requests per second sustained, ``burst`` at once; ``rate <= 0`` disables it."""

    def __init__(self, client: redis.Redis, *, rate: float, burst: int) -> None:
        self.r = client
        self.rate = rate
        self.burst = max(1, burst)
        self._take = client.register_script(TAKE)

    def take(self, access_key_id: str) -> float:
        if self.rate <= 0:
            return 0.0
        wait_ms = int(self._take(keys=[keys.throttle(access_key_id)], args=[self.rate, self.burst]))
        return wait_ms / 1000.0
