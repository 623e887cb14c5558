"""SSRF guard for push endpoints.

A subscriber chooses the URL we POST to, so without a guard anyone with an access key could make
openmps call its own Redis, a cloud metadata service (``100.100.100.200`` on Alibaba Cloud,
``169.254.169.254`` elsewhere) or anything else on the private network. The check happens at
connect time, on the addresses we are about to use: the name is resolved once, every address is
checked (one bad address rejects the name, so DNS round-robin cannot smuggle one in), and the
request is sent to a checked address with the original Host header (and SNI for HTTPS), so a
second resolution (DNS rebinding) cannot swap the target between the check and the connect.

Only globally routable unicast addresses pass. IPv6 forms that carry an IPv4 address are judged
by that address: IPv4-mapped ``::ffff:a.b.c.d``; NAT64 ``64:ff9b::/96`` (a NAT64 gateway forwards
to the embedded address, so ``64:ff9b::a00:1`` reaches 10.0.0.1); 6to4 ``2002::/16`` and Teredo
``2001::/32`` embedding a non-public IPv4. IPv4-compatible ``::a.b.c.d`` (``::/96``, deprecated
by RFC 4291, routed to the IPv4 address by some stacks) and the local-use NAT64 prefix
``64:ff9b:1::/48`` are refused outright, as are multicast, reserved and every other range
Python's ``ipaddress`` does not call global.

``allow_private`` (``OPENMPS_ALLOW_PRIVATE_ENDPOINTS``, local development and tests only) lets
loopback and RFC 1918 / ULA addresses through; link-local, the shared 100.64.0.0/10 range,
multicast, unspecified, reserved and embedded addresses stay blocked whatever the setting.

A refusal is permanent (``EndpointRejected.permanent``): the delivery is dead-lettered on that
attempt instead of retried on its schedule. Only a name that does not resolve right now is
retried.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

from app.notify.errors import EndpointRejected

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], list[str]]
SHARED_SPACE = ipaddress.ip_network("100.64.0.0/10")  # carrier-grade NAT; Alibaba metadata lives here
# Python's ``is_private`` also covers documentation, benchmarking and 240/4 ranges; only these
# are "private networks" that the development setting may open.
PRIVATE_NETWORKS = tuple(ipaddress.ip_network(n) for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7"))
IPV4_COMPATIBLE = ipaddress.ip_network("::/96")
NAT64 = ipaddress.ip_network("64:ff9b::/96")
NAT64_LOCAL = ipaddress.ip_network("64:ff9b:1::/48")
# IANA special-purpose blocks that are not globally reachable, named here so the answer does not
# depend on which Python's ``ipaddress`` tables are installed (3.11 lets 192.0.0.8 and fec0::/10 pass).
NOT_GLOBAL = tuple(
    ipaddress.ip_network(n)
    for n in (
        "0.0.0.0/8",
        "192.0.0.0/24",
        "192.0.2.0/24",
        "192.88.99.0/24",
        "198.18.0.0/15",
        "198.51.100.0/24",
        "203.0.113.0/24",
        "240.0.0.0/4",
        "100::/64",
        "2001::/23",
        "2001:db8::/32",
        "3fff::/20",
        "5f00::/16",
        "fec0::/10",
    )
)


def _embedded(ip: ipaddress.IPv6Address) -> tuple[str, list[ipaddress.IPv4Address]] | None:
    """(form, the IPv4 addresses it carries) for the IPv6 forms that lead to an IPv4 host."""
    if ip in NAT64:
        return "NAT64", [ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)]
    if ip.sixtofour is not None:
        return "6to4", [ip.sixtofour]
    if ip.teredo is not None:
        server, client = ip.teredo
        return "Teredo", [server, client]
    return None


def classify(ip: IPAddress) -> str | None:
    """Why ``ip`` is not a public unicast address, or None when it is."""
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        elif ip in IPV4_COMPATIBLE and int(ip) > 1:  # :: and ::1 are judged below
            return "IPv4-compatible IPv6 (::/96)"
        elif ip in NAT64_LOCAL:
            return "local-use NAT64 (64:ff9b:1::/48)"
        else:
            found = _embedded(ip)
            if found is not None:
                form, inner = found
                for v4 in inner:
                    reason = classify(v4)
                    if reason:
                        return f"{form} embedding {v4}, which is {reason}"
                if form == "Teredo":  # a tunnel through an IPv4 relay: not a host of its own
                    return "Teredo (2001::/32)"
                return None
    if ip.is_multicast:
        return "multicast"
    if ip.is_unspecified:
        return "unspecified"
    if ip.is_loopback:
        return "loopback"
    if ip.is_link_local:
        return "link-local"
    if isinstance(ip, ipaddress.IPv4Address) and ip in SHARED_SPACE:
        return "shared address space (100.64.0.0/10)"
    if any(ip in net for net in PRIVATE_NETWORKS if net.version == ip.version):
        return "private"
    if ip.is_reserved or not ip.is_global or any(ip in net for net in NOT_GLOBAL if net.version == ip.version):
        return "reserved"
    return None


ALLOWED_WHEN_PRIVATE_OK = frozenset({"loopback", "private"})


def system_resolver(host: str, port: int) -> list[str]:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise EndpointRejected(f"cannot resolve {host!r}: {exc}", permanent=False) from None
    return sorted({str(info[4][0]) for info in infos})


@dataclass(frozen=True)
class Endpoint:
    scheme: str
    host: str
    port: int
    target: str  # path plus query, at least "/"

    def url_for(self, address: str) -> str:
        """The URL that connects to ``address`` (already checked) instead of resolving again."""
        shown = f"[{address}]" if ":" in address else address
        return f"{self.scheme}://{shown}:{self.port}{self.target}"

    @property
    def host_header(self) -> str:
        default = 443 if self.scheme == "https" else 80
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.port == default else f"{host}:{self.port}"


def parse_endpoint(url: str) -> Endpoint:
    """Syntax only (no DNS): http(s), a host, no credentials in the URL."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise EndpointRejected(f"invalid endpoint URL {url!r}: {exc}") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise EndpointRejected(f"endpoint must be an http:// or https:// URL with a host, got {url!r}")
    if parts.username or parts.password:
        raise EndpointRejected("endpoint URLs must not carry credentials")
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return Endpoint(parts.scheme, parts.hostname, port or (443 if parts.scheme == "https" else 80), target)


