"""MNS request signature verification (``Authorization: MNS AccessKeyId:Signature``).

String to sign (what aliyun-mns-sdk computes, see ``docs/vendor-wire.md`` §5.4; shared with the pushes,
``app.notify.signing.string_to_sign``)::

    METHOD \n Content-MD5 \n Content-Type \n Date \n CanonicalizedMNSHeaders CanonicalizedResource

where the resource is the request-target exactly as sent (raw path and raw query), so the caller
must hand us ``RAW_URI`` rather than a decoded path (``RawRequest.target``). Host is not signed.
The scheme checks shape, Date and the body digest; the shared gate (``app.gateway.gate``) then
checks the clock window, the key and the HMAC, and throttles.
"""

from __future__ import annotations

import base64
import hashlib
from datetime import UTC
from email.utils import parsedate_to_datetime

from app.dialects.mns.errors import MnsError
from app.gateway import signing
from app.gateway.gate import SignedClaim
from app.gateway.raw import RawRequest
from app.notify.signing import string_to_sign


def sign(secret: str, text: str) -> str:
    return signing.hmac_sha1_b64(secret, text)


def content_md5_ok(header: str, body: bytes) -> bool:
    """Accept both the SDK's quirk (base64 of the hex digest) and the RFC 1864 form (raw digest)."""
    digest = hashlib.md5(body)
    expected = {
        base64.b64encode(digest.hexdigest().encode("ascii")).decode("ascii"),
        base64.b64encode(digest.digest()).decode("ascii"),
    }
    return header.strip() in expected


def mns_scheme(request: RawRequest) -> SignedClaim:
    """The MNS scheme for the shared gate: shape, Date and Content-MD5 here; the gate checks the
    clock window, the key and the HMAC in that order."""
    auth = request.header("Authorization")
    if not auth:
        raise MnsError("MissingAuthorizationHeader", "The Authorization header is missing.", 400)
    scheme, _, credential = auth.partition(" ")
    ak, sep, signature = credential.rpartition(":")
    if scheme != "MNS" or not sep or not ak or not signature:
        raise MnsError(
            "InvalidAuthorizationHeader", "The Authorization header must be 'MNS AccessKeyId:Signature'.", 400
        )
    date = request.header("x-mns-date") or request.header("Date")
    if not date:
        raise MnsError("MissingDateHeader", "The Date header is missing.", 400)
    try:
        when = parsedate_to_datetime(date)
    except (TypeError, ValueError):
        raise MnsError("InvalidDateHeader", f"The Date header {date!r} is not RFC 1123.", 400) from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    md5_header = request.header("Content-MD5")
    if md5_header and not content_md5_ok(md5_header, request.body):
        raise MnsError("InvalidDegist", "The Content-MD5 you specified did not match what we received.", 400)
    text = string_to_sign(
        request.method,
        md5_header,
        request.header("Content-Type"),
        request.header("Date"),
        list(request.headers),
        request.target,
    )
    return SignedClaim(
        access_key_id=ak, signature=signature, expected_signature=lambda secret: sign(secret, text), signed_at=when
    )
