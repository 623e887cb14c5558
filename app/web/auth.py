"""Native API authentication: HTTP Basic with an access key id and secret.

Basic over TLS is what curl and every HTTP client speak without a signing library; vendor
dialects verify their own SDK signatures against the same access keys.
"""

from __future__ import annotations

from flask import g, request

from app.core.errors import Unauthenticated
from app.web.context import services


def require_tenant() -> str:
    auth = request.authorization
    if auth is None or auth.type != "basic" or not auth.username:
        raise Unauthenticated("missing credentials: send HTTP Basic auth with your access key id and secret")
    key = services().credentials.authenticate(auth.username, auth.password or "")
    if key is None:
        raise Unauthenticated("the access key id or secret is not valid")
    g.tenant = key.tenant
    return key.tenant
