"""Prometheus metrics: every metric openmps exports, where it is measured, and how it is scraped.

Two kinds, chosen by what each number is:

* **Facts of the job store** (jobs by pipeline and state, queue depth and the age of the oldest
  queued job per pipeline, live workers and the fleet's busy ratio, the notification backlog) are
  computed from Redis when ``GET /metrics`` is scraped (``StoreCollector``). They are exact, the
  same from every API process, and need no bookkeeping that could drift. ``openmps_queue_depth``
  counts the scheduler's pending set plus the dispatch window: the number an autoscaler should
  use, where Celery's own lists only ever hold the window (``docs/scheduling.md``).
* **Events inside a process** (a job's duration, images per second, decode/encode/upload time,
  push attempts, HTTP requests) are prometheus-client instruments. gunicorn's workers and
  Celery's prefork children are separate processes, so with ``PROMETHEUS_MULTIPROC_DIR`` set each
  writes its values to files there and whichever process is scraped reads them all
  (``MultiProcessCollector``); without it a process reports only its own (fine for one process).

Workers and the notifier serve their own ``/metrics`` on ``OPENMPS_METRICS_PORT`` (an HTTP server
in the worker's main process, which reads its pool children's files): a worker on another host
has no shared directory with the API, and Prometheus scrapes each target anyway. The store facts
are exported by the API only, so summing over targets never counts a job twice.
"""

from __future__ import annotations

import glob
import os
import re
from collections.abc import Iterable, Iterator
from pathlib import Path

import redis
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest, multiprocess
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from app.core.pipelines import Pipeline
from app.core.states import JobState
from app.notify import delivery
from app.settings import WORKER_CLASSES, Settings
from app.storage import keys
from app.storage.jobs import RedisJobRepository, now_ms
from app.storage.pipelines import RedisPipelineRepository
from app.storage.scheduler import RedisScheduler
from app.storage.workers import RedisWorkerRegistry

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
DURATION_BUCKETS = (0.25, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600)
RATE_BUCKETS = (0.5, 1, 2, 5, 10, 20, 50, 100, 200, 500, 1000)
STAGE_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300)
STAGES = ("decode", "encode", "upload")

# Per tenant and pipeline: how many of the pipeline's jobs sit in each state index. One script
# per tenant walks each pipeline index once and finds each job's state set (a job is in exactly
# one). KEYS: the tenant's pipeline indexes, then its state indexes; ARGV[1]: how many pipelines.
_COUNT_BY_PIPELINE_AND_STATE = """
local np = tonumber(ARGV[1])
local out = {}
for i = 1, np do
  local counts = {}
  for j = np + 1, #KEYS do counts[j - np] = 0 end
  for _, id in ipairs(redis.call('ZRANGE', KEYS[i], 0, -1)) do
    for j = np + 1, #KEYS do
      if redis.call('ZSCORE', KEYS[j], id) then counts[j - np] = counts[j - np] + 1; break end
    end
  end
  out[i] = counts
end
return out
"""


