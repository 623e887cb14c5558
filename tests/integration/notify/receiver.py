"""A push receiver on 127.0.0.1 that verifies both signatures on every request it gets.

MNS's RSA-SHA1 is checked the way a careful receiver should: the certificate URL must be under
the expected prefix, it is fetched and its public key verifies the string to sign. Standard
Webhooks' HMAC is checked with the ``standardwebhooks`` package itself.
"""

from __future__ import annotations

import base64
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import httpx
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from standardwebhooks.webhooks import Webhook
from werkzeug.wrappers import Request, Response

from app.notify.signing import string_to_sign
from tests.servers import serve_wsgi


@dataclass
class Received:
    at: float  # monotonic seconds
    path: str
    headers: dict[str, str]
    body: bytes
    mns_signature_ok: bool
    webhook_signature_ok: bool


@dataclass
class Receiver:
    cert_prefix: str
    webhook_secret: str = ""
    answer: Callable[[int], int] = lambda n: 204  # attempt number (1-based) -> status
    hold: threading.Event | None = None  # when set: wait for it before answering
    got: list[Received] = field(default_factory=list)
    entered: threading.Event = field(default_factory=threading.Event)
    certs: dict[str, x509.Certificate] = field(default_factory=dict)  # cached by URL, as MNS advises

    def __post_init__(self) -> None:
        self.server, self.url = serve_wsgi(self._wsgi)

    def fetch_cert(self, cert_url: str) -> None:
        """Fetch ahead, as a receiver that caches certificates has done before the timed attempts."""
        self.certs[cert_url] = x509.load_pem_x509_certificate(httpx.get(cert_url).content)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def _wsgi(self, environ: dict[str, object], start_response: Callable[..., object]) -> object:
        req = Request(environ)  # type: ignore[arg-type]
        body = req.get_data()
        headers = {k.lower(): v for k, v in req.headers.items()}
        rec = Received(
            time.monotonic(),
            req.full_path.rstrip("?"),
            headers,
            body,
            self._mns_ok(req.method, req.full_path.rstrip("?"), headers),
            self._webhook_ok(body, headers),
        )
        self.got.append(rec)
        self.entered.set()
        if self.hold is not None:
            self.hold.wait(10)
        return Response(b"", status=self.answer(len(self.got)))(environ, start_response)

    def _mns_ok(self, method: str, path: str, headers: dict[str, str]) -> bool:
        cert_url = base64.b64decode(headers["x-mns-signing-cert-url"]).decode()
        if not cert_url.startswith(self.cert_prefix):
            return False
        if cert_url not in self.certs:
            self.fetch_cert(cert_url)
        cert = self.certs[cert_url]
        key = cert.public_key()
        assert isinstance(key, rsa.RSAPublicKey)
        text = string_to_sign(
            method, headers["content-md5"], headers["content-type"], headers["date"], headers.items(), path
        )
        try:
            key.verify(base64.b64decode(headers["authorization"]), text.encode(), padding.PKCS1v15(), hashes.SHA1())
        except Exception:  # noqa: BLE001 - InvalidSignature or a malformed header: both "not ok"
            return False
        return True

    def _webhook_ok(self, body: bytes, headers: dict[str, str]) -> bool:
        if not self.webhook_secret:
            return False
        try:
            Webhook(self.webhook_secret).verify(body, headers)
        except Exception:  # noqa: BLE001
            return False
        return True
