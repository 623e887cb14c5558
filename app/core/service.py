"""Use cases: submit, get, list, cancel jobs; manage pipelines. Every API dialect calls these.

The service decides *what* happens; adapters behind the ports in ``app.core.ports`` decide
*how*. It never sees HTTP, Redis or Celery.
"""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from urllib.parse import urlsplit

from app.core.errors import (
    InputNotFound,
    InvalidJobState,
    InvalidParameter,
    JobNotFound,
    PipelineNotEmpty,
    PipelineNotFound,
    Unavailable,
)
from app.core.jobs import DEFAULT_ORIGIN, DEFAULT_PRIORITY, MAX_PRIORITY, MIN_PRIORITY, SnapshotJob
from app.core.pipelines import DEFAULT_PIPELINE_ID, NotifyTarget, Pipeline, PipelineState, ResourceClass
from app.core.ports import (
    MAX_PAGE_SIZE,
    JobPage,
    JobQuery,
    JobRepository,
    ObjectCatalog,
    PipelinePage,
    PipelineRepository,
    QueueDepth,
    Scheduler,
    WebhookSecrets,
)
from app.core.specs import SnapshotSpec, spec_to_dict, validate_spec, validate_user_data
from app.core.states import JobState

MAX_WAIT_S = 10.0


@dataclass(frozen=True)
class SubmitRequest:
    spec: SnapshotSpec
    pipeline_id: str = DEFAULT_PIPELINE_ID
    priority: int = DEFAULT_PRIORITY
    user_data: str | None = None
    client_token: str | None = None
    webhook_url: str | None = None
    origin: str = DEFAULT_ORIGIN  # which dialect submits it (not part of the idempotency fingerprint)
    retry_of: str | None = None  # set by ``retry`` only


@dataclass(frozen=True)
class PipelineChanges:
    name: str | None = None
    state: PipelineState | None = None
    max_concurrency: int | None = None
    clear_max_concurrency: bool = False
    notify: NotifyTarget | None = None
    clear_notify: bool = False


def new_id() -> str:
    return uuid.uuid4().hex


