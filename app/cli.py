"""``openmps`` command line (click, with rich for tables and progress).

User commands talk to the API through ``openmps.client.Client``; where is found from
``--url/--key/--secret``, else ``OPENMPS_URL`` / ``OPENMPS_ACCESS_KEY`` / ``OPENMPS_SECRET``,
else the running ``make up`` stack's ``DATA_DIR/stack.json``:

openmps jobs submit clip.mp4 --mode average --count 8 --wait   # uploads the file, shows progress, prints URLs
openmps jobs submit media/in/video.mp4 --mode single --time-ms 1500
openmps jobs list [--state failed] | show ID | cancel ID | retry ID [--wait] | delete ID [--outputs]
openmps pipelines list | show ID | create NAME | pause ID | resume ID | delete ID

Operator commands act on the store itself (``OPENMPS_REDIS_URL`` and friends, else the running
stack's):

openmps keys create --tenant acme                      # prints a new id and secret
openmps keys create --tenant acme --id AK --secret SK  # a given pair, e.g. for a vendor SDK
openmps keys create --tenant ops --operator            # a key whose console view spans every tenant
openmps keys list | openmps keys delete AK
openmps pipelines pause default --operator             # every tenant's pipelines, the shared default
openmps buckets grant acme media/in/ --read            # TENANT BUCKET[/PREFIX]; '*' = every bucket
openmps buckets list [--tenant acme] | revoke acme media [--read] [--write]
openmps secrets generate-key                           # a new OPENMPS_SECRET_KEY
openmps secrets rotate                                 # re-seal every stored secret under the first key
openmps store reindex                                  # rebuild the job indexes (after an upgrade)

``--json`` on every command prints JSON instead of text. Errors are one line on stderr with a
non-zero exit code: 1 for an answer the API or store refused, 2 for a usage or settings problem,
3 when the API or the store cannot be reached.
"""

from __future__ import annotations

import json
import sys
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import click
import redis
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from app import stackfile
from app.core.errors import DomainError, PipelineNotFound
from app.core.grants import Grant
from app.core.pipelines import PipelineState
from app.settings import ClientEnv, Settings
from app.storage.secretbox import generate_key
from openmps.client import ApiError, Client, ClientError, ConnectionFailed, Job, WaitTimedOut, is_url

F = TypeVar("F", bound=Callable[..., Any])

EXIT_REFUSED, EXIT_USAGE, EXIT_UNREACHABLE = 1, 2, 3
FORMAT_EXT = {"jpeg": "jpg", "png": "png", "webp": "webp"}


class Failure(click.ClickException):
    """A one-line error on stderr, no traceback, with its own exit code."""

    def __init__(self, message: str, exit_code: int = EXIT_REFUSED) -> None:
        super().__init__(message)
        self.exit_code = exit_code

    def show(self, file: Any = None) -> None:
        click.echo(f"openmps: {self.message}", err=True)


@dataclass
class Context:
    env: ClientEnv
    url: str | None
    key: str | None
    secret: str | None
    as_json: bool = False

    def client(self) -> Client:
        url, key, secret = self.url or self.env.url, self.key or self.env.access_key, self.secret or self.env.secret
        if not (url and key and secret):
            stack = stackfile.read(self.env.data_dir)
            if stack is not None:
                url, key, secret = url or stack.url, key or stack.access_key_id, secret or stack.secret
        if not (url and key and secret):
            raise Failure(
                "no API to talk to: pass --url/--key/--secret, set OPENMPS_URL, OPENMPS_ACCESS_KEY and "
                f"OPENMPS_SECRET, or start `make up` (no running stack in {self.env.data_dir})",
                EXIT_USAGE,
            )
        return Client(url, key, secret)

    def has_api(self) -> bool:
        if self.url or self.env.url:
            return True
        return stackfile.read(self.env.data_dir) is not None

    def services(self) -> Any:
        from app.wiring import build_services, ensure_default_pipeline  # noqa: PLC0415 - store commands only

        try:
            settings = server_settings(self.env)
            services = build_services(settings)
        except ValueError as exc:  # SettingsError, or a missing/invalid OPENMPS_SECRET_KEY
            raise Failure(str(exc), EXIT_USAGE) from None
        try:
            ensure_default_pipeline(services)
        except redis.RedisError as exc:
            raise Failure(f"the store at {settings.redis_url} is unreachable ({exc})", EXIT_UNREACHABLE) from None
        return services


