"""A tenant's push endpoint per origin dialect (``PushEndpoint``): stored in Redis through the
service, and used by the notifier, which pushes a finished job's message (rendered by the job's
origin, in the endpoint's format) with the endpoint's retry strategy, and nothing otherwise."""

from __future__ import annotations

import json

import pytest
import redis

from app.core.errors import InvalidParameter
from app.core.jobs import SnapshotJob
from app.core.ports import JobQuery, ObjectUrl, PushEndpoint, RetryStrategy
from app.notify.delivery import DeliveryStore, Strategy
from app.notify.messages import CompletionRenderers, completion_message_id, url_builder
from app.notify.notifier import OutboxConsumer
from app.notify.ssrf import EndpointGuard
from app.storage.endpoints import RedisPushEndpoints
from app.storage.jobs import RedisJobRepository
from app.wiring import Services
from tests.integration.notify.jobs import finish_job, make_pipeline
from tests.stack import shared_sealer

TENANT = "acme"


def _plain(job: SnapshotJob, object_url: ObjectUrl) -> str:
    return json.dumps({"plain": job.id})


def _formatted(job: SnapshotJob, object_url: ObjectUrl, endpoint: PushEndpoint) -> str | None:
    if endpoint.events and "done" not in endpoint.events:
        return None
    return json.dumps({"format": endpoint.content_format, "job": job.id})


def _consumer(client: redis.Redis) -> OutboxConsumer:
    renderers = CompletionRenderers(
        {"toy": _plain, "other": _plain}, url_builder("http://objects.test"), {"toy": _formatted}
    )
    c = OutboxConsumer(
        client,
        guard=EndpointGuard(allow_private=True),
        renderers=renderers,
        sealer=shared_sealer(),
        consumer="t",
        claim_idle_ms=60_000,
    )
    c.ensure_group()
    return c


def test_the_store_keeps_one_endpoint_per_tenant_and_origin(redis_client: redis.Redis) -> None:
    store = RedisPushEndpoints(redis_client)
    assert store.get(TENANT, "toy") is None
    first = PushEndpoint(True, "http://a.test/x", RetryStrategy.EXPONENTIAL_DECAY_RETRY, "JSON", ("done", "other"))
    store.put(TENANT, "toy", first)
    assert store.get(TENANT, "toy") == first
    assert store.get(TENANT, "other") is None and store.get("someone-else", "toy") is None
    store.put(TENANT, "toy", PushEndpoint(False))
    assert store.get(TENANT, "toy") == PushEndpoint(False)


def test_the_service_checks_the_url_before_storing(services: Services) -> None:
    svc = services.snapshots
    with pytest.raises(InvalidParameter) as missing:
        svc.set_push_endpoint(TENANT, "toy", PushEndpoint(True))
    assert missing.value.field == "url"
    for bad in ("ftp://a.test/x", "http://", "http://[::1/x", "not a url"):
        with pytest.raises(InvalidParameter) as refused:
            svc.set_push_endpoint(TENANT, "toy", PushEndpoint(True, bad))
        assert refused.value.field == "url", bad
    assert svc.get_push_endpoint(TENANT, "toy") is None
    svc.set_push_endpoint(TENANT, "toy", PushEndpoint(False))  # disabled: no URL needed
    assert svc.get_push_endpoint(TENANT, "toy") == PushEndpoint(False)


def test_list_filters_by_origin(redis_client: redis.Redis) -> None:
    pipeline = make_pipeline(redis_client, TENANT)
    toy = [finish_job(redis_client, TENANT, pipeline.id, origin="toy") for _ in range(3)]
    finish_job(redis_client, TENANT, pipeline.id, origin="other")
    page = RedisJobRepository(redis_client).list(TENANT, JobQuery(origin="toy", limit=2))
    assert [j.origin for j in page.jobs] == ["toy", "toy"] and page.next_page_token
    rest = RedisJobRepository(redis_client).list(
        TENANT, JobQuery(origin="toy", limit=2, page_token=page.next_page_token)
    )
    assert {j.id for j in page.jobs + rest.jobs} == {j.id for j in toy} and rest.next_page_token is None


def test_the_notifier_pushes_to_the_endpoint_of_the_jobs_origin(redis_client: redis.Redis) -> None:
    store = RedisPushEndpoints(redis_client)
    store.put(TENANT, "toy", PushEndpoint(True, "http://hooks.test/toy", RetryStrategy.BACKOFF_RETRY, "JSON"))
    store.put(TENANT, "other", PushEndpoint(True, "http://hooks.test/other", RetryStrategy.EXPONENTIAL_DECAY_RETRY))
    pipeline = make_pipeline(redis_client, TENANT)  # no topic, no queue
    toy = finish_job(redis_client, TENANT, pipeline.id, origin="toy")
    other = finish_job(redis_client, TENANT, pipeline.id, origin="other", succeed=False)
    # In a pipeline of its own: the create script refuses a job into another tenant's pipeline.
    quiet_pipeline = make_pipeline(redis_client, "tenant-without-endpoints")
    quiet = finish_job(redis_client, "tenant-without-endpoints", quiet_pipeline.id, origin="toy")
    consumer = _consumer(redis_client)
    assert consumer.notify(quiet) is None

    deliveries = DeliveryStore(redis_client)
    result = consumer.notify(toy)
    assert result is not None and result.message_id == completion_message_id(toy.id) and result.error_code is None
    [pushed] = deliveries.for_message(result.message_id)
    assert pushed.endpoint == "http://hooks.test/toy" and pushed.strategy == Strategy.BACKOFF_RETRY.value
    assert json.loads(pushed.body) == {"format": "JSON", "job": toy.id}  # the origin's push renderer
    assert pushed.source == f"endpoint/toy/{toy.id}" and pushed.webhook_secret

    consumer.notify(other)
    [plain] = deliveries.for_message(completion_message_id(other.id))
    assert plain.endpoint == "http://hooks.test/other" and plain.strategy == Strategy.EXPONENTIAL_DECAY_RETRY.value
    assert json.loads(plain.body) == {"plain": other.id}  # no push renderer: the completion message

    consumer.notify(toy)  # a notifier that repeats itself after a crash adds nothing
    assert len(deliveries.for_message(completion_message_id(toy.id))) == 1


def test_disabled_or_unsubscribed_endpoints_get_nothing(redis_client: redis.Redis) -> None:
    store = RedisPushEndpoints(redis_client)
    pipeline = make_pipeline(redis_client, TENANT)
    consumer = _consumer(redis_client)
    deliveries = DeliveryStore(redis_client)

    store.put(TENANT, "toy", PushEndpoint(False, "http://hooks.test/toy"))
    off = finish_job(redis_client, TENANT, pipeline.id, origin="toy")
    assert consumer.notify(off) is None

    store.put(TENANT, "toy", PushEndpoint(True, "http://hooks.test/toy", events=("something-else",)))
    unsubscribed = finish_job(redis_client, TENANT, pipeline.id, origin="toy")
    assert consumer.notify(unsubscribed) is None
    assert deliveries.for_message(completion_message_id(off.id)) == []
    assert deliveries.for_message(completion_message_id(unsubscribed.id)) == []

    # A job's own webhook is still pushed when its origin's endpoint declines the event.
    hooked = finish_job(redis_client, TENANT, pipeline.id, origin="toy", webhook_url="http://hooks.test/job")
    result = consumer.notify(hooked)
    assert result is not None
    assert [d.endpoint for d in deliveries.for_message(result.message_id)] == ["http://hooks.test/job"]
