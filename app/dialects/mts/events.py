"""Job completion messages in Alibaba MPS's format (``DIALECT.render_completion`` of this dialect).

MPS publishes one flat JSON object per finished job with every key in two casings (``jobId`` and
``JobId``, ...) because its SDKs in different languages read different ones; consumers written
against MPS parse either. Successful jobs (of every mode: each is a set of time points once
planned) also carry ``UrlPattern`` (``{Count}`` left in),
``LastUrl``, ``Count`` (a JSON number) and ``TimeArray`` (requested times, ms). Key templates are
spelled back in MPS's own tokens (``{Count}``, ``{TileCount}``). Failures carry the MPS code and
message that ``QuerySnapshotJobList`` shows for the job (``render.job_failure``).
"""

from __future__ import annotations

import json
from urllib.parse import quote

from app.core import templates
from app.core.jobs import SnapshotJob
from app.core.ports import ObjectUrl
from app.core.states import JobState
from app.dialects.mts.render import MPS_SPELLING, job_failure

JOB_TYPE = "Snapshot"


def url_pattern(template: str, job_id: str) -> str:
    """An MPS ``UrlPattern`` key: the job id filled in, the image number left as ``{Count}``."""
    return templates.to_vendor(template, MPS_SPELLING, job_id=job_id)


def unsigned_pattern_url(url: str) -> str:
    """A URL pattern cannot carry a signature (one signs one key), so ``UrlPattern`` is the plain
    object URL with MPS's tokens readable again; ``LastUrl`` stays signed and fetchable."""
    plain = url.split("?", 1)[0]
    for token in MPS_SPELLING.values():
        plain = plain.replace(quote(token, safe=""), token)
    return plain


def completion_fields(job: SnapshotJob, object_url: ObjectUrl) -> dict[str, object]:
    if not job.state.is_terminal:
        raise ValueError(f"job {job.id} is {job.state}, not finished")
    state = "Success" if job.state is JobState.SUCCEEDED else "Fail"
    out: dict[str, object] = {
        "jobId": job.id,
        "JobId": job.id,
        "type": JOB_TYPE,
        "Type": JOB_TYPE,
        "state": state,
        "State": state,
    }
    if state == "Fail":
        code, msg = job_failure(job)
        out.update({"code": code, "Code": code, "msg": msg, "Msg": msg})
    user_data = job.user_data or ""
    out.update({"userData": user_data, "UserData": user_data})
    if state == "Success":  # every snapshot job is a set of time points once planned
        output, sprite = job.spec.output, job.spec.sprite
        bucket, pattern = output.bucket, url_pattern(output.key_template, job.id)
        uploaded = [i.key for i in job.manifest.images if i.uploaded]
        if not uploaded and sprite is not None and job.manifest.sheets:
            # Sprites only (cells not kept): point at what exists, the sheets.
            bucket, pattern = sprite.target.bucket, url_pattern(sprite.target.key_template, job.id)
            uploaded = [sheet.key for sheet in job.manifest.sheets]
        last_key = uploaded[-1] if uploaded else output.key_for(job.id, 1)
        out.update(
            {
                "UrlPattern": unsigned_pattern_url(object_url(bucket, pattern)),
                "LastUrl": object_url(bucket, last_key),
                "Count": len(job.manifest.images),
                "TimeArray": [int(round(i.requested_ms)) for i in job.manifest.images],
            }
        )
    return out


def render_completion(job: SnapshotJob, object_url: ObjectUrl) -> str:
    return json.dumps(completion_fields(job, object_url), ensure_ascii=False, separators=(",", ":"))
