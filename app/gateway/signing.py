"""The signing toolkit every dialect's scheme is built from: digests, HMACs, RFC 3986 encoding,
canonical query strings and headers. Pure functions; each scheme composes them its vendor's way
(``docs/vendor-wire.md`` has the exact recipes).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Iterable
from urllib.parse import quote, unquote, unquote_plus

UNRESERVED = "-_.~"


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def hmac_sha1_b64(key: str | bytes, text: str) -> str:
    return base64.b64encode(_hmac(key, text, "sha1")).decode("ascii")


def hmac_sha256_hex(key: str | bytes, text: str) -> str:
    return _hmac(key, text, "sha256").hex()


def hmac_sha256(key: str | bytes, text: str) -> bytes:
    return _hmac(key, text, "sha256")


def _hmac(key: str | bytes, text: str, algo: str) -> bytes:
    raw = key.encode("utf-8") if isinstance(key, str) else key
    return hmac.new(raw, text.encode("utf-8"), algo).digest()


def same(a: str, b: str) -> bool:
    """Constant-time comparison of two signatures."""
    return hmac.compare_digest(a.encode("utf-8"), b.encode("utf-8"))


def percent_encode(text: str, safe: str = UNRESERVED) -> str:
    """RFC 3986 encoding (space -> %20, ``~`` kept), what every vendor's canonical form uses."""
    return quote(text, safe=safe)


def parse_query(raw: str, *, plus_is_space: bool = True) -> list[tuple[str, str]]:
    """``a=1&b=x%20y`` -> decoded pairs in order, keeping empty values and repeats."""
    pairs: list[tuple[str, str]] = []
    for part in raw.split("&"):
        if not part:
            continue
        name, _, value = part.partition("=")
        if plus_is_space:
            pairs.append((unquote_plus(name), unquote_plus(value)))
        else:
            pairs.append((unquote(name), unquote(value)))
    return pairs


def canonical_query(pairs: Iterable[tuple[str, str]], *, drop: frozenset[str] = frozenset()) -> str:
    """Sorted, RFC 3986-encoded ``k=v`` pairs joined with ``&`` (RPC v1, ACS3, JDCLOUD, SDK-HMAC)."""
    encoded = sorted((percent_encode(k), percent_encode(v)) for k, v in pairs if k not in drop)
    return "&".join(f"{k}={v}" for k, v in encoded)


def canonical_headers(headers: Iterable[tuple[str, str]], names: Iterable[str]) -> str:
    """``name:value\\n`` for each signed header, lower-cased names in the given order, values trimmed
    (repeated headers joined with ``,``)."""
    by_name: dict[str, list[str]] = {}
    for key, value in headers:
        by_name.setdefault(key.lower(), []).append(" ".join(value.strip().split()))
    return "".join(f"{n}:{','.join(by_name.get(n, []))}\n" for n in names)
