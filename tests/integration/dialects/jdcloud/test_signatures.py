"""The JDCLOUD3 and JDCLOUD2 verifiers against both SDKs' own signers, over awkward paths and
queries, as the bytes reach the server (requests prepares the URL the signer saw), and against
the capture in ``docs/vendor-wire.md`` §3.5."""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote, urlsplit

import pytest
import requests
from jdcloud_sdk.core.credential import Credential
from jdcloud_sdk.core.logger import ERROR, Logger
from jdcloud_sdk.core.signer import Signer

from app.core.errors import AuthFailure, Unauthenticated
from app.dialects.jdcloud import auth
from app.gateway.raw import RawRequest
from tests.integration.dialects.jdcloud.sdk import AK, REGION, SK, old_module

HOST = "127.0.0.1:8000"

URLS = [
    ("GET", "/v1/regions/cn-north-1/thumbnail/60de76a07ad34c72a2278ec03d95f18b", ""),
    ("GET", "/v1/regions/cn-north-1/thumbnail?status=PENDDING&begin=2020-01-01T00%3A00%3A00.000Z&marker=&limit=1", ""),
    ("GET", "/v1/regions/cn-north-1/thumbnail?limit=5&limit=2&marker=a%2Bb&status=RUN%20NING", ""),
    ("GET", "/v1/regions/cn-north-1/thumbnail?bare&x=1&~tilde=~", ""),
    ("GET", "/v1/regions/cn-north-1/thumbnail/with space+plus~tilde", ""),
    ("GET", "/v1/regions/cn-north-1/thumbnail/任务", ""),  # the SDKs put path parameters in unencoded
    ("POST", "/v1/regions/cn-north-1/thumbnail", '{"source": {"bucket": "b", "key": "\\u89c6\\u9891 x.mp4"}}'),
    ("PUT", "/v1/regions/cn-north-1/notification", '{"regionId": "cn-north-1", "enabled": false}'),
]


def _raw(method: str, url: str, headers: dict[str, str], body: str) -> RawRequest:
    """The request as the server receives it: requests re-encodes the URL the signer saw."""
    prepared = requests.Request(method, url, headers=headers, data=body.encode("utf-8")).prepare()
    target = prepared.path_url
    parts = urlsplit(target)
    sent = [(k, v) for k, v in prepared.headers.items() if k.lower() != "content-length"]
    return RawRequest(
        method=method,
        path=unquote(parts.path),
        target=target,
        query=parts.query,
        headers=tuple([("Host", HOST), *sent]),
        body=body.encode("utf-8"),
        host=HOST,
    )


def _claim_checks(raw: RawRequest) -> Any:
    claim = auth.jdcloud_scheme(raw)
    assert claim.access_key_id == AK and claim.nonce
    assert claim.expected_signature(SK) == claim.signature
    assert claim.expected_signature("another secret") != claim.signature
    return claim


# JDCLOUD3 decodes the path before it encodes it, so an id the caller encoded itself signs the same.
@pytest.mark.parametrize(("method", "path", "body"), [*URLS, ("GET", "/v1/regions/r/thumbnail/%E4%BB%BB%2B", "")])
def test_jdcloud3_matches_the_current_sdk(method: str, path: str, body: str) -> None:
    headers = {"User-Agent": "JdcloudSdkPython/1.2.9 mps/0.6.1", "Content-Type": "application/json"}
    url = f"http://{HOST}{path}"
    Signer(Logger(ERROR)).sign(
        method=method,
        service="mps",
        region=REGION,
        uri=url,
        headers=headers,
        data=body,
        credential=Credential(AK, SK),
        security_token="",
    )
    assert headers["Authorization"].startswith("JDCLOUD3-HMAC-SHA256 ")
    _claim_checks(_raw(method, url, headers, body))


@pytest.mark.parametrize(("method", "path", "body"), URLS)
def test_jdcloud2_matches_the_1_6_50_sdk(method: str, path: str, body: str) -> None:
    old_signer = old_module("core.signer")
    old_credential = old_module("core.credential")
    old_logger = old_module("core.logger")
    headers = {"User-Agent": "JdcloudSdkPython/1.3.3 mps/0.4.7", "Content-Type": "application/json"}
    url = f"http://{HOST}{path}"
    old_signer.Signer(old_logger.Logger(old_logger.ERROR)).sign(
        method=method,
        service="mps",
        region=REGION,
        uri=url,
        headers=headers,
        data=body,
        credential=old_credential.Credential(AK, SK),
        security_token="",
    )
    assert headers["Authorization"].startswith("JDCLOUD2-HMAC-SHA256 ")
    assert "x-jdcloud-date;x-jdcloud-nonce" in headers["Authorization"]
    _claim_checks(_raw(method, url, headers, body))


