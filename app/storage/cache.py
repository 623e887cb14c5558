"""Short-lived, per-process caches for the submit path's lookups (``OPENMPS_CACHE_TTL_S``).

A submission used to read the access key, the pipeline and the tenant's grants from Redis and ask
the object store about two buckets and the input before its create script ran: five or more
round trips where one does the work. Each cache here keeps what it read for a few seconds, and
only what is safe to keep:

* **Pipelines** (``CachedPipelines``): the submit lookup only. The create script re-checks, in the
  same step that stores the job, that the pipeline still exists and is the tenant's or shared
  (``app.storage.lua.CREATE``), and the dispatch selection reads ``state`` and ``max_concurrency``
  from Redis itself; so a pipeline deleted or paused through any process is noticed by the very
  next submission in every process, cache or not. What the cache saves is the read before it.
* **Grants** (``CachedGrants``): a tenant's bucket grants. A change made in this process clears
  the tenant's entry at once; one made in another process (``openmps grants`` runs as its own
  process) is seen within the TTL. That window is the price of not reading the grants hash on
  every submission; ``OPENMPS_CACHE_TTL_S=0`` turns every cache off.
* **Access keys** (``CachedKeys``): the tenant and the *opened* secret of a key (so the gate
  skips both the read and the Fernet decryption). Unknown keys are never cached (a key created a
  moment ago works at once); a deleted key is refused within the TTL.
* **Object existence** (``CachedCatalog``): positive answers only (a bucket or input that did not
  exist is asked again next time). An input removed behind the cache's back is still caught: the
  worker opens the input and fails the job with ``InputNotFound`` (``workers/frames/probe.py``,
  ``workers/frames/rangeio.py``); an output bucket removed fails it with ``OutputWriteFailed``.

Entries expire on a monotonic clock; each cache holds at most ``max_entries`` (the oldest go
first). They are plain dicts under a lock: the values are small and the hit path must stay
cheaper than the round trip it replaces.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

from app.core.grants import Grant
from app.core.pipelines import Pipeline
from app.core.ports import BucketGrants, ObjectCatalog, PipelineRepository

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")

DEFAULT_MAX_ENTRIES = 10_000


class TtlCache(Generic[K, V]):
    """``key -> value`` for ``ttl_s`` seconds after it was put; ``ttl_s <= 0`` keeps nothing."""

    def __init__(
        self, ttl_s: float, *, max_entries: int = DEFAULT_MAX_ENTRIES, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.ttl_s = ttl_s
        self.max_entries = max(1, max_entries)
        self.clock = clock
        self._entries: OrderedDict[K, tuple[float, V]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: K) -> V | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        if entry[0] <= self.clock():
            with self._lock:
                if self._entries.get(key) is entry:
                    del self._entries[key]
            return None
        return entry[1]

    def put(self, key: K, value: V) -> None:
        if self.ttl_s <= 0:
            return
        with self._lock:
            self._entries[key] = (self.clock() + self.ttl_s, value)
            self._entries.move_to_end(key)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)

    def pop(self, key: K) -> None:
        with self._lock:
            self._entries.pop(key, None)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def lookup(self, key: K, load: Callable[[], V | None]) -> V | None:
        """The cached value, else ``load()`` (kept when it is not None: misses are never cached)."""
        found = self.get(key)
        if found is not None:
            return found
        found = load()
        if found is not None:
            self.put(key, found)
        return found


class CachedPipelines:
    """``PipelineRepository`` whose ``find`` answers from the cache; the writes go through and
    clear the entry. For the submit lookup only (see the module docstring): a view that shows a
    pipeline's state reads it fresh."""

    def __init__(self, inner: PipelineRepository, ttl_s: float) -> None:
        self.inner = inner
        self.cache: TtlCache[str, Pipeline] = TtlCache(ttl_s)

    def find(self, pipeline_id: str) -> Pipeline | None:
        return self.cache.lookup(pipeline_id, lambda: self.inner.find(pipeline_id))

    def create(self, pipeline: Pipeline) -> Pipeline:
        self.cache.pop(pipeline.id)
        return self.inner.create(pipeline)

    def save(self, pipeline: Pipeline, fields: frozenset[str] | None = None) -> None:
        self.cache.pop(pipeline.id)
        self.inner.save(pipeline, fields)

    def delete_if_empty(self, pipeline_id: str) -> bool:
        self.cache.pop(pipeline_id)
        return self.inner.delete_if_empty(pipeline_id)

    def list_all(self) -> list[Pipeline]:
        return self.inner.list_all()


class CachedGrants:
    """``BucketGrants`` with each tenant's grants kept for the TTL. ``forget(tenant)`` is what a
    writer in this process calls after changing them (``app/wiring.py`` wires the repository's
    ``on_change`` to it)."""

    def __init__(self, inner: BucketGrants, ttl_s: float) -> None:
        self.inner = inner
        self.cache: TtlCache[str, tuple[Grant, ...]] = TtlCache(ttl_s)

    def grants_for(self, tenant: str) -> list[Grant]:
        # A tuple in the cache, a fresh list out: no caller can change what the next one sees.
        found = self.cache.lookup(tenant, lambda: tuple(self.inner.grants_for(tenant)))
        return list(found or ())

    def forget(self, tenant: str) -> None:
        self.cache.pop(tenant)


class CachedCatalog:
    """``ObjectCatalog`` that remembers buckets and objects found to exist (never the ones that
    do not); deleting an object through it forgets it."""

    def __init__(self, inner: ObjectCatalog, ttl_s: float) -> None:
        self.inner = inner
        self.buckets: TtlCache[str, bool] = TtlCache(ttl_s)
        self.objects: TtlCache[tuple[str, str], bool] = TtlCache(ttl_s)

    def bucket_exists(self, bucket: str) -> bool:
        return bool(self.buckets.lookup(bucket, lambda: self.inner.bucket_exists(bucket) or None))

    def object_exists(self, bucket: str, key: str) -> bool:
        return bool(self.objects.lookup((bucket, key), lambda: self.inner.object_exists(bucket, key) or None))

    def delete_object(self, bucket: str, key: str) -> None:
        self.objects.pop((bucket, key))
        self.inner.delete_object(bucket, key)


R = TypeVar("R")


class CachedKeys(Generic[R]):
    """A key lookup (access key id -> record, None when unknown) whose known answers are kept
    for the TTL: the gate's ``KeyLookup`` in ``app/web/__init__.py``."""

    def __init__(self, load: Callable[[str], R | None], ttl_s: float) -> None:
        self.load = load
        self.cache: TtlCache[str, R] = TtlCache(ttl_s)

    def __call__(self, access_key_id: str) -> R | None:
        return self.cache.lookup(access_key_id, lambda: self.load(access_key_id))

    def forget(self, access_key_id: str) -> None:
        self.cache.pop(access_key_id)
