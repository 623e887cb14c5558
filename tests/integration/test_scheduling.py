"""Scheduling against a real redis-server, without workers: pipelines through the API, the rank
mapping of priorities, what reaches the Celery queues, and why kombu's own priorities are not used.

The kombu tests drive kombu's real Redis transport (the one Celery uses) to pin down the two
facts the scheduling policy in docs/scheduling.md is built around: on Redis, priority 0 is served
first, and a BRPOP lists every queue's high-priority list before any queue's lower ones.
"""

from __future__ import annotations

import base64
import json
import uuid
from typing import Any

import pytest
import redis
from flask.testing import FlaskClient
from kombu import Connection, Exchange, Queue

from app.core.errors import InvalidParameter, PipelineNotEmpty
from app.core.pipelines import PipelineState, queue_name
from app.core.service import PipelineChanges, SubmitRequest
from app.core.specs import ObjectRef, OutputTarget, SingleTime, SnapshotSpec
from app.core.states import JobState
from app.storage import keys
from app.storage.credentials import AccessKey
from app.web import create_app
from app.wiring import Services
from tests.integration.test_api import auth

SPEC = SnapshotSpec(
    input=ObjectRef("media", "in/video.mp4"), timing=SingleTime(1000), output=OutputTarget("out", "x.jpg")
)
KOMBU_SEP = "\x06\x16"  # kombu's separator between a queue name and its priority step


@pytest.fixture(autouse=True)
def input_object(services: Services) -> None:
    services.objects.put("media", "in/video.mp4", b"\x00" * 64, "video/mp4")


@pytest.fixture
def client(services: Services) -> FlaskClient:
    return create_app(services.settings, services).test_client()


def submit(services: Services, pipeline_id: str, priority: int = 6) -> str:
    return services.snapshots.submit("acme", SubmitRequest(spec=SPEC, pipeline_id=pipeline_id, priority=priority)).id


def celery_messages(services: Services, pipeline_id: str) -> list[dict[str, Any]]:
    """The task messages waiting in a pipeline's Celery queue, oldest first (kombu LPUSHes)."""
    raw = services.redis.lrange(queue_name(pipeline_id), 0, -1)
    return [json.loads(m) for m in reversed(raw)]


def job_of(message: dict[str, Any]) -> str:
    """The job id a Celery (protocol 2) task message carries: body = base64 JSON [args, kwargs, embed]."""
    assert message["properties"]["body_encoding"] == "base64"
    return str(json.loads(base64.b64decode(message["body"]))[0][0])


# --- pipeline management through the native API ------------------------------------------------


def test_pipeline_create_get_update_list_and_delete(client: FlaskClient, tenant_key: AccessKey) -> None:
    h = auth(tenant_key)
    created = client.post(
        "/api/v1/pipelines", headers=h, json={"name": "fast", "resource_class": "gpu", "max_concurrency": 3}
    )
    assert created.status_code == 201, created.get_json()
    p = created.get_json()
    assert (p["name"], p["resource_class"], p["max_concurrency"], p["state"]) == ("fast", "gpu", 3, "active")
    got = client.get(f"/api/v1/pipelines/{p['id']}", headers=h).get_json()
    assert got["depth"] == {"queued": 0, "running": 0}
    patched = client.patch(
        f"/api/v1/pipelines/{p['id']}", headers=h, json={"name": "faster", "state": "paused", "max_concurrency": None}
    ).get_json()
    assert (patched["name"], patched["state"], patched["max_concurrency"]) == ("faster", "paused", None)
    for n in range(3):
        assert client.post("/api/v1/pipelines", headers=h, json={"name": f"p{n}"}).status_code == 201
    paused = client.get("/api/v1/pipelines?state=paused", headers=h).get_json()
    assert [x["id"] for x in paused["pipelines"]] == [p["id"]] and paused["total"] == 1
    page1 = client.get("/api/v1/pipelines?page=1&page_size=3", headers=h).get_json()
    page2 = client.get("/api/v1/pipelines?page=2&page_size=3", headers=h).get_json()
    assert page1["total"] == page2["total"] == 5  # four of ours and the shared default
    assert len(page1["pipelines"]) == 3 and len(page2["pipelines"]) == 2
    assert not {x["id"] for x in page1["pipelines"]} & {x["id"] for x in page2["pipelines"]}
    bad = client.patch(f"/api/v1/pipelines/{p['id']}", headers=h, json={"state": "stopped"})
    assert bad.status_code == 400 and bad.get_json()["code"] == "InvalidParameter"
    assert client.delete(f"/api/v1/pipelines/{p['id']}", headers=h).status_code == 204
    assert client.get(f"/api/v1/pipelines/{p['id']}", headers=h).status_code == 404


