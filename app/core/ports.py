"""The small interfaces the use cases need from the outside world.

Adapters in ``app/storage`` and ``app/queueing`` implement them; tests use the real adapters
against real servers.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from app.core.jobs import SnapshotJob
from app.core.pipelines import Pipeline
from app.core.states import JobState

MAX_PAGE_SIZE = 100

ObjectUrl = Callable[[str, str], str]  # (bucket, key) -> a URL where a consumer can fetch the object
CompletionRenderer = Callable[[SnapshotJob, ObjectUrl], str]  # a dialect's completion message body


@dataclass(frozen=True)
class JobQuery:
    state: JobState | None = None
    pipeline_id: str | None = None
    created_after: datetime | None = None  # inclusive
    created_before: datetime | None = None  # inclusive
    page_token: str | None = None
    limit: int = 20


@dataclass
class JobPage:
    jobs: list[SnapshotJob] = field(default_factory=list)
    next_page_token: str | None = None


@dataclass
class PipelinePage:
    pipelines: list[Pipeline] = field(default_factory=list)
    total: int = 0  # matching pipelines on every page


@dataclass(frozen=True)
class QueueDepth:
    pipeline_id: str
    queued: int  # accepted, not yet started (pending + dispatched)
    running: int


class JobRepository(Protocol):
    def create(self, job: SnapshotJob, fingerprint: str) -> SnapshotJob: ...
    def get(self, job_id: str) -> SnapshotJob: ...
    def find(self, job_id: str) -> SnapshotJob | None: ...
    def get_many(self, job_ids: list[str]) -> list[SnapshotJob | None]: ...
    def list(self, tenant: str, query: JobQuery) -> JobPage: ...
    def cancel_queued(self, job_id: str) -> bool: ...
    def request_cancel(self, job_id: str) -> None: ...
    def list_all(self, query: JobQuery) -> JobPage: ...  # every tenant's jobs (operators only)


class PipelineRepository(Protocol):
    def create(self, pipeline: Pipeline) -> Pipeline: ...
    def find(self, pipeline_id: str) -> Pipeline | None: ...
    def save(self, pipeline: Pipeline, fields: frozenset[str] | None = None) -> None: ...
    def delete_if_empty(self, pipeline_id: str) -> bool: ...
    def list_all(self) -> list[Pipeline]: ...


class Scheduler(Protocol):
    """Moves accepted jobs towards workers, honouring pause, priority and concurrency caps."""

    def dispatch(self, pipeline_id: str) -> int: ...
    def depth(self, pipeline_id: str) -> QueueDepth: ...


class ObjectCatalog(Protocol):
    """What submission checks about objects before it accepts a job."""

    def bucket_exists(self, bucket: str) -> bool: ...
    def object_exists(self, bucket: str, key: str) -> bool: ...


class WebhookSecrets(Protocol):
    """The per-tenant secret that signs pushes to a job's ``webhook_url`` (Standard Webhooks)."""

    def for_tenant(self, tenant: str) -> str: ...
