"""MNS request signature verification (``Authorization: MNS AccessKeyId:Signature``).

String to sign (what aliyun-mns-sdk computes, see vendor-wire.md §5.4; shared with the pushes,
``app.notify.signing.string_to_sign``)::

    METHOD \n Content-MD5 \n Content-Type \n Date \n CanonicalizedMNSHeaders CanonicalizedResource

where the resource is the request-target exactly as sent (raw path and raw query), so the caller
must hand us ``RAW_URI`` rather than a decoded path. Host is not signed. Checks run cheapest and
least revealing first: header shape, clock window, then the key, then the body digest, then HMAC.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

from app.dialects.mns.errors import MnsError
from app.notify.signing import string_to_sign


@dataclass(frozen=True)
class MnsCaller:
    access_key_id: str
    account: str  # the namespace for queues and topics: the key's tenant


def sign(secret: str, text: str) -> str:
    digest = hmac.new(secret.encode("utf-8"), text.encode("utf-8"), hashlib.sha1).digest()
    return base64.b64encode(digest).decode("ascii")


def content_md5_ok(header: str, body: bytes) -> bool:
    """Accept both the SDK's quirk (base64 of the hex digest) and the RFC 1864 form (raw digest)."""
    digest = hashlib.md5(body)
    expected = {
        base64.b64encode(digest.hexdigest().encode("ascii")).decode("ascii"),
        base64.b64encode(digest.digest()).decode("ascii"),
    }
    return header.strip() in expected


def verify(
    *,
    method: str,
    headers: list[tuple[str, str]],
    resource: str,
    body: bytes,
    secret_lookup: Callable[[str], str | None],
    account_lookup: Callable[[str], str | None],
    now: datetime,
    skew_s: int,
) -> MnsCaller:
    lower = {k.lower(): v for k, v in headers}
    auth = lower.get("authorization")
    if not auth:
        raise MnsError("MissingAuthorizationHeader", "The Authorization header is missing.", 400)
    scheme, _, credential = auth.partition(" ")
    ak, sep, signature = credential.rpartition(":")
    if scheme != "MNS" or not sep or not ak or not signature:
        raise MnsError(
            "InvalidAuthorizationHeader", "The Authorization header must be 'MNS AccessKeyId:Signature'.", 400
        )
    date = lower.get("x-mns-date") or lower.get("date")
    if not date:
        raise MnsError("MissingDateHeader", "The Date header is missing.", 400)
    try:
        when = parsedate_to_datetime(date)
    except (TypeError, ValueError):
        raise MnsError("InvalidDateHeader", f"The Date header {date!r} is not RFC 1123.", 400) from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    if abs((now - when).total_seconds()) > skew_s:
        raise MnsError("TimeExpired", "The http request you sent is expired.", 408)
    secret = secret_lookup(ak)
    account = account_lookup(ak) if secret is not None else None
    if secret is None or account is None:
        raise MnsError("InvalidAccessKeyId", "The access Id you provided is not exist.", 403)
    md5_header = lower.get("content-md5", "")
    if md5_header and not content_md5_ok(md5_header, body):
        raise MnsError("InvalidDegist", "The Content-MD5 you specified did not match what we received.", 400)
    text = string_to_sign(method, md5_header, lower.get("content-type", ""), lower.get("date", ""), headers, resource)
    if not hmac.compare_digest(sign(secret, text), signature):
        raise MnsError(
            "SignatureDoesNotMatch",
            "The request signature we calculated does not match the signature you provided.",
            403,
        )
    return MnsCaller(ak, account)
