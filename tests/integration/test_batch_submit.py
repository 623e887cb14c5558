"""``POST /api/v1/jobs:batch`` on a real redis-server: each job accepted or refused on its own.

No worker runs: accepted jobs are checked in the store (stored, queued in their pipeline, the
first ``OPENMPS_DISPATCH_WINDOW`` of them sent to the pipeline's Celery queue).
"""

from __future__ import annotations

from typing import Any

import pytest
from flask.testing import FlaskClient

from app.core.pipelines import DEFAULT_PIPELINE_ID, queue_name
from app.storage import keys
from app.storage.credentials import AccessKey
from app.web import create_app
from app.wiring import Services
from tests.integration.test_api import auth, body


@pytest.fixture
def client(services: Services) -> FlaskClient:
    services.objects.put("media", "in/video.mp4", b"\x00" * 64, "video/mp4")
    return create_app(services.settings, services).test_client()


def post_batch(client: FlaskClient, key: AccessKey, jobs: Any, **kw: Any) -> Any:
    return client.post("/api/v1/jobs:batch", json={"jobs": jobs}, headers=auth(key), **kw)


def results(resp: Any) -> list[dict[str, Any]]:
    assert resp.status_code == 200, resp.get_data(as_text=True)
    data = resp.get_json()
    assert [r["index"] for r in data["results"]] == list(range(len(data["results"])))
    assert data["accepted"] + data["refused"] == len(data["results"])
    assert data["accepted"] == sum(1 for r in data["results"] if r["status"] == 202)
    return list(data["results"])


def test_valid_jobs_are_stored_and_dispatched_and_invalid_ones_refused_each_with_its_own_error(
    client: FlaskClient, tenant_key: AccessKey, services: Services
) -> None:
    jobs = [
        body(user_data="a"),
        {"output": {"bucket": "out", "key": "x.jpg"}},  # no input: refused while parsing
        body(user_data="c", priority=11),  # refused by the use case's checks
        body(user_data="d", input={"bucket": "media", "key": "missing.mp4"}),  # refused: no such input
        body(user_data="e"),
        body(user_data="f", output={"bucket": "nosuchbucket", "key": "x.jpg"}),  # refused: no grant on it
        body(user_data="g"),
    ]
    out = results(post_batch(client, tenant_key, jobs))
    assert [r["status"] for r in out] == [202, 400, 400, 400, 202, 403, 202]
    assert out[1]["error"]["code"] == "InvalidParameter" and "input" in out[1]["error"]["message"]
    assert out[2]["error"]["code"] == "InvalidParameter" and "priority" in out[2]["error"]["message"]
    assert out[3]["error"]["code"] == "InputNotFound"
    assert out[5]["error"]["code"] == "AccessDenied" and "nosuchbucket" in out[5]["error"]["message"]
    accepted = [r["job"] for r in out if r["status"] == 202]
    assert [j["user_data"] for j in accepted] == ["a", "e", "g"]
    for job in accepted:
        stored = services.snapshots.get("acme", job["id"])
        assert stored.state.value == "submitted" and stored.user_data == job["user_data"]
        assert client.get(f"/api/v1/jobs/{job['id']}", headers=auth(tenant_key)).status_code == 200
    # The first window's worth sent to Celery by the batch's own create script, the rest pending in order.
    window = services.settings.dispatch_window
    ids = [j["id"] for j in accepted]
    assert set(services.redis.zrange(keys.dispatched(DEFAULT_PIPELINE_ID), 0, -1)) == set(ids[:window])
    assert services.redis.zrange(keys.pending(DEFAULT_PIPELINE_ID), 0, -1) == ids[window:]
    assert services.redis.llen(queue_name(DEFAULT_PIPELINE_ID)) == min(window, len(accepted))
    assert services.redis.zcard(keys.tenant_jobs("acme")) == len(accepted)


