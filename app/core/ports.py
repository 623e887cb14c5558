"""The small interfaces the use cases need from the outside world.

Adapters in ``app/storage`` and ``app/queueing`` implement them; tests use the real adapters
against real servers.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import BinaryIO, Protocol

from app.core.errors import DomainError
from app.core.grants import Grant
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
    origin: str | None = None  # only the jobs this dialect submitted (SnapshotJob.origin)


@dataclass
class JobPage:
    jobs: list[SnapshotJob] = field(default_factory=list)
    next_page_token: str | None = None


@dataclass
class CountedJobPage:
    """One page of a listing by position, with how many jobs match in all (APIs that page by
    number and report a total, such as Huawei's ``page``/``size``/``total``)."""

    jobs: list[SnapshotJob] = field(default_factory=list)
    total: int = 0


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
    def create(self, job: SnapshotJob, fingerprint: str) -> SnapshotJob:
        """Store a new job (or return the one stored under its client token) and fill its
        pipeline's dispatch window in the same step; raises the refusal as a ``DomainError``."""
        ...

    def create_many(self, jobs: Sequence[tuple[SnapshotJob, str]]) -> list[SnapshotJob | DomainError]:
        """``create`` for several (job, fingerprint) pairs at once, each on its own: per pair the
        stored job or the refusal ``create`` would raise."""
        ...

    def get(self, job_id: str) -> SnapshotJob: ...
    def find(self, job_id: str) -> SnapshotJob | None: ...
    def get_many(self, job_ids: list[str]) -> list[SnapshotJob | None]: ...
    def list(self, tenant: str, query: JobQuery) -> JobPage: ...
    def list_at(self, tenant: str, query: JobQuery, offset: int) -> CountedJobPage: ...
    def cancel_queued(self, job_id: str) -> bool: ...
    def request_cancel(self, job_id: str) -> None: ...
    def written(self, job_id: str) -> Sequence[tuple[str, str]]:
        """(bucket, key) of every object the job's attempts wrote, as recorded while writing."""
        ...

    def delete(self, job_id: str) -> bool:
        """Forget a finished job: its record, index entries, idempotency record. False if it is
        not there or not finished (queued and running jobs are never deleted)."""
        ...

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
    """What submission checks about objects before it accepts a job, and the one object write
    the service itself makes (deleting a job's outputs)."""

    def bucket_exists(self, bucket: str) -> bool: ...
    def object_exists(self, bucket: str, key: str) -> bool: ...
    def delete_object(self, bucket: str, key: str) -> None: ...


class ObjectUploads(Protocol):
    """Writes an uploaded object from a stream, never holding it whole (``length`` bytes, known
    before it starts: S3 needs it); returns the bytes written. Raises ``Unavailable`` when the
    store does not answer."""

    def put_stream(self, bucket: str, key: str, stream: BinaryIO, length: int, content_type: str) -> int: ...


class BucketGrants(Protocol):
    """The operator's bucket grants (``app.core.grants``)."""

    def grants_for(self, tenant: str) -> list[Grant]: ...


class ObjectUrls(Protocol):
    """URLs a browser can fetch an object from without credentials, for a limited time:
    presigned for S3, HMAC-signed ``/objects/...?expires=&signature=`` for local storage."""

    def url(self, bucket: str, key: str) -> str: ...


class EndpointPolicy(Protocol):
    """Whether a caller-chosen URL may be stored (a ``webhook_url``, a push endpoint, a URL input):
    the SSRF guard's check of the URL's shape and of its host when that is an IP literal.
    Resolution happens when it is used (at push time; for an input, in the worker)."""

    def refusal(self, url: str) -> str | None:
        """Why the URL is refused, or None."""
        ...


class Sealer(Protocol):
    """Encrypts secrets kept at rest (access-key secrets, webhook secrets) with the operator's key
    (``OPENMPS_SECRET_KEY``). Sealed, not hashed: signature schemes (HMAC) need the plaintext."""

    def seal(self, plaintext: str) -> str: ...
    def open(self, sealed: str) -> str: ...


class WebhookSecrets(Protocol):
    """The per-tenant secret that signs pushes to a job's ``webhook_url`` (Standard Webhooks)."""

    def for_tenant(self, tenant: str) -> str: ...


class RetryStrategy(StrEnum):
    """How a push that is not answered with a 2xx is retried (MNS's two strategies, which JD
    Cloud's notifications copy word for word): 3 retries 10-20 s apart, or 176 over a day."""

    BACKOFF_RETRY = "BACKOFF_RETRY"
    EXPONENTIAL_DECAY_RETRY = "EXPONENTIAL_DECAY_RETRY"


@dataclass(frozen=True)
class PushEndpoint:
    """A tenant's own HTTP endpoint for the completion messages of the jobs one dialect (the
    job's ``origin``) submitted: an account-level notification setting such as JD Cloud's
    ``setNotification``, as opposed to a pipeline's topic or a job's own ``webhook_url``.

    The notifier reads ``enabled``, ``url`` and ``retry``. ``content_format`` and ``events`` are
    the dialect's own words, kept for it: its ``PushRenderer`` reads them (which format, whether
    this endpoint wants this job's event at all) and its API reads them back to the client.
    """

    enabled: bool
    url: str | None = None
    retry: RetryStrategy = RetryStrategy.BACKOFF_RETRY
    content_format: str = ""
    events: tuple[str, ...] = ()


# A dialect's message for its tenants' push endpoints: the body to POST, or None when the
# endpoint does not subscribe to this job's event.
PushRenderer = Callable[[SnapshotJob, ObjectUrl, PushEndpoint], str | None]


class PushEndpoints(Protocol):
    """The per-(tenant, origin) push endpoint, one at most; ``put`` replaces it whole."""

    def get(self, tenant: str, origin: str) -> PushEndpoint | None: ...
    def put(self, tenant: str, origin: str, endpoint: PushEndpoint) -> None: ...
