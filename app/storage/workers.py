"""Worker heartbeats: which workers of each resource class are alive, and how many slots they have.

Every worker's ``PipelineQueues`` timer (``workers/celery_app.py``) calls ``beat`` each
``OPENMPS_QUEUE_SYNC_S``. A beat scores the worker in its class's zset by the time it expires
(``ttl_s`` after the beat), so "alive" is one range query and a worker that died simply ages out;
no one has to notice the death. ``/readyz`` asks ``alive`` for each class it must see, and the
API's metrics divide the fleet's running jobs by the live slots (the busy ratio).
"""

from __future__ import annotations

from dataclasses import dataclass

import redis

from app.storage import keys
from app.storage.jobs import now_ms


@dataclass(frozen=True)
class LiveWorker:
    name: str
    worker_class: str
    concurrency: int
    seen_ms: int  # when its last beat arrived


class RedisWorkerRegistry:
    def __init__(self, client: redis.Redis) -> None:
        self.r = client

    def beat(self, worker_class: str, name: str, *, concurrency: int, ttl_s: float) -> None:
        now = now_ms()
        ttl_ms = max(1, int(ttl_s * 1000))
        pipe = self.r.pipeline(transaction=True)
        pipe.zadd(keys.workers(worker_class), {name: now + ttl_ms})
        pipe.hset(
            keys.worker(name), mapping={"class": worker_class, "concurrency": str(concurrency), "seen_ms": str(now)}
        )
        pipe.pexpire(keys.worker(name), ttl_ms)
        pipe.execute()

    def leave(self, worker_class: str, name: str) -> None:
        """A worker shutting down cleanly stops counting at once, not after its TTL."""
        pipe = self.r.pipeline(transaction=True)
        pipe.zrem(keys.workers(worker_class), name)
        pipe.delete(keys.worker(name))
        pipe.execute()

    def alive(self, worker_class: str) -> list[LiveWorker]:
        now = now_ms()
        names: list[str] = self.r.zrangebyscore(keys.workers(worker_class), now, "+inf")  # type: ignore[assignment]
        if not names:
            return []
        pipe = self.r.pipeline(transaction=False)
        for name in names:
            pipe.hgetall(keys.worker(name))
        out: list[LiveWorker] = []
        for name, h in zip(names, pipe.execute(), strict=True):
            if h:
                out.append(LiveWorker(name, worker_class, int(h.get("concurrency") or 0), int(h.get("seen_ms") or 0)))
        return out

    def prune(self, worker_class: str) -> int:
        """Forget workers whose beats expired (the zset would otherwise keep every name ever seen)."""
        return int(self.r.zremrangebyscore(keys.workers(worker_class), "-inf", now_ms() - 1))
