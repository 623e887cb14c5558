"""Huawei Cloud's ``SDK-HMAC-SHA256`` AK/SK signature (``docs/vendor-wire.md`` §4.5), as the
official ``huaweicloudsdkcore`` signer computes it::

    CanonicalRequest = METHOD \\n CanonicalURI \\n CanonicalQuery \\n CanonicalHeaders \\n SignedHeaders \\n HashedPayload
    StringToSign     = "SDK-HMAC-SHA256" \\n X-Sdk-Date \\n hex(sha256(CanonicalRequest))
    Signature        = hex(HMAC-SHA256(SK, StringToSign))

The canonical URI always ends with ``/`` (even though the request path does not); query pairs
are decoded, sorted, and re-encoded keeping only ``~`` and RFC 3986's unreserved characters;
header values are trimmed but not folded (the signed ``User-Agent`` carries runs of characters
a folding signer would change). The scheme only parses; the shared gate checks the clock window
(``X-Sdk-Date``), the key and the signature, and throttles. Huawei sends no nonce.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from urllib.parse import quote, unquote

from app.core.errors import AuthFailure, Unauthenticated
from app.dialects.huawei.errors import HuaweiError
from app.gateway import signing
from app.gateway.gate import AuthScheme, SignedClaim
from app.gateway.raw import RawRequest

ALGORITHM = "SDK-HMAC-SHA256"
DATE_FORMAT = "%Y%m%dT%H%M%SZ"
UNSIGNED_PAYLOAD = "UNSIGNED-PAYLOAD"
REQUIRED_SIGNED = ("host", "x-sdk-date")
_PARAM = re.compile(r"\s*([A-Za-z]+)=([^,]*)\s*(?:,|$)")


def _quote(text: str) -> str:
    return quote(text, safe="~")


def canonical_uri(raw_path: str) -> str:
    """Each decoded segment re-encoded, and a trailing ``/`` (``/v1/<pid>/thumbnails/``)."""
    uri = "/".join(_quote(segment) for segment in unquote(raw_path).split("/"))
    return uri if uri.endswith("/") else uri + "/"


def canonical_query(raw_query: str) -> str:
    """Decoded pairs sorted by name then value (repeats kept: ``task_id=a&task_id=b``), re-encoded.
    ``+`` is a literal plus: the SDK encodes spaces as ``%20``."""
    pairs = sorted(signing.parse_query(raw_query, plus_is_space=False))
    return "&".join(f"{_quote(k)}={_quote(v)}" for k, v in pairs)


def header_text(request: RawRequest, name: str) -> str:
    """A header value as the client signed it: WSGI hands over latin-1, the SDK signs the UTF-8 text."""
    value = request.header(name)
    try:
        value = value.encode("latin-1").decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        pass
    return value.strip()


def payload_hash(request: RawRequest) -> str:
    """sha256 of the body; the SDK's ``UNSIGNED-PAYLOAD`` is honoured only where the SDK sends it
    (non-JSON bodies), so a JSON body, the only kind this API reads, is always covered."""
    if not request.body:
        return signing.sha256_hex(b"")
    content_type = request.header("Content-Type").lower()
    declared = request.header("X-Sdk-Content-Sha256").strip()
    if declared == UNSIGNED_PAYLOAD and not content_type.startswith(("application/json", "application/bson")):
        return UNSIGNED_PAYLOAD
    return signing.sha256_hex(request.body)


def parse_authorization(header: str) -> tuple[str, list[str], str]:
    """``SDK-HMAC-SHA256 Access=AK, SignedHeaders=a;b, Signature=hex`` -> (AK, headers, signature)."""
    algorithm, _, rest = header.strip().partition(" ")
    if algorithm != ALGORITHM:
        raise Unauthenticated(
            AuthFailure.MALFORMED, f"the Authorization header must be signed with {ALGORITHM}, got {algorithm!r}"
        )
    params = {m.group(1): m.group(2).strip() for m in _PARAM.finditer(rest)}
    access, signed, signature = params.get("Access"), params.get("SignedHeaders"), params.get("Signature")
    if not access or not signed or not signature:
        raise Unauthenticated(
            AuthFailure.MALFORMED, "the Authorization header must carry Access, SignedHeaders and Signature"
        )
    return access, signed.lower().split(";"), signature


def string_to_sign(request: RawRequest, signed_headers: list[str], sdk_date: str) -> str:
    headers = "".join(f"{name}:{header_text(request, name)}\n" for name in signed_headers)
    raw_path = request.target.split("?", 1)[0]
    canonical = "\n".join(
        [
            request.method.upper(),
            canonical_uri(raw_path),
            canonical_query(request.query),
            headers,
            ";".join(signed_headers),
            payload_hash(request),
        ]
    )
    return f"{ALGORITHM}\n{sdk_date}\n{signing.sha256_hex(canonical.encode('utf-8'))}"


def scheme_for(project_id: str) -> AuthScheme:
    """The scheme for a request to ``/v1/<project_id>/...``: ``X-Project-Id``, when sent, must name
    the same project (the SDK sends it whenever its credentials carry a project id)."""

    def scheme(request: RawRequest) -> SignedClaim:
        header = request.header("Authorization")
        if not header:
            raise Unauthenticated(AuthFailure.MISSING, "the Authorization header (AK/SK signature) is missing")
        access, signed_headers, signature = parse_authorization(header)
        missing = [name for name in REQUIRED_SIGNED if name not in signed_headers]
        if missing:
            raise Unauthenticated(AuthFailure.MALFORMED, f"SignedHeaders must include {' and '.join(missing)}")
        sdk_date = request.header("X-Sdk-Date").strip()
        try:
            signed_at = datetime.strptime(sdk_date, DATE_FORMAT).replace(tzinfo=UTC)
        except ValueError:
            raise Unauthenticated(
                AuthFailure.MALFORMED, f"X-Sdk-Date must be a UTC time such as 20260101T120000Z, got {sdk_date!r}"
            ) from None
        claimed_project = request.header("X-Project-Id").strip()
        if claimed_project and claimed_project != project_id:
            raise HuaweiError(
                403,
                "MPC.10203",
                f"Authentication failed: X-Project-Id {claimed_project!r} does not match the project "
                f"{project_id!r} in the request path",
            )
        text = string_to_sign(request, signed_headers, sdk_date)
        return SignedClaim(
            access_key_id=access,
            signature=signature.lower(),
            expected_signature=lambda secret: signing.hmac_sha256_hex(secret, text),
            signed_at=signed_at,
        )

    return scheme