def test_delete_is_refused_while_the_pipeline_has_queued_or_running_jobs(
    client: FlaskClient,
    tenant_key: AccessKey,
    services: Services,
) -> None:
    h = auth(tenant_key)
    pid = client.post("/api/v1/pipelines", headers=h, json={"name": "busy"}).get_json()["id"]
    job_id = submit(services, pid)
    resp = client.delete(f"/api/v1/pipelines/{pid}", headers=h)
    assert resp.status_code == 409 and resp.get_json()["code"] == "PipelineNotEmpty", resp.get_json()
    assert "1 queued" in resp.get_json()["message"]
    services.jobs.start(job_id, worker="w", lease_ttl_ms=5000, max_attempts=3)
    with pytest.raises(PipelineNotEmpty, match="1 running"):
        services.snapshots.delete_pipeline("acme", pid)
    services.jobs.finish(job_id, JobState.CANCELED, lease_token=None)
    assert client.delete(f"/api/v1/pipelines/{pid}", headers=h).status_code == 204


def test_queue_depth_counts_queued_and_running(client: FlaskClient, tenant_key: AccessKey, services: Services) -> None:
    h = auth(tenant_key)
    pid = client.post("/api/v1/pipelines", headers=h, json={"name": "d"}).get_json()["id"]
    ids = [submit(services, pid) for _ in range(5)]  # two are dispatched (the window), three pending
    services.jobs.start(ids[0], worker="w", lease_ttl_ms=5000, max_attempts=3)
    assert client.get(f"/api/v1/pipelines/{pid}", headers=h).get_json()["depth"] == {"queued": 4, "running": 1}
    client.post(f"/api/v1/jobs/{ids[4]}/cancel", headers=h)
    assert client.get(f"/api/v1/pipelines/{pid}", headers=h).get_json()["depth"] == {"queued": 3, "running": 1}


# --- priorities: the explicit mapping -------------------------------------------------------------


def test_priority_range_and_rank_order_highest_first_then_fifo(services: Services) -> None:
    pid = services.snapshots.create_pipeline("acme", "ranked", max_concurrency=1).id
    services.snapshots.update_pipeline("acme", pid, PipelineChanges(state=PipelineState.PAUSED))
    submitted = [(submit(services, pid, prio), prio, n) for n, prio in enumerate([6, 1, 10, 6, 10, 3, 1, 9, 6, 2])]
    expected = [jid for jid, _, _ in sorted(submitted, key=lambda s: (-s[1], s[2]))]
    assert services.scheduler.pending_ids(pid) == expected
    for bad in (0, 11):
        with pytest.raises(InvalidParameter, match="priority"):
            submit(services, pid, bad)


def test_task_messages_carry_no_kombu_priority_and_each_queue_holds_only_the_window(services: Services) -> None:
    """Every message lands on the pipeline's base list (priority step 0): all equal, so kombu
    cannot reorder them; ranking happened in the pending set and only ``window`` are out."""
    a = services.snapshots.create_pipeline("acme", "A").id
    b = services.snapshots.create_pipeline("acme", "B").id
    flood = [submit(services, a, 10) for _ in range(50)]
    low = submit(services, b, 1)
    window = services.settings.dispatch_window
    assert [job_of(m) for m in celery_messages(services, a)] == flood[:window]
    assert [job_of(m) for m in celery_messages(services, b)] == [low]
    assert not [k for k in services.redis.keys("openmps.pipeline.*") if KOMBU_SEP in k]
    assert {m["properties"].get("priority") for m in celery_messages(services, a)} <= {None, 0}
    assert services.scheduler.depth(a).queued == 50


