"""Core objects -> native JSON."""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime
from typing import Any

from app.core.jobs import SnapshotJob
from app.core.pipelines import Pipeline
from app.core.ports import QueueDepth


def iso(dt: datetime | None) -> str | None:
    return None if dt is None else dt.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def job_json(job: SnapshotJob) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": job.id,
        "state": job.state.value,
        "pipeline_id": job.pipeline_id,
        "priority": job.priority,
        "user_data": job.user_data,
        "created_at": iso(job.created_at),
        "started_at": iso(job.started_at),
        "finished_at": iso(job.finished_at),
        "attempts": job.attempts,
        "progress": {"done": job.progress_done, "total": job.progress_total},
        "spec": job.spec_dict(),
        "manifest": job.manifest.to_dict(),
        "error": {"code": job.error_code, "message": job.error_message} if job.error_code else None,
        "notification": asdict(job.notification) if job.notification else None,
    }
    if job.webhook_url:
        out["webhook_url"] = job.webhook_url
    return out


def pipeline_json(p: Pipeline, depth: QueueDepth | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": p.id,
        "name": p.name,
        "state": p.state.value,
        "resource_class": p.resource_class.value,
        "max_concurrency": p.max_concurrency,
        "notify": {"topic": p.notify.topic, "queue": p.notify.queue} if p.notify else None,
        "shared": p.tenant is None,
        "created_at": iso(p.created_at),
    }
    if depth is not None:
        out["depth"] = {"queued": depth.queued, "running": depth.running}
    return out
