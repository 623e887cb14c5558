"""What the console's pages show, shaped from core objects (no Flask here).

Who sees what is decided once, in ``Viewer``: a tenant sees its own jobs and the pipelines visible
to it (its own and the shared default); an operator sees every tenant's. An operator acts on a
job through the job's tenant's own use cases, so the service's rules hold for operators too.
"""

from __future__ import annotations

import mimetypes
import posixpath
from dataclasses import dataclass
from datetime import UTC, datetime

from app.core.errors import InvalidParameter, JobNotFound
from app.core.jobs import SnapshotJob
from app.core.pipelines import Pipeline
from app.core.ports import JobPage, JobQuery
from app.core.service import SnapshotService
from app.core.states import JobState
from app.notify.delivery import Attempt, Delivery
from app.storage.scheduler import QueueStats

PAGE_SIZE = 25


@dataclass(frozen=True)
class Viewer:
    key_id: str
    tenant: str
    operator: bool

    def job(self, snapshots: SnapshotService, job_id: str) -> SnapshotJob:
        """The job if this viewer may see it; otherwise JobNotFound, as for a job that does not exist."""
        if self.operator:
            job = snapshots.find_job_as_operator(job_id)
            if job is None:
                raise JobNotFound(f"job {job_id!r} does not exist")
            return job
        return snapshots.get(self.tenant, job_id)

    def jobs(self, snapshots: SnapshotService, query: JobQuery) -> JobPage:
        if self.operator:
            return snapshots.list_jobs_as_operator(query)
        return snapshots.list_jobs(self.tenant, query)

    def pipelines(self, snapshots: SnapshotService) -> list[Pipeline]:
        if self.operator:
            return snapshots.list_pipelines_as_operator()
        return snapshots.list_pipelines(self.tenant)

    def pipeline(self, snapshots: SnapshotService, pipeline_id: str) -> Pipeline:
        for p in self.pipelines(snapshots):
            if p.id == pipeline_id:
                return p
        return snapshots.get_pipeline(self.tenant, pipeline_id)  # raises PipelineNotFound


@dataclass(frozen=True)
class PipelineRow:
    pipeline: Pipeline
    stats: QueueStats
    oldest_age_s: float | None

    def as_json(self) -> dict[str, object]:
        return {
            "id": self.pipeline.id,
            "state": self.pipeline.state.value,
            "queued": self.stats.queued,
            "running": self.stats.running,
            "next_priority": self.stats.next_priority,
            "oldest_age_s": None if self.oldest_age_s is None else round(self.oldest_age_s, 1),
        }


def pipeline_row(pipeline: Pipeline, stats: QueueStats, now: datetime) -> PipelineRow:
    age = None
    if stats.oldest_queued_ms is not None:
        age = max(0.0, now.timestamp() - stats.oldest_queued_ms / 1000)
    return PipelineRow(pipeline, stats, age)


def parse_filters(args: dict[str, str], limit: int = PAGE_SIZE) -> JobQuery:
    """The jobs page's query string -> a JobQuery. Times are ``datetime-local`` values, in UTC."""
    state = args.get("state") or None
    if state is not None and state not in {s.value for s in JobState}:
        raise InvalidParameter("state", f"must be one of {', '.join(s.value for s in JobState)}")
    return JobQuery(
        state=JobState(state) if state else None,
        pipeline_id=args.get("pipeline") or None,
        created_after=_utc(args.get("after"), "after"),
        created_before=_utc(args.get("before"), "before"),
        page_token=args.get("page") or None,
        limit=limit,
    )


def _utc(raw: str | None, field: str) -> datetime | None:
    if not raw:
        return None
    try:
        value = datetime.fromisoformat(raw)
    except ValueError:
        raise InvalidParameter(field, "must be a date and time, e.g. 2026-11-21T09:00") from None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


@dataclass(frozen=True)
class GalleryItem:
    index: int
    key: str
    requested_ms: float
    actual_ms: float
    substituted_ms: float | None
    width: int
    height: int


def gallery(job: SnapshotJob) -> list[GalleryItem]:
    return [
        GalleryItem(i.index, i.key, i.requested_ms, i.actual_ms, i.substituted_ms, i.width, i.height)
        for i in job.manifest.images
        if i.uploaded
    ]


def bucket_for(job: SnapshotJob, key: str) -> str | None:
    """The bucket of one of the job's own outputs, or None when ``key`` is not one of them: the
    console serves exactly what the manifest lists, nothing else in the bucket."""
    m = job.manifest
    if any(i.key == key and i.uploaded for i in m.images):
        return job.spec.output.bucket
    sprite = job.spec.sprite
    if sprite is not None and (key in {s.key for s in m.sheets} or key in {m.storyboard_key, m.index_key}):
        return sprite.target.bucket
    return None


def content_type(key: str) -> str:
    if key.endswith(".vtt"):
        return "text/vtt; charset=utf-8"
    return mimetypes.guess_type(posixpath.basename(key))[0] or "application/octet-stream"


@dataclass(frozen=True)
class DeliveryView:
    delivery: Delivery
    attempts: list[Attempt]


def fmt_time(value: datetime | None) -> str:
    return "" if value is None else value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def fmt_ms(epoch_ms: int) -> str:
    if not epoch_ms:
        return ""
    return fmt_time(datetime.fromtimestamp(epoch_ms / 1000, tz=UTC))


def fmt_duration(seconds: float | None) -> str:
    if seconds is None:
        return "–"
    if seconds < 60:
        return f"{seconds:.0f} s"
    if seconds < 3600:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"
