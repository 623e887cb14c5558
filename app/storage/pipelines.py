"""Pipelines in Redis: one hash each, plus a registry that workers poll to pick up new queues."""

from __future__ import annotations

from datetime import UTC, datetime

import redis

from app.core.errors import AlreadyExists
from app.core.pipelines import NotifyTarget, Pipeline, PipelineState, ResourceClass
from app.storage import keys
from app.storage.jobs import from_ms, to_ms
from app.storage.lua import DELETE_PIPELINE


def _to_hash(p: Pipeline) -> dict[str | bytes, str]:
    return {
        "id": p.id,
        "name": p.name,
        "tenant": p.tenant or "",
        "state": p.state.value,
        "resource_class": p.resource_class.value,
        "max_concurrency": "" if p.max_concurrency is None else str(p.max_concurrency),
        "notify_topic": (p.notify.topic or "") if p.notify else "",
        "notify_queue": (p.notify.queue or "") if p.notify else "",
        "created_ms": to_ms(p.created_at),
    }


def _from_hash(h: dict[str, str]) -> Pipeline:
    topic, queue = h.get("notify_topic") or None, h.get("notify_queue") or None
    return Pipeline(
        id=h["id"],
        name=h["name"],
        tenant=h.get("tenant") or None,
        state=PipelineState(h.get("state") or "active"),
        resource_class=ResourceClass(h.get("resource_class") or "cpu"),
        max_concurrency=int(h["max_concurrency"]) if h.get("max_concurrency") else None,
        notify=NotifyTarget(topic=topic, queue=queue) if (topic or queue) else None,
        created_at=from_ms(h.get("created_ms")),
    )


class RedisPipelineRepository:
    def __init__(self, client: redis.Redis) -> None:
        self.r = client
        self._delete = client.register_script(DELETE_PIPELINE)

    def create(self, pipeline: Pipeline) -> Pipeline:
        if pipeline.created_at is None:
            pipeline.created_at = datetime.now(tz=UTC)
        if not self.r.hsetnx(keys.pipeline(pipeline.id), "id", pipeline.id):
            raise AlreadyExists(f"pipeline {pipeline.id!r} already exists")
        self.save(pipeline)
        return pipeline

    def save(self, pipeline: Pipeline, fields: frozenset[str] | None = None) -> None:
        """Write the pipeline, or only ``fields`` of it (hash field names, see ``_to_hash``), so
        that two concurrent updates of different attributes (a rename and a pause) both stick."""
        mapping = _to_hash(pipeline)
        if fields is not None:
            mapping = {k: v for k, v in mapping.items() if k in fields or k == "id"}
        pipe = self.r.pipeline()
        pipe.hset(keys.pipeline(pipeline.id), mapping=mapping)
        pipe.zadd(keys.PIPELINES, {pipeline.id: int(to_ms(pipeline.created_at) or 0)})
        pipe.incr(keys.PIPELINES_VERSION)
        pipe.execute()

    def version(self) -> int:
        """Changes whenever any pipeline does: pollers re-read the registry only when it moved."""
        return int(self.r.get(keys.PIPELINES_VERSION) or 0)

    def ensure(self, pipeline: Pipeline) -> Pipeline:
        """Create the pipeline unless it exists (the default pipeline at start-up)."""
        existing = self.find(pipeline.id)
        if existing is not None:
            return existing
        try:
            return self.create(pipeline)
        except AlreadyExists:
            return self.find(pipeline.id) or pipeline

    def find(self, pipeline_id: str) -> Pipeline | None:
        h = self.r.hgetall(keys.pipeline(pipeline_id))
        return _from_hash(h) if h and "name" in h else None  # type: ignore[arg-type]

    def delete_if_empty(self, pipeline_id: str) -> bool:
        """Delete the pipeline unless it has accepted jobs not yet finished. False = not empty."""
        return bool(
            self._delete(
                keys=[
                    keys.pipeline(pipeline_id),
                    keys.PIPELINES,
                    keys.pending(pipeline_id),
                    keys.dispatched(pipeline_id),
                    keys.running(pipeline_id),
                    keys.PIPELINES_VERSION,
                ],
                args=[pipeline_id],
            )
        )

    def list_all(self) -> list[Pipeline]:
        ids = self.r.zrange(keys.PIPELINES, 0, -1)
        pipe = self.r.pipeline(transaction=False)
        for pid in ids:
            pipe.hgetall(keys.pipeline(pid))
        return [_from_hash(h) for h in pipe.execute() if h and "name" in h]
