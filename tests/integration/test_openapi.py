"""The native API's OpenAPI document: valid OpenAPI 3.1, true to the routes and to the answers
the server really gives, with an offline docs page, and a bounded schemathesis run against the
live app (real redis-server, real local storage) with no server error and every answer as the
document says."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from html.parser import HTMLParser
from typing import Any

import httpx
import pytest
import schemathesis
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import HealthCheck, settings
from jsonschema import Draft202012Validator
from openapi_spec_validator import validate
from openapi_spec_validator.validation import OpenAPIV31SpecValidator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from app.core.errors import FailureCode
from app.core.jobs import Manifest, NotificationResult, OutputImage, SnapshotJob, SpriteSheet
from app.core.specs import (
    ArchiveSpec,
    BlackFrameSpec,
    ObjectRef,
    OutputTarget,
    Series,
    SnapshotSpec,
    SpriteSpec,
)
from app.core.states import JobState
from app.dialects.native.openapi import ROUTES, document
from app.dialects.native.render import job_json
from app.storage.credentials import AccessKey
from app.web import create_app
from app.wiring import Services
from tests.integration.test_api import auth, body
from tests.servers import serve_wsgi

SAMPLE = ("media", "samples/sample.mp4")  # the document's example job reads it


@pytest.fixture
def flask_app(services: Services) -> Flask:
    services.objects.put(*SAMPLE, b"\x00" * 64, "video/mp4")
    services.objects.put("media", "in/video.mp4", b"\x00" * 64, "video/mp4")
    return create_app(services.settings, services)


@pytest.fixture
def client(flask_app: Flask) -> FlaskClient:
    return flask_app.test_client()


@pytest.fixture
def spec(client: FlaskClient) -> dict[str, Any]:
    resp = client.get("/openapi.json")
    assert resp.status_code == 200 and resp.mimetype == "application/json"
    return dict(resp.get_json())


def test_the_document_is_valid_openapi_3_1(spec: dict[str, Any]) -> None:
    assert spec["openapi"] == "3.1.0"
    validate(spec, cls=OpenAPIV31SpecValidator)
    assert spec["components"]["securitySchemes"] == {"basic": {"type": "http", "scheme": "basic"}}
    assert spec["security"] == [{"basic": []}]


def test_every_native_route_is_documented_and_nothing_else(flask_app: Flask, spec: dict[str, Any]) -> None:
    served = set()
    for rule in flask_app.url_map.iter_rules():
        if rule.endpoint.startswith("native.") and rule.rule.startswith("/api/v1/"):
            path = re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule.rule)
            served |= {(path, m.lower()) for m in rule.methods or () if m not in ("HEAD", "OPTIONS")}
    documented = {(path, method) for path, ops in spec["paths"].items() for method in ops}
    assert served == documented
    # Path parameters are named as the routes name them.
    assert {(f"/api/v1{op.path}", op.method) for op in ROUTES} == documented


# --- answers as the document says -----------------------------------------------------------


class Answers:
    """Validates a real response against the document's schema for its operation and status."""

    def __init__(self, spec: dict[str, Any]) -> None:
        self.spec = spec
        self.registry: Registry[Any] = Registry().with_resource(
            "urn:openapi", Resource.from_contents(spec, default_specification=DRAFT202012)
        )
        self.seen: set[tuple[str, str, int]] = set()

    def schema_for(self, path: str, method: str, status: int) -> dict[str, Any] | None:
        answer = self.spec["paths"][path][method]["responses"][str(status)]  # KeyError: undocumented
        if "$ref" in answer:
            answer = self.spec["components"]["responses"][answer["$ref"].rsplit("/", 1)[1]]
        content = answer.get("content")
        return None if content is None else dict(content["application/json"]["schema"])

    def check(self, path: str, method: str, resp: Any) -> Any:
        schema = self.schema_for(path, method, resp.status_code)
        self.seen.add((path, method, resp.status_code))
        if schema is None:
            assert resp.data == b"", (path, method, resp.status_code)
            return None
        assert resp.mimetype == "application/json", (path, method, resp.status_code)
        data = resp.get_json()
        self.validate(schema, data)
        return data

    def validate(self, schema: dict[str, Any], instance: Any) -> None:
        ref = {"$ref": "urn:openapi" + schema["$ref"]}
        validator = Draft202012Validator(
            ref, registry=self.registry, format_checker=Draft202012Validator.FORMAT_CHECKER
        )
        errors = sorted(validator.iter_errors(instance), key=lambda e: list(e.absolute_path))
        assert not errors, [f"{list(e.absolute_path)}: {e.message}" for e in errors]


