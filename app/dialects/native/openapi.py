"""The native API's OpenAPI 3.1 document, generated from the request and response models plus the
route table below, served at ``GET /openapi.json`` with an offline docs page at ``GET /docs``.

The table is the one place that says, per operation, its path, parameters, body model and the
statuses it answers; ``tests/integration/test_openapi.py`` holds it to the blueprint's rules, so
an endpoint added to ``routes.py`` without a row here (or a row without an endpoint) fails. The
docs page is Swagger UI from the installed ``openapi-ui-bundles`` package, served by this
server: nothing is fetched from elsewhere, and the page's Content-Security-Policy says so.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cache
from importlib.metadata import PackageNotFoundError, version
from typing import Any, Literal, cast

import openapi_ui_bundles
from flask import Blueprint, Response, jsonify, send_from_directory, url_for
from flask.blueprints import BlueprintSetupState
from pydantic import BaseModel, TypeAdapter
from pydantic.json_schema import GenerateJsonSchema, JsonSchemaMode, models_json_schema
from werkzeug.exceptions import NotFound

from app.core.ports import MAX_PAGE_SIZE
from app.core.service import MAX_WAIT_S
from app.core.states import JobState
from app.dialects.native import responses as out
from app.dialects.native import schema as body
from app.dialects.native.routes import URL_PREFIX

OPENAPI_PATH = "/openapi.json"
DOCS_PATH = "/docs"

# --- the route table ------------------------------------------------------------------------


@dataclass(frozen=True)
class Param:
    name: str
    where: Literal["path", "query", "header"]
    schema: dict[str, Any]
    description: str = ""
    required: bool = False  # path parameters are always required
    example: str | None = None
    empty_is_absent: bool = False  # ``?state=`` reads as no ``state`` at all (allowEmptyValue)


@dataclass(frozen=True)
class Operation:
    """One route. ``path`` is relative to ``/api/v1`` in OpenAPI's ``{name}`` syntax; ``ok`` maps
    each success status to its body model (None: no body); ``errors`` lists the error statuses
    it can answer beyond ``COMMON_ERRORS``."""

    method: Literal["get", "post", "put", "patch", "delete"]
    path: str
    operation_id: str
    summary: str
    tag: str
    ok: dict[int, type[BaseModel] | None]
    errors: tuple[int, ...] = ()
    body: type[BaseModel] | None = None
    params: tuple[Param, ...] = ()
    description: str = ""
    raw_body: bool = False  # the body is the bytes of a file, not JSON


JOB_ID = Param("job_id", "path", {"type": "string"}, "The job's id (``id`` in its body).")
PIPELINE_ID = Param(
    "pipeline_id", "path", {"type": "string"}, "The pipeline's id; ``default`` is shared.", example="default"
)

BUCKET = TypeAdapter(body.Bucket).json_schema()  # as in the bodies: S3's naming rules

# Every operation can answer these: a malformed request (a JSON body nested too deep, even on a
# GET), missing or wrong credentials, an oversized request target or headers, the access key's
# token bucket empty, the job store or object store unreachable.
COMMON_ERRORS = (400, 401, 414, 429, 431, 503)

ROUTES: tuple[Operation, ...] = (
    Operation(
        "post",
        "/jobs",
        "submitJob",
        "Submit a snapshot job",
        "jobs",
        {200: out.Job, 202: out.Job},
        (403, 404, 409, 413),
        body=body.JobSubmission,
        params=(
            Param(
                "wait",
                "query",
                {"type": "number", "minimum": 0, "maximum": MAX_WAIT_S, "default": 0},
                "Seconds to wait for the job to finish: 200 when it did, 202 when it is still going.",
                empty_is_absent=True,
            ),
            Param(
                "Idempotency-Key",
                "header",
                {"type": "string", "maxLength": 64},
                "Same as ``client_token`` in the body (which wins).",
            ),
        ),
        description="Every problem with the body is listed at once in the 400's ``errors``. A grant on "
        "the buckets comes first (403), then existence: an input that is not there is a 400 ``InputNotFound``, "
        "an unknown ``pipeline_id`` a 404, a reused ``client_token`` with another body a 409.",
    ),
    Operation(
        "get",
        "/jobs",
        "listJobs",
        "List jobs, newest first",
        "jobs",
        {200: out.JobPage},
        params=(
            Param("state", "query", {"type": "string", "enum": [s.value for s in JobState]}, empty_is_absent=True),
            Param("pipeline_id", "query", {"type": "string"}, empty_is_absent=True),
            Param(
                "created_after",
                "query",
                {"type": "string", "format": "date-time"},
                "With a zone.",
                empty_is_absent=True,
            ),
            Param("created_before", "query", {"type": "string", "format": "date-time"}, empty_is_absent=True),
            Param(
                "page_token",
                "query",
                {"type": "string"},
                "The previous page's ``next_page_token``.",
                empty_is_absent=True,
            ),
            Param("limit", "query", {"type": "integer", "minimum": 1, "maximum": MAX_PAGE_SIZE, "default": 20}),
        ),
    ),
    Operation("get", "/jobs/{job_id}", "getJob", "Get a job", "jobs", {200: out.Job}, (404,), params=(JOB_ID,)),
    Operation(
        "delete",
        "/jobs/{job_id}",
        "deleteJob",
        "Forget a finished job",
        "jobs",
        {204: None},
        (403, 404, 409),
        params=(
            JOB_ID,
            Param(
                "outputs",
                "query",
                {"type": "boolean", "default": False},
                "Also delete every object the job wrote (needs write on each).",
            ),
        ),
        description="A queued or running job is refused (409): cancel it first.",
    ),
    Operation(
        "post",
        "/jobs/{job_id}/cancel",
        "cancelJob",
        "Cancel a job",
        "jobs",
        {200: out.Job, 202: out.Job},
        (404, 409),
        params=(JOB_ID,),
        description="200 once the job is canceled (or already was); 202 while a running job is told to stop.",
    ),
    Operation(
        "post",
        "/jobs/{job_id}/retry",
        "retryJob",
        "Run a failed or canceled job again",
        "jobs",
        {202: out.Job},
        (404, 409),
        params=(JOB_ID,),
        description="202 with a new job that names the old one in ``retry_of`` (the old one stays as it "
        "ended); 409 for a job in any other state.",
    ),
    Operation(
        "put",
        "/objects/{bucket}/{key}",
        "uploadObject",
        "Upload an object (a local video to snapshot)",
        "objects",
        {201: out.UploadedObject},
        (403, 404, 413),  # 404: a key that starts with "/" or holds "//" matches no route
        params=(
            Param("bucket", "path", BUCKET, example="media"),
            Param("key", "path", {"type": "string", "minLength": 1}, "May contain ``/``.", example="in/upload.mp4"),
        ),
        raw_body=True,
        description="The body is streamed to the object store as it comes, under the request's "
        "Content-Type; Content-Length is required. The tenant needs write on the bucket.",
    ),
    Operation(
        "get",
        "/webhook-secret",
        "getWebhookSecret",
        "The secret that signs webhook pushes",
        "jobs",
        {200: out.WebhookSecret},
    ),
    Operation(
        "post",
        "/pipelines",
        "createPipeline",
        "Create a pipeline",
        "pipelines",
        {201: out.Pipeline},
        (409, 413),
        body=body.PipelineCreation,
    ),
    Operation(
        "get",
        "/pipelines",
        "listPipelines",
        "List pipelines (the shared default one too)",
        "pipelines",
        {200: out.PipelinePage},
        params=(
            Param("state", "query", {"type": "string", "enum": ["active", "paused"]}, empty_is_absent=True),
            Param("page", "query", {"type": "integer", "minimum": 1, "default": 1}),
            Param("page_size", "query", {"type": "integer", "minimum": 1, "maximum": MAX_PAGE_SIZE, "default": 50}),
        ),
    ),
    Operation(
        "get",
        "/pipelines/{pipeline_id}",
        "getPipeline",
        "Get a pipeline with its queue depth",
        "pipelines",
        {200: out.Pipeline},
        (404,),
        params=(PIPELINE_ID,),
    ),
    Operation(
        "patch",
        "/pipelines/{pipeline_id}",
        "updatePipeline",
        "Change a pipeline",
        "pipelines",
        {200: out.Pipeline},
        (404, 409, 413),
        body=body.PipelineUpdate,
        params=(PIPELINE_ID,),
    ),
    Operation(
        "delete",
        "/pipelines/{pipeline_id}",
        "deletePipeline",
        "Delete a pipeline",
        "pipelines",
        {204: None},
        (404, 409),
        params=(PIPELINE_ID,),
        description="Refused (409) while jobs are queued or running in it.",
    ),
)

# --- the document -----------------------------------------------------------------------------

ERRORS: dict[int, str] = {
    400: "InvalidParameter (every problem in ``errors``) or InputNotFound",
    401: "InvalidAccessKey: credentials missing or not valid",
    403: "AccessDenied: no grant on a bucket the request names",
    404: "NotFound, JobNotFound or PipelineNotFound (another tenant's does not exist for you)",
    409: "IdempotencyConflict, InvalidJobState, PipelineNotEmpty or AlreadyExists",
    413: "RequestTooLarge",
    414: "URITooLong",
    429: "Throttling: retry after the Retry-After header's seconds",
    431: "HeadersTooLarge",
    503: "ServiceUnavailable: a store did not answer; retry shortly",
}
SUCCESS = {200: "OK", 201: "Created", 202: "Accepted: not finished yet", 204: "Done; no body"}


class _Schemas(GenerateJsonSchema):
    """Pydantic's JSON Schema without a title on every field ("Start Ms"): the name says it."""

    def field_title_should_be_set(self, schema: Any) -> bool:
        return False


