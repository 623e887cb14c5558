"""URL inputs at submission, through the native API on a real redis-server (no worker here).

What the API decides before a job exists: the ``{"url"}`` form (exactly one form), the shape
rules, a literal address the SSRF policy refuses (a 400, not a failed job), the operator's
switch, grants (none to read a URL, write still needed for outputs), no fetch of the URL, the
idempotency fingerprint, and the job JSON showing the URL as given to its own tenant only.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from app.settings import Settings
from app.web import create_app
from app.wiring import Services
from tests.integration.test_api import assert_error, auth, submit
from tests.stack import make_services
from tests.urlserver import MediaServer

URL = "https://cdn.example.com/v/clip.mp4?token=t0k3n"


def body(url: str = URL, **overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "input": {"url": url},
        "output": {"bucket": "out", "key": "snap/{JobId}/{Count}.jpg"},
        "snapshot": {"mode": "single", "time_ms": 1000},
    }
    data.update(overrides)
    return data


@pytest.fixture
def strict(settings: Settings) -> Iterator[Services]:
    """The production defaults for the guard: private addresses refused."""
    svc = make_services(settings.with_(allow_private_endpoints=False))
    yield svc
    svc.redis.close()


def test_a_url_input_is_queued_without_a_read_grant_and_shown_as_given(services: Services) -> None:
    services.grants.grant("urlonly", "out", write=True)  # write on the outputs, no read anywhere
    key = services.credentials.create("urlonly")
    client = create_app(services.settings, services).test_client()
    resp = submit(client, key, body())
    assert resp.status_code == 202, resp.get_data(as_text=True)
    job = resp.get_json()
    assert job["spec"]["input"] == {"url": URL} and job["state"] == "submitted"
    assert client.get(f"/api/v1/jobs/{job['id']}", headers=auth(key)).get_json()["spec"]["input"] == {"url": URL}
    other = services.credentials.create("other")
    assert client.get(f"/api/v1/jobs/{job['id']}", headers=auth(other)).status_code == 404
    # Outputs still need write: another bucket is refused.
    denied = submit(client, key, body(output={"bucket": "media", "key": "s/{JobId}/{Count}.jpg"}))
    assert_error(denied, 403, "AccessDenied", "media/")


def test_the_api_never_fetches_the_url(services: Services) -> None:
    server = MediaServer().start()  # answers every path 404: a fetch at submission would see it
    try:
        client = create_app(services.settings, services).test_client()
        key = services.credentials.create("acme")
        assert submit(client, key, body(server.url("/missing.mp4"))).status_code == 202
        assert server.seen == []
    finally:
        server.stop()


@pytest.mark.parametrize(
    ("input_", "fragment"),
    [
        ({"url": "ftp://example.com/v.mp4"}, "input.url must be an http:// or https:// URL"),
        ({"url": "https://u:p@example.com/v.mp4"}, "input.url must not carry credentials"),
        ({"url": "https://example.com/" + "a" * 2100}, "of at most 2048 characters"),
        ({"url": ""}, "input.url is required"),
        ({"url": 7}, "input.url must be a string"),
        ({"url": URL, "bucket": "media", "key": "v.mp4"}, "either url or bucket and key, not both"),
        ({"url": URL, "extra": 1}, "unknown field(s): extra"),
    ],
)
def test_bad_url_inputs_are_400(services: Services, input_: Any, fragment: str) -> None:
    client = create_app(services.settings, services).test_client()
    key = services.credentials.create("acme")
    assert_error(submit(client, key, body() | {"input": input_}), 400, "InvalidParameter", fragment)


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:9000/v.mp4",
        "http://10.0.0.7/v.mp4",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::1]/v.mp4",
        "http://[::ffff:127.0.0.1]/v.mp4",
    ],
)
def test_a_literal_address_the_guard_refuses_is_400_at_submission(strict: Services, url: str) -> None:
    client = create_app(strict.settings, strict).test_client()
    key = strict.credentials.create("acme")
    assert_error(submit(client, key, body(url)), 400, "InvalidParameter", "input.url is refused: endpoint address")
    assert client.get("/api/v1/jobs", headers=auth(key)).get_json()["jobs"] == []


def test_a_name_is_left_for_the_worker_to_resolve(strict: Services) -> None:
    client = create_app(strict.settings, strict).test_client()
    key = strict.credentials.create("acme")
    assert submit(client, key, body("http://localhost:9/v.mp4")).status_code == 202


def test_private_literals_pass_when_private_endpoints_are_allowed(services: Services) -> None:
    client = create_app(services.settings, services).test_client()
    key = services.credentials.create("acme")
    assert submit(client, key, body("http://127.0.0.1:9/v.mp4")).status_code == 202
    # Link-local (the metadata service) stays refused whatever the setting.
    assert_error(submit(client, key, body("http://169.254.169.254/")), 400, "InvalidParameter", "link-local")


def test_the_operator_switch_turns_url_inputs_off(settings: Settings) -> None:
    off = make_services(settings.with_(allow_url_inputs=False))
    try:
        client = create_app(off.settings, off).test_client()
        key = off.credentials.create("acme")
        assert_error(submit(client, key, body()), 400, "InvalidParameter", "input.url is not accepted")
        off.objects.put("media", "v.mp4", b"\x00" * 64, "video/mp4")
        object_input = body() | {"input": {"bucket": "media", "key": "v.mp4"}}
        assert submit(client, key, object_input).status_code == 202  # bucket/key inputs are unaffected
    finally:
        off.redis.close()


def test_the_client_token_is_bound_to_the_url(services: Services) -> None:
    client = create_app(services.settings, services).test_client()
    key = services.credentials.create("acme")
    first = submit(client, key, body(client_token="tok-u")).get_json()
    assert submit(client, key, body(client_token="tok-u")).get_json()["id"] == first["id"]
    changed = body(URL.replace("t0k3n", "t0k3m"), client_token="tok-u")
    assert_error(submit(client, key, changed), 409, "IdempotencyConflict", "tok-u")
