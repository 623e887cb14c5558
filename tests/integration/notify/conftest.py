"""An MNS endpoint on 127.0.0.1 (a minimal Flask app with only the MNS blueprint) and access keys.

The official SDK keeps one HTTP/1.1 keep-alive connection, so the werkzeug server must speak
HTTP/1.1 and be threaded (a long poll holds a thread while other calls go on).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import flask
import pytest
import redis

from app.dialects.mns import MnsServices, create_mns_blueprint
from app.notify.ssrf import EndpointGuard
from app.storage.credentials import RedisCredentialStore
from tests.servers import serve_wsgi

AK = "testAccessKeyId"
SK = "testAccessKeySecret"
TENANT = "acme"


@dataclass(frozen=True)
class MnsServer:
    url: str
    account: str
    redis: redis.Redis


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
