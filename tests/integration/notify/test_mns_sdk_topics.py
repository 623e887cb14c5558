"""Job completion messages reach MNS consumers using the official SDK: through a queue bound to
the pipeline, and through a topic whose subscription is a queue."""

from __future__ import annotations

import json

import pytest
from mns.account import Account
from mns.mns_exception import MNSServerException
from mns.queue import QueueMeta
from mns.subscription import SubscriptionMeta
from mns.topic import TopicMessage, TopicMeta

from app.dialects.mts.events import render_completion
from app.notify.messages import CompletionRenderers, completion_message_id, url_builder
from app.notify.notifier import OutboxConsumer
from app.notify.ssrf import EndpointGuard
from app.storage.jobs import RedisJobRepository
from tests.integration.notify.conftest import AK, SK, MnsServer
from tests.integration.notify.jobs import finish_job, make_pipeline
from tests.stack import shared_sealer


def _consumer(server: MnsServer) -> OutboxConsumer:
    c = OutboxConsumer(
        server.redis,
        guard=EndpointGuard(allow_private=True),
        renderers=CompletionRenderers({"mts": render_completion}, url_builder("http://objects.test")),
        sealer=shared_sealer(),
        consumer="test",
        claim_idle_ms=60_000,
    )
    c.ensure_group()
    return c


def test_completion_message_through_a_queue_bound_to_the_pipeline(mns_server: MnsServer) -> None:
    q = Account(mns_server.url, AK, SK).get_queue("jobs-done")
    q.create(QueueMeta())
    q.set_encoding(False)  # MPS writes raw JSON, not base64
    pipeline = make_pipeline(mns_server.redis, mns_server.account, queue="jobs-done")
    job = finish_job(mns_server.redis, mns_server.account, pipeline.id)
    assert _consumer(mns_server).poll(block_ms=100) == 1

    got = q.receive_message(wait_seconds=2)
    body = json.loads(got.message_body)
    assert got.message_id == completion_message_id(job.id)
    assert body["JobId"] == body["jobId"] == job.id
    assert body["State"] == body["state"] == "Success"
    assert body["Type"] == body["type"] == "Snapshot"
    assert body["UserData"] == body["userData"] == '{"k":"v"}'
    assert body["Count"] == 3 and body["TimeArray"] == [1000, 2500, 4000]
    assert body["UrlPattern"] == f"http://objects.test/out/shots/{job.id}/{{Count}}.jpg"
    assert body["LastUrl"] == f"http://objects.test/out/shots/{job.id}/00003.jpg"
    q.delete_message(got.receipt_handle)
    recorded = RedisJobRepository(mns_server.redis).get(job.id).notification
    assert recorded is not None and recorded.message_id == got.message_id and recorded.error_code is None


def test_completion_message_through_a_topic_subscribed_by_a_queue(mns_server: MnsServer) -> None:
    acc = Account(mns_server.url, AK, SK)
    q = acc.get_queue("fanout-q")
    q.create(QueueMeta())
    q.set_encoding(False)
    topic = acc.get_topic("jobs-topic")
    topic.create(TopicMeta())
    endpoint = f"acs:mns:cn-local:{mns_server.account}:queues/fanout-q"
    sub_url = topic.get_subscription("to-queue").subscribe(
        SubscriptionMeta(endpoint, notify_content_format="SIMPLIFIED")
    )
    assert sub_url.endswith("/topics/jobs-topic/subscriptions/to-queue")
    pipeline = make_pipeline(mns_server.redis, mns_server.account, topic="jobs-topic")
    job = finish_job(mns_server.redis, mns_server.account, pipeline.id, succeed=False)
    consumer = _consumer(mns_server)
    assert consumer.poll(block_ms=100) == 1

    got = q.receive_message(wait_seconds=2)
    body = json.loads(got.message_body)
    assert body["State"] == "Fail" and body["Code"] == body["code"] == "InvalidParameter.ResourceNotFound"
    assert body["Msg"] == body["msg"] == "no such object"
    assert "UrlPattern" not in body
    q.delete_message(got.receipt_handle)
    # The entry is acked: nothing more to do, and a repeat of the same job adds no second copy.
    assert consumer.poll(block_ms=50) == 0
    consumer.notify(RedisJobRepository(mns_server.redis).get(job.id))
    with pytest.raises(MNSServerException):
        q.receive_message(wait_seconds=0)


def test_sdk_publish_with_xml_format_and_filter_tag(mns_server: MnsServer) -> None:
    acc = Account(mns_server.url, AK, SK)
    q = acc.get_queue("xml-q")
    q.create(QueueMeta())
    q.set_encoding(False)
    topic = acc.get_topic("tagged")
    topic.create(TopicMeta())
    endpoint = f"acs:mns:cn-local:{mns_server.account}:queues/xml-q"
    topic.get_subscription("only-snap").subscribe(
        SubscriptionMeta(endpoint, filter_tag="snapshot", notify_content_format="XML")
    )
    topic.publish_message(TopicMessage("ignored <x>", "other"))
    sent = topic.publish_message(TopicMessage("a & b", "snapshot"))
    got = q.receive_message(wait_seconds=1)
    assert "<Message>a &amp; b</Message>" in got.message_body
    assert f"<MessageId>{sent.message_id}</MessageId>" in got.message_body
    assert "<SubscriptionName>only-snap</SubscriptionName>" in got.message_body
    q.delete_message(got.receipt_handle)
    with pytest.raises(MNSServerException):
        q.receive_message(wait_seconds=0)
    sub = topic.get_subscription("only-snap")
    assert sub.get_attributes().notify_content_format == "XML"
    sub.unsubscribe()
    with pytest.raises(MNSServerException) as exc:
        sub.get_attributes()
    assert exc.value.type == "SubscriptionNotExist"
