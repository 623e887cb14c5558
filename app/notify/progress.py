"""Progress events on the wire: the event body, its ids, and its hand-off to the push loop.

A job that asks for progress events (``SnapshotJob.progress_events``) has them POSTed to
``progress_events.webhook_url`` by the notifier's push loop (``app.notify.push``), signed like its
completion event (MNS RSA-SHA1 and Standard Webhooks with the tenant's secret), through the same
SSRF guard. The worker decides when one is due (``app.core.progress.progress_due``) and enqueues
it here; it never waits for the POST.

Each event is a *side event* of an ordered group keyed by the job's completion push to the same
URL (``completion_source``): the URL also receives the job's completion event, the events of the
group are POSTed one at a time and in order, a progress event that would arrive after a later one
or after the completion event is dropped unsent, and a failed attempt is not retried (a lost
progress event is acceptable; a late one would be misleading). ``docs/notifications.md`` has the
body and the rules.

Progress events never go to the pipeline's topic or queue: those carry one completion message
per job in the origin dialect's format, which MNS consumers of vendor formats parse as such.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime

import redis

from app.core.jobs import SnapshotJob
from app.core.ports import Sealer
from app.notify.delivery import Delivery, DeliveryStore, Strategy
from app.notify.messages import completion_message_id
from app.notify.signing import tenant_webhook_secret
from app.notify.topics import delivery_id

PROGRESS_TAG = "Progress"
EVENT_TYPE = "job.progress"
# An event's order in its group: attempt * ATTEMPT_STRIDE + its number within the attempt, so a
# takeover's events rank after the abandoned attempt's (numbers stay exact as Lua doubles).
ATTEMPT_STRIDE = 10**9


def completion_source(job: SnapshotJob, url: str) -> tuple[str, ...]:
    """The ``Delivery.source`` parts of the job's completion push to ``url``: ``job/{id}`` for
    its ``webhook_url``, ``job/{id}/progress`` for a progress URL of its own."""
    return ("job", job.id) if url == job.webhook_url else ("job", job.id, "progress")


def completion_delivery_id(job: SnapshotJob, url: str) -> str:
    """The id of the job's completion push to ``url``: the order key of its progress events there."""
    return delivery_id(job.tenant, *completion_source(job, url), completion_message_id(job.id))


def progress_message_id(job_id: str, seq: int) -> str:
    """Derived from the job and the event's order, so an event enqueued twice is one delivery."""
    return hashlib.md5(f"openmps-progress:{job_id}:{seq}".encode()).hexdigest().upper()


def event_seq(attempt: int, number: int) -> int:
    return attempt * ATTEMPT_STRIDE + number


def progress_body(job_id: str, done: int, total: int, state: str, at: datetime) -> str:
    """The documented event. ``type`` and ``event`` both say ``job.progress``: ``event`` is the key
    the completion event (``{"event": "job.succeeded", ...}``) is told apart by, so a receiver
    that gets both at one URL can switch on it."""
    stamp = at.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    event = {
        "type": EVENT_TYPE,
        "event": EVENT_TYPE,
        "job_id": job_id,
        "images_done": done,
        "images_total": total,
        "state": state,
        "at": stamp,
    }
    return json.dumps(event, separators=(",", ":"))


class ProgressPublisher:
    """Enqueues one job's progress events as side events of its completion push's group."""

    def __init__(self, client: redis.Redis, sealer: Sealer, job: SnapshotJob) -> None:
        if job.progress_events is None or not job.progress_events.webhook_url:
            raise ValueError(f"job {job.id} asks for no progress events")
        self.deliveries = DeliveryStore(client)
        self.client, self.sealer, self.job = client, sealer, job
        self.url = job.progress_events.webhook_url
        self.order_key = completion_delivery_id(job, self.url)
        self._secret: str | None = None  # sealed, looked up on the first event

    def publish(self, seq: int, done: int, total: int, at: datetime) -> None:
        """Enqueue the event (due at once). Raises what Redis raises: the caller drops it."""
        if self._secret is None:
            self._secret = self.sealer.seal(tenant_webhook_secret(self.client, self.sealer, self.job.tenant))
        message_id = progress_message_id(self.job.id, seq)
        self.deliveries.enqueue(
            Delivery(
                id=delivery_id(self.job.tenant, "job", self.job.id, "progress-event", message_id),
                message_id=message_id,
                account=self.job.tenant,
                source=f"job/{self.job.id}/progress-event",
                endpoint=self.url,
                strategy=Strategy.BACKOFF_RETRY.value,  # unused: a side event gets one attempt
                content_type="application/json;charset=utf-8",
                body=progress_body(self.job.id, done, total, "running", at),
                tag=PROGRESS_TAG,
                webhook_secret=self._secret,
                order_key=self.order_key,
                order_seq=seq,
            )
        )
