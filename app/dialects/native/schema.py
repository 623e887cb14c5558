"""Native JSON request bodies -> core requests: pydantic models at the HTTP edge (the core stays
dataclasses), and the same models document the bodies in the OpenAPI document (``openapi.py``).

Body of ``POST /api/v1/jobs``::

    {"input": {"bucket": "media", "key": "in/video.mp4"},     # or {"url": "https://..."}
     "output": {"bucket": "media", "key": "out/{JobId}/{Count}.jpg"},
     "snapshot": {"mode": "single", "time_ms": 5000}          # or
                 {"mode": "series", "start_ms": 0, "interval_s": 2.5, "count": 10}
                 {"mode": "average", "count": 9, "start_ms": 0, "end_ms": 60000}
                 {"mode": "points", "points_ms": [1000, 2500]},
       ... plus optional "frame_type" ("exact"|"keyframe"), "width", "height",
       "format" ("jpeg"|"png"|"webp"), "quality", "sprite": {...}, "black_frames": {...}
     "pipeline_id": "default", "priority": 5, "user_data": "...", "client_token": "...",
     "webhook_url": "https://...",
     "progress": {"webhook_url": "https://...", "every_images": 5, "every_s": 10}}   # optional

The models are strict (their field types are in ``validation.py``): unknown fields are refused
(each snapshot mode's model holds only its own timing fields), and so are lone surrogates in
any string. ``null`` stands for an absent field, as it always did (and in
``PATCH /pipelines/{id}`` clears ``max_concurrency`` or ``notify``).

Everything the models find wrong is reported at once (``InvalidParameter.errors``), each with
its snake_case dotted path (``snapshot.count``, ``snapshot.points_ms[3]``; top-level fields
bare, ``""`` for the body as a whole). The core's ``validate_spec`` then checks what the models
do not state (key templates, colours, webhook URLs, idempotency) and stops at its first problem.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Discriminator, Field, Tag, model_validator

from app.core import names, specs, templates
from app.core.jobs import DEFAULT_PRIORITY, MAX_PRIORITY, MIN_PRIORITY
from app.core.pipelines import DEFAULT_PIPELINE_ID, NotifyTarget, PipelineState, ResourceClass
from app.core.progress import MAX_EVERY_IMAGES, MAX_EVERY_S, MIN_EVERY_S, ProgressEvents
from app.core.service import MAX_BATCH_JOBS, PipelineChanges, SubmitRequest
from app.dialects.native.validation import (
    Integer,
    Number,
    Range,
    Size,
    Tagged,
    Text,
    core_rule,
    doc,
    refuse,
    validated,
)

# The native API's own key tokens, in the core's neutral template syntax (app/core/templates.py).
KEY_SPELLING = {"{JobId}": "{job_id}", "{Count}": "{index:5}", "{TileCount}": "{sheet:5}"}
NEUTRAL_SPELLING = {"job_id": "{JobId}", "index": "{Count}", "sheet": "{TileCount}"}

MAX_CONCURRENCY = 10_000  # app/core/service.py _check_concurrency

TimeMs = Annotated[
    Number,
    Range(
        0,
        specs.MAX_TIME_MS,
        below="must be a finite number >= 0, got {got}",
        above="must be at most {hi}, got {got}",
    ),
]
Side = Annotated[Integer, Range(specs.MIN_SIDE, specs.MAX_SIDE, words="must be an integer in [{lo}, {hi}], got {got}")]
Bucket = Annotated[
    Text,
    AfterValidator(core_rule(names.bucket_problem)),
    doc(minLength=names.MIN_BUCKET, maxLength=names.MAX_BUCKET, pattern=r"^[a-z0-9][a-z0-9.-]*[a-z0-9]$"),
]
ObjectKey = Annotated[
    Text, AfterValidator(core_rule(names.key_problem)), doc(minLength=1, maxLength=names.MAX_KEY_BYTES)
]

# --- request models -----------------------------------------------------------------------


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, use_attribute_docstrings=True)


class ObjectRef(_Body):
    """An object in the caller's storage (``PUT /api/v1/objects/{bucket}/{key}`` uploads one)."""

    bucket: Bucket
    key: ObjectKey


