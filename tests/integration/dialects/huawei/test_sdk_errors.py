"""Huawei's errors as its SDK surfaces them: ``ClientRequestException`` / ``ServerResponseException``
with MPC's codes (``MPC.10202`` invalid parameter, ``MPC.10053`` missing input, ``MPC.10212``
operation failed, ...) and the API gateway's for what never reaches the service (``APIGW.0301``
authentication, ``APIGW.0101`` no such API, ``APIGW.0201`` oversized, ``APIGW.0308`` throttled),
each with its HTTP status and an ``X-Request-Id``. No worker: nothing here gets as far as a frame.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from huaweicloudsdkcore.auth.credentials import BasicCredentials
from huaweicloudsdkcore.exceptions.exceptions import ClientRequestException, ServerResponseException
from huaweicloudsdkmpc.v1 import (
    CreateThumbnailsTaskRequest,
    CreateThumbReq,
    DeleteThumbnailsTaskRequest,
    ListThumbnailsTaskRequest,
    MpcAsyncClient,
    MpcClient,
    ObsObjInfo,
    ThumbnailPara,
)

from app.web import create_app
from tests.integration.dialects.huawei.conftest import AK, PROJECT, SK, Stack, signed_request
from tests.servers import serve_wsgi
from tests.stack import fast_settings, make_services

PATH = f"/v1/{PROJECT}/thumbnails"


@pytest.fixture(scope="module")
def client(stack: Stack) -> MpcClient:
    return stack.client()


def refused(call: Callable[[], Any], status: int, code: str, kind: type = ClientRequestException) -> Any:
    with pytest.raises(kind) as info:
        call()
    err = info.value
    assert (err.status_code, err.error_code) == (status, code), err.error_msg
    assert err.request_id  # X-Request-Id on every answer
    return err


def create_call(client: MpcClient, para: dict[str, Any] | None = None, **body: Any) -> Callable[[], Any]:
    fields: dict[str, Any] = {
        "input": ObsObjInfo(bucket="media", object="in/v.mp4"),
        "output": ObsObjInfo(bucket="out", object="thumbs"),
        "thumbnail_para": ThumbnailPara(**(para if para is not None else {"type": "DOTS", "dots": [1]})),
        **body,
    }
    return lambda: client.create_thumbnails_task(CreateThumbnailsTaskRequest(body=CreateThumbReq(**fields)))


def test_bad_signature_and_unknown_key(stack: Stack) -> None:
    for ak, sk in ((AK, "not the secret"), ("noSuchKey", SK)):
        other = stack.client(ak, sk)
        err = refused(lambda: other.list_thumbnails_task(ListThumbnailsTaskRequest()), 401, "APIGW.0301")  # noqa: B023
        assert "verify aksk signature fail" in err.error_msg


def test_stale_date(stack: Stack, client: MpcClient) -> None:
    """The SDK dates every request now; the server's clock 20 minutes ahead makes it stale."""
    gate = stack.gate
    real_clock = gate.clock
    gate.clock = lambda: datetime.now(tz=UTC) + timedelta(minutes=20)
    try:
        err = refused(lambda: client.list_thumbnails_task(ListThumbnailsTaskRequest()), 401, "APIGW.0301")
        assert "signature expired" in err.error_msg
    finally:
        gate.clock = real_clock
    assert client.list_thumbnails_task(ListThumbnailsTaskRequest()).status_code == 200


