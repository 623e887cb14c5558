"""Core jobs -> JD's ThumbnailTask and the mpsThumbnailComplete message."""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest

from app.core.jobs import Manifest, OutputImage, SnapshotJob
from app.core.ports import PushEndpoint
from app.core.states import JobState
from app.dialects.jdcloud.events import render_completion, render_push
from app.dialects.jdcloud.render import jd_time, rule_json, task_json
from app.dialects.jdcloud.schema import parse_create

CREATED = datetime(2026, 11, 21, 9, 32, 58, 123456, tzinfo=UTC)
FINISHED = datetime(2026, 11, 21, 9, 33, 1, 5000, tzinfo=UTC)


def job(rule: dict[str, Any] | None = None, state: JobState = JobState.SUBMITTED, **target: Any) -> SnapshotJob:
    data: dict[str, Any] = {"source": {"bucket": "media", "key": "v.mp4"}, "target": {"destBucket": "out", **target}}
    if rule is not None:
        data["rule"] = rule
    spec = parse_create(data).submit.spec
    out = SnapshotJob(id="t1", tenant="acme", pipeline_id="default", spec=spec, created_at=CREATED, origin="jdcloud")
    if state is not JobState.SUBMITTED:
        out.state = state
        out.started_at = CREATED
        out.finished_at = FINISHED
    return out


def succeeded(j: SnapshotJob, n: int) -> SnapshotJob:
    images = [OutputImage(i, 0.0, 0.0, j.spec.output.key_for(j.id, i), 8, 8, 1) for i in range(1, n + 1)]
    return replace(
        j, state=JobState.SUCCEEDED, started_at=CREATED, finished_at=FINISHED, manifest=Manifest(images=images)
    )


def test_times_are_utc_milliseconds() -> None:
    assert jd_time(CREATED) == "2026-11-21T09:32:58.123Z"
    assert jd_time(None) is None


@pytest.mark.parametrize(
    "rule",
    [
        {"mode": "single", "keyFrame": True, "startTimeInSecond": 7},
        {"mode": "single", "keyFrame": False, "startTimeInSecond": 0},
        {"mode": "multi", "keyFrame": True, "startTimeInSecond": 1, "endTimeInSecond": 10, "count": 5},
        {"mode": "multi", "keyFrame": False, "startTimeInSecond": 3, "endTimeInSecond": -1, "count": 2},
        {"mode": "average", "keyFrame": True, "count": 9},
    ],
)
def test_the_rule_reads_back_as_asked(rule: dict[str, Any]) -> None:
    assert rule_json(job(rule)) == rule


def test_multi_over_the_whole_video_needs_the_callers_word() -> None:
    j = job({"mode": "multi", "count": 4})
    assert rule_json(j)["mode"] == "average"  # planned identically
    assert rule_json(j, "multi") == {
        "mode": "multi",
        "keyFrame": True,
        "startTimeInSecond": 0,
        "endTimeInSecond": -1,
        "count": 4,
    }


def test_task_fields_through_the_states() -> None:
    j = job({"mode": "multi", "count": 2}, destKeyPrefix="thumbs/{x}", widthInPixel=320, format="png")
    pending = task_json(j)
    assert pending["status"] == "PENDDING" and pending["errorCode"] == 0 and pending["target"]["keys"] == []
    assert pending["createdTime"] == pending["lastUpdatedTime"] == "2026-11-21T09:32:58.123Z"
    assert pending["target"] == {
        "destBucket": "out",
        "destKeyPrefix": "thumbs/{x}",
        "format": "png",
        "widthInPixel": 320,
        "heightInPixel": 0,
        "keys": [],
    }
    assert pending["source"] == {"bucket": "media", "key": "v.mp4"}
    assert task_json(replace(j, state=JobState.RUNNING))["status"] == "RUNNING"
    done = task_json(succeeded(j, 2))
    assert done["status"] == "SUCCESS" and done["lastUpdatedTime"] == "2026-11-21T09:33:01.005Z"
    assert done["target"]["keys"] == ["thumbs/{x}-t1-0001.png", "thumbs/{x}-t1-0002.png"]
    failed = replace(j, state=JobState.FAILED, finished_at=FINISHED, error_code="TimeOutOfRange", error_message="past")
    assert task_json(failed)["status"] == "ERROR" and task_json(failed)["errorCode"] == 400
    assert task_json(replace(failed, error_code="InputUnreadable"))["errorCode"] == 415
    assert task_json(replace(failed, error_code="SomethingNew"))["errorCode"] == 500
    canceled = task_json(replace(j, state=JobState.CANCELED, finished_at=FINISHED))
    assert canceled["status"] == "ERROR" and canceled["errorCode"] == 499


def test_the_message_in_both_formats_and_the_events_filter() -> None:
    done = succeeded(job({"mode": "average", "count": 3}, destKeyPrefix="p"), 3)
    simplified = json.loads(render_completion(done, lambda b, k: f"http://o/{b}/{k}"))
    assert simplified["eventType"] == "mpsThumbnailComplete" and simplified["taskID"] == "t1"
    assert simplified["status"] == "SUCCESS" and simplified["errorCode"] == 0 and simplified["count"] == 3
    assert simplified["target"]["keys"] == ["p-t1-0001.jpg", "p-t1-0002.jpg", "p-t1-0003.jpg"]
    assert "rule" not in simplified and "errorMessage" not in simplified

    plain = PushEndpoint(True, "http://h/x", content_format="SIMPLIFIED")
    assert render_push(done, lambda b, k: k, plain) == render_completion(done, lambda b, k: k)
    wrapped = json.loads(render_push(done, lambda b, k: k, replace(plain, content_format="JSON")) or "")
    assert wrapped["messageType"] == "Notification" and wrapped["eventType"] == "mpsThumbnailComplete"
    assert json.loads(wrapped["message"]) == simplified
    assert wrapped["messageMD5"] == hashlib.md5(wrapped["message"].encode()).hexdigest().upper()
    assert wrapped["publishTime"] == "2026-11-21T09:33:01.005Z"
    assert render_push(done, lambda b, k: k, replace(plain, events=("mpsTranscodeComplete",))) is None
    assert render_push(done, lambda b, k: k, replace(plain, events=("mpsThumbnailComplete",))) is not None

    failed = replace(done, state=JobState.FAILED, manifest=Manifest(), error_code="InputNotFound", error_message="gone")
    message = json.loads(render_completion(failed, lambda b, k: k))
    assert message["status"] == "ERROR" and message["errorCode"] == 404 and message["errorMessage"] == "gone"
    assert message["count"] == 0
    with pytest.raises(ValueError):
        render_completion(job(), lambda b, k: k)
