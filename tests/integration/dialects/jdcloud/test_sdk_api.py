"""jdcloud-sdk, unmodified, against a served openmps (no worker: tasks stay PENDDING here):
create/get/list with marker paging, notifications, and every refusal in JD's codes and statuses,
through the current SDK (JDCLOUD3) and 1.6.50 (JDCLOUD2)."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import redis
import requests
from jdcloud_sdk.core.credential import Credential
from jdcloud_sdk.core.logger import ERROR, Logger
from jdcloud_sdk.core.signer import Signer
from jdcloud_sdk.services.mps.apis.CreateThumbnailTaskRequest import (
    CreateThumbnailTaskParameters,
    CreateThumbnailTaskRequest,
)
from jdcloud_sdk.services.mps.apis.GetNotificationRequest import GetNotificationParameters, GetNotificationRequest
from jdcloud_sdk.services.mps.apis.GetThumbnailTaskRequest import GetThumbnailTaskParameters, GetThumbnailTaskRequest
from jdcloud_sdk.services.mps.apis.ListThumbnailTaskRequest import ListThumbnailTaskParameters, ListThumbnailTaskRequest
from jdcloud_sdk.services.mps.apis.SetNotificationRequest import SetNotificationParameters, SetNotificationRequest
from jdcloud_sdk.services.mps.models.ThumbnailTaskRule import ThumbnailTaskRule
from jdcloud_sdk.services.mps.models.ThumbnailTaskSource import ThumbnailTaskSource
from jdcloud_sdk.services.mps.models.ThumbnailTaskTarget import ThumbnailTaskTarget

from app.core.service import SubmitRequest
from app.core.specs import ObjectRef, OutputTarget, SingleTime, SnapshotSpec
from app.web import create_app
from tests.integration.dialects.jdcloud.conftest import TENANT, Served
from tests.integration.dialects.jdcloud.sdk import AK, REGION, SK, client, run_old_sdk
from tests.servers import RedisServer, serve_wsgi
from tests.stack import fast_settings, make_services


def _video(served: Served) -> str:
    key = f"in/{uuid.uuid4().hex[:8]} clip.mp4"
    served.services.objects.put("media", key, b"not decoded here: no worker runs in this module", "video/mp4")
    return key


def _create(served: Served, key: str, **kw: Any) -> Any:
    rule = kw.pop("rule", None)
    params = CreateThumbnailTaskParameters(REGION, ThumbnailTaskSource("media", key), ThumbnailTaskTarget("out", **kw))
    if rule is not None:
        params.setRule(rule)
    return client(served.url).send(CreateThumbnailTaskRequest(params))


def _get(served: Served, task_id: str, **kw: Any) -> Any:
    return client(served.url, **kw).send(GetThumbnailTaskRequest(GetThumbnailTaskParameters(REGION, task_id)))


def _list(served: Served, **filters: Any) -> Any:
    params = ListThumbnailTaskParameters(REGION)
    for name, value in filters.items():
        getattr(params, "set" + name[0].upper() + name[1:])(value)
    return client(served.url).send(ListThumbnailTaskRequest(params))


def _error(resp: Any) -> tuple[int, str, str]:
    assert resp.request_id and resp.result is None and resp.error is not None
    return resp.error.code, resp.error.status, resp.error.message


def test_create_then_get_echoes_the_task(served: Served) -> None:
    key = _video(served)
    created = _create(
        served,
        key,
        destKeyPrefix="thumbs/x",
        format="png",
        widthInPixel=320,
        rule=ThumbnailTaskRule(mode="multi", keyFrame=False, startTimeInSecond=1, endTimeInSecond=3, count=2),
    )
    assert created.error is None and created.request_id and set(created.result) == {"taskID"}
    task = _get(served, created.result["taskID"]).result
    assert task["taskID"] == created.result["taskID"] and task["status"] == "PENDDING" and task["errorCode"] == 0
    assert task["source"] == {"bucket": "media", "key": key}
    assert task["target"] == {
        "destBucket": "out",
        "destKeyPrefix": "thumbs/x",
        "format": "png",
        "widthInPixel": 320,
        "heightInPixel": 0,
        "keys": [],
    }
    assert task["rule"] == {
        "mode": "multi",
        "keyFrame": False,
        "startTimeInSecond": 1,
        "endTimeInSecond": 3,
        "count": 2,
    }
    created_at = datetime.strptime(task["createdTime"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
    assert abs((datetime.now(tz=UTC) - created_at).total_seconds()) < 30
    # A multi task over the whole video reads back as multi, though it plans like average.
    whole = _create(served, key, rule=ThumbnailTaskRule(mode="multi", count=3)).result["taskID"]
    assert _get(served, whole).result["rule"]["mode"] == "multi"
    # Plain dicts work as well as the SDK's models; the prefix defaults to the source key.
    params = {"regionId": REGION, "source": {"bucket": "media", "key": key}, "target": {"destBucket": "out"}}
    dict_task = client(served.url).send(CreateThumbnailTaskRequest(params)).result["taskID"]
    got = _get(served, dict_task).result
    assert got["target"]["destKeyPrefix"] == key and got["target"]["format"] == "jpg"
    assert got["rule"] == {"mode": "single", "keyFrame": True, "startTimeInSecond": 0}


def test_list_pages_by_marker_newest_first(served: Served) -> None:
    key = _video(served)
    time.sleep(0.01)  # begin at the first task's millisecond: no other test's task is in the window
    ids = []
    for _ in range(5):
        ids.append(_create(served, key, destKeyPrefix="page").result["taskID"])
        time.sleep(0.002)  # distinct milliseconds are not required, but make the order certain
    stamp = _get(served, ids[0]).result["createdTime"]
    begin = datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
    seen: list[str] = []
    marker = ""
    pages = 0
    while True:
        resp = _list(served, begin=stamp, marker=marker, limit=2)
        assert resp.error is None, vars(resp.error)
        page = resp.result
        pages += 1
        assert page["limit"] == 2 and page["begin"] == stamp and page["marker"] == marker
        seen += [t["taskID"] for t in page["taskList"]]
        if not page["truncated"]:
            assert "nextMarker" not in page
            break
        marker = page["nextMarker"]
        assert marker == ids[::-1][len(seen)]  # the next page starts at that task
    assert seen == ids[::-1] and pages == 3
    assert {t["status"] for t in _list(served, begin=stamp, status="PENDDING").result["taskList"]} == {"PENDDING"}
    assert _list(served, begin=stamp, status="SUCCESS").result["taskList"] == []
    early = (begin - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    assert _list(served, begin=early, end=early).result["taskList"] == []
    assert _error(_list(served, marker="no-such-task"))[:2] == (400, "INVALID_ARGUMENT")
    assert _error(_list(served, limit=1001))[:2] == (400, "INVALID_ARGUMENT")
    assert _error(_list(served, status="DONE"))[:2] == (400, "INVALID_ARGUMENT")


def test_other_dialects_jobs_are_not_jd_tasks(served: Served) -> None:
    key = _video(served)
    spec = SnapshotSpec(ObjectRef("media", key), SingleTime(0), OutputTarget("out", "native/{job_id}.jpg"))
    native = served.services.snapshots.submit(TENANT, SubmitRequest(spec))
    assert _error(_get(served, native.id))[:2] == (404, "NOT_FOUND")
    listed = [t["taskID"] for t in _list(served).result["taskList"]]
    assert native.id not in listed and listed


def test_refusals_in_jd_codes(served: Served) -> None:
    key = _video(served)
    task = _create(served, key).result["taskID"]
    code, status, message = _error(_get(served, task, secret="wrong secret"))
    assert (code, status) == (401, "UNAUTHENTICATED") and "signature" in message
    assert _error(_get(served, task, key_id="noSuchKey"))[:2] == (401, "UNAUTHENTICATED")
    assert _error(_get(served, "0" * 32))[:2] == (404, "NOT_FOUND")
    code, status, message = _error(_create(served, "in/missing.mp4"))
    assert (code, status) == (404, "NOT_FOUND") and "in/missing.mp4" in message
    code, status, message = _error(_create(served, key, widthInPixel=5000))
    assert (code, status) == (400, "INVALID_ARGUMENT") and message.startswith("target.widthInPixel")
    code, _, message = _error(_create(served, key, rule=ThumbnailTaskRule(mode="single", count=3)))
    assert code == 400 and message.startswith("rule.count")
    code, _, message = _error(_create(served, key, rule=ThumbnailTaskRule(mode="average", startTimeInSecond=3)))
    assert code == 400 and message.startswith("rule.startTimeInSecond")

    def to_other_bucket() -> tuple[int, str, str]:
        params = CreateThumbnailTaskParameters(
            REGION, ThumbnailTaskSource("media", key), ThumbnailTaskTarget("no-such-bucket")
        )
        return _error(client(served.url).send(CreateThumbnailTaskRequest(params)))

    code, status, _ = to_other_bucket()  # no grant on it: refused before anyone learns whether it exists
    assert (code, status) == (403, "HTTP_FORBIDDEN")
    served.services.grants.grant(TENANT, "no-such-bucket", write=True)
    code, _, message = to_other_bucket()
    assert code == 400 and message.startswith("target.destBucket")


def test_a_replayed_nonce_and_a_stale_date_are_refused(served: Served) -> None:
    task = _create(served, _video(served)).result["taskID"]
    nonce = str(uuid.uuid4())
    request = GetThumbnailTaskRequest(GetThumbnailTaskParameters(REGION, task), header={"x-jdcloud-nonce": nonce})
    assert client(served.url).send(request).result["taskID"] == task
    again = GetThumbnailTaskRequest(GetThumbnailTaskParameters(REGION, task), header={"x-jdcloud-nonce": nonce})
    code, status, message = _error(client(served.url).send(again))
    assert (code, status) == (401, "UNAUTHENTICATED") and "nonce" in message
    for minutes in (-16, 16):
        stale = (datetime.now(tz=UTC) + timedelta(minutes=minutes)).strftime("%Y%m%dT%H%M%SZ")
        old = GetThumbnailTaskRequest(GetThumbnailTaskParameters(REGION, task), header={"x-jdcloud-date": stale})
        assert _error(client(served.url).send(old))[:2] == (401, "UNAUTHENTICATED")
    fresh = (datetime.now(tz=UTC) - timedelta(minutes=10)).strftime("%Y%m%dT%H%M%SZ")
    ok = GetThumbnailTaskRequest(GetThumbnailTaskParameters(REGION, task), header={"x-jdcloud-date": fresh})
    assert client(served.url).send(ok).result["taskID"] == task


def _signed(
    url: str, method: str, path: str, body: str = "", headers: dict[str, str] | None = None
) -> requests.Response:
    """A request signed by the SDK's own signer but sent by hand (bodies the SDK never sends)."""
    h = {"Content-Type": "application/json", **(headers or {})}
    Signer(Logger(ERROR)).sign(
        method=method,
        service="mps",
        region=REGION,
        uri=url + path,
        headers=h,
        data=body,
        credential=Credential(AK, SK),
        security_token="",
    )
    return requests.request(method, url + path, data=body.encode("utf-8"), headers=h, timeout=10, allow_redirects=False)


