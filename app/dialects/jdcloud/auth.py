"""JD Cloud request signatures: ``JDCLOUD3-HMAC-SHA256`` (jdcloud-sdk 1.6.99 and later) and
``JDCLOUD2-HMAC-SHA256`` (older SDKs, e.g. 1.6.50), recipes in ``docs/vendor-wire.md`` §3.5.

Both share the frame (canonical request -> string to sign -> a key derived day/region/service
deep from ``JDCLOUDn`` + secret) and differ in the details, which the algorithm name picks:

============== ============================================ ==========================================
part           JDCLOUD3                                     JDCLOUD2
============== ============================================ ==========================================
URI            quote(collapse '//', unquote_plus(raw path)) quote(path as the SDK built it)
query          each piece unquote_plus'd then quote'd;      raw pieces, stripped; a bare key is ``k=``
               a piece without ``=`` is dropped
header values  stripped                                     as sent
signed headers ``content-type;host`` (date, nonce unsigned) ``...;x-jdcloud-date;x-jdcloud-nonce``
============== ============================================ ==========================================

Whatever the client lists in ``SignedHeaders`` is what is canonicalised (``host`` is the Host
header as received, which is what the SDK signs: it leaves out a default port, as does requests).
The scheme only parses; the shared gate checks the clock window on ``x-jdcloud-date``, the key,
the signature, and the ``x-jdcloud-nonce`` against replays.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import quote, unquote, unquote_plus

from app.core.errors import AuthFailure, Unauthenticated
from app.gateway import signing
from app.gateway.gate import SignedClaim
from app.gateway.raw import RawRequest

SERVICE = "mps"
DATE_HEADER = "x-jdcloud-date"
NONCE_HEADER = "x-jdcloud-nonce"
CONTENT_SHA256_HEADER = "x-jdcloud-content-sha256"
DATE_FORMAT = "%Y%m%dT%H%M%SZ"


@dataclass(frozen=True)
class Version:
    algorithm: str
    key_prefix: str  # prepended to the secret for the first HMAC
    terminator: str  # last element of the credential scope


JDCLOUD3 = Version("JDCLOUD3-HMAC-SHA256", "JDCLOUD3", "jdcloud3_request")
JDCLOUD2 = Version("JDCLOUD2-HMAC-SHA256", "JDCLOUD2", "jdcloud2_request")
VERSIONS = {v.algorithm: v for v in (JDCLOUD3, JDCLOUD2)}

_FIELD = re.compile(r"\s*(Credential|SignedHeaders|Signature)=([^,\s]*)\s*(?:,|$)")


@dataclass(frozen=True)
class Authorization:
    version: Version
    access_key_id: str
    date: str  # yyyymmdd of the scope
    region: str
    service: str
    signed_headers: tuple[str, ...]
    signature: str

    @property
    def scope(self) -> str:
        return f"{self.date}/{self.region}/{self.service}/{self.version.terminator}"


def _malformed(message: str) -> Unauthenticated:
    return Unauthenticated(AuthFailure.MALFORMED, message)


def parse_authorization(header: str) -> Authorization:
    algorithm, _, rest = header.strip().partition(" ")
    version = VERSIONS.get(algorithm)
    if version is None:
        raise _malformed(
            f"the Authorization header must start with JDCLOUD3-HMAC-SHA256 or JDCLOUD2-HMAC-SHA256, got {algorithm!r}"
        )
    fields: dict[str, str] = {}
    pos = 0
    rest = rest.strip()
    while pos < len(rest):
        m = _FIELD.match(rest, pos)
        if m is None or m.group(1) in fields:
            raise _malformed("the Authorization header must be 'ALGO Credential=..., SignedHeaders=..., Signature=...'")
        fields[m.group(1)] = m.group(2)
        pos = m.end()
    if set(fields) != {"Credential", "SignedHeaders", "Signature"}:
        raise _malformed("the Authorization header needs Credential, SignedHeaders and Signature")
    parts = fields["Credential"].split("/")
    if len(parts) != 5 or not all(parts):
        raise _malformed("Credential must be AccessKeyId/yyyymmdd/region/service/" + version.terminator)
    key_id, date, region, service, terminator = parts
    if terminator != version.terminator:
        raise _malformed(f"the credential scope of {version.algorithm} must end in {version.terminator}")
    if service != SERVICE:
        raise _malformed(f"the credential scope names service {service!r}; this is {SERVICE!r}")
    names = tuple(fields["SignedHeaders"].split(";"))
    if "host" not in names or any(not n or n != n.lower() for n in names):
        raise _malformed("SignedHeaders must be lower-case names separated by ';' and include host")
    if not fields["Signature"]:
        raise _malformed("the Authorization header has an empty Signature")
    return Authorization(version, key_id, date, region, service, names, fields["Signature"])


def canonical_uri(version: Version, raw_path: str) -> str:
    if version is JDCLOUD2:
        # The old SDK quoted the path it built (unencoded ids); requests then %-encoded the
        # request line. Undoing that one encoding gives back the text the SDK quoted.
        return quote(unquote(raw_path))
    path = re.sub("/+", "/", unquote_plus(raw_path))
    if path == "":
        return "/"
    encoded = quote(path, safe="/~")
    return encoded if encoded.startswith("/") else "/" + encoded


def canonical_query(version: Version, raw_query: str) -> str:
    if version is JDCLOUD2:
        params = sorted([p.strip() for p in piece.split("=")] for piece in raw_query.split("&") if piece)
        return "&".join(f"{p[0]}={p[1] if len(p) == 2 else ('%3D'.join(p[1:]) if len(p) > 2 else '')}" for p in params)
    pairs = sorted(
        [quote(unquote_plus(part), safe="~") for part in piece.split("=", 1)] for piece in raw_query.split("&") if piece
    )
    return "&".join(f"{p[0]}={p[1]}" for p in pairs if p[0] and len(p) == 2)


def canonical_headers(version: Version, request: RawRequest, names: tuple[str, ...]) -> str:
    values: dict[str, list[str]] = {}
    for key, value in request.headers:
        values.setdefault(key.lower(), []).append(value)
    lines = []
    for name in names:  # in the client's order: the SDKs sort them
        if name == "host":
            found = [request.host]
        else:
            found = values.get(name, [])
        if version is JDCLOUD3:
            found = [v.strip() for v in found]
        lines.append(f"{name}:{','.join(found)}")
    return "\n".join(lines) + "\n"


def string_to_sign(auth: Authorization, request: RawRequest, date: str) -> str:
    path = request.target.split("?", 1)[0]
    canonical_request = "\n".join(
        [
            request.method,
            canonical_uri(auth.version, path),
            canonical_query(auth.version, request.query),
            canonical_headers(auth.version, request, auth.signed_headers),
            ";".join(auth.signed_headers),
            signing.sha256_hex(request.body),
        ]
    )
    return "\n".join([auth.version.algorithm, date, auth.scope, signing.sha256_hex(canonical_request.encode("utf-8"))])


def sign(auth: Authorization, secret: str, text: str) -> str:
    key = signing.hmac_sha256(auth.version.key_prefix + secret, auth.date)
    for part in (auth.region, auth.service, auth.version.terminator):
        key = signing.hmac_sha256(key, part)
    return signing.hmac_sha256_hex(key, text)


def jdcloud_scheme(request: RawRequest) -> SignedClaim:
    """Parse a JDCLOUD2/3 request for the shared gate (shape, date, body digest, nonce)."""
    header = request.header("Authorization")
    if not header:
        raise Unauthenticated(AuthFailure.MISSING, "the request is not signed: the Authorization header is missing")
    auth = parse_authorization(header)
    date = request.header(DATE_HEADER).strip()
    if not date:
        raise _malformed(f"the {DATE_HEADER} header is missing")
    try:
        signed_at = datetime.strptime(date, DATE_FORMAT).replace(tzinfo=UTC)
    except ValueError:
        raise _malformed(f"{DATE_HEADER} must be yyyymmddTHHMMSSZ, got {date!r}") from None
    if date[:8] != auth.date:
        raise _malformed(f"the credential scope date {auth.date} is not the day of {DATE_HEADER} {date}")
    nonce = request.header(NONCE_HEADER).strip()
    if not nonce or len(nonce) > 128:
        raise _malformed(f"the {NONCE_HEADER} header is missing (or longer than 128 characters)")
    declared = request.header(CONTENT_SHA256_HEADER).strip()
    if declared and declared.lower() != signing.sha256_hex(request.body):
        raise Unauthenticated(AuthFailure.BAD_SIGNATURE, f"{CONTENT_SHA256_HEADER} does not match the request body")
    text = string_to_sign(auth, request, date)
    return SignedClaim(
        access_key_id=auth.access_key_id,
        signature=auth.signature,
        expected_signature=lambda secret: sign(auth, secret, text),
        signed_at=signed_at,
        nonce=nonce,
    )