@dataclass
class _Builder:
    schemas: dict[str, Any] = field(default_factory=dict)

    def refs(self, models: list[tuple[type[BaseModel], JsonSchemaMode]]) -> dict[type[BaseModel], dict[str, Any]]:
        keys, top = models_json_schema(models, ref_template="#/components/schemas/{model}", schema_generator=_Schemas)
        self.schemas.update(top.get("$defs", {}))
        return {cast(type[BaseModel], model): ref for (model, _), ref in keys.items()}


def _operation(op: Operation, refs: dict[type[BaseModel], dict[str, Any]]) -> dict[str, Any]:
    doc: dict[str, Any] = {"operationId": op.operation_id, "summary": op.summary, "tags": [op.tag]}
    if op.description:
        doc["description"] = op.description
    if op.params:
        doc["parameters"] = [
            {
                "name": p.name,
                "in": p.where,
                "required": p.required or p.where == "path",
                "schema": p.schema,
                **({"description": p.description} if p.description else {}),
                **({"example": p.example} if p.example is not None else {}),
                **({"allowEmptyValue": True} if p.empty_is_absent else {}),
            }
            for p in op.params
        ]
    if op.body is not None:
        doc["requestBody"] = {"required": True, "content": {"application/json": {"schema": refs[op.body]}}}
    elif op.raw_body:  # any bytes, an empty file too (its Content-Length: 0 is still required)
        binary = {"schema": {"type": "string", "format": "binary"}}
        doc["requestBody"] = {"required": False, "content": {"application/octet-stream": binary}}
    responses: dict[str, Any] = {}
    for status, model in sorted(op.ok.items()):
        answer: dict[str, Any] = {"description": SUCCESS[status]}
        if model is not None:
            answer["content"] = {"application/json": {"schema": refs[model]}}
        responses[str(status)] = answer
    for status in sorted({*COMMON_ERRORS, *op.errors}):
        responses[str(status)] = {"$ref": f"#/components/responses/E{status}"}
    doc["responses"] = responses
    return doc