def _envelope(resp: requests.Response, code: int, status: str) -> str:
    assert resp.status_code == code, resp.text
    assert resp.headers["Content-Type"].startswith("application/json")
    data = resp.json()
    assert data["requestId"] and resp.headers["x-jdcloud-request-id"] == data["requestId"]
    assert data["error"]["code"] == code and data["error"]["status"] == status, data
    return str(data["error"]["message"])


def test_every_failure_is_a_jd_envelope(served: Served) -> None:
    base = "/v1/regions/cn-north-1"
    _envelope(_signed(served.url, "POST", f"{base}/thumbnail", "{not json"), 400, "INVALID_ARGUMENT")
    _envelope(_signed(served.url, "POST", f"{base}/thumbnail", ""), 400, "INVALID_ARGUMENT")
    _envelope(_signed(served.url, "POST", f"{base}/thumbnail", '{"source": NaN}'), 400, "INVALID_ARGUMENT")
    _envelope(_signed(served.url, "POST", f"{base}/thumbnail", "[]"), 400, "INVALID_ARGUMENT")
    _envelope(_signed(served.url, "POST", f"{base}/thumbnail", "[" * 100_000), 400, "INVALID_ARGUMENT")
    _envelope(_signed(served.url, "POST", f"{base}/thumbnail", '{"source": 1e400}'), 400, "INVALID_ARGUMENT")
    _envelope(_signed(served.url, "PUT", f"{base}/notification", '"on"'), 400, "INVALID_ARGUMENT")
    _envelope(_signed(served.url, "GET", f"{base}/transcode"), 404, "NOT_FOUND")
    _envelope(_signed(served.url, "GET", "/v1/regions"), 404, "NOT_FOUND")
    _envelope(_signed(served.url, "DELETE", f"{base}/thumbnail/abc"), 405, "HTTP_METHOD_NOT_ALLOWED")
    _envelope(_signed(served.url, "POST", f"{base}/thumbnail", "{" + " " * (2 << 20) + "}"), 413, "OUT_OF_RANGE")
    unsigned = requests.get(served.url + f"{base}/thumbnail", timeout=10)
    assert "Authorization" in _envelope(unsigned, 401, "UNAUTHENTICATED")
    tampered = _signed(served.url, "GET", f"{base}/thumbnail", headers={"x-jdcloud-content-sha256": "0" * 64})
    _envelope(tampered, 401, "UNAUTHENTICATED")