def test_a_malformed_batch_is_refused_whole_and_stores_nothing(
    client: FlaskClient, tenant_key: AccessKey, services: Services
) -> None:
    h = auth(tenant_key)
    for payload in ({"jobs": []}, {"jobs": [body()] * 101}, {"jobs": body()}, [body()], {"jobs": [body()], "x": 1}):
        resp = client.post("/api/v1/jobs:batch", json=payload, headers=h)
        assert resp.status_code == 400, (payload, resp.get_json())
        assert resp.get_json()["code"] == "InvalidParameter"
    resp = client.post("/api/v1/jobs:batch", json={"jobs": [body()]}, headers={**h, "Idempotency-Key": "k"})
    assert resp.status_code == 400 and "client_token" in resp.get_json()["message"]
    assert client.post("/api/v1/jobs:batch", json={"jobs": [body()]}).status_code == 401
    assert services.redis.zcard(keys.tenant_jobs("acme")) == 0
    assert len(results(post_batch(client, tenant_key, [body()] * 100))) == 100  # the limit itself is fine


def test_client_tokens_are_honoured_within_and_across_batches(
    client: FlaskClient, tenant_key: AccessKey, services: Services
) -> None:
    first = results(
        post_batch(
            client,
            tenant_key,
            [
                body(client_token="t1", user_data="x"),
                body(client_token="t1", user_data="x"),  # the same request again: the same job
                body(client_token="t1", user_data="other"),  # the same token, another request
                body(client_token="t2"),
            ],
        )
    )
    assert [r["status"] for r in first] == [202, 202, 409, 202]
    assert first[0]["job"]["id"] == first[1]["job"]["id"] != first[3]["job"]["id"]
    assert first[2]["error"]["code"] == "IdempotencyConflict"
    again = results(post_batch(client, tenant_key, [body(client_token="t2"), body(client_token="t1", user_data="x")]))
    assert again[0]["job"]["id"] == first[3]["job"]["id"]
    assert again[1]["job"]["id"] == first[0]["job"]["id"]
    single = client.post("/api/v1/jobs", json=body(client_token="t2"), headers=auth(tenant_key))
    assert single.get_json()["id"] == first[3]["job"]["id"]
    assert services.redis.zcard(keys.tenant_jobs("acme")) == 2


def test_another_tenants_pipeline_is_refused_per_job(
    client: FlaskClient, tenant_key: AccessKey, services: Services
) -> None:
    other = services.credentials.create("globex")
    services.grants.grant("globex", "media", read=True, write=True)
    services.grants.grant("globex", "out", read=True, write=True)
    theirs = client.post("/api/v1/pipelines", json={"name": "globex-only"}, headers=auth(other)).get_json()["id"]
    mine = client.post("/api/v1/pipelines", json={"name": "acme-own"}, headers=auth(tenant_key)).get_json()["id"]
    out = results(
        post_batch(
            client,
            tenant_key,
            [body(pipeline_id=theirs), body(pipeline_id=mine), body(pipeline_id="nonexistent"), body()],
        )
    )
    assert [r["status"] for r in out] == [404, 202, 404, 202]
    assert out[0]["error"]["code"] == out[2]["error"]["code"] == "PipelineNotFound"
    assert out[0]["error"]["message"] == f"pipeline {theirs!r} does not exist"  # as if it did not exist
    assert out[1]["job"]["pipeline_id"] == mine
    assert services.redis.zcard(keys.tenant_jobs("globex")) == 0
    assert services.scheduler.depth(theirs).queued == 0
    # The other tenant's grants do not leak either: acme has none on globex's bucket.
    services.objects.make_bucket("globex-private")
    services.grants.grant("globex", "globex-private", read=True, write=True)
    denied = results(post_batch(client, tenant_key, [body(output={"bucket": "globex-private", "key": "x.jpg"})]))
    assert denied[0]["status"] == 403 and denied[0]["error"]["code"] == "AccessDenied"
