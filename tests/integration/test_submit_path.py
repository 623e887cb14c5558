"""The submit path's caches and its one round trip, on real redis-servers.

Two app instances share one Redis, as two gunicorn workers (or two API hosts) do: what one of
them changes through the API, the other's caches must not hide from the next submission. The
round trip is counted with MONITOR on a private redis-server: every command a client sent, as
opposed to those a script ran (``client_type == "lua"``).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import redis
from flask.testing import FlaskClient

from app.core.errors import PipelineNotFound
from app.core.jobs import SnapshotJob
from app.core.pipelines import Pipeline, queue_name
from app.core.specs import ObjectRef, OutputTarget, SingleTime, SnapshotSpec
from app.settings import Settings
from app.storage import keys
from app.storage.cache import TtlCache
from app.storage.credentials import AccessKey
from app.storage.jobs import RedisJobRepository
from app.storage.pipelines import RedisPipelineRepository
from app.web import create_app
from app.wiring import Services
from tests.integration.test_api import auth, body
from tests.servers import RedisServer
from tests.stack import fast_settings, make_services


@pytest.fixture
def two_apps(services: Services) -> Iterator[tuple[FlaskClient, FlaskClient, Services]]:
    """(client of app A, client of app B, app B's services): separate object graphs, one Redis."""
    services.objects.put("media", "in/video.mp4", b"\x00" * 64, "video/mp4")
    other = make_services(services.settings)
    assert other.settings.cache_ttl_s >= 1  # the caches are on: what these tests are about
    yield create_app(services.settings, services).test_client(), create_app(other.settings, other).test_client(), other
    other.redis.close()


def test_a_pipeline_paused_in_one_app_is_noticed_by_the_next_submission_in_another(
    two_apps: tuple[FlaskClient, FlaskClient, Services], tenant_key: AccessKey, services: Services
) -> None:
    a, b, b_services = two_apps
    h = auth(tenant_key)
    pid = a.post("/api/v1/pipelines", json={"name": "p"}, headers=h).get_json()["id"]
    first = b.post("/api/v1/jobs", json=body(pipeline_id=pid), headers=h)
    assert first.status_code == 202
    assert b_services.snapshots.submit_pipelines.find(pid) is not None  # B holds it in its cache now
    assert services.redis.llen(queue_name(pid)) == 1  # an active pipeline: sent at once
    assert a.patch(f"/api/v1/pipelines/{pid}", json={"state": "paused"}, headers=h).status_code == 200
    second = b.post("/api/v1/jobs", json=body(pipeline_id=pid), headers=h)
    assert second.status_code == 202  # a paused pipeline accepts jobs and holds them
    assert services.redis.llen(queue_name(pid)) == 1  # ... without sending them: the pause was seen
    assert services.redis.zrange(keys.pending(pid), 0, -1) == [second.get_json()["id"]]
    assert a.patch(f"/api/v1/pipelines/{pid}", json={"state": "active"}, headers=h).status_code == 200
    assert services.redis.llen(queue_name(pid)) == 2  # resumed: the held job goes out


def test_a_pipeline_deleted_in_one_app_is_refused_by_the_next_submission_in_another(
    two_apps: tuple[FlaskClient, FlaskClient, Services], tenant_key: AccessKey, services: Services
) -> None:
    a, b, b_services = two_apps
    h = auth(tenant_key)
    pid = a.post("/api/v1/pipelines", json={"name": "short-lived"}, headers=h).get_json()["id"]
    # B looks the pipeline up (and caches it) for a submission that fails later, so nothing is queued.
    missing = b.post("/api/v1/jobs", json=body(pipeline_id=pid, input={"bucket": "media", "key": "no.mp4"}), headers=h)
    assert missing.get_json()["code"] == "InputNotFound"
    assert b_services.snapshots.submit_pipelines.cache.get(pid) is not None  # stale from now on
    assert a.delete(f"/api/v1/pipelines/{pid}", headers=h).status_code == 204
    assert b_services.snapshots.submit_pipelines.cache.get(pid) is not None  # B was not told
    refused = b.post("/api/v1/jobs", json=body(pipeline_id=pid), headers=h)
    assert refused.status_code == 404 and refused.get_json()["code"] == "PipelineNotFound"
    batch = b.post("/api/v1/jobs:batch", json={"jobs": [body(pipeline_id=pid), body()]}, headers=h).get_json()
    assert [r["status"] for r in batch["results"]] == [404, 202]
    assert not services.redis.exists(keys.pending(pid)) and not services.redis.exists(keys.pipeline(pid))


def test_a_grant_added_in_another_process_works_at_once_and_a_revoked_one_within_the_ttl(
    two_apps: tuple[FlaskClient, FlaskClient, Services], services: Services
) -> None:
    a, b, b_services = two_apps
    newco = services.credentials.create("newco")
    h = auth(newco)
    denied = b.post("/api/v1/jobs", json=body(), headers=h)
    assert denied.status_code == 403
    assert b_services.snapshots.submit_grants.cache.get("newco") == ()  # B cached "no grants"
    services.grants.grant("newco", "media", read=True, write=True)  # through A's repository
    services.grants.grant("newco", "out", read=True, write=True)
    assert b.post("/api/v1/jobs", json=body(), headers=h).status_code == 202  # a denial is re-checked
    services.grants.revoke("newco", "out")
    assert a.post("/api/v1/jobs", json=body(), headers=h).status_code == 403  # A forgot its entry at once
    b_services.snapshots.submit_grants.cache.clear()  # what B's TTL does within OPENMPS_CACHE_TTL_S
    assert b.post("/api/v1/jobs", json=body(), headers=h).status_code == 403


def test_ttl_cache_expires_bounds_its_size_and_never_keeps_misses() -> None:
    now = [0.0]
    cache: TtlCache[str, int] = TtlCache(2.0, max_entries=2, clock=lambda: now[0])
    loads: list[str] = []

    def load(key: str, value: int | None) -> int | None:
        loads.append(key)
        return value

    assert cache.lookup("a", lambda: load("a", 1)) == 1
    assert cache.lookup("a", lambda: load("a", 2)) == 1  # kept
    assert cache.lookup("m", lambda: load("m", None)) is None
    assert cache.lookup("m", lambda: load("m", None)) is None  # a miss is asked again
    now[0] = 2.5
    assert cache.lookup("a", lambda: load("a", 3)) == 3  # expired
    cache.put("b", 4)
    cache.put("c", 5)  # over max_entries: the oldest ("a") goes
    assert cache.get("a") is None and cache.get("b") == 4 and cache.get("c") == 5
    assert loads == ["a", "m", "m", "a"]
    off: TtlCache[str, int] = TtlCache(0.0)
    off.put("a", 1)
    assert off.get("a") is None  # OPENMPS_CACHE_TTL_S=0: nothing kept


# --- one round trip --------------------------------------------------------------------------


class CommandLog:
    """MONITOR on its own connection: the commands clients send (not what scripts run inside)."""

    def __init__(self, url: str) -> None:
        self.client = redis.Redis.from_url(url, decode_responses=True)
        self.sent: list[str] = []
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> CommandLog:
        self._thread.start()
        assert self._ready.wait(5)
        return self

    def _run(self) -> None:
        with self.client.monitor() as monitor:
            self._ready.set()
            while True:
                entry = monitor.next_command()
                if entry["command"] == "ECHO end-of-log":
                    return
                if entry["client_type"] != "lua":
                    self.sent.append(entry["command"].split(" ", 1)[0].upper())

    def __exit__(self, *exc: Any) -> None:
        self.client.echo("end-of-log")
        self._thread.join(5)
        self.client.close()

    def take(self) -> list[str]:
        """What was sent since the last call (the marker below splits the log between steps)."""
        self.client.echo("mark")
        while "ECHO" not in self.sent:
            threading.Event().wait(0.01)
        cut = self.sent.index("ECHO")
        taken, self.sent = self.sent[:cut], self.sent[cut + 1 :]
        return taken


def private_stack(tmp_path: Path) -> tuple[RedisServer, Settings, Services, FlaskClient, AccessKey]:
    server = RedisServer(tmp_path / "redis")
    server.start()
    settings = fast_settings(server.url, tmp_path / "data", throttle_rate=0.0)  # the throttle is its own script
    services = make_services(settings)
    services.objects.put("media", "in/video.mp4", b"\x00" * 64, "video/mp4")
    key = services.credentials.create("acme")
    return server, settings, services, create_app(settings, services).test_client(), key


def test_a_submission_into_a_full_window_is_one_script_call_and_a_batch_too(tmp_path: Path) -> None:
    server, settings, services, client, key = private_stack(tmp_path)
    try:
        h = auth(key)
        with CommandLog(server.url) as log:
            # Cold: the caches fill (access key, pipeline, grants), the window fills and is sent.
            for _ in range(settings.dispatch_window):
                assert client.post("/api/v1/jobs", json=body(), headers=h).status_code == 202
            cold = log.take()
            assert cold.count("EVALSHA") >= settings.dispatch_window and "LPUSH" in cold  # the task messages
            for _ in range(3):
                assert client.post("/api/v1/jobs", json=body(), headers=h).status_code == 202
                assert log.take() == ["EVALSHA"]  # stored, queued and the window checked: one call
            batch = client.post("/api/v1/jobs:batch", json={"jobs": [body()] * 20}, headers=h)
            assert batch.get_json()["accepted"] == 20
            assert log.take() == ["EVALSHA"]
            services.redis.delete(keys.dispatched("default"))  # room in the window again
            assert log.take() == ["DEL"]
            assert client.post("/api/v1/jobs", json=body(), headers=h).status_code == 202
            warm_with_room = log.take()
            assert warm_with_room[0] == "EVALSHA" and warm_with_room.count("EVALSHA") == 1
            assert "LPUSH" in warm_with_room, warm_with_room  # sent after the script stored it: persist, then publish
        assert services.redis.zcard(keys.tenant_jobs("acme")) == settings.dispatch_window + 3 + 20 + 1
    finally:
        services.redis.close()
        server.stop()


def test_the_create_script_refuses_a_job_into_another_tenants_pipeline(redis_client: redis.Redis) -> None:
    """The authoritative check behind the pipeline cache: existence and owner, in the script."""
    pipes = RedisPipelineRepository(redis_client)
    pipes.create(Pipeline(id="theirs", name="t", tenant="globex"))
    pipes.create(Pipeline(id="shared", name="s"))
    repo = RedisJobRepository(redis_client)
    spec = SnapshotSpec(input=ObjectRef("media", "a.mp4"), timing=SingleTime(0), output=OutputTarget("out", "x.jpg"))
    now = datetime.now(tz=UTC)
    into = {
        pid: SnapshotJob(id=f"j-{pid}", tenant="acme", pipeline_id=pid, spec=spec, created_at=now)
        for pid in ("theirs", "shared")
    }
    outcomes = repo.create_many([(into["theirs"], "a"), (into["shared"], "b")])
    assert isinstance(outcomes[0], PipelineNotFound)
    assert outcomes[1] == into["shared"]
    assert not redis_client.exists(keys.job("j-theirs")) and redis_client.exists(keys.job("j-shared"))
    assert redis_client.zrange(keys.pending("theirs"), 0, -1) == []
