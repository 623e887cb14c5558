"""Pipelines: how users rank and isolate work. Each has its own Celery queue.

Task names and queue names live here so the web (which enqueues by name) and the workers
(which register the tasks) agree without importing each other.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

DEFAULT_PIPELINE_ID = "default"
TASK_RUN_SNAPSHOT = "openmps.snapshot.run"
QUEUE_PREFIX = "openmps.pipeline."


class PipelineState(StrEnum):
    ACTIVE = "active"
    PAUSED = "paused"


class ResourceClass(StrEnum):
    CPU = "cpu"
    GPU = "gpu"


@dataclass(frozen=True)
class NotifyTarget:
    """Where a pipeline's completion messages go: an MNS-style topic or queue (MPS NotifyConfig)."""

    topic: str | None = None
    queue: str | None = None


@dataclass
class Pipeline:
    id: str
    name: str
    tenant: str | None = None  # None: shared by every tenant (the default pipeline)
    state: PipelineState = PipelineState.ACTIVE
    resource_class: ResourceClass = ResourceClass.CPU
    max_concurrency: int | None = None  # running jobs across the fleet; None = unlimited
    notify: NotifyTarget | None = None
    created_at: datetime | None = None

    @property
    def queue_name(self) -> str:
        return queue_name(self.id)

    def visible_to(self, tenant: str) -> bool:
        return self.tenant is None or self.tenant == tenant


def queue_name(pipeline_id: str) -> str:
    return f"{QUEUE_PREFIX}{pipeline_id}"