def test_the_captured_canonical_request_of_the_wire_notes() -> None:
    raw = RawRequest(
        "GET",
        "/v1/regions/cn-north-1/thumbnail/60de76a07ad34c72a2278ec03d95f18b",
        "/v1/regions/cn-north-1/thumbnail/60de76a07ad34c72a2278ec03d95f18b",
        "",
        (("Host", "127.0.0.1:45861"), ("Content-Type", "application/json")),
        b"",
        "127.0.0.1:45861",
    )
    header = (
        "JDCLOUD3-HMAC-SHA256 Credential=testAccessKeyId/20261121/cn-north-1/mps/jdcloud3_request, "
        "SignedHeaders=content-type;host, Signature=0"
    )
    text = auth.string_to_sign(auth.parse_authorization(header), raw, "20261121T093639Z")
    assert text.splitlines() == [
        "JDCLOUD3-HMAC-SHA256",
        "20261121T093639Z",
        "20261121/cn-north-1/mps/jdcloud3_request",
        "96a9b4585a3cbb75ad73a39e5a4941d2f9d3ceee2b79ff829447274e1307d672",
    ]


def _signed(**overrides: str) -> dict[str, str]:
    headers = {"Content-Type": "application/json"}
    Signer(Logger(ERROR)).sign(
        method="GET",
        service="mps",
        region=REGION,
        uri=f"http://{HOST}/v1/regions/r/thumbnail",
        headers=headers,
        data="",
        credential=Credential(AK, SK),
        security_token="",
    )
    headers.update(overrides)
    return headers


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"Authorization": ""}, AuthFailure.MISSING),
        ({"Authorization": "HMAC-SHA256 Credential=a/b/c/d/e, SignedHeaders=host, Signature=0"}, AuthFailure.MALFORMED),
        (
            {
                "Authorization": "JDCLOUD3-HMAC-SHA256 Credential=testAccessKeyId/20261121/r/mps/jdcloud2_request, SignedHeaders=host, Signature=0"
            },
            AuthFailure.MALFORMED,
        ),
        (
            {
                "Authorization": "JDCLOUD3-HMAC-SHA256 Credential=testAccessKeyId/20261121/r/vm/jdcloud3_request, SignedHeaders=host, Signature=0"
            },
            AuthFailure.MALFORMED,
        ),
        (
            {"Authorization": "JDCLOUD3-HMAC-SHA256 Credential=testAccessKeyId, SignedHeaders=host, Signature=0"},
            AuthFailure.MALFORMED,
        ),
        (
            {
                "Authorization": "JDCLOUD3-HMAC-SHA256 Credential=testAccessKeyId/20261121/r/mps/jdcloud3_request, SignedHeaders=content-type, Signature=0"
            },
            AuthFailure.MALFORMED,
        ),
        ({"x-jdcloud-date": ""}, AuthFailure.MALFORMED),
        ({"x-jdcloud-date": "2026-11-21T09:36:39Z"}, AuthFailure.MALFORMED),
        ({"x-jdcloud-date": "20201121T093639Z"}, AuthFailure.MALFORMED),  # not the scope's day
        ({"x-jdcloud-nonce": ""}, AuthFailure.MALFORMED),
        ({"x-jdcloud-content-sha256": "0" * 64}, AuthFailure.BAD_SIGNATURE),
    ],
)
def test_shape_errors(change: dict[str, str], reason: AuthFailure) -> None:
    headers = _signed(**change)
    raw = _raw("GET", f"http://{HOST}/v1/regions/r/thumbnail", {k: v for k, v in headers.items() if v}, "")
    with pytest.raises(Unauthenticated) as refused:
        auth.jdcloud_scheme(raw)
    assert refused.value.reason is reason


def test_a_changed_query_breaks_the_signature() -> None:
    headers = _signed()
    raw = _raw("GET", f"http://{HOST}/v1/regions/r/thumbnail?limit=2", headers, "")
    claim = auth.jdcloud_scheme(raw)
    assert claim.expected_signature(SK) != claim.signature