@pytest.mark.parametrize(
    ("para", "body", "field"),
    [
        ({"type": "DOTS", "dots": list(range(11))}, {}, "thumbnail_para.dots"),
        ({"type": "DOTS"}, {}, "thumbnail_para.dots"),
        ({"type": "DOTS", "dots": [-1]}, {}, "thumbnail_para.dots[0]"),
        ({"type": "FRAMES"}, {}, "thumbnail_para.type"),
        ({"type": "TIME", "time": 0}, {}, "thumbnail_para.time"),
        ({"type": "TIME", "time": 101}, {}, "thumbnail_para.time"),
        ({"type": "DOTS", "dots": [1], "width": 96}, {}, "thumbnail_para.width"),
        ({"type": "DOTS", "dots": [1], "height": 2161}, {}, "thumbnail_para.height"),
        ({"type": "DOTS", "dots": [1], "max_length": 100}, {}, "thumbnail_para.max_length"),
        ({"type": "DOTS", "dots": [1], "format": 2}, {}, "thumbnail_para.format"),
        ({"type": "DOTS", "dots": [1], "amount": 0}, {}, "thumbnail_para.amount"),
        ({"type": "DOTS", "dots": [1], "threshold": 256}, {}, "thumbnail_para.threshold"),
        ({"type": "DOTS", "dots": [1], "output_filename": "a/b"}, {}, "thumbnail_para.output_filename"),
        ({"type": "TIME"}, {"sync": 1}, "sync"),
        ({"type": "DOTS", "dots": [1, 2]}, {"sync": 1}, "thumbnail_para.dots"),
        ({"type": "DOTS_MS", "dots_ms": [1, 2]}, {"sync": 1}, "thumbnail_para.dots_ms"),
        ({"type": "DOTS", "dots": [1]}, {"tar": 2}, "tar"),
        ({"type": "DOTS", "dots": [1]}, {"user_data": "x" * 1025}, "user_data"),
    ],
)
def test_bad_parameters(client: MpcClient, para: dict[str, Any], body: dict[str, Any], field: str) -> None:
    err = refused(create_call(client, para, **body), 400, "MPC.10202")
    assert f"Invalid request parameter: {field} " in err.error_msg


def test_missing_input_and_output_bucket(stack: Stack, client: MpcClient) -> None:
    refused(create_call(client, input=ObsObjInfo(bucket="media", object="in/nothing.mp4")), 400, "MPC.10053")
    # A bucket the tenant holds no grant on is refused before anything says whether it exists.
    refused(create_call(client, input=ObsObjInfo(bucket="nobucket", object="in/v.mp4")), 403, "MPC.10203")
    stack.services.grants.grant("acme", "nobucket", read=True, write=True)
    refused(create_call(client, input=ObsObjInfo(bucket="nobucket", object="in/v.mp4")), 400, "MPC.10053")
    err = refused(create_call(client, output=ObsObjInfo(bucket="nobucket", object="x")), 400, "MPC.10209")
    assert "output.bucket" in err.error_msg
    refused(create_call(client, input=ObsObjInfo(bucket="media")), 400, "MPC.10202")


def test_list_and_delete_refusals(client: MpcClient) -> None:
    err = refused(
        lambda: client.list_thumbnails_task(ListThumbnailsTaskRequest(task_id=[f"t{i}" for i in range(11)])),
        400,
        "MPC.10202",
    )
    assert "at most 10" in err.error_msg
    for bad in (
        {"status": "DONE"},
        {"start_time": "2026-01-01T00:00:00Z"},
        {"start_time": "20260102000000", "end_time": "20260101000000"},
        {"size": 0},
        {"size": 101},
        {"page": -1},
    ):
        refused(lambda: client.list_thumbnails_task(ListThumbnailsTaskRequest(**bad)), 400, "MPC.10202")  # noqa: B023
    err = refused(
        lambda: client.delete_thumbnails_task(DeleteThumbnailsTaskRequest(task_id="no-such-task")), 400, "MPC.10212"
    )
    assert "does not exist" in err.error_msg
    # ids that do not exist are simply not listed
    assert client.list_thumbnails_task(ListThumbnailsTaskRequest(task_id=["no-such-task"])).total == 0


def test_credentials_without_a_project_id(stack: Stack) -> None:
    """The SDK then sends the literal /v1/{project_id}/thumbnails and no X-Project-Id."""
    err = refused(
        lambda: stack.client(project=None).list_thumbnails_task(ListThumbnailsTaskRequest()), 400, "MPC.10202"
    )
    assert "project_id" in err.error_msg


