"""Hostile input to the native API gets a clear 4xx in JSON, never a 500, each case refused at
its root: numbers bounded before any float conversion, JSON depth checked before parsing, object
names held to S3's rules by the core, webhook URLs parsed safely, 414/431 in the dialect's
format, no redirects, failure messages without server paths."""

from __future__ import annotations

import http.client
import json
from collections.abc import Iterator
from typing import Any

import pytest
from flask.testing import FlaskClient

from app.settings import Settings
from app.storage.credentials import AccessKey
from app.web import create_app
from app.wiring import Services
from tests.integration.test_api import assert_error, auth, body
from tests.servers import serve_wsgi
from tests.stack import make_services

HUGE = "9" * 401  # a 401-digit integer: math.isfinite(int) overflows converting it to float


@pytest.fixture
def client(services: Services) -> FlaskClient:
    services.objects.put("media", "in/video.mp4", b"\x00" * 64, "video/mp4")
    return create_app(services.settings, services).test_client()


def post_raw(client: FlaskClient, key: AccessKey, path: str, raw: str | bytes, method: str = "POST") -> Any:
    headers = {**auth(key), "Content-Type": "application/json"}
    return client.open(path, method=method, data=raw, headers=headers)


def job_text(snapshot: str, extra: str = "") -> str:
    return (
        '{"input": {"bucket": "media", "key": "in/video.mp4"},'
        ' "output": {"bucket": "out", "key": "s/{JobId}/{Count}.jpg"},'
        f' "snapshot": {{{snapshot}}}{extra}}}'
    )


@pytest.mark.parametrize(
    "snapshot",
    [
        f'"mode": "single", "time_ms": {HUGE}',
        f'"mode": "series", "start_ms": {HUGE}, "interval_s": 1, "count": 2',
        f'"mode": "series", "interval_s": {HUGE}, "count": 2',
        f'"mode": "series", "interval_s": -{HUGE}, "count": 2',
        f'"mode": "series", "interval_s": 1, "count": {HUGE}',
        f'"mode": "average", "count": 3, "end_ms": {HUGE}',
        f'"mode": "points", "points_ms": [1000, {HUGE}]',
        f'"mode": "single", "black_frames": {{"max_dark_ratio": {HUGE}}}',
        f'"mode": "single", "black_frames": {{"min_stddev": {HUGE}}}',
        f'"mode": "single", "width": {HUGE}',
        '"mode": "single", "time_ms": 1e308',
        '"mode": "single", "time_ms": 1e400',
    ],
)
def test_huge_numbers_are_400(client: FlaskClient, tenant_key: AccessKey, snapshot: str) -> None:
    assert_error(post_raw(client, tenant_key, "/api/v1/jobs", job_text(snapshot)), 400, "InvalidParameter")


def test_huge_numbers_outside_the_snapshot_are_400(client: FlaskClient, tenant_key: AccessKey) -> None:
    resp = post_raw(client, tenant_key, "/api/v1/jobs", job_text('"mode": "single"', f', "priority": {HUGE}'))
    assert_error(resp, 400, "InvalidParameter", "priority")
    resp = post_raw(client, tenant_key, "/api/v1/pipelines", f'{{"name": "p", "max_concurrency": {HUGE}}}')
    assert_error(resp, 400, "InvalidParameter", "max_concurrency")


@pytest.mark.parametrize(
    "raw",
    [
        "[" * 400_000 + "]" * 400_000,
        '{"a":' * 100_000 + "1" + "}" * 100_000,
        '{"input": ' + "[" * 33 + "]" * 33 + "}",
    ],
    ids=["400k-arrays", "100k-objects", "33-levels"],
)
@pytest.mark.parametrize(
    ("method", "path"),
    [("POST", "/api/v1/jobs"), ("POST", "/api/v1/pipelines"), ("PATCH", "/api/v1/pipelines/default")],
)
def test_deeply_nested_json_is_400_before_parsing(
    client: FlaskClient, tenant_key: AccessKey, raw: str, method: str, path: str
) -> None:
    assert_error(post_raw(client, tenant_key, path, raw, method), 400, "InvalidParameter", "nested deeper than 32")


def test_brackets_inside_strings_do_not_count_as_nesting(client: FlaskClient, tenant_key: AccessKey) -> None:
    resp = post_raw(client, tenant_key, "/api/v1/jobs", job_text('"mode": "single"', f', "user_data": "{"[" * 500}"'))
    assert resp.status_code == 202, resp.get_data(as_text=True)


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"input": {"bucket": "b" * 5000, "key": "in/video.mp4"}}, "input.bucket"),
        ({"input": {"bucket": "media", "key": "k" * 5000}}, "input.key"),
        ({"output": {"bucket": "o" * 5000, "key": "x.jpg"}}, "output.bucket"),
        ({"output": {"bucket": "out", "key": "k" * 5000}}, "output.key"),
        ({"output": {"bucket": "out", "key": "a\x00b.jpg"}}, "output.key"),
        ({"output": {"bucket": "out", "key": "a\\b.jpg"}}, "output.key"),
        ({"output": {"bucket": "out", "key": "s" * 256 + "/x.jpg"}}, "output.key"),
        ({"output": {"bucket": "out", "key": "a//b.jpg"}}, "output.key"),
        ({"output": {"bucket": "Out_Bucket", "key": "x.jpg"}}, "output.bucket"),
        ({"input": {"bucket": "media", "key": "in\ud800.mp4"}}, "input.key"),
        ({"user_data": "\ud800"}, "user_data"),
        ({"pipeline_id": "\udfff"}, "pipeline_id"),
    ],
)
def test_names_every_backend_would_treat_differently_are_400(
    client: FlaskClient, tenant_key: AccessKey, overrides: dict[str, Any], field: str
) -> None:
    raw = json.dumps(body(**overrides))  # ensure_ascii: lone surrogates travel as \ud800 escapes
    assert_error(post_raw(client, tenant_key, "/api/v1/jobs", raw), 400, "InvalidParameter", field)


