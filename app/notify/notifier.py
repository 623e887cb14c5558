"""The notifier process: ``python -m app.notify.notifier`` (Procfile ``notifier``).

Two loops in one process:

* the outbox consumer (main thread): reads ``openmps:outbox`` with a consumer group, renders the
  job's completion message (in its origin dialect's format), publishes it to the pipeline's topic
  or sends it to its queue, schedules a push to the job's own webhook URL and one to the tenant's
  push endpoint for that dialect (``PushEndpoint``, with the endpoint's retry strategy), records
  the result on the job, then XACKs.
  Entries left pending by a notifier that died are taken over with XAUTOCLAIM once they have
  been idle for ``notify_lease_s``. Every step is idempotent (the message id is derived from the
  job id), so a take-over repeats nothing twice.
* the push loop (a thread, ``app.notify.push.Pusher``): drains ``openmps:push:due``.

A notification never changes its job: only ``record_notification`` writes to it, and failures
to deliver are recorded there, not raised.
"""

from __future__ import annotations

import functools
import logging
import os
import signal
import socket
import threading
from dataclasses import dataclass
from types import FrameType

import redis
from prometheus_client import start_http_server

from app import logs
from app.core.errors import DomainError, JobNotFound
from app.core.jobs import NotificationResult, SnapshotJob
from app.core.ports import PushEndpoint, Sealer
from app.gateway import registry
from app.metrics import NotifyMetrics, scrape_registry
from app.notify.delivery import Attempt, Delivery, DeliveryStore, Strategy
from app.notify.messages import CompletionRenderers, completion_message_id
from app.notify.progress import completion_source
from app.notify.push import Pusher
from app.notify.queues import OutgoingMessage, QueueStore
from app.notify.signing import load_signing_key, tenant_webhook_secret
from app.notify.ssrf import EndpointGuard
from app.notify.topics import TopicStore, delivery_id
from app.settings import Settings, SettingsError
from app.storage import keys
from app.storage.endpoints import RedisPushEndpoints
from app.storage.jobs import RedisJobRepository
from app.storage.pipelines import RedisPipelineRepository
from app.storage.secretbox import SecretBox
from app.storage.urls import object_urls
from app.wiring import object_store, redis_client

log = logging.getLogger(__name__)
GROUP = "openmps-notifier"
COMPLETION_TAG = "Snapshot"


@dataclass(frozen=True)
class OutboxEntry:
    entry_id: str
    job_id: str


class OutboxConsumer:
    def __init__(
        self,
        client: redis.Redis,
        *,
        guard: EndpointGuard,
        renderers: CompletionRenderers,
        sealer: Sealer,
        consumer: str,
        claim_idle_ms: int,
    ) -> None:
        self.r = client
        self.sealer = sealer
        self.jobs = RedisJobRepository(client)
        self.pipelines = RedisPipelineRepository(client)
        self.endpoints = RedisPushEndpoints(client)
        self.deliveries = DeliveryStore(client)
        self.guard = guard
        self.renderers = renderers
        self.consumer = consumer
        self.claim_idle_ms = claim_idle_ms

    def ensure_group(self) -> None:
        try:
            self.r.xgroup_create(keys.OUTBOX, GROUP, id="0", mkstream=True)
        except redis.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    def poll(self, block_ms: int = 1000, count: int = 16) -> int:
        """Handle abandoned entries first, then new ones. Returns how many were handled."""
        _, claimed, *_ = self.r.xautoclaim(keys.OUTBOX, GROUP, self.consumer, self.claim_idle_ms, "0-0", count=count)
        entries = _entries(claimed)
        if not entries:
            streams = self.r.xreadgroup(GROUP, self.consumer, {keys.OUTBOX: ">"}, count=count, block=block_ms)
            for _, items in streams or []:
                entries += _entries(items)
        for entry in entries:
            self.handle(entry)
        return len(entries)

    def handle(self, entry: OutboxEntry) -> None:
        """Notify, record, ack. A Redis error propagates (no ack: the entry will be reclaimed)."""
        try:
            job = self.jobs.get(entry.job_id)
        except JobNotFound:
            log.warning("outbox entry %s names missing job %s; dropped", entry.entry_id, entry.job_id)
            self._done(entry)
            return
        result = self.notify(job)
        if result is not None:
            self.jobs.record_notification(job.id, result)
        self._done(entry)

    def _done(self, entry: OutboxEntry) -> None:
        """Ack and drop the entry: the job records the outcome, so the stream need not keep it."""
        pipe = self.r.pipeline(transaction=True)
        pipe.xack(keys.OUTBOX, GROUP, entry.entry_id)
        pipe.xdel(keys.OUTBOX, entry.entry_id)
        pipe.execute()

    def notify(self, job: SnapshotJob) -> NotificationResult | None:
        """Send the job's completion message to its pipeline's target, its webhook and the
        tenant's push endpoint for the job's origin.

        None when the job has none of them (MPS stays silent then). Errors in the message itself
        (missing queue, too large, a rejected endpoint) become the recorded result.
        """
        pipeline = self.pipelines.find(job.pipeline_id)
        target = pipeline.notify if pipeline is not None else None
        has_target = target is not None and bool(target.topic or target.queue)
        endpoint = self.endpoints.get(job.tenant, job.origin)
        if endpoint is not None and not (endpoint.enabled and endpoint.url):
            endpoint = None
        hooks = _job_hooks(job)
        if not has_target and not hooks and endpoint is None:
            return None
        message_id = completion_message_id(job.id)
        try:
            body = self.renderers.render(job) if has_target or hooks else ""
            pushed = self.renderers.render_push(job, endpoint) if endpoint is not None else None
        except Exception as exc:  # noqa: BLE001 - a broken message must not block the outbox
            log.exception("cannot render the completion message of job %s", job.id)
            return NotificationResult(error_code="InternalError", error_message=f"render failed: {type(exc).__name__}")
        if not has_target and not hooks and pushed is None:
            return None  # the endpoint does not subscribe to this event
        result = NotificationResult(message_id=message_id)
        try:
            if target is not None and target.topic:
                store = TopicStore(self.r, job.tenant, self.deliveries, self.guard, self.sealer)
                store.publish(target.topic, body, COMPLETION_TAG, message_id=message_id)
            elif target is not None and target.queue:
                QueueStore(self.r, job.tenant).send(target.queue, OutgoingMessage(body), message_id=message_id)
        except DomainError as exc:
            result = NotificationResult(error_code=exc.code, error_message=exc.message)
        for url in hooks:
            # A URL that had progress events is their group's terminal delivery (app.notify.progress).
            ordered = job.progress_events is not None and url == job.progress_events.webhook_url
            strategy = Strategy.EXPONENTIAL_DECAY_RETRY
            self._push(job, url, body, strategy, completion_source(job, url), message_id, ordered=ordered)
        if endpoint is not None and endpoint.url and pushed is not None:
            self._push(job, endpoint.url, pushed, _strategy(endpoint), ("endpoint", job.origin, job.id), message_id)
        return result

    def _push(
        self,
        job: SnapshotJob,
        url: str,
        body: str,
        strategy: Strategy,
        source: tuple[str, ...],
        message_id: str,
        *,
        ordered: bool = False,
    ) -> None:
        push_id = delivery_id(job.tenant, *source, message_id)
        self.deliveries.enqueue(
            Delivery(
                id=push_id,
                message_id=message_id,
                account=job.tenant,
                source="/".join(source),
                endpoint=url,
                strategy=strategy.value,
                content_type="application/json;charset=utf-8",
                body=body,
                tag=COMPLETION_TAG,
                webhook_secret=self.sealer.seal(tenant_webhook_secret(self.r, self.sealer, job.tenant)),
                order_key=push_id if ordered else "",
            )
        )


