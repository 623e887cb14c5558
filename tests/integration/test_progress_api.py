"""The native body's ``progress`` through Flask's test client on a real redis-server: bounds and
shapes are clear 400s, its URL goes through the same policy as ``webhook_url`` and defaults to
it, it is stored and shown with the job, kept by a retry, and part of the idempotency fingerprint."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from flask.testing import FlaskClient

from app.core.states import JobState
from app.settings import Settings
from app.storage.credentials import AccessKey
from app.web import create_app
from app.wiring import Services
from tests.integration.test_api import assert_error, auth, body, submit
from tests.stack import make_services


@pytest.fixture
def client(services: Services) -> FlaskClient:
    services.objects.put("media", "in/video.mp4", b"\x00" * 64, "video/mp4")
    return create_app(services.settings, services).test_client()


@pytest.fixture
def strict_client(settings: Settings) -> Iterator[tuple[FlaskClient, AccessKey]]:
    """A stack whose SSRF guard is on (tests otherwise allow private endpoints)."""
    services = make_services(settings.with_(allow_private_endpoints=False))
    services.objects.put("media", "in/video.mp4", b"\x00" * 64, "video/mp4")
    yield create_app(services.settings, services).test_client(), services.credentials.create("acme")
    services.redis.close()


HOOK = "https://hooks.example.com/progress"


@pytest.mark.parametrize(
    ("progress", "fragment"),
    [
        ({"webhook_url": HOOK}, "progress must set every_images, every_s or both"),
        ({"webhook_url": HOOK, "every_images": 0}, "progress.every_images must be in [1, 10000], got 0"),
        ({"webhook_url": HOOK, "every_images": 2.5}, "progress.every_images must be an integer"),
        ({"webhook_url": HOOK, "every_s": 0.5}, "progress.every_s must be in [1, 86400], got 0.5"),
        ({"webhook_url": HOOK, "every_s": "10"}, "progress.every_s must be a finite number"),
        ({"webhook_url": HOOK, "every_s": 10, "every": 1}, "progress has unknown field(s): every"),
        ({"webhook_url": "ftp://x/y", "every_s": 10}, "progress.webhook_url must be an http(s) URL"),
        ({"every_s": 10}, "progress.webhook_url is required when the job has no webhook_url"),
        ("often", "progress must be a JSON object"),
    ],
)
def test_bad_progress_is_a_clear_400(client: FlaskClient, tenant_key: AccessKey, progress: Any, fragment: str) -> None:
    assert_error(submit(client, tenant_key, body(progress=progress)), 400, "InvalidParameter", fragment)


def test_a_private_progress_url_is_refused_like_a_webhook_url(strict_client: tuple[FlaskClient, AccessKey]) -> None:
    client, key = strict_client
    resp = submit(client, key, body(progress={"webhook_url": "http://10.0.0.8/p", "every_images": 1}))
    assert_error(resp, 400, "InvalidParameter", "progress.webhook_url")
    ok = submit(client, key, body(progress={"webhook_url": HOOK, "every_images": 1}))
    assert ok.status_code == 202, ok.get_data(as_text=True)


def test_progress_is_stored_shown_defaulted_and_kept_by_a_retry(
    client: FlaskClient, tenant_key: AccessKey, services: Services
) -> None:
    resp = submit(client, tenant_key, body(webhook_url="https://hooks.example.com/done", progress={"every_s": 2}))
    assert resp.status_code == 202, resp.get_data(as_text=True)
    job = resp.get_json()
    assert job["progress"] == {
        "done": 0,
        "total": 1,
        "webhook_url": "https://hooks.example.com/done",  # the job's webhook_url, when progress names none
        "every_images": None,
        "every_s": 2.0,
    }
    assert job["retry_of"] is None
    plain = submit(client, tenant_key, body()).get_json()
    assert plain["progress"] == {"done": 0, "total": 1}  # nothing asked, nothing shown
    stored = services.jobs.get(job["id"])
    assert stored.progress_events is not None and stored.progress_events.every_s == 2.0
    # A retry re-runs the same request, progress events included.
    assert services.jobs.cancel_queued(job["id"])
    assert services.jobs.get(job["id"]).state is JobState.CANCELED
    again = client.post(f"/api/v1/jobs/{job['id']}/retry", headers=auth(tenant_key))
    assert again.status_code == 202
    assert again.get_json()["progress"] == job["progress"] and again.get_json()["retry_of"] == job["id"]


def test_progress_is_part_of_the_idempotency_fingerprint(client: FlaskClient, tenant_key: AccessKey) -> None:
    first = submit(client, tenant_key, body(client_token="t-1", progress={"webhook_url": HOOK, "every_images": 5}))
    same = submit(client, tenant_key, body(client_token="t-1", progress={"webhook_url": HOOK, "every_images": 5}))
    assert first.status_code == 202 and same.get_json()["id"] == first.get_json()["id"]
    other = submit(client, tenant_key, body(client_token="t-1", progress={"webhook_url": HOOK, "every_images": 6}))
    assert_error(other, 409, "IdempotencyConflict", "t-1")
    none = submit(client, tenant_key, body(client_token="t-1"))
    assert_error(none, 409, "IdempotencyConflict", "t-1")