def server_settings(env: ClientEnv) -> Settings:
    """The operator commands act on the store itself: ``OPENMPS_REDIS_URL`` (and friends) when set,
    else the running ``make up`` stack's (its ``stack.json``), else the defaults."""
    server_env = dict(env.server_env or {})
    stack = None if server_env.get("OPENMPS_REDIS_URL") else stackfile.read(env.data_dir)
    if stack is not None:
        server_env = {**stack.server_env(), **{k: v for k, v in server_env.items() if v}}
        server_env["OPENMPS_REDIS_URL"] = stack.redis_url
    return Settings.from_env(server_env)


def json_option(func: F) -> F:
    """``--json`` on a command (also accepted once before the command, on ``openmps`` itself)."""

    def remember(ctx: click.Context, _param: click.Parameter, value: bool) -> bool:
        if value:
            ctx.find_object(Context).as_json = True  # type: ignore[union-attr]
        return value

    return click.option("--json", "as_json", is_flag=True, expose_value=False, callback=remember, help="print JSON")(
        func
    )


def out(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, default=str))


@contextmanager
def errors() -> Iterator[None]:
    """Turn what the client, the store or the core raise into one-line errors."""
    try:
        yield
    except ConnectionFailed as exc:
        raise Failure(f"{exc}; is it running?", EXIT_UNREACHABLE) from None
    except ApiError as exc:
        raise Failure(f"{exc.code}: {exc.message}", EXIT_REFUSED) from None
    except WaitTimedOut as exc:
        raise Failure(str(exc), EXIT_REFUSED) from None
    except ClientError as exc:
        raise Failure(str(exc), EXIT_REFUSED) from None
    except DomainError as exc:
        raise Failure(f"{exc.code}: {exc.message}", EXIT_USAGE) from None
    except redis.RedisError as exc:
        raise Failure(f"the store is unreachable ({exc})", EXIT_UNREACHABLE) from None


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="openmps", prog_name="openmps")
@click.option("--url", help="the API (default: OPENMPS_URL, else the running `make up` stack)")
@click.option("--key", help="access key id (default: OPENMPS_ACCESS_KEY, else the stack's local key)")
@click.option("--secret", help="its secret (default: OPENMPS_SECRET)")
@click.option("--json", "as_json", is_flag=True, help="print JSON (also accepted after any command)")
@click.pass_context
def cli(ctx: click.Context, url: str | None, key: str | None, secret: str | None, as_json: bool) -> None:
    """openmps: snapshot jobs (through the API) and operator commands (on the store)."""
    ctx.obj = Context(ClientEnv.from_env(), url, key, secret, as_json)


pass_ctx = click.make_pass_decorator(Context)


# --- jobs (API) ------------------------------------------------------------------------------


@cli.group()
def jobs() -> None:
    """Snapshot jobs: submit (a local file, an http(s) URL, or BUCKET/KEY), list, show, cancel."""


def _split_ref(text: str, what: str) -> tuple[str, str]:
    bucket, _, key = text.partition("/")
    if not bucket or not key:
        raise Failure(f"{what} must be BUCKET/KEY, got {text!r}", EXIT_USAGE)
    return bucket, key


def _snapshot(mode: str, opts: dict[str, Any]) -> dict[str, Any]:
    snap: dict[str, Any] = {"mode": mode}
    if mode == "single":
        snap["time_ms"] = opts["time_ms"] or 0
    elif mode == "points":
        if not opts["points"]:
            raise Failure("--mode points needs --points MS,MS,...", EXIT_USAGE)
        try:
            snap["points_ms"] = [float(p) for p in opts["points"].split(",") if p.strip()]
        except ValueError:
            raise Failure(f"--points must be numbers separated by commas, got {opts['points']!r}", EXIT_USAGE) from None
    else:
        snap["count"] = opts["count"]
        if opts["start_ms"] is not None:
            snap["start_ms"] = opts["start_ms"]
        if mode == "series":
            snap["interval_s"] = opts["interval_s"]
        elif opts["end_ms"] is not None:
            snap["end_ms"] = opts["end_ms"]
    for name in ("width", "height", "quality"):
        if opts[name] is not None:
            snap[name] = opts[name]
    snap["format"] = opts["fmt"]
    snap["frame_type"] = opts["frame_type"]
    return snap


