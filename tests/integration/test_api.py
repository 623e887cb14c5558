"""The native HTTP API through Flask's test client, on a real redis-server and local storage.

No worker runs here: these tests cover validation, authentication, tenancy, idempotency,
listing and cancel of queued jobs. Jobs that run are covered in test_end_to_end.py.
"""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient

from app.settings import Settings
from app.storage.credentials import AccessKey
from app.web import create_app
from app.wiring import Services, build_services
from tests.servers import RedisServer, free_port
from tests.stack import TEST_SECRET_KEY


def auth(key: AccessKey) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{key.id}:{key.secret}".encode()).decode()}


@pytest.fixture
def client(services: Services) -> FlaskClient:
    services.objects.put("media", "in/video.mp4", b"\x00" * 64, "video/mp4")
    return create_app(services.settings, services).test_client()


def body(**overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "input": {"bucket": "media", "key": "in/video.mp4"},
        "output": {"bucket": "out", "key": "snap/{JobId}/{Count}.jpg"},
        "snapshot": {"mode": "single", "time_ms": 1000},
    }
    data.update(overrides)
    return data


def submit(client: FlaskClient, key: AccessKey, payload: Any, headers: dict[str, str] | None = None, **kw: Any) -> Any:
    return client.post("/api/v1/jobs", json=payload, headers={**auth(key), **(headers or {})}, **kw)


def assert_error(resp: Any, status: int, code: str, fragment: str = "") -> None:
    assert resp.status_code == status, resp.get_data(as_text=True)
    data = resp.get_json()
    assert data["code"] == code and data["request_id"], data
    assert fragment in data["message"], data["message"]


def test_submit_stores_a_queued_job_and_returns_202(
    client: FlaskClient, tenant_key: AccessKey, services: Services
) -> None:
    resp = submit(client, tenant_key, body(user_data="order-7"))
    assert resp.status_code == 202
    job = resp.get_json()
    assert job["state"] == "submitted" and job["user_data"] == "order-7" and job["pipeline_id"] == "default"
    assert services.jobs.get(job["id"]).tenant == "acme"
    got = client.get(f"/api/v1/jobs/{job['id']}", headers=auth(tenant_key)).get_json()
    assert got["id"] == job["id"] and got["spec"]["timing"] == {"kind": "single", "time_ms": 1000.0}


@pytest.mark.parametrize(
    ("snapshot", "fragment"),
    [
        ({"mode": "single", "time_ms": 1000, "width": 5}, "width must be an integer in [8, 4096], got 5"),
        ({"mode": "single", "time_ms": 1000, "height": 5000}, "height must be an integer in [8, 4096], got 5000"),
        ({"mode": "points", "points_ms": list(range(101))}, "holds 101 time points; at most 100"),
        ({"mode": "single", "time_ms": -1}, "time_ms must be a finite number >= 0"),
        ({"mode": "series", "interval_s": 0, "count": 3}, "interval_s must be greater than 0"),
        ({"mode": "sideways"}, "snapshot.mode must be"),
        ({"mode": "single", "time_ms": "5"}, "must be a finite number"),
        ({"mode": "single", "time_ms": True}, "must be a finite number"),
        ({"mode": "single", "bogus": 1}, "unknown field(s): bogus"),
        ({"mode": "average", "count": 3, "start_ms": 5000, "end_ms": 1000}, "end_ms must not be less than start_ms"),
        ({"mode": "single", "format": "gif"}, "format must be jpeg, png or webp"),
        ({"mode": "single", "quality": 0}, "quality must be in [1, 100]"),
        (
            {"mode": "single", "sprite": {"output": {"bucket": "out", "key": "s.jpg"}, "color": "plaid"}},
            "must be a keyword",
        ),
    ],
)
def test_invalid_snapshot_specs_are_400_with_the_field_named(
    client: FlaskClient, tenant_key: AccessKey, snapshot: dict[str, Any], fragment: str
) -> None:
    assert_error(submit(client, tenant_key, body(snapshot=snapshot)), 400, "InvalidParameter", fragment)