def test_real_answers_match_the_documented_schemas(
    client: FlaskClient, spec: dict[str, Any], tenant_key: AccessKey, services: Services
) -> None:
    a = Answers(spec)
    h = auth(tenant_key)
    jobs, one, pipelines, p_one = (
        "/api/v1/jobs",
        "/api/v1/jobs/{job_id}",
        "/api/v1/pipelines",
        "/api/v1/pipelines/{pipeline_id}",
    )
    sprite = {"output": {"bucket": "out", "key": "s/{JobId}-{TileCount}.jpg"}, "lines": 2, "columns": 2}
    progress = {"every_images": 1, "every_s": 5}
    snapshot = {"mode": "series", "interval_s": 1, "count": 3, "sprite": sprite, "black_frames": {}}
    job = a.check(
        jobs,
        "post",
        client.post(
            jobs, json=body(snapshot=snapshot, webhook_url="https://example.com/h", progress=progress), headers=h
        ),
    )
    assert job["webhook_url"] == "https://example.com/h" and job["spec"]["sprite"]["lines"] == 2
    a.check(jobs, "post", client.post(jobs + "?wait=0.1", json=body(), headers=h))
    by_url = a.check(jobs, "post", client.post(jobs, json=body(input={"url": "https://example.com/v.mp4"}), headers=h))
    assert by_url["spec"]["input"] == {"url": "https://example.com/v.mp4"}
    a.check(
        jobs,
        "post",
        client.post(jobs, json=body(snapshot={"mode": "points", "points_ms": [5, -1]}, priority=0), headers=h),
    )
    a.check(jobs, "post", client.post(jobs, json=body(input={"bucket": "nope", "key": "x"}), headers=h))
    a.check(jobs, "post", client.post(jobs, json=body(pipeline_id="nope"), headers=h))
    a.check(jobs, "post", client.post(jobs, json=body()))
    batch = "/api/v1/jobs:batch"
    mixed = a.check(
        batch,
        "post",
        client.post(batch, json={"jobs": [body(), {"input": 1}, body(pipeline_id="nope")]}, headers=h),
    )
    assert [r["status"] for r in mixed["results"]] == [202, 400, 404] and mixed["results"][1]["error"]["errors"]
    a.check(batch, "post", client.post(batch, json={"jobs": []}, headers=h))
    a.check(jobs, "get", client.get(jobs + "?limit=1", headers=h))
    a.check(jobs, "get", client.get(jobs + "?limit=0", headers=h))
    a.check(one, "get", client.get(f"{jobs}/{job['id']}", headers=h))
    a.check(one, "get", client.get(f"{jobs}/nope", headers=h))
    a.check(one, "delete", client.delete(f"{jobs}/{job['id']}", headers=h))  # 409: still queued
    a.check(f"{one}/cancel", "post", client.post(f"{jobs}/{job['id']}/cancel", headers=h))
    again = a.check(f"{one}/retry", "post", client.post(f"{jobs}/{job['id']}/retry", headers=h))
    assert again["retry_of"] == job["id"] and again["progress"]["every_images"] == 1
    a.check(f"{one}/retry", "post", client.post(f"{jobs}/{again['id']}/retry", headers=h))  # 409: queued
    a.check(one, "delete", client.delete(f"{jobs}/{job['id']}?outputs=true", headers=h))
    a.check("/api/v1/webhook-secret", "get", client.get("/api/v1/webhook-secret", headers=h))
    upload = "/api/v1/objects/{bucket}/{key}"
    a.check(upload, "put", client.put("/api/v1/objects/media/in/up.mp4", data=b"\x00" * 10, headers=h))
    a.check(upload, "put", client.put("/api/v1/objects/elsewhere/up.mp4", data=b"\x00", headers=h))
    made = a.check(pipelines, "post", client.post(pipelines, json={"name": "p", "notify": {"queue": "q"}}, headers=h))
    a.check(pipelines, "post", client.post(pipelines, json={"name": "", "notify": {}, "x": 1}, headers=h))
    a.check(pipelines, "get", client.get(pipelines, headers=h))
    a.check(p_one, "get", client.get(f"{pipelines}/{made['id']}", headers=h))
    a.check(p_one, "get", client.get(f"{pipelines}/default", headers=h))
    a.check(
        p_one,
        "patch",
        client.patch(f"{pipelines}/{made['id']}", json={"max_concurrency": 2, "notify": None}, headers=h),
    )
    a.check(p_one, "patch", client.patch(f"{pipelines}/{made['id']}", json={"state": "gone"}, headers=h))
    a.check(p_one, "delete", client.delete(f"{pipelines}/{made['id']}", headers=h))
    a.check(p_one, "delete", client.delete(f"{pipelines}/{made['id']}", headers=h))
    statuses = {status for *_, status in a.seen}
    assert statuses == {200, 201, 202, 204, 400, 401, 403, 404, 409}, statuses


