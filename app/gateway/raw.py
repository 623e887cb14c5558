"""The request as the client sent it: what every signature scheme is computed over.

Signatures cover the raw query string, the raw request-target, the body bytes and header values
exactly as received (``docs/vendor-wire.md`` §0.1), so a scheme must never see a decoded or
normalised form.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast
from urllib.parse import quote, urlsplit

if TYPE_CHECKING:  # flask is needed only by the web process that calls from_flask
    from flask import Request
    from flask.ctx import _AppCtxGlobals


@dataclass(frozen=True)
class RawRequest:
    method: str
    path: str  # decoded, as routed
    target: str  # request-target as sent: raw path, then "?" and the raw query when there is one
    query: str  # raw query string (latin-1 decoded bytes, still percent-encoded)
    headers: tuple[tuple[str, str], ...]  # as received, in order
    body: bytes
    host: str  # the Host header as sent (signed by ACS3, JDCLOUD, SDK-HMAC)

    def header(self, name: str, default: str = "") -> str:
        """First value of a header, matched case-insensitively."""
        lower = name.lower()
        for key, value in self.headers:
            if key.lower() == lower:
                return value
        return default

    @classmethod
    def from_flask(cls, request: Request, *, with_body: bool = True) -> RawRequest:
        """``with_body=False`` for a scheme that signs no body (HTTP Basic) on a streamed upload,
        whose body the view reads itself instead of holding it in memory."""
        query = request.query_string.decode("latin-1")
        return cls(
            method=request.method,
            path=request.path,
            target=_raw_target(request, query),
            query=query,
            headers=_headers(request.environ),
            body=request.get_data(cache=True) if with_body else b"",
            host=request.headers.get("Host", ""),
        )


def current_request() -> Request:
    """The request being handled itself rather than Flask's ``request`` proxy. Every attribute read
    through the proxy is first looked up on the proxy, fails there (building an AttributeError's
    message) and is then forwarded: about thirty reads a submission, 5 % of its instructions
    (callgrind). Views and hooks on the hot path read their attributes from this object."""
    global _request_proxy
    if _request_proxy is None:
        from flask import request  # the web process only, as for from_flask

        _request_proxy = request
    return cast("Request", cast(Any, _request_proxy)._get_current_object())


def current_globals() -> _AppCtxGlobals:
    """``flask.g`` itself, not its proxy (as ``current_request``): the shell's hooks read and
    write the request id, start time and tenant there on every request."""
    global _globals_proxy
    if _globals_proxy is None:
        from flask import g

        _globals_proxy = g
    return cast("_AppCtxGlobals", cast(Any, _globals_proxy)._get_current_object())


_request_proxy: Any = None
_globals_proxy: Any = None


_BODY_HEADERS = frozenset({"CONTENT_TYPE", "CONTENT_LENGTH"})
_HEADER_NAMES: dict[str, str] = {}  # environ key -> header name, for the names seen first
_MAX_HEADER_NAMES = 512  # clients choose the names: only so many are remembered


def _headers(environ: dict[str, Any]) -> tuple[tuple[str, str], ...]:
    """``tuple(request.headers.items())``, as werkzeug's ``EnvironHeaders`` lists them (names
    title-cased from their ``HTTP_`` keys, in environ order), with each name's spelling worked out
    once: rebuilding them all is most of this object's cost on every request."""
    out: list[tuple[str, str]] = []
    for key, value in environ.items():
        if key.startswith("HTTP_"):
            if key in ("HTTP_CONTENT_TYPE", "HTTP_CONTENT_LENGTH"):
                continue
        elif key not in _BODY_HEADERS or not value:
            continue
        name = _HEADER_NAMES.get(key)
        if name is None:
            name = (key[5:] if key.startswith("HTTP_") else key).replace("_", "-").title()
            if len(_HEADER_NAMES) < _MAX_HEADER_NAMES:
                _HEADER_NAMES[key] = name
        out.append((name, value))
    return tuple(out)


def _raw_target(request: Request, query: str) -> str:
    raw = request.environ.get("RAW_URI") or request.environ.get("REQUEST_URI")
    if raw:
        if raw.startswith(("http://", "https://")):  # absolute-form request-target
            parts = urlsplit(raw)
            return parts.path + (f"?{parts.query}" if parts.query else "")
        return str(raw)
    return quote(request.path) + (f"?{query}" if query else "")
