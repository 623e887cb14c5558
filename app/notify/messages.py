"""Job completion messages in Alibaba MPS's format.

MPS publishes one flat JSON object per finished job with every key in two casings (``jobId`` and
``JobId``, ...) because its SDKs in different languages read different ones; consumers written
against MPS parse either. Time-point jobs also carry ``UrlPattern`` (``{Count}`` left in),
``LastUrl``, ``Count`` (a JSON number) and ``TimeArray`` (requested times, ms). Failure codes are
openmps's native ``FailureCode`` values.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable

from app.core.jobs import SnapshotJob
from app.core.specs import KEY_JOB_ID, TimePoints
from app.core.states import JobState

JOB_TYPE = "Snapshot"
CANCELED_CODE = "JobCanceled"
ObjectUrl = Callable[[str, str], str]  # (bucket, key) -> URL


def url_builder(base: str) -> ObjectUrl:
    return lambda bucket, key: f"{base.rstrip('/')}/{bucket}/{key}"


def completion_message_id(job_id: str) -> str:
    """The message id of a job's completion message: derived from the job, so that a notifier
    that repeats a send after a crash repeats the same message (queues and topics dedupe on it)."""
    return hashlib.md5(f"openmps-completion:{job_id}".encode()).hexdigest().upper()


def completion_fields(job: SnapshotJob, object_url: ObjectUrl) -> dict[str, object]:
    if not job.state.is_terminal:
        raise ValueError(f"job {job.id} is {job.state}, not finished")
    state = "Success" if job.state is JobState.SUCCEEDED else "Fail"
    out: dict[str, object] = {"jobId": job.id, "JobId": job.id, "type": JOB_TYPE, "Type": JOB_TYPE, "state": state, "State": state}
    if state == "Fail":
        code = job.error_code or (CANCELED_CODE if job.state is JobState.CANCELED else "InternalError")
        msg = job.error_message or ("The job was canceled." if job.state is JobState.CANCELED else "")
        out.update({"code": code, "Code": code, "msg": msg, "Msg": msg})
    user_data = job.user_data or ""
    out.update({"userData": user_data, "UserData": user_data})
    if state == "Success" and isinstance(job.spec.timing, TimePoints):
        output = job.spec.output
        pattern = output.key_template.replace(KEY_JOB_ID, job.id)
        images = [i for i in job.manifest.images if i.uploaded] or job.manifest.images
        last_key = images[-1].key if images else output.key_for(job.id, len(job.spec.timing.points_ms))
        out.update(
            {
                "UrlPattern": object_url(output.bucket, pattern),
                "LastUrl": object_url(output.bucket, last_key),
                "Count": len(job.manifest.images),
                "TimeArray": [int(round(i.requested_ms)) for i in job.manifest.images],
            }
        )
    return out


def render_completion(job: SnapshotJob, object_url: ObjectUrl) -> str:
    return json.dumps(completion_fields(job, object_url), ensure_ascii=False, separators=(",", ":"))