def request_fingerprint(tenant: str, req: SubmitRequest) -> str:
    """What a client token is bound to: same token + same fingerprint = the same job."""
    payload = {
        "tenant": tenant,
        "spec": spec_to_dict(req.spec),
        "pipeline": req.pipeline_id,
        "priority": req.priority,
        "user_data": req.user_data,
        "webhook": req.webhook_url,
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


class SnapshotService:
    def __init__(
        self,
        jobs: JobRepository,
        pipelines: PipelineRepository,
        scheduler: Scheduler,
        objects: ObjectCatalog,
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(tz=UTC),
        sleep: Callable[[float], None] = time.sleep,
        ids: Callable[[], str] = new_id,
        webhook_secrets: WebhookSecrets | None = None,
    ) -> None:
        self.jobs = jobs
        self.pipelines = pipelines
        self.scheduler = scheduler
        self.objects = objects
        self.clock = clock
        self.sleep = sleep
        self.ids = ids
        self.webhook_secrets = webhook_secrets

    # --- jobs -------------------------------------------------------------------------------

    def submit(self, tenant: str, req: SubmitRequest) -> SnapshotJob:
        """Validate, store, then dispatch. The job is stored before any task message is sent."""
        spec = validate_spec(req.spec)
        validate_user_data(req.user_data)
        if not MIN_PRIORITY <= req.priority <= MAX_PRIORITY:
            raise InvalidParameter("priority", f"must be in [{MIN_PRIORITY}, {MAX_PRIORITY}], got {req.priority}")
        if req.client_token is not None and not 1 <= len(req.client_token) <= 64:
            raise InvalidParameter("client_token", "must be 1-64 characters")
        if req.webhook_url is not None:
            _check_webhook_url(req.webhook_url)
        pipeline = self.get_pipeline(tenant, req.pipeline_id)
        if not self.objects.bucket_exists(spec.input.bucket):
            raise InputNotFound(f"input bucket {spec.input.bucket!r} does not exist")
        if not self.objects.object_exists(spec.input.bucket, spec.input.key):
            raise InputNotFound(f"input object {spec.input.bucket}/{spec.input.key} does not exist")
        for field, target in [("output", spec.output)] + (
            [("sprite.output", spec.sprite.target)] if spec.sprite else []
        ):
            if not self.objects.bucket_exists(target.bucket):
                raise InvalidParameter(f"{field}.bucket", f"{target.bucket!r} does not exist")
        req = replace(req, spec=spec)
        job = SnapshotJob(
            id=self.ids(),
            tenant=tenant,
            pipeline_id=pipeline.id,
            spec=spec,
            priority=req.priority,
            user_data=req.user_data,
            client_token=req.client_token,
            webhook_url=req.webhook_url,
            origin=req.origin,
            retry_of=req.retry_of,
            created_at=self.clock(),
            progress_total=spec.requested_count or 0,
        )
        stored = self.jobs.create(job, request_fingerprint(tenant, req))
        if stored.id == job.id:
            self.scheduler.dispatch(pipeline.id)
        return stored

    def get(self, tenant: str, job_id: str) -> SnapshotJob:
        job = self.jobs.find(job_id)
        if job is None or job.tenant != tenant:  # another tenant's job does not exist for you
            raise JobNotFound(f"job {job_id!r} does not exist")
        return job

    def get_many(self, tenant: str, job_ids: list[str]) -> tuple[list[SnapshotJob], list[str]]:
        """The caller's jobs among ``job_ids`` in the order asked, and the ids that are not (unknown
        or another tenant's: the same answer, so ids cannot be probed across tenants)."""
        found: list[SnapshotJob] = []
        missing: list[str] = []
        for job_id, job in zip(job_ids, self.jobs.get_many(job_ids), strict=True):
            if job is None or job.tenant != tenant:
                missing.append(job_id)
            else:
                found.append(job)
        return found, missing

    def webhook_secret(self, tenant: str) -> str:
        """The secret that signs pushes to this tenant's per-job webhook URLs."""
        if self.webhook_secrets is None:
            raise Unavailable("webhook signing is not configured in this process")
        return self.webhook_secrets.for_tenant(tenant)

    def wait(self, tenant: str, job_id: str, timeout_s: float, poll_s: float = 0.05) -> SnapshotJob:
        """The job once it is terminal, or as it stands after ``timeout_s`` (at most 10 s)."""
        deadline = time.monotonic() + min(max(timeout_s, 0.0), MAX_WAIT_S)
        job = self.get(tenant, job_id)
        while not job.is_terminal and time.monotonic() < deadline:
            self.sleep(poll_s)
            job = self.get(tenant, job_id)
        return job

    def list_jobs(self, tenant: str, query: JobQuery) -> JobPage:
        if not 1 <= query.limit <= MAX_PAGE_SIZE:
            raise InvalidParameter("limit", f"must be in [1, {MAX_PAGE_SIZE}], got {query.limit}")
        if query.created_after and query.created_before and query.created_after > query.created_before:
            raise InvalidParameter("created_after", "must not be later than created_before")
        return self.jobs.list(tenant, query)

    def cancel(self, tenant: str, job_id: str) -> SnapshotJob:
        """A queued job is canceled at once; a running one is asked to stop (its worker ends it)."""
        job = self.get(tenant, job_id)
        if job.state is JobState.SUBMITTED:
            # A dispatch-window slot it held is refilled by the repository as part of the cancel.
            self.jobs.cancel_queued(job_id)
            job = self.get(tenant, job_id)  # canceled now, or it started a moment ago
        if job.state is JobState.RUNNING:
            self.jobs.request_cancel(job_id)
            return job
        if job.state is JobState.CANCELED:
            return job
        raise InvalidJobState(f"job {job_id} is {job.state.value} and can no longer be canceled")

    def retry(self, tenant: str, job_id: str) -> SnapshotJob:
        """Run a failed or canceled job again: a new job with the same spec, pipeline, priority,
        user data, webhook and origin, recording ``retry_of``. The old job stays as it ended (its
        state is terminal, and no transition leaves a terminal state). No client token: a retry is
        a new request, and the same token would only return the old job."""
        job = self.get(tenant, job_id)
        if job.state not in (JobState.FAILED, JobState.CANCELED):
            raise InvalidJobState(f"job {job_id} is {job.state.value}; only failed or canceled jobs can be retried")
        return self.submit(
            tenant,
            SubmitRequest(
                spec=job.spec,
                pipeline_id=job.pipeline_id,
                priority=job.priority,
                user_data=job.user_data,
                webhook_url=job.webhook_url,
                origin=job.origin,
                retry_of=job.id,
            ),
        )

    # --- pipelines ----------------------------------------------------------------------------

    def get_pipeline(self, tenant: str, pipeline_id: str) -> Pipeline:
        pipeline = self.pipelines.find(pipeline_id)
        if pipeline is None or not pipeline.visible_to(tenant):
            raise PipelineNotFound(f"pipeline {pipeline_id!r} does not exist")
        return pipeline

    def create_pipeline(
        self,
        tenant: str,
        name: str,
        *,
        resource_class: ResourceClass = ResourceClass.CPU,
        max_concurrency: int | None = None,
        notify: NotifyTarget | None = None,
        state: PipelineState = PipelineState.ACTIVE,
    ) -> Pipeline:
        _check_pipeline_name(name)
        _check_concurrency(max_concurrency)
        pipeline = Pipeline(
            id=self.ids(),
            name=name,
            tenant=tenant,
            state=state,
            resource_class=resource_class,
            max_concurrency=max_concurrency,
            notify=notify,
            created_at=self.clock(),
        )
        return self.pipelines.create(pipeline)

    def update_pipeline(self, tenant: str, pipeline_id: str, changes: PipelineChanges) -> Pipeline:
        pipeline = self._owned_pipeline(tenant, pipeline_id)
        changed: set[str] = set()
        if changes.name is not None:
            _check_pipeline_name(changes.name)
            pipeline.name = changes.name
            changed.add("name")
        if changes.max_concurrency is not None:
            _check_concurrency(changes.max_concurrency)
            pipeline.max_concurrency = changes.max_concurrency
            changed.add("max_concurrency")
        if changes.clear_max_concurrency:
            pipeline.max_concurrency = None
            changed.add("max_concurrency")
        if changes.notify is not None or changes.clear_notify:
            pipeline.notify = changes.notify
            changed |= {"notify_topic", "notify_queue"}
        resumed = changes.state is PipelineState.ACTIVE and pipeline.state is PipelineState.PAUSED
        if changes.state is not None:
            pipeline.state = changes.state
            changed.add("state")
        self.pipelines.save(pipeline, frozenset(changed))
        if resumed or "max_concurrency" in changed:
            self.scheduler.dispatch(pipeline.id)
        return pipeline

    def list_pipelines(self, tenant: str, state: PipelineState | None = None) -> list[Pipeline]:
        found = [p for p in self.pipelines.list_all() if p.visible_to(tenant)]
        return [p for p in found if state is None or p.state is state]

    def list_pipelines_page(
        self, tenant: str, *, state: PipelineState | None = None, page: int = 1, page_size: int = 50
    ) -> PipelinePage:
        """One page (1-based) of the tenant's pipelines, oldest first, with the total count."""
        if page < 1:
            raise InvalidParameter("page", f"must be >= 1, got {page}")
        if not 1 <= page_size <= MAX_PAGE_SIZE:
            raise InvalidParameter("page_size", f"must be in [1, {MAX_PAGE_SIZE}], got {page_size}")
        found = self.list_pipelines(tenant, state)
        start = (page - 1) * page_size
        return PipelinePage(pipelines=found[start : start + page_size], total=len(found))

    def delete_pipeline(self, tenant: str, pipeline_id: str) -> None:
        pipeline = self._owned_pipeline(tenant, pipeline_id)
        if not self.pipelines.delete_if_empty(pipeline.id):
            depth = self.scheduler.depth(pipeline.id)
            raise PipelineNotEmpty(
                f"pipeline {pipeline_id} still has {depth.queued} queued and {depth.running} running jobs"
            )

    def queue_depth(self, tenant: str, pipeline_id: str) -> QueueDepth:
        return self.scheduler.depth(self.get_pipeline(tenant, pipeline_id).id)

    # --- operators (the CLI and the console's operator view: no tenant, everything) ----------------

    def set_pipeline_state_as_operator(self, pipeline_id: str, state: PipelineState) -> Pipeline:
        """Pause or resume any pipeline, the shared default included (the API refuses that one).

        Writes only the ``state`` field, so a tenant's concurrent rename or cap change is not undone
        by this read-modify-write. Setting ``active`` dispatches even when the pipeline already was:
        jobs that queued up while it was paused go out now, and an operator can refill a window
        without waiting for the reconciler.
        """
        pipeline = self.pipelines.find(pipeline_id)
        if pipeline is None:
            raise PipelineNotFound(f"pipeline {pipeline_id!r} does not exist")
        pipeline.state = state
        self.pipelines.save(pipeline, frozenset({"state"}))
        if state is PipelineState.ACTIVE:
            self.scheduler.dispatch(pipeline.id)
        return pipeline

    def find_job_as_operator(self, job_id: str) -> SnapshotJob | None:
        """Any tenant's job. An operator then acts on it through the tenant's own use cases
        (``cancel(job.tenant, ...)``, ``retry(job.tenant, ...)``), so every rule still applies."""
        return self.jobs.find(job_id)

    def list_jobs_as_operator(self, query: JobQuery) -> JobPage:
        """Every tenant's jobs, newest first, with the filters and paging of ``list_jobs``."""
        if not 1 <= query.limit <= MAX_PAGE_SIZE:
            raise InvalidParameter("limit", f"must be in [1, {MAX_PAGE_SIZE}], got {query.limit}")
        return self.jobs.list_all(query)

    def list_pipelines_as_operator(self) -> list[Pipeline]:
        return self.pipelines.list_all()

    def _owned_pipeline(self, tenant: str, pipeline_id: str) -> Pipeline:
        pipeline = self.get_pipeline(tenant, pipeline_id)
        if pipeline.tenant is None and pipeline.id == DEFAULT_PIPELINE_ID:
            # The shared default pipeline may be paused/resumed by operators only.
            raise InvalidParameter("pipeline_id", "names the shared default pipeline, which only operators can change")
        return pipeline


def _check_webhook_url(url: str) -> None:
    """Shape only; whether the address may be reached is decided at connect time (SSRF guard)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname or len(url) > 2048:
        raise InvalidParameter("webhook_url", "must be an http(s) URL of at most 2048 characters")


def _check_pipeline_name(name: str) -> None:
    if not 1 <= len(name) <= 128:
        raise InvalidParameter("name", "must be 1-128 characters")


def _check_concurrency(value: int | None) -> None:
    if value is not None and not 1 <= value <= 10_000:
        raise InvalidParameter("max_concurrency", f"must be in [1, 10000], got {value}")
