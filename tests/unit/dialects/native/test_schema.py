"""The native request models without a server: strict types, bounds before any float conversion,
``null`` as the default, every problem at once with its dotted path, and the core requests they
become."""

from __future__ import annotations

from typing import Any

import pytest

from app.core.errors import InvalidParameter
from app.core.pipelines import NotifyTarget, PipelineState, ResourceClass
from app.core.specs import Average, FrameType, ImageFormat, Series, SingleTime, TimePoints, UrlSource
from app.dialects.native.schema import parse_pipeline_create, parse_pipeline_update, parse_submit
from app.dialects.native.validation import field_path

HUGE = 10**401


def job(**overrides: Any) -> dict[str, Any]:
    return {
        "input": {"bucket": "media", "key": "in/video.mp4"},
        "output": {"bucket": "out", "key": "s/{JobId}/{Count}.jpg"},
        **overrides,
    }


def errors_of(body: Any) -> list[tuple[str, str]]:
    with pytest.raises(InvalidParameter) as caught:
        parse_submit(body)
    assert (caught.value.field, caught.value.reason) == caught.value.errors[0]
    return list(caught.value.errors)


def test_a_bare_body_is_one_frame_at_zero_with_every_default() -> None:
    req = parse_submit(job())
    assert req.spec.timing == SingleTime(0.0) and req.spec.format is ImageFormat.JPEG and req.spec.quality == 90
    assert req.spec.frame_type is FrameType.EXACT and req.priority == 5 and req.pipeline_id == "default"
    assert req.spec.output.key_template == "s/{job_id}/{index:5}.jpg"


def test_null_is_the_default_and_integral_floats_are_integers() -> None:
    snapshot = {"mode": "average", "count": 4.0, "start_ms": None, "quality": None, "format": "JPG", "width": 320.0}
    req = parse_submit(job(snapshot=snapshot, priority=None, pipeline_id=None))
    assert req.spec.timing == Average(count=4, start_ms=0.0) and isinstance(req.spec.timing.count, int)
    assert req.spec.quality == 90 and req.spec.format is ImageFormat.JPEG and req.spec.size.width == 320
    assert req.priority == 5 and req.pipeline_id == "default"


@pytest.mark.parametrize(
    ("given", "errors"),
    [
        (
            {"url": "https://example.com/v.mp4", "key": "k"},
            [("input", "must hold either url or bucket and key, not both")],
        ),
        ({"url": 7}, [("input.url", "must be a string")]),
        ({"url": "https://example.com/v.mp4", "x": 1}, [("input", "has unknown field(s): x")]),
        ({"bucket": "media"}, [("input.key", "is required")]),
        (5, [("input", "must be a JSON object")]),
    ],
)
def test_an_input_is_an_object_or_a_url_never_both(given: Any, errors: list[tuple[str, str]]) -> None:
    assert errors_of(job(input=given)) == errors


def test_a_url_input_becomes_a_url_source() -> None:
    assert parse_submit(job(input={"url": "https://example.com/v.mp4?t=1"})).spec.input == UrlSource(
        "https://example.com/v.mp4?t=1"
    )


def test_each_mode_becomes_its_timing() -> None:
    series = parse_submit(job(snapshot={"mode": "series", "interval_s": 2.5, "count": 3, "start_ms": 100}))
    assert series.spec.timing == Series(start_ms=100.0, interval_s=2.5, count=3)
    points = parse_submit(job(snapshot={"mode": "points", "points_ms": [3000, 1000]}))
    assert isinstance(points.spec.timing, TimePoints) and points.spec.timing.points_ms == (3000.0, 1000.0)


