"""MPS request parameters -> core requests: modes, sync detection, key tokens, decoding, limits."""

from __future__ import annotations

import json
from typing import Any

import pytest

from app.core.specs import Average, FrameType, Series, SingleTime, TimePoints
from app.dialects.mts.errors import MtsError
from app.dialects.mts.schema import MPS_PRIORITY, SYNC_PRIORITY, id_list, parse_job_listing, parse_submit, parse_timing

OUT = {"Bucket": "out", "Location": "oss-cn-hangzhou", "Object": "s/{Count}.jpg"}


def submit(config: dict[str, Any], inp: dict[str, Any] | None = None, **params: str) -> Any:
    return parse_submit(
        {
            "Input": json.dumps(inp or {"Bucket": "media", "Location": "oss-cn-hangzhou", "Object": "v.mp4"}),
            "SnapshotConfig": json.dumps(config),
            **params,
        }
    )


@pytest.mark.parametrize(
    ("config", "timing", "sync"),
    [
        ({}, SingleTime(0.0), True),
        ({"Time": "5"}, SingleTime(5.0), True),  # milliseconds
        ({"Time": 1500.5}, SingleTime(1500.5), True),
        ({"Time": "5", "Num": "10", "Interval": "20"}, Series(5.0, 20.0, 10), False),  # seed 002's example
        ({"Num": "4"}, Series(0.0, 10.0, 4), False),  # Interval defaults to 10 s
        ({"Interval": "2.5"}, Series(0.0, 2.5, 1), False),
        ({"Interval": "0", "Num": "9", "Time": "1000"}, Average(9, 1000.0), False),  # evenly spread
        ({"Interval": "0", "Num": "1"}, Series(0.0, 10.0, 1), False),
        ({"TimeArray": {"TimePointList": [5000, 100.555, 100]}}, TimePoints((5000.0, 100.56, 100.0)), False),
        ({"Time": "7", "TimeArray": {"TimePointList": ["1"]}}, TimePoints((1.0,)), False),  # the list wins
    ],
)
def test_modes(config: dict[str, Any], timing: object, sync: bool) -> None:
    assert parse_timing(config) == (timing, sync)


def test_sync_jobs_go_first_and_async_ones_get_mps_default_priority() -> None:
    sync = submit({"OutputFile": OUT, "Time": "5"})
    assert sync.sync and sync.request.priority == SYNC_PRIORITY == 10
    later = submit({"OutputFile": OUT, "Num": "2"}, PipelineId="p1", UserData="u-1")
    assert not later.sync and later.request.priority == MPS_PRIORITY == 6
    assert later.request.pipeline_id == "p1" and later.request.user_data == "u-1" and later.request.origin == "mts"
    assert sync.request.pipeline_id == "default"


def test_objects_are_url_decoded_and_echoed_as_sent() -> None:
    got = submit(
        {"OutputFile": {**OUT, "Object": "out%2F%7BCount%7D%20a+b.jpg"}, "Num": "2"},
        {"Bucket": "media", "Location": "oss-cn-shanghai", "Object": "example%2Ftest%2B1.flv", "RoleArn": "acs:ram::1"},
    )
    spec = got.request.spec
    assert spec.input.key == "example/test+1.flv"  # '+' is a plus, never a space
    assert spec.output.key_template == "out/{index:5} a+b.jpg"
    assert got.echo.files["Input"] == {
        "Object": "example%2Ftest%2B1.flv",
        "Location": "oss-cn-shanghai",
        "RoleArn": "acs:ram::1",
    }


def test_key_tokens_become_neutral_and_other_braces_stay_literal() -> None:
    cfg = {
        "OutputFile": {**OUT, "Object": "{JobId}/{x}-{Count}.jpg"},
        "Num": "3",
        "TileOutputFile": {**OUT, "Object": "t/{TileCount}.jpg"},
        "TileOut": {"Lines": "2", "Columns": 5, "CellWidth": "100", "IsKeepCellPic": "false", "Color": "random"},
    }
    spec = submit(cfg).request.spec
    assert spec.output.key_template == "{job_id}/{{x}}-{index:5}.jpg"
    assert spec.sprite is not None and spec.sprite.target.key_template == "t/{sheet:5}.jpg"
    assert (spec.sprite.lines, spec.sprite.columns, spec.sprite.cell_width, spec.sprite.cell_height) == (
        2,
        5,
        100,
        None,
    )
    assert spec.sprite.keep_cells is False and spec.sprite.color == "random"


def test_frame_type_size_and_their_errors() -> None:
    spec = submit({"OutputFile": OUT, "FrameType": "INTRA", "Width": "320", "Height": 180}).request.spec
    assert spec.frame_type is FrameType.KEYFRAME and (spec.size.width, spec.size.height) == (320, 180)
    assert submit({"OutputFile": OUT}).request.spec.frame_type is FrameType.EXACT  # seed 003: normal
    for config, code in [
        ({"FrameType": "key"}, "InvalidParameter.FrameType"),
        ({"Width": "12.5"}, "InvalidParameter.Width"),
        ({"Time": "١٢"}, "InvalidParameter.Time"),  # non-ASCII digits are not numbers here
        ({"Time": True}, "InvalidParameter.Time"),
        ({"Time": "-1"}, "InvalidParameter.Time"),
        ({"Num": "2", "TimeArray": {"TimePointList": [1]}}, "InvalidParameter.TimeArray"),
        ({"TimeArray": [1, 2]}, "InvalidParameter.TimeArray"),
        ({"TileOut": {"IsKeepCellPic": "maybe"}, "TileOutputFile": OUT}, "InvalidParameter.TileOut"),
    ]:
        with pytest.raises(MtsError) as err:
            submit({"OutputFile": OUT, **config})
        assert err.value.code == code and err.value.status == 400, config


def test_required_parameters() -> None:
    with pytest.raises(MtsError) as err:
        parse_submit({"SnapshotConfig": "{}"})
    assert err.value.code == "MissingInput"
    with pytest.raises(MtsError) as err:
        parse_submit({"Input": '{"Bucket": "b", "Object": "o"}', "SnapshotConfig": " "})
    assert err.value.code == "MissingSnapshotConfig"
    with pytest.raises(MtsError) as err:
        submit({"OutputFile": {"Bucket": "out"}})
    assert err.value.code == "InvalidParameter.OutputFile" and "OutputFile.Object" in err.value.message


def test_job_listing_parameters() -> None:
    listing = parse_job_listing(
        {"State": "Fail", "StartOfJobCreatedTimeRange": "2026-01-01T00:00:00Z", "MaximumPageSize": "300"}
    )
    assert listing.query.state is None and {s.value for s in listing.states} == {"failed", "canceled"}
    assert listing.page_size == 300 and listing.query.created_after is not None
    assert parse_job_listing({}).page_size == 30
    for params, code in [
        ({"State": "Done"}, "InvalidParameter.State"),
        ({"MaximumPageSize": "301"}, "InvalidParameter.MaximumPageSize"),
        ({"EndOfJobCreatedTimeRange": "yesterday"}, "InvalidParameter.EndOfJobCreatedTimeRange"),
    ]:
        with pytest.raises(MtsError) as err:
            parse_job_listing(params)
        assert err.value.code == code
    assert id_list({"SnapshotJobIds": "a, b,,c"}, "SnapshotJobIds", 10) == ["a", "b", "c"]
    with pytest.raises(MtsError):
        id_list({"SnapshotJobIds": ",".join(str(i) for i in range(11))}, "SnapshotJobIds", 10)