def test_a_finished_job_with_every_output_matches_the_job_schema(spec: dict[str, Any]) -> None:
    """Sprite sheets, storyboard, index, archive, error and notification: what a worker fills in."""
    target = OutputTarget("out", "s/{job_id}/{index:5}.jpg")
    job = SnapshotJob(
        id="j1",
        tenant="acme",
        pipeline_id="default",
        spec=SnapshotSpec(
            input=ObjectRef("media", "in/video.mp4"),
            timing=Series(start_ms=0, interval_s=1.5, count=2, end_ms=9000.0, closing_frame=True),
            output=target,
            sprite=SpriteSpec(target=OutputTarget("out", "s/{job_id}-{sheet:5}.jpg")),
            black_frames=BlackFrameSpec(),
            archive=ArchiveSpec(target=OutputTarget("out", "s/{job_id}.tar")),
        ),
        state=JobState.FAILED,
        created_at=datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
        finished_at=datetime(2026, 1, 2, 3, 4, 6, tzinfo=UTC),
        attempts=2,
        progress_done=2,
        progress_total=2,
        manifest=Manifest(
            images=[
                OutputImage(1, 0.0, 0.0, "s/j1/00001.jpg", 64, 36, 900),
                OutputImage(2, 1500.0, 1480.0, "s/j1/00002.jpg", 64, 36, 901, substituted_ms=40.0, uploaded=False),
            ],
            sheets=[SpriteSheet(1, "s/j1-00001.jpg", 128, 72, 3000, 2)],
            storyboard_key="s/j1.vtt",
            index_key="s/j1.json",
            archive_key="s/j1.tar",
            source_duration_ms=9000.0,
            source_width=64,
            source_height=36,
            decoder="pyav",
            notes=["moved 1 frame off black"],
        ),
        error_code=FailureCode.OUTPUT_WRITE_FAILED,
        error_message="the store refused it",
        notification=NotificationResult(message_id=None, error_code="QueueNotExist", error_message="no queue"),
    )
    data = json.loads(json.dumps(job_json(job, lambda b, k: f"http://x/objects/{b}/{k}?sig")))
    Answers(spec).validate({"$ref": "#/components/schemas/Job"}, data)
    assert data["manifest"]["images"][1]["url"] is None and data["manifest"]["archive_url"]


def test_every_problem_with_a_body_is_listed_at_once(client: FlaskClient, tenant_key: AccessKey) -> None:
    snapshot = {"mode": "series", "interval_s": "2", "count": 0, "width": 5, "bogus": 1, "format": "gif"}
    resp = client.post(
        "/api/v1/jobs", json=body(snapshot=snapshot, priority=11, input={"bucket": "media"}), headers=auth(tenant_key)
    )
    assert resp.status_code == 400
    data = resp.get_json()
    assert data["code"] == "InvalidParameter" and data["request_id"]
    assert [e["field"] for e in data["errors"]] == [
        "input.key",
        "snapshot.interval_s",
        "snapshot.count",
        "snapshot.width",
        "snapshot.format",
        "snapshot",
        "priority",
    ]
    reasons = {e["field"]: e["reason"] for e in data["errors"]}
    assert reasons["snapshot.count"] == "must be in [1, 10000], got 0"
    assert reasons["snapshot"] == "has unknown field(s): bogus"
    assert data["message"].startswith("input.key is required; snapshot.interval_s must be a finite number")
    # A core check that follows the models names its one field the same way.
    resp = client.post(
        "/api/v1/jobs",
        json=body(output={"bucket": "out", "key": "one.jpg"}, snapshot={"mode": "average", "count": 3}),
        headers=auth(tenant_key),
    )
    assert resp.get_json()["errors"] == [
        {"field": "output.key", "reason": "must contain {Count} when a job can produce more than one image"}
    ]