def _job_hooks(job: SnapshotJob) -> list[str]:
    """The job's own URLs for its completion event: its ``webhook_url`` and the URL its progress
    events went to (when that is another), so a progress receiver also hears how the job ended."""
    urls = [job.webhook_url] if job.webhook_url else []
    progress_url = job.progress_events.webhook_url if job.progress_events is not None else None
    if progress_url and progress_url not in urls:
        urls.append(progress_url)
    return urls


def _strategy(endpoint: PushEndpoint) -> Strategy:
    return Strategy(endpoint.retry.value)


def _entries(items: list[tuple[str, dict[str, str]]]) -> list[OutboxEntry]:
    return [OutboxEntry(eid, fields.get("job_id", "")) for eid, fields in items if fields is not None]


def completion_renderers(settings: Settings) -> CompletionRenderers:
    """Every installed dialect's renderer, mounted or not: a job keeps its origin's format even
    if this process's ``OPENMPS_DIALECTS`` leaves that dialect out. Object URLs in the messages
    are signed (local) or presigned (S3), valid for ``OPENMPS_URL_TTL_S``."""
    dialects = registry.load()
    found = {d.name: d.render_completion for d in dialects if d.render_completion is not None}
    push = {d.name: d.render_push for d in dialects if d.render_push is not None}
    return CompletionRenderers(found, object_urls(settings, object_store(settings)).url, push)


def count_attempt(metrics: NotifyMetrics, attempt: Attempt) -> None:
    metrics.attempts.labels("ok" if attempt.ok else "failed").inc()
    if attempt.dead:
        metrics.dead_letters.inc()


def run(settings: Settings, stop: threading.Event) -> None:
    client = redis_client(settings)
    guard = EndpointGuard(allow_private=settings.allow_private_endpoints)
    sealer = SecretBox(settings.secret_keys)
    lease_ms = int(settings.notify_lease_s * 1000)
    consumer = OutboxConsumer(
        client,
        guard=guard,
        sealer=sealer,
        renderers=completion_renderers(settings),
        consumer=f"{socket.gethostname()}-{os.getpid()}",
        claim_idle_ms=lease_ms,
    )
    consumer.ensure_group()
    metrics = NotifyMetrics()
    if settings.metrics_port:
        registry = scrape_registry(settings, metrics.registry)
        start_http_server(settings.metrics_port, addr=settings.host, registry=registry)
        log.info("notifier metrics on http://%s:%d/metrics", settings.host, settings.metrics_port)
    pusher = Pusher(
        DeliveryStore(client),
        load_signing_key(client, sealer),
        guard,
        sealer=sealer,
        public_url=settings.effective_public_url,
        time_scale=settings.notify_time_scale,
        concurrency=settings.notify_concurrency,
        lease_s=settings.notify_lease_s,
        on_attempt=functools.partial(count_attempt, metrics),
    )
    push_thread = threading.Thread(target=pusher.run, args=(stop,), name="push", daemon=True)
    push_thread.start()
    log.info("notifier %s running", consumer.consumer)
    while not stop.is_set():
        try:
            consumer.poll(block_ms=500)
        except redis.RedisError:
            log.exception("outbox poll failed; retrying")
            stop.wait(1.0)
    push_thread.join(timeout=10)


def main() -> None:
    stop = threading.Event()

    def _stop(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    try:
        settings = Settings.from_env()
    except SettingsError as exc:
        raise SystemExit(f"openmps notifier: {exc}") from None
    logs.configure(settings.log_format)
    run(settings, stop)


if __name__ == "__main__":
    main()
