"""The MNS dialect mounted in the lead's ``create_app``: the host app's JSON error handlers must
not answer MNS clients (the SDK needs XML errors)."""

from __future__ import annotations

import pytest
import redis
from mns.account import Account
from mns.mns_exception import MNSServerException
from mns.queue import Message, QueueMeta

from app.settings import Settings
from app.storage.credentials import RedisCredentialStore
from app.web import create_app
from tests.servers import serve_wsgi
from tests.stack import TEST_SECRET_KEY, shared_sealer


def test_sdk_against_the_full_app(redis_url: str, redis_client: redis.Redis) -> None:
    flask_app = create_app(
        Settings(redis_url=redis_url, secret_keys=(TEST_SECRET_KEY,))
    )  # create_app mounts the MNS dialect itself
    RedisCredentialStore(redis_client, shared_sealer()).create("acme", key_id="AK1", secret="SK1")
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