class UrlInput(_Body):
    """A video the worker reads over http(s) in bounded Range reads through the SSRF guard; no
    bucket grant applies (the URL carries whatever access it needs)."""

    url: Annotated[
        Text,
        AfterValidator(core_rule(specs.url_problem)),
        doc(format="uri", minLength=1, maxLength=specs.MAX_URL_CHARS),
    ]
    """http:// or https://, printable ASCII (percent-encoded), no ``user:password@``."""


def _input_form(value: Any) -> str:
    """The input union's tag: ``url`` when the object names one, else bucket and key (a value
    that is no object is checked as that form, so it is refused as "must be a JSON object")."""
    return "url" if isinstance(value, dict) and "url" in value else "object"


def _one_form(value: Any) -> Any:
    if isinstance(value, dict) and "url" in value and ("bucket" in value or "key" in value):
        raise refuse("must hold either url or bucket and key, not both")
    return value


Input = Annotated[
    Annotated[ObjectRef, Tag("object")] | Annotated[UrlInput, Tag("url")],
    Discriminator(_input_form),
    BeforeValidator(_one_form),
]


class OutputTarget(_Body):
    """Where images go."""

    bucket: Bucket
    key: Annotated[Text, doc(minLength=1)]
    """Key template: ``{JobId}``, ``{Count}`` (the 1-based image number, 5 digits; required when a
    job can make more than one image) and, for sprites, ``{TileCount}``."""


class Sprite(_Body):
    """Tile the snapshots into sprite sheets (Alibaba ``TileOut``), with a WebVTT storyboard."""

    output: OutputTarget
    lines: Annotated[Integer, Range(1, 100)] | None = 10
    columns: Annotated[Integer, Range(1, 100)] | None = 10
    cell_width: Side | None = None
    """Cell size; absent: the snapshot's size."""
    cell_height: Side | None = None
    padding: Annotated[Integer, Range(0, 1024)] | None = 0
    margin: Annotated[Integer, Range(0, 1024)] | None = 0
    color: Text | None = "black"
    """A keyword (black, white, red, ...), ``#rrggbb`` or ``random``."""
    cell_sel_step: Annotated[Integer, Range(1, specs.MAX_SERIES_COUNT)] | None = 1
    """Every n-th snapshot goes into the sheet."""
    keep_cells: bool | None = True
    """False: only the sheets are uploaded, not each snapshot."""
    max_sheet_width: Annotated[Integer, Range(64, specs.MAX_SHEET_SIDE)] | None = specs.MAX_SHEET_SIDE
    max_sheet_height: Annotated[Integer, Range(64, specs.MAX_SHEET_SIDE)] | None = specs.MAX_SHEET_SIDE


class BlackFrames(_Body):
    """Avoid black or blank frames: move forward to an acceptable one, within a window."""

    black_level: Annotated[Integer, Range(0, 255)] | None = 24
    """Luma (0-255) below which a pixel counts as dark."""
    max_dark_ratio: Annotated[Number, Range(0, 1, open_low=True, words="must be in (0, 1], got {got}")] | None = 0.98
    min_stddev: Annotated[Number, Range(0, 255)] | None = 4.0
    """A frame whose luma standard deviation is lower is blank."""
    search_window_ms: (
        Annotated[Number, Range(0, 60_000, open_low=True, words="must be in (0, 60000], got {got}")] | None
    ) = 5000.0


def _fold_format(value: Any) -> Any:
    if isinstance(value, str):
        value = value.lower()
        return "jpeg" if value == "jpg" else value
    return value


class _ImageOptions(_Body):
    """What every mode's images look like (after the mode's timing fields in the schema)."""

    frame_type: Literal["exact", "keyframe"] | None = "exact"
    """``exact``: the frame a player shows at the time; ``keyframe``: the key frame at or before it."""
    width: Side | None = None
    """One side given keeps the aspect ratio; none: the source size; never upscales."""
    height: Side | None = None
    format: Annotated[Literal["jpeg", "png", "webp"], BeforeValidator(_fold_format)] | None = "jpeg"
    """Case-insensitive; ``jpg`` is ``jpeg``."""
    quality: Annotated[Integer, Range(1, 100)] | None = 90
    sprite: Sprite | None = None
    black_frames: BlackFrames | None = None


