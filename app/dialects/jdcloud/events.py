"""The ``mpsThumbnailComplete`` message, pushed to the endpoint a tenant set with setNotification.

JD documents the event, the two retry strategies and the two content formats, but not the
message body; its SDK models that look like one are ``ThumbnailTask`` and ``ThumbnailStatus
{status, errorCode, count}``. So the message is the task as getThumbnailTask returns it (without
the rule), plus ``eventType``, ``count`` (images written) and, on ``ERROR``, ``errorMessage``:

* ``SIMPLIFIED`` (JD's default; "the body is the message, no attributes")::

    {"eventType": "mpsThumbnailComplete", "taskID": "...", "status": "SUCCESS", "errorCode": 0,
     "count": 3, "createdTime": "...", "lastUpdatedTime": "...", "source": {...},
     "target": {..., "keys": ["thumbs/x-<taskID>-0001.jpg", ...]}}

* ``JSON`` ("the message and its attributes"): the message as a string under ``message``::

    {"messageType": "Notification", "eventType": "mpsThumbnailComplete",
     "message": "<the SIMPLIFIED body>", "messageMD5": "<MD5 of message, upper-case hex>",
     "publishTime": "<when the task finished>"}

Both are deterministic functions of the finished job, so a retried push repeats the same bytes.
Each push also carries the notifier's ``webhook-id`` (the message id) and signatures.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from app.core.jobs import SnapshotJob
from app.core.ports import ObjectUrl, PushEndpoint
from app.core.states import JobState
from app.dialects.jdcloud.render import jd_time, task_json
from app.dialects.jdcloud.schema import THUMBNAIL_EVENT


def _dumps(data: dict[str, Any]) -> str:
    return json.dumps(data, ensure_ascii=False, separators=(",", ":"))


def message_fields(job: SnapshotJob) -> dict[str, Any]:
    if not job.state.is_terminal:
        raise ValueError(f"job {job.id} is {job.state}, not finished")
    task = task_json(job)
    task.pop("rule")
    out: dict[str, Any] = {"eventType": THUMBNAIL_EVENT}
    out.update(task)
    out["count"] = len(task["target"]["keys"])
    if job.state is not JobState.SUCCEEDED:
        out["errorMessage"] = job.error_message or ("the task was canceled" if job.state is JobState.CANCELED else "")
    return out


def render_completion(job: SnapshotJob, object_url: ObjectUrl) -> str:
    """The SIMPLIFIED message (also what a pipeline topic or queue gets for a JD task)."""
    return _dumps(message_fields(job))


def render_push(job: SnapshotJob, object_url: ObjectUrl, endpoint: PushEndpoint) -> str | None:
    """The body for the tenant's setNotification endpoint, in its ``notifyContentFormat``;
    None when its ``events`` leave out ``mpsThumbnailComplete`` (no events listed: every one)."""
    if endpoint.events and THUMBNAIL_EVENT not in endpoint.events:
        return None
    message = render_completion(job, object_url)
    if endpoint.content_format != "JSON":
        return message
    return _dumps(
        {
            "messageType": "Notification",
            "eventType": THUMBNAIL_EVENT,
            "message": message,
            "messageMD5": hashlib.md5(message.encode("utf-8")).hexdigest().upper(),
            "publishTime": jd_time(job.finished_at),
        }
    )