@cache
def document() -> dict[str, Any]:
    """The OpenAPI 3.1 document (built once per process)."""
    builder = _Builder()
    requests = [op.body for op in ROUTES if op.body is not None]
    answers: list[type[BaseModel]] = [m for op in ROUTES for m in op.ok.values() if m is not None]
    wanted: list[tuple[type[BaseModel], JsonSchemaMode]] = [(m, "validation") for m in dict.fromkeys(requests)]
    answers.append(out.ErrorBody)
    wanted += [(m, "serialization") for m in dict.fromkeys(answers)]
    refs = builder.refs(wanted)
    paths: dict[str, dict[str, Any]] = {}
    for op in ROUTES:
        paths.setdefault(URL_PREFIX + op.path, {})[op.method] = _operation(op, refs)
    error_ref = refs[out.ErrorBody]
    error_responses: dict[str, Any] = {}
    for status, text in ERRORS.items():
        answer: dict[str, Any] = {"description": text, "content": {"application/json": {"schema": error_ref}}}
        if status == 429:
            answer["headers"] = {"Retry-After": {"schema": {"type": "integer"}, "description": "Seconds."}}
        error_responses[f"E{status}"] = answer
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "openmps native API",
            "version": _version(),
            "description": "Still frames, series and sprite sheets from videos in object storage. "
            "Authenticate with HTTP Basic: an access key id and secret (``openmps keys create``).",
        },
        "servers": [{"url": "/"}],
        "security": [{"basic": []}],
        "tags": [{"name": "jobs"}, {"name": "objects"}, {"name": "pipelines"}],
        "paths": paths,
        "components": {
            "schemas": builder.schemas,
            "responses": error_responses,
            "securitySchemes": {"basic": {"type": "http", "scheme": "basic"}},
        },
    }