def test_long_names_in_object_reads_are_404(client: FlaskClient, tenant_key: AccessKey) -> None:
    for path in (f"/objects/{'b' * 5000}/k.jpg", f"/objects/out/{'k' * 5000}.jpg", "/objects/out/a%00b.jpg"):
        assert_error(client.get(path, headers=auth(tenant_key)), 404, "NotFound")


@pytest.mark.parametrize("url", ["http://[::1", "http://[", "http://[::1]:99999/", "https://exa mple.com:x/"])
def test_unparseable_webhook_urls_are_400(client: FlaskClient, tenant_key: AccessKey, url: str) -> None:
    assert_error(
        post_raw(client, tenant_key, "/api/v1/jobs", json.dumps(body(webhook_url=url))), 400, "InvalidParameter"
    )


@pytest.fixture
def strict_client(settings: Settings) -> Iterator[tuple[FlaskClient, AccessKey]]:
    """A stack whose SSRF guard is on (tests otherwise allow private endpoints)."""
    services = make_services(settings.with_(allow_private_endpoints=False))
    services.objects.put("media", "in/video.mp4", b"\x00" * 64, "video/mp4")
    yield create_app(services.settings, services).test_client(), services.credentials.create("acme")
    services.redis.close()


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/hook",
        "http://10.0.0.8/hook",
        "http://[::1]/hook",
        "http://[::127.0.0.1]/hook",
        "http://[64:ff9b::a00:1]/hook",
        "http://169.254.169.254/latest/meta-data",
    ],
)
def test_webhook_urls_with_a_literal_private_address_are_refused_at_submission(
    strict_client: tuple[FlaskClient, AccessKey], url: str
) -> None:
    client, key = strict_client
    assert_error(
        post_raw(client, key, "/api/v1/jobs", json.dumps(body(webhook_url=url))), 400, "InvalidParameter", "webhook_url"
    )
    ok = post_raw(client, key, "/api/v1/jobs", json.dumps(body(webhook_url="https://hooks.example.com/x")))
    assert ok.status_code == 202, ok.get_data(as_text=True)


def test_query_numbers_too_long_for_int_are_400(client: FlaskClient, tenant_key: AccessKey) -> None:
    for path in ("/api/v1/jobs?limit=" + "1" * 5000, "/api/v1/pipelines?page=" + "1" * 5000, "/api/v1/jobs?wait=1e999"):
        resp = (
            client.get(path, headers=auth(tenant_key))
            if "wait" not in path
            else client.post(path, headers=auth(tenant_key), json=body())
        )
        assert_error(resp, 400, "InvalidParameter")


def test_oversized_request_target_and_headers_get_json_414_and_431(client: FlaskClient, tenant_key: AccessKey) -> None:
    assert_error(client.get("/api/v1/jobs?x=" + "a" * 9000, headers=auth(tenant_key)), 414, "URITooLong")
    assert_error(client.get("/api/v1/" + "p" * 9000), 414, "URITooLong")
    big = {**auth(tenant_key), "X-Padding": "a" * 9000}
    assert_error(client.get("/api/v1/jobs", headers=big), 431, "HeadersTooLarge")
    many = {**auth(tenant_key), **{f"X-Pad-{i}": "a" * 4000 for i in range(10)}}
    assert_error(client.get("/api/v1/jobs", headers=many), 431, "HeadersTooLarge")


def test_an_mns_request_too_long_gets_the_mns_xml_error(client: FlaskClient) -> None:
    resp = client.get("/queues/q/messages?x=" + "a" * 9000)
    assert resp.status_code == 414 and resp.mimetype == "text/xml"
    assert b"<Code>InvalidArgument</Code>" in resp.data and b"<RequestId>" in resp.data


@pytest.mark.parametrize(
    "path", ["/api//v1/jobs", "/api/v1//jobs", "//api/v1/jobs", "/api/v1/jobs/", "/objects//out/x.jpg"]
)
def test_double_slashes_and_trailing_slashes_are_never_redirected(
    client: FlaskClient, tenant_key: AccessKey, path: str
) -> None:
    resp = client.get(path, headers=auth(tenant_key))
    assert resp.status_code not in (301, 302, 307, 308) and "Location" not in resp.headers, (path, resp.status_code)
    assert resp.is_json and resp.status_code < 500, (path, resp.get_data(as_text=True))


def test_over_a_real_socket_the_limits_and_no_redirects_hold(services: Services, tenant_key: AccessKey) -> None:
    """The same through a served app (werkzeug's HTTP server, as the SDK tests use)."""
    server, url = serve_wsgi(create_app(services.settings, services))
    host, port = url.removeprefix("http://").split(":")
    try:
        for target, status in [("/api/v1/jobs?x=" + "a" * 8100, 414), ("/api//v1/jobs", 404), ("/api/v1/nothing", 404)]:
            conn = http.client.HTTPConnection(host, int(port), timeout=10)
            conn.request("GET", target, headers=auth(tenant_key))
            resp = conn.getresponse()
            data = resp.read()
            conn.close()
            assert resp.status == status and resp.getheader("Location") is None, (target, resp.status)
            assert json.loads(data)["code"] in ("URITooLong", "NotFound")
    finally:
        server.shutdown()
        server.server_close()
