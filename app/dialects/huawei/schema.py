"""Huawei MPC request shapes -> core requests (``docs/vendor-wire.md`` §4.2, seed ``004_…``).

``CreateThumbReq`` (``POST /v1/{project_id}/thumbnails``)::

    {"input": {"bucket", "location", "object"}, "output": {"bucket", "location", "object"},
     "user_data": "...", "tar": 0|1 (0 = pack into a tar; default 1), "sync": 0|1 (default 0),
     "original_dir": 0|1 (0 = a sub-directory per task under output.object; default 0),
     "thumbnail_para": {"type": "TIME"|"DOTS"|"DOTS_MS", "time", "start_time", "duration",
                        "dots", "dots_ms", "output_filename", "format", "width", "height",
                        "max_length", "amount", "threshold"}}

Semantics and units (seconds unless said):

* ``TIME``: one picture every ``time`` s (1-100, default 12) from ``start_time`` (default 0) for
  ``duration`` s (0 or ``"ToEND"``, the default: to the end), and, when that reaches the end of
  the video, one more of its last frame, as Huawei documents (a 20 s video every 11 s -> 0, 11,
  20). A ``Series`` capped at the core's 10,000 images.
* ``DOTS``: up to 10 time points (``dots``); ``DOTS_MS``: one point in ms (``dots_ms``).
  ``sync: 1`` takes exactly one point (DOTS with one dot, or DOTS_MS).
* Names: one picture -> ``<output_filename>.jpg``, else ``<dot>.jpg`` (DOTS_MS: ``<ms>.jpg``);
  several -> ``<output_filename>_<second>.jpg``, else ``<second>.jpg`` (the requested second,
  ``{time_s}``); a tar -> ``<output_filename>.tar``, else ``<task_id>.tar``, holding the pictures
  by those names. ``original_dir: 0`` puts them under ``<output.object>/<task_id>/`` (the task
  id is the "random" directory: unique, and deterministic for re-runs).
* Size: ``width`` (96, 3840] and ``height`` (96, 2160] together = that box; otherwise
  ``max_length`` [240, 3840] fits the long side; otherwise one of ``width``/``height`` keeps the
  aspect (our extension); none = the source size. 0 means "not set", as in Huawei's rules.
* ``threshold`` (0-255: a pixel darker is black) and ``amount`` (1-100: a frame with at least this
  percentage of black pixels is black) switch on the core's black-frame avoidance.

Field objects the SDK never sends are ignored (Huawei's Java service ignores unknown fields);
``null`` is "not set"; numbers may also arrive as decimal strings (the service coerces them).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from app.core import templates
from app.core.jobs import DEFAULT_PRIORITY, MAX_PRIORITY
from app.core.pipelines import DEFAULT_PIPELINE_ID
from app.core.ports import JobQuery
from app.core.service import SubmitRequest
from app.core.specs import (
    MAX_SERIES_COUNT,
    ArchiveSpec,
    BlackFrameSpec,
    ObjectRef,
    OutputSize,
    OutputTarget,
    Series,
    SnapshotSpec,
    TimePoints,
    Timing,
)
from app.core.states import JobState
from app.dialects.huawei.errors import invalid

ORIGIN = "huawei"
PIPELINE_ID = DEFAULT_PIPELINE_ID  # Huawei has no pipelines: every task queues on the shared default one
MAX_DOTS = 10
MAX_TASK_IDS = 10
MAX_LIST_SIZE = 100
DEFAULT_LIST_SIZE = 10
DEFAULT_INTERVAL_S = 12
TIME_FORMAT = "%Y%m%d%H%M%S"
MAX_FILENAME = 180
PROJECT_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")

STATUS_BY_STATE = {
    JobState.SUBMITTED: "WAITING",
    JobState.RUNNING: "PROCESSING",
    JobState.SUCCEEDED: "SUCCEEDED",
    JobState.FAILED: "FAILED",
    JobState.CANCELED: "CANCELED",
}
STATE_BY_STATUS = {status: state for state, status in STATUS_BY_STATE.items()}


@dataclass(frozen=True)
class CreateTask:
    """What a create request asks for: the core request plus what only Huawei's answer needs."""

    request: SubmitRequest
    sync: bool
    kind: str  # TIME | DOTS | DOTS_MS
    input_location: str
    output_location: str


