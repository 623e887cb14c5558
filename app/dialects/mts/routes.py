"""The MPS RPC endpoint: ``GET|POST /?Action=...&Version=2014-06-18`` (or ACS3 ``x-acs-action``).

One route at the host root dispatches on ``Action``. Order per call: the call's shape (Action,
Version; nothing secret is needed to refuse an unknown API) -> the shared gate with this
dialect's signature schemes -> the action. Every error is rendered by ``errors.render_error``
through the shell.

Synchronous ``SubmitSnapshotJob`` (neither ``Interval`` nor ``Num``) waits for its job within
``mts_sync_budget_s``; a job still unfinished then is canceled and the call answers
``SnapshotTimeOut``. A running job's worker deletes what it wrote when it sees the cancel, so the
call waits a short grace for that (never past ``SYNC_CEILING_S``, under the SDKs' 10 s read
timeout); a job that finished in that moment after all is answered as the success it is.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any

from flask import Blueprint, Response, g, request

from app.core.errors import InvalidJobState, PipelineNotFound
from app.core.jobs import SnapshotJob
from app.core.ports import MAX_PAGE_SIZE as CORE_PAGE_SIZE
from app.core.service import PipelineChanges
from app.core.states import JobState
from app.dialects.mts import render, schema
from app.dialects.mts.auth import scheme
from app.dialects.mts.errors import MtsError, failed_call, missing
from app.gateway.dialect import DialectServices
from app.gateway.raw import RawRequest

SYNC_CEILING_S = 8.0  # budget + cancel grace stay below the SDKs' 10 s read timeout
CANCEL_GRACE_S = 3.0  # a worker sees a cancel within one heartbeat (3 s by default)
MAX_SCANS = 20  # core pages one QuerySnapshotJobList call reads at most (State=Fail filters)

Params = Mapping[str, str]
Action = Callable[[str, Params], dict[str, Any]]


def create_blueprint(services: DialectServices) -> Blueprint:
    bp = Blueprint("mts", __name__)
    snapshots = services.snapshots

    def submit_snapshot_job(tenant: str, params: Params) -> dict[str, Any]:
        sub = schema.parse_submit(params)
        job = snapshots.submit(tenant, sub.request)
        if sub.sync:
            job = _finish_sync(job, tenant)
        return {"SnapshotJob": render.job_record(job, sub.echo)}

    def _finish_sync(job: SnapshotJob, tenant: str) -> SnapshotJob:
        budget = max(0.0, min(services.settings.mts_sync_budget_s, SYNC_CEILING_S))
        job = snapshots.wait(tenant, job.id, budget)
        if not job.is_terminal:
            try:
                snapshots.cancel(tenant, job.id)
            except InvalidJobState:
                pass  # it finished between the wait and the cancel
            job = snapshots.wait(tenant, job.id, min(CANCEL_GRACE_S, SYNC_CEILING_S - budget))
        if job.state is JobState.SUCCEEDED:
            return job
        if job.state is JobState.FAILED:
            raise failed_call(job)
        raise MtsError(
            "SnapshotTimeOut",
            f"Snapshot times out: the job did not finish within {budget:g} s and was canceled; "
            "submit an asynchronous job (Num or Interval) instead.",
        )

    def query_snapshot_job_list(tenant: str, params: Params) -> dict[str, Any]:
        ids = schema.id_list(params, "SnapshotJobIds", schema.MAX_JOB_IDS)
        if ids is not None:
            found, missing_ids = snapshots.get_many(tenant, ids)
            return {
                "SnapshotJobList": render.job_list(found),
                "NonExistSnapshotJobIds": {"String": missing_ids},
            }
        listing = schema.parse_job_listing(params)
        jobs: list[SnapshotJob] = []
        token = listing.query.page_token
        # Pages of at most the core's size, each asking only for what is still missing, so the
        # core's cursor after the last job read is always the right NextPageToken; "Fail" reads
        # failed and canceled jobs and filters.
        for _ in range(MAX_SCANS):
            want = min(CORE_PAGE_SIZE, listing.page_size - len(jobs))
            page = snapshots.list_jobs(tenant, replace(listing.query, page_token=token, limit=want))
            jobs += [j for j in page.jobs if not listing.states or j.state in listing.states]
            token = page.next_page_token
            if token is None or len(jobs) >= listing.page_size:
                break
        body: dict[str, Any] = {"SnapshotJobList": render.job_list(jobs), "NonExistSnapshotJobIds": {"String": []}}
        if token:
            body["NextPageToken"] = token
        return body

    def add_pipeline(tenant: str, params: Params) -> dict[str, Any]:
        name = params.get("Name")
        if not name:
            raise missing("Name")
        notify = schema.parse_notify(params)
        p = snapshots.create_pipeline(
            tenant, name, notify=notify if notify and (notify.topic or notify.queue) else None
        )
        return {"Pipeline": render.pipeline_record(p, creation_time=False)}

    def update_pipeline(tenant: str, params: Params) -> dict[str, Any]:
        pipeline_id = _required(params, "PipelineId")
        notify = schema.parse_notify(params)
        changes = PipelineChanges(
            name=params.get("Name") or None,
            state=schema.parse_pipeline_state(params),
            notify=notify if notify and (notify.topic or notify.queue) else None,
            clear_notify=notify is not None and not (notify.topic or notify.queue),
        )
        p = snapshots.update_pipeline(tenant, pipeline_id, changes)
        return {"Pipeline": render.pipeline_record(p, creation_time=False)}

    def delete_pipeline(tenant: str, params: Params) -> dict[str, Any]:
        pipeline_id = _required(params, "PipelineId")
        snapshots.delete_pipeline(tenant, pipeline_id)
        return {"PipelineId": pipeline_id}

    def query_pipeline_list(tenant: str, params: Params) -> dict[str, Any]:
        ids = schema.id_list(params, "PipelineIds", schema.MAX_PIPELINE_IDS)
        if ids is None:
            raise missing("PipelineIds")
        found, absent = [], []
        for pipeline_id in ids:
            try:
                found.append(render.pipeline_record(snapshots.get_pipeline(tenant, pipeline_id)))
            except PipelineNotFound:
                absent.append(pipeline_id)
        return {"PipelineList": {"Pipeline": found}, "NonExistPids": {"String": absent}}

    def search_pipeline(tenant: str, params: Params) -> dict[str, Any]:
        state_raw = params.get("State") or "All"
        state = None if state_raw == "All" else schema.parse_pipeline_state(params)
        number, size = schema.parse_paging(params)
        page = snapshots.list_pipelines_page(tenant, state=state, page=number, page_size=size)
        return {
            "TotalCount": page.total,
            "PageNumber": number,
            "PageSize": size,
            "PipelineList": {"Pipeline": [render.pipeline_record(p) for p in page.pipelines]},
        }

    actions: dict[str, Action] = {
        "SubmitSnapshotJob": submit_snapshot_job,
        "QuerySnapshotJobList": query_snapshot_job_list,
        "AddPipeline": add_pipeline,
        "UpdatePipeline": update_pipeline,
        "DeletePipeline": delete_pipeline,
        "QueryPipelineList": query_pipeline_list,
        "SearchPipeline": search_pipeline,
    }

    @bp.route("/", methods=["GET", "POST"])
    def rpc() -> Response:
        raw = RawRequest.from_flask(request)
        call = schema.read_call(raw)
        g.mts_xml = call.xml
        if not call.action:
            raise missing("Action")
        if not call.version:
            raise missing("Version")
        if call.version != schema.VERSION:
            raise MtsError("InvalidVersion", f"Specified parameter Version {call.version!r} is not valid.", 400)
        action = actions.get(call.action)
        if action is None:
            raise MtsError(
                "InvalidAction.NotFound",
                f"Specified api {call.action!r} is not found, please check your url and method.",
                404,
            )
        tenant = services.gate.admit(raw, scheme).tenant
        return render.ok(call.action, action(tenant, call.params), call.xml)

    return bp


def _required(params: Params, name: str) -> str:
    value = params.get(name)
    if not value:
        raise missing(name)
    return value