@pytest.mark.parametrize(
    ("snapshot", "field", "reason"),
    [
        ({"time_ms": "5"}, "snapshot.time_ms", "must be a finite number of at most 1e+15, got '5'"),
        ({"time_ms": True}, "snapshot.time_ms", "must be a finite number of at most 1e+15, got True"),
        ({"time_ms": float("nan")}, "snapshot.time_ms", "must be a finite number of at most 1e+15, got nan"),
        (
            {"time_ms": HUGE},
            "snapshot.time_ms",
            "must be a finite number of at most 1e+15, got an integer of 402 digits",
        ),
        ({"time_ms": -1}, "snapshot.time_ms", "must be a finite number >= 0, got -1.0"),
        ({"width": 2.5}, "snapshot.width", "must be an integer, got 2.5"),
        ({"width": True}, "snapshot.width", "must be an integer, got True"),
        ({"width": HUGE}, "snapshot.width", "must be an integer within ±1e+15, got an integer of 402 digits"),
        ({"width": 5}, "snapshot.width", "must be an integer in [8, 4096], got 5"),
        ({"mode": "sideways"}, "snapshot.mode", "must be single, series, average or points, got 'sideways'"),
        ({"mode": None}, "snapshot.mode", "must be single, series, average or points, got None"),
        ({"mode": "single", "count": 3}, "snapshot", "has unknown field(s): count"),
        ({"mode": "series", "count": 3}, "snapshot.interval_s", "is required"),
        ({"mode": "points", "points_ms": []}, "snapshot.points_ms", "must hold at least one time point"),
        (
            {"mode": "points", "points_ms": [1, "x"]},
            "snapshot.points_ms[1]",
            "must be a finite number of at most 1e+15, got 'x'",
        ),
        ({"frame_type": "any"}, "snapshot.frame_type", "must be exact or keyframe, got 'any'"),
        (
            {"sprite": {"output": {"bucket": "Out", "key": "k"}}},
            "snapshot.sprite.output.bucket",
            "must be lowercase letters, digits, '.' and '-', starting and ending with a letter or digit",
        ),
        ({"black_frames": {"max_dark_ratio": 0}}, "snapshot.black_frames.max_dark_ratio", "must be in (0, 1], got 0.0"),
    ],
)
def test_a_wrong_field_is_named_with_its_path(snapshot: dict[str, Any], field: str, reason: str) -> None:
    assert errors_of(job(snapshot=snapshot)) == [(field, reason)]


def test_every_problem_is_reported_at_once_in_body_order() -> None:
    body = {
        "input": {"bucket": "media", "key": "in\ud800.mp4"},
        "output": "out",
        "snapshot": {"mode": "series", "interval_s": 0, "count": 0, "zz": 1, "aa": 2},
        "priority": 0,
        "client_token": "",
        "extra": True,
    }
    assert errors_of(body) == [
        ("input.key", "is not valid Unicode text"),
        ("output", "must be a JSON object"),
        ("snapshot.interval_s", "must be greater than 0, got 0.0"),
        ("snapshot.count", "must be in [1, 10000], got 0"),
        ("snapshot", "has unknown field(s): aa, zz"),
        ("priority", "must be in [1, 10], got 0"),
        ("client_token", "must be 1-64 characters"),
        ("", "request body has unknown field(s): extra"),
    ]
    assert errors_of([1]) == [("", "request body must be a JSON object")]


def test_union_tags_never_reach_a_path() -> None:
    tagged = {("snapshot",): "mode"}
    assert field_path(("snapshot", "points", "points_ms", 3), tagged) == "snapshot.points_ms[3]"
    assert field_path(("snapshot", "single"), tagged) == "snapshot"
    assert field_path(("input", "bucket"), tagged) == "input.bucket"


def test_pipelines_create_and_update() -> None:
    made = parse_pipeline_create({"name": "p", "notify": {"queue": "q"}, "resource_class": "gpu", "max_concurrency": 3})
    assert made == {
        "name": "p",
        "resource_class": ResourceClass.GPU,
        "max_concurrency": 3,
        "notify": NotifyTarget(queue="q"),
        "state": PipelineState.ACTIVE,
    }
    with pytest.raises(InvalidParameter) as caught:
        parse_pipeline_create({"name": "", "notify": {"topic": "t", "queue": "q"}, "max_concurrency": 0})
    assert caught.value.errors == (
        ("name", "must be 1-128 characters"),
        ("max_concurrency", "must be in [1, 10000], got 0"),
        ("notify", "must name exactly one of topic or queue"),
    )
    cleared = parse_pipeline_update({"max_concurrency": None, "notify": None})
    assert cleared.clear_max_concurrency and cleared.clear_notify and cleared.name is None
    kept = parse_pipeline_update({"state": "paused"})
    assert kept.state is PipelineState.PAUSED and not kept.clear_max_concurrency and not kept.clear_notify
