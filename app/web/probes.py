"""What operators and orchestrators ask the API: ``/healthz``, ``/readyz`` and ``/metrics``.

* ``/healthz`` is liveness: the process answers. It touches nothing else, because an orchestrator
  restarts a process whose liveness fails, and restarting every API process while Redis is away
  fixes nothing (it only adds a thundering herd when Redis returns).
* ``/readyz`` is readiness: Redis answers, the object store answers, and at least one worker of
  each class in ``OPENMPS_READY_WORKER_CLASSES`` has a current heartbeat. The classes are
  configured rather than derived from the pipelines because any tenant may create a ``gpu``
  pipeline, which would otherwise turn a CPU-only deployment not-ready. Checks run in parallel
  with a deadline each (``CHECK_TIMEOUT_S``), on a Redis client with short timeouts, so a probe
  never hangs on a dead dependency. 200 ``{"status": "ready"}`` or 503 ``{"status": "not ready"}``,
  with each check's result.
* ``/metrics`` is the Prometheus exposition (``app/metrics.py``).
"""

from __future__ import annotations

import hmac
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any

import redis
from flask import Blueprint, Flask, Response, jsonify
from prometheus_client import CollectorRegistry

from app.core.errors import JobFailure
from app.gateway.raw import current_globals, current_request
from app.metrics import CONTENT_TYPE, StoreCollector, WebMetrics, exposition, scrape_registry
from app.settings import Settings
from app.storage.workers import RedisWorkerRegistry
from app.wiring import Services

CHECK_TIMEOUT_S = 3.0
# Any answer about the bucket (there or not) shows the store is up. With credentials scoped to some
# buckets (deploy/) a made-up name is refused, so OPENMPS_READY_BUCKET names one the service may read.
PROBE_BUCKET = "openmps-readyz"


def create_probes_blueprint(settings: Settings, services: Services) -> Blueprint:
    bp = Blueprint("probes", __name__)
    quick = redis.Redis.from_url(settings.redis_url, decode_responses=True, socket_timeout=2, socket_connect_timeout=2)
    fleet = RedisWorkerRegistry(quick)
    pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="readyz")

    def check_redis() -> str:
        quick.ping()
        return "ok"

    def check_objects() -> str:
        try:
            services.objects.bucket_exists(settings.ready_bucket or PROBE_BUCKET)
        except JobFailure as exc:
            raise RuntimeError(exc.message) from exc
        return "ok"

    def check_workers(worker_class: str) -> Callable[[], str]:
        def check() -> str:
            live = fleet.alive(worker_class)
            if not live:
                raise RuntimeError(f"no live {worker_class} worker")
            return f"ok ({len(live)} alive)"

        return check

    @bp.get("/healthz")
    def healthz() -> Response:
        return jsonify({"status": "ok"})

    @bp.get("/readyz")
    def readyz() -> tuple[Response, int]:
        checks: dict[str, Callable[[], str]] = {"redis": check_redis, "objects": check_objects}
        for worker_class in settings.ready_worker_classes:
            checks[f"workers:{worker_class}"] = check_workers(worker_class)
        futures = {name: pool.submit(fn) for name, fn in checks.items()}
        deadline = time.monotonic() + CHECK_TIMEOUT_S
        results: dict[str, str] = {}
        ready = True
        for name, future in futures.items():
            try:
                results[name] = future.result(timeout=max(0.0, deadline - time.monotonic()))
            except FutureTimeout:
                results[name] = f"no answer within {CHECK_TIMEOUT_S:g} s"
                ready = False
            except Exception as exc:  # noqa: BLE001 - every failure is a "not ready" with its reason
                results[name] = f"failed: {type(exc).__name__}: {exc}"
                ready = False
        body = {"status": "ready" if ready else "not ready", "checks": results}
        return jsonify(body), 200 if ready else 503

    return bp


def install_metrics(flask_app: Flask, settings: Settings, services: Services) -> None:
    """``GET /metrics`` and the per-request instruments (``openmps_http_requests_total``)."""
    local = CollectorRegistry()
    web = WebMetrics(local)
    store = StoreCollector(services.redis, services.jobs, services.pipelines, services.scheduler, services.fleet)

    # The labelled children, looked up once each: ``labels()`` takes a lock and validates its
    # arguments on every call. Bounded by the blueprints times the statuses they answer.
    requests_by: dict[tuple[str, int], Any] = {}
    latency_by: dict[str, Any] = {}

    @flask_app.after_request
    def _count(response: Response) -> Response:
        surface = current_request().blueprint or "none"
        status = response.status_code
        counter = requests_by.get((surface, status))
        if counter is None:
            counter = requests_by[surface, status] = web.requests.labels(surface, str(status))
        counter.inc()
        started = current_globals().get("started")  # set by the shell's first before_request hook (app.web)
        if started is not None:
            histogram = latency_by.get(surface)
            if histogram is None:
                histogram = latency_by[surface] = web.latency.labels(surface)
            histogram.observe(time.perf_counter() - started)
        return response

    @flask_app.get("/metrics")
    def metrics() -> Response | tuple[Response, int, dict[str, str]]:
        """With ``OPENMPS_METRICS_TOKEN`` set, only a scraper sending it as a bearer token is
        answered: the series name every tenant's pipelines and their volumes, and the API port is
        the one tenants reach."""
        if settings.metrics_token is not None:
            scheme, _, given = current_request().headers.get("Authorization", "").partition(" ")
            if scheme.lower() != "bearer" or not hmac.compare_digest(
                given.strip().encode(), settings.metrics_token.encode()
            ):
                refusal = {
                    "code": "Unauthenticated",
                    "message": "/metrics needs the bearer token OPENMPS_METRICS_TOKEN names",
                }
                return jsonify(refusal), 401, {"WWW-Authenticate": 'Bearer realm="openmps-metrics"'}
        return Response(exposition(scrape_registry(settings, local, store)), content_type=CONTENT_TYPE)
