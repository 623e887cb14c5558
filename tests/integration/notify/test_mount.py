"""The MNS dialect mounted in the lead's ``create_app``: the host app's JSON error handlers must
not answer MNS clients (the SDK needs XML errors)."""

from __future__ import annotations

import pytest
import redis
from mns.account import Account
from mns.mns_exception import MNSServerException
from mns.queue import Message, QueueMeta

from app.dialects.mns import register
from app.settings import Settings
from app.storage.credentials import RedisCredentialStore
from app.web import EXTRA_SURFACES, create_app
from tests.integration.notify.conftest import serve_wsgi


def test_sdk_against_the_full_app(redis_url: str, redis_client: redis.Redis, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("app.web.EXTRA_SURFACES", [*EXTRA_SURFACES, register])
    flask_app = create_app(Settings(redis_url=redis_url))
    RedisCredentialStore(redis_client).create("acme", key_id="AK1", secret="SK1")
    server, url = serve_wsgi(flask_app)
    try:
        q = Account(url, "AK1", "SK1").get_queue("mq")
        q.create(QueueMeta())
        q.send_message(Message("hi"))
        assert q.receive_message(1).message_body == b"hi"
        with pytest.raises(MNSServerException) as exc:
            Account(url, "AK1", "SK1").get_queue("nope").send_message(Message("x"))
        assert exc.value.type == "QueueNotExist"
    finally:
        server.shutdown()
        server.server_close()