def test_multi_image_job_needs_count_in_the_key(client: FlaskClient, tenant_key: AccessKey) -> None:
    resp = submit(
        client,
        tenant_key,
        body(output={"bucket": "out", "key": "one.jpg"}, snapshot={"mode": "series", "interval_s": 1, "count": 3}),
    )
    assert_error(resp, 400, "InvalidParameter", "must contain {Count}")


def test_user_data_over_1024_bytes_is_refused(client: FlaskClient, tenant_key: AccessKey) -> None:
    assert submit(client, tenant_key, body(user_data="x" * 1024)).status_code == 202
    assert_error(
        submit(client, tenant_key, body(user_data="é" * 513)), 400, "InvalidParameter", "1026 bytes; at most 1024"
    )


def test_unknown_input_bucket_or_object_and_output_bucket(
    client: FlaskClient, tenant_key: AccessKey, services: Services
) -> None:
    # Grants are checked first (another tenant's buckets cannot be probed for existence) ...
    assert_error(
        submit(client, tenant_key, body(input={"bucket": "nope", "key": "a.mp4"})), 403, "AccessDenied", "nope"
    )
    # ... so these buckets, which do not exist, are granted to see the existence checks.
    for bucket in ("nope", "gone"):
        services.grants.grant("acme", bucket, read=True, write=True)
    assert_error(
        submit(client, tenant_key, body(input={"bucket": "nope", "key": "a.mp4"})),
        400,
        "InputNotFound",
        "bucket 'nope'",
    )
    assert_error(
        submit(client, tenant_key, body(input={"bucket": "media", "key": "missing.mp4"})),
        400,
        "InputNotFound",
        "media/missing.mp4",
    )
    assert_error(
        submit(client, tenant_key, body(output={"bucket": "gone", "key": "a.jpg"})),
        400,
        "InvalidParameter",
        "output.bucket 'gone'",
    )


def test_unknown_pipeline_is_404(client: FlaskClient, tenant_key: AccessKey) -> None:
    assert_error(submit(client, tenant_key, body(pipeline_id="nope")), 404, "PipelineNotFound", "'nope'")


def test_malformed_bodies_never_500(client: FlaskClient, tenant_key: AccessKey) -> None:
    h = {**auth(tenant_key), "Content-Type": "application/json"}
    for raw in [b"", b"{", b"[1,2]", b"null", b'"text"', b"\xff\xfe", b'{"input": 5}']:
        resp = client.post("/api/v1/jobs", data=raw, headers=h)
        assert resp.status_code == 400, (raw, resp.get_data(as_text=True))
        assert resp.get_json()["code"] == "InvalidParameter"


def test_wrong_or_missing_access_key_is_401(client: FlaskClient, tenant_key: AccessKey) -> None:
    assert_error(client.post("/api/v1/jobs", json=body()), 401, "InvalidAccessKey", "missing credentials")
    bad = AccessKey(id=tenant_key.id, secret="wrong", tenant="acme")
    assert_error(submit(client, bad, body()), 401, "InvalidAccessKey", "not valid")
    unknown = AccessKey(id="NOPE", secret="x", tenant="acme")
    assert_error(client.get("/api/v1/jobs", headers=auth(unknown)), 401, "InvalidAccessKey")


def test_another_tenants_job_does_not_exist_for_you(
    client: FlaskClient, tenant_key: AccessKey, services: Services
) -> None:
    job_id = submit(client, tenant_key, body()).get_json()["id"]
    other = services.credentials.create("globex")
    assert_error(client.get(f"/api/v1/jobs/{job_id}", headers=auth(other)), 404, "JobNotFound")
    assert_error(client.post(f"/api/v1/jobs/{job_id}/cancel", headers=auth(other)), 404, "JobNotFound")
    assert client.get("/api/v1/jobs", headers=auth(other)).get_json()["jobs"] == []


