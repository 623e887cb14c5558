"""SDK-HMAC-SHA256 as the SDK computes it: requests signed by ``huaweicloudsdkcore``'s own signer
verify under the dialect's scheme, and any change to what is signed breaks them. No servers."""

from __future__ import annotations

import pytest
from flask import Flask
from huaweicloudsdkcore.auth.credentials import BasicCredentials
from huaweicloudsdkcore.sdk_request import SdkRequest
from huaweicloudsdkcore.signer.signer import Signer

from app.core.errors import AuthFailure, Unauthenticated
from app.dialects.huawei import owns
from app.dialects.huawei.auth import canonical_query, canonical_uri, scheme_for
from app.dialects.huawei.errors import HuaweiError
from app.gateway.gate import SignedClaim
from app.gateway.raw import RawRequest

AK, SK, PROJECT = "testAccessKeyId", "testAccessKeySecret", "0123456789abcdef0123456789abcdef"
PATH = f"/v1/{PROJECT}/thumbnails"


def sdk_signed(
    method: str = "GET",
    *,
    query: list[tuple[str, object]] | None = None,
    headers: dict[str, str] | None = None,
    body: bytes = b"",
) -> RawRequest:
    """What the server receives for a request the SDK signed."""
    request = SdkRequest(
        method=method,
        schema="http",
        host="127.0.0.1:35787",
        resource_path=PATH,
        query_params=list(query or []),
        header_params={
            "Content-Type": "application/json",
            "User-Agent": "huaweicloud-usdk-python/3.0; os/Linux##1_SMP_PREEMPT_DYNAMIC_@0#x86_64  python/3.11.7",
            "X-Project-Id": PROJECT,
            **(headers or {}),
        },
        body=body,
    )
    Signer(BasicCredentials(AK, SK)).sign(request)
    target = request.uri
    return RawRequest(
        method=method,
        path=PATH,
        target=target,
        query=target.partition("?")[2],
        headers=tuple((k, str(v)) for k, v in request.header_params.items()),
        body=body,
        host="127.0.0.1:35787",
    )


def claim(raw: RawRequest) -> SignedClaim:
    return scheme_for(PROJECT)(raw)


def verifies(raw: RawRequest) -> bool:
    c = claim(raw)
    return c.expected_signature(SK) == c.signature


def replaced(raw: RawRequest, **changes: object) -> RawRequest:
    fields = {**raw.__dict__, **changes}
    return RawRequest(**fields)  # type: ignore[arg-type]


def test_canonical_forms_match_the_wire_notes() -> None:
    assert canonical_uri(PATH) == PATH + "/"
    assert canonical_uri("/v1/a%20b/thumbnails/") == "/v1/a%20b/thumbnails/"
    assert canonical_query("task_id=7685&task_id=7684&page=0&task_id=999999") == (
        "page=0&task_id=7684&task_id=7685&task_id=999999"
    )
    assert canonical_query("a=x%20y&b=1+2&c=~") == "a=x%20y&b=1%2B2&c=~"


@pytest.mark.parametrize(
    "raw",
    [
        sdk_signed(query=[("task_id", ["7685", "7684", "999999"])]),
        sdk_signed(query=[("start_time", "20260101000000"), ("status", "WAITING"), ("page", 0), ("size", 10)]),
        sdk_signed(headers={"x-language": "en-us"}),
        sdk_signed("POST", body=b'{"input": {"bucket": "b", "object": "in put.mp4"}, "note": "\xc3\xa9"}'),
        sdk_signed("DELETE", query=[("task_id", "a b/c")]),
    ],
    ids=["ids", "filters", "x-language", "post", "delete"],
)
def test_what_the_sdk_signs_verifies(raw: RawRequest) -> None:
    c = claim(raw)
    assert c.access_key_id == AK and c.nonce is None and c.signed_at is not None
    assert verifies(raw)


def test_any_change_to_the_signed_request_breaks_it() -> None:
    raw = sdk_signed("POST", query=[("a", "1")], body=b'{"sync": 0}')
    assert not verifies(replaced(raw, body=b'{"sync": 1}'))
    assert not verifies(replaced(raw, target=PATH + "?a=2", query="a=2"))
    assert not verifies(replaced(raw, method="PUT"))
    assert not verifies(replaced(raw, target=f"/v1/{PROJECT}/thumbnail?a=1"))
    headers = tuple((k, "127.0.0.1:1" if k == "Host" else v) for k, v in raw.headers)
    assert not verifies(replaced(raw, headers=headers))
    assert claim(raw).expected_signature("another secret") != claim(raw).signature


def test_unsigned_payload_only_where_the_sdk_uses_it() -> None:
    form = sdk_signed("POST", headers={"Content-Type": "text/plain"}, body=b"free text")
    assert dict(form.headers)["X-Sdk-Content-Sha256"] == "UNSIGNED-PAYLOAD" and verifies(form)
    # A JSON body declared unsigned is still hashed: its signature cannot have been made over it.
    forged = replaced(
        sdk_signed("POST", body=b"{}"),
        headers=(*sdk_signed("POST", body=b"{}").headers, ("X-Sdk-Content-Sha256", "UNSIGNED-PAYLOAD")),
        body=b'{"sync": 1}',
    )
    assert not verifies(forged)


def test_shape_errors() -> None:
    raw = sdk_signed()
    no_auth = replaced(raw, headers=tuple(h for h in raw.headers if h[0] != "Authorization"))
    with pytest.raises(Unauthenticated) as missing:
        claim(no_auth)
    assert missing.value.reason is AuthFailure.MISSING
    auth = dict(raw.headers)["Authorization"]
    for bad in (
        auth.replace("SDK-HMAC-SHA256", "SDK-HMAC-SM3"),
        auth.replace(";x-sdk-date", ""),
        auth.split(", Signature=")[0],
        "SDK-HMAC-SHA256 garbage",
    ):
        headers = tuple((k, bad if k == "Authorization" else v) for k, v in raw.headers)
        with pytest.raises(Unauthenticated) as malformed:
            claim(replaced(raw, headers=headers))
        assert malformed.value.reason is AuthFailure.MALFORMED, bad
    with pytest.raises(Unauthenticated, match="X-Sdk-Date"):
        claim(replaced(raw, headers=tuple((k, "yesterday" if k == "X-Sdk-Date" else v) for k, v in raw.headers)))


def test_the_project_header_must_name_the_project_in_the_path() -> None:
    with pytest.raises(HuaweiError) as info:
        scheme_for("another-project")(sdk_signed())
    assert (info.value.status, info.value.code) == (403, "MPC.10203")


@pytest.mark.parametrize(
    ("path", "headers", "claimed"),
    [
        (PATH, {}, True),
        (PATH + "/extra", {}, True),
        ("/v1/p1/transcodings", {"Authorization": "SDK-HMAC-SHA256 Access=a"}, True),
        ("/v1/p1/transcodings", {}, False),
        ("/v1/regions/cn-north-1/thumbnail", {"Authorization": "SDK-HMAC-SHA256 Access=a"}, False),
        ("/v1/regions/thumbnails", {}, False),
        ("/api/v1/jobs", {}, False),
        ("/", {}, False),
    ],
)
def test_owns_huawei_shapes_only(path: str, headers: dict[str, str], claimed: bool) -> None:
    with Flask(__name__).test_request_context(path, headers=headers) as ctx:
        assert owns(ctx.request) is claimed
