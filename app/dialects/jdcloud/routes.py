"""JD Cloud MPS v1 thumbnail API, as jdcloud-sdk's ``MpsClient`` calls it (``docs/vendor-wire.md`` §3):

=========================================== ===================== ======================================
``POST /v1/regions/{regionId}/thumbnail``     createThumbnailTask   a snapshot job (origin ``jdcloud``)
``GET  /v1/regions/{regionId}/thumbnail/{id}`` getThumbnailTask      the task
``GET  /v1/regions/{regionId}/thumbnail``     listThumbnailTask     newest first, paged by ``marker``
``PUT  /v1/regions/{regionId}/notification``  setNotification       the tenant's push endpoint (core)
``GET  /v1/regions/{regionId}/notification``  getNotification       what was set
=========================================== ===================== ======================================

``regionId`` only scopes the signature; tasks belong to the caller's tenant in every region.
Every view admits its request through the shared gate with the JDCLOUD2/3 scheme. Tasks other
dialects submitted for the same tenant are not JD tasks: get answers 404, list leaves them out.

The task's JD ``mode`` as submitted rides along in ``SnapshotJob.dialect_data``: a ``multi`` task
over the whole video plans exactly like ``average`` and would otherwise read back as one.
"""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

from flask import Blueprint, Response, request

from app.core.errors import InvalidParameter, JobNotFound
from app.core.jobs import SnapshotJob
from app.core.ports import MAX_PAGE_SIZE, JobQuery
from app.dialects.jdcloud import render
from app.dialects.jdcloud.auth import jdcloud_scheme
from app.dialects.jdcloud.schema import ORIGIN, ListQuery, parse_create, parse_list, parse_notification
from app.gateway.dialect import DialectServices
from app.gateway.raw import RawRequest

URL_PREFIX = "/v1/regions"


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _body() -> Any:
    data = request.get_data()
    if not data.strip():
        raise InvalidParameter("", "the request body must be a JSON object")
    try:
        return json.loads(data.decode("utf-8"), parse_constant=_reject_constant)
    except (UnicodeDecodeError, ValueError, RecursionError):  # RecursionError: nested too deep
        raise InvalidParameter("", "the request body is not valid JSON") from None


def create_blueprint(services: DialectServices) -> Blueprint:
    bp = Blueprint("jdcloud", __name__, url_prefix=URL_PREFIX)
    snapshots = services.snapshots

    def tenant() -> str:
        return services.gate.admit(RawRequest.from_flask(request), jdcloud_scheme).tenant

    def jd_task(owner: str, task_id: str) -> SnapshotJob:
        job = snapshots.get(owner, task_id)
        if job.origin != ORIGIN:
            raise JobNotFound(f"job {task_id!r} does not exist")
        return job

    def modes(jobs: list[SnapshotJob]) -> list[str | None]:
        """``multi`` for the tasks submitted so, else None (the rule says what it is)."""
        return ["multi" if j.dialect_data.get("mode") == "multi" else None for j in jobs]

    @bp.post("/<region_id>/thumbnail")
    def create_thumbnail_task(region_id: str) -> Response:
        owner = tenant()
        parsed = parse_create(_body())
        job = snapshots.submit(owner, replace(parsed.submit, dialect_data={"mode": parsed.mode}))
        return render.ok({"taskID": job.id})

    @bp.get("/<region_id>/thumbnail/<task_id>")
    def get_thumbnail_task(region_id: str, task_id: str) -> Response:
        job = jd_task(tenant(), task_id)
        return render.ok(render.task_json(job, modes([job])[0]))

    @bp.get("/<region_id>/thumbnail")
    def list_thumbnail_task(region_id: str) -> Response:
        owner = tenant()
        query = parse_list(request.args)
        jobs = list_page(owner, query)
        page = jobs[: query.limit]
        result: dict[str, Any] = {}
        for name in ("status", "begin", "end", "marker"):
            if request.args.get(name) is not None:
                result[name] = request.args[name]
        result["limit"] = query.limit
        result["truncated"] = len(jobs) > query.limit
        if len(jobs) > query.limit:
            result["nextMarker"] = jobs[query.limit].id
        result["taskList"] = [render.task_json(j, m) for j, m in zip(page, modes(page), strict=True)]
        return render.ok(result)

    def list_page(owner: str, q: ListQuery) -> list[SnapshotJob]:
        """Up to ``limit + 1`` tasks from the marker on (the extra one is the next marker).

        A marker is a task id, and the page starts *at* it. The core lists newest first by
        (created ms, id), both descending, so the page is everything created at or before the
        marker task, less the tasks of that same millisecond that sort before it.
        """
        anchor: SnapshotJob | None = None
        before = q.end
        if q.marker:
            try:
                anchor = jd_task(owner, q.marker)
            except JobNotFound:
                raise InvalidParameter("marker", f"names no task: {q.marker!r}") from None
            assert anchor.created_at is not None
            before = anchor.created_at if before is None else min(before, anchor.created_at)
            if q.begin is not None and q.begin > before:
                return []
        core = JobQuery(
            state=q.status, created_after=q.begin, created_before=before, origin=ORIGIN, limit=MAX_PAGE_SIZE
        )
        found: list[SnapshotJob] = []
        token: str | None = None
        while len(found) <= q.limit:
            page = snapshots.list_jobs(owner, replace(core, page_token=token))
            for job in page.jobs:
                if anchor is not None and job.created_at == anchor.created_at and job.id > anchor.id:
                    continue
                found.append(job)
            if page.next_page_token is None:
                break
            token = page.next_page_token
        return found[: q.limit + 1]

    @bp.put("/<region_id>/notification")
    def set_notification(region_id: str) -> Response:
        owner = tenant()
        snapshots.set_push_endpoint(owner, ORIGIN, parse_notification(_body()))
        return render.ok()

    @bp.get("/<region_id>/notification")
    def get_notification(region_id: str) -> Response:
        return render.ok(render.notification_json(snapshots.get_push_endpoint(tenant(), ORIGIN)))

    return bp