class EndpointGuard:
    def __init__(self, *, allow_private: bool, resolver: Resolver = system_resolver) -> None:
        self.allow_private = allow_private
        self.resolver = resolver

    def _reason(self, ip: IPAddress) -> str | None:
        reason = classify(ip)
        if reason in ALLOWED_WHEN_PRIVATE_OK and self.allow_private:
            return None
        return reason

    def refusal(self, url: str) -> str | None:
        """``app.core.ports.EndpointPolicy``: why a URL may not be stored (a per-job ``webhook_url``)."""
        try:
            self.check_literal(url)
        except EndpointRejected as exc:
            return exc.message
        return None

    def check_literal(self, url: str) -> Endpoint:
        """At subscribe time: the URL's shape, and its host if it is an IP literal."""
        ep = parse_endpoint(url)
        try:
            ip = ipaddress.ip_address(ep.host)
        except ValueError:
            return ep
        reason = self._reason(ip)
        if reason:
            raise EndpointRejected(f"endpoint address {ep.host} is {reason}")
        return ep

    def resolve(self, url: str) -> tuple[Endpoint, str]:
        """At connect time: resolve, check every address, return the endpoint and one safe address."""
        ep = parse_endpoint(url)
        try:
            addresses = [ep.host] if ipaddress.ip_address(ep.host) else []
        except ValueError:
            addresses = self.resolver(ep.host, ep.port)
        if not addresses:
            raise EndpointRejected(f"{ep.host!r} resolves to no address")
        for address in addresses:
            reason = self._reason(ipaddress.ip_address(address))
            if reason:
                raise EndpointRejected(f"{ep.host} resolves to {address}, which is {reason}")
        return ep, addresses[0]
