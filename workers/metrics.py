"""The worker's metrics: per-job observations in each pool child, one HTTP server in the main process.

Celery's prefork pool runs jobs in child processes, so with ``PROMETHEUS_MULTIPROC_DIR`` every child
writes its instruments to files there and the server in the main process (``OPENMPS_METRICS_PORT``,
started once the worker is ready) reads them all per scrape. A child that is replaced
(``worker_max_tasks_per_child``) or killed keeps its counters (they are cumulative) but drops out of
the busy gauge. The server is the worker's own rather than a push to the API: a worker on another
host shares no directory with the API, and Prometheus scrapes each target where it runs.
"""

from __future__ import annotations

import logging
import os
import threading
from typing import Any

from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from app.metrics import WorkerMetrics, forget_dead_processes, multiprocess_on, sample_sum, scrape_registry
from app.settings import Settings
from workers.pipeline import StageTimes

log = logging.getLogger(__name__)

_lock = threading.Lock()
_metrics: tuple[int, WorkerMetrics] | None = None


def process_metrics() -> WorkerMetrics:
    """This process's instruments, created after fork (a child must not reuse its parent's values)."""
    global _metrics
    with _lock:
        if _metrics is None or _metrics[0] != os.getpid():
            _metrics = (os.getpid(), WorkerMetrics())
        return _metrics[1]


def observe_job(
    metrics: WorkerMetrics, worker_class: str, state: str, seconds: float, images: int, stages: StageTimes
) -> None:
    """One finished attempt (succeeded, failed or canceled)."""
    metrics.job_duration.labels(worker_class, state).observe(seconds)
    for stage, spent in (("decode", stages.decode_s), ("encode", stages.encode_s), ("upload", stages.upload_s)):
        metrics.stage_seconds.labels(worker_class, stage).observe(spent)
    if state == "succeeded":
        metrics.images.labels(worker_class).inc(images)
        if seconds > 0:
            metrics.images_per_second.labels(worker_class).observe(images / seconds)


class PoolCollector(Collector):
    """The pool's size and busy ratio: busy slots summed over every child, over ``slots``."""

    def __init__(self, settings: Settings, slots: int, children: CollectorRegistry) -> None:
        self.settings = settings
        self.slots = slots
        self.children = children

    def collect(self) -> list[Metric]:
        if self.settings.prometheus_multiproc_dir is not None:
            forget_dead_processes(self.settings.prometheus_multiproc_dir)
        busy = sample_sum(self.children, "openmps_worker_busy_slots")
        return [
            GaugeMetricFamily(
                "openmps_worker_pool_slots", "Job slots of this worker (its concurrency)", value=self.slots
            ),
            GaugeMetricFamily(
                "openmps_worker_busy_ratio",
                "Busy slots / slots of this worker, now",
                value=busy / self.slots if self.slots else 0.0,
            ),
        ]


def start_server(settings: Settings, slots: int) -> Any:
    """Serve /metrics on HOST:OPENMPS_METRICS_PORT from the worker's main process."""
    children = scrape_registry(settings, process_metrics().registry)
    registry = scrape_registry(settings, process_metrics().registry, PoolCollector(settings, slots, children))
    if not multiprocess_on(settings) and slots > 1:
        log.warning("PROMETHEUS_MULTIPROC_DIR is unset: /metrics shows only the main process, not the pool's jobs")
    server, _thread = start_http_server(settings.metrics_port, addr=settings.host, registry=registry)
    log.info("worker metrics on http://%s:%d/metrics", settings.host, settings.metrics_port)
    return server