@jobs.command("submit")
@click.argument("source")
@click.option(
    "--mode", type=click.Choice(["single", "series", "average", "points"]), default="average", show_default=True
)
@click.option("--time-ms", type=float, help="single: the time point")
@click.option("--start-ms", type=float, help="series/average: where to start")
@click.option("--end-ms", type=float, help="average: where to end (default: the end)")
@click.option("--interval-s", type=float, default=1.0, show_default=True, help="series: seconds between frames")
@click.option("--count", type=int, default=5, show_default=True, help="series/average: how many frames")
@click.option("--points", help="points: time points in ms, comma-separated")
@click.option("--width", type=int)
@click.option("--height", type=int)
@click.option("--format", "fmt", type=click.Choice(["jpeg", "png", "webp"]), default="jpeg", show_default=True)
@click.option("--quality", type=int)
@click.option("--frame-type", type=click.Choice(["exact", "keyframe"]), default="exact", show_default=True)
@click.option(
    "--output",
    help="BUCKET/KEY template of the images (default: INPUT_BUCKET/snapshots/{JobId}/{Count}.EXT; "
    "for a URL, the --upload-to bucket)",
)
@click.option("--upload-to", default="media/uploads/", show_default=True, help="BUCKET/PREFIX a local file goes to")
@click.option("--pipeline", "pipeline_id", default="default", show_default=True)
@click.option("--priority", type=int)
@click.option("--user-data")
@click.option("--wait", is_flag=True, help="wait for the job, with a progress bar, then print its outputs")
@click.option("--timeout", type=float, default=600.0, show_default=True, help="--wait gives up after this many seconds")
@json_option
@pass_ctx
def jobs_submit(ctx: Context, source: str, mode: str, wait: bool, timeout: float, **opts: Any) -> None:
    """Submit a snapshot job of SOURCE: a local video file (uploaded first), an http(s) URL the
    workers read (the server must allow URL inputs), or BUCKET/KEY."""
    snapshot = _snapshot(mode, opts)
    with ctx.client() as client, errors():
        path = Path(source)
        source_input: dict[str, str]
        if is_url(source):
            source_input = {"url": source}
            bucket = opts["upload_to"].partition("/")[0]  # where the images go without --output
        elif path.is_file():
            bucket, _, prefix = opts["upload_to"].partition("/")
            key = f"{prefix}{uuid.uuid4().hex[:8]}-{path.name}"
            if not ctx.as_json:
                click.echo(f"uploading {path} ({path.stat().st_size} bytes) to {bucket}/{key}", err=True)
            up = client.upload(path, bucket, key)
            source_input = {"bucket": up.bucket, "key": up.key}
            bucket = up.bucket
        else:
            bucket, key = _split_ref(source, "SOURCE (not a local file or an http(s) URL)")
            source_input = {"bucket": bucket, "key": key}
        out_bucket, out_key = (
            _split_ref(opts["output"], "--output")
            if opts["output"]
            else (bucket, "snapshots/{JobId}/{Count}." + FORMAT_EXT[opts["fmt"]])
        )
        body: dict[str, Any] = {
            "input": source_input,
            "output": {"bucket": out_bucket, "key": out_key},
            "snapshot": snapshot,
            "pipeline_id": opts["pipeline_id"],
        }
        if opts["priority"] is not None:
            body["priority"] = opts["priority"]
        if opts["user_data"] is not None:
            body["user_data"] = opts["user_data"]
        job = client.submit(body)
        if wait:
            job = _wait_with_progress(client, job, timeout, quiet=ctx.as_json)
    if ctx.as_json:
        out(job.raw)
    elif wait:
        _print_outcome(job)
    else:
        click.echo(f"{job.id}\t{job.state}")
    if wait and job.state != "succeeded":
        raise Failure(f"job {job.id} {job.state}: {job.error_code}: {job.error_message}", EXIT_REFUSED)


