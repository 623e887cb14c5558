"""Core jobs -> Huawei's ``ThumbTask`` and create answers (``docs/vendor-wire.md`` §4.3, seed ``004_…``).

Times are ``yyyymmddhhmmss`` UTC strings. ``output.object`` is the directory the pictures are in
(the task's own sub-directory when ``original_dir`` was 0), and ``thumbnail_info[].pic_name`` is
each picture's name in it, so ``output.object + "/" + pic_name`` is the object key; with
``tar: 0`` the pictures are the tar's members and ``output_file_name`` is the tar. Tasks that
other dialects submitted for the same tenant render the same way from their keys.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from app.core import templates
from app.core.jobs import SnapshotJob
from app.core.specs import input_location
from app.core.states import JobState
from app.dialects.huawei.errors import FAILURE_CODES, SYSTEM_ERROR
from app.dialects.huawei.schema import STATUS_BY_STATE, TIME_FORMAT


def huawei_time(when: datetime | None) -> str:
    return when.strftime(TIME_FORMAT) if when is not None else ""


def _leaf(key: str) -> str:
    return key.rsplit("/", 1)[-1]


def _directory(template: str, job_id: str) -> str:
    folder, slash, _ = template.rpartition("/")
    return templates.render(folder, job_id=job_id) if slash else ""


def output_dir(job: SnapshotJob) -> str:
    spec = job.spec
    template = spec.archive.target.key_template if spec.archive is not None else spec.output.key_template
    return _directory(template, job.id)


def pic_names(job: SnapshotJob) -> list[str]:
    """The pictures of a finished task, once each (two equal dots make one file)."""
    if job.state is not JobState.SUCCEEDED:
        return []
    in_archive = job.spec.archive is not None
    return list(dict.fromkeys(_leaf(i.key) for i in job.manifest.images if i.uploaded or in_archive))


def output_file_name(job: SnapshotJob) -> str:
    """The tar, or the one picture a single-picture task names; "" for several pictures."""
    spec = job.spec
    if spec.archive is not None:
        return _leaf(job.manifest.archive_key or templates.render(spec.archive.target.key_template, job_id=job.id))
    if not any(templates.uses(spec.output.key_template, t) for t in templates.IMAGE_TOKENS):
        return _leaf(templates.render(spec.output.key_template, job_id=job.id))
    return ""


def description(job: SnapshotJob) -> str:
    """Why a task failed, led by the MPC code a Huawei client would search for."""
    if job.state is JobState.FAILED:
        code = next((c for f, c in FAILURE_CODES.items() if f.value == job.error_code), SYSTEM_ERROR)
        return f"{code}: {job.error_message or job.error_code or 'the task failed'}"
    if job.state is JobState.CANCELED:
        return "The task was canceled."
    return ""


def obs(bucket: str, location: str, key: str) -> dict[str, str]:
    return {"bucket": bucket, "location": location, "object": key}


def thumb_task(job: SnapshotJob, locations: tuple[str, str]) -> dict[str, Any]:
    spec = job.spec
    in_location, out_location = locations
    out_bucket = spec.archive.target.bucket if spec.archive is not None else spec.output.bucket
    in_bucket, in_object = input_location(spec.input)  # a URL input (native API): no bucket, the URL as object
    return {
        "task_id": job.id,
        "status": STATUS_BY_STATE[job.state],
        "create_time": huawei_time(job.created_at),
        "end_time": huawei_time(job.finished_at) if job.is_terminal else "",
        "input": obs(in_bucket, in_location, in_object),
        "output": obs(out_bucket, out_location, output_dir(job)),
        "output_file_name": output_file_name(job),
        "user_data": job.user_data or "",
        "description": description(job),
        "thumbnail_info": [{"pic_name": name} for name in pic_names(job)],
    }


def list_answer(tasks: list[dict[str, Any]], total: int, offset: int) -> dict[str, Any]:
    return {"task_array": tasks, "is_truncated": 1 if offset + len(tasks) < total else 0, "total": total}


def sync_answer(job: SnapshotJob, kind: str, locations: tuple[str, str]) -> dict[str, Any]:
    """``sync: 1``: the task as it ended, with the picture's name and its time (the unit of the
    request: seconds for DOTS, milliseconds for DOTS_MS)."""
    task = thumb_task(job, locations)
    names = task["thumbnail_info"]
    when = ""
    if job.manifest.images:
        ms = job.manifest.images[0].requested_ms
        when = str(int(ms)) if kind == "DOTS_MS" else str(int(ms // 1000))
    return {
        "task_id": job.id,
        "status": task["status"],
        "create_time": task["create_time"],
        "output": task["output"],
        "output_file_name": task["output_file_name"] or (names[0]["pic_name"] if names else ""),
        "thumbnail_time": when,
        "description": task["description"],
    }
