"""Completion messages: which dialect renders a job's message, and the message's stable id.

A job's completion message is rendered by the dialect that submitted it (``SnapshotJob.origin``):
an MPS client gets MPS's message format, a native client the native JSON event. The notifier
only moves the rendered body to the pipeline's topic or queue, to the job's webhook and to the
tenant's push endpoint for that dialect (rendered by the dialect's push renderer, when it has one,
in the format the endpoint asked for).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping

from app.core.jobs import DEFAULT_ORIGIN, SnapshotJob
from app.core.ports import CompletionRenderer, ObjectUrl, ObjectUrls, PushEndpoint, PushRenderer

# A vendor's key token in a pattern a renderer asks a URL for (MPS ``UrlPattern``'s ``{Count}``).
_PATTERN_TOKEN = re.compile(r"\{[A-Za-z_]+(?::\d)?\}")


def url_builder(base: str) -> ObjectUrl:
    """Plain ``base/bucket/key`` URLs (no signature)."""
    return lambda bucket, key: f"{base.rstrip('/')}/{bucket}/{key}"


def message_urls(urls: ObjectUrls, base: str) -> ObjectUrl:
    """What completion renderers get: a signed (or presigned) URL for an object key, so a link in
    a message works without credentials until ``OPENMPS_URL_TTL_S`` runs out; and, for a key
    *pattern* (MPS's ``UrlPattern``, ``out/{Count}.jpg``), the plain URL with the pattern left
    readable: a pattern names no object, so there is nothing to sign (an object key that really
    holds such braces gets a plain URL too, readable with an access key)."""
    plain = url_builder(base)
    return lambda bucket, key: plain(bucket, key) if _PATTERN_TOKEN.search(key) else urls.url(bucket, key)


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
