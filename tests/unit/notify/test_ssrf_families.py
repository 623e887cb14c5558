"""SSRF classification of every address family that can smuggle a private target past a naive
check: IPv4-compatible and IPv4-mapped IPv6, NAT64, 6to4, Teredo, multicast, reserved ranges."""

from __future__ import annotations

import ipaddress

import pytest

from app.notify.errors import EndpointRejected
from app.notify.ssrf import EndpointGuard, classify


def teredo(server: str, client: str) -> str:
    """A Teredo address (RFC 4380): 2001:0::/32, the server, flags, obfuscated port and client."""
    s, c = int(ipaddress.IPv4Address(server)), int(ipaddress.IPv4Address(client))
    value = (0x20010000 << 96) | (s << 64) | (0x8000 << 48) | ((0xFFFF ^ 40000) << 32) | (c ^ 0xFFFFFFFF)
    return str(ipaddress.IPv6Address(value))


@pytest.mark.parametrize(
    ("address", "fragment"),
    [
        # ::/96, IPv4-compatible (deprecated): refused outright, even towards a public address
        ("::127.0.0.1", "IPv4-compatible"),
        ("::10.0.0.1", "IPv4-compatible"),
        ("::8.8.8.8", "IPv4-compatible"),
        # ::ffff:0:0/96, IPv4-mapped: judged as the IPv4 address
        ("::ffff:10.0.0.1", "private"),
        ("::ffff:169.254.169.254", "link-local"),
        # NAT64 64:ff9b::/96 towards a non-public IPv4; the local-use prefix always
        ("64:ff9b::10.0.0.1", "NAT64 embedding 10.0.0.1, which is private"),
        ("64:ff9b::127.0.0.1", "NAT64 embedding 127.0.0.1, which is loopback"),
        ("64:ff9b::169.254.169.254", "NAT64 embedding 169.254.169.254, which is link-local"),
        ("64:ff9b::100.100.100.200", "NAT64 embedding 100.100.100.200, which is shared address space"),
        ("64:ff9b:1::8.8.8.8", "local-use NAT64"),
        # 6to4 2002::/16 whose embedded IPv4 is not public
        ("2002:0a00:0001::1", "6to4 embedding 10.0.0.1, which is private"),
        ("2002:7f00:0001::1", "6to4 embedding 127.0.0.1, which is loopback"),
        ("2002:a9fe:a9fe::1", "6to4 embedding 169.254.169.254, which is link-local"),
        # Teredo 2001::/32 with a non-public client or server; any Teredo tunnel at all
        (teredo("8.8.8.8", "10.0.0.1"), "Teredo embedding 10.0.0.1, which is private"),
        (teredo("192.168.0.1", "8.8.4.4"), "Teredo embedding 192.168.0.1, which is private"),
        (teredo("8.8.8.8", "8.8.4.4"), "Teredo (2001::/32)"),
        # multicast, and reserved / special-purpose ranges of both families
        ("239.255.255.250", "multicast"),
        ("ff05::2", "multicast"),
        ("255.255.255.255", "reserved"),
        ("0.1.2.3", "reserved"),
        ("192.0.0.8", "reserved"),
        ("203.0.113.7", "reserved"),
        ("2001:db8::1", "reserved"),
        ("100::1", "reserved"),
        ("fec0::1", "reserved"),
    ],
)
def test_not_globally_routable_unicast_is_refused(address: str, fragment: str) -> None:
    reason = classify(ipaddress.ip_address(address))
    assert reason is not None and fragment in reason, (address, reason)


@pytest.mark.parametrize("address", ["8.8.8.8", "64:ff9b::8.8.8.8", "2002:0808:0808::1", "2a00:1450:4001::200e"])
def test_public_unicast_passes(address: str) -> None:
    assert classify(ipaddress.ip_address(address)) is None


def test_the_development_setting_opens_only_plain_loopback_and_private() -> None:
    dev = EndpointGuard(allow_private=True)
    assert dev.refusal("http://127.0.0.1:8080/hook") is None
    assert dev.refusal("http://[::ffff:10.0.0.1]/hook") is None
    for url in ("http://[::127.0.0.1]/", "http://[64:ff9b::10.0.0.1]/", "http://[2002:a00:1::1]/"):
        assert dev.refusal(url), url
    with pytest.raises(EndpointRejected) as refused:
        EndpointGuard(allow_private=False).resolve("http://[::127.0.0.1]/")
    assert refused.value.permanent


def test_a_name_that_does_not_resolve_is_not_a_permanent_refusal() -> None:
    with pytest.raises(EndpointRejected) as refused:
        EndpointGuard(allow_private=False).resolve("http://no-such-host.invalid/hook")
    assert not refused.value.permanent
    resolved_private = EndpointGuard(allow_private=False, resolver=lambda host, port: ["10.0.0.7"])
    with pytest.raises(EndpointRejected) as refused:
        resolved_private.resolve("http://example.com/hook")
    assert refused.value.permanent