class _SingleTiming(_Body):
    mode: Literal["single"] = "single"
    time_ms: TimeMs | None = 0.0


class SingleSnapshot(_ImageOptions, _SingleTiming):
    """One frame (the default mode)."""


class _SeriesTiming(_Body):
    mode: Literal["series"]
    start_ms: TimeMs | None = 0.0
    interval_s: Annotated[
        Number,
        Range(
            0,
            specs.MAX_INTERVAL_S,
            open_low=True,
            below="must be greater than 0, got {got}",
            above="must be at most {hi}, got {got}",
        ),
    ]
    count: Annotated[Integer, Range(1, specs.MAX_SERIES_COUNT)]


class SeriesSnapshot(_ImageOptions, _SeriesTiming):
    """``count`` frames: ``start_ms``, then every ``interval_s`` seconds."""


class _AverageTiming(_Body):
    mode: Literal["average"]
    count: Annotated[Integer, Range(1, specs.MAX_SERIES_COUNT)]
    start_ms: TimeMs | None = 0.0
    end_ms: TimeMs | None = None


class AverageSnapshot(_ImageOptions, _AverageTiming):
    """``count`` frames spread evenly over ``[start_ms, end_ms]`` (absent ``end_ms``: the end)."""


class _PointsTiming(_Body):
    mode: Literal["points"]
    points_ms: Annotated[
        list[TimeMs],
        Size(
            1,
            specs.MAX_TIME_POINTS,
            "must hold at least one time point",
            above="holds {n} time points; at most {hi} are allowed",
        ),
    ]


class PointsSnapshot(_ImageOptions, _PointsTiming):
    """Frames at the times listed (sorted; duplicates allowed)."""


def _mode(value: Any) -> str:
    """The union's tag: ``mode``, ``single`` when absent; a body that is no object is checked as
    ``single`` so that it is refused as "must be a JSON object"; a mode that is no string
    matches no tag."""
    if not isinstance(value, dict):
        return "single"
    mode = value.get("mode", "single")
    return mode if isinstance(mode, str) else ""


Snapshot = Annotated[
    Annotated[SingleSnapshot, Tag("single")]
    | Annotated[SeriesSnapshot, Tag("series")]
    | Annotated[AverageSnapshot, Tag("average")]
    | Annotated[PointsSnapshot, Tag("points")],
    Discriminator(_mode),
]
# Fields that are tagged unions, and the field that picks the member: their error locations
# carry the tag next ("snapshot", "series", "count"), which the path leaves out. (A new tagged
# union adds its line here.)
TAGGED_UNIONS: Tagged = {("snapshot",): "mode", ("input",): "url"}


class Progress(_Body):
    """Events while the job runs (like MediaConvert's status updates): one every ``every_images``
    more images or every ``every_s`` seconds, whichever comes first (at least one of the two),
    pushed signed as the completion is (``docs/notifications.md``)."""

    webhook_url: Text | None = None
    """Where they go; absent: the job's ``webhook_url``."""
    every_images: Annotated[Integer, Range(1, MAX_EVERY_IMAGES)] | None = None
    every_s: Annotated[Number, Range(MIN_EVERY_S, MAX_EVERY_S)] | None = None


class JobSubmission(_Body):
    """Body of ``POST /api/v1/jobs``."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "input": {"bucket": "media", "key": "samples/sample.mp4"},
                    "output": {"bucket": "media", "key": "snapshots/{JobId}/{Count}.jpg"},
                    "snapshot": {"mode": "average", "count": 4, "width": 320},
                }
            ]
        }
    )

    input: Input
    """An object in storage (``bucket`` and ``key``) or a ``url``."""
    output: OutputTarget
    snapshot: Snapshot = Field(default_factory=SingleSnapshot)
    """Absent: one frame at 0 ms."""
    pipeline_id: Text | None = DEFAULT_PIPELINE_ID
    priority: Annotated[Integer, Range(MIN_PRIORITY, MAX_PRIORITY)] | None = DEFAULT_PRIORITY
    """1 (lowest) to 10 (highest)."""
    user_data: Text | None = None
    """Echoed back on the job and in its notification; at most 1024 bytes of UTF-8."""
    client_token: Annotated[Text, Size(1, 64, "must be 1-64 characters")] | None = None
    """Idempotency token (or the ``Idempotency-Key`` header): the same token and body give the same job."""
    webhook_url: Text | None = None
    """An http(s) URL the finished job is POSTed to, signed as Standard Webhooks (``GET /api/v1/webhook-secret``)."""
    progress: Progress | None = None


class Notify(_Body):
    """Where a pipeline's completion messages go: exactly one of an MNS topic or queue."""

    topic: Text | None = None
    queue: Text | None = None

    @model_validator(mode="after")
    def _one_of(self) -> Notify:
        if bool(self.topic) == bool(self.queue):
            raise refuse("must name exactly one of topic or queue")
        return self


