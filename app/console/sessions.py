"""The console's signed-cookie sessions, opened lazily.

Flask opens the session of every request, API calls included, and its cookie interface builds a
signing serializer (an HMAC key derivation) before it even looks for the cookie. Only the
console's pages carry one; a request without the cookie gets an empty session straight away,
and the serializer is built only when something is written to it (``save_session``) or a cookie
is there to verify.
"""

from __future__ import annotations

from flask import Flask, Request
from flask.sessions import SecureCookieSession, SecureCookieSessionInterface


class LazyCookieSessions(SecureCookieSessionInterface):
    def open_session(self, app: Flask, request: Request) -> SecureCookieSession | None:
        if app.secret_key and "HTTP_COOKIE" not in request.environ:
            return self.session_class()
        return super().open_session(app, request)
