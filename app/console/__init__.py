"""The web console: server-rendered pages for tenants and operators at ``/console``.

Not an API dialect: it renders HTML for people, behind a login with an access key, and every
action goes through the same use cases the dialects call (``SnapshotService``) and the
notification delivery log (``app.notify.delivery``). ``create_app`` builds a ``ConsoleServices``
and calls ``install_console``; nothing here is looked up in ``current_app``.

Sessions are Flask's signed cookies (``openmps_console``, path ``/console``, HttpOnly, SameSite=Lax,
Secure when ``OPENMPS_PUBLIC_URL`` is https, 8 hours), signed with a key derived from
``OPENMPS_CONSOLE_SECRET``, or, when that is unset, a random key generated once and kept in Redis so
every API process shares it. Every form POST carries a CSRF token: Flask-WTF's ``CSRFProtect``
(a kept library: tokens bound to the session and signed with its key, HTTPS Referer checks),
enforced on the console's blueprint only, because the dialects' POSTs are signed API calls that
carry no cookie and must not be asked for a token.
"""

from __future__ import annotations

from flask import Flask
from flask_wtf.csrf import CSRFProtect

from app.console.routes import URL_PREFIX, create_blueprint, render_error
from app.console.services import SESSION_LIFETIME, ConsoleServices, session_key
from app.console.sessions import LazyCookieSessions
from app.gateway.dialect import Dialect, path_prefix

__all__ = ["ConsoleServices", "install_console", "session_key"]


def install_console(flask_app: Flask, services: ConsoleServices) -> Dialect:
    """Register the console's blueprint and the app settings its sessions need. Returns how the
    shell should render its errors (an HTML page) and which requests are its (``/console``)."""
    flask_app.secret_key = services.session_key
    flask_app.session_interface = LazyCookieSessions()
    flask_app.config.update(
        SESSION_COOKIE_NAME="openmps_console",
        SESSION_COOKIE_PATH=URL_PREFIX,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=services.settings.effective_public_url.startswith("https://"),
        PERMANENT_SESSION_LIFETIME=SESSION_LIFETIME,
        WTF_CSRF_CHECK_DEFAULT=False,  # only the console's views are checked (see the docstring)
        WTF_CSRF_TIME_LIMIT=None,  # a token lives as long as its session (8 hours)
    )
    csrf = CSRFProtect(flask_app)
    blueprint = create_blueprint(services, csrf)
    flask_app.register_blueprint(blueprint)
    return Dialect(
        name=blueprint.name,
        create_blueprint=lambda _handed: blueprint,
        render_error=render_error,
        owns=path_prefix(URL_PREFIX),
    )