# --- the docs page, offline -------------------------------------------------------------------


class _References(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        wanted = {"script": "src", "link": "href", "img": "src"}.get(tag)
        for name, value in attrs:
            if name == wanted and value:
                self.urls.append(value)


CONTENT_TYPES = {".js": "text/javascript", ".css": "text/css", ".png": "image/png", ".json": "application/json"}


@pytest.fixture
def served(flask_app: Flask) -> Iterator[str]:
    server, url = serve_wsgi(flask_app)
    yield url
    server.shutdown()
    server.server_close()


def test_the_docs_page_loads_everything_from_this_server(served: str) -> None:
    with httpx.Client(base_url=served, timeout=30) as http:
        page = http.get("/docs")
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        assert "default-src 'self'" in page.headers["content-security-policy"]  # a browser fetches nothing else
        found = _References()
        found.feed(page.text)
        assert len(found.urls) >= 4, found.urls  # stylesheet, icon, Swagger UI, its start script
        for url in found.urls:
            assert url.startswith("/") and not url.startswith("//"), url  # this server, nothing external
            resp = http.get(url)
            suffix = url[url.rfind(".") :]
            assert resp.status_code == 200 and resp.headers["content-type"].startswith(CONTENT_TYPES[suffix]), url
            assert resp.content, url
        bundle = http.get(next(u for u in found.urls if u.endswith("swagger-ui-bundle.js"))).text
        assert "SwaggerUIBundle" in bundle
        start = http.get(next(u for u in found.urls if u.endswith("init.js"))).text
        spec_url = re.search(r'url: "([^"]+)"', start)
        assert spec_url and "validatorUrl: null" in start  # never sent to validator.swagger.io
        assert http.get(spec_url.group(1)).json()["openapi"] == "3.1.0"
        assert http.get("/docs/assets/index.html").status_code == 404  # only the files the page uses


# --- schemathesis against the live app ------------------------------------------------------

# Bounded for a shared 2-core machine (about 15 s of CPU): the examples phase (the documented
# example job and upload, which reach 202 and 201), the coverage phase (boundary values of every
# parameter and field, undeclared methods, missing credentials), then 10 generated requests per
# operation, valid and not, from a fixed seed. ``wait`` stays 0: no worker runs here, and a
# 10-second wait per request would take the budget (tests/integration/test_api.py checks it).
# Not checked: that every schema-valid request is accepted (the server also holds names to S3's
# rules, key templates to their tokens and webhook URLs to the SSRF guard, which no JSON Schema
# states), and that unknown query parameters are refused (they are ignored, as HTTP APIs do).
SCHEMA_KEY = AccessKey(id="OPENAPIKEY", secret="openapi-secret", tenant="acme")
SCHEMATHESIS = f"""
seed = 20261121
[generation]
mode = "all"
max-examples = 10
deterministic = true
allow-extra-parameters = false
[phases.coverage]
enabled = true
[checks.positive_data_acceptance]
enabled = false
[parameters]
"query.wait" = 0
[auth.openapi.basic]
username = "{SCHEMA_KEY.id}"
password = "{SCHEMA_KEY.secret}"
"""


@pytest.fixture
def schema_key(services: Services) -> AccessKey:
    return services.credentials.create(SCHEMA_KEY.tenant, key_id=SCHEMA_KEY.id, secret=SCHEMA_KEY.secret)


# The document is pure (built from the models and the route table), so the schema loads at
# collection; the requests go over a real socket to the app served for each operation's test.
live = schemathesis.openapi.from_dict(document(), config=schemathesis.config.SchemathesisConfig.from_str(SCHEMATHESIS))


@live.parametrize()
@settings(deadline=None, database=None, suppress_health_check=list(HealthCheck))
def test_schemathesis_finds_no_server_error_and_no_answer_off_the_document(
    case: Any, served: str, schema_key: AccessKey
) -> None:
    case.call_and_validate(base_url=served)
