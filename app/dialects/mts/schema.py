"""MPS RPC parameters -> core requests.

Every business parameter arrives as a string (``docs/vendor-wire.md`` §1.3); ``Input``,
``SnapshotConfig`` and ``NotifyConfig`` are JSON text whose numbers may be strings (``"5"``) or
numbers. Parsing is lenient where MPS is (unknown keys are ignored, numbers in either form) and
strict where a wrong value would silently do something else (a negative ``Interval``, ``NaN``,
``FrameType=keyframe``): those are ``InvalidParameter.<Param>`` errors naming the parameter.

Modes (seed 002/003 and the MPS FAQ): no ``Interval`` and no ``Num`` -> synchronous, one image at
``Time`` ms; ``Interval`` > 0 -> a series of ``Num`` images (``Interval`` seconds apart, 10 by
default); ``Interval`` = 0 with ``Num`` -> ``Num`` images spread evenly over the video;
``TimeArray.TimePointList`` -> those times (ms, any order, duplicates kept; asynchronous).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote

from app.core import templates
from app.core.jobs import MAX_PRIORITY
from app.core.pipelines import DEFAULT_PIPELINE_ID, NotifyTarget, PipelineState
from app.core.ports import JobQuery
from app.core.service import SubmitRequest
from app.core.specs import (
    Average,
    FrameType,
    ObjectRef,
    OutputSize,
    OutputTarget,
    Series,
    SingleTime,
    SnapshotSpec,
    SpriteSpec,
    TimePoints,
    Timing,
)
from app.core.states import JobState
from app.dialects.mts.errors import MtsError, invalid, missing
from app.dialects.mts.render import Echo
from app.gateway.raw import RawRequest
from app.gateway.signing import parse_query

ORIGIN = "mts"
VERSION = "2014-06-18"
MPS_PRIORITY = 6  # what the MPS console gives every job (API range 1..10); the core's default is 5
# Synchronous jobs do not queue in MPS; here they share the pipeline, so they go first to keep
# within their budget.
SYNC_PRIORITY = MAX_PRIORITY
DEFAULT_INTERVAL_S = 10.0
MAX_JOB_IDS = 10
MAX_PIPELINE_IDS = 10
DEFAULT_PAGE_SIZE = 30
MAX_PAGE_SIZE = 300
# MPS key tokens -> the core's neutral template syntax. ``{Count}`` is the 1-based image number,
# zero-padded to 5 digits (MPS's notification sample: ``{Count}.jpg`` -> ``00005.jpg``);
# ``{TileCount}`` the sprite-sheet number, likewise; ``{JobId}`` is an openmps extension.
KEY_SPELLING = {"{Count}": "{index:5}", "{TileCount}": "{sheet:5}", "{JobId}": "{job_id}"}
FRAME_TYPES = {"normal": FrameType.EXACT, "intra": FrameType.KEYFRAME}
JOB_STATES = {
    "Submitted": (JobState.SUBMITTED,),
    "Snapshoting": (JobState.RUNNING,),
    "Success": (JobState.SUCCEEDED,),
    "Fail": (JobState.FAILED, JobState.CANCELED),
}
PIPELINE_STATES = {"Active": PipelineState.ACTIVE, "Paused": PipelineState.PAUSED}
_NUMBER = re.compile(r"[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?")
_TIME_FORMATS = ("%Y-%m-%dT%H:%M:%SZ", "%Y-%m-%dT%H:%M:%S.%fZ")


# --- the call -------------------------------------------------------------------------------


def params_of(raw: RawRequest) -> list[tuple[str, str]]:
    """Decoded parameters: the query, then a form body (which RPC v1 also signs)."""
    pairs = parse_query(raw.query)
    if raw.body and raw.header("Content-Type").split(";")[0].strip().lower() == "application/x-www-form-urlencoded":
        try:
            pairs += parse_query(raw.body.decode("utf-8"))
        except UnicodeDecodeError:
            raise MtsError("InvalidParameter", "The request body is not UTF-8 form data.") from None
    return pairs


@dataclass(frozen=True)
class Call:
    action: str
    version: str
    xml: bool
    params: dict[str, str]


def read_call(raw: RawRequest) -> Call:
    """Action and Version: from the (signed) query for RPC v1, from the (signed) ``x-acs-*``
    headers for ACS3, whose query carries business parameters only."""
    params = dict(params_of(raw))
    acs3 = raw.header("Authorization").startswith("ACS3-")
    action = (raw.header("x-acs-action") if acs3 else params.get("Action")) or params.get("Action", "")
    version = (raw.header("x-acs-version") if acs3 else params.get("Version")) or params.get("Version", "")
    return Call(action, version, params.get("Format", "").upper() == "XML", params)


def parse_time(value: str) -> datetime | None:
    """``YYYY-MM-DDThh:mm:ssZ`` (UTC, optionally with fractional seconds); None when malformed."""
    for fmt in _TIME_FORMATS:
        try:
            return datetime.strptime(value, fmt).replace(tzinfo=UTC)
        except ValueError:
            continue
    return None


# --- values -----------------------------------------------------------------------------------


def json_object(params: Mapping[str, str], name: str, *, required: bool = True) -> dict[str, Any] | None:
    raw = params.get(name)
    if raw is None or raw.strip() == "":
        if required:
            raise missing(name)
        return None
    try:
        value = json.loads(raw)
    except ValueError:
        raise invalid(name, "is not valid JSON") from None
    if not isinstance(value, dict):
        raise invalid(name, "must be a JSON object")
    return value


def _sub(data: Mapping[str, Any], name: str, path: str) -> dict[str, Any] | None:
    value = data.get(name)
    if value is None or value == "":
        return None
    if isinstance(value, str):  # some callers nest JSON text
        try:
            value = json.loads(value)
        except ValueError:
            raise invalid(f"{path}.{name}", "must be a JSON object") from None
    if not isinstance(value, dict):
        raise invalid(f"{path}.{name}", "must be a JSON object")
    return value


def number(value: Any, path: str) -> float | None:
    """A finite number given as a JSON number or a decimal string; None when absent or empty."""
    if value is None or (isinstance(value, str) and value.strip() == ""):
        return None
    if isinstance(value, bool):
        raise invalid(path, f"must be a number, got {value!r}")
    if isinstance(value, int | float):
        result = float(value)
    elif isinstance(value, str) and _NUMBER.fullmatch(value.strip()):
        result = float(value.strip())
    else:
        raise invalid(path, f"must be a number, got {value!r}")
    if not math.isfinite(result):
        raise invalid(path, f"must be a finite number, got {value!r}")
    return result


def integer(value: Any, path: str) -> int | None:
    result = number(value, path)
    if result is None:
        return None
    if not result.is_integer():
        raise invalid(path, f"must be an integer, got {value!r}")
    return int(result)


def _text(data: Mapping[str, Any], name: str, path: str) -> str | None:
    value = data.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise invalid(f"{path}.{name}", "must be a string")
    return value


def _bool(value: Any, path: str) -> bool | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    raise invalid(path, f"must be true or false, got {value!r}")


def oss_file(data: Mapping[str, Any], path: str) -> tuple[str, str, dict[str, str]]:
    """``{Bucket, Location, Object, RoleArn}`` -> (bucket, decoded object name, echo).

    MPS wants ``Object`` URL-encoded (``example%2Ftest.flv``); it is decoded with ``unquote``
    (never ``unquote_plus``: a ``+`` in a key is a plus). An unencoded name decodes to itself."""
    bucket = _text(data, "Bucket", path)
    obj = _text(data, "Object", path)
    if not bucket:
        raise invalid(f"{path}.Bucket", "is required")
    if not obj:
        raise invalid(f"{path}.Object", "is required")
    echo = {"Object": obj}
    for extra in ("Location", "RoleArn"):
        value = data.get(extra)
        if isinstance(value, str):
            echo[extra] = value
    return bucket, unquote(obj), echo


# --- SubmitSnapshotJob -----------------------------------------------------------------------


@dataclass(frozen=True)
class Submission:
    request: SubmitRequest
    sync: bool
    echo: Echo


def parse_submit(params: Mapping[str, str]) -> Submission:
    inp = json_object(params, "Input")
    cfg = json_object(params, "SnapshotConfig")
    assert inp is not None and cfg is not None
    in_bucket, in_key, in_echo = oss_file(inp, "Input")
    out = _sub(cfg, "OutputFile", "SnapshotConfig")
    if out is None:
        raise invalid("SnapshotConfig.OutputFile", "is required")
    out_bucket, out_key, out_echo = oss_file(out, "SnapshotConfig.OutputFile")
    files = {"Input": in_echo, "OutputFile": out_echo}
    timing, sync = parse_timing(cfg)
    frame_type_raw = cfg.get("FrameType")
    frame_type = FrameType.EXACT
    if frame_type_raw not in (None, ""):
        if not isinstance(frame_type_raw, str) or frame_type_raw.strip().lower() not in FRAME_TYPES:
            raise invalid("SnapshotConfig.FrameType", f"must be normal or intra, got {frame_type_raw!r}")
        frame_type = FRAME_TYPES[frame_type_raw.strip().lower()]
    sprite = None
    tile_out = _sub(cfg, "TileOut", "SnapshotConfig")
    tile_file = _sub(cfg, "TileOutputFile", "SnapshotConfig")
    if tile_out is not None or tile_file is not None:
        if tile_file is None:
            raise invalid("SnapshotConfig.TileOutputFile", "is required with TileOut")
        tile_bucket, tile_key, tile_echo = oss_file(tile_file, "SnapshotConfig.TileOutputFile")
        files["TileOutputFile"] = tile_echo
        sprite = parse_tile_out(
            tile_out or {}, OutputTarget(tile_bucket, templates.from_vendor(tile_key, KEY_SPELLING))
        )
    spec = SnapshotSpec(
        input=ObjectRef(in_bucket, in_key),
        timing=timing,
        output=OutputTarget(out_bucket, templates.from_vendor(out_key, KEY_SPELLING)),
        frame_type=frame_type,
        size=OutputSize(
            width=integer(cfg.get("Width"), "SnapshotConfig.Width"),
            height=integer(cfg.get("Height"), "SnapshotConfig.Height"),
        ),
        sprite=sprite,
    )
    request = SubmitRequest(
        spec=spec,
        pipeline_id=params.get("PipelineId") or DEFAULT_PIPELINE_ID,
        priority=SYNC_PRIORITY if sync else MPS_PRIORITY,
        user_data=params.get("UserData") or None,
        origin=ORIGIN,
        dialect_data=Echo(files).to_dialect_data(),
    )
    return Submission(request, sync, Echo(files))


def parse_timing(cfg: Mapping[str, Any]) -> tuple[Timing, bool]:
    """The timing and whether the call is synchronous (neither ``Interval`` nor ``Num``)."""
    time_ms = number(cfg.get("Time"), "SnapshotConfig.Time")
    interval = number(cfg.get("Interval"), "SnapshotConfig.Interval")
    num = integer(cfg.get("Num"), "SnapshotConfig.Num")
    start = 0.0 if time_ms is None else time_ms
    if time_ms is not None and time_ms < 0:
        raise invalid("SnapshotConfig.Time", f"must be >= 0 ms, got {cfg.get('Time')!r}")
    if interval is not None and interval < 0:
        raise invalid("SnapshotConfig.Interval", f"must be >= 0 seconds, got {cfg.get('Interval')!r}")
    if num is not None and num < 1:
        raise invalid("SnapshotConfig.Num", f"must be >= 1, got {cfg.get('Num')!r}")
    array = _sub(cfg, "TimeArray", "SnapshotConfig")
    if array is not None:
        if interval is not None or num is not None:
            raise invalid("SnapshotConfig.TimeArray", "cannot be combined with Interval or Num")
        points = array.get("TimePointList")
        if not isinstance(points, list):
            raise invalid("SnapshotConfig.TimeArray.TimePointList", "must be a list of times in milliseconds")
        values: list[float] = []
        for i, p in enumerate(points):
            value = number(p, f"SnapshotConfig.TimeArray.TimePointList[{i}]")
            if value is None:
                raise invalid(f"SnapshotConfig.TimeArray.TimePointList[{i}]", "must be a time in milliseconds")
            values.append(round(value, 2))  # MPS: up to two decimals
        return TimePoints(tuple(values)), False
    if interval is None and num is None:
        return SingleTime(start), True
    count = 1 if num is None else num
    if interval == 0:
        if count == 1:
            return Series(start, DEFAULT_INTERVAL_S, 1), False
        return Average(count=count, start_ms=start), False
    return Series(start, DEFAULT_INTERVAL_S if interval is None else interval, count), False


def parse_tile_out(tile: Mapping[str, Any], target: OutputTarget) -> SpriteSpec:
    p = "SnapshotConfig.TileOut"
    d = SpriteSpec(target=target)

    def opt(name: str, default: int) -> int:
        value = integer(tile.get(name), f"{p}.{name}")
        return default if value is None else value

    color = tile.get("Color")
    if color is not None and not isinstance(color, str):
        raise invalid(f"{p}.Color", "must be a string")
    keep = _bool(tile.get("IsKeepCellPic"), f"{p}.IsKeepCellPic")
    return SpriteSpec(
        target=target,
        lines=opt("Lines", d.lines),
        columns=opt("Columns", d.columns),
        cell_width=integer(tile.get("CellWidth"), f"{p}.CellWidth"),
        cell_height=integer(tile.get("CellHeight"), f"{p}.CellHeight"),
        padding=opt("Padding", d.padding),
        margin=opt("Margin", d.margin),
        color=color or d.color,
        cell_sel_step=opt("CellSelStep", d.cell_sel_step),
        keep_cells=d.keep_cells if keep is None else keep,
    )


# --- QuerySnapshotJobList ---------------------------------------------------------------------


def id_list(params: Mapping[str, str], name: str, limit: int) -> list[str] | None:
    raw = params.get(name)
    if raw is None or raw.strip() == "":
        return None
    ids = [part.strip() for part in raw.split(",") if part.strip()]
    if len(ids) > limit:
        raise invalid(name, f"holds {len(ids)} ids; at most {limit} are allowed")
    return ids


@dataclass(frozen=True)
class JobListing:
    query: JobQuery  # ``state`` None when ``states`` holds several
    states: tuple[JobState, ...]
    page_size: int


def parse_job_listing(params: Mapping[str, str]) -> JobListing:
    state_raw = params.get("State") or ""
    if state_raw and state_raw not in JOB_STATES:
        raise invalid("State", f"must be one of {', '.join(JOB_STATES)}, got {state_raw!r}")
    states = JOB_STATES.get(state_raw, ())
    size = integer(params.get("MaximumPageSize"), "MaximumPageSize")
    if size is not None and not 1 <= size <= MAX_PAGE_SIZE:
        raise invalid("MaximumPageSize", f"must be in [1, {MAX_PAGE_SIZE}], got {size}")
    bounds: dict[str, datetime | None] = {}
    for name in ("StartOfJobCreatedTimeRange", "EndOfJobCreatedTimeRange"):
        raw = params.get(name) or ""
        bounds[name] = parse_time(raw) if raw else None
        if raw and bounds[name] is None:
            raise invalid(name, f"must be a UTC time like 2026-01-01T00:00:00Z, got {raw!r}")
    query = JobQuery(
        state=states[0] if len(states) == 1 else None,
        pipeline_id=params.get("PipelineId") or None,
        created_after=bounds["StartOfJobCreatedTimeRange"],
        created_before=bounds["EndOfJobCreatedTimeRange"],
        page_token=params.get("NextPageToken") or None,
    )
    return JobListing(query, states, DEFAULT_PAGE_SIZE if size is None else size)


# --- pipelines ----------------------------------------------------------------------------------


def parse_notify(params: Mapping[str, str]) -> NotifyTarget | None:
    """``NotifyConfig``: ``{"Topic": t}`` or ``{"QueueName": q}``; ``{}`` (or empty names) means
    none. RocketMQ targets (``MqTopic``/``MqTag``) are not offered."""
    cfg = json_object(params, "NotifyConfig", required=False)
    if cfg is None:
        return None
    topic = _text(cfg, "Topic", "NotifyConfig") or None
    queue = _text(cfg, "QueueName", "NotifyConfig") or None
    if cfg.get("MqTopic") or cfg.get("MqTag"):
        raise invalid("NotifyConfig.MqTopic", "is not supported; use Topic or QueueName (MNS)")
    if topic and queue:
        raise invalid("NotifyConfig", "must name a Topic or a QueueName, not both")
    return NotifyTarget(topic=topic, queue=queue)


def parse_pipeline_state(params: Mapping[str, str], name: str = "State") -> PipelineState | None:
    raw = params.get(name) or ""
    if not raw:
        return None
    if raw not in PIPELINE_STATES:
        raise invalid(name, f"must be Active or Paused, got {raw!r}")
    return PIPELINE_STATES[raw]


def parse_paging(params: Mapping[str, str]) -> tuple[int, int]:
    page = integer(params.get("PageNumber"), "PageNumber")
    size = integer(params.get("PageSize"), "PageSize")
    page = 1 if page is None else page
    size = 10 if size is None else size
    if page < 1:
        raise invalid("PageNumber", f"must be >= 1, got {page}")
    if not 1 <= size <= 100:
        raise invalid("PageSize", f"must be in [1, 100], got {size}")
    return page, size