def _wait_with_progress(client: Client, job: Job, timeout: float, *, quiet: bool) -> Job:
    """A live bar of images done/total in a terminal; a line per change otherwise (logs, pipes)."""
    console = Console(stderr=True)
    if quiet:
        return client.wait(job.id, timeout_s=timeout, poll_s=0.25)
    if not console.is_terminal:

        def line(j: Job) -> None:
            click.echo(f"{j.id}  {j.state:<9}  images {j.done}/{j.total or '?'}", err=True)

        return client.wait(job.id, timeout_s=timeout, poll_s=0.25, on_progress=line)
    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("images"),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    ) as progress:
        task = progress.add_task(job.id[:12], total=job.total or None)

        def bar(j: Job) -> None:
            progress.update(task, completed=j.done, total=j.total or None, description=f"{j.id[:12]} {j.state}")

        return client.wait(job.id, timeout_s=timeout, poll_s=0.25, on_progress=bar)


def _print_outcome(job: Job) -> None:
    click.echo(f"{job.id}\t{job.state}\t{job.done}/{job.total} images")
    bucket = job.raw.get("spec", {}).get("output", {}).get("bucket", "")
    for image in job.images:
        click.echo(image.url or f"{bucket}/{image.key}")
    manifest = job.raw.get("manifest") or {}
    for sheet in manifest.get("sheets", []):
        click.echo(sheet.get("url") or sheet["key"])


@jobs.command("list")
@click.option("--state", type=click.Choice(["submitted", "running", "succeeded", "failed", "canceled"]))
@click.option("--pipeline", "pipeline_id")
@click.option("--limit", type=click.IntRange(1, 100), default=20, show_default=True)
@json_option
@pass_ctx
def jobs_list(ctx: Context, state: str | None, pipeline_id: str | None, limit: int) -> None:
    """Your jobs, newest first."""
    with ctx.client() as client, errors():
        page = client.list_jobs(state=state, pipeline_id=pipeline_id, limit=limit)
    if ctx.as_json:
        out({"jobs": [j.raw for j in page.jobs], "next_page_token": page.next_page_token})
        return
    table = Table("id", "state", "images", "pipeline", "created", box=None)
    for j in page.jobs:
        table.add_row(j.id, j.state, f"{j.done}/{j.total}", str(j.raw.get("pipeline_id")), str(j.raw.get("created_at")))
    Console(width=200).print(table)


@jobs.command("show")
@click.argument("job_id")
@json_option
@pass_ctx
def jobs_show(ctx: Context, job_id: str) -> None:
    """One job: state, progress, error, and the URL of every image."""
    with ctx.client() as client, errors():
        job = client.get(job_id)
    if ctx.as_json:
        out(job.raw)
        return
    _print_outcome(job)
    if job.error_code:
        click.echo(f"error\t{job.error_code}: {job.error_message}")


@jobs.command("cancel")
@click.argument("job_id")
@json_option
@pass_ctx
def jobs_cancel(ctx: Context, job_id: str) -> None:
    """Cancel a queued or running job."""
    with ctx.client() as client, errors():
        job = client.cancel(job_id)
    if ctx.as_json:
        out(job.raw)
    else:
        click.echo(f"{job.id}\t{job.state}")


@jobs.command("retry")
@click.argument("job_id")
@click.option("--wait", is_flag=True, help="wait for the new job, with a progress bar, then print its outputs")
@click.option("--timeout", type=float, default=600.0, show_default=True, help="--wait gives up after this many seconds")
@json_option
@pass_ctx
def jobs_retry(ctx: Context, job_id: str, wait: bool, timeout: float) -> None:
    """Run a failed or canceled job again, as a new job linked to it (retry_of)."""
    with ctx.client() as client, errors():
        job = client.retry(job_id)
        if wait:
            job = _wait_with_progress(client, job, timeout, quiet=ctx.as_json)
    if ctx.as_json:
        out(job.raw)
    elif wait:
        _print_outcome(job)
    else:
        click.echo(f"{job.id}\t{job.state}\tretry of {job_id}")
    if wait and job.state != "succeeded":
        raise Failure(f"job {job.id} {job.state}: {job.error_code}: {job.error_message}", EXIT_REFUSED)


