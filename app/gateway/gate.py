"""The one request pipeline every dialect runs a request through before it touches a use case.

Order, cheapest and least revealing first: the dialect's scheme parses its credentials out of
the raw request (shape only, no secret needed) -> the clock window -> the access key's secret ->
the signature (constant time) -> the nonce (only after the signature, so forged requests cannot
burn a client's nonces) -> the per-key throttle. Each refusal is a neutral core error
(``Unauthenticated`` with an ``AuthFailure`` reason, or ``Throttled``) that the dialect renders
in its vendor's codes.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

from app.core.errors import AuthFailure, Throttled, Unauthenticated
from app.gateway import signing
from app.gateway.raw import RawRequest


@dataclass(frozen=True)
class SignedClaim:
    """What a scheme reads from a request: who claims to sign it, when, and how to check it.

    ``expected_signature(secret)`` recomputes the signature the client must have sent; the gate
    compares it with ``signature`` in constant time. ``signed_at`` None: the scheme carries no
    timestamp (HTTP Basic). ``nonce`` None: the scheme sends none (Huawei, MNS, Basic).
    """

    access_key_id: str
    signature: str
    expected_signature: Callable[[str], str]
    signed_at: datetime | None = None
    nonce: str | None = None


# A scheme parses a request into a claim or raises (Unauthenticated MISSING/MALFORMED, or the
# dialect's own error type for a vendor-specific refusal such as a bad Content-MD5).
AuthScheme = Callable[[RawRequest], SignedClaim]


@dataclass(frozen=True)
class Caller:
    access_key_id: str
    tenant: str


@dataclass(frozen=True)
class KeyRecord:
    secret: str
    tenant: str


class KeyLookup(Protocol):
    def __call__(self, access_key_id: str) -> KeyRecord | None: ...


class NonceBook(Protocol):
    def first_use(self, access_key_id: str, nonce: str, ttl_s: int) -> bool:
        """True the first time (key, nonce) is seen within ``ttl_s``; False for a replay."""
        ...


class RateLimiter(Protocol):
    def take(self, access_key_id: str) -> float:
        """Spend one token; 0.0 when allowed, else seconds until a token is available."""
        ...


class RequestGate:
    def __init__(
        self,
        keys: KeyLookup,
        nonces: NonceBook,
        limiter: RateLimiter,
        *,
        clock_skew_s: int,
        clock: Callable[[], datetime] = lambda: datetime.now(tz=UTC),
    ) -> None:
        self.keys = keys
        self.nonces = nonces
        self.limiter = limiter
        self.clock_skew_s = clock_skew_s
        self.clock = clock

    def admit(self, request: RawRequest, scheme: AuthScheme) -> Caller:
        claim = scheme(request)
        if claim.signed_at is not None:
            skew = abs((self.clock() - claim.signed_at).total_seconds())
            if skew > self.clock_skew_s:
                raise Unauthenticated(
                    AuthFailure.STALE,
                    f"the request was signed {skew:.0f} s away from the server's clock; at most "
                    f"{self.clock_skew_s} s are allowed",
                )
        record = self.keys(claim.access_key_id)
        if record is None:
            raise Unauthenticated(AuthFailure.UNKNOWN_KEY, f"access key {claim.access_key_id!r} does not exist")
        if not signing.same(claim.expected_signature(record.secret), claim.signature):
            raise Unauthenticated(AuthFailure.BAD_SIGNATURE, "the signature does not match the access key's secret")
        # Nonces live twice the window: a request signed at +skew stays acceptable until then.
        if claim.nonce is not None and not self.nonces.first_use(
            claim.access_key_id, claim.nonce, 2 * self.clock_skew_s
        ):
            raise Unauthenticated(AuthFailure.REPLAYED, f"nonce {claim.nonce!r} was already used by this access key")
        wait = self.limiter.take(claim.access_key_id)
        if wait > 0:
            raise Throttled(wait)
        return Caller(claim.access_key_id, record.tenant)


def http_basic(request: RawRequest) -> SignedClaim:
    """HTTP Basic (id:secret): the scheme curl and every client speak without a signing library;
    the secret itself is the 'signature', compared in constant time by the gate."""
    header = request.header("Authorization")
    scheme, _, encoded = header.partition(" ")
    if not header:
        raise Unauthenticated(
            AuthFailure.MISSING, "missing credentials: send HTTP Basic auth with your access key id and secret"
        )
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except ValueError:
        decoded = ""
    key_id, sep, secret = decoded.partition(":")
    if scheme.lower() != "basic" or not sep or not key_id:
        raise Unauthenticated(AuthFailure.MALFORMED, "the Authorization header must be HTTP Basic id:secret")
    return SignedClaim(access_key_id=key_id, signature=secret, expected_signature=lambda s: s)