# --- why not kombu's priorities: its Redis transport, measured ----------------------------------


def consume_order(redis_url: str, published: list[tuple[str, str, int | None]], queue_names: list[str]) -> list[str]:
    """Publish (queue, body, priority) messages, then consume all of them from ``queue_names``
    with one round-robin consumer (Celery's setting), returning the bodies in delivery order."""
    opts = {"queue_order_strategy": "round_robin"}
    queues = {n: Queue(n, Exchange(n, type="direct"), routing_key=n) for n in queue_names}
    got: list[str] = []

    def on_message(body: str, message: Any) -> None:
        got.append(body)
        message.ack()

    with Connection(redis_url, transport_options=opts) as conn:
        with conn.Producer() as producer:
            for qname, body, priority in published:
                producer.publish(
                    body, routing_key=qname, exchange=queues[qname].exchange, declare=[queues[qname]], priority=priority
                )
        with conn.Consumer(list(queues.values()), callbacks=[on_message], prefetch_count=1):
            while len(got) < len(published):
                conn.drain_events(timeout=5)
    return got


def test_on_redis_kombu_priority_0_is_served_first(redis_url: str) -> None:
    """The reverse of AMQP: a naive MPS 10 -> kombu 9 mapping would serve urgent jobs last."""
    q = f"q-{uuid.uuid4().hex[:6]}"
    order = consume_order(redis_url, [(q, "nine", 9), (q, "zero", 0), (q, "six", 6)], [q])
    assert order == ["zero", "six", "nine"]


def test_kombu_priorities_starve_another_queue_but_equal_priorities_alternate(redis_url: str) -> None:
    """Pipeline A floods high-priority messages, pipeline B has one ordinary job. With kombu
    priorities B waits for the whole flood (BRPOP lists every queue's priority-0 list first);
    with equal priorities the round-robin serves B second. This is why openmps sends no kombu
    priority and keeps each pipeline's queue to its dispatch window."""
    a, b = f"A-{uuid.uuid4().hex[:6]}", f"B-{uuid.uuid4().hex[:6]}"
    flood = [(a, f"a{n}", 0) for n in range(20)]
    with_priorities = consume_order(redis_url, [*flood, (b, "b", 6)], [a, b])
    assert with_priorities.index("b") == 20  # starved: served after all twenty A messages
    equal = consume_order(redis_url, [*[(a, f"a{n}", None) for n in range(20)], (b, "b", None)], [a, b])
    assert equal.index("b") <= 1
    assert redis.Redis.from_url(redis_url).llen(a) == 0


def test_canceling_dispatched_jobs_refills_the_window_at_once(services: Services) -> None:
    pid = services.snapshots.create_pipeline("acme", "w").id
    ids = [submit(services, pid) for _ in range(5)]
    window = services.settings.dispatch_window
    assert [job_of(m) for m in celery_messages(services, pid)] == ids[:window]
    for job_id in ids[:window]:
        services.snapshots.cancel("acme", job_id)
    assert [job_of(m) for m in celery_messages(services, pid)][window:] == ids[window : 2 * window]
    assert set(services.redis.zrange(keys.dispatched(pid), 0, -1)) == set(ids[window : 2 * window])


def test_reconcile_resends_only_messages_missing_from_the_broker(services: Services) -> None:
    """A pipeline nobody consumes keeps its messages waiting: no duplicates pile up. A message
    that vanished from the broker (lost with a crashed consumer) is re-sent."""
    p = services.snapshots.create_pipeline("acme", "unconsumed")
    ids = [submit(services, p.id) for _ in range(3)]
    window = services.settings.dispatch_window
    assert [job_of(m) for m in celery_messages(services, p.id)] == ids[:window]
    services.scheduler.stale_dispatch_ms = 0  # every dispatched message counts as stale now
    assert services.scheduler.reconcile([p.id]).resent_dispatched == 0
    assert len(celery_messages(services, p.id)) == window
    services.redis.delete(queue_name(p.id))  # the broker lost them
    assert services.scheduler.reconcile([p.id]).resent_dispatched == window
    assert sorted(job_of(m) for m in celery_messages(services, p.id)) == sorted(ids[:window])