def test_a_crash_and_an_unreachable_store_are_jd_envelopes(served: Served, monkeypatch: pytest.MonkeyPatch) -> None:
    def crash(*args: object) -> None:
        raise RuntimeError("boom")

    def unreachable(*args: object) -> None:
        raise redis.exceptions.ConnectionError("no route")

    monkeypatch.setattr(served.services.snapshots, "list_jobs", crash)
    assert _error(_list(served)) == (500, "INTERNAL", "the server failed to process the request; it was logged")
    monkeypatch.setattr(served.services.snapshots, "list_jobs", unreachable)
    assert _error(_list(served))[:2] == (503, "UNAVAILABLE")


def test_throttling_is_rate_limit(served: Served, redis_server: RedisServer) -> None:
    settings = fast_settings(redis_server.url, served.tmp / "throttled", throttle_rate=0.01, throttle_burst=1)
    services = make_services(settings)
    services.credentials.create(TENANT, key_id="throttledKey", secret=SK)
    server, url = serve_wsgi(create_app(settings, services))
    try:
        get = GetNotificationRequest(GetNotificationParameters(REGION))
        assert client(url, key_id="throttledKey").send(get).error is None
        resp = client(url, key_id="throttledKey").send(get)
        assert _error(resp)[:2] == (429, "RATE_LIMIT")
    finally:
        server.shutdown()
        server.server_close()
        services.redis.close()


