"""A dialect registered from tests/ (no file under app/ edited) gets every failure its clients can
meet in its own format: routing 404 and 405, 413, bad signature, replayed nonce, stale
timestamp, throttling and an unexpected exception. The native and MNS dialects mounted beside it
keep theirs."""

from __future__ import annotations

import base64
import time
import uuid
from collections.abc import Iterator

import pytest
from flask.testing import FlaskClient

from app.gateway import registry
from app.settings import Settings
from app.web import create_app
from app.wiring import Services
from tests.integration.gateway.toy import CONTENT_TYPE, TOY, sign_headers
from tests.stack import make_services

AK, SK = "toyKey", "toySecret"


@pytest.fixture
def client(settings: Settings) -> Iterator[FlaskClient]:
    services = make_services(settings.with_(throttle_rate=0.0))
    services.credentials.create("acme", key_id=AK, secret=SK)
    flask_app = create_app(services.settings, services, dialects=[*registry.load(), TOY])
    yield flask_app.test_client()
    services.redis.close()


def _nonce() -> str:
    return uuid.uuid4().hex


def _toy_error(resp: object) -> str:
    assert resp.content_type == CONTENT_TYPE, (resp.status_code, resp.get_data(as_text=True))  # type: ignore[attr-defined]
    text: str = resp.get_data(as_text=True)  # type: ignore[attr-defined]
    assert text.startswith("ERR "), text
    return text[4:]


def test_a_signed_request_gets_through(client: FlaskClient) -> None:
    resp = client.get("/toy/echo", headers=sign_headers(AK, SK, "GET", "/toy/echo", nonce=_nonce()))
    assert resp.status_code == 200 and resp.get_json() == {"tenant": "acme"}


@pytest.mark.parametrize(
    ("method", "path", "status", "code"),
    [("GET", "/toy/nowhere", 404, "NoSuchThing"), ("POST", "/toy/echo", 405, "WrongVerb")],
)
def test_routing_errors_are_in_the_toy_format(
    client: FlaskClient, method: str, path: str, status: int, code: str
) -> None:
    resp = client.open(path, method=method)
    assert resp.status_code == status and _toy_error(resp) == code


def test_an_oversized_body_is_413_in_the_toy_format(client: FlaskClient) -> None:
    body = b"x" * (2 << 20)
    resp = client.get("/toy/echo", data=body, headers=sign_headers(AK, SK, "GET", "/toy/echo", body, nonce=_nonce()))
    assert resp.status_code == 413 and _toy_error(resp) == "TooBig"


def test_bad_signature_unknown_key_and_shape_errors(client: FlaskClient) -> None:
    wrong = client.get("/toy/echo", headers=sign_headers(AK, "not-the-secret", "GET", "/toy/echo", nonce=_nonce()))
    assert wrong.status_code == 403 and _toy_error(wrong) == "BadSig"
    unknown = client.get("/toy/echo", headers=sign_headers("nobody", SK, "GET", "/toy/echo", nonce=_nonce()))
    assert _toy_error(unknown) == "WhoAreYou"
    missing = client.get("/toy/echo")
    assert _toy_error(missing) == "NoCredentials"
    headers = sign_headers(AK, SK, "GET", "/toy/echo", nonce=_nonce()) | {"X-Toy-Time": "noon"}
    assert _toy_error(client.get("/toy/echo", headers=headers)) == "BadShape"


def test_a_signature_over_another_target_does_not_pass(client: FlaskClient) -> None:
    headers = sign_headers(AK, SK, "GET", "/toy/echo?a=1", nonce=_nonce())
    assert _toy_error(client.get("/toy/echo?a=2", headers=headers)) == "BadSig"


def test_a_replayed_nonce_is_refused(client: FlaskClient) -> None:
    headers = sign_headers(AK, SK, "GET", "/toy/echo", nonce="once")
    assert client.get("/toy/echo", headers=headers).status_code == 200
    again = client.get("/toy/echo", headers=headers)
    assert again.status_code == 403 and _toy_error(again) == "Replay"


@pytest.mark.parametrize("offset_s", [-16 * 60, 16 * 60])
def test_a_stale_or_future_timestamp_is_refused(client: FlaskClient, offset_s: int) -> None:
    headers = sign_headers(AK, SK, "GET", "/toy/echo", stamp=time.time() + offset_s, nonce=_nonce())
    resp = client.get("/toy/echo", headers=headers)
    assert resp.status_code == 403 and _toy_error(resp) == "Stale"


def test_a_stale_request_does_not_burn_its_nonce(client: FlaskClient) -> None:
    stale = sign_headers(AK, SK, "GET", "/toy/echo", stamp=time.time() - 3600, nonce="n1")
    assert _toy_error(client.get("/toy/echo", headers=stale)) == "Stale"
    fresh = sign_headers(AK, SK, "GET", "/toy/echo", nonce="n1")
    assert client.get("/toy/echo", headers=fresh).status_code == 200


def test_an_unexpected_exception_is_500_in_the_toy_format(
    client: FlaskClient, caplog: pytest.LogCaptureFixture
) -> None:
    resp = client.get("/toy/echo?boom=1", headers=sign_headers(AK, SK, "GET", "/toy/echo?boom=1", nonce=_nonce()))
    assert resp.status_code == 500 and _toy_error(resp) == "Oops"
    assert "the toy broke" not in resp.get_data(as_text=True)
    assert any("unhandled error" in r.message for r in caplog.records)


def test_the_other_dialects_keep_their_own_formats(client: FlaskClient) -> None:
    native = client.get("/api/v1/nowhere")
    assert native.status_code == 404 and native.get_json()["code"] == "NotFound"
    mns = client.get("/queues/q1")
    assert mns.status_code == 400 and b"<Code>MissingAuthorizationHeader</Code>" in mns.data


def test_throttling_is_in_the_toy_format(settings: Settings) -> None:
    services: Services = make_services(settings.with_(throttle_rate=0.5, throttle_burst=2))
    services.credentials.create("acme", key_id=AK, secret=SK)
    client = create_app(services.settings, services, dialects=[TOY]).test_client()
    codes = [
        client.get("/toy/echo", headers=sign_headers(AK, SK, "GET", "/toy/echo", nonce=_nonce())) for _ in range(3)
    ]
    assert [r.status_code for r in codes] == [200, 200, 429]
    assert _toy_error(codes[2]) == "SlowDown"
    services.redis.close()


def test_native_basic_auth_still_works_beside_the_toy(client: FlaskClient, services: Services) -> None:
    key = services.credentials.create("acme")
    token = base64.b64encode(f"{key.id}:{key.secret}".encode()).decode()
    resp = client.get("/api/v1/jobs", headers={"Authorization": f"Basic {token}"})
    assert resp.status_code == 200