@jobs.command("delete")
@click.argument("job_id")
@click.option("--outputs", is_flag=True, help="also delete every object the job wrote")
@json_option
@pass_ctx
def jobs_delete(ctx: Context, job_id: str, outputs: bool) -> None:
    """Forget a finished job (cancel a queued or running one first)."""
    with ctx.client() as client, errors():
        client.delete_job(job_id, outputs=outputs)
    if ctx.as_json:
        out({"id": job_id, "deleted": True, "outputs_deleted": outputs})
    else:
        click.echo(f"{job_id}\tdeleted")


# --- pipelines (API; --operator: the store) --------------------------------------------------


@cli.group()
def pipelines() -> None:
    """Pipelines: yours through the API; with --operator (or with only OPENMPS_REDIS_URL set),
    list/pause/resume act on the store itself: every tenant's, and the shared default pipeline."""


def _operator(ctx: Context, operator: bool) -> bool:
    return operator or not ctx.has_api()


def _pipeline_row(p: dict[str, Any]) -> str:
    depth = p.get("depth") or {}
    extra = f"\tqueued={depth['queued']}\trunning={depth['running']}" if depth else ""
    return f"{p['id']}\t{p['name']}\t{p['state']}\t{p['resource_class']}{extra}"


def _operator_rows(services: Any) -> list[dict[str, Any]]:
    rows = []
    for p in services.pipelines.list_all():
        depth = services.scheduler.depth(p.id)
        rows.append(
            {
                "id": p.id,
                "name": p.name,
                "state": p.state.value,
                "resource_class": p.resource_class.value,
                "tenant": p.tenant,
                "depth": {"queued": depth.queued, "running": depth.running},
            }
        )
    return rows


operator_flag = click.option("--operator", is_flag=True, help="act on the store directly (operator)")


@pipelines.command("list")
@operator_flag
@json_option
@pass_ctx
def pipelines_list(ctx: Context, operator: bool) -> None:
    """Pipelines with their queue depth."""
    with errors():
        if _operator(ctx, operator):
            rows = _operator_rows(ctx.services())
        else:
            with ctx.client() as client:
                listed = client.list_pipelines(page_size=100)["pipelines"]
                rows = [client.get_pipeline(p["id"]) for p in listed]  # each with its queue depth
    if ctx.as_json:
        out(rows)
        return
    for row in rows:
        click.echo(_pipeline_row(row))


@pipelines.command("show")
@click.argument("pipeline_id")
@json_option
@pass_ctx
def pipelines_show(ctx: Context, pipeline_id: str) -> None:
    with ctx.client() as client, errors():
        p = client.get_pipeline(pipeline_id)
    out(p) if ctx.as_json else click.echo(_pipeline_row(p))


@pipelines.command("create")
@click.argument("name")
@click.option("--resource-class", type=click.Choice(["cpu", "gpu"]), default="cpu", show_default=True)
@click.option("--max-concurrency", type=int)
@click.option("--notify-queue", help="MNS-style queue that receives completion messages")
@click.option("--notify-topic", help="MNS-style topic that receives completion messages")
@click.option("--paused", is_flag=True)
@json_option
@pass_ctx
def pipelines_create(
    ctx: Context,
    name: str,
    resource_class: str,
    max_concurrency: int | None,
    notify_queue: str | None,
    notify_topic: str | None,
    paused: bool,
) -> None:
    fields: dict[str, Any] = {"resource_class": resource_class, "state": "paused" if paused else "active"}
    if max_concurrency is not None:
        fields["max_concurrency"] = max_concurrency
    if notify_queue or notify_topic:
        fields["notify"] = {"queue": notify_queue} if notify_queue else {"topic": notify_topic}
    with ctx.client() as client, errors():
        p = client.create_pipeline(name, **fields)
    out(p) if ctx.as_json else click.echo(_pipeline_row(p))


def _set_state(ctx: Context, pipeline_id: str, state: PipelineState, operator: bool) -> None:
    with errors():
        if _operator(ctx, operator):
            services = ctx.services()
            try:
                pipeline = services.snapshots.set_pipeline_state_as_operator(pipeline_id, state)
            except PipelineNotFound:
                raise Failure(f"no pipeline {pipeline_id}", EXIT_REFUSED) from None
            row = {"id": pipeline.id, "state": pipeline.state.value}
        else:
            with ctx.client() as client:
                row = client.update_pipeline(pipeline_id, state=state.value)
    out(row) if ctx.as_json else click.echo(f"{row['id']}\t{row['state']}")


