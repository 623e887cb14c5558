"""The console's views: login, pipelines (live depths, pause/resume), jobs (filters, progress), a
job's page (gallery, storyboard preview, error, retry/cancel, notification deliveries).

Every view but the login page needs a session (``viewer()``), re-checked against the access key on
each request, so a deleted key's session stops working at once. Every POST is checked for its CSRF
token before the view runs. Responses carry a strict Content-Security-Policy: the pages load only
their own script, styles and images (no inline script), and may not be framed.
"""

from __future__ import annotations

import base64
from dataclasses import replace
from datetime import UTC, datetime

from flask import (
    Blueprint,
    Response,
    abort,
    flash,
    g,
    jsonify,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_wtf.csrf import CSRFError, CSRFProtect
from werkzeug.exceptions import HTTPException
from werkzeug.wrappers import Response as BaseResponse

from app.console.pages import (
    DeliveryView,
    Viewer,
    bucket_for,
    content_type,
    fmt_duration,
    fmt_ms,
    fmt_time,
    gallery,
    parse_filters,
    pipeline_row,
)
from app.console.services import ConsoleServices
from app.core.errors import Conflict, DomainError, JobFailure, NotFound, Throttled, Unauthenticated, Unavailable
from app.core.pipelines import PipelineState
from app.core.service import PipelineChanges
from app.core.states import JobState
from app.gateway.gate import http_basic
from app.gateway.raw import RawRequest
from app.notify.delivery import DeliveryState
from app.notify.errors import DeliveryNotFound
from app.notify.messages import completion_message_id

URL_PREFIX = "/console"
CSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
STATUS_BY_KIND: tuple[tuple[type[DomainError], int], ...] = (
    (NotFound, 404),
    (Conflict, 409),
    (Unauthenticated, 401),
    (Throttled, 429),
    (Unavailable, 503),
)


def create_blueprint(services: ConsoleServices, csrf: CSRFProtect) -> Blueprint:
    bp = Blueprint(
        "console",
        __name__,
        url_prefix=URL_PREFIX,
        template_folder="templates",
        static_folder="static",
        static_url_path="/static",
    )
    snapshots = services.snapshots

    @bp.app_template_filter("when")
    def _when(value: datetime | None) -> str:
        return fmt_time(value)

    @bp.app_template_filter("when_ms")
    def _when_ms(value: int) -> str:
        return fmt_ms(value)

    @bp.app_template_filter("age")
    def _age(value: float | None) -> str:
        return fmt_duration(value)

    @bp.before_request
    def guard() -> BaseResponse | None:
        if request.method == "POST":
            csrf.protect()  # raises CSRFError (400) before any view runs
        if request.endpoint in ("console.login", "console.static"):
            return None
        current = _load_viewer(services)
        if current is None:
            session.clear()
            if request.accept_mimetypes.best == "application/json" or request.path.endswith(".json"):
                abort(401)
            return redirect(
                url_for("console.login", next=request.full_path.rstrip("?") if request.method == "GET" else None)
            )
        g.viewer = current
        return None

    @bp.after_request
    def harden(response: Response) -> Response:
        response.headers["Content-Security-Policy"] = CSP
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "same-origin"
        response.headers.setdefault("Cache-Control", "no-store")
        return response

    @bp.context_processor
    def _globals() -> dict[str, object]:
        return {"viewer": g.get("viewer")}

    # --- login ------------------------------------------------------------------------------

    @bp.route("/login", methods=["GET", "POST"])
    def login() -> BaseResponse | tuple[str, int] | str:
        if request.method == "GET":
            return render_template("console/login.html", error=None)
        key_id = request.form.get("access_key_id", "").strip()
        secret = request.form.get("access_key_secret", "")
        try:
            caller = services.gate.admit(_basic_request(key_id, secret), http_basic)
        except Unauthenticated:
            return render_template("console/login.html", error="That access key id and secret do not match."), 401
        except Throttled as exc:
            return render_template("console/login.html", error=f"Too many attempts: {exc.message}"), 429
        session.clear()  # a new session (and CSRF token) at every login: no session fixation
        session.permanent = True
        session["key_id"] = caller.access_key_id
        session["tenant"] = caller.tenant
        target = request.args.get("next") or ""
        local = target.startswith(URL_PREFIX + "/") and ".." not in target and "\\" not in target
        return redirect(target if local else url_for("console.pipelines"))  # never off-site

    @bp.post("/logout")
    def logout() -> BaseResponse:
        session.clear()
        return redirect(url_for("console.login"))

    @bp.get("/")
    def home() -> BaseResponse:
        return redirect(url_for("console.pipelines"))

    # --- pipelines --------------------------------------------------------------------------

    def rows() -> list:  # type: ignore[type-arg]
        now = datetime.now(tz=UTC)
        return [pipeline_row(p, services.queue_stats(p.id), now) for p in g.viewer.pipelines(snapshots)]

    @bp.get("/pipelines")
    def pipelines() -> str:
        return render_template("console/pipelines.html", rows=rows())

    @bp.get("/pipelines.json")
    def pipelines_json() -> Response:
        return jsonify({"pipelines": [r.as_json() for r in rows()]})

    @bp.post("/pipelines/<pipeline_id>/<any(pause, resume):action>")
    def set_pipeline_state(pipeline_id: str, action: str) -> BaseResponse:
        viewer: Viewer = g.viewer
        state = PipelineState.PAUSED if action == "pause" else PipelineState.ACTIVE
        try:
            if viewer.operator:
                viewer.pipeline(snapshots, pipeline_id)
                snapshots.set_pipeline_state_as_operator(pipeline_id, state)
            else:
                snapshots.update_pipeline(viewer.tenant, pipeline_id, PipelineChanges(state=state))
            flash(f"Pipeline {pipeline_id} is {state.value}.", "ok")
        except DomainError as exc:
            flash(exc.message, "error")
        return redirect(url_for("console.pipelines"))

    # --- jobs -------------------------------------------------------------------------------

    @bp.get("/jobs")
    def jobs() -> str:
        query = parse_filters(request.args.to_dict())
        page = g.viewer.jobs(snapshots, query)
        nxt = request.args.to_dict() | {"page": page.next_page_token} if page.next_page_token else None
        return render_template(
            "console/jobs.html",
            page=page,
            filters=request.args,
            states=[s.value for s in JobState],
            pipelines=g.viewer.pipelines(snapshots),
            next_args=nxt,
        )

    @bp.get("/jobs/<job_id>")
    def job(job_id: str) -> str:
        found = g.viewer.job(snapshots, job_id)
        views = []
        for d in services.deliveries.for_message(completion_message_id(found.id)):
            if d.account == found.tenant:
                views.append(DeliveryView(d, services.deliveries.log(d.id)))
        return render_template(
            "console/job.html",
            job=found,
            images=gallery(found),
            deliveries=views,
            can_cancel=not found.is_terminal,
            can_retry=found.state in (JobState.FAILED, JobState.CANCELED),
        )

    @bp.get("/jobs/<job_id>/status.json")
    def job_status(job_id: str) -> Response:
        found = g.viewer.job(snapshots, job_id)
        return jsonify(
            {
                "id": found.id,
                "state": found.state.value,
                "terminal": found.is_terminal,
                "progress_done": found.progress_done,
                "progress_total": found.progress_total,
            }
        )

    @bp.post("/jobs/<job_id>/cancel")
    def cancel(job_id: str) -> BaseResponse:
        found = g.viewer.job(snapshots, job_id)
        try:
            snapshots.cancel(found.tenant, found.id)
            flash("Cancel requested.", "ok")
        except DomainError as exc:
            flash(exc.message, "error")
        return redirect(url_for("console.job", job_id=job_id))

    @bp.post("/jobs/<job_id>/retry")
    def retry(job_id: str) -> BaseResponse:
        found = g.viewer.job(snapshots, job_id)
        try:
            again = snapshots.retry(found.tenant, found.id)
        except DomainError as exc:
            flash(exc.message, "error")
            return redirect(url_for("console.job", job_id=job_id))
        flash(f"Retrying as job {again.id}.", "ok")
        return redirect(url_for("console.job", job_id=again.id))

    @bp.post("/jobs/<job_id>/deliveries/<delivery_id>/redeliver")
    def redeliver(job_id: str, delivery_id: str) -> BaseResponse:
        found = g.viewer.job(snapshots, job_id)
        try:
            delivery = services.deliveries.get(delivery_id)
        except DeliveryNotFound:
            abort(404)
        if delivery.message_id != completion_message_id(found.id) or delivery.account != found.tenant:
            abort(404)  # not this job's: as if it did not exist
        if delivery.state == DeliveryState.PENDING:
            flash("That delivery is still being retried; it can be redelivered once it ends.", "error")
        else:
            services.deliveries.redeliver(delivery_id)
            flash(f"Delivery {delivery_id} starts over.", "ok")
        return redirect(url_for("console.job", job_id=job_id) + "#notifications")

    @bp.get("/jobs/<job_id>/files/<path:key>")
    def job_file(job_id: str, key: str) -> Response:
        found = g.viewer.job(snapshots, job_id)
        bucket = bucket_for(found, key)
        if bucket is None:
            abort(404)
        try:
            data = services.objects.get(bucket, key)
        except (JobFailure, ValueError):
            abort(404)
        response = Response(data, content_type=content_type(key))
        response.headers["Cache-Control"] = "private, max-age=300"
        return response

    return bp


def _basic_request(key_id: str, secret: str) -> RawRequest:
    """The login form as an HTTP Basic request, so the gate checks it exactly as it checks the API's."""
    token = base64.b64encode(f"{key_id}:{secret}".encode()).decode()
    raw = RawRequest.from_flask(request)
    return replace(raw, headers=(("Authorization", f"Basic {token}"),), body=b"")


def _load_viewer(services: ConsoleServices) -> Viewer | None:
    key_id, tenant = session.get("key_id"), session.get("tenant")
    if not key_id or not tenant:
        return None
    record = services.gate.keys(key_id)
    if record is None or record.tenant != tenant:
        return None  # the key was deleted (or re-created for someone else) since the login
    return Viewer(key_id=key_id, tenant=tenant, operator=services.is_operator(key_id))


def render_error(exc: Exception) -> Response:
    """Errors on console pages are pages (the shell asks; see ``install_console``)."""
    if isinstance(exc, CSRFError):
        status, title, message = (
            400,
            "Form expired",
            "The form was stale or not from this console. Reload and try again.",
        )
    elif isinstance(exc, HTTPException):
        status, title, message = exc.code or 500, exc.name, exc.description or ""
    elif isinstance(exc, DomainError):
        status = next((code for kind, code in STATUS_BY_KIND if isinstance(exc, kind)), 400)
        title, message = ("Not found" if status == 404 else exc.code), exc.message
    else:
        status, title, message = 500, "Internal error", "Something went wrong; it has been logged."
    if request.path.endswith(".json"):
        response = jsonify({"code": title, "message": message})
    else:
        response = Response(
            render_template("console/error.html", status=status, title=title, message=message, viewer=g.get("viewer")),
            content_type="text/html; charset=utf-8",
        )
    response.status_code = status
    response.headers["Content-Security-Policy"] = CSP
    return response
