"""Native JSON request bodies -> core requests. Strict: unknown fields and wrong types are 400s.

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
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from app.core import templates
from app.core.errors import InvalidParameter
from app.core.jobs import DEFAULT_PRIORITY
from app.core.pipelines import DEFAULT_PIPELINE_ID, NotifyTarget, PipelineState, ResourceClass
from app.core.progress import ProgressEvents
from app.core.service import PipelineChanges, SubmitRequest
from app.core.specs import (
    Average,
    BlackFrameSpec,
    FrameType,
    ImageFormat,
    ObjectRef,
    OutputSize,
    OutputTarget,
    Series,
    SingleTime,
    SnapshotSpec,
    SpriteSpec,
    TimePoints,
    Timing,
    UrlSource,
    shown,
)

# The native API's own key tokens, in the core's neutral template syntax (app/core/templates.py).
KEY_SPELLING = {"{JobId}": "{job_id}", "{Count}": "{index:5}", "{TileCount}": "{sheet:5}"}
NEUTRAL_SPELLING = {"job_id": "{JobId}", "index": "{Count}", "sheet": "{TileCount}"}

# No native field needs a number this large; bounding integers before anything converts them to
# float keeps a 401-digit integer from overflowing ``math.isfinite`` (an OverflowError, a 500).
MAX_NUMBER = 10**15

_FORMATS = {"jpeg": ImageFormat.JPEG, "jpg": ImageFormat.JPEG, "png": ImageFormat.PNG, "webp": ImageFormat.WEBP}


def _field(path: str, name: str) -> str:
    """The neutral field path: top-level fields (``path == "body"``) stand alone."""
    return name if path == "body" else f"{path}.{name}"


def _obj(value: Any, path: str) -> Mapping[str, Any]:
    if not isinstance(value, dict):
        raise InvalidParameter(path, "must be a JSON object")
    return value


def _only(data: Mapping[str, Any], allowed: set[str], path: str) -> None:
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise InvalidParameter(path, f"has unknown field(s): {', '.join(unknown)}")


def _is_number(value: Any) -> bool:
    """A finite JSON number within ``MAX_NUMBER``, checked without converting a huge int to float."""
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return -MAX_NUMBER <= value <= MAX_NUMBER
    return isinstance(value, float) and math.isfinite(value) and abs(value) <= MAX_NUMBER


def _str(data: Mapping[str, Any], name: str, path: str, *, required: bool = False) -> str | None:
    value = data.get(name)
    if value is None:
        if required:
            raise InvalidParameter(_field(path, name), "is required")
        return None
    if not isinstance(value, str):
        raise InvalidParameter(_field(path, name), "must be a string")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:  # JSON "\ud800": a lone surrogate no store can encode
        raise InvalidParameter(_field(path, name), "is not valid Unicode text") from None
    return value


def _int(data: Mapping[str, Any], name: str, path: str, *, required: bool = False) -> int | None:
    value = data.get(name)
    if value is None:
        if required:
            raise InvalidParameter(_field(path, name), "is required")
        return None
    if not _is_number(value) or (isinstance(value, float) and not value.is_integer()):
        raise InvalidParameter(_field(path, name), f"must be an integer, got {shown(value)}")  # NaN and Infinity too
    return int(value)


def _num(data: Mapping[str, Any], name: str, path: str, *, required: bool = False) -> float | None:
    value = data.get(name)
    if value is None:
        if required:
            raise InvalidParameter(_field(path, name), "is required")
        return None
    if not _is_number(value):
        raise InvalidParameter(
            _field(path, name), f"must be a finite number of at most {MAX_NUMBER:g}, got {shown(value)}"
        )
    return float(value)


def _bool(data: Mapping[str, Any], name: str, path: str) -> bool | None:
    value = data.get(name)
    if value is None:
        return None
    if not isinstance(value, bool):
        raise InvalidParameter(_field(path, name), "must be true or false")
    return value


def _ref(value: Any, path: str) -> tuple[str, str]:
    data = _obj(value, path)
    _only(data, {"bucket", "key"}, path)
    return _str(data, "bucket", path, required=True) or "", _str(data, "key", path, required=True) or ""


def parse_input(value: Any) -> ObjectRef | UrlSource:
    """``{"bucket", "key"}`` or ``{"url"}``: exactly one of the two forms."""
    data = _obj(value, "input")
    if "url" not in data:
        bucket, key = _ref(data, "input")
        return ObjectRef(bucket, key)
    if "bucket" in data or "key" in data:
        raise InvalidParameter("input", "must hold either url or bucket and key, not both")
    _only(data, {"url"}, "input")
    return UrlSource(_str(data, "url", "input", required=True) or "")


def parse_timing(snap: Mapping[str, Any]) -> Timing:
    mode = snap.get("mode", "single")
    p = "snapshot"
    if mode == "single":
        return SingleTime(time_ms=_num(snap, "time_ms", p) or 0.0)
    if mode == "series":
        return Series(
            start_ms=_num(snap, "start_ms", p) or 0.0,
            interval_s=_num(snap, "interval_s", p, required=True) or 0.0,
            count=_int(snap, "count", p, required=True) or 0,
        )
    if mode == "average":
        return Average(
            count=_int(snap, "count", p, required=True) or 0,
            start_ms=_num(snap, "start_ms", p) or 0.0,
            end_ms=_num(snap, "end_ms", p),
        )
    if mode == "points":
        points = snap.get("points_ms")
        if not isinstance(points, list):
            raise InvalidParameter("snapshot.points_ms", "must be a list of numbers")
        if not all(_is_number(x) for x in points):
            raise InvalidParameter("snapshot.points_ms", f"must hold only finite numbers of at most {MAX_NUMBER:g}")
        return TimePoints(points_ms=tuple(float(x) for x in points))
    raise InvalidParameter("snapshot.mode", f"must be single, series, average or points, got {mode!r}")


_SNAPSHOT_FIELDS = {
    "mode",
    "time_ms",
    "start_ms",
    "interval_s",
    "count",
    "end_ms",
    "points_ms",
    "frame_type",
    "width",
    "height",
    "format",
    "quality",
    "sprite",
    "black_frames",
}
_SPRITE_FIELDS = {
    "output",
    "lines",
    "columns",
    "cell_width",
    "cell_height",
    "padding",
    "margin",
    "color",
    "cell_sel_step",
    "keep_cells",
    "max_sheet_width",
    "max_sheet_height",
}
_BLACK_FIELDS = {"black_level", "max_dark_ratio", "min_stddev", "search_window_ms"}


def parse_sprite(value: Any) -> SpriteSpec:
    data = _obj(value, "snapshot.sprite")
    p = "snapshot.sprite"
    _only(data, _SPRITE_FIELDS, p)
    bucket, key = _ref(data.get("output"), f"{p}.output")
    target = OutputTarget(bucket, templates.from_vendor(key, KEY_SPELLING))
    d = SpriteSpec(target=target)

    def opt(name: str, default: int) -> int:
        value = _int(data, name, p)
        return default if value is None else value  # 0 stays 0, for validation to refuse

    keep = _bool(data, "keep_cells", p)
    return SpriteSpec(
        target=target,
        lines=opt("lines", d.lines),
        columns=opt("columns", d.columns),
        cell_width=_int(data, "cell_width", p),
        cell_height=_int(data, "cell_height", p),
        padding=opt("padding", d.padding),
        margin=opt("margin", d.margin),
        color=_str(data, "color", p) or d.color,
        cell_sel_step=opt("cell_sel_step", d.cell_sel_step),
        keep_cells=d.keep_cells if keep is None else keep,
        max_sheet_width=opt("max_sheet_width", d.max_sheet_width),
        max_sheet_height=opt("max_sheet_height", d.max_sheet_height),
    )


def parse_black_frames(value: Any) -> BlackFrameSpec:
    data = _obj(value, "snapshot.black_frames")
    p = "snapshot.black_frames"
    _only(data, _BLACK_FIELDS, p)
    d = BlackFrameSpec()
    level = _int(data, "black_level", p)
    ratio = _num(data, "max_dark_ratio", p)
    std = _num(data, "min_stddev", p)
    window = _num(data, "search_window_ms", p)
    return BlackFrameSpec(
        black_level=d.black_level if level is None else level,
        max_dark_ratio=d.max_dark_ratio if ratio is None else ratio,
        min_stddev=d.min_stddev if std is None else std,
        search_window_ms=d.search_window_ms if window is None else window,
    )


def parse_progress(value: Any) -> ProgressEvents:
    """``progress``: events while the job runs (``app.core.progress``); the bounds are the core's."""
    p = "progress"
    data = _obj(value, p)
    _only(data, {"webhook_url", "every_images", "every_s"}, p)
    return ProgressEvents(
        webhook_url=_str(data, "webhook_url", p),
        every_images=_int(data, "every_images", p),
        every_s=_num(data, "every_s", p),
    )


