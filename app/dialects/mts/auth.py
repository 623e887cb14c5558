"""The two signature schemes Alibaba's SDKs send to an RPC endpoint (``docs/vendor-wire.md``).

* RPC v1, HMAC-SHA1 in the query (``aliyun-python-sdk-core``, and the Tea SDK with
  ``signature_algorithm="v2"``, §1.6 / §2.3)::

      StringToSign = METHOD "&" pe("/") "&" pe(sorted "k=v" of every parameter but Signature)
      Signature    = base64(HMAC-SHA1(AccessKeySecret + "&", StringToSign))

* ACS3-HMAC-SHA256 in ``Authorization`` (the Tea SDK's default, §2.6; ``ACS3-HMAC-SM3`` is the
  same recipe with SM3)::

      CanonicalRequest = METHOD \\n "/" \\n sorted query \\n signed headers \\n SignedHeaders \\n hex(hash(body))
      StringToSign     = ALGORITHM \\n hex(hash(CanonicalRequest))
      Signature        = hex(HMAC(AccessKeySecret, StringToSign))

The scheme only parses: shape errors are Alibaba's own codes (``MissingSignatureNonce``,
``InvalidTimeStamp.Format``, ``IncompleteSignature`` ...); the shared gate checks the clock window,
the key, the signature and the nonce. The string to sign is left in ``g`` so that a mismatch can
be answered as Alibaba does, with the server's string to sign in the message.
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import datetime

from flask import g

from app.dialects.mts.errors import MtsError, missing
from app.dialects.mts.schema import params_of, parse_time
from app.gateway import signing
from app.gateway.gate import SignedClaim
from app.gateway.raw import RawRequest

RPC_METHOD = "HMAC-SHA1"
RPC_VERSION = "1.0"
ACS3_HASHES = {"ACS3-HMAC-SHA256": "sha256", "ACS3-HMAC-SM3": "sm3"}
ACS3_REQUIRED = ("host", "x-acs-date", "x-acs-signature-nonce")


def scheme(raw: RawRequest) -> SignedClaim:
    """Whichever of the two the request carries: an ACS3 ``Authorization`` header, else RPC v1."""
    auth = raw.header("Authorization")
    if auth.startswith("ACS3-"):
        return acs3_claim(raw, auth)
    return rpc_claim(raw)


def _when(value: str) -> datetime:
    when = parse_time(value)
    if when is None:
        raise MtsError("InvalidTimeStamp.Format", "Specified time stamp or date value is not well formatted.")
    return when


# --- RPC v1 -------------------------------------------------------------------------------------


def rpc_string_to_sign(method: str, pairs: list[tuple[str, str]]) -> str:
    canon = signing.canonical_query(pairs, drop=frozenset({"Signature"}))
    return f"{method.upper()}&{signing.percent_encode('/')}&{signing.percent_encode(canon)}"


def rpc_sign(secret: str, string_to_sign: str) -> str:
    return signing.hmac_sha1_b64(secret + "&", string_to_sign)


def rpc_claim(raw: RawRequest) -> SignedClaim:
    pairs = params_of(raw)
    params = dict(pairs)
    for name in ("AccessKeyId", "Signature", "Timestamp", "SignatureNonce"):
        if not params.get(name):
            raise missing(name)
    if params.get("SignatureMethod", RPC_METHOD) != RPC_METHOD:
        raise MtsError(
            "InvalidSignatureMethod", f"Specified signature method {params['SignatureMethod']!r} is not supported."
        )
    if params.get("SignatureVersion", RPC_VERSION) != RPC_VERSION:
        raise MtsError(
            "InvalidSignatureVersion", f"Specified signature version {params['SignatureVersion']!r} is not supported."
        )
    if params.get("SignatureType"):  # BEARERTOKEN: no bearer tokens here, only access keys
        raise MtsError(
            "InvalidSignatureType", f"Specified signature type {params['SignatureType']!r} is not supported."
        )
    text = rpc_string_to_sign(raw.method, pairs)
    g.mts_string_to_sign = text
    return SignedClaim(
        access_key_id=params["AccessKeyId"],
        signature=params["Signature"],
        expected_signature=lambda secret: rpc_sign(secret, text),
        signed_at=_when(params["Timestamp"]),
        nonce=params["SignatureNonce"],
    )


# --- ACS3 -----------------------------------------------------------------------------------------


def _fields(credential_part: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in credential_part.split(","):
        name, sep, value = item.strip().partition("=")
        if sep:
            out[name.strip()] = value.strip()
    return out


def acs3_canonical_headers(raw: RawRequest, names: list[str]) -> str:
    """As the Tea SDK builds them: lower-case names, values stripped (inner spaces kept), repeated
    values sorted and joined with ``,``."""
    values: dict[str, list[str]] = {}
    for key, value in raw.headers:
        values.setdefault(key.lower(), []).append(value.strip())
    return "".join(f"{n}:{','.join(sorted(values.get(n, [])))}\n" for n in names)


def acs3_string_to_sign(raw: RawRequest, algorithm: str, signed: list[str]) -> str:
    digest = ACS3_HASHES[algorithm]
    query = "&".join(
        f"{k}={signing.percent_encode(v)}" for k, v in sorted(signing.parse_query(raw.query, plus_is_space=True))
    )
    canonical = "\n".join(
        (
            raw.method.upper(),
            "/",
            query,
            acs3_canonical_headers(raw, signed),
            ";".join(signed),
            hashlib.new(digest, raw.body).hexdigest(),
        )
    )
    return f"{algorithm}\n{hashlib.new(digest, canonical.encode('utf-8')).hexdigest()}"


def acs3_sign(secret: str, algorithm: str, string_to_sign: str) -> str:
    digest = ACS3_HASHES[algorithm]
    return hmac.new(secret.encode("utf-8"), string_to_sign.encode("utf-8"), digest).hexdigest()


def acs3_claim(raw: RawRequest, auth: str) -> SignedClaim:
    algorithm, _, rest = auth.partition(" ")
    if algorithm not in ACS3_HASHES:
        raise MtsError("InvalidSignatureMethod", f"Specified signature algorithm {algorithm!r} is not supported.")
    fields = _fields(rest)
    credential, signed_raw, signature = fields.get("Credential"), fields.get("SignedHeaders"), fields.get("Signature")
    if not credential or not signed_raw or not signature:
        raise MtsError("IncompleteSignature", "The request signature does not conform to Aliyun standards.")
    signed = [h.strip().lower() for h in signed_raw.split(";") if h.strip()]
    if any(h not in signed for h in ACS3_REQUIRED):
        raise MtsError(
            "IncompleteSignature", f"The signed headers must include {', '.join(ACS3_REQUIRED)}; got {signed_raw!r}."
        )
    date, nonce = raw.header("x-acs-date"), raw.header("x-acs-signature-nonce")
    if not date:
        raise missing("Timestamp")
    if not nonce:
        raise missing("SignatureNonce")
    text = acs3_string_to_sign(raw, algorithm, signed)
    g.mts_string_to_sign = text
    return SignedClaim(
        access_key_id=credential,
        signature=signature.lower(),
        expected_signature=lambda secret: acs3_sign(secret, algorithm, text),
        signed_at=_when(date),
        nonce=nonce,
    )
