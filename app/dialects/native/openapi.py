"""The native API's OpenAPI 3.1 document, generated from the request and response models plus the
route table below (served at ``GET /openapi.json`` with a docs page by ``docs.py``).

The table is the one place that says, per operation, its path, parameters, body model and the
statuses it answers; ``tests/integration/test_openapi.py`` holds it to the blueprint's rules, so
an endpoint added to ``routes.py`` without a row here (or a row without an endpoint) fails. To
add one: its request and response models (``schema.py``, ``responses.py``) and a row here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache
from importlib.metadata import PackageNotFoundError, version
from typing import Any, Literal, cast

from pydantic import BaseModel, TypeAdapter
from pydantic.json_schema import GenerateJsonSchema, JsonSchemaMode, models_json_schema

from app.core.ports import MAX_PAGE_SIZE
from app.core.service import MAX_WAIT_S
from app.core.states import JobState
from app.dialects.native import responses as out
from app.dialects.native import schema as body
from app.dialects.native.routes import URL_PREFIX

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
        "post",
        "/jobs:batch",
        "submitJobs",
        "Submit up to 100 snapshot jobs at once",
        "jobs",
        {200: out.BatchResult},
        (413,),
        body=body.JobBatch,
        description="Each job is checked and stored on its own, as ``POST /api/v1/jobs`` would (grants, "
        "pipeline, input, ``client_token``), in one step for all that are accepted; ``results`` holds, per "
        "job and in order, the status that endpoint would have answered with the job or the error. The "
        'batch as a whole is a 400 only when it is not ``{"jobs": [...]}`` with 1 to 100 items. '
        "Idempotency is per job (``client_token``); there is no ``wait``.",
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
