"""JD request bodies -> core requests: defaults, each mode's refusals, key naming, list and
notification parameters."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from app.core import templates
from app.core.errors import InvalidParameter
from app.core.ports import PushEndpoint, RetryStrategy
from app.core.specs import Average, FrameType, ImageFormat, OutputSize, SingleTime, validate_spec
from app.core.states import JobState
from app.dialects.jdcloud.schema import parse_create, parse_list, parse_notification, parse_time


def body(rule: dict[str, Any] | None = None, **target: Any) -> dict[str, Any]:
    out: dict[str, Any] = {
        "source": {"bucket": "media", "key": "videos/in put.mp4"},
        "target": {"destBucket": "out", **target},
    }
    if rule is not None:
        out["rule"] = rule
    return out


def test_defaults_are_one_key_frame_at_zero_named_after_the_source() -> None:
    req = parse_create(body())
    spec = req.submit.spec
    assert req.mode == "single" and req.submit.origin == "jdcloud"
    assert spec.timing == SingleTime(0.0) and spec.frame_type is FrameType.KEYFRAME
    assert spec.format is ImageFormat.JPEG and spec.size == OutputSize()
    assert templates.render(spec.output.key_template, job_id="T", index=1) == "videos/in put.mp4-T-0001.jpg"
    validate_spec(spec)


def test_the_sdk_models_nulls_region_and_read_only_fields_are_ignored() -> None:
    sdk_body = {
        "regionId": "cn-north-1",
        "taskID": None,
        "status": None,
        "errorCode": None,
        "createdTime": None,
        "lastUpdatedTime": None,
        "source": {"bucket": "media", "key": "v.mp4"},
        "target": {
            "destBucket": "out",
            "destKeyPrefix": "thumbs/x",
            "format": "png",
            "widthInPixel": 320,
            "heightInPixel": None,
            "keys": None,
        },
        "rule": {"mode": "multi", "keyFrame": None, "startTimeInSecond": 1, "endTimeInSecond": 10, "count": 5},
    }
    req = parse_create(sdk_body)
    spec = req.submit.spec
    assert req.mode == "multi"
    assert spec.timing == Average(count=5, start_ms=1000.0, end_ms=10_000.0)
    assert spec.frame_type is FrameType.KEYFRAME and spec.format is ImageFormat.PNG
    assert spec.size == OutputSize(width=320)
    assert [templates.render(spec.output.key_template, job_id="T", index=i) for i in (1, 12)] == [
        "thumbs/x-T-0001.png",
        "thumbs/x-T-0012.png",
    ]


@pytest.mark.parametrize(
    ("rule", "timing", "frame_type"),
    [
        ({"mode": "single", "startTimeInSecond": 7}, SingleTime(7000.0), FrameType.KEYFRAME),
        ({"startTimeInSecond": 2, "keyFrame": False}, SingleTime(2000.0), FrameType.EXACT),
        ({"mode": "multi", "count": 3}, Average(3, 0.0, None), FrameType.KEYFRAME),
        (
            {"mode": "multi", "startTimeInSecond": 2, "endTimeInSecond": -1},
            Average(1, 2000.0, None),
            FrameType.KEYFRAME,
        ),
        (
            {"mode": "multi", "startTimeInSecond": 4, "endTimeInSecond": 4, "count": 2},
            Average(2, 4000.0, 4000.0),
            FrameType.KEYFRAME,
        ),
        ({"mode": "average", "count": 9, "keyFrame": False}, Average(9), FrameType.EXACT),
        ({"mode": "average"}, Average(1), FrameType.KEYFRAME),
    ],
)
def test_modes(rule: dict[str, Any], timing: object, frame_type: FrameType) -> None:
    spec = parse_create(body(rule)).submit.spec
    assert spec.timing == timing and spec.frame_type is frame_type
    validate_spec(spec)


@pytest.mark.parametrize(
    ("data", "field"),
    [
        (body({"mode": "single", "count": 2}), "rule.count"),
        (body({"mode": "single", "count": 1}), "rule.count"),
        (body({"endTimeInSecond": 5}), "rule.endTimeInSecond"),
        (body({"mode": "average", "startTimeInSecond": 1, "count": 2}), "rule.startTimeInSecond"),
        (body({"mode": "average", "endTimeInSecond": -1}), "rule.endTimeInSecond"),
        (body({"mode": "burst"}), "rule.mode"),
        (body({"mode": "multi", "count": 0}), "rule.count"),
        (body({"mode": "multi", "count": 10_001}), "rule.count"),
        (body({"mode": "multi", "count": 2.5}), "rule.count"),
        (body({"mode": "multi", "count": "2"}), "rule.count"),
        (body({"startTimeInSecond": -1}), "rule.startTimeInSecond"),
        (body({"startTimeInSecond": True}), "rule.startTimeInSecond"),
        (body({"mode": "multi", "startTimeInSecond": 5, "endTimeInSecond": 4}), "rule.endTimeInSecond"),
        (body({"mode": "multi", "endTimeInSecond": -2}), "rule.endTimeInSecond"),
        (body({"keyFrame": "true"}), "rule.keyFrame"),
        (body({"mode": 1}), "rule.mode"),
        (body(widthInPixel=7), "target.widthInPixel"),
        (body(heightInPixel=4097), "target.heightInPixel"),
        (body(widthInPixel="320"), "target.widthInPixel"),
        (body(format="gif"), "target.format"),
        (body(format=1), "target.format"),
        (body(destKeyPrefix=5), "target.destKeyPrefix"),
        ({"source": {"bucket": "media", "key": "v.mp4"}}, "target"),
        ({"target": {"destBucket": "out"}}, "source"),
        ({"source": {"bucket": "media"}, "target": {"destBucket": "out"}}, "source.key"),
        ({"source": {"bucket": "", "key": "v"}, "target": {"destBucket": "out"}}, "source.bucket"),
        ({"source": {"bucket": "media", "key": "v"}, "target": {}}, "target.destBucket"),
        ({"source": "media/v.mp4", "target": {"destBucket": "out"}}, "source"),
        ({**body(), "rule": [1]}, "rule"),
        ([body()], ""),
    ],
)
def test_refusals_name_the_jd_field(data: Any, field: str) -> None:
    with pytest.raises(InvalidParameter) as refused:
        parse_create(data)
    assert refused.value.field == field


def test_zero_sizes_mean_the_source_and_braces_in_the_prefix_stay_literal() -> None:
    spec = parse_create(
        body(widthInPixel=0, heightInPixel=4096, destKeyPrefix="a{b}/{index}", format="PNG")
    ).submit.spec
    assert spec.size == OutputSize(height=4096)
    assert templates.render(spec.output.key_template, job_id="T", index=2) == "a{b}/{index}-T-0002.png"


def test_list_parameters() -> None:
    q = parse_list(
        {
            "status": "PENDDING",
            "begin": "2020-01-01T00:00:00.000Z",
            "end": "2099-01-01T00:00:00Z",
            "marker": "",
            "limit": "1",
        }
    )
    assert q.status is JobState.SUBMITTED and q.marker == "" and q.limit == 1
    assert q.begin == datetime(2020, 1, 1, tzinfo=UTC) and q.end == datetime(2099, 1, 1, tzinfo=UTC)
    assert parse_list({}).limit == 1000 and parse_list({}).status is None
    for spelling, state in [
        ("PENDING", JobState.SUBMITTED),
        ("SUCESS", JobState.SUCCEEDED),
        ("FAILED", JobState.FAILED),
        ("error", JobState.FAILED),
    ]:
        assert parse_list({"status": spelling}).status is state
    assert parse_time("t", "2026-11-21T09:32:58.123Z") == datetime(2026, 11, 21, 9, 32, 58, 123000, tzinfo=UTC)


@pytest.mark.parametrize(
    ("args", "field"),
    [
        ({"status": "DONE"}, "status"),
        ({"limit": "0"}, "limit"),
        ({"limit": "1001"}, "limit"),
        ({"limit": "ten"}, "limit"),
        ({"limit": "٣"}, "limit"),
        ({"begin": "2020-01-01"}, "begin"),
        ({"end": "2020-13-01T00:00:00.000Z"}, "end"),
        ({"begin": "2020-01-01T00:00:00+08:00"}, "begin"),
        ({"begin": "2021-01-01T00:00:00Z", "end": "2020-01-01T00:00:00Z"}, "begin"),
    ],
)
def test_list_refusals(args: dict[str, str], field: str) -> None:
    with pytest.raises(InvalidParameter) as refused:
        parse_list(args)
    assert refused.value.field == field


def test_notification_defaults_and_values() -> None:
    assert parse_notification({"regionId": "r", "enabled": True, "endpoint": "http://h.test/x"}) == PushEndpoint(
        True, "http://h.test/x", RetryStrategy.BACKOFF_RETRY, "SIMPLIFIED", ()
    )
    full = parse_notification(
        {
            "enabled": True,
            "endpoint": "https://h.test/x",
            "events": ["mpsThumbnailComplete", "mpsTranscodeComplete", "mpsThumbnailComplete"],
            "notifyStrategy": "EXPONENTIAL_DECAY_RETRY",
            "notifyContentFormat": "JSON",
        }
    )
    assert full == PushEndpoint(
        True,
        "https://h.test/x",
        RetryStrategy.EXPONENTIAL_DECAY_RETRY,
        "JSON",
        ("mpsThumbnailComplete", "mpsTranscodeComplete"),
    )
    assert parse_notification({"enabled": False, "endpoint": None, "events": None}) == PushEndpoint(
        False, None, RetryStrategy.BACKOFF_RETRY, "SIMPLIFIED", ()
    )


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({}, "enabled"),
        ({"enabled": "yes"}, "enabled"),
        ({"enabled": True}, "endpoint"),
        ({"enabled": True, "endpoint": 3}, "endpoint"),
        ({"enabled": True, "endpoint": "http://h/x", "events": "mpsThumbnailComplete"}, "events"),
        ({"enabled": True, "endpoint": "http://h/x", "events": ["mpsSnapshotComplete"]}, "events"),
        ({"enabled": True, "endpoint": "http://h/x", "notifyStrategy": "FOREVER"}, "notifyStrategy"),
        ({"enabled": True, "endpoint": "http://h/x", "notifyContentFormat": "XML"}, "notifyContentFormat"),
        ("enabled", ""),
    ],
)
def test_notification_refusals(data: Any, field: str) -> None:
    with pytest.raises(InvalidParameter) as refused:
        parse_notification(data)
    assert refused.value.field == field