class StoreCollector(Collector):
    """Scrape-time facts from the job store (see the module docstring). Exported by the API only."""

    def __init__(
        self,
        client: redis.Redis,
        jobs: RedisJobRepository,
        pipelines: RedisPipelineRepository,
        scheduler: RedisScheduler,
        fleet: RedisWorkerRegistry,
    ) -> None:
        self.r = client
        self.jobs = jobs
        self.pipelines = pipelines
        self.scheduler = scheduler
        self.fleet = fleet
        self._count = client.register_script(_COUNT_BY_PIPELINE_AND_STATE)

    def collect(self) -> Iterator[Metric]:
        yield self._jobs_by_state()
        pipelines = self.pipelines.list_all()
        yield from self._queues(pipelines)
        yield from self._fleet(pipelines)
        backlog = self.r.pipeline(transaction=False)
        backlog.zcard(delivery.DUE)
        backlog.zcard(delivery.DEAD)
        backlog.xlen(keys.OUTBOX)
        due, dead, outbox = backlog.execute()
        yield GaugeMetricFamily("openmps_notify_pending", "Push deliveries waiting for their next attempt", value=due)
        yield GaugeMetricFamily(
            "openmps_notify_dead_letters_stored",
            "Push deliveries that exhausted their retries (kept 7 days)",
            value=dead,
        )
        yield GaugeMetricFamily(
            "openmps_outbox_length",
            "Finished jobs whose completion message the notifier has not sent yet",
            value=outbox,
        )

    def _jobs_by_state(self) -> Metric:
        family = GaugeMetricFamily(
            "openmps_jobs", "Jobs in the job store, by pipeline and state (every tenant)", labels=["pipeline", "state"]
        )
        states = [s.value for s in JobState]
        totals: dict[tuple[str, str], int] = {}
        for tenant in self.jobs.tenants():
            prefix = keys.tenant_pipeline_jobs(tenant, "")
            pipeline_ids = sorted(k[len(prefix) :] for k in self.r.scan_iter(match=prefix + "*", count=1000))
            if not pipeline_ids:
                continue
            rows = self._count(
                keys=[keys.tenant_pipeline_jobs(tenant, p) for p in pipeline_ids]
                + [keys.tenant_state_jobs(tenant, s) for s in states],
                args=[len(pipeline_ids)],
            )
            for pid, counts in zip(pipeline_ids, rows, strict=True):
                for state, n in zip(states, counts, strict=True):
                    totals[(pid, state)] = totals.get((pid, state), 0) + int(n)
        for (pid, state), n in sorted(totals.items()):
            family.add_metric([pid, state], n)
        return family

    def _queues(self, pipelines: list[Pipeline]) -> Iterator[Metric]:
        labels = ["pipeline", "resource_class", "pipeline_state"]
        depth = GaugeMetricFamily(
            "openmps_queue_depth",
            "Accepted jobs not yet started (the scheduler's pending set + dispatch window): scale workers on this",
            labels=labels,
        )
        running = GaugeMetricFamily("openmps_queue_running", "Jobs running now", labels=labels)
        oldest = GaugeMetricFamily(
            "openmps_queue_oldest_age_seconds", "Age of the oldest queued job (0 when none is queued)", labels=labels
        )
        now = now_ms()
        for p in pipelines:
            stats = self.scheduler.queue_stats(p.id)
            values = [p.id, p.resource_class.value, p.state.value]
            depth.add_metric(values, stats.queued)
            running.add_metric(values, stats.running)
            age = 0.0 if stats.oldest_queued_ms is None else max(0.0, (now - stats.oldest_queued_ms) / 1000)
            oldest.add_metric(values, age)
        yield from (depth, running, oldest)

    def _fleet(self, pipelines: list[Pipeline]) -> Iterator[Metric]:
        alive = GaugeMetricFamily(
            "openmps_workers_alive", "Workers whose heartbeat is current", labels=["resource_class"]
        )
        slots = GaugeMetricFamily("openmps_worker_slots", "Job slots of the live workers", labels=["resource_class"])
        ratio = GaugeMetricFamily(
            "openmps_fleet_busy_ratio", "Running jobs / live job slots, per resource class", labels=["resource_class"]
        )
        pipe = self.r.pipeline(transaction=False)
        for p in pipelines:
            pipe.zcard(keys.running(p.id))
        running_by_class: dict[str, int] = dict.fromkeys(WORKER_CLASSES, 0)
        for p, n in zip(pipelines, pipe.execute(), strict=True):
            running_by_class[p.resource_class.value] = running_by_class.get(p.resource_class.value, 0) + int(n)
        for worker_class in WORKER_CLASSES:
            live = self.fleet.alive(worker_class)
            total = sum(w.concurrency for w in live)
            alive.add_metric([worker_class], len(live))
            slots.add_metric([worker_class], total)
            ratio.add_metric([worker_class], running_by_class[worker_class] / total if total else 0.0)
        yield from (alive, slots, ratio)