PipelineName = Annotated[Text, Size(1, 128, "must be 1-128 characters")]
Concurrency = Annotated[Integer, Range(1, MAX_CONCURRENCY)]


class JobBatch(_Body):
    """Body of ``POST /api/v1/jobs:batch``: up to 100 jobs, each the body ``POST /api/v1/jobs``
    takes (``JobSubmission``). Each is checked on its own, so one that is wrong is refused in its
    own result and never refuses the others; the items are therefore not constrained here."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "jobs": [
                        {
                            "input": {"bucket": "media", "key": "samples/sample.mp4"},
                            "output": {"bucket": "media", "key": "snapshots/{JobId}/{Count}.jpg"},
                            "client_token": "order-7-a",
                        },
                        {
                            "input": {"bucket": "media", "key": "samples/sample.mp4"},
                            "output": {"bucket": "media", "key": "thumbs/{JobId}.jpg"},
                            "snapshot": {"mode": "single", "time_ms": 5000, "width": 320},
                        },
                    ]
                }
            ]
        }
    )

    jobs: Annotated[list[Any], Field(min_length=1, max_length=MAX_BATCH_JOBS)]
    """1 to 100 job bodies (``JobSubmission``), answered in this order."""


class PipelineCreation(_Body):
    """Body of ``POST /api/v1/pipelines``."""

    name: PipelineName
    resource_class: Literal["cpu", "gpu"] | None = "cpu"
    max_concurrency: Concurrency | None = None
    """Jobs of this pipeline running at once; absent: no limit of its own."""
    notify: Notify | None = None
    state: Literal["active", "paused"] | None = "active"


class PipelineUpdate(_Body):
    """Body of ``PATCH /api/v1/pipelines/{id}``: the fields given change; ``null`` clears
    ``max_concurrency`` and ``notify``."""

    name: PipelineName | None = None
    state: Literal["active", "paused"] | None = None
    max_concurrency: Concurrency | None = None
    notify: Notify | None = None


REQUEST_MODELS: tuple[type[BaseModel], ...] = (JobSubmission, PipelineCreation, PipelineUpdate)

# --- models -> core requests --------------------------------------------------------------


def _given(value: Any, default: Any) -> Any:
    """``null`` stands for an absent field (it keeps the default)."""
    return default if value is None else value


def _target(ref: OutputTarget) -> specs.OutputTarget:
    return specs.OutputTarget(ref.bucket, templates.from_vendor(ref.key, KEY_SPELLING))


def to_timing(snap: SingleSnapshot | SeriesSnapshot | AverageSnapshot | PointsSnapshot) -> specs.Timing:
    if isinstance(snap, SingleSnapshot):
        return specs.SingleTime(time_ms=_given(snap.time_ms, 0.0))
    if isinstance(snap, SeriesSnapshot):
        return specs.Series(start_ms=_given(snap.start_ms, 0.0), interval_s=snap.interval_s, count=snap.count)
    if isinstance(snap, AverageSnapshot):
        return specs.Average(count=snap.count, start_ms=_given(snap.start_ms, 0.0), end_ms=snap.end_ms)
    return specs.TimePoints(points_ms=tuple(snap.points_ms))


def to_sprite(s: Sprite) -> specs.SpriteSpec:
    d = specs.SpriteSpec(target=_target(s.output))
    return specs.SpriteSpec(
        target=d.target,
        lines=_given(s.lines, d.lines),  # 0 is no default: the model refuses it
        columns=_given(s.columns, d.columns),
        cell_width=s.cell_width,
        cell_height=s.cell_height,
        padding=_given(s.padding, d.padding),
        margin=_given(s.margin, d.margin),
        color=s.color or d.color,
        cell_sel_step=_given(s.cell_sel_step, d.cell_sel_step),
        keep_cells=_given(s.keep_cells, d.keep_cells),
        max_sheet_width=_given(s.max_sheet_width, d.max_sheet_width),
        max_sheet_height=_given(s.max_sheet_height, d.max_sheet_height),
    )


def to_black_frames(b: BlackFrames) -> specs.BlackFrameSpec:
    d = specs.BlackFrameSpec()
    return specs.BlackFrameSpec(
        black_level=_given(b.black_level, d.black_level),
        max_dark_ratio=_given(b.max_dark_ratio, d.max_dark_ratio),
        min_stddev=_given(b.min_stddev, d.min_stddev),
        search_window_ms=_given(b.search_window_ms, d.search_window_ms),
    )


def to_source(given: ObjectRef | UrlInput) -> specs.InputSource:
    if isinstance(given, UrlInput):
        return specs.UrlSource(given.url)
    return specs.ObjectRef(given.bucket, given.key)


# The model admits only these values (its Literals); a dict lookup, as calling an enum by value
# goes through EnumType.__call__ and __new__, twice a job.
_FRAME_TYPES = {member.value: member for member in specs.FrameType}
_FORMATS = {member.value: member for member in specs.ImageFormat}


def to_submit_request(body: JobSubmission) -> SubmitRequest:
    snap = body.snapshot
    spec = specs.SnapshotSpec(
        input=to_source(body.input),
        timing=to_timing(snap),
        output=_target(body.output),
        frame_type=_FRAME_TYPES[_given(snap.frame_type, "exact")],
        size=specs.OutputSize(width=snap.width, height=snap.height),
        format=_FORMATS[_given(snap.format, "jpeg")],
        quality=_given(snap.quality, 90),
        sprite=to_sprite(snap.sprite) if snap.sprite is not None else None,
        black_frames=to_black_frames(snap.black_frames) if snap.black_frames is not None else None,
    )
    return SubmitRequest(
        spec=spec,
        pipeline_id=body.pipeline_id or DEFAULT_PIPELINE_ID,
        priority=_given(body.priority, DEFAULT_PRIORITY),
        user_data=body.user_data,
        client_token=body.client_token,
        webhook_url=body.webhook_url,
        progress_events=to_progress(body.progress) if body.progress is not None else None,
    )


def to_progress(p: Progress) -> ProgressEvents:
    """The intervals' presence and the URL are the core's to check (``SnapshotService.submit``)."""
    return ProgressEvents(webhook_url=p.webhook_url, every_images=p.every_images, every_s=p.every_s)


def to_notify(n: Notify) -> NotifyTarget:
    return NotifyTarget(topic=n.topic, queue=n.queue)


def parse_batch(body: Any) -> list[Any]:
    """The job bodies of a batch, each still to be parsed on its own (``parse_submit``)."""
    return validated(JobBatch, body).jobs


def parse_submit(body: Any) -> SubmitRequest:
    return to_submit_request(validated(JobSubmission, body, TAGGED_UNIONS))


def parse_pipeline_create(body: Any) -> dict[str, Any]:
    """Keyword arguments of ``SnapshotService.create_pipeline``."""
    p = validated(PipelineCreation, body)
    return {
        "name": p.name,
        "resource_class": ResourceClass(_given(p.resource_class, "cpu")),
        "max_concurrency": p.max_concurrency,
        "notify": to_notify(p.notify) if p.notify is not None else None,
        "state": PipelineState(_given(p.state, "active")),
    }


def parse_pipeline_update(body: Any) -> PipelineChanges:
    p = validated(PipelineUpdate, body)
    given = p.model_fields_set  # an explicit null clears; an absent field keeps
    return PipelineChanges(
        name=p.name,
        state=PipelineState(p.state) if p.state else None,
        max_concurrency=p.max_concurrency,
        clear_max_concurrency="max_concurrency" in given and p.max_concurrency is None,
        notify=to_notify(p.notify) if p.notify is not None else None,
        clear_notify="notify" in given and p.notify is None,
    )