def test_idempotent_submission(client: FlaskClient, tenant_key: AccessKey) -> None:
    first = submit(client, tenant_key, body(client_token="tok-1")).get_json()
    again = submit(client, tenant_key, body(client_token="tok-1")).get_json()
    assert again["id"] == first["id"]
    via_header = submit(client, tenant_key, body(), headers={**auth(tenant_key), "Idempotency-Key": "tok-1"})
    assert via_header.get_json()["id"] == first["id"]
    assert_error(
        submit(client, tenant_key, body(client_token="tok-1", user_data="changed")), 409, "IdempotencyConflict", "tok-1"
    )


def test_cancel_a_queued_job(client: FlaskClient, tenant_key: AccessKey) -> None:
    job_id = submit(client, tenant_key, body()).get_json()["id"]
    resp = client.post(f"/api/v1/jobs/{job_id}/cancel", headers=auth(tenant_key))
    assert resp.status_code == 200 and resp.get_json()["state"] == "canceled"
    again = client.post(f"/api/v1/jobs/{job_id}/cancel", headers=auth(tenant_key))
    assert again.status_code == 200 and again.get_json()["state"] == "canceled"
    assert_error(client.post("/api/v1/jobs/nope/cancel", headers=auth(tenant_key)), 404, "JobNotFound")


def test_list_filters_and_paging(client: FlaskClient, tenant_key: AccessKey) -> None:
    ids = [submit(client, tenant_key, body()).get_json()["id"] for _ in range(5)]
    client.post(f"/api/v1/jobs/{ids[0]}/cancel", headers=auth(tenant_key))
    page = client.get("/api/v1/jobs?limit=2", headers=auth(tenant_key)).get_json()
    assert [j["id"] for j in page["jobs"]] == ids[::-1][:2] and page["next_page_token"]
    rest = client.get(
        f"/api/v1/jobs?limit=100&page_token={page['next_page_token']}", headers=auth(tenant_key)
    ).get_json()
    assert [j["id"] for j in rest["jobs"]] == ids[::-1][2:]
    canceled = client.get("/api/v1/jobs?state=canceled", headers=auth(tenant_key)).get_json()["jobs"]
    assert [j["id"] for j in canceled] == [ids[0]]
    assert (
        client.get("/api/v1/jobs?pipeline_id=default", headers=auth(tenant_key)).get_json()["jobs"][0]["id"] == ids[-1]
    )
    for query, fragment in [
        ("limit=0", "limit must be in [1, 100]"),
        ("limit=101", "limit must be in [1, 100]"),
        ("state=lost", "state must be one of"),
        ("page_token=%%%", "page_token"),
        ("created_after=yesterday", "ISO 8601"),
    ]:
        assert_error(client.get(f"/api/v1/jobs?{query}", headers=auth(tenant_key)), 400, "InvalidParameter", fragment)


def test_unknown_routes_and_methods_answer_json(client: FlaskClient) -> None:
    assert_error(client.get("/api/v1/nothing"), 404, "NotFound")
    assert_error(client.put("/api/v1/jobs"), 405, "MethodNotAllowed")


def test_wait_returns_202_with_the_job_while_it_is_still_queued(client: FlaskClient, tenant_key: AccessKey) -> None:
    resp = submit(client, tenant_key, body(), query_string={"wait": "0.3"})
    assert resp.status_code == 202 and resp.get_json()["state"] == "submitted"
    assert_error(
        submit(client, tenant_key, body(), query_string={"wait": "11"}),
        400,
        "InvalidParameter",
        "wait must be in [0, 10]",
    )


def test_webhook_url_must_be_http(client: FlaskClient, tenant_key: AccessKey) -> None:
    assert_error(
        submit(client, tenant_key, body(webhook_url="ftp://example.com/x")), 400, "InvalidParameter", "webhook_url"
    )
    assert submit(client, tenant_key, body(webhook_url="https://example.com/hook")).status_code == 202