def test_notification_settings_round_trip(served: Served) -> None:
    get = GetNotificationRequest(GetNotificationParameters(REGION))
    assert client(served.url).send(get).result == {"enabled": False}
    params = SetNotificationParameters(REGION, True)
    params.setEndpoint("http://127.0.0.1:9/jd-events")
    params.setEvents(["mpsThumbnailComplete"])
    params.setNotifyStrategy("EXPONENTIAL_DECAY_RETRY")
    params.setNotifyContentFormat("JSON")
    done = client(served.url).send(SetNotificationRequest(params))
    assert done.error is None and done.request_id and done.result is None
    assert client(served.url).send(get).result == {
        "enabled": True,
        "endpoint": "http://127.0.0.1:9/jd-events",
        "events": ["mpsThumbnailComplete"],
        "notifyStrategy": "EXPONENTIAL_DECAY_RETRY",
        "notifyContentFormat": "JSON",
    }
    bad = SetNotificationParameters(REGION, True)
    bad.setEndpoint("ftp://127.0.0.1/x")
    code, _, message = _error(client(served.url).send(SetNotificationRequest(bad)))
    assert code == 400 and message.startswith("endpoint")
    bad.setEndpoint("http://127.0.0.1:9/x")
    bad.setNotifyStrategy("FOREVER")
    assert _error(client(served.url).send(SetNotificationRequest(bad)))[0] == 400
    off = client(served.url).send(SetNotificationRequest(SetNotificationParameters(REGION, False)))
    assert off.error is None and client(served.url).send(get).result["enabled"] is False