def check_project_id(project_id: str) -> None:
    if not PROJECT_ID.fullmatch(project_id):
        raise invalid(
            "project_id",
            f"{project_id!r} is not a project id (an SDK sends '{{project_id}}' when its "
            "BasicCredentials were given none)",
        )


def _obj(value: Any, field: str, *, required: bool = True) -> Mapping[str, Any]:
    if value is None and not required:
        return {}
    if not isinstance(value, dict):
        raise invalid(field, "must be a JSON object" if value is not None else "is required")
    return value


def _str(data: Mapping[str, Any], name: str, field: str, *, required: bool = False) -> str:
    value = data.get(name)
    if value is None or value == "":
        if required:
            raise invalid(field, "is required")
        return ""
    if not isinstance(value, str):
        raise invalid(field, f"must be a string, got {value!r}")
    return value


def _int(value: Any, field: str) -> int | None:
    """An integer, or None when not set. Accepts integral floats and decimal strings."""
    if value is None:
        return None
    if isinstance(value, str) and re.fullmatch(r"\s*-?[0-9]{1,12}\s*", value):
        return int(value)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise invalid(field, f"must be an integer, got {value!r}")
    if isinstance(value, float) and not (math.isfinite(value) and value.is_integer()):
        raise invalid(field, f"must be an integer, got {value!r}")
    return int(value)


def _ranged(data: Mapping[str, Any], name: str, field: str, lo: int, hi: int, default: int | None) -> int | None:
    value = _int(data.get(name), field)
    if value is None:
        return default
    if not lo <= value <= hi:
        raise invalid(field, f"must be in [{lo}, {hi}], got {value}")
    return value


def _flag(data: Mapping[str, Any], name: str, default: int) -> int:
    value = _ranged(data, name, name, 0, 1, default)
    assert value is not None
    return value


def _int_list(value: Any, field: str) -> list[int]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise invalid(field, "must be an array of integers")
    out: list[int] = []
    for i, item in enumerate(value):
        n = _int(item, f"{field}[{i}]")
        if n is None or n < 0:
            raise invalid(f"{field}[{i}]", f"must be an integer >= 0, got {item!r}")
        out.append(n)
    return out


def _timing(para: Mapping[str, Any], kind: str, sync: bool) -> tuple[Timing, list[int]]:
    """The core timing, and the points asked for (s for DOTS, ms for DOTS_MS; [] for TIME)."""
    p = "thumbnail_para"
    if kind == "TIME":
        interval = _ranged(para, "time", f"{p}.time", 1, 100, DEFAULT_INTERVAL_S)
        start = _ranged(para, "start_time", f"{p}.start_time", 0, 10**9, 0)
        raw_duration = para.get("duration")
        to_end = isinstance(raw_duration, str) and raw_duration.strip().lower() == "toend"
        duration = 0 if to_end else _ranged(para, "duration", f"{p}.duration", 0, 10**9, 0)
        assert interval is not None and start is not None and duration is not None
        timing = Series(
            start_ms=start * 1000.0,
            interval_s=float(interval),
            count=MAX_SERIES_COUNT,
            end_ms=(start + duration) * 1000.0 if duration > 0 else None,
            closing_frame=True,
        )
        return timing, []
    if kind == "DOTS":
        dots = _int_list(para.get("dots"), f"{p}.dots")
        if not dots:
            raise invalid(f"{p}.dots", "is required for type DOTS: one to 10 time points in seconds")
        if len(dots) > MAX_DOTS:
            raise invalid(f"{p}.dots", f"holds {len(dots)} time points; at most {MAX_DOTS} are allowed")
        if sync and len(dots) != 1:
            raise invalid(f"{p}.dots", f"holds {len(dots)} time points; sync=1 captures exactly one")
        return TimePoints(tuple(d * 1000.0 for d in dots)), dots
    dots_ms = _int_list(para.get("dots_ms"), f"{p}.dots_ms")
    if len(dots_ms) != 1:
        raise invalid(f"{p}.dots_ms", f"must hold exactly one time point in ms for type DOTS_MS, got {len(dots_ms)}")
    return TimePoints((float(dots_ms[0]),)), dots_ms


