"""MPS completion messages rendered from a SnapshotJob (``DIALECT.render_completion``)."""

from __future__ import annotations

import json

import pytest

from app.core.errors import FailureCode
from app.core.jobs import Manifest, OutputImage, SnapshotJob, SpriteSheet
from app.core.specs import ObjectRef, OutputTarget, Series, SingleTime, SnapshotSpec, SpriteSpec, TimePoints
from app.core.states import JobState
from app.dialects.mts import DIALECT
from app.dialects.mts.events import render_completion
from app.notify.messages import completion_message_id, url_builder

URL = url_builder("http://s3.local:9000/")


def _job(state: JobState, timing: object = TimePoints((500.0, 1500.0)), **kw: object) -> SnapshotJob:
    spec = SnapshotSpec(ObjectRef("in", "v.mp4"), timing, OutputTarget("out", "{job_id}/shot-{index:5}.jpg"))  # type: ignore[arg-type]
    return SnapshotJob(id="J1", tenant="t", pipeline_id="p", spec=spec, state=state, origin="mts", **kw)  # type: ignore[arg-type]


def test_it_is_the_dialects_renderer() -> None:
    assert DIALECT.render_completion is render_completion and DIALECT.name == "mts"


def test_success_with_time_points_has_both_casings_and_the_url_fields() -> None:
    images = [
        OutputImage(1, 500.0, 480.0, "J1/shot-00001.jpg", 8, 8, 1),
        OutputImage(2, 1500.0, 1480.0, "J1/shot-00002.jpg", 8, 8, 1),
    ]
    body = json.loads(
        render_completion(_job(JobState.SUCCEEDED, manifest=Manifest(images=images), user_data="{}"), URL)
    )
    assert body == {
        "jobId": "J1",
        "JobId": "J1",
        "type": "Snapshot",
        "Type": "Snapshot",
        "state": "Success",
        "State": "Success",
        "userData": "{}",
        "UserData": "{}",
        "UrlPattern": "http://s3.local:9000/out/J1/shot-{Count}.jpg",  # the job id filled in, {Count} kept
        "LastUrl": "http://s3.local:9000/out/J1/shot-00002.jpg",
        "Count": 2,
        "TimeArray": [500, 1500],  # requested times, not the captured ones
    }


def test_failures_carry_the_mps_code_and_the_jobs_message_and_no_urls() -> None:
    failed = json.loads(
        render_completion(
            _job(JobState.FAILED, error_code=FailureCode.TIME_OUT_OF_RANGE.value, error_message="past the end"), URL
        )
    )
    assert failed["State"] == failed["state"] == "Fail"
    assert failed["Code"] == failed["code"] == "InvalidParameter.TimeArray"
    assert failed["Msg"] == failed["msg"] == "past the end"
    assert "UrlPattern" not in failed and failed["UserData"] == ""
    unreadable = json.loads(render_completion(_job(JobState.FAILED, error_code="InputUnreadable"), URL))
    assert unreadable["Code"] == "InvalidParameter.ResourceContentBad"
    assert unreadable["Msg"] == "The resource operated is broken."  # no detail recorded: MPS's own text
    canceled = json.loads(render_completion(_job(JobState.CANCELED), URL))
    assert canceled["Code"] == "JobCanceled" and canceled["State"] == "Fail"
    timed_out = json.loads(render_completion(_job(JobState.CANCELED, timing=SingleTime(0.0)), URL))
    assert timed_out["Code"] == "SnapshotTimeOut"  # a canceled sync job ran out of its budget


def test_interval_jobs_carry_the_time_point_fields_too_and_unfinished_jobs_are_refused() -> None:
    images = [OutputImage(n, 1000.0 * (n - 1), 1000.0 * (n - 1), f"J1/shot-0000{n}.jpg", 8, 8, 1) for n in (1, 2, 3)]
    job = _job(JobState.SUCCEEDED, timing=Series(0.0, 1.0, 3), manifest=Manifest(images=images))
    body = json.loads(render_completion(job, URL))
    assert body["State"] == "Success" and body["Count"] == 3 and body["TimeArray"] == [0, 1000, 2000]
    assert body["LastUrl"] == "http://s3.local:9000/out/J1/shot-00003.jpg"
    with pytest.raises(ValueError):
        render_completion(_job(JobState.RUNNING), URL)


def test_message_id_is_stable_per_job_and_fits_a_receipt_handle() -> None:
    assert completion_message_id("J1") == completion_message_id("J1") != completion_message_id("J2")
    assert len(completion_message_id("J1")) == 32 and completion_message_id("J1").isupper()


def test_sprites_only_jobs_point_at_their_sheets() -> None:
    spec = SnapshotSpec(
        ObjectRef("in", "v.mp4"),
        Series(0.0, 1.0, 2),
        OutputTarget("out", "{job_id}/c-{index:5}.jpg"),
        sprite=SpriteSpec(target=OutputTarget("sheets", "{job_id}/s-{sheet:5}.jpg"), keep_cells=False),
    )
    cells = [OutputImage(n, 1000.0 * n, 1000.0 * n, f"J1/c-0000{n}.jpg", 8, 8, 0, uploaded=False) for n in (1, 2)]
    sheets = [SpriteSheet(1, "J1/s-00001.jpg", 100, 50, 999, 2)]
    job = SnapshotJob(
        id="J1",
        tenant="t",
        pipeline_id="p",
        spec=spec,
        state=JobState.SUCCEEDED,
        manifest=Manifest(images=cells, sheets=sheets),
    )
    body = json.loads(render_completion(job, URL))
    assert body["LastUrl"] == "http://s3.local:9000/sheets/J1/s-00001.jpg"
    assert body["UrlPattern"] == "http://s3.local:9000/sheets/J1/s-{TileCount}.jpg" and body["Count"] == 2


def test_literal_braces_in_keys_are_spelled_back_literally() -> None:
    spec = SnapshotSpec(ObjectRef("in", "v.mp4"), TimePoints((0.0,)), OutputTarget("out", "a{{b}}/{index:5}.jpg"))
    job = SnapshotJob(
        id="J1",
        tenant="t",
        pipeline_id="p",
        spec=spec,
        state=JobState.SUCCEEDED,
        manifest=Manifest(images=[OutputImage(1, 0.0, 0.0, "a{b}/00001.jpg", 8, 8, 1)]),
    )
    body = json.loads(render_completion(job, URL))
    assert body["UrlPattern"] == "http://s3.local:9000/out/a{b}/{Count}.jpg"