def parse_submit(body: Any) -> SubmitRequest:
    data = _obj(body, "body")
    _only(
        data,
        {
            "input",
            "output",
            "snapshot",
            "pipeline_id",
            "priority",
            "user_data",
            "client_token",
            "webhook_url",
            "progress",
        },
        "body",
    )
    source = parse_input(data.get("input"))
    out_bucket, out_key = _ref(data.get("output"), "output")
    snap = _obj(data.get("snapshot", {}), "snapshot")
    _only(snap, _SNAPSHOT_FIELDS, "snapshot")
    fmt_raw = _str(snap, "format", "snapshot") or "jpeg"
    if fmt_raw.lower() not in _FORMATS:
        raise InvalidParameter("snapshot.format", f"must be jpeg, png or webp, got {fmt_raw!r}")
    frame_type_raw = _str(snap, "frame_type", "snapshot") or "exact"
    if frame_type_raw not in {"exact", "keyframe"}:
        raise InvalidParameter("snapshot.frame_type", f"must be exact or keyframe, got {frame_type_raw!r}")
    quality = _int(snap, "quality", "snapshot")
    spec = SnapshotSpec(
        input=source,
        timing=parse_timing(snap),
        output=OutputTarget(out_bucket, templates.from_vendor(out_key, KEY_SPELLING)),
        frame_type=FrameType(frame_type_raw),
        size=OutputSize(width=_int(snap, "width", "snapshot"), height=_int(snap, "height", "snapshot")),
        format=_FORMATS[fmt_raw.lower()],
        quality=90 if quality is None else quality,
        sprite=parse_sprite(snap["sprite"]) if snap.get("sprite") is not None else None,
        black_frames=parse_black_frames(snap["black_frames"]) if snap.get("black_frames") is not None else None,
    )
    priority = _int(data, "priority", "body")
    return SubmitRequest(
        spec=spec,
        pipeline_id=_str(data, "pipeline_id", "body") or DEFAULT_PIPELINE_ID,
        priority=DEFAULT_PRIORITY if priority is None else priority,
        user_data=_str(data, "user_data", "body"),
        client_token=_str(data, "client_token", "body"),
        webhook_url=_str(data, "webhook_url", "body"),
        progress_events=parse_progress(data["progress"]) if data.get("progress") is not None else None,
    )