class WebMetrics:
    """The API process's own instruments."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.requests = Counter(
            "openmps_http_requests", "HTTP requests answered", ["surface", "status"], registry=registry
        )
        self.latency = Histogram(
            "openmps_http_request_duration_seconds",
            "Time to answer an HTTP request",
            ["surface"],
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            registry=registry,
        )


class WorkerMetrics:
    """A worker process's instruments (each prefork child has its own; see the module docstring)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        reg = registry or CollectorRegistry()
        self.registry = reg
        self.job_duration = Histogram(
            "openmps_job_duration_seconds",
            "Wall time of one job attempt, by how it ended",
            ["resource_class", "state"],
            buckets=DURATION_BUCKETS,
            registry=reg,
        )
        self.images_per_second = Histogram(
            "openmps_job_images_per_second",
            "Images a successful job produced per second of its run",
            ["resource_class"],
            buckets=RATE_BUCKETS,
            registry=reg,
        )
        self.stage_seconds = Histogram(
            "openmps_job_stage_seconds",
            "Time one job spent decoding, encoding and uploading",
            ["resource_class", "stage"],
            buckets=STAGE_BUCKETS,
            registry=reg,
        )
        self.images = Counter("openmps_images", "Images written by successful jobs", ["resource_class"], registry=reg)
        self.busy = Gauge(
            "openmps_worker_busy_slots", "Jobs this worker runs now", multiprocess_mode="livesum", registry=reg
        )
        self.busy_seconds = Counter(
            "openmps_worker_busy_seconds", "Seconds this worker's slots spent running jobs", registry=reg
        )


class NotifyMetrics:
    """The notifier's instruments."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        reg = registry or CollectorRegistry()
        self.registry = reg
        self.attempts = Counter(
            "openmps_notify_attempts", "HTTP push attempts, by outcome (ok, failed)", ["outcome"], registry=reg
        )
        self.dead_letters = Counter(
            "openmps_notify_dead_letters", "Push deliveries that exhausted their retries", registry=reg
        )


def multiprocess_on(settings: Settings) -> bool:
    return settings.prometheus_multiproc_dir is not None


class _Forward(Collector):
    """Exposes another registry's metrics inside a scrape registry."""

    def __init__(self, source: CollectorRegistry) -> None:
        self.source = source

    def collect(self) -> Iterable[Metric]:
        return self.source.collect()


def scrape_registry(settings: Settings, local: CollectorRegistry, *extra: Collector) -> CollectorRegistry:
    """What one scrape exports: every process's instruments (multiprocess files) or this one's, plus
    ``extra`` collectors."""
    reg = CollectorRegistry()
    if multiprocess_on(settings):
        multiprocess.MultiProcessCollector(reg, path=str(settings.prometheus_multiproc_dir))
    else:
        reg.register(_Forward(local))
    for collector in extra:
        reg.register(collector)
    return reg


def exposition(registry: CollectorRegistry) -> bytes:
    return generate_latest(registry)


def reset_multiprocess_dir(settings: Settings) -> None:
    """A process tree starting afresh (gunicorn's arbiter, a Celery worker's main process) drops the
    files of a previous run, or its counters would carry on from them."""
    path = settings.prometheus_multiproc_dir
    if path is None:
        return
    path.mkdir(parents=True, exist_ok=True)
    for f in glob.glob(str(path / "*.db")):
        os.remove(f)


_LIVE_FILE = re.compile(r"gauge_live\w+_(\d+)\.db$")


def forget_dead_processes(path: Path) -> None:
    """Drop the live-gauge files of processes that are gone (a pool child killed without running its
    exit hook): ``livesum`` gauges would otherwise keep counting them."""
    for f in glob.glob(str(path / "gauge_live*_*.db")):
        m = _LIVE_FILE.search(f)
        if m is None:
            continue
        pid = int(m.group(1))
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            multiprocess.mark_process_dead(pid, str(path))
        except PermissionError:
            continue  # alive, another user's


def sample_sum(registry: CollectorRegistry, name: str) -> float:
    """The sum of one metric's samples in a registry (e.g. busy slots over every pool child)."""
    total = 0.0
    for family in registry.collect():
        for sample in family.samples:
            if sample.name == name:
                total += sample.value
    return total
