"""An MNS endpoint on 127.0.0.1 (a minimal Flask app with only the MNS blueprint) and access keys.

The official SDK keeps one HTTP/1.1 keep-alive connection, so the werkzeug server must speak
HTTP/1.1 and be threaded (a long poll holds a thread while other calls go on).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import flask
import pytest
import redis
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

from app.dialects.mns import MnsServices, create_mns_blueprint
from app.notify.ssrf import EndpointGuard
from app.storage.credentials import RedisCredentialStore

AK = "testAccessKeyId"
SK = "testAccessKeySecret"
TENANT = "acme"


@dataclass(frozen=True)
class MnsServer:
    url: str
    account: str
    redis: redis.Redis


class _Http11Handler(WSGIRequestHandler):
    protocol_version = "HTTP/1.1"


def serve_wsgi(app: Any) -> tuple[BaseWSGIServer, str]:
    server = make_server("127.0.0.1", 0, app, threaded=True, request_handler=_Http11Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_port}"


@pytest.fixture
def mns_server(redis_client: redis.Redis) -> Iterator[MnsServer]:
    creds = RedisCredentialStore(redis_client)
    creds.create(TENANT, key_id=AK, secret=SK)
    services = MnsServices(
        redis=redis_client,
        secret_lookup=creds.secret_for,
        account_lookup=creds.tenant_for,
        guard=EndpointGuard(allow_private=True),
    )
    flask_app = flask.Flask("mns-test")
    flask_app.register_blueprint(create_mns_blueprint(services))
    server, url = serve_wsgi(flask_app)
    yield MnsServer(url, TENANT, redis_client)
    server.shutdown()
    server.server_close()
