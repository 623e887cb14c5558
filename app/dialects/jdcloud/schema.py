"""JD Cloud MPS request shapes -> core requests (seeds ``000_*``/``001_*``, ``docs/vendor-wire.md`` §3).

createThumbnailTask body (the SDK's model objects also send ``regionId`` and the read-only
``taskID``/``status``/``errorCode``/``createdTime``/``lastUpdatedTime``/``keys``, as ``null``:
those, and any field this dialect does not know, are ignored)::

    {"source": {"bucket": "media", "key": "in/video.mp4"},
     "target": {"destBucket": "out", "destKeyPrefix": "thumbs/x", "format": "jpg",
                "widthInPixel": 320, "heightInPixel": 0},
     "rule": {"mode": "multi", "keyFrame": true, "startTimeInSecond": 1, "endTimeInSecond": 10, "count": 5}}

Rule semantics (seconds, whole numbers):

* ``single`` (the default): one image at ``startTimeInSecond`` (default 0); ``endTimeInSecond``
  and ``count`` are refused.
* ``multi``: ``count`` (default 1) images spread evenly over ``[startTimeInSecond,
  endTimeInSecond]`` (``-1``, the default, is the duration): each centred in one of ``count``
  equal slices (the core's ``Average``), so they never land on the window's edges.
* ``average``: ``count`` images spread the same way over the whole video; ``startTimeInSecond``
  and ``endTimeInSecond`` are refused.
* ``keyFrame`` (default true): each image is the key frame at or before its time; false: the
  frame on screen at that time.

Images are named ``{destKeyPrefix}-{taskID}-%04d.{format}`` (numbered from 1), the prefix
defaulting to the source key. ``widthInPixel``/``heightInPixel``: 0 or absent = the source's;
otherwise [8, 4096]; one side alone keeps the aspect ratio; never upscaled.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from app.core import templates
from app.core.errors import InvalidParameter
from app.core.ports import PushEndpoint, RetryStrategy
from app.core.service import SubmitRequest
from app.core.specs import (
    MAX_SERIES_COUNT,
    MAX_SIDE,
    MIN_SIDE,
    Average,
    FrameType,
    ImageFormat,
    ObjectRef,
    OutputSize,
    OutputTarget,
    SingleTime,
    SnapshotSpec,
    Timing,
)
from app.core.states import JobState

ORIGIN = "jdcloud"
MODES = ("single", "multi", "average")
FORMATS = {"jpg": ImageFormat.JPEG, "png": ImageFormat.PNG}
WHOLE_VIDEO = -1  # endTimeInSecond: up to the duration
THUMBNAIL_EVENT = "mpsThumbnailComplete"
EVENTS = ("mpsTranscodeComplete", THUMBNAIL_EVENT)
CONTENT_FORMATS = ("SIMPLIFIED", "JSON")
DEFAULT_CONTENT_FORMAT = "SIMPLIFIED"
MAX_LIMIT = 1000

# The list filter's spellings (its doc says PENDING/FAILED, the task model PENDDING/ERROR, an SDK
# model comment SUCESS): all accepted.
STATUS_FILTER = {
    "PENDDING": JobState.SUBMITTED,
    "PENDING": JobState.SUBMITTED,
    "RUNNING": JobState.RUNNING,
    "SUCCESS": JobState.SUCCEEDED,
    "SUCESS": JobState.SUCCEEDED,
    "ERROR": JobState.FAILED,
    "FAILED": JobState.FAILED,
}


def key_suffix(ext: str) -> str:
    """The neutral template text after the prefix: ``-{taskID}-%04d.{format}``."""
    return f"-{{{templates.JOB_ID}}}-{{{templates.INDEX}:4}}.{ext}"


def key_template(prefix: str, ext: str) -> str:
    return templates.escape(prefix) + key_suffix(ext)


@dataclass(frozen=True)
class ThumbnailRequest:
    submit: SubmitRequest
    mode: str  # as asked: ``multi`` over the whole video plans exactly like ``average``


def _obj(value: Any, field: str) -> Mapping[str, Any]:
    """A JSON object; ``field`` "" is the request body itself."""
    if not isinstance(value, dict):
        if not field:
            raise InvalidParameter("", "the request body must be a JSON object")
        raise InvalidParameter(field, "is required" if value is None else "must be a JSON object")
    return value


def _str(data: Mapping[str, Any], name: str, path: str, *, required: bool = False) -> str | None:
    field = f"{path}.{name}" if path else name
    value = data.get(name)
    if value is None or (required and value == ""):
        if required:
            raise InvalidParameter(field, "is required")
        return None
    if not isinstance(value, str):
        raise InvalidParameter(field, f"must be a string, got {value!r}")
    return value


def _int(data: Mapping[str, Any], name: str, path: str) -> int | None:
    value = data.get(name)
    if value is None:
        return None
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or (isinstance(value, float) and not value.is_integer())
    ):
        raise InvalidParameter(f"{path}.{name}", f"must be an integer, got {value!r}")
    return int(value)


def _bool(data: Mapping[str, Any], name: str, path: str) -> bool | None:
    value = data.get(name)
    if value is None:
        return None
    if not isinstance(value, bool):
        raise InvalidParameter(f"{path}.{name}" if path else name, f"must be true or false, got {value!r}")
    return value


def _side(target: Mapping[str, Any], name: str) -> int | None:
    value = _int(target, name, "target")
    if value is None or value == 0:
        return None
    if not MIN_SIDE <= value <= MAX_SIDE:
        raise InvalidParameter(
            f"target.{name}", f"must be 0 (the source's) or in [{MIN_SIDE}, {MAX_SIDE}], got {value}"
        )
    return value


def parse_timing(rule: Mapping[str, Any]) -> tuple[str, Timing, FrameType]:
    mode = _str(rule, "mode", "rule") or "single"
    if mode not in MODES:
        raise InvalidParameter("rule.mode", f"must be single, multi or average, got {mode!r}")
    key_frame = _bool(rule, "keyFrame", "rule")
    frame_type = FrameType.EXACT if key_frame is False else FrameType.KEYFRAME
    start = _int(rule, "startTimeInSecond", "rule")
    end = _int(rule, "endTimeInSecond", "rule")
    count = _int(rule, "count", "rule")
    refused = {"single": ("endTimeInSecond", "count"), "average": ("startTimeInSecond", "endTimeInSecond")}
    for name in refused.get(mode, ()):
        if rule.get(name) is not None:
            raise InvalidParameter(f"rule.{name}", f"cannot be set when mode is {mode}")
    if start is not None and start < 0:
        raise InvalidParameter("rule.startTimeInSecond", f"must be >= 0, got {start}")
    start_s = start or 0
    if end is not None and end != WHOLE_VIDEO and end < start_s:
        raise InvalidParameter(
            "rule.endTimeInSecond", f"must be -1 (the duration) or not less than startTimeInSecond, got {end}"
        )
    if count is not None and not 1 <= count <= MAX_SERIES_COUNT:
        raise InvalidParameter("rule.count", f"must be in [1, {MAX_SERIES_COUNT}], got {count}")
    n = count or 1
    if mode == "single":
        return mode, SingleTime(time_ms=start_s * 1000.0), frame_type
    if mode == "multi":
        end_ms = None if end is None or end == WHOLE_VIDEO else end * 1000.0
        return mode, Average(count=n, start_ms=start_s * 1000.0, end_ms=end_ms), frame_type
    return mode, Average(count=n), frame_type


def parse_create(body: Any) -> ThumbnailRequest:
    data = _obj(body, "")
    source = _obj(data.get("source"), "source")
    bucket = _str(source, "bucket", "source", required=True) or ""
    key = _str(source, "key", "source", required=True) or ""
    target = _obj(data.get("target"), "target")
    dest_bucket = _str(target, "destBucket", "target", required=True) or ""
    prefix = _str(target, "destKeyPrefix", "target") or key
    fmt_raw = (_str(target, "format", "target") or "jpg").lower()
    if fmt_raw not in FORMATS:
        raise InvalidParameter("target.format", f"must be jpg or png, got {fmt_raw!r}")
    size = OutputSize(width=_side(target, "widthInPixel"), height=_side(target, "heightInPixel"))
    rule_raw = data.get("rule")
    mode, timing, frame_type = parse_timing({} if rule_raw is None else _obj(rule_raw, "rule"))
    spec = SnapshotSpec(
        input=ObjectRef(bucket, key),
        timing=timing,
        output=OutputTarget(dest_bucket, key_template(prefix, fmt_raw)),
        frame_type=frame_type,
        size=size,
        format=FORMATS[fmt_raw],
    )
    return ThumbnailRequest(SubmitRequest(spec=spec, origin=ORIGIN), mode)


_TIME = re.compile(r"(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,6}))?Z")


def parse_time(name: str, text: str) -> datetime:
    """``yyyy-MM-dd'T'HH:mm:ss.SSS'Z'`` (the milliseconds may be left out), UTC."""
    m = _TIME.fullmatch(text)
    if m is None:
        raise InvalidParameter(name, f"must be a UTC time yyyy-MM-dd'T'HH:mm:ss.SSS'Z', got {text!r}")
    fraction = (m.group(7) or "").ljust(6, "0")
    try:
        year, month, day, hour, minute, second = (int(x) for x in m.groups()[:6])
        return datetime(year, month, day, hour, minute, second, int(fraction), tzinfo=UTC)
    except ValueError:
        raise InvalidParameter(name, f"is not a valid time: {text!r}") from None


@dataclass(frozen=True)
class ListQuery:
    status: JobState | None
    begin: datetime | None
    end: datetime | None
    marker: str  # "" = from the newest task
    limit: int


def parse_list(args: Mapping[str, str]) -> ListQuery:
    status_raw = args.get("status") or ""
    status = None
    if status_raw:
        if status_raw.upper() not in STATUS_FILTER:
            raise InvalidParameter("status", f"must be PENDDING, RUNNING, SUCCESS or ERROR, got {status_raw!r}")
        status = STATUS_FILTER[status_raw.upper()]
    begin = parse_time("begin", args["begin"]) if args.get("begin") else None
    end = parse_time("end", args["end"]) if args.get("end") else None
    if begin and end and begin > end:
        raise InvalidParameter("begin", "must not be later than end")
    limit_raw = args.get("limit") or str(MAX_LIMIT)
    if not (limit_raw.isascii() and limit_raw.isdigit() and 1 <= int(limit_raw) <= MAX_LIMIT):
        raise InvalidParameter("limit", f"must be an integer in [1, {MAX_LIMIT}], got {limit_raw!r}")
    return ListQuery(status, begin, end, args.get("marker") or "", int(limit_raw))


def parse_notification(body: Any) -> PushEndpoint:
    """setNotification body -> the tenant's push endpoint for this dialect's tasks."""
    data = _obj(body, "")
    enabled = _bool(data, "enabled", "")
    if enabled is None:
        raise InvalidParameter("enabled", "is required")
    endpoint = _str(data, "endpoint", "") or None
    if enabled and endpoint is None:
        raise InvalidParameter("endpoint", "is required when enabled is true")
    events_raw = data.get("events")
    events: tuple[str, ...] = ()
    if events_raw is not None:
        if not isinstance(events_raw, list) or not all(isinstance(x, str) for x in events_raw):
            raise InvalidParameter("events", "must be a list of event names")
        unknown = [x for x in events_raw if x not in EVENTS]
        if unknown:
            raise InvalidParameter("events", f"holds unknown event(s) {', '.join(unknown)}; known: {', '.join(EVENTS)}")
        events = tuple(dict.fromkeys(events_raw))
    strategy = _str(data, "notifyStrategy", "") or RetryStrategy.BACKOFF_RETRY.value
    if strategy not in {s.value for s in RetryStrategy}:
        raise InvalidParameter("notifyStrategy", f"must be BACKOFF_RETRY or EXPONENTIAL_DECAY_RETRY, got {strategy!r}")
    content_format = _str(data, "notifyContentFormat", "") or DEFAULT_CONTENT_FORMAT
    if content_format not in CONTENT_FORMATS:
        raise InvalidParameter("notifyContentFormat", f"must be JSON or SIMPLIFIED, got {content_format!r}")
    return PushEndpoint(
        enabled=enabled,
        url=endpoint,
        retry=RetryStrategy(strategy),
        content_format=content_format,
        events=events,
    )
