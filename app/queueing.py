"""Celery: one factory, every setting in one place, and how a snapshot task is sent.

The settings follow ``docs/queue-semantics.md`` §4.3; the reasons are inline. The web side
imports this module to *send* tasks by name; only ``workers`` registers them, so the API never
imports OpenCV.
"""

from __future__ import annotations

from typing import Any

from celery import Celery
from kombu.exceptions import ChannelError

from app.core.pipelines import DEFAULT_PIPELINE_ID, TASK_RUN_SNAPSHOT, queue_name
from app.settings import Settings


def celery_config(settings: Settings) -> dict[str, Any]:
    vt = settings.visibility_timeout_s
    if vt <= settings.job_time_limit_s:
        raise ValueError("OPENMPS_VISIBILITY_TIMEOUT_S must exceed the hard job time limit, or long jobs run twice")
    return {
        # JSON only: no pickle from the broker.
        "task_serializer": "json",
        "accept_content": ["json"],
        "result_serializer": "json",
        # Job state lives in our job store; Celery results would only duplicate it.
        "task_ignore_result": True,
        "result_backend": None,
        # A crash mid-job re-runs the job instead of losing it; our start guard refuses duplicates
        # and our attempt cap (max_attempts) fails a job that keeps killing its worker.
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        "task_acks_on_failure_or_timeout": True,
        # Long jobs: reserve one message per process, so nothing waits unacked in a buffer.
        "worker_prefetch_multiplier": 1,
        "worker_pool": "prefork",
        "worker_concurrency": settings.worker_concurrency,
        "worker_cancel_long_running_tasks_on_connection_loss": True,
        "worker_max_tasks_per_child": 200,
        "worker_hijack_root_logger": False,
        # SnapshotTimeout: the soft limit raises inside the job (recorded as a failure); the hard
        # limit kills it. Both stay below the visibility timeout so a slow job is never redelivered.
        "task_soft_time_limit": settings.job_soft_time_limit_s,
        "task_time_limit": settings.job_time_limit_s,
        "broker_transport_options": {
            # Celery reads the transport option; docs/queue-semantics.md §4.2(l) found setups where only
            # the top-level key took effect, so both say the same.
            "visibility_timeout": vt,
            # Every pipeline queue holds only a short window of equal-priority messages (see
            # app/storage/scheduler.py), so round-robin over queues is what makes pipelines fair.
            "queue_order_strategy": "round_robin",
            "socket_timeout": 30,
            "socket_connect_timeout": 5,
            "socket_keepalive": True,
            "retry_on_timeout": True,
            "health_check_interval": 25,
        },
        # Celery reads the transport option; docs/queue-semantics.md §4.2(l) found setups where only
        # the top-level key took effect, so both say the same.
        "visibility_timeout": vt,
        "broker_connection_retry_on_startup": True,
        "broker_connection_max_retries": None,
        # Publishing must fail fast when Redis is down: the job is already stored and the
        # reconciler re-sends, so a long in-request retry only delays the API's answer.
        "task_publish_retry": True,
        "task_publish_retry_policy": {"max_retries": 2, "interval_start": 0, "interval_step": 0.2, "interval_max": 0.5},
        "task_default_queue": queue_name(DEFAULT_PIPELINE_ID),
        "task_create_missing_queues": True,
        # Task events are what Flower (``make flower``) shows: received/started/succeeded per task,
        # sent by the workers (one small broker message per event; OPENMPS_TASK_EVENTS=false turns
        # them off). The API sends no "task-sent" events: that would cost every submission a publish.
        "worker_send_task_events": settings.task_events,
    }


def make_celery(settings: Settings, *, main: str = "openmps") -> Celery:
    celery_app = Celery(main, broker=settings.effective_broker_url, set_as_current=False)
    celery_app.conf.update(celery_config(settings))
    return celery_app


def snapshot_task_sender(celery_app: Celery):  # type: ignore[no-untyped-def]
    """A ``SendTask`` for the scheduler: one message per job, on its pipeline's queue."""

    def send(job_id: str, pipeline_id: str) -> None:
        celery_app.send_task(TASK_RUN_SNAPSHOT, args=[job_id], queue=queue_name(pipeline_id))

    return send


def queue_length_probe(celery_app: Celery):  # type: ignore[no-untyped-def]
    """A ``QueueLength`` for the scheduler: messages waiting in a pipeline's broker queue."""

    def length(pipeline_id: str) -> int:
        with celery_app.connection_for_read() as conn:
            try:
                return int(
                    conn.default_channel.queue_declare(queue=queue_name(pipeline_id), passive=True).message_count
                )
            except ChannelError:  # kombu's Redis transport: an empty queue does not exist
                return 0

    return length
