"""The console's sessions open lazily (``app/console/sessions.py``): a request without a cookie
gets an empty session and no signing work, while a request that carries the console's cookie is
still verified, and a tampered cookie still reads as no session."""

from __future__ import annotations

import pytest
from flask import Flask, session

from app.console.sessions import LazyCookieSessions


def make_app() -> Flask:
    app = Flask(__name__)
    app.secret_key = "k" * 32
    app.session_interface = LazyCookieSessions()

    @app.get("/set")
    def set_value() -> str:
        session["who"] = "tenant-a"
        return "ok"

    @app.get("/read")
    def read_value() -> str:
        return str(session.get("who", "-"))

    return app


def test_no_cookie_no_serializer_and_an_empty_session(monkeypatch: pytest.MonkeyPatch) -> None:
    app = make_app()
    built: list[int] = []
    original = LazyCookieSessions.get_signing_serializer

    def counting(self: LazyCookieSessions, flask_app: Flask) -> object:
        built.append(1)
        return original(self, flask_app)

    monkeypatch.setattr(LazyCookieSessions, "get_signing_serializer", counting)
    client = app.test_client()
    resp = client.get("/read")
    assert resp.text == "-" and "Set-Cookie" not in resp.headers and built == []
    assert client.get("/set").headers.get("Set-Cookie")  # writing still signs a cookie
    assert built


def test_a_signed_cookie_still_reads_and_a_tampered_one_does_not() -> None:
    app = make_app()
    client = app.test_client()
    client.get("/set")
    assert client.get("/read").text == "tenant-a"
    cookie = client.get_cookie("session")
    assert cookie is not None
    client.set_cookie("session", cookie.value[:-2] + "xx")
    assert client.get("/read").text == "-"
