"""Every MPS error surfaces in each official SDK with its code: the request gate's refusals
(wrong secret, unknown key, stale timestamp, replayed nonce, throttling), unknown actions and
versions, bad parameters naming the parameter, a missing input; and the raw envelope in JSON and
XML for clients that read it themselves."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode
from xml.etree import ElementTree

import pytest
from alibabacloud_mts20140618 import models as tea
from alibabacloud_tea_openapi import utils_models
from alibabacloud_tea_openapi.exceptions import AlibabaCloudException, ClientException, ThrottlingException
from alibabacloud_tea_openapi.utils import Utils
from aliyunsdkcore.acs_exception.exceptions import ServerException
from aliyunsdkcore.auth.composer import rpc_signature_composer
from aliyunsdkcore.request import CommonRequest
from aliyunsdkcore.utils import parameter_helper
from aliyunsdkmts.request.v20140618.QueryPipelineListRequest import QueryPipelineListRequest
from aliyunsdkmts.request.v20140618.SubmitSnapshotJobRequest import SubmitSnapshotJobRequest
from darabonba.runtime import RuntimeOptions

from app.web import create_app
from app.wiring import build_services
from tests.integration.dialects.mts.conftest import AK, SK, TENANT, Stack, call, http
from tests.servers import serve_wsgi

INPUT = '{"Bucket": "media", "Location": "oss-cn-hangzhou", "Object": "missing.mp4"}'
OUTPUT = {"Bucket": "out", "Location": "oss-cn-hangzhou", "Object": "e/{Count}.jpg"}


def classic_error(fn: Callable[[], Any]) -> ServerException:
    with pytest.raises(ServerException) as err:
        fn()
    return err.value


def tea_error(fn: Callable[[], Any], kind: type[AlibabaCloudException] = ClientException) -> Any:
    with pytest.raises(kind) as err:
        fn()
    return err.value


def classic_query(stack: Stack, **kw: str) -> Callable[[], Any]:
    req = QueryPipelineListRequest()
    req.set_PipelineIds("default")
    return lambda: call(stack.classic(**kw), req)


def tea_query(stack: Stack, **kw: Any) -> Callable[[], Any]:
    return lambda: stack.tea(**kw).query_pipeline_list(tea.QueryPipelineListRequest(pipeline_ids="default"))


def classic_submit(stack: Stack, config: dict[str, Any], inp: str = INPUT, **extra: str) -> Callable[[], Any]:
    req = SubmitSnapshotJobRequest()
    req.set_Input(inp)
    req.set_SnapshotConfig(json.dumps(config))
    for name, value in extra.items():
        getattr(req, f"set_{name}")(value)
    return lambda: call(stack.classic(), req)


def tea_submit(stack: Stack, config: dict[str, Any], inp: str = INPUT, **extra: str) -> Callable[[], Any]:
    req = tea.SubmitSnapshotJobRequest(input=inp, snapshot_config=json.dumps(config), **extra)
    return lambda: stack.tea().submit_snapshot_job(req)


def test_a_wrong_secret_is_refused_and_the_classic_sdk_recognises_its_own_string_to_sign(stack: Stack) -> None:
    err = classic_error(classic_query(stack, secret="wrong"))
    # The server's string to sign equals the SDK's, so the SDK names the secret as the culprit.
    assert err.get_http_status() == 400 and err.get_error_code() == "InvalidAccessKeySecret"
    acs3 = tea_error(tea_query(stack, secret="wrong"))
    assert acs3.status_code == 400 and acs3.code == "SignatureDoesNotMatch"
    assert "server string to sign is:ACS3-HMAC-SHA256\n" in acs3.data["Message"]
    v2 = tea_error(tea_query(stack, secret="wrong", signature_algorithm="v2"))
    assert v2.status_code == 400 and v2.code == "SignatureDoesNotMatch"


def test_every_signature_mode_of_the_tea_sdk_is_accepted(stack: Stack) -> None:
    modes: list[dict[str, Any]] = [
        {},
        {"signature_algorithm": "v2"},
        {"signature_algorithm": "ACS3-HMAC-SM3"},
        {"endpoint": f"http://{stack.endpoint}"},  # the SDK then signs "host: http://127.0.0.1:PORT"
    ]
    for config in modes:
        got = tea_query(stack, **config)()
        assert got.status_code == 200 and [p.id for p in got.body.pipeline_list.pipeline] == ["default"], config
    # The asyncio client (aiohttp) adds an unsigned Content-Type and asks for gzip.
    request = tea.SearchPipelineRequest(state="All")
    found = asyncio.run(stack.tea().search_pipeline_async(request))
    assert found.status_code == 200 and "default" in [p.id for p in found.body.pipeline_list.pipeline]


def test_an_unknown_access_key_is_refused(stack: Stack) -> None:
    err = classic_error(classic_query(stack, key="nobody"))
    assert err.get_http_status() == 404 and err.get_error_code() == "InvalidAccessKeyId.NotFound"
    terr = tea_error(tea_query(stack, key="nobody"))
    assert terr.status_code == 404 and terr.code == "InvalidAccessKeyId.NotFound"


def test_a_stale_timestamp_is_refused(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> None:
    old = (datetime.now(tz=UTC) - timedelta(minutes=20)).strftime("%Y-%m-%dT%H:%M:%SZ")
    monkeypatch.setattr(parameter_helper, "get_iso_8061_date", lambda: old)
    monkeypatch.setattr(Utils, "get_timestamp", staticmethod(lambda: old))
    err = classic_error(classic_query(stack))
    assert err.get_http_status() == 400 and err.get_error_code() == "InvalidTimeStamp.Expired"
    for config in ({}, {"signature_algorithm": "v2"}):
        terr = tea_error(tea_query(stack, **config))
        assert terr.code == "InvalidTimeStamp.Expired", config


def test_a_replayed_nonce_is_refused(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(parameter_helper, "get_uuid", lambda: "c1a551c0000000000000000000000001")
    monkeypatch.setattr(Utils, "get_nonce", staticmethod(lambda: "7ea0000000000000000000000000000a"))
    classic_query(stack)()  # the first use of the nonce is fine
    err = classic_error(classic_query(stack))
    assert err.get_http_status() == 400 and err.get_error_code() == "SignatureNonceUsed"
    tea_query(stack)()
    terr = tea_error(tea_query(stack))
    assert terr.status_code == 400 and terr.code == "SignatureNonceUsed"


def test_a_burst_over_the_limit_is_throttled_while_another_key_is_not(stack: Stack) -> None:
    settings = stack.settings.with_(throttle_rate=1.0, throttle_burst=3)
    services = build_services(settings)
    for key in ("burstKeyA", "burstKeyB"):
        services.credentials.create(TENANT, key_id=key, secret="burstSecret")
    server, _ = serve_wsgi(create_app(settings, services))
    limited = Stack(settings, services, server.server_port, stack.tmp)
    try:
        codes = []
        for _ in range(5):
            try:
                tea_query(limited, key="burstKeyA", secret="burstSecret")()
                codes.append("ok")
            except ThrottlingException as exc:
                assert exc.status_code == 400 and exc.retry_after is not None and exc.retry_after > 0
                codes.append(exc.code)
        assert codes[:3] == ["ok"] * 3 and codes[3:] == ["Throttling"] * 2
        err = classic_error(classic_query(limited, key="burstKeyA", secret="burstSecret"))
        assert err.get_error_code() == "Throttling"
        for _ in range(3):  # the other key has its own bucket
            classic_query(limited, key="burstKeyB", secret="burstSecret")()
    finally:
        server.shutdown()
        server.server_close()
        services.redis.close()


def test_unknown_actions_and_versions(stack: Stack) -> None:
    def classic_common(action: str, version: str = "2014-06-18") -> Callable[[], Any]:
        req = CommonRequest(domain=stack.endpoint, version=version, action_name=action)
        req.set_method("POST")
        return lambda: stack.classic().do_action_with_exception(req)

    def tea_common(action: str, version: str = "2014-06-18") -> Callable[[], Any]:
        params = utils_models.Params(
            action=action,
            version=version,
            protocol="HTTP",
            pathname="/",
            method="POST",
            auth_type="AK",
            style="RPC",
            req_body_type="formData",
            body_type="json",
        )
        return lambda: stack.tea().call_api(params, utils_models.OpenApiRequest(query={}), RuntimeOptions())

    err = classic_error(classic_common("SubmitTranscodeJobs"))
    assert err.get_http_status() == 404 and err.get_error_code() == "InvalidAction.NotFound"
    assert tea_error(tea_common("SubmitTranscodeJobs")).code == "InvalidAction.NotFound"
    assert classic_error(classic_common("SearchPipeline", "2099-01-01")).get_error_code() == "InvalidVersion"
    assert tea_error(tea_common("SearchPipeline", "2099-01-01")).code == "InvalidVersion"


BAD_CONFIGS = [
    ({"OutputFile": OUTPUT, "TimeArray": {"TimePointList": list(range(101))}}, "InvalidParameter.TimeArray"),
    ({"OutputFile": OUTPUT, "TimeArray": {"TimePointList": [1000, "soon"]}}, "InvalidParameter.TimeArray"),
    ({"OutputFile": OUTPUT, "Time": "5", "Width": "4"}, "InvalidParameter.Width"),
    ({"OutputFile": OUTPUT, "Time": "5", "Height": "1e9"}, "InvalidParameter.Height"),
    ({"OutputFile": OUTPUT, "Time": "5", "FrameType": "keyframe"}, "InvalidParameter.FrameType"),
    ({"OutputFile": OUTPUT, "Time": "NaN"}, "InvalidParameter.Time"),
    ({"OutputFile": OUTPUT, "Interval": "-1", "Num": "3"}, "InvalidParameter.Interval"),
    ({"OutputFile": OUTPUT, "Num": "0"}, "InvalidParameter.Num"),
    ({"OutputFile": {**OUTPUT, "Object": "same.jpg"}, "Num": "3"}, "InvalidParameter.OutputFile"),
    ({"OutputFile": OUTPUT, "Num": "3", "TileOut": {"Lines": "2"}}, "InvalidParameter.TileOutputFile"),
    (
        {"OutputFile": OUTPUT, "Num": "3", "TileOut": {"Lines": "0"}, "TileOutputFile": OUTPUT},
        "InvalidParameter.TileOut",
    ),
    ({"Time": "5"}, "InvalidParameter.OutputFile"),
]


@pytest.mark.parametrize(("config", "code"), BAD_CONFIGS, ids=[c for _, c in BAD_CONFIGS])
def test_bad_snapshot_configs_name_the_parameter(stack: Stack, config: dict[str, Any], code: str) -> None:
    err = classic_error(classic_submit(stack, config))
    assert err.get_http_status() == 400 and err.get_error_code() == code, err.get_error_msg()
    assert err.get_error_msg().startswith('The specified parameter "SnapshotConfig.')
    assert tea_error(tea_submit(stack, config)).code == code


def test_bad_inputs_user_data_and_missing_parameters(stack: Stack) -> None:
    ok = {"OutputFile": OUTPUT, "Time": "5"}
    assert classic_error(classic_submit(stack, ok, inp="{not json")).get_error_code() == "InvalidParameter.Input"
    assert tea_error(tea_submit(stack, ok, inp='["a list"]')).code == "InvalidParameter.Input"
    assert tea_error(tea_submit(stack, ok, inp='{"Bucket": "media"}')).code == "InvalidParameter.Input"
    too_long = "u" * 1025
    assert classic_error(classic_submit(stack, ok, UserData=too_long)).get_error_code() == "InvalidParameter.UserData"
    assert tea_error(tea_submit(stack, ok, user_data=too_long)).code == "InvalidParameter.UserData"
    terr = tea_error(lambda: stack.tea().submit_snapshot_job(tea.SubmitSnapshotJobRequest(snapshot_config="{}")))
    assert terr.code == "MissingInput"
    missing_pipeline = classic_error(classic_submit(stack, ok, PipelineId="nosuchpipeline"))
    assert missing_pipeline.get_error_code() == "InvalidParameter.ResourceNotFound"


def test_a_missing_input_object_is_resource_not_found_in_both_modes(stack: Stack) -> None:
    for config in ({"OutputFile": OUTPUT, "Time": "5"}, {"OutputFile": OUTPUT, "Num": "3", "Interval": "1"}):
        err = classic_error(classic_submit(stack, config))
        assert err.get_http_status() == 404 and err.get_error_code() == "InvalidParameter.ResourceNotFound"
        assert err.get_request_id()
        terr = tea_error(tea_submit(stack, config))
        assert terr.status_code == 404 and terr.code == "InvalidParameter.ResourceNotFound"
    other_bucket = '{"Bucket": "nosuchbucket", "Object": "v.mp4"}'
    terr = tea_error(tea_submit(stack, {"OutputFile": OUTPUT, "Time": "5"}, inp=other_bucket))
    assert terr.status_code == 403 and terr.code == "PermissionDenied.ResourceAccess"  # no grant: no probing
    stack.services.grants.grant(TENANT, "nosuchbucket", read=True)
    terr = tea_error(tea_submit(stack, {"OutputFile": OUTPUT, "Time": "5"}, inp=other_bucket))
    assert terr.code == "InvalidParameter.ResourceNotFound"


def signed_url(stack: Stack, action: str, fmt: str, **params: str) -> str:
    """A URL signed with the classic SDK's own signer (for a client that reads raw bodies)."""
    query = {"Action": action, "Version": "2014-06-18", "RegionId": "cn-hangzhou", **params}
    url, _ = rpc_signature_composer.get_signed_url(query, AK, SK, fmt, "GET", {})
    return f"http://{stack.endpoint}{url}"