@pipelines.command("pause")
@click.argument("pipeline_id")
@operator_flag
@json_option
@pass_ctx
def pipelines_pause(ctx: Context, pipeline_id: str, operator: bool) -> None:
    """Hold the pipeline's queued jobs (running ones finish)."""
    _set_state(ctx, pipeline_id, PipelineState.PAUSED, operator)


@pipelines.command("resume")
@click.argument("pipeline_id")
@operator_flag
@json_option
@pass_ctx
def pipelines_resume(ctx: Context, pipeline_id: str, operator: bool) -> None:
    """Dispatch what queued while it was paused."""
    _set_state(ctx, pipeline_id, PipelineState.ACTIVE, operator)


@pipelines.command("delete")
@click.argument("pipeline_id")
@json_option
@pass_ctx
def pipelines_delete(ctx: Context, pipeline_id: str) -> None:
    """Delete an empty pipeline of yours."""
    with ctx.client() as client, errors():
        client.delete_pipeline(pipeline_id)
    out({"id": pipeline_id, "deleted": True}) if ctx.as_json else click.echo(f"{pipeline_id}\tdeleted")


# --- keys, buckets, secrets (operator: the store) -----------------------------------------------


@cli.group()
def keys() -> None:
    """Access keys (operator)."""


@keys.command("create")
@click.option("--tenant", required=True)
@click.option("--id", "key_id", help="use this access key id (default: generated)")
@click.option("--secret", help="use this secret (default: generated)")
@click.option("--operator", is_flag=True, help="operator rights: the console shows and acts on every tenant's jobs")
@json_option
@pass_ctx
def keys_create(ctx: Context, tenant: str, key_id: str | None, secret: str | None, operator: bool) -> None:
    """Create an access key for a tenant (printed as JSON, always)."""
    with errors():
        services = ctx.services()
        key = services.credentials.create(tenant, key_id=key_id, secret=secret)
        if operator:
            services.operators.grant(key.id)
    click.echo(
        json.dumps(
            {"access_key_id": key.id, "access_key_secret": key.secret, "tenant": key.tenant, "operator": operator}
        )
    )


@keys.command("list")
@json_option
@pass_ctx
def keys_list(ctx: Context) -> None:
    with errors():
        services = ctx.services()
        rows = []
        for key_id in services.credentials.list_ids():
            found = services.credentials.find(key_id)
            operator = services.operators.is_operator(key_id)
            rows.append({"access_key_id": key_id, "tenant": found.tenant if found else None, "operator": operator})
    if ctx.as_json:
        out(rows)
        return
    for row in rows:
        role = "\toperator" if row["operator"] else ""
        click.echo(f"{row['access_key_id']}\t{row['tenant'] or '?'}{role}")


@keys.command("delete")
@click.argument("key_id")
@json_option
@pass_ctx
def keys_delete(ctx: Context, key_id: str) -> None:
    with errors():
        services = ctx.services()
        services.operators.revoke(key_id)  # a later key with this id starts without the right
        deleted = services.credentials.delete(key_id)
    if not deleted:
        raise Failure(f"no access key {key_id}", EXIT_REFUSED)
    if ctx.as_json:
        out({"access_key_id": key_id, "deleted": True})


def _access(grant: Grant | None) -> str:
    if grant is None:
        return "-"
    return ",".join(a for a, on in (("read", grant.read), ("write", grant.write)) if on) or "-"


@cli.group()
def buckets() -> None:
    """Which tenant may read/write which buckets (operator)."""


def _grant_row(tenant: str, scope: str, grant: Grant | None) -> dict[str, Any]:
    return {"tenant": tenant, "scope": scope, "read": bool(grant and grant.read), "write": bool(grant and grant.write)}