def _version() -> str:
    try:
        return version("openmps")
    except PackageNotFoundError:  # running from a checkout that was never installed
        return "0"


# --- serving it -------------------------------------------------------------------------------

SWAGGER_UI = openapi_ui_bundles.swagger_ui.static_path
ASSETS = {"swagger-ui.css", "swagger-ui-bundle.js", "favicon-32x32.png"}
# The page loads only this server's files: Swagger UI sets inline styles, nothing else inline.
CSP = "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; frame-ancestors 'none'"

PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>openmps API</title>
<link rel="stylesheet" href="{css}">
<link rel="icon" type="image/png" href="{icon}">
</head>
<body>
<div id="swagger-ui"></div>
<script src="{bundle}"></script>
<script src="{init}"></script>
</body>
</html>
"""
# validatorUrl null: Swagger UI would otherwise send the document to validator.swagger.io.
INIT = """window.ui = SwaggerUIBundle({{
  url: {spec}, dom_id: "#swagger-ui", validatorUrl: null, deepLinking: true,
  presets: [SwaggerUIBundle.presets.apis], layout: "BaseLayout"
}});
"""


def attach(bp: Blueprint) -> None:
    """Serve the document and the docs page at the site root from the native blueprint.

    A blueprint's ``url_prefix`` applies to every rule it registers, so these rules are added to
    the app itself when the blueprint is registered, under endpoints named after it
    (``native.openapi``): the shell (``app/web/__init__.py``) then counts them as the native
    dialect's, and renders their errors as native JSON.
    """
    bp.record(_register)


def _register(state: BlueprintSetupState) -> None:
    app = state.app
    name = state.name

    def openapi_json() -> Response:
        return jsonify(document())

    def docs() -> Response:
        page = PAGE.format(
            css=url_for(f"{name}.docs_asset", filename="swagger-ui.css"),
            icon=url_for(f"{name}.docs_asset", filename="favicon-32x32.png"),
            bundle=url_for(f"{name}.docs_asset", filename="swagger-ui-bundle.js"),
            init=url_for(f"{name}.docs_init"),
        )
        return Response(page, mimetype="text/html", headers={"Content-Security-Policy": CSP})

    def docs_init() -> Response:
        script = INIT.format(spec=json.dumps(url_for(f"{name}.openapi")))
        return Response(script, mimetype="text/javascript")

    def docs_asset(filename: str) -> Response:
        if filename not in ASSETS:
            raise NotFound()  # answered as native JSON, like any 404 of this blueprint's
        return send_from_directory(SWAGGER_UI, filename, max_age=86_400)

    app.add_url_rule(OPENAPI_PATH, f"{name}.openapi", openapi_json, methods=["GET"])
    app.add_url_rule(DOCS_PATH, f"{name}.docs", docs, methods=["GET"])
    app.add_url_rule(f"{DOCS_PATH}/init.js", f"{name}.docs_init", docs_init, methods=["GET"])
    app.add_url_rule(f"{DOCS_PATH}/assets/<filename>", f"{name}.docs_asset", docs_asset, methods=["GET"])
