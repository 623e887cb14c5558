"""The worker's Celery application: ``celery -A workers.celery_app:celery_app worker``.

Celery's CLI needs a module-level app, so this is the one module that reads Settings at import.
The ``PipelineQueues`` bootstep keeps the set of consumed queues equal to the pipelines of this
worker's resource class (new pipelines are served within ``OPENMPS_QUEUE_SYNC_S`` seconds, no
restart), beats the worker's heartbeat into Redis (``/readyz`` and the fleet's busy ratio read it)
and runs the scheduler's reconcile pass and the retention sweep (index entries of finished jobs
whose retention ended), one worker at a time, on the same timer. The signal handlers at the end
start the worker's ``/metrics`` server (``workers/metrics.py``).
"""

from __future__ import annotations

import logging
import os
from typing import Any

from celery import Celery, bootsteps, signals
from prometheus_client import multiprocess

from app import logs
from app.core.pipelines import DEFAULT_PIPELINE_ID, QUEUE_PREFIX, Pipeline, queue_name
from app.metrics import reset_multiprocess_dir
from app.queueing import make_celery
from app.settings import Settings, SettingsError
from app.wiring import Services, build_services, ensure_default_pipeline
from workers.metrics import start_server

log = logging.getLogger(__name__)

try:
    settings = Settings.from_env()
except SettingsError as exc:  # one readable line instead of an import traceback
    raise SystemExit(f"openmps worker: {exc}") from None
celery_app: Celery = make_celery(settings, main="openmps-worker")
celery_app.conf.imports = ("workers.tasks",)
celery_app.conf.task_default_queue = (
    queue_name(DEFAULT_PIPELINE_ID) if settings.worker_class == "cpu" else f"openmps.idle.{settings.worker_class}"
)


class PipelineQueues(bootsteps.StartStopStep):
    requires = {"celery.worker.consumer.tasks:Tasks"}

    def __init__(self, parent: Any, **kwargs: Any) -> None:
        super().__init__(parent, **kwargs)
        self.tref: Any = None
        self.services: Services | None = None
        self.known: tuple[int, list[Pipeline]] = (-1, [])  # (registry version, pipelines) last read

    def start(self, c: Any) -> None:
        self.services = build_services(settings, celery_app=c.app)
        ensure_default_pipeline(self.services)
        self.sync(c)
        self.tref = c.timer.call_repeatedly(settings.queue_sync_interval_s, self.sync, (c,), priority=10)

    def stop(self, c: Any) -> None:
        if self.tref is not None:
            self.tref.cancel()
            self.tref = None
        if self.services is not None:
            try:
                self.services.fleet.leave(settings.worker_class, c.hostname)
            except Exception:  # Redis gone (this stop may be the reaction to that): the beat expires
                log.info("could not sign off from the worker registry", exc_info=True)

    def beat(self, c: Any) -> None:
        """Alive for three sync periods (at least 10 s): a missed tick or two is not a death."""
        assert self.services is not None
        slots = int(getattr(c.controller, "concurrency", None) or settings.worker_concurrency)
        ttl = max(10.0, 3 * settings.queue_sync_interval_s)
        self.services.fleet.beat(settings.worker_class, c.hostname, concurrency=slots, ttl_s=ttl)
        self.services.fleet.prune(settings.worker_class)

    def sync(self, c: Any) -> None:
        assert self.services is not None
        try:
            self.beat(c)
            version = self.services.pipelines.version()
            if version != self.known[0]:
                self.known = (version, self.services.pipelines.list_all())
            pipelines = self.known[1]
            wanted = {p.queue_name for p in pipelines if p.resource_class.value == settings.worker_class}
            current = {q.name for q in c.task_consumer.queues}
            for name in sorted(wanted - current):
                log.info("consuming new pipeline queue %s", name)
                c.add_task_queue(name)
            for name in sorted(current - wanted):
                if name.startswith(QUEUE_PREFIX):
                    log.info("no longer consuming %s (pipeline deleted or another resource class)", name)
                    c.cancel_task_queue(name)
            if self.services.scheduler.try_lock(settings.queue_sync_interval_s * 0.9):
                self.services.scheduler.reconcile([p.id for p in pipelines])
                self.services.jobs.sweep_expired()  # finished jobs past their retention leave the indexes
        except Exception:  # a Redis hiccup must not stop the consumer; the next tick retries
            log.warning("pipeline queue sync failed", exc_info=True)


celery_app.steps["consumer"].add(PipelineQueues)


@signals.worker_init.connect
def _fresh_metrics_files(**_: Any) -> None:
    """The main process, before the pool forks: a previous run's metric files would carry on."""
    reset_multiprocess_dir(settings)


@signals.worker_ready.connect
def _serve_metrics(sender: Any = None, **_: Any) -> None:
    if settings.metrics_port:
        slots = int(getattr(sender.controller, "concurrency", None) or settings.worker_concurrency) if sender else 1
        start_server(settings, slots)


@signals.worker_process_shutdown.connect
def _child_gone(pid: int | None = None, **_: Any) -> None:
    """A pool child leaving: its live gauges (busy slots) stop counting; its counters stay."""
    if settings.prometheus_multiproc_dir is not None:
        multiprocess.mark_process_dead(pid or os.getpid(), str(settings.prometheus_multiproc_dir))


@signals.setup_logging.connect
def _configure_logging(loglevel: Any = None, **_kwargs: Any) -> None:
    """Connected, so Celery leaves logging to ``app.logs`` (OPENMPS_LOG_FORMAT) in every worker."""
    logs.configure(settings.log_format, loglevel or logging.INFO)
