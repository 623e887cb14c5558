"""MPS completion message rendering from a SnapshotJob."""

from __future__ import annotations

import json

import pytest

from app.core.jobs import Manifest, OutputImage, SnapshotJob, SpriteSheet
from app.core.specs import ObjectRef, OutputTarget, Series, SnapshotSpec, SpriteSpec, TimePoints
from app.core.states import JobState
from app.notify.messages import completion_message_id, render_completion, url_builder

URL = url_builder("http://s3.local:9000/")


def _job(state: JobState, timing: object = TimePoints((500.0, 1500.0)), **kw: object) -> SnapshotJob:
    spec = SnapshotSpec(ObjectRef("in", "v.mp4"), timing, OutputTarget("out", "{JobId}/shot-{Count}.jpg"))  # type: ignore[arg-type]
    return SnapshotJob(id="J1", tenant="t", pipeline_id="p", spec=spec, state=state, **kw)  # type: ignore[arg-type]


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
        "UrlPattern": "http://s3.local:9000/out/J1/shot-{Count}.jpg",
        "LastUrl": "http://s3.local:9000/out/J1/shot-00002.jpg",
        "Count": 2,
        "TimeArray": [500, 1500],
    }


def test_failure_and_cancel_carry_code_and_msg_and_no_urls() -> None:
    failed = json.loads(
        render_completion(_job(JobState.FAILED, error_code="TimeOutOfRange", error_message="past the end"), URL)
    )
    assert failed["State"] == failed["state"] == "Fail"
    assert failed["Code"] == failed["code"] == "TimeOutOfRange" and failed["Msg"] == failed["msg"] == "past the end"
    assert "UrlPattern" not in failed and failed["UserData"] == ""
    canceled = json.loads(render_completion(_job(JobState.CANCELED), URL))
    assert canceled["Code"] == "JobCanceled" and canceled["State"] == "Fail"


def test_interval_jobs_carry_the_time_point_fields_too_and_unfinished_jobs_are_refused() -> None:
    job = _job(JobState.SUCCEEDED, timing=Series(0.0, 1.0, 3))
    body = json.loads(render_completion(job, URL))
    assert body["State"] == "Success"
    assert body["Count"] == len(job.manifest.images)
    assert body["TimeArray"] == [int(round(i.requested_ms)) for i in job.manifest.images]
    with pytest.raises(ValueError):
        render_completion(_job(JobState.RUNNING), URL)


def test_message_id_is_stable_per_job_and_fits_a_receipt_handle() -> None:
    assert completion_message_id("J1") == completion_message_id("J1") != completion_message_id("J2")
    assert len(completion_message_id("J1")) == 32 and completion_message_id("J1").isupper()


def test_sprites_only_jobs_point_at_their_sheets() -> None:
    spec = SnapshotSpec(
        ObjectRef("in", "v.mp4"),
        Series(0.0, 1.0, 2),
        OutputTarget("out", "{JobId}/c-{Count}.jpg"),
        sprite=SpriteSpec(target=OutputTarget("sheets", "{JobId}/s-{TileCount}.jpg"), keep_cells=False),
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
