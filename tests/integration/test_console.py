"""The console's rules without a browser: login through the gate, sessions, CSRF, who sees what,
retry and the files route (real redis-server; jobs are stored and finished through the repository,
no worker). The browser tests are in tests/e2e/test_console_browser.py."""

from __future__ import annotations

import re
from typing import Any

import pytest
from flask.testing import FlaskClient

from app.core.errors import InvalidJobState
from app.core.jobs import Manifest, OutputImage
from app.core.ports import JobQuery
from app.core.service import SubmitRequest
from app.core.specs import ObjectRef, OutputTarget, SingleTime, SnapshotSpec
from app.core.states import JobState
from app.storage.credentials import AccessKey
from app.web import create_app
from app.wiring import Services

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


@pytest.fixture
def app_client(services: Services) -> FlaskClient:
    return create_app(services.settings, services).test_client()


def token(page: str) -> str:
    found = CSRF.search(page)
    assert found, page[:500]
    return found.group(1)


def login(client: FlaskClient, key: AccessKey, secret: str | None = None) -> int:
    page = client.get("/console/login").get_data(as_text=True)
    resp = client.post(
        "/console/login",
        data={"access_key_id": key.id, "access_key_secret": secret or key.secret, "csrf_token": token(page)},
    )
    return resp.status_code


def stored_job(
    services: Services, tenant: str, *, finish: JobState | None = None, request: dict[str, Any] | None = None
) -> str:
    services.objects.put("media", "v.mp4", b"not really a video", "video/mp4")
    for bucket in ("media", "out"):  # every tenant here may use the test buckets
        services.grants.grant(tenant, bucket, read=True, write=True)
    spec = SnapshotSpec(
        input=ObjectRef("media", "v.mp4"), output=OutputTarget("out", "o/{job_id}/{index:5}.jpg"), timing=SingleTime(0)
    )
    job = services.snapshots.submit(tenant, SubmitRequest(spec=spec, **(request or {})))
    if finish is not None:
        start = services.jobs.start(job.id, worker="test", lease_ttl_ms=10_000, max_attempts=3)
        key = spec.output.key_for(job.id, 1)
        services.objects.put("out", key, b"\xff\xd8jpeg bytes", "image/jpeg")
        manifest = Manifest(images=[OutputImage(1, 0.0, 0.0, key, 8, 8, 11)])
        services.jobs.finish(
            job.id,
            finish,
            lease_token=start.lease_token,
            manifest=manifest if finish is JobState.SUCCEEDED else None,
            error_code="InputUnreadable" if finish is JobState.FAILED else None,
            error_message="the input could not be decoded" if finish is JobState.FAILED else None,
        )
    return job.id


def test_pages_need_a_session_and_a_wrong_secret_is_refused(app_client: FlaskClient, services: Services) -> None:
    key = services.credentials.create("acme")
    resp = app_client.get("/console/jobs")
    assert resp.status_code == 302 and "/console/login" in resp.headers["Location"]
    assert app_client.get("/console/pipelines.json").status_code == 401
    assert login(app_client, key, secret="wrong") == 401
    assert app_client.get("/console/jobs").status_code == 302
    assert login(app_client, key) == 302
    page = app_client.get("/console/jobs")
    assert page.status_code == 200 and "script-src 'self'" in page.headers["Content-Security-Policy"]
    assert "acme" in page.get_data(as_text=True)


def test_every_post_needs_the_csrf_token(app_client: FlaskClient, services: Services) -> None:
    key = services.credentials.create("acme")
    pipeline = services.snapshots.create_pipeline("acme", "thumbs")
    # No token, not even a login.
    resp = app_client.post("/console/login", data={"access_key_id": key.id, "access_key_secret": key.secret})
    assert resp.status_code == 400 and "Form expired" in resp.get_data(as_text=True)
    assert login(app_client, key) == 302
    url = f"/console/pipelines/{pipeline.id}/pause"
    assert app_client.post(url).status_code == 400
    assert app_client.post(url, data={"csrf_token": "forged"}).status_code == 400
    assert services.pipelines.find(pipeline.id).state.value == "active"
    good = token(app_client.get("/console/pipelines").get_data(as_text=True))
    assert app_client.post(url, data={"csrf_token": good}).status_code == 302
    assert services.pipelines.find(pipeline.id).state.value == "paused"


def test_a_deleted_key_ends_its_session(app_client: FlaskClient, services: Services) -> None:
    key = services.credentials.create("acme")
    assert login(app_client, key) == 302
    assert app_client.get("/console/jobs").status_code == 200
    services.credentials.delete(key.id)
    assert app_client.get("/console/jobs").status_code == 302