def _size(para: Mapping[str, Any]) -> OutputSize:
    p = "thumbnail_para"
    width = _int(para.get("width"), f"{p}.width") or None  # 0 = not set
    height = _int(para.get("height"), f"{p}.height") or None
    long_side = _int(para.get("max_length"), f"{p}.max_length") or None
    for name, value, lo, hi in (("width", width, 96, 3840), ("height", height, 96, 2160)):
        if value is not None and not lo < value <= hi:
            raise invalid(f"{p}.{name}", f"must be in ({lo}, {hi}], got {value}")
    if long_side is not None and not 240 <= long_side <= 3840:
        raise invalid(f"{p}.max_length", f"must be in [240, 3840], got {long_side}")
    if width is not None and height is not None:
        return OutputSize(width=width, height=height)
    if long_side is not None:
        return OutputSize(long_side=long_side)
    return OutputSize(width=width, height=height)


def _black_frames(para: Mapping[str, Any]) -> BlackFrameSpec | None:
    p = "thumbnail_para"
    amount = _ranged(para, "amount", f"{p}.amount", 1, 100, None)
    threshold = _ranged(para, "threshold", f"{p}.threshold", 0, 255, None)
    if amount is None and threshold is None:
        return None
    d = BlackFrameSpec()
    return BlackFrameSpec(
        black_level=d.black_level if threshold is None else threshold,
        # Huawei: black when the dark share is >= amount %; the core: when it is > the ratio.
        max_dark_ratio=d.max_dark_ratio if amount is None else amount / 100.0 - 1e-9,
        min_stddev=0.0,  # Huawei's rule is darkness only, not flatness
        search_window_ms=d.search_window_ms,
    )


def _filename(para: Mapping[str, Any]) -> str:
    name = _str(para, "output_filename", "thumbnail_para.output_filename")
    if "/" in name or "\\" in name or name in (".", ".."):
        raise invalid("thumbnail_para.output_filename", "must be a file name, without '/'")
    if len(name) > MAX_FILENAME:
        raise invalid("thumbnail_para.output_filename", f"is longer than {MAX_FILENAME} characters")
    return name


def _strip_suffix(name: str, suffix: str) -> str:
    return name[: -len(suffix)] if name.lower().endswith(suffix) else name


def key_templates(
    out_object: str, original_dir: bool, filename: str, points: list[int], tar: bool
) -> tuple[str, str | None]:
    """(image key template, archive key template or None), in the core's template syntax."""
    directory = templates.escape(out_object.strip("/"))
    if not original_dir:
        directory = f"{directory}/{{job_id}}" if directory else "{job_id}"
    base = templates.escape(_strip_suffix(filename, ".jpg"))
    if len(points) == 1:  # one picture: its own name
        name = f"{base}.jpg" if base else f"{points[0]}.jpg"
    else:
        name = f"{base}_{{time_s}}.jpg" if base else "{time_s}.jpg"

    def at(leaf: str) -> str:
        return f"{directory}/{leaf}" if directory else leaf

    archive = None
    if tar:
        archive = at(f"{templates.escape(_strip_suffix(filename, '.tar'))}.tar" if filename else "{job_id}.tar")
    return at(name), archive