def parse_notify(value: Any, path: str) -> NotifyTarget:
    data = _obj(value, path)
    _only(data, {"topic", "queue"}, path)
    topic, queue = _str(data, "topic", path), _str(data, "queue", path)
    if bool(topic) == bool(queue):
        raise InvalidParameter(path, "must name exactly one of topic or queue")
    return NotifyTarget(topic=topic, queue=queue)


def parse_pipeline_create(body: Any) -> dict[str, Any]:
    data = _obj(body, "body")
    _only(data, {"name", "resource_class", "max_concurrency", "notify", "state"}, "body")
    rc = _str(data, "resource_class", "body") or "cpu"
    if rc not in {"cpu", "gpu"}:
        raise InvalidParameter("resource_class", f"must be cpu or gpu, got {rc!r}")
    state = _str(data, "state", "body") or "active"
    if state not in {"active", "paused"}:
        raise InvalidParameter("state", f"must be active or paused, got {state!r}")
    return {
        "name": _str(data, "name", "body", required=True) or "",
        "resource_class": ResourceClass(rc),
        "max_concurrency": _int(data, "max_concurrency", "body"),
        "notify": parse_notify(data["notify"], "notify") if data.get("notify") is not None else None,
        "state": PipelineState(state),
    }


def parse_pipeline_update(body: Any) -> PipelineChanges:
    data = _obj(body, "body")
    _only(data, {"name", "state", "max_concurrency", "notify"}, "body")
    state = _str(data, "state", "body")
    if state is not None and state not in {"active", "paused"}:
        raise InvalidParameter("state", f"must be active or paused, got {state!r}")
    return PipelineChanges(
        name=_str(data, "name", "body"),
        state=PipelineState(state) if state else None,
        max_concurrency=_int(data, "max_concurrency", "body"),
        clear_max_concurrency="max_concurrency" in data and data["max_concurrency"] is None,
        notify=parse_notify(data["notify"], "notify") if data.get("notify") is not None else None,
        clear_notify="notify" in data and data["notify"] is None,
    )