def test_the_1_6_50_sdk_signs_jdcloud2(served: Served) -> None:
    key = _video(served)
    out = run_old_sdk(
        served.url,
        f"""
        from jdcloud_sdk.services.mps.apis.CreateThumbnailTaskRequest import CreateThumbnailTaskRequest, CreateThumbnailTaskParameters
        from jdcloud_sdk.services.mps.apis.GetThumbnailTaskRequest import GetThumbnailTaskRequest, GetThumbnailTaskParameters
        from jdcloud_sdk.services.mps.apis.ListThumbnailTaskRequest import ListThumbnailTaskRequest, ListThumbnailTaskParameters
        from jdcloud_sdk.services.mps.apis.GetNotificationRequest import GetNotificationRequest, GetNotificationParameters
        from jdcloud_sdk.services.mps.models.ThumbnailTaskSource import ThumbnailTaskSource
        from jdcloud_sdk.services.mps.models.ThumbnailTaskTarget import ThumbnailTaskTarget
        from jdcloud_sdk.services.mps.models.ThumbnailTaskRule import ThumbnailTaskRule
        p = CreateThumbnailTaskParameters({REGION!r}, ThumbnailTaskSource("media", {key!r}), ThumbnailTaskTarget("out", destKeyPrefix="old"))
        p.setRule(ThumbnailTaskRule(mode="average", count=2))
        created = client.send(CreateThumbnailTaskRequest(p))
        task = client.send(GetThumbnailTaskRequest(GetThumbnailTaskParameters({REGION!r}, created.result["taskID"])))
        lp = ListThumbnailTaskParameters({REGION!r}); lp.setMarker(""); lp.setLimit(1); lp.setStatus("PENDING")
        lp.setBegin("2020-01-01T00:00:00.000Z")
        listed = client.send(ListThumbnailTaskRequest(lp))
        bad = MpsClient(Credential({AK!r}, "wrong"), client._JDCloudClient__config, Logger(ERROR))
        refused = bad.send(GetNotificationRequest(GetNotificationParameters({REGION!r})))
        out = {{"task": task.result, "listed": listed.result, "refused": [refused.error.code, refused.error.status]}}
        """,
    )
    assert out["task"]["status"] == "PENDDING" and out["task"]["rule"] == {
        "mode": "average",
        "keyFrame": True,
        "count": 2,
    }
    assert out["task"]["target"]["destKeyPrefix"] == "old"
    assert out["listed"]["limit"] == 1 and len(out["listed"]["taskList"]) == 1 and out["listed"]["truncated"] is True
    assert out["refused"] == [401, "UNAUTHENTICATED"]


def test_jd_claims_only_its_own_paths(served: Served) -> None:
    assert requests.get(served.url + "/v1/some-project/thumbnails", timeout=10).json().get("requestId") is None
    assert requests.get(served.url + "/api/v1/jobs", timeout=10).json().get("requestId") is None