def test_tenants_see_only_their_own_jobs_and_files_operators_see_all(
    services: Services, app_client: FlaskClient
) -> None:
    a, b = services.credentials.create("acme"), services.credentials.create("beta")
    op = services.credentials.create("ops")
    services.operators.grant(op.id)
    job_a = stored_job(services, "acme", finish=JobState.SUCCEEDED)
    key = services.jobs.get(job_a).manifest.images[0].key

    assert login(app_client, a) == 302
    assert job_a[:12] in app_client.get("/console/jobs").get_data(as_text=True)
    assert app_client.get(f"/console/jobs/{job_a}").status_code == 200
    file = app_client.get(f"/console/jobs/{job_a}/files/{key}")
    assert file.status_code == 200 and file.data == b"\xff\xd8jpeg bytes" and file.content_type == "image/jpeg"
    # Only the manifest's outputs: not the job's input, not another key in the same bucket.
    assert app_client.get(f"/console/jobs/{job_a}/files/v.mp4").status_code == 404
    services.objects.put("out", "o/other.jpg", b"x", "image/jpeg")
    assert app_client.get(f"/console/jobs/{job_a}/files/o/other.jpg").status_code == 404

    other = create_app(services.settings, services).test_client()
    assert login(other, b) == 302
    listing = other.get("/console/jobs").get_data(as_text=True)
    assert job_a[:12] not in listing and "No jobs match." in listing
    assert other.get(f"/console/jobs/{job_a}").status_code == 404
    assert other.get(f"/console/jobs/{job_a}/files/{key}").status_code == 404
    assert other.get(f"/console/jobs/{job_a}/status.json").status_code == 404

    operator = create_app(services.settings, services).test_client()
    assert login(operator, op) == 302
    listing = operator.get("/console/jobs").get_data(as_text=True)
    assert job_a[:12] in listing and "operator" in listing
    assert operator.get(f"/console/jobs/{job_a}/files/{key}").status_code == 200


def test_operator_job_listing_pages_across_tenants(services: Services) -> None:
    made = [stored_job(services, tenant) for tenant in ("acme", "beta", "acme", "gamma", "beta")]
    seen: list[str] = []
    token_: str | None = None
    while True:
        page = services.snapshots.list_jobs_as_operator(JobQuery(limit=2, page_token=token_))
        seen += [j.id for j in page.jobs]
        token_ = page.next_page_token
        if token_ is None:
            break
    assert sorted(seen) == sorted(made) and len(seen) == len(set(seen))
    created = [services.jobs.get(j).created_at for j in seen]
    assert created == sorted(created, reverse=True)


def test_retry_submits_a_linked_job_with_the_same_spec(services: Services) -> None:
    failed = stored_job(services, "acme", finish=JobState.FAILED)
    again = services.snapshots.retry("acme", failed)
    old = services.jobs.get(failed)
    assert again.id != failed and again.retry_of == failed and again.state is JobState.SUBMITTED
    assert again.spec == old.spec and again.pipeline_id == old.pipeline_id and again.priority == old.priority
    assert services.jobs.get(again.id).retry_of == failed  # stored, not only returned
    assert old.state is JobState.FAILED
    with pytest.raises(InvalidJobState):
        services.snapshots.retry("acme", again.id)  # still queued
    with pytest.raises(Exception, match="does not exist"):
        services.snapshots.retry("beta", failed)  # another tenant's job


def test_a_retry_keeps_the_origin_and_what_its_dialect_echoes(services: Services) -> None:
    sent = {"origin": "mts", "dialect_data": {"echo": '{"Input":{"Location":"oss-cn-hangzhou"}}'}}
    failed = stored_job(services, "acme", finish=JobState.FAILED, request=sent)
    again = services.jobs.get(services.snapshots.retry("acme", failed).id)
    assert again.origin == "mts" and again.dialect_data == sent["dialect_data"]


def test_console_retry_and_cancel_buttons(services: Services, app_client: FlaskClient) -> None:
    key = services.credentials.create("acme")
    failed = stored_job(services, "acme", finish=JobState.FAILED)
    queued = stored_job(services, "acme")
    assert login(app_client, key) == 302
    page = app_client.get(f"/console/jobs/{failed}").get_data(as_text=True)
    assert "InputUnreadable" in page and "the input could not be decoded" in page and 'id="retry"' in page
    resp = app_client.post(f"/console/jobs/{failed}/retry", data={"csrf_token": token(page)})
    assert resp.status_code == 302
    new_id = resp.headers["Location"].rsplit("/", 1)[-1]
    assert services.jobs.get(new_id).retry_of == failed
    page = app_client.get(f"/console/jobs/{queued}").get_data(as_text=True)
    assert app_client.post(f"/console/jobs/{queued}/cancel", data={"csrf_token": token(page)}).status_code == 302
    assert services.jobs.get(queued).state is JobState.CANCELED