def parse_create(body: Any) -> CreateTask:
    data = _obj(body, "body")
    source = _obj(data.get("input"), "input")
    target = _obj(data.get("output"), "output")
    in_bucket = _str(source, "bucket", "input.bucket", required=True)
    in_object = _str(source, "object", "input.object", required=True)
    out_bucket = _str(target, "bucket", "output.bucket", required=True)
    out_object = _str(target, "object", "output.object")
    user_data = _str(data, "user_data", "user_data") if data.get("user_data") is not None else None
    tar = _flag(data, "tar", 1) == 0
    sync = _flag(data, "sync", 0) == 1
    original_dir = _flag(data, "original_dir", 0) == 1
    para = _obj(data.get("thumbnail_para"), "thumbnail_para", required=False)
    kind = (_str(para, "type", "thumbnail_para.type") or "TIME").upper()
    if kind not in ("TIME", "DOTS", "DOTS_MS"):
        raise invalid("thumbnail_para.type", f"must be TIME, DOTS or DOTS_MS, got {para.get('type')!r}")
    if sync and kind == "TIME":
        raise invalid("sync", "1 captures one picture at a time point: use type DOTS (one dot) or DOTS_MS")
    fmt = _int(para.get("format"), "thumbnail_para.format")
    if fmt not in (None, 1):
        raise invalid("thumbnail_para.format", f"must be 1 (jpg), the only format, got {fmt}")
    timing, points = _timing(para, kind, sync)
    image_key, archive_key = key_templates(out_object, original_dir, _filename(para), points, tar)
    spec = SnapshotSpec(
        input=ObjectRef(in_bucket, in_object),
        timing=timing,
        output=OutputTarget(out_bucket, image_key),
        size=_size(para),
        black_frames=_black_frames(para),
        archive=ArchiveSpec(OutputTarget(out_bucket, archive_key)) if archive_key is not None else None,
    )
    request = SubmitRequest(
        spec=spec,
        pipeline_id=PIPELINE_ID,
        # A synchronous caller is waiting on the line: its task goes ahead of queued ones.
        priority=MAX_PRIORITY if sync else DEFAULT_PRIORITY,
        user_data=user_data,
        origin=ORIGIN,
    )
    return CreateTask(
        request=request,
        sync=sync,
        kind=kind,
        input_location=_str(source, "location", "input.location"),
        output_location=_str(target, "location", "output.location"),
    )


# --- ListThumbnailsTask / DeleteThumbnailsTask query strings --------------------------------------


@dataclass(frozen=True)
class ListTasks:
    task_ids: list[str]  # non-empty: the other parameters are ignored, as Huawei documents
    query: JobQuery
    offset: int


def _time_arg(args: Mapping[str, str], name: str) -> datetime | None:
    raw = args.get(name) or ""
    if not raw:
        return None
    try:
        if not re.fullmatch(r"[0-9]{14}", raw):
            raise ValueError(raw)
        return datetime.strptime(raw, TIME_FORMAT).replace(tzinfo=UTC)
    except ValueError:
        raise invalid(name, f"must be a UTC time yyyymmddhhmmss, got {raw!r}") from None


def _count_arg(args: Mapping[str, str], name: str, lo: int, hi: int, default: int) -> int:
    raw = (args.get(name) or "").strip()
    if not raw:
        return default
    if not re.fullmatch(r"[0-9]{1,9}", raw) or not lo <= int(raw) <= hi:
        raise invalid(name, f"must be an integer in [{lo}, {hi}], got {raw!r}")
    return int(raw)


def parse_list(args: Mapping[str, str], task_ids: list[str]) -> ListTasks:
    # Repeated (what the SDK sends) or comma-separated (what Huawei's service also binds).
    ids = [t.strip() for value in task_ids for t in value.split(",") if t.strip()]
    if len(ids) > MAX_TASK_IDS:
        raise invalid("task_id", f"holds {len(ids)} task ids; at most {MAX_TASK_IDS} can be queried at a time")
    if ids:
        return ListTasks(task_ids=list(dict.fromkeys(ids)), query=JobQuery(), offset=0)
    status = args.get("status") or ""
    if status and status not in STATE_BY_STATUS:
        raise invalid("status", f"must be one of {', '.join(STATE_BY_STATUS)}, got {status!r}")
    start, end = _time_arg(args, "start_time"), _time_arg(args, "end_time")
    if start and end and start > end:
        raise invalid("start_time", "must not be later than end_time")
    page = _count_arg(args, "page", 0, 10**7, 0)
    size = _count_arg(args, "size", 1, MAX_LIST_SIZE, DEFAULT_LIST_SIZE)
    query = JobQuery(
        state=STATE_BY_STATUS[status] if status else None,
        created_after=start,
        # end_time names a whole second: every millisecond of it is inside the window
        created_before=end.replace(microsecond=999_000) if end else None,
        limit=size,
    )
    return ListTasks(task_ids=[], query=query, offset=page * size)


def parse_delete_task_id(task_ids: list[str]) -> str:
    ids = [t for t in task_ids if t]
    if not ids:
        raise invalid("task_id", "is required")
    if len(ids) > 1:
        raise invalid("task_id", "names one task to cancel at a time")
    return ids[0]