@buckets.command("list")
@click.option("--tenant", help="only this tenant's grants")
@json_option
@pass_ctx
def buckets_list(ctx: Context, tenant: str | None) -> None:
    """Grants (of one tenant, or all)."""
    with errors():
        grants = ctx.services().grants
        rows = [(tenant, g) for g in grants.grants_for(tenant)] if tenant else grants.list_all()
    if ctx.as_json:
        out([_grant_row(t, g.scope, g) for t, g in rows])
        return
    for t, grant in rows:
        click.echo(f"{t}\t{grant.scope}\t{_access(grant)}")


@buckets.command("grant")
@click.argument("tenant")
@click.argument("scope", metavar="BUCKET[/PREFIX]")
@click.option("--read", is_flag=True)
@click.option("--write", is_flag=True)
@json_option
@pass_ctx
def buckets_grant(ctx: Context, tenant: str, scope: str, read: bool, write: bool) -> None:
    """Give read and/or write on BUCKET[/PREFIX] ('*': every bucket)."""
    with errors():
        grant = ctx.services().grants.grant(tenant, scope, read=read, write=write)
    if ctx.as_json:
        out(_grant_row(tenant, grant.scope, grant))
    else:
        click.echo(f"{tenant}\t{grant.scope}\t{_access(grant)}")


@buckets.command("revoke")
@click.argument("tenant")
@click.argument("scope", metavar="BUCKET[/PREFIX]")
@click.option("--read", is_flag=True)
@click.option("--write", is_flag=True)
@json_option
@pass_ctx
def buckets_revoke(ctx: Context, tenant: str, scope: str, read: bool, write: bool) -> None:
    """Take away read and/or write (both when neither flag is given)."""
    both = not (read or write)
    with errors():
        left = ctx.services().grants.revoke(tenant, scope, read=read or both, write=write or both)
    if ctx.as_json:
        out(_grant_row(tenant, scope, left))
    else:
        click.echo(f"{tenant}\t{scope}\t{_access(left)}")


@cli.group()
def secrets() -> None:
    """The key that seals stored secrets (operator)."""


@secrets.command("generate-key")
@json_option
@pass_ctx
def secrets_generate_key(ctx: Context) -> None:
    """Print a new OPENMPS_SECRET_KEY (needs no store)."""
    key = generate_key()
    out({"secret_key": key}) if ctx.as_json else click.echo(key)


@secrets.command("rotate")
@json_option
@pass_ctx
def secrets_rotate(ctx: Context) -> None:
    """Re-seal every stored secret under the first OPENMPS_SECRET_KEY (the others must still open
    what they sealed), so the old keys can then be removed."""
    from app.notify.delivery import DeliveryStore  # noqa: PLC0415 - this command only
    from app.notify.signing import reseal_stored  # noqa: PLC0415
    from app.notify.topics import reseal_subscriptions  # noqa: PLC0415

    with errors():
        services = ctx.services()
        reseal = services.sealer.reseal
        counts = {
            "access keys": services.credentials.reseal(reseal),
            "webhook secrets and the push signing key": reseal_stored(services.redis, reseal),
            "subscription webhook secrets": reseal_subscriptions(services.redis, reseal),
            "pending deliveries": DeliveryStore(services.redis).reseal(reseal),
        }
    if ctx.as_json:
        out(counts)
        return
    for what, count in counts.items():
        click.echo(f"{count}\t{what}")


@cli.group()
def store() -> None:
    """Maintenance of the job store itself (operator)."""


@store.command("reindex")
@json_option
@pass_ctx
def store_reindex(ctx: Context) -> None:
    """Rebuild the per-pipeline-and-state job indexes: after upgrading a store that holds jobs from
    an older version (listing by pipeline and state reads them whole until then), and once more
    when the last older process is gone. Safe while the service runs; running it again is harmless."""
    with errors():
        report = ctx.services().jobs.reindex()
    if ctx.as_json:
        out({"pipelines": report.pipelines, "entries": report.entries, "changed": report.changed})
    else:
        click.echo(f"{report.pipelines} pipelines, {report.entries} index entries read, {report.changed} changed")


def main(argv: list[str] | None = None) -> int:
    """The console script: the exit code instead of SystemExit, so tests can call it directly."""
    try:
        cli.main(args=argv, prog_name="openmps", standalone_mode=False)
    except click.exceptions.Exit as exc:
        return int(exc.exit_code)
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except click.exceptions.Abort:
        click.echo("openmps: aborted", err=True)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
