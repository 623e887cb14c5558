"""Use cases: submit, get, list, cancel jobs; manage pipelines. Every API dialect calls these.

The service decides *what* happens; adapters behind the ports in ``app.core.ports`` decide
*how*. It never sees HTTP, Redis or Celery.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import BinaryIO
from urllib.parse import urlsplit

from app.core import outputs
from app.core.errors import (
    AccessDenied,
    DomainError,
    InputNotFound,
    InvalidJobState,
    InvalidParameter,
    JobNotFound,
    PipelineNotEmpty,
    PipelineNotFound,
    TooLarge,
    Unavailable,
)
from app.core.grants import Access, Grant, permits
from app.core.jobs import (
    DEFAULT_ORIGIN,
    DEFAULT_PRIORITY,
    MAX_DIALECT_DATA_CHARS,
    MAX_DIALECT_DATA_ITEMS,
    MAX_PRIORITY,
    MIN_PRIORITY,
    SnapshotJob,
)
from app.core.names import bucket_problem, key_problem
from app.core.pipelines import DEFAULT_PIPELINE_ID, NotifyTarget, Pipeline, PipelineState, ResourceClass
from app.core.ports import (
    MAX_PAGE_SIZE,
    BucketGrants,
    CountedJobPage,
    EndpointPolicy,
    JobPage,
    JobQuery,
    JobRepository,
    ObjectCatalog,
    ObjectUploads,
    ObjectUrls,
    PipelinePage,
    PipelineRepository,
    PushEndpoint,
    PushEndpoints,
    QueueDepth,
    Scheduler,
    WebhookSecrets,
)
from app.core.progress import ProgressEvents, check_intervals
from app.core.specs import ObjectRef, SnapshotSpec, UrlSource, spec_to_dict, validate_spec, validate_user_data
from app.core.states import JobState

MAX_WAIT_S = 10.0
MAX_BATCH_JOBS = 100  # jobs in one batch submission (``submit_many``)
DEFAULT_MAX_UPLOAD_BYTES = 1 << 30


@dataclass(frozen=True)
class SubmitRequest:
    spec: SnapshotSpec
    pipeline_id: str = DEFAULT_PIPELINE_ID
    priority: int = DEFAULT_PRIORITY
    user_data: str | None = None
    client_token: str | None = None
    webhook_url: str | None = None
    origin: str = DEFAULT_ORIGIN  # which dialect submits it (not part of the idempotency fingerprint)
    dialect_data: Mapping[str, str] = field(default_factory=dict)  # see SnapshotJob.dialect_data
    retry_of: str | None = None  # set by ``retry`` only
    progress_events: ProgressEvents | None = None  # its webhook_url defaults to ``webhook_url``


@dataclass(frozen=True)
class PipelineChanges:
    name: str | None = None
    state: PipelineState | None = None
    max_concurrency: int | None = None
    clear_max_concurrency: bool = False
    notify: NotifyTarget | None = None
    clear_notify: bool = False


def new_id() -> str:
    """32 random hex digits (``uuid4().hex``'s form, a few times cheaper: one per submitted job)."""
    return secrets.token_hex(16)


def request_fingerprint(tenant: str, req: SubmitRequest) -> str:
    """What a client token is bound to: same token + same fingerprint = the same job."""
    payload = {
        "tenant": tenant,
        "spec": spec_to_dict(req.spec),
        "pipeline": req.pipeline_id,
        "priority": req.priority,
        "user_data": req.user_data,
        "webhook": req.webhook_url,
        "dialect_data": dict(req.dialect_data),
    }
    if req.progress_events is not None:  # only when asked: fingerprints stored before it stay valid
        payload["progress"] = req.progress_events.to_dict()
    return hashlib.sha256(json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


class SnapshotService:
    def __init__(
        self,
        jobs: JobRepository,
        pipelines: PipelineRepository,
        scheduler: Scheduler,
        objects: ObjectCatalog,
        *,
        grants: BucketGrants,
        object_urls: ObjectUrls | None = None,
        endpoints: EndpointPolicy | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(tz=UTC),
        sleep: Callable[[float], None] = time.sleep,
        ids: Callable[[], str] = new_id,
        webhook_secrets: WebhookSecrets | None = None,
        push_endpoints: PushEndpoints | None = None,
        uploads: ObjectUploads | None = None,
        max_upload_bytes: int = DEFAULT_MAX_UPLOAD_BYTES,
        submit_pipelines: PipelineRepository | None = None,
        submit_grants: BucketGrants | None = None,
        allow_url_inputs: bool = True,
    ) -> None:
        """``submit_pipelines`` and ``submit_grants``: the lookups submission uses, when they may
        differ from ``pipelines`` and ``grants`` (short-lived caches, ``app/storage/cache.py``).
        Only submission uses them: its create step re-checks the pipeline itself, while every view
        that shows a pipeline or acts on an object reads the authoritative ports."""
        self.jobs = jobs
        self.pipelines = pipelines
        self.scheduler = scheduler
        self.objects = objects
        self.grants = grants
        self.object_urls = object_urls
        self.endpoints = endpoints
        self.clock = clock
        self.sleep = sleep
        self.ids = ids
        self.webhook_secrets = webhook_secrets
        self.push_endpoints = push_endpoints
        self.uploads = uploads
        self.max_upload_bytes = max_upload_bytes
        self.submit_pipelines = submit_pipelines or pipelines
        self.submit_grants = submit_grants or grants
        self.allow_url_inputs = allow_url_inputs  # OPENMPS_ALLOW_URL_INPUTS

    # --- jobs -------------------------------------------------------------------------------

    def submit(self, tenant: str, req: SubmitRequest) -> SnapshotJob:
        """Validate, check the tenant's grants, check the objects exist, store, then dispatch.

        Grants come before existence, so another tenant's buckets and objects cannot be probed.
        The job is stored before any task message is sent. The repository stores the job and
        fills the pipeline's dispatch window in one step (``JobRepository.create``), so no
        separate dispatch follows here. A URL input is checked for shape and for a literal
        address the endpoint policy refuses, never fetched here: the API must not make requests
        to arbitrary URLs on a caller's behalf; the worker finds out what is there.
        """
        return self.jobs.create(*self._prepare(tenant, req))

    def submit_many(self, tenant: str, reqs: Sequence[SubmitRequest]) -> list[SnapshotJob | DomainError]:
        """A batch (1 to ``MAX_BATCH_JOBS``): each request accepted or refused on its own, with
        every check of ``submit``; the accepted ones are stored in one ``create_many`` (a client
        token repeated within the batch names one job, as it would across two requests). Returns,
        in order, the stored job or the refusal of each."""
        if not 1 <= len(reqs) <= MAX_BATCH_JOBS:
            raise InvalidParameter("jobs", f"must hold 1 to {MAX_BATCH_JOBS} jobs, got {len(reqs)}")
        outcomes: list[SnapshotJob | DomainError] = []
        prepared: list[tuple[SnapshotJob, str]] = []
        positions: list[int] = []
        for req in reqs:
            try:
                prepared.append(self._prepare(tenant, req))
                positions.append(len(outcomes))
                outcomes.append(prepared[-1][0])
            except DomainError as refused:
                outcomes.append(refused)
        for position, stored in zip(positions, self.jobs.create_many(prepared), strict=True):
            outcomes[position] = stored
        return outcomes

    def _prepare(self, tenant: str, req: SubmitRequest) -> tuple[SnapshotJob, str]:
        """The job a valid request makes, and its fingerprint; raises the request's refusal."""
        spec = validate_spec(req.spec)
        validate_user_data(req.user_data)
        _check_dialect_data(req.dialect_data)
        if not MIN_PRIORITY <= req.priority <= MAX_PRIORITY:
            raise InvalidParameter("priority", f"must be in [{MIN_PRIORITY}, {MAX_PRIORITY}], got {req.priority}")
        if req.client_token is not None and not 1 <= len(req.client_token) <= 64:
            raise InvalidParameter("client_token", "must be 1-64 characters")
        if req.webhook_url is not None:
            self._check_endpoint(req.webhook_url, "webhook_url")
        progress = self._check_progress(req)
        if isinstance(spec.input, UrlSource):
            self._check_url_input(spec.input.url)
        pipeline = self.submit_pipelines.find(req.pipeline_id)
        if pipeline is None or not pipeline.visible_to(tenant):
            raise PipelineNotFound(f"pipeline {req.pipeline_id!r} does not exist")
        job_id = self.ids()
        self._check_access(tenant, spec, job_id)
        source = spec.input
        if isinstance(source, ObjectRef):
            if not self.objects.bucket_exists(source.bucket):
                raise InputNotFound(f"input bucket {source.bucket!r} does not exist")
            if not self.objects.object_exists(source.bucket, source.key):
                raise InputNotFound(f"input object {source.bucket}/{source.key} does not exist")
        targets = [("output", spec.output)]
        targets += [("sprite.output", spec.sprite.target)] if spec.sprite else []
        targets += [("archive.output", spec.archive.target)] if spec.archive else []
        for name, target in targets:
            if not self.objects.bucket_exists(target.bucket):
                raise InvalidParameter(f"{name}.bucket", f"{target.bucket!r} does not exist")
        job = SnapshotJob(
            id=job_id,
            tenant=tenant,
            pipeline_id=pipeline.id,
            spec=spec,
            priority=req.priority,
            user_data=req.user_data,
            client_token=req.client_token,
            webhook_url=req.webhook_url,
            origin=req.origin,
            dialect_data=dict(req.dialect_data),
            retry_of=req.retry_of,
            progress_events=progress,
            created_at=self.clock(),
            progress_total=spec.requested_count or 0,
        )
        # Only a client token is bound to a fingerprint (the create script stores it with the token),
        # taken over the request as validated (time points sorted, progress URL resolved).
        if not req.client_token:
            return job, ""
        return job, request_fingerprint(tenant, replace(req, spec=spec, progress_events=progress))

    def _check_progress(self, req: SubmitRequest) -> ProgressEvents | None:
        """The progress events asked for, with their URL resolved: their own, else the job's
        ``webhook_url``; checked by the same policy as ``webhook_url``."""
        progress = req.progress_events
        if progress is None:
            return None
        check_intervals(progress)
        if progress.webhook_url is None:
            if req.webhook_url is None:
                raise InvalidParameter("progress.webhook_url", "is required when the job has no webhook_url")
            return replace(progress, webhook_url=req.webhook_url)
        self._check_endpoint(progress.webhook_url, "progress.webhook_url")
        return progress

    def _check_url_input(self, url: str) -> None:
        """The operator's switch, then a literal address the policy refuses (a private one, unless
        allowed): a 400 now rather than a failed job later. Names are resolved by the worker."""
        if not self.allow_url_inputs:
            raise InvalidParameter(
                "input.url", "is not accepted: this server takes inputs by bucket and key only; upload the video first"
            )
        refusal = self.endpoints.refusal(url) if self.endpoints is not None else None
        if refusal:
            raise InvalidParameter("input.url", f"is refused: {refusal}")

    def _check_access(self, tenant: str, spec: SnapshotSpec, job_id: str) -> None:
        """Read on an object input (a URL input is the tenant's own: no grant applies); write on
        every key the job can produce; none of them its input.

        The grants come from ``submit_grants`` (possibly a short-lived cache); a denial is
        confirmed against ``grants`` before it is raised, so a grant added a moment ago in any
        process works at once (only a revocation can take the cache's lifetime to be seen)."""
        try:
            self._check_grants(self.submit_grants.grants_for(tenant), spec, job_id)
        except AccessDenied:
            if self.submit_grants is self.grants:
                raise
            self._check_grants(self.grants.grants_for(tenant), spec, job_id)

    def _check_grants(self, grants: list[Grant], spec: SnapshotSpec, job_id: str) -> None:
        source = spec.input if isinstance(spec.input, ObjectRef) else None
        if source is not None and not permits(grants, Access.READ, source.bucket, source.key):
            raise AccessDenied(f"you may not read {source.bucket}/{source.key}", field="input", access="read")
        for family in outputs.families(spec, job_id):
            if not permits(grants, Access.WRITE, family.bucket, family.head):
                raise AccessDenied(
                    f"you may not write to {family.bucket}/{family.head}", field=family.field, access="write"
                )
            # Every key of the family starts with its head: only then can it be the input.
            if (
                source is not None
                and family.bucket == source.bucket
                and source.key.startswith(family.head)
                and family.pattern.fullmatch(source.key)
            ):
                raise InvalidParameter(
                    f"{family.field}.key", "can name the job's own input; a job never overwrites its input"
                )

    def authorize_read(self, tenant: str, bucket: str, key: str) -> None:
        """An object read with an access key (``GET /objects/...`` without a signature)."""
        if bucket_problem(bucket) or key_problem(key):
            raise InvalidParameter("", f"{bucket}/{key} is not a valid object name")
        if not permits(self.grants.grants_for(tenant), Access.READ, bucket, key):
            raise AccessDenied(f"you may not read {bucket}/{key}", access="read")

    def upload(
        self, tenant: str, bucket: str, key: str, stream: BinaryIO, length: int | None, content_type: str
    ) -> ObjectRef:
        """Store an uploaded object (a local video to snapshot): the tenant needs write on it.

        Names, then the grant, then the size, then the bucket's existence (so another tenant's
        buckets cannot be probed); the body is streamed to the store, never held whole."""
        if self.uploads is None:
            raise Unavailable("uploads are not configured in this process")
        for name, problem in (("bucket", bucket_problem(bucket)), ("key", key_problem(key))):
            if problem:
                raise InvalidParameter(name, problem)
        if not permits(self.grants.grants_for(tenant), Access.WRITE, bucket, key):
            raise AccessDenied(f"you may not write to {bucket}/{key}", field="key", access="write")
        if length is None:
            raise InvalidParameter("content_length", "is required: send the object's size in Content-Length")
        if length > self.max_upload_bytes:
            raise TooLarge(f"the object is {length} bytes; this server accepts at most {self.max_upload_bytes}")
        if not self.objects.bucket_exists(bucket):
            raise InvalidParameter("bucket", f"{bucket!r} does not exist")
        self.uploads.put_stream(bucket, key, stream, length, content_type)
        return ObjectRef(bucket, key)

    def object_url(self, bucket: str, key: str) -> str:
        """A URL that fetches the object without credentials until it expires (``OPENMPS_URL_TTL_S``)."""
        if self.object_urls is None:
            raise Unavailable("object URLs are not configured in this process")
        return self.object_urls.url(bucket, key)

    def delete_job(self, tenant: str, job_id: str, *, outputs: bool = False) -> None:
        """Forget a finished job; with ``outputs``, first delete every object it wrote (needs write
        on each, checked before anything is deleted). Queued and running jobs are refused."""
        job = self.get(tenant, job_id)
        if not job.is_terminal:
            raise InvalidJobState(f"job {job_id} is {job.state.value}; cancel it before deleting it")
        if outputs:
            written = self.jobs.written(job_id)
            grants = self.grants.grants_for(tenant)
            for bucket, key in written:
                if not permits(grants, Access.WRITE, bucket, key):
                    raise AccessDenied(f"you may not delete {bucket}/{key}", field="output", access="write")
            for bucket, key in written:
                self.objects.delete_object(bucket, key)
        if not self.jobs.delete(job_id):
            raise JobNotFound(f"job {job_id!r} does not exist")

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

    def set_push_endpoint(self, tenant: str, origin: str, endpoint: PushEndpoint) -> PushEndpoint:
        """Store the tenant's push endpoint for the jobs ``origin`` submits (replacing any), to
        which the notifier pushes their completion messages from now on. A disabled endpoint
        may keep its URL (or have none); an enabled one needs an http(s) URL."""
        if endpoint.url is not None:
            self._check_endpoint(endpoint.url, "url")
        elif endpoint.enabled:
            raise InvalidParameter("url", "is required when the endpoint is enabled")
        self._push_endpoints().put(tenant, origin, endpoint)
        return endpoint

    def get_push_endpoint(self, tenant: str, origin: str) -> PushEndpoint | None:
        """The tenant's push endpoint for ``origin``'s jobs; None when none was ever set."""
        return self._push_endpoints().get(tenant, origin)

    def _check_endpoint(self, url: str, field: str) -> None:
        """A URL the notifier will push to: its shape, then a literal address the policy refuses
        (a private one, unless allowed) is a 400 now rather than a dead letter later."""
        _check_push_url(url, field)
        refusal = self.endpoints.refusal(url) if self.endpoints is not None else None
        if refusal:
            raise InvalidParameter(field, refusal)

    def _push_endpoints(self) -> PushEndpoints:
        if self.push_endpoints is None:
            raise Unavailable("push endpoints are not configured in this process")
        return self.push_endpoints

    def wait(self, tenant: str, job_id: str, timeout_s: float, poll_s: float = 0.05) -> SnapshotJob:
        """The job once it is terminal, or as it stands after ``timeout_s`` (at most 10 s)."""
        deadline = time.monotonic() + min(max(timeout_s, 0.0), MAX_WAIT_S)
        job = self.get(tenant, job_id)
        while not job.is_terminal and time.monotonic() < deadline:
            self.sleep(poll_s)
            job = self.get(tenant, job_id)
        return job

    def list_jobs(self, tenant: str, query: JobQuery) -> JobPage:
        _check_query(query)
        return self.jobs.list(tenant, query)

    def list_jobs_at(self, tenant: str, query: JobQuery, offset: int) -> CountedJobPage:
        """``query.limit`` jobs starting at the ``offset``-th match (0-based, newest first, the
        order of ``list_jobs``) and the number of matches in all: for APIs that page by number.
        Positions shift when jobs are submitted between two calls, as with any offset paging."""
        _check_query(query)
        if query.page_token is not None:
            raise InvalidParameter("page_token", "cannot be combined with an offset")
        if offset < 0:
            raise InvalidParameter("offset", f"must be >= 0, got {offset}")
        return self.jobs.list_at(tenant, query, offset)

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
        user data, webhook, progress events, origin and dialect data (so its dialect still echoes
        what was sent), recording ``retry_of``. The old job stays as it ended and gets no back-link (its state is
        terminal, no transition leaves a terminal state, and it may be retried more than once:
        the retries name it, ``retry_of``, rather than it naming them). No client token: a retry is
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
                dialect_data=job.dialect_data,
                retry_of=job.id,
                progress_events=job.progress_events,
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


def _check_dialect_data(data: Mapping[str, str]) -> None:
    size = sum(len(k) + len(v) for k, v in data.items())
    if len(data) > MAX_DIALECT_DATA_ITEMS or size > MAX_DIALECT_DATA_CHARS:
        raise InvalidParameter(
            "dialect_data",
            f"holds {len(data)} items of {size} characters; at most {MAX_DIALECT_DATA_ITEMS} and {MAX_DIALECT_DATA_CHARS}",
        )
    if not all(isinstance(k, str) and isinstance(v, str) for k, v in data.items()):
        raise InvalidParameter("dialect_data", "must map strings to strings")


def _check_query(query: JobQuery) -> None:
    if not 1 <= query.limit <= MAX_PAGE_SIZE:
        raise InvalidParameter("limit", f"must be in [1, {MAX_PAGE_SIZE}], got {query.limit}")
    if query.created_after and query.created_before and query.created_after > query.created_before:
        raise InvalidParameter("created_after", "must not be later than created_before")


def _check_push_url(url: str, field: str) -> None:
    """Shape only here; a literal address is checked by the ``EndpointPolicy``, and every resolved
    address again at connect time (the SSRF guard)."""
    reason = "must be an http(s) URL with a host, of at most 2048 characters"
    if len(url) > 2048:
        raise InvalidParameter(field, reason)
    try:
        parts = urlsplit(url)
        host, _ = parts.hostname, parts.port  # both parse lazily and raise on "http://[::1" or ":99999"
    except ValueError:
        raise InvalidParameter(field, f"{reason}; it does not parse") from None
    if parts.scheme not in ("http", "https") or not host:
        raise InvalidParameter(field, reason)


def _check_pipeline_name(name: str) -> None:
    if not 1 <= len(name) <= 128:
        raise InvalidParameter("name", "must be 1-128 characters")


def _check_concurrency(value: int | None) -> None:
    if value is not None and not 1 <= value <= 10_000:
        raise InvalidParameter("max_concurrency", f"must be in [1, 10000], got {value}")
