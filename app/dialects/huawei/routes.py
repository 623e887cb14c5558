"""Huawei MPC snapshot API under ``/v1/<project_id>/thumbnails``: CreateThumbnailsTask (queued and
``sync: 1``), ListThumbnailsTask and DeleteThumbnailsTask (``docs/vendor-wire.md`` §4).

Every view checks the path's project id for shape (the SDK sends a literal ``{project_id}`` when
its credentials carry none), then admits the request through the shared gate with the
``SDK-HMAC-SHA256`` scheme. The project id names no tenant: the access key does. Tasks queue on
the shared default pipeline (Huawei has no pipelines); synchronous ones at the highest priority.

The OBS ``location`` strings a client sent ride along in ``SnapshotJob.dialect_data``, only to be
echoed back: the core has no use for them.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from flask import Blueprint, Response, jsonify, request

from app.core.errors import InvalidJobState, JobNotFound
from app.core.jobs import SnapshotJob
from app.core.states import JobState
from app.dialects.huawei import render
from app.dialects.huawei.auth import scheme_for
from app.dialects.huawei.errors import BAD_CONTENT_TYPE, OPERATION_FAILED, SYSTEM_ERROR, HuaweiError, invalid
from app.dialects.huawei.schema import (
    STATUS_BY_STATE,
    check_project_id,
    parse_create,
    parse_delete_task_id,
    parse_list,
)
from app.gateway.dialect import DialectServices
from app.gateway.raw import RawRequest

PATH = "/v1/<project_id>/thumbnails"
# The SDK's read timeout is 120 s by default, and users often set 10 s (``HttpConfig(timeout=
# (5, 10))``): a sync capture answers within 8 s or is canceled and refused.
SYNC_BUDGET_S = 8.0


def _locations(job: SnapshotJob) -> tuple[str, str]:
    """The ``location`` fields of the task's input and output, as the client sent them."""
    return job.dialect_data.get("input_location", ""), job.dialect_data.get("output_location", "")


def _json_body() -> Any:
    content_type = request.headers.get("Content-Type", "")
    if content_type and not content_type.lower().startswith("application/json"):
        raise HuaweiError(400, BAD_CONTENT_TYPE, f"Invalid Content-Type {content_type!r}: send application/json")
    if not request.data:
        raise invalid("body", "is required: a CreateThumbReq JSON object")
    data = request.get_json(force=True, silent=True)
    if data is None:
        raise invalid("body", "is not valid JSON")
    return data


def create_blueprint(services: DialectServices) -> Blueprint:
    bp = Blueprint("huawei", __name__)
    snapshots = services.snapshots

    def admit(project_id: str) -> str:
        check_project_id(project_id)
        return services.gate.admit(RawRequest.from_flask(request), scheme_for(project_id)).tenant

    def finish_sync(tenant: str, job: SnapshotJob) -> SnapshotJob:
        """The task once it ended, within the budget; else it is canceled and the call refused."""
        job = snapshots.wait(tenant, job.id, SYNC_BUDGET_S)
        if job.is_terminal:
            return job
        try:
            snapshots.cancel(tenant, job.id)
        except InvalidJobState:  # it finished between the wait and the cancel
            job = snapshots.get(tenant, job.id)
            if job.is_terminal:
                return job
        raise HuaweiError(
            500,
            SYSTEM_ERROR,
            f"System error: the synchronous snapshot did not finish within {SYNC_BUDGET_S:g} s and was "
            "canceled; submit it with sync=0 and query the task instead",
        )

    @bp.post(PATH)
    def create_task(project_id: str) -> Response:
        tenant = admit(project_id)
        task = parse_create(_json_body())
        sent = {"input_location": task.input_location, "output_location": task.output_location}
        job = snapshots.submit(tenant, replace(task.request, dialect_data={k: v for k, v in sent.items() if v}))
        where = _locations(job)
        if not task.sync:
            return jsonify({"task_id": job.id})
        return jsonify(render.sync_answer(finish_sync(tenant, job), task.kind, where))

    @bp.get(PATH)
    def list_tasks(project_id: str) -> Response:
        tenant = admit(project_id)
        wanted = parse_list(request.args, request.args.getlist("task_id"))
        if wanted.task_ids:
            jobs, _missing = snapshots.get_many(tenant, wanted.task_ids)  # unknown ids are simply not listed
            # Newest first, as pages are: the SDK sorts the ids on the wire, so the caller's order is lost.
            jobs.sort(key=lambda j: (j.created_at.timestamp() if j.created_at else 0.0, j.id), reverse=True)
            total, offset = len(jobs), 0
        else:
            page = snapshots.list_jobs_at(tenant, wanted.query, wanted.offset)
            jobs, total, offset = page.jobs, page.total, wanted.offset
        tasks = [render.thumb_task(job, _locations(job)) for job in jobs]
        return jsonify(render.list_answer(tasks, total, offset))

    @bp.delete(PATH)
    def cancel_task(project_id: str) -> Response:
        tenant = admit(project_id)
        task_id = parse_delete_task_id(request.args.getlist("task_id"))
        try:
            job = snapshots.get(tenant, task_id)
        except JobNotFound:
            raise HuaweiError(400, OPERATION_FAILED, f"Operation failed: task {task_id!r} does not exist") from None
        if job.state is not JobState.SUBMITTED:  # Huawei cancels waiting tasks only
            raise InvalidJobState(f"task {task_id} is {STATUS_BY_STATE[job.state]}; only WAITING tasks can be canceled")
        snapshots.cancel(tenant, task_id)  # one that started a moment ago is asked to stop
        return Response(status=204)

    return bp