def test_project_header_must_match_the_path(stack: Stack) -> None:
    resp = signed_request(stack.url, "GET", PATH, headers={"X-Project-Id": "fedcba9876543210fedcba9876543210"})
    assert resp.status_code == 403 and resp.json()["error_code"] == "MPC.10203"
    assert signed_request(stack.url, "GET", PATH, headers={"X-Project-Id": PROJECT}).status_code == 200


def test_gateway_answers_in_huawei_format(stack: Stack) -> None:
    def body(resp: httpx.Response) -> dict[str, str]:
        assert resp.headers["Content-Type"].startswith("application/json") and resp.headers["X-Request-Id"]
        return resp.json()

    unsigned = httpx.get(stack.url + PATH)
    assert unsigned.status_code == 401 and body(unsigned)["error_code"] == "APIGW.0301"
    for resp in (
        httpx.get(stack.url + PATH + "/extra"),
        signed_request(stack.url, "GET", f"/v1/{PROJECT}/transcodings"),
        signed_request(stack.url, "PUT", PATH),  # a known path with another method is no API either
    ):
        assert resp.status_code == 404 and body(resp)["error_code"] == "APIGW.0101"
    too_big = httpx.post(stack.url + PATH, content=b"{" + b" " * (2 << 20) + b"}")
    assert too_big.status_code == 413 and body(too_big)["error_code"] == "APIGW.0201"
    form = signed_request(stack.url, "POST", PATH, headers={"Content-Type": "text/plain"}, body=b"x=1")
    assert form.status_code == 400 and body(form)["error_code"] == "MPC.10205"
    junk = signed_request(stack.url, "POST", PATH, body=b"{not json")
    assert junk.status_code == 400 and body(junk)["error_code"] == "MPC.10202"


def test_a_crash_is_a_system_error(stack: Stack, client: MpcClient, monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(*args: object) -> None:
        raise RuntimeError("a bug")

    monkeypatch.setattr(stack.services.snapshots, "list_jobs_at", boom)
    err = refused(
        lambda: client.list_thumbnails_task(ListThumbnailsTaskRequest()), 500, "MPC.10050", ServerResponseException
    )
    assert "a bug" not in err.error_msg  # logged, not shown


def test_async_client_gets_the_same_answers(stack: Stack) -> None:
    asynchronous = (
        MpcAsyncClient.new_builder()
        .with_credentials(BasicCredentials(AK, SK, PROJECT))
        .with_endpoint(stack.url)
        .build()
    )
    assert asynchronous.list_thumbnails_task_async(ListThumbnailsTaskRequest()).result().status_code == 200
    future = asynchronous.delete_thumbnails_task_async(DeleteThumbnailsTaskRequest(task_id="none"))
    refused(future.result, 400, "MPC.10212")


@pytest.fixture(scope="module")
def throttled_url(stack: Stack) -> Iterator[str]:
    """A second app on the same store whose access keys get one request per 100 s."""
    settings = fast_settings(
        stack.services.settings.redis_url, stack.tmp / "data", throttle_rate=0.01, throttle_burst=1
    )
    services = make_services(settings)
    services.credentials.create("acme", key_id="slowKey", secret=SK)
    server, url = serve_wsgi(create_app(settings, services))
    yield url
    server.shutdown()
    services.redis.close()


def test_throttled(throttled_url: str) -> None:
    assert signed_request(throttled_url, "GET", PATH, ak="slowKey").status_code == 200
    resp = signed_request(throttled_url, "GET", PATH, ak="slowKey")
    assert resp.status_code == 429 and int(resp.headers["Retry-After"]) >= 1
    assert json.loads(resp.content)["error_code"] == "APIGW.0308"
    slow = (
        MpcClient.new_builder()
        .with_credentials(BasicCredentials("slowKey", SK, PROJECT))
        .with_endpoint(throttled_url)
        .build()
    )
    # The SDK's urllib3 retry turns a 429 into a RetryError: the status survives, the code does not.
    with pytest.raises(ClientRequestException) as info:
        slow.list_thumbnails_task(ListThumbnailsTaskRequest())
    assert info.value.status_code == 429
