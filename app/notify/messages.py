"""Completion messages: which dialect renders a job's message, and the message's stable id.

A job's completion message is rendered by the dialect that submitted it (``SnapshotJob.origin``):
an MPS client gets MPS's message format, a native client the native JSON event. The notifier
only moves the rendered body to the pipeline's topic or queue, to the job's webhook and to the
tenant's push endpoint for that dialect (rendered by the dialect's push renderer, when it has one,
in the format the endpoint asked for).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping

from app.core.jobs import DEFAULT_ORIGIN, SnapshotJob
from app.core.ports import CompletionRenderer, ObjectUrl, PushEndpoint, PushRenderer


def url_builder(base: str) -> ObjectUrl:
    return lambda bucket, key: f"{base.rstrip('/')}/{bucket}/{key}"


def completion_message_id(job_id: str) -> str:
    """The message id of a job's completion message: derived from the job, so that a notifier
    that repeats a send after a crash repeats the same message (queues and topics dedupe on it)."""
    return hashlib.md5(f"openmps-completion:{job_id}".encode()).hexdigest().upper()


class CompletionRenderers:
    """Renderers by origin; a job whose dialect is not installed here gets the native event."""

    def __init__(
        self,
        by_origin: Mapping[str, CompletionRenderer],
        object_url: ObjectUrl,
        push_by_origin: Mapping[str, PushRenderer] | None = None,
    ) -> None:
        self.by_origin = dict(by_origin)
        self.object_url = object_url
        self.push_by_origin = dict(push_by_origin or {})

    def render(self, job: SnapshotJob) -> str:
        if not job.state.is_terminal:
            raise ValueError(f"job {job.id} is {job.state}, not finished")
        renderer = self.by_origin.get(job.origin) or self.by_origin.get(DEFAULT_ORIGIN)
        if renderer is None:
            raise LookupError(f"no completion renderer for origin {job.origin!r}")
        return renderer(job, self.object_url)

    def render_push(self, job: SnapshotJob, endpoint: PushEndpoint) -> str | None:
        """The body to push to a tenant's endpoint for the job's origin; None when the endpoint
        does not want this job's event. An origin without a push renderer pushes its message."""
        renderer = self.push_by_origin.get(job.origin)
        if renderer is None:
            return self.render(job)
        if not job.state.is_terminal:
            raise ValueError(f"job {job.id} is {job.state}, not finished")
        return renderer(job, self.object_url, endpoint)
