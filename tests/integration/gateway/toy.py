"""A toy dialect defined entirely inside tests/: the seam's proof that a dialect needs no edit
under app/. One route, its own error format (``application/x-toy-error``: ``ERR <code>``), its
own signature scheme (``X-Toy-*`` headers, HMAC-SHA256 over method, target, time, nonce and
the body's digest).
"""

from __future__ import annotations

import time
from datetime import UTC, datetime

from flask import Blueprint, Request, Response, jsonify, request
from werkzeug.exceptions import HTTPException

from app.core.errors import AuthFailure, DomainError, Throttled, Unauthenticated
from app.gateway import signing
from app.gateway.dialect import Dialect, DialectServices, path_prefix
from app.gateway.gate import SignedClaim
from app.gateway.raw import RawRequest

PREFIX = "/toy"
CONTENT_TYPE = "application/x-toy-error"


class ToyError(Exception):
    """The toy's own refusal, raised by its scheme for a shape problem only it knows about."""


def string_to_sign(method: str, target: str, stamp: str, nonce: str, body: bytes) -> str:
    return "\n".join([method, target, stamp, nonce, signing.sha256_hex(body)])


def sign_headers(
    key_id: str, secret: str, method: str, target: str, body: bytes = b"", *, stamp: float | None = None, nonce: str
) -> dict[str, str]:
    """What a toy client sends."""
    when = str(int(time.time() if stamp is None else stamp))
    text = string_to_sign(method, target, when, nonce, body)
    return {
        "X-Toy-Key": key_id,
        "X-Toy-Time": when,
        "X-Toy-Nonce": nonce,
        "X-Toy-Sig": signing.hmac_sha256_hex(secret, text),
    }


def toy_scheme(raw: RawRequest) -> SignedClaim:
    key_id, stamp, nonce, sig = (raw.header(f"X-Toy-{h}") for h in ("Key", "Time", "Nonce", "Sig"))
    if not key_id:
        raise Unauthenticated(AuthFailure.MISSING, "no X-Toy-Key")
    if not stamp.isdigit():
        raise ToyError("X-Toy-Time must be epoch seconds")
    text = string_to_sign(raw.method, raw.target, stamp, nonce, raw.body)
    return SignedClaim(
        access_key_id=key_id,
        signature=sig,
        expected_signature=lambda secret: signing.hmac_sha256_hex(secret, text),
        signed_at=datetime.fromtimestamp(int(stamp), tz=UTC),
        nonce=nonce or None,
    )


def create_blueprint(services: DialectServices) -> Blueprint:
    bp = Blueprint("toy", __name__, url_prefix=PREFIX)

    @bp.get("/echo")
    def echo() -> Response:
        caller = services.gate.admit(RawRequest.from_flask(request), toy_scheme)
        if request.args.get("boom"):
            raise RuntimeError("the toy broke")  # an unexpected exception, after authentication
        return jsonify({"tenant": caller.tenant})

    return bp


_AUTH_CODES = {
    AuthFailure.MISSING: "NoCredentials",
    AuthFailure.MALFORMED: "BadCredentials",
    AuthFailure.UNKNOWN_KEY: "WhoAreYou",
    AuthFailure.BAD_SIGNATURE: "BadSig",
    AuthFailure.STALE: "Stale",
    AuthFailure.REPLAYED: "Replay",
}


def render_error(exc: Exception) -> Response:
    if isinstance(exc, ToyError):
        code, status = "BadShape", 400
    elif isinstance(exc, Unauthenticated):
        code, status = _AUTH_CODES[exc.reason], 403
    elif isinstance(exc, Throttled):
        code, status = "SlowDown", 429
    elif isinstance(exc, DomainError):
        code, status = exc.code, 400
    elif isinstance(exc, HTTPException):
        code, status = {404: "NoSuchThing", 405: "WrongVerb", 413: "TooBig"}.get(exc.code or 0, "Http"), exc.code or 400
    else:
        code, status = "Oops", 500
    return Response(f"ERR {code}", status, content_type=CONTENT_TYPE)


def _owns(req: Request) -> bool:
    return path_prefix(PREFIX)(req)


TOY = Dialect(
    name="toy",
    create_blueprint=create_blueprint,
    render_error=render_error,
    owns=_owns,
    expected_errors=(ToyError,),
)
