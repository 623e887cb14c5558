"""String-to-sign (request and push), Standard Webhooks signatures, SSRF classification."""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
from datetime import UTC, datetime

import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from app.dialects.mns.auth import content_md5_ok, sign
from app.notify.errors import EndpointRejected
from app.notify.signing import new_webhook_secret, string_to_sign, webhook_signature
from app.notify.ssrf import EndpointGuard, classify, parse_endpoint


def test_request_string_to_sign_matches_the_captured_sdk_example() -> None:
    text = string_to_sign(
        "POST",
        "NWE2ZjkzYmFjMjdhMWEwYzkyNjQ0M2IxMmE5OTBkODQ=",
        "text/xml;charset=UTF-8",
        "Sat, 21 Nov 2026 09:33:48 GMT",
        [("Host", "x"), ("X-Mns-Version", "2015-06-06"), ("Date", "ignored")],
        "/queues/snap-queue/messages",
    )
    assert text == (
        "POST\nNWE2ZjkzYmFjMjdhMWEwYzkyNjQ0M2IxMmE5OTBkODQ=\ntext/xml;charset=UTF-8\n"
        "Sat, 21 Nov 2026 09:33:48 GMT\nx-mns-version:2015-06-06\n/queues/snap-queue/messages"
    )
    expected = base64.b64encode(hmac.new(b"testAccessKeySecret", text.encode(), hashlib.sha1).digest()).decode()
    assert sign("testAccessKeySecret", text) == expected


def test_push_string_to_sign_sorts_mns_headers_and_ends_with_the_resource() -> None:
    text = string_to_sign(
        "POST",
        "md5",
        "text/xml",
        "D",
        [("x-mns-version", "2015-06-06"), ("X-MNS-Request-Id", "R"), ("Other", "o")],
        "/n?a=1",
    )
    assert text == "POST\nmd5\ntext/xml\nD\nx-mns-request-id:R\nx-mns-version:2015-06-06\n/n?a=1"


def test_content_md5_accepts_the_sdk_quirk_and_rfc_1864() -> None:
    body = b"<Message/>"
    quirk = base64.b64encode(hashlib.md5(body).hexdigest().encode()).decode()
    rfc = base64.b64encode(hashlib.md5(body).digest()).decode()
    assert content_md5_ok(quirk, body) and content_md5_ok(rfc, body)
    assert not content_md5_ok(quirk, body + b" ")


def test_webhook_signature_verifies_with_the_standardwebhooks_package() -> None:
    secret = new_webhook_secret()
    now = int(datetime.now(UTC).timestamp())
    headers = {
        "webhook-id": "msg_1",
        "webhook-timestamp": str(now),
        "webhook-signature": webhook_signature(secret, "msg_1", now, b"{}"),
    }
    Webhook(secret).verify(b"{}", headers)
    headers["webhook-id"] = "msg_2"
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(b"{}", headers)


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("8.8.8.8", None),
        ("2606:4700:4700::1111", None),
        ("127.0.0.1", "loopback"),
        ("::1", "loopback"),
        ("::ffff:127.0.0.1", "loopback"),
        ("10.1.2.3", "private"),
        ("172.16.0.1", "private"),
        ("192.168.1.1", "private"),
        ("fd00::1", "private"),
        ("169.254.169.254", "link-local"),
        ("fe80::1", "link-local"),
        ("100.100.100.200", "shared address space (100.64.0.0/10)"),
        ("100.64.0.1", "shared address space (100.64.0.0/10)"),
        ("224.0.0.1", "multicast"),
        ("ff02::1", "multicast"),
        ("0.0.0.0", "unspecified"),
        ("240.0.0.1", "reserved"),
        ("192.0.2.1", "reserved"),  # documentation range: Python calls it private, we do not
        ("198.18.0.1", "reserved"),
    ],
)
def test_classify(address: str, reason: str | None) -> None:
    assert classify(ipaddress.ip_address(address)) == reason


def test_guard_checks_every_resolved_address_and_the_dev_setting() -> None:
    mixed = EndpointGuard(allow_private=False, resolver=lambda host, port: ["93.184.216.34", "10.0.0.5"])
    with pytest.raises(EndpointRejected, match="10.0.0.5"):
        mixed.resolve("http://example.com/hook")
    public = EndpointGuard(allow_private=False, resolver=lambda host, port: ["93.184.216.34"])
    ep, address = public.resolve("https://example.com:8443/hook?x=1")
    assert address == "93.184.216.34" and ep.url_for(address) == "https://93.184.216.34:8443/hook?x=1"
    assert ep.host_header == "example.com:8443"
    dev = EndpointGuard(allow_private=True, resolver=lambda host, port: ["127.0.0.1"])
    assert dev.resolve("http://localhost/h")[1] == "127.0.0.1"
    with pytest.raises(EndpointRejected):  # metadata stays blocked even in development
        EndpointGuard(allow_private=True).resolve("http://100.100.100.200/latest/meta-data")
    with pytest.raises(EndpointRejected):
        EndpointGuard(allow_private=True).check_literal("http://[::ffff:169.254.169.254]/")


@pytest.mark.parametrize(
    "url", ["ftp://example.com/", "http:///nohost", "http://user:pw@example.com/", "http://example.com:99999/"]
)
def test_parse_endpoint_rejects_bad_urls(url: str) -> None:
    with pytest.raises(EndpointRejected):
        parse_endpoint(url)
