"""The native response bodies as pydantic models: what the OpenAPI document says each answer is.

``render.py`` builds the bodies as plain dicts (no model on the hot path); these models are the
contract they are held to: ``additionalProperties`` is false everywhere, so a field rendered
but not declared here (or declared but not rendered) fails the spec tests
(``tests/integration/test_openapi.py``) as well as schemathesis's response checks.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from app.core.states import JobState


class _Out(BaseModel):
    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)


# --- the job's spec, as stored (key templates in the native spelling) ---------------------


class SpecObject(_Out):
    bucket: str
    key: str


class SpecUrl(_Out):
    url: str
    """As given (its query may hold the tenant's own token): shown to its tenant only."""


class SpecTarget(_Out):
    bucket: str
    key_template: str
    """In the native spelling (``{JobId}``, ``{Count}``, ``{TileCount}``)."""


class SingleTiming(_Out):
    kind: Literal["single"]
    time_ms: float


class SeriesTiming(_Out):
    kind: Literal["series"]
    start_ms: float
    interval_s: float
    count: int
    end_ms: float | None
    closing_frame: bool


class AverageTiming(_Out):
    kind: Literal["average"]
    count: int
    start_ms: float
    end_ms: float | None


class PointsTiming(_Out):
    kind: Literal["points"]
    points_ms: list[float]
    """Sorted."""


class SpecSize(_Out):
    width: int | None
    height: int | None
    long_side: int | None


class SpecSprite(_Out):
    target: SpecTarget
    lines: int
    columns: int
    cell_width: int | None
    cell_height: int | None
    padding: int
    margin: int
    color: str
    cell_sel_step: int
    keep_cells: bool
    max_sheet_width: int
    max_sheet_height: int


class SpecBlackFrames(_Out):
    black_level: int
    max_dark_ratio: float
    min_stddev: float
    search_window_ms: float


class SpecArchive(_Out):
    """A tar of the images (jobs submitted through a vendor dialect that offers one)."""

    target: SpecTarget
    keep_images: bool


class JobSpec(_Out):
    """What the job was asked to do, in the core's canonical form (any dialect's job reads the same)."""

    input: SpecObject | SpecUrl
    timing: Annotated[SingleTiming | SeriesTiming | AverageTiming | PointsTiming, Field(discriminator="kind")]
    output: SpecTarget
    frame_type: Literal["exact", "keyframe"]
    size: SpecSize
    format: Literal["jpeg", "png", "webp"]
    quality: int
    sprite: SpecSprite | None
    black_frames: SpecBlackFrames | None
    archive: SpecArchive | None


# --- what the job made ------------------------------------------------------------------------


class OutputImage(_Out):
    index: int
    """1-based: the number in ``{Count}``."""
    requested_ms: float
    actual_ms: float
    """Presentation time of the frame captured."""
    key: str
    width: int
    height: int
    bytes: int
    substituted_ms: float | None
    """Black-frame avoidance moved the capture by this much."""
    uploaded: bool
    """False when only sprite sheets were kept."""
    url: str | None
    """Loads without credentials until it expires; null when the image was not uploaded."""


class SpriteSheet(_Out):
    index: int
    """1-based: the number in ``{TileCount}``."""
    key: str
    width: int
    height: int
    bytes: int
    cells: int
    url: str


class Manifest(_Out):
    images: list[OutputImage]
    sheets: list[SpriteSheet]
    storyboard_key: str | None
    """WebVTT beside the sheets."""
    index_key: str | None
    """JSON index beside the sheets."""
    archive_key: str | None
    source_duration_ms: float | None
    source_width: int | None
    source_height: int | None
    decoder: str | None
    notes: list[str]
    storyboard_url: str | None
    index_url: str | None
    archive_url: str | None


class Progress(_Out):
    done: int
    """Images made so far."""
    total: int
    webhook_url: str | None = None
    """This and the intervals are present when the job asked for progress events."""
    every_images: int | None = None
    every_s: float | None = None


class JobError(_Out):
    code: str
    """``InputNotFound``, ``InputUnreadable``, ``TimeOutOfRange``, ``SnapshotTimeout``, ..."""
    message: str | None


class NotificationResult(_Out):
    """What happened to the completion message (it never affects the job)."""

    message_id: str | None
    error_code: str | None
    error_message: str | None


class Job(_Out):
    id: str
    state: JobState
    pipeline_id: str
    priority: int
    user_data: str | None
    created_at: datetime | None
    started_at: datetime | None
    finished_at: datetime | None
    attempts: int
    progress: Progress
    spec: JobSpec
    manifest: Manifest
    error: JobError | None
    notification: NotificationResult | None
    retry_of: str | None
    """The failed or canceled job this one runs again (``POST /api/v1/jobs/{id}/retry``); null for a new job."""
    webhook_url: str | None = None
    """Present when the job was submitted with one."""


class JobPage(_Out):
    jobs: list[Job]
    """Newest first."""
    next_page_token: str | None
    """Pass as ``page_token`` for the next page; null on the last."""


# --- pipelines, objects, secrets ----------------------------------------------------------------


class PipelineNotify(_Out):
    topic: str | None
    queue: str | None


class QueueDepth(_Out):
    queued: int
    """Accepted, not yet started."""
    running: int


class Pipeline(_Out):
    id: str
    name: str
    state: Literal["active", "paused"]
    resource_class: Literal["cpu", "gpu"]
    max_concurrency: int | None
    notify: PipelineNotify | None
    shared: bool
    """True for a pipeline every tenant may use (``default``); it cannot be changed or deleted."""
    created_at: datetime | None
    depth: QueueDepth | None = None
    """In ``GET /api/v1/pipelines/{id}`` only."""


class PipelinePage(_Out):
    pipelines: list[Pipeline]
    total: int


class UploadedObject(_Out):
    bucket: str
    key: str
    size: int
    """Bytes stored."""
    url: str
    """Loads without credentials until it expires."""


class WebhookSecret(_Out):
    secret: str
    """Standard Webhooks secret (``whsec_...``) that signs pushes to this tenant's ``webhook_url``s."""


# --- errors ------------------------------------------------------------------------------------


class FieldError(_Out):
    field: str
    """Snake_case dotted path (``snapshot.count``, ``snapshot.points_ms[3]``); top-level fields
    bare; ``""`` for the request as a whole."""
    reason: str
    """Completes the sentence "<field> ..."."""


class ErrorBody(_Out):
    """Every native error answer."""

    code: str
    """Stable and machine-readable: ``InvalidParameter``, ``JobNotFound``, ``InvalidAccessKey``, ..."""
    message: str
    """For people: every problem, in sentences."""
    request_id: str | None
    """Also in the ``X-Request-Id`` response header; quote it when reporting a problem."""
    errors: list[FieldError] = Field(default_factory=list, min_length=1)
    """With ``InvalidParameter`` only: every problem found at once, the first as in ``message``."""


# --- batch submission ---------------------------------------------------------------------------


class BatchError(_Out):
    """Why one job of a batch was refused: what ``POST /api/v1/jobs`` would have answered for it."""

    code: str
    message: str
    errors: list[FieldError] = Field(default_factory=list, min_length=1)
    """With ``InvalidParameter`` only: every problem with this job's body."""


class BatchItem(_Out):
    index: int
    """The job's position in the request's ``jobs`` (0-based)."""
    status: int
    """The status ``POST /api/v1/jobs`` would have answered: 202 (200 for a finished job returned
    again for its ``client_token``) with ``job``, or 400/403/404/409/503 with ``error``."""
    job: Job | None = None
    error: BatchError | None = None


class BatchResult(_Out):
    """Answer of ``POST /api/v1/jobs:batch``: one result per job, in the request's order."""

    results: list[BatchItem]
    accepted: int
    refused: int


RESPONSE_MODELS: tuple[type[BaseModel], ...] = (
    Job,
    JobPage,
    Pipeline,
    PipelinePage,
    UploadedObject,
    WebhookSecret,
    BatchResult,
    ErrorBody,
)
