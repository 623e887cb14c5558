"""Native HTTP API: jobs and pipelines under /api/v1/ (JSON, HTTP Basic with an access key).

Every view admits its request through the shared gate (``app.gateway.gate``) with HTTP Basic:
Basic over TLS is what curl and every HTTP client speak without a signing library; the vendor
dialects verify their SDKs' signatures against the same access keys.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import Any, BinaryIO, cast

from flask import Blueprint, Response, g, jsonify, request

from app.core.errors import DomainError, InvalidParameter
from app.core.jobs import SnapshotJob
from app.core.pipelines import PipelineState
from app.core.ports import JobQuery
from app.core.service import MAX_WAIT_S, SubmitRequest
from app.core.states import JobState
from app.dialects.native.errors import code_for, field_errors, message_for, status_for
from app.dialects.native.render import job_json, pipeline_json
from app.dialects.native.schema import parse_batch, parse_pipeline_create, parse_pipeline_update, parse_submit
from app.gateway.dialect import DialectServices
from app.gateway.gate import http_basic
from app.gateway.raw import RawRequest, current_request

URL_PREFIX = "/api/v1"


def _body() -> Any:
    """The JSON body. The shell has already refused one nested too deeply (``app.gateway.bodies``)."""
    req = current_request()
    if not req.data:
        raise InvalidParameter("", "request body must be a JSON object")
    data = req.get_json(silent=True)
    if data is None:
        raise InvalidParameter("", "request body is not valid JSON (with Content-Type: application/json)")
    return data


class _LazyBody:
    """The request body as a file, opened on the first read (werkzeug checks its size then)."""

    def read(self, size: int = -1) -> bytes:
        return bytes(request.stream.read(size))


def _count_arg(name: str, default: str) -> int:
    """A small non-negative integer query parameter (ASCII digits only: int() takes '²' and
    '1_000', and refuses more than 4300 digits with a ValueError)."""
    raw = request.args.get(name, default)
    if not (raw.isascii() and raw.isdigit() and len(raw) <= 9):
        raise InvalidParameter(name, "must be a non-negative integer")
    return int(raw)


def _bool_arg(name: str) -> bool:
    raw = request.args.get(name, "false").lower()
    if raw not in ("true", "false", "1", "0"):
        raise InvalidParameter(name, "must be true or false")
    return raw in ("true", "1")


def _float_arg(name: str, default: float) -> float:
    if not current_request().query_string:  # most submissions: no need to parse a query into args
        return default
    raw = request.args.get(name)
    if raw is None or raw == "":
        return default
    try:
        return float(raw)
    except ValueError:
        raise InvalidParameter(name, "must be a number") from None


def _time_arg(name: str) -> datetime | None:
    raw = request.args.get(name)
    if not raw:
        return None
    try:
        value = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidParameter(name, "must be an ISO 8601 time, e.g. 2026-11-21T09:00:00Z") from None
    if value.tzinfo is None:
        raise InvalidParameter(name, "must include a time zone (e.g. a trailing Z)")
    return value


def create_blueprint(services: DialectServices) -> Blueprint:
    bp = Blueprint("native", __name__, url_prefix=URL_PREFIX)
    snapshots = services.snapshots

    def render(job: SnapshotJob) -> dict[str, Any]:
        return job_json(job, snapshots.object_url)

    def require_tenant() -> str:
        tenant = services.gate.admit(RawRequest.from_flask(current_request()), http_basic).tenant
        g.tenant = tenant
        return tenant

    @bp.post("/jobs")
    def submit_job() -> tuple[Response, int]:
        tenant = require_tenant()
        req = parse_submit(_body())
        token = current_request().headers.get("Idempotency-Key")
        if token and not req.client_token:
            req = replace(req, client_token=token)
        wait = _float_arg("wait", 0.0)
        if not 0 <= wait <= MAX_WAIT_S:
            raise InvalidParameter("wait", f"must be in [0, {MAX_WAIT_S:g}] seconds")
        svc = snapshots
        job = svc.submit(tenant, req)
        if wait > 0 and not job.is_terminal:
            job = svc.wait(tenant, job.id, wait)
        return jsonify(render(job)), (200 if job.is_terminal else 202)

    @bp.post("/jobs:batch")
    def submit_batch() -> tuple[Response, int]:
        """Up to 100 jobs in one request, each accepted or refused on its own (docs in README.md,
        "Batch submission"): 200 with one result per job, in order, unless the batch as a whole
        is malformed (not ``{"jobs": [...]}``, empty, or more than 100: 400, nothing stored)."""
        tenant = require_tenant()
        if request.headers.get("Idempotency-Key"):
            raise InvalidParameter(
                "Idempotency-Key", "names a single request; give each job of a batch its own client_token"
            )
        items = parse_batch(_body())
        refused: dict[int, DomainError] = {}  # jobs this dialect could not parse, by index
        parsed: list[SubmitRequest] = []
        for index, item in enumerate(items):
            try:
                parsed.append(parse_submit(item))
            except DomainError as error:
                refused[index] = error
        stored = iter(snapshots.submit_many(tenant, parsed) if parsed else [])
        outcomes = [refused[i] if i in refused else next(stored) for i in range(len(items))]
        results: list[dict[str, Any]] = []
        for index, outcome in enumerate(outcomes):
            if isinstance(outcome, DomainError):
                error: dict[str, Any] = {"code": code_for(outcome), "message": message_for(outcome)}
                if isinstance(outcome, InvalidParameter):
                    error["errors"] = field_errors(outcome)
                results.append({"index": index, "status": status_for(outcome), "error": error})
            else:
                results.append({"index": index, "status": 200 if outcome.is_terminal else 202, "job": render(outcome)})
        accepted = sum(1 for r in results if r["status"] < 300)
        return jsonify({"results": results, "accepted": accepted, "refused": len(results) - accepted}), 200

    @bp.put("/objects/<bucket>/<path:key>")
    def upload_object(bucket: str, key: str) -> tuple[Response, int]:
        """A local file in: the body streamed to the object store (the tenant needs write on it)."""
        tenant = services.gate.admit(RawRequest.from_flask(request, with_body=False), http_basic).tenant
        g.tenant = tenant
        request.max_content_length = services.settings.max_upload_bytes  # the use case says so first
        content_type = request.mimetype or "application/octet-stream"
        body = cast(BinaryIO, _LazyBody())  # opened only once the use case has checked grant and size
        ref = snapshots.upload(tenant, bucket, key, body, request.content_length, content_type)
        size = request.content_length or 0
        return jsonify(
            {"bucket": ref.bucket, "key": ref.key, "size": size, "url": snapshots.object_url(ref.bucket, ref.key)}
        ), 201

    @bp.get("/jobs/<job_id>")
    def get_job(job_id: str) -> Response:
        return jsonify(render(snapshots.get(require_tenant(), job_id)))

    @bp.delete("/jobs/<job_id>")
    def delete_job(job_id: str) -> tuple[str, int]:
        """Forget a finished job now (``?outputs=true``: and delete every object it wrote)."""
        tenant = require_tenant()
        snapshots.delete_job(tenant, job_id, outputs=_bool_arg("outputs"))
        return "", 204

    @bp.get("/jobs")
    def list_jobs() -> Response:
        tenant = require_tenant()
        state_raw = request.args.get("state")
        if state_raw and state_raw not in {s.value for s in JobState}:
            raise InvalidParameter("state", f"must be one of {', '.join(s.value for s in JobState)}")
        limit_raw = request.args.get("limit", "20")
        if not (limit_raw.isascii() and limit_raw.isdigit() and len(limit_raw) <= 9):
            raise InvalidParameter("limit", "must be an integer in [1, 100]")
        query = JobQuery(
            state=JobState(state_raw) if state_raw else None,
            pipeline_id=request.args.get("pipeline_id") or None,
            created_after=_time_arg("created_after"),
            created_before=_time_arg("created_before"),
            page_token=request.args.get("page_token") or None,
            limit=int(limit_raw),
        )
        page = snapshots.list_jobs(tenant, query)
        return jsonify({"jobs": [render(j) for j in page.jobs], "next_page_token": page.next_page_token})

    @bp.post("/jobs/<job_id>/cancel")
    def cancel_job(job_id: str) -> tuple[Response, int]:
        job = snapshots.cancel(require_tenant(), job_id)
        return jsonify(render(job)), (200 if job.is_terminal else 202)

    @bp.post("/jobs/<job_id>/retry")
    def retry_job(job_id: str) -> tuple[Response, int]:
        """Run a failed or canceled job again as a new job that names it in ``retry_of`` (the
        old one is left as it ended); 202 with the new job, 409 for a job in any other state."""
        return jsonify(render(snapshots.retry(require_tenant(), job_id))), 202

    @bp.get("/webhook-secret")
    def webhook_secret() -> Response:
        """The Standard Webhooks secret that signs pushes to this tenant's per-job ``webhook_url``s."""
        return jsonify({"secret": snapshots.webhook_secret(require_tenant())})

    @bp.post("/pipelines")
    def create_pipeline() -> tuple[Response, int]:
        tenant = require_tenant()
        fields = parse_pipeline_create(_body())
        p = snapshots.create_pipeline(tenant, **fields)
        return jsonify(pipeline_json(p)), 201

    @bp.get("/pipelines")
    def list_pipelines() -> Response:
        tenant = require_tenant()
        state = request.args.get("state")
        if state and state not in {"active", "paused"}:
            raise InvalidParameter("state", "must be active or paused")
        page = snapshots.list_pipelines_page(
            tenant,
            state=PipelineState(state) if state else None,
            page=_count_arg("page", "1"),
            page_size=_count_arg("page_size", "50"),
        )
        return jsonify({"pipelines": [pipeline_json(p) for p in page.pipelines], "total": page.total})

    @bp.get("/pipelines/<pipeline_id>")
    def get_pipeline(pipeline_id: str) -> Response:
        tenant = require_tenant()
        svc = snapshots
        p = svc.get_pipeline(tenant, pipeline_id)
        return jsonify(pipeline_json(p, svc.queue_depth(tenant, p.id)))

    @bp.patch("/pipelines/<pipeline_id>")
    def update_pipeline(pipeline_id: str) -> Response:
        tenant = require_tenant()
        p = snapshots.update_pipeline(tenant, pipeline_id, parse_pipeline_update(_body()))
        return jsonify(pipeline_json(p))

    @bp.delete("/pipelines/<pipeline_id>")
    def delete_pipeline(pipeline_id: str) -> tuple[str, int]:
        snapshots.delete_pipeline(require_tenant(), pipeline_id)
        return "", 204

    return bp
