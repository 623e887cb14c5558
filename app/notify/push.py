"""The push loop: claim due deliveries, POST them (signed two ways), record the outcome.

One attempt = resolve and SSRF-check the endpoint, connect to the checked address, POST within
5 s. Outcomes never raise out of ``deliver``: a broken endpoint or an unexpected error becomes a
failed attempt on the delivery's own schedule (house rule 6); an address the guard refuses is a
permanent failure, dead-lettered on that attempt with the guard's reason (retrying a refused
address for a day would only repeat the refusal 177 times).

A side event (a job's progress event, ``Delivery.is_side_event``) gets one attempt: a failure
drops it with a log line rather than retrying it, since a late progress event is stale and would
arrive out of order. Deliveries of one ordered group (``Delivery.order_key``) are POSTed one at a
time, and a side event that is stale or superseded by its group's terminal delivery is dropped
unsent (``app.notify.delivery``).

A delivery's ``webhook_secret`` is stored sealed (``app.core.ports.Sealer``); it is opened here,
only to sign an attempt.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import logging
import random
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from email.utils import formatdate

import httpx

from app.core.ports import Sealer
from app.notify.delivery import (
    PUSH_TIMEOUT_S,
    SIDE_RETENTION_S,
    Attempt,
    Delivery,
    DeliveryState,
    DeliveryStore,
    Strategy,
    retry_delay,
)
from app.notify.errors import DeliveryNotFound, EndpointRejected
from app.notify.signing import CERT_PATH, MNS_VERSION, SigningKey, string_to_sign, webhook_signature
from app.notify.ssrf import EndpointGuard

log = logging.getLogger(__name__)

ORDER_BUSY_RETRY_MS = 20  # a delivery whose group is mid-POST is due again this soon


def signed_headers(
    delivery: Delivery, resource: str, key: SigningKey, cert_url: str, now: float, webhook_secret: str = ""
) -> dict[str, str]:
    """Headers for one attempt: MNS's (RSA-SHA1) and Standard Webhooks' (HMAC-SHA256, when the
    delivery has a secret: ``webhook_secret`` in plaintext) together."""
    body = delivery.body.encode("utf-8")
    headers = {
        "Content-Type": delivery.content_type,
        "Content-MD5": base64.b64encode(hashlib.md5(body).digest()).decode("ascii"),
        "Date": formatdate(now, usegmt=True),
        "x-mns-request-id": uuid.uuid4().hex[:24].upper(),
        "x-mns-version": MNS_VERSION,
        "x-mns-signing-cert-url": base64.b64encode(cert_url.encode()).decode("ascii"),
    }
    if delivery.simplified:
        headers["x-mns-message-id"] = delivery.message_id
        headers["x-mns-message-tag"] = delivery.tag
    text = string_to_sign(
        "POST", headers["Content-MD5"], headers["Content-Type"], headers["Date"], headers.items(), resource
    )
    headers["Authorization"] = key.sign(text)
    if webhook_secret:
        ts = int(now)
        headers["webhook-id"] = delivery.message_id
        headers["webhook-timestamp"] = str(ts)
        headers["webhook-signature"] = webhook_signature(webhook_secret, delivery.message_id, ts, body)
    return headers


class Pusher:
    """Drains ``openmps:push:due``. ``time_scale`` multiplies every retry delay (tests: 0.01)."""

    def __init__(
        self,
        store: DeliveryStore,
        key: SigningKey,
        guard: EndpointGuard,
        *,
        sealer: Sealer,
        public_url: str,
        time_scale: float = 1.0,
        concurrency: int = 8,
        lease_s: float = 30.0,
        http: httpx.Client | None = None,
        rng: random.Random | None = None,
        on_attempt: Callable[[Attempt], None] | None = None,
    ) -> None:
        self.store = store
        self.key = key
        self.guard = guard
        self.sealer = sealer
        self.cert_url = public_url.rstrip("/") + CERT_PATH
        self.time_scale = time_scale
        self.concurrency = concurrency
        self.lease_ms = int(lease_s * 1000)
        self.http = http or httpx.Client(timeout=httpx.Timeout(PUSH_TIMEOUT_S), follow_redirects=False)
        self.rng = rng or random.Random()
        self.on_attempt = on_attempt  # told every recorded attempt (the notifier's metrics)
        # Set when an attempt finishes: its retry may be due sooner than the loop's next wake-up.
        self._kick = threading.Event()

    def deliver(self, delivery_id: str) -> Attempt | None:
        delivery = self._pending(delivery_id)
        if delivery is None:
            return None
        if not delivery.order_key:
            return self._attempt(delivery)
        group, holder = delivery.order_key, uuid.uuid4().hex
        if not self.store.lock_order(group, holder):
            self.store.postpone(delivery_id, ORDER_BUSY_RETRY_MS)
            return None
        try:
            fresh = self._pending(delivery_id)  # again, under the lock: another holder may have sent it
            if fresh is None:
                return None
            if fresh.is_side_event and self.store.group_head(group) not in (None, fresh.id):
                self.store.postpone(delivery_id, ORDER_BUSY_RETRY_MS)  # an earlier event of its group goes first
                return None
            if fresh.is_side_event and not self._still_news(fresh):
                return None
            return self._attempt(fresh)
        finally:
            self.store.unlock_order(group, holder)

    def _pending(self, delivery_id: str) -> Delivery | None:
        try:
            delivery = self.store.get(delivery_id)
        except DeliveryNotFound:
            self.store.drop_due(delivery_id)
            return None
        if delivery.state != DeliveryState.PENDING:
            self.store.drop_due(delivery_id)
            return None
        return delivery

    def _still_news(self, delivery: Delivery) -> bool:
        """Whether a side event is still worth sending, checked under its group's lock; if not it
        is dropped here. Never after its group's terminal delivery exists (a job's completion
        event), never after a later event of the group, never once older than its retention."""
        reason = ""
        if self.store.exists(delivery.order_key):
            reason = "superseded: its group's terminal delivery is enqueued"
        elif time.time() * 1000 - delivery.created_ms > SIDE_RETENTION_S * 1000:
            reason = f"stale: older than {SIDE_RETENTION_S} s"
        elif not self.store.advance_order(delivery.order_key, delivery.order_seq):
            reason = "stale: a later event of its group was sent first"
        if not reason:
            return True
        if self.store.drop(delivery, reason):
            log.info("side event %s (message %s) dropped unsent: %s", delivery.id, delivery.message_id, reason)
        return False

    def _attempt(self, delivery: Delivery) -> Attempt | None:
        status, error, elapsed_ms, permanent = self._post(delivery)
        ok = 200 <= status < 300 and elapsed_ms <= PUSH_TIMEOUT_S * 1000
        if 200 <= status < 300 and not ok:
            error = f"answered after {elapsed_ms} ms (limit {int(PUSH_TIMEOUT_S * 1000)} ms)"
        delay_ms = 0
        if permanent:
            delay_ms = -1  # dead letter now: the same address would be refused on every retry
            error += " (permanent: not retried)"
        elif not ok and delivery.is_side_event:
            delay_ms = -1  # one attempt only: a retried side event would arrive late and out of order
        elif not ok:
            delay = retry_delay(Strategy(delivery.strategy), delivery.attempts + 1, self.rng)
            delay_ms = -1 if delay is None else int(delay * self.time_scale * 1000)
        attempt = self.store.record(
            delivery, ok=ok, delay_ms=delay_ms, status=status, error=error, duration_ms=elapsed_ms
        )
        self._kick.set()
        if attempt is not None and self.on_attempt is not None:
            self.on_attempt(attempt)
        if attempt is not None and attempt.dead:
            log.warning("delivery %s of message %s is a dead letter: %s", delivery.id, delivery.message_id, error)
        elif attempt is not None and not ok and delivery.is_side_event:
            log.warning("side event %s (message %s) failed and is dropped: %s", delivery.id, delivery.message_id, error)
        return attempt

    def _post(self, delivery: Delivery) -> tuple[int, str, int, bool]:
        """(HTTP status or 0, error text, elapsed ms, permanent failure)."""
        started = time.monotonic()
        try:
            endpoint, address = self.guard.resolve(delivery.endpoint)
            secret = self.sealer.open(delivery.webhook_secret) if delivery.webhook_secret else ""
            headers = signed_headers(delivery, endpoint.target, self.key, self.cert_url, time.time(), secret)
            headers["Host"] = endpoint.host_header
            extensions = {"sni_hostname": endpoint.host} if endpoint.scheme == "https" else {}
            resp = self.http.post(
                endpoint.url_for(address), content=delivery.body.encode("utf-8"), headers=headers, extensions=extensions
            )
            elapsed = int((time.monotonic() - started) * 1000)
            return resp.status_code, "" if resp.is_success else f"HTTP {resp.status_code}", elapsed, False
        except EndpointRejected as exc:
            elapsed = int((time.monotonic() - started) * 1000)
            return 0, f"endpoint rejected: {exc.message}", elapsed, exc.permanent
        except httpx.HTTPError as exc:
            return 0, f"{type(exc).__name__}: {exc}", int((time.monotonic() - started) * 1000), False
        except Exception as exc:  # noqa: BLE001 - an attempt must end in a recorded outcome
            log.exception("push of delivery %s failed unexpectedly", delivery.id)
            return 0, f"internal error: {type(exc).__name__}", int((time.monotonic() - started) * 1000), False

    def run(self, stop: threading.Event) -> None:
        """Loop until ``stop``: claim what is due (up to free slots), push in a thread pool."""
        inflight: set[Future[Attempt | None]] = set()
        with ThreadPoolExecutor(self.concurrency, thread_name_prefix="push") as pool:
            while not stop.is_set():
                inflight = {f for f in inflight if not f.done()}
                try:
                    ids = self.store.claim(self.concurrency - len(inflight), self.lease_ms)
                    for did in ids:
                        future = pool.submit(self.deliver, did)
                        future.add_done_callback(functools.partial(_log_failure, did))
                        inflight.add(future)
                    if not ids:
                        wait = self.store.seconds_until_next_due()
                        self._kick.wait(0.2 if wait is None else min(max(wait, 0.002), 0.2))
                        self._kick.clear()
                except Exception:  # noqa: BLE001 - Redis hiccup: keep the loop alive
                    log.exception("push loop error")
                    stop.wait(1.0)


def _log_failure(delivery_id: str, future: Future[Attempt | None]) -> None:
    """``deliver`` records every push outcome itself, so what reaches here is a store error
    (Redis down in ``get``/``record``): log it, or it would stay unseen in the Future. The
    delivery keeps its due entry, so it is claimed again once its lease expires."""
    if future.cancelled():
        return
    exc = future.exception()
    if exc is not None:
        log.error("delivery %s: push attempt failed: %s", delivery_id, exc, exc_info=exc)
