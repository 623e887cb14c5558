"""A loopback HTTP(S) server for URL-input tests: real Range answers, redirects, errors, trickles.

Objects are served with werkzeug's conditional responses (``206`` with ``Content-Range`` for a
``Range`` request), as a CDN or an object store would. Per path, a test can make the server
answer a status, redirect, ignore Range, or trickle its answer slowly. Every request is logged
with its ``Host`` header and ``Range``, so tests can tell what the worker asked for and whom it
thought it was talking to. ``tls_files`` makes a CA and a server certificate for a made-up host
name, for HTTPS to a pinned address (the name resolved by a test resolver, checked by the cert).
"""

from __future__ import annotations

import datetime
import ssl
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server
from werkzeug.wrappers import Request, Response


@dataclass(frozen=True)
class Seen:
    path: str  # path and query, as sent
    host: str | None
    range: str | None


class _Handler(WSGIRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_request(self, *args: Any, **kwargs: Any) -> None:  # one line per range request is noise
        pass


@dataclass
class MediaServer:
    objects: dict[str, bytes] = field(default_factory=dict)  # path -> body
    statuses: dict[str, int] = field(default_factory=dict)  # path -> a status to answer instead
    redirects: dict[str, str] = field(default_factory=dict)  # path -> Location
    no_range: set[str] = field(default_factory=set)  # paths answered 200 with the whole body
    trickle: dict[str, float] = field(default_factory=dict)  # path -> seconds between 1 KiB pieces
    seen: list[Seen] = field(default_factory=list)
    _server: BaseWSGIServer | None = None

    def start(self, ssl_context: ssl.SSLContext | None = None) -> MediaServer:
        self._server = make_server(
            "127.0.0.1", 0, self._app, threaded=True, request_handler=_Handler, ssl_context=ssl_context
        )
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    @property
    def port(self) -> int:
        assert self._server is not None
        return self._server.server_port

    def url(self, path: str, host: str = "127.0.0.1", scheme: str = "http") -> str:
        return f"{scheme}://{host}:{self.port}{path}"

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def requests_for(self, path: str) -> list[Seen]:
        return [s for s in self.seen if s.path.split("?", 1)[0] == path]

    @Request.application  # type: ignore[arg-type]
    def _app(self, request: Request) -> Response:
        full = request.full_path.rstrip("?")
        self.seen.append(Seen(full, request.headers.get("Host"), request.headers.get("Range")))
        path = request.path
        if path in self.statuses:
            return Response(f"status {self.statuses[path]}", self.statuses[path])
        if path in self.redirects:
            return Response("", 302, headers={"Location": self.redirects[path]})
        body = self.objects.get(path)
        if body is None:
            return Response("not found", 404)
        if path in self.trickle:
            return Response(_trickled(body, self.trickle[path]), 200, headers={"Content-Length": str(len(body))})
        response = Response(body, 200, content_type="video/mp4")
        if path in self.no_range:
            return response
        return response.make_conditional(request, accept_ranges=True, complete_length=len(body))


def _trickled(body: bytes, pause_s: float) -> Iterator[bytes]:
    for start in range(0, len(body), 1024):
        time.sleep(pause_s)
        yield body[start : start + 1024]


@dataclass(frozen=True)
class TlsFiles:
    ca: Path  # the CA's certificate: what the client trusts
    cert: Path  # the server's chain (leaf, then CA)
    key: Path

    def server_context(self) -> ssl.SSLContext:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(self.cert, self.key)
        return ctx


def tls_files(folder: Path, host: str) -> TlsFiles:
    """A throwaway CA and a certificate it signs for ``host`` (a DNS name, no IP address: a
    client that checks the name it connected to, not the name in the URL, fails)."""
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "openmps test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    leaf_key = ec.generate_private_key(ec.SECP256R1())
    leaf = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)]))
        .issuer_name(ca_name)
        .public_key(leaf_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(host)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    files = TlsFiles(folder / "ca.pem", folder / "server.pem", folder / "server.key")
    files.ca.write_bytes(ca.public_bytes(pem))
    files.cert.write_bytes(leaf.public_bytes(pem) + ca.public_bytes(pem))
    files.key.write_bytes(leaf_key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    return files
