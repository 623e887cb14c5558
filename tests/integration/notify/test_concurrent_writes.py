"""Queue and topic attribute hashes are written whole: a reader running between any two Redis
commands of a create, update or publish sees the whole object or none (never a 500)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import redis

from app.core.errors import DomainError
from app.notify.delivery import DeliveryStore
from app.notify.errors import QueueConflict, QueueNotFound, TopicConflict, TopicNotFound
from app.notify.queues import QueueAttributes, QueueStore
from app.notify.ssrf import EndpointGuard
from app.notify.topics import TopicAttributes, TopicStore
from tests.stack import shared_sealer


class ProbingRedis(redis.Redis):
    """Runs ``probe(command)`` after every command it sends: another client at each gap between them."""

    probe: Callable[[str], None] = staticmethod(lambda command: None)

    def execute_command(self, *args: Any, **options: Any) -> Any:
        result = super().execute_command(*args, **options)
        self.probe(str(args[0]).upper())
        return result


@pytest.fixture
def probing(redis_url: str) -> ProbingRedis:
    return ProbingRedis.from_url(redis_url, decode_responses=True)


def _probe_with(
    read: Callable[[], object], missing: type[DomainError]
) -> tuple[Callable[[str], None], list[BaseException]]:
    seen: list[BaseException] = []

    def probe(command: str) -> None:
        try:
            read()
        except missing:
            pass  # not there yet (or gone): fine
        except Exception as exc:  # noqa: BLE001 - collected: the assertion says which
            seen.append(exc)

    return probe, seen


def test_queue_create_and_update_are_never_seen_half_written(redis_client: redis.Redis, probing: ProbingRedis) -> None:
    reader = QueueStore(redis_client, "acme")
    probing.probe, seen = _probe_with(lambda: reader.info("q"), QueueNotFound)
    writer = QueueStore(probing, "acme")
    attrs = QueueAttributes(visibility_timeout=60)
    assert writer.create("q", attrs) is True  # 201
    assert writer.create("q", attrs) is False  # 204: same attributes
    with pytest.raises(QueueConflict):  # 409 QueueAlreadyExist
        writer.create("q", QueueAttributes(visibility_timeout=61))
    writer.set_attributes("q", QueueAttributes(delay_seconds=5))
    assert seen == []
    assert reader.info("q").attributes == QueueAttributes(delay_seconds=5) and reader.list() == ["q"]


def test_queue_update_racing_a_delete_leaves_nothing_behind(redis_client: redis.Redis, probing: ProbingRedis) -> None:
    QueueStore(redis_client, "acme").create("q", QueueAttributes())
    writer = QueueStore(probing, "acme")
    # The delete lands between the update's existence check and its write.
    probing.probe = lambda command: QueueStore(redis_client, "acme").delete("q")
    with pytest.raises(QueueNotFound):
        writer.set_attributes("q", QueueAttributes(delay_seconds=5))
    probing.probe = lambda command: None
    assert not redis_client.exists(QueueStore(redis_client, "acme").keys.base("q"))


def _topics(client: redis.Redis) -> TopicStore:
    return TopicStore(client, "acme", DeliveryStore(client), EndpointGuard(allow_private=True), shared_sealer())


def test_topic_create_and_update_are_never_seen_half_written(redis_client: redis.Redis, probing: ProbingRedis) -> None:
    reader = _topics(redis_client)
    probing.probe, seen = _probe_with(lambda: reader.info("t"), TopicNotFound)
    writer = _topics(probing)
    attrs = TopicAttributes(maximum_message_size=2048)
    assert writer.create("t", attrs) is True
    assert writer.create("t", attrs) is False
    with pytest.raises(TopicConflict):
        writer.create("t", TopicAttributes(maximum_message_size=4096))
    writer.set_attributes("t", TopicAttributes(logging_enabled=True))
    assert seen == []
    assert reader.info("t").attributes == TopicAttributes(logging_enabled=True) and reader.list() == ["t"]


def test_topic_publish_racing_a_delete_leaves_no_stray_count(redis_client: redis.Redis, probing: ProbingRedis) -> None:
    _topics(redis_client).create("t", TopicAttributes())
    writer = _topics(probing)

    def delete_after_reading_subscribers(command: str) -> None:
        if command == "HVALS":  # publish has read the topic and its subscribers, not yet written
            _topics(redis_client).delete("t")

    probing.probe = delete_after_reading_subscribers
    writer.publish("t", "hello")
    probing.probe = lambda command: None
    reader = _topics(redis_client)
    with pytest.raises(TopicNotFound):
        reader.info("t")
    assert reader.create("t", TopicAttributes()) is True  # a fresh topic, not a 500 on a stray hash
