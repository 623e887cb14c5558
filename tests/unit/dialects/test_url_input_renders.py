"""A job whose input is a URL (the native API's ``{"url"}``) in every vendor's job shape.

Vendor listings show a tenant's jobs whatever dialect submitted them; their shapes know only a
bucket and an object, so a URL input renders as no bucket and the URL as the object name (and
a failure of the URL's own kinds maps to a vendor code), never as a crash.
"""

from __future__ import annotations

from datetime import UTC, datetime
from urllib.parse import quote

from app.core.errors import FailureCode
from app.core.jobs import SnapshotJob
from app.core.specs import OutputTarget, SingleTime, SnapshotSpec, UrlSource
from app.core.states import JobState
from app.dialects.huawei.render import thumb_task
from app.dialects.jdcloud.render import error_code, task_json
from app.dialects.mts.render import job_record

URL = "https://cdn.example.com/v/clip.mp4?token=t0k3n"


def url_job(state: JobState = JobState.SUBMITTED, code: FailureCode | None = None) -> SnapshotJob:
    spec = SnapshotSpec(UrlSource(URL), SingleTime(1000), OutputTarget("out", "s/{job_id}.jpg"))
    job = SnapshotJob(id="j1", tenant="acme", pipeline_id="default", spec=spec, created_at=datetime.now(UTC))
    if state is not JobState.SUBMITTED:
        job.state, job.finished_at = state, datetime.now(UTC)
        job.error_code = code.value if code else None
        job.error_message = "input URL refused: ..." if code else None
    return job


def test_huawei_shows_the_url_as_the_object() -> None:
    task = thumb_task(url_job(), ("cn-north-4", "cn-north-4"))
    assert task["input"] == {"bucket": "", "location": "cn-north-4", "object": URL}


def test_jdcloud_shows_the_url_as_the_key_and_maps_the_url_failures() -> None:
    assert task_json(url_job())["source"] == {"bucket": "", "key": URL}
    assert error_code(url_job(JobState.FAILED, FailureCode.INPUT_REFUSED)) == 403
    assert error_code(url_job(JobState.FAILED, FailureCode.INPUT_TOO_LARGE)) == 413


def test_mps_shows_the_url_as_the_object() -> None:
    record = job_record(url_job())
    assert record["Input"]["Bucket"] == "" and record["Input"]["Object"] == quote(
        URL, safe="/"
    )  # MPS URL-encodes object names, slashes kept
    failed = job_record(url_job(JobState.FAILED, FailureCode.INPUT_REFUSED))
    assert failed["Code"] == "PermissionDenied.ResourceAccess"