def test_raw_envelopes_in_json_and_xml(stack: Stack) -> None:
    got = http("GET", signed_url(stack, "QueryPipelineList", "XML", PipelineIds="default,nope"))
    assert got.status == 200 and got.headers["Content-Type"] == "text/xml;charset=utf-8"
    root = ElementTree.fromstring(got.content)
    assert root.tag == "QueryPipelineListResponse" and root.findtext("RequestId")
    assert root.findtext("PipelineList/Pipeline/Id") == "default"
    assert root.findtext("NonExistPids/String") == "nope"

    bad = http("GET", signed_url(stack, "NoSuchThing", "XML"))
    assert bad.status == 404 and bad.headers["Content-Type"] == "text/xml;charset=utf-8"
    err = ElementTree.fromstring(bad.content)
    assert err.tag == "Error" and err.findtext("Code") == "InvalidAction.NotFound"
    assert all(err.findtext(f) for f in ("RequestId", "HostId", "Message", "Recommend"))

    unsigned = http("POST", f"http://{stack.endpoint}/?Action=SearchPipeline&Version=2014-06-18")
    body = unsigned.json()
    assert unsigned.status == 400 and body["Code"] == "MissingAccessKeyId"
    assert set(body) == {"RequestId", "HostId", "Code", "Message", "Recommend"}
    wrong_method = http("PUT", f"http://{stack.endpoint}/?Action=SearchPipeline&Format=XML")
    assert wrong_method.status == 405
    assert ElementTree.fromstring(wrong_method.content).findtext("Code") == "UnsupportedHTTPMethod"
    fields = {
        "Action": "SearchPipeline",
        "Version": "2014-06-18",
        "AccessKeyId": AK,
        "Signature": "x",
        "Timestamp": "yesterday",
        "SignatureNonce": "n1",
    }
    form = http(
        "POST",
        f"http://{stack.endpoint}/",
        data=urlencode(fields).encode(),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert form.status == 400 and form.json()["Code"] == "InvalidTimeStamp.Format"
