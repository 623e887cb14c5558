"""Signed output URLs in the job JSON (local storage) and ``DELETE /api/v1/jobs/{id}``."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
from flask.testing import FlaskClient

from app.core.jobs import Manifest, OutputImage, SnapshotJob, SpriteSheet
from app.core.pipelines import DEFAULT_PIPELINE_ID
from app.core.specs import ObjectRef, OutputTarget, SnapshotSpec, SpriteSpec, TimePoints
from app.core.states import JobState
from app.storage import keys
from app.storage.credentials import AccessKey
from app.storage.urls import LocalSignedUrls
from app.web import create_app
from app.wiring import Services
from tests.integration.test_api import assert_error, auth, body, submit


@pytest.fixture
def client(services: Services) -> FlaskClient:
    services.objects.put("media", "in/video.mp4", b"\x00" * 64, "video/mp4")
    return create_app(services.settings, services).test_client()


def finished_job(services: Services, *, token: str | None = None, tenant: str = "acme") -> SnapshotJob:
    """A job run to success by the repository, with two images, a sheet and a storyboard, whose
    objects are in storage and recorded as written (what a worker does)."""
    job_id = f"j{time.monotonic_ns()}"
    spec = SnapshotSpec(
        input=ObjectRef("media", "in/video.mp4"),
        timing=TimePoints((0.0, 500.0)),
        output=OutputTarget("out", "shots/{job_id}/{index:5}.jpg"),
        sprite=SpriteSpec(target=OutputTarget("out", "sheets/{job_id}-{sheet}.jpg")),
    )
    job = SnapshotJob(
        id=job_id,
        tenant=tenant,
        pipeline_id=DEFAULT_PIPELINE_ID,
        spec=spec,
        client_token=token,
        created_at=datetime.now(tz=UTC),
    )
    services.jobs.create(job, "fp")
    started = services.jobs.start(job_id, worker="t", lease_ttl_ms=60_000, max_attempts=3)
    images = [OutputImage(n, t, t, spec.output.key_for(job_id, n), 8, 8, 4) for n, t in ((1, 0.0), (2, 500.0))]
    manifest = Manifest(
        images=images,
        sheets=[SpriteSheet(1, f"sheets/{job_id}-1.jpg", 16, 8, 4, 2)],
        storyboard_key=f"sheets/{job_id}.vtt",
        index_key=f"sheets/{job_id}.json",
    )
    for key in [i.key for i in images] + [manifest.sheets[0].key, manifest.storyboard_key, manifest.index_key]:
        assert key is not None
        services.objects.put("out", key, f"bytes of {key}".encode(), "image/jpeg")
        services.jobs.record_written(job_id, "out", key)
    assert services.jobs.finish(job_id, JobState.SUCCEEDED, lease_token=started.lease_token, manifest=manifest)
    return services.jobs.get(job_id)


def local_path(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}"


def test_every_output_in_the_job_json_has_a_url_that_works_without_credentials(
    client: FlaskClient, tenant_key: AccessKey, services: Services
) -> None:
    job = finished_job(services)
    manifest = client.get(f"/api/v1/jobs/{job.id}", headers=auth(tenant_key)).get_json()["manifest"]
    urls = [i["url"] for i in manifest["images"]] + [s["url"] for s in manifest["sheets"]]
    urls += [manifest["storyboard_url"], manifest["index_url"]]
    keys_ = [i["key"] for i in manifest["images"]] + [s["key"] for s in manifest["sheets"]]
    keys_ += [manifest["storyboard_key"], manifest["index_key"]]
    assert len(urls) == 5
    for url, key in zip(urls, keys_, strict=True):
        assert url.startswith(services.settings.effective_object_url_base + "/out/")
        resp = client.get(local_path(url))  # no Authorization header at all
        assert resp.status_code == 200 and resp.data == f"bytes of {key}".encode(), url
        assert resp.headers["X-Content-Type-Options"] == "nosniff"


def test_a_signed_url_is_refused_after_it_expires_and_when_tampered_with(
    client: FlaskClient, tenant_key: AccessKey, services: Services
) -> None:
    job = finished_job(services)
    url = client.get(f"/api/v1/jobs/{job.id}", headers=auth(tenant_key)).get_json()["manifest"]["images"][0]["url"]
    assert client.get(local_path(url)).status_code == 200
    parts = urlsplit(url)
    query = {k: v[0] for k, v in parse_qs(parts.query).items()}
    sig = query["signature"]
    tampered = {
        "signature": {**query, "signature": ("A" if sig[0] != "A" else "B") + sig[1:]},
        "expiry pushed out": {**query, "expires": str(int(query["expires"]) + 86400)},
        "no signature": {"expires": query["expires"]},
        "bad expires": {**query, "expires": "soon"},
    }
    for what, params in tampered.items():
        resp = client.get(f"{parts.path}?{urlencode(params)}")
        assert_error(resp, 403, "AccessDenied")
        assert resp.status_code == 403, what
    other_key = parts.path.replace("00001.jpg", "00002.jpg")  # the other image, under the first one's signature
    assert_error(client.get(f"{other_key}?{parts.query}"), 403, "AccessDenied", "does not match")
    signer = services.object_urls
    assert isinstance(signer, LocalSignedUrls)
    real_clock = signer.clock
    signer.clock = lambda: real_clock() + services.settings.url_ttl_s + 1  # the same URL, after its expiry
    try:
        assert_error(client.get(local_path(url)), 403, "AccessDenied", "expired")
    finally:
        signer.clock = real_clock


def test_delete_forgets_a_finished_job_and_optionally_deletes_only_what_it_wrote(
    client: FlaskClient, tenant_key: AccessKey, services: Services
) -> None:
    services.objects.put("out", "shots/keep-me.jpg", b"not the job's", "image/jpeg")
    kept = finished_job(services, token="tok-a")
    gone = finished_job(services, token="tok-b")
    assert client.delete(f"/api/v1/jobs/{kept.id}", headers=auth(tenant_key)).status_code == 204
    assert_error(client.get(f"/api/v1/jobs/{kept.id}", headers=auth(tenant_key)), 404, "JobNotFound")
    assert services.objects.stat("out", kept.manifest.images[0].key) is not None  # outputs stay by default
    assert not services.redis.exists(keys.idempotency("acme", "tok-a"))
    listed = [j["id"] for j in client.get("/api/v1/jobs", headers=auth(tenant_key)).get_json()["jobs"]]
    assert kept.id not in listed and gone.id in listed
    written = services.jobs.written(gone.id)
    assert len(written) == 5
    assert client.delete(f"/api/v1/jobs/{gone.id}?outputs=true", headers=auth(tenant_key)).status_code == 204
    assert all(services.objects.stat(b, k) is None for b, k in written)
    assert services.objects.get("out", "shots/keep-me.jpg") == b"not the job's"
    assert services.objects.stat("out", kept.manifest.images[0].key) is not None
    again = submit(client, tenant_key, body(client_token="tok-a"))  # the token is free again
    assert again.status_code == 202 and again.get_json()["id"] not in (kept.id, gone.id)


def test_delete_refuses_queued_jobs_other_tenants_and_bad_flags(
    client: FlaskClient, tenant_key: AccessKey, services: Services
) -> None:
    queued = submit(client, tenant_key, body()).get_json()["id"]
    assert_error(client.delete(f"/api/v1/jobs/{queued}", headers=auth(tenant_key)), 409, "InvalidJobState", "cancel it")
    assert services.jobs.get(queued).state is JobState.SUBMITTED
    done = finished_job(services)
    other = services.credentials.create("globex")
    assert_error(client.delete(f"/api/v1/jobs/{done.id}?outputs=true", headers=auth(other)), 404, "JobNotFound")
    assert all(services.objects.stat(b, k) is not None for b, k in services.jobs.written(done.id))
    assert_error(
        client.delete(f"/api/v1/jobs/{done.id}?outputs=maybe", headers=auth(tenant_key)), 400, "InvalidParameter"
    )
    assert_error(client.delete("/api/v1/jobs/nope", headers=auth(tenant_key)), 404, "JobNotFound")


def test_deleting_outputs_needs_write_on_them(client: FlaskClient, tenant_key: AccessKey, services: Services) -> None:
    done = finished_job(services)
    services.grants.revoke("acme", "out", write=True, read=False)
    assert_error(client.delete(f"/api/v1/jobs/{done.id}?outputs=true", headers=auth(tenant_key)), 403, "AccessDenied")
    assert all(services.objects.stat(b, k) is not None for b, k in services.jobs.written(done.id))
    assert services.jobs.find(done.id) is not None