def test_job_store_outage_is_503_not_500(tmp_path: Path) -> None:
    server = RedisServer(tmp_path / "redis")
    server.start()
    services = build_services(
        Settings(redis_url=server.url, data_dir=tmp_path / "data", secret_keys=(TEST_SECRET_KEY,))
    )
    key = services.credentials.create("acme")
    flask_app = create_app(services.settings, services)
    server.kill()
    resp = flask_app.test_client().post("/api/v1/jobs", json=body(), headers=auth(key))
    assert_error(resp, 503, "ServiceUnavailable")


def test_local_objects_are_readable_with_an_access_key(
    client: FlaskClient, tenant_key: AccessKey, services: Services
) -> None:
    services.objects.put("out", "snap/a/00001.jpg", b"\xff\xd8jpeg", "image/jpeg")
    resp = client.get("/objects/out/snap/a/00001.jpg", headers=auth(tenant_key))
    assert resp.status_code == 200 and resp.data == b"\xff\xd8jpeg" and resp.mimetype == "image/jpeg"
    assert_error(client.get("/objects/out/snap/a/00001.jpg"), 401, "InvalidAccessKey")
    assert_error(client.get("/objects/out/missing.jpg", headers=auth(tenant_key)), 404, "NotFound")
    assert_error(client.get("/objects/out/../../etc/passwd", headers=auth(tenant_key)), 404, "NotFound")


@pytest.mark.parametrize(
    "raw", [b'{"count": Infinity}', b'{"count": NaN}', b'{"time_ms": Infinity}', b'{"width": 1e400}']
)
def test_non_finite_json_numbers_are_400_not_500(client: FlaskClient, tenant_key: AccessKey, raw: bytes) -> None:
    snapshot = raw.decode()
    mode = '"mode": "series", "interval_s": 1, ' if "count" in snapshot else '"mode": "single", '
    payload = (
        '{"input": {"bucket": "media", "key": "in/video.mp4"}, "output": {"bucket": "out", "key": "{Count}.jpg"},'
        ' "snapshot": {' + mode + snapshot[1:] + "}"
    )
    resp = client.post("/api/v1/jobs", data=payload, headers={**auth(tenant_key), "Content-Type": "application/json"})
    assert_error(resp, 400, "InvalidParameter")


def test_unicode_digits_in_query_numbers_are_400(client: FlaskClient, tenant_key: AccessKey) -> None:
    assert_error(client.get("/api/v1/jobs?limit=²", headers=auth(tenant_key)), 400, "InvalidParameter")
    assert_error(client.get("/api/v1/pipelines?page=²", headers=auth(tenant_key)), 400, "InvalidParameter")


@pytest.mark.parametrize("field", ["lines", "columns", "cell_sel_step", "max_sheet_width"])
def test_zero_sprite_values_are_refused_not_replaced_by_defaults(
    client: FlaskClient, tenant_key: AccessKey, field: str
) -> None:
    sprite = {"output": {"bucket": "out", "key": "s/{TileCount}.jpg"}, field: 0}
    resp = submit(client, tenant_key, body(snapshot={"mode": "single", "time_ms": 0, "sprite": sprite}))
    assert_error(resp, 400, "InvalidParameter", field)


def test_s3_outage_at_submission_is_503(redis_url: str, tmp_path: Path, tenant_key: AccessKey) -> None:
    """An S3 server that does not answer is not a missing bucket: 503, not 400 or 500."""
    settings = Settings(
        redis_url=redis_url,
        data_dir=tmp_path / "d",
        storage="s3",
        s3_endpoint=f"127.0.0.1:{free_port()}",
        s3_access_key="k",
        s3_secret_key="s",
        s3_region="us-east-1",
        secret_keys=(TEST_SECRET_KEY,),
    )
    services = build_services(settings)
    services.grants.grant("acme", "*", read=True, write=True)
    resp = create_app(settings, services).test_client().post("/api/v1/jobs", json=body(), headers=auth(tenant_key))
    assert_error(resp, 503, "ServiceUnavailable")
