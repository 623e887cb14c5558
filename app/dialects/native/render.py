"""Core objects -> native JSON."""

from __future__ import annotations

import json
from dataclasses import asdict
from datetime import datetime
from typing import Any

from app.core import templates
from app.core.jobs import SnapshotJob
from app.core.pipelines import Pipeline
from app.core.ports import ObjectUrl, QueueDepth
from app.dialects.native.schema import NEUTRAL_SPELLING


def iso(dt: datetime | None) -> str | None:
    return None if dt is None else dt.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def manifest_json(job: SnapshotJob, object_url: ObjectUrl | None) -> dict[str, Any]:
    """The manifest; with ``object_url`` every uploaded image, sheet, storyboard and index also
    carries a ``url`` a browser can load without credentials until it expires."""
    out = job.manifest.to_dict()
    if object_url is None:
        return out
    bucket = job.spec.output.bucket
    for image in out["images"]:
        image["url"] = object_url(bucket, image["key"]) if image.get("uploaded", True) else None
    sheets_bucket = job.spec.sprite.target.bucket if job.spec.sprite is not None else bucket
    for sheet in out["sheets"]:
        sheet["url"] = object_url(sheets_bucket, sheet["key"])
    for name in ("storyboard", "index"):
        key = out.get(f"{name}_key")
        out[f"{name}_url"] = object_url(sheets_bucket, key) if key else None
    archive = job.spec.archive
    out["archive_url"] = (
        object_url(archive.target.bucket, out["archive_key"]) if archive and out.get("archive_key") else None
    )
    return out


def job_json(job: SnapshotJob, object_url: ObjectUrl | None = None) -> dict[str, Any]:
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
        "progress": progress_json(job),
        "spec": native_spec(job.spec_dict()),
        "manifest": manifest_json(job, object_url),
        "error": {"code": job.error_code, "message": job.error_message} if job.error_code else None,
        "notification": asdict(job.notification) if job.notification else None,
        "retry_of": job.retry_of,  # the failed or canceled job this one re-runs; null for a new job
    }
    if job.webhook_url:
        out["webhook_url"] = job.webhook_url
    return out


def progress_json(job: SnapshotJob) -> dict[str, Any]:
    """Images done and planned; with the events the job asked for (the body's ``progress``) beside."""
    out: dict[str, Any] = {"done": job.progress_done, "total": job.progress_total}
    if job.progress_events is not None:
        out.update(job.progress_events.to_dict())
    return out


def native_spec(spec: dict[str, Any]) -> dict[str, Any]:
    """The stored spec with key templates spelled back in the native syntax (``{Count}``, ...)."""
    out = dict(spec)
    out["output"] = {**spec["output"], "key_template": _spell(spec["output"]["key_template"])}
    if spec.get("sprite"):
        target = spec["sprite"]["target"]
        out["sprite"] = {**spec["sprite"], "target": {**target, "key_template": _spell(target["key_template"])}}
    return out


def _spell(template: str) -> str:
    return templates.to_vendor(template, NEUTRAL_SPELLING)


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


def completion_event(job: SnapshotJob, object_url: ObjectUrl) -> str:
    """The native completion event (``docs/notifications.md``): the job as ``GET /jobs/{id}``
    returns it, under ``job``, with a URL for every object it wrote."""
    urls: dict[str, Any] = {
        "images": [object_url(job.spec.output.bucket, i.key) for i in job.manifest.images if i.uploaded],
        "sheets": [],
        "storyboard": None,
        "index": None,
    }
    if job.spec.sprite is not None:
        bucket = job.spec.sprite.target.bucket
        urls["sheets"] = [object_url(bucket, s.key) for s in job.manifest.sheets]
        if job.manifest.storyboard_key:
            urls["storyboard"] = object_url(bucket, job.manifest.storyboard_key)
        if job.manifest.index_key:
            urls["index"] = object_url(bucket, job.manifest.index_key)
    event = {"event": f"job.{job.state.value}", "job": job_json(job, object_url), "urls": urls}
    return json.dumps(event, ensure_ascii=False, separators=(",", ":"))
