"""Core objects -> JD Cloud MPS shapes: the ``ThumbnailTask``, the list page, the notification
setting, and the ``{requestId, result}`` envelope.

``result`` is flat (``{"taskID": ...}``, the task itself), as the SDK's result shapes and JD's
Java sample read it, not nested as the seed pages' generator drew it (``docs/vendor-wire.md`` §3.3).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from flask import Response, g, jsonify

from app.core import templates
from app.core.errors import FailureCode
from app.core.jobs import SnapshotJob
from app.core.ports import PushEndpoint
from app.core.specs import Average, FrameType, ImageFormat, SingleTime, input_location
from app.core.states import JobState
from app.dialects.jdcloud.schema import DEFAULT_CONTENT_FORMAT, WHOLE_VIDEO, key_suffix

STATUS = {
    JobState.SUBMITTED: "PENDDING",  # sic: the task model's spelling
    JobState.RUNNING: "RUNNING",
    JobState.SUCCEEDED: "SUCCESS",
    JobState.FAILED: "ERROR",
    JobState.CANCELED: "ERROR",
}

# Task ``errorCode`` (an integer; JD publishes no table): 0 unless the task is ERROR, then an
# HTTP-like number per failure, in JD's own spirit of ``code`` = HTTP status.
NO_ERROR = 0
CANCELED = 499  # JD's CANCELLED
ERROR_CODES: dict[str, int] = {
    FailureCode.TIME_OUT_OF_RANGE: 400,
    FailureCode.INPUT_REFUSED: 403,
    FailureCode.INPUT_NOT_FOUND: 404,
    FailureCode.MEDIA_LIMIT_EXCEEDED: 413,
    FailureCode.INPUT_TOO_LARGE: 413,
    FailureCode.INPUT_UNREADABLE: 415,
    FailureCode.INTERNAL_ERROR: 500,
    FailureCode.WORKER_LOST: 500,
    FailureCode.UNSUPPORTED_CODEC: 501,
    FailureCode.OUTPUT_WRITE_FAILED: 502,
    FailureCode.STORAGE_TRANSIENT: 503,
    FailureCode.SNAPSHOT_TIMEOUT: 504,
}


def jd_time(dt: datetime | None) -> str | None:
    """``yyyy-MM-dd'T'HH:mm:ss.SSS'Z'``, UTC."""
    if dt is None:
        return None
    dt = dt.astimezone(UTC)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


def error_code(job: SnapshotJob) -> int:
    if job.state is JobState.CANCELED:
        return CANCELED
    if job.state is not JobState.FAILED:
        return NO_ERROR
    return ERROR_CODES.get(job.error_code or "", 500)


def _seconds(ms: float) -> int:
    return int(round(ms / 1000.0))


def extension(fmt: ImageFormat) -> str:
    return fmt.extension  # jpg | png (| webp, for jobs other dialects submitted)


def key_prefix(job: SnapshotJob) -> str:
    """``destKeyPrefix`` back from the key template this dialect built."""
    template = job.spec.output.key_template
    suffix = key_suffix(extension(job.spec.format))
    if template.endswith(suffix):
        return template[: -len(suffix)].replace("{{", "{").replace("}}", "}")
    return templates.to_vendor(template, {}, job_id=job.id)


def rule_json(job: SnapshotJob, mode: str | None = None) -> dict[str, Any]:
    """The rule as asked. ``mode`` settles the one ambiguous case: ``multi`` over the whole video
    is planned exactly as ``average`` and reads as ``average`` unless the caller says so."""
    t = job.spec.timing
    key_frame = job.spec.frame_type is FrameType.KEYFRAME
    if isinstance(t, SingleTime):
        return {"mode": "single", "keyFrame": key_frame, "startTimeInSecond": _seconds(t.time_ms)}
    if isinstance(t, Average) and t.start_ms == 0 and t.end_ms is None and mode != "multi":
        return {"mode": "average", "keyFrame": key_frame, "count": t.count}
    start_ms = t.start_ms if isinstance(t, Average) else 0.0
    end_ms = t.end_ms if isinstance(t, Average) else None
    return {
        "mode": "multi",
        "keyFrame": key_frame,
        "startTimeInSecond": _seconds(start_ms),
        "endTimeInSecond": WHOLE_VIDEO if end_ms is None else _seconds(end_ms),
        "count": job.spec.requested_count or len(job.manifest.images),
    }


def task_json(job: SnapshotJob, mode: str | None = None) -> dict[str, Any]:
    """The ``ThumbnailTask``; ``target.keys`` lists the images once the task succeeded."""
    spec = job.spec
    updated = job.finished_at or job.started_at or job.created_at
    keys = [i.key for i in job.manifest.images if i.uploaded] if job.state is JobState.SUCCEEDED else []
    in_bucket, in_key = input_location(spec.input)  # a URL input (native API): no bucket, the URL as key
    return {
        "taskID": job.id,
        "status": STATUS[job.state],
        "errorCode": error_code(job),
        "createdTime": jd_time(job.created_at),
        "lastUpdatedTime": jd_time(updated),
        "source": {"bucket": in_bucket, "key": in_key},
        "target": {
            "destBucket": spec.output.bucket,
            "destKeyPrefix": key_prefix(job),
            "format": extension(spec.format),
            "widthInPixel": spec.size.width or 0,
            "heightInPixel": spec.size.height or 0,
            "keys": keys,
        },
        "rule": rule_json(job, mode),
    }


def notification_json(endpoint: PushEndpoint | None) -> dict[str, Any]:
    """getNotification's result: what setNotification stored (``enabled: false`` when never set)."""
    if endpoint is None:
        return {"enabled": False}
    out: dict[str, Any] = {"enabled": endpoint.enabled}
    if endpoint.url is not None:
        out["endpoint"] = endpoint.url
    if endpoint.events:
        out["events"] = list(endpoint.events)
    out["notifyStrategy"] = endpoint.retry.value
    out["notifyContentFormat"] = endpoint.content_format or DEFAULT_CONTENT_FORMAT
    return out


def ok(result: dict[str, Any] | None = None) -> Response:
    """The success envelope; ``result`` None: ``{"requestId"}`` alone (setNotification)."""
    request_id = g.get("request_id") or uuid.uuid4().hex  # the SDK reads nothing without one
    body: dict[str, Any] = {"requestId": request_id}
    if result is not None:
        body["result"] = result
    response = jsonify(body)
    response.headers["x-jdcloud-request-id"] = request_id
    return response
