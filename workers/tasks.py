"""The snapshot task: load the job by id, guard the transition, run it, record the result.

Everything that can go wrong ends in one recorded transition (succeeded, failed with a code, or
canceled). A duplicate delivery is recognised by the start guard and dropped; a worker that dies
mid-job leaves its lease to expire and the scheduler's reconcile pass re-sends the job.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from dataclasses import dataclass
from typing import Any

from celery.exceptions import SoftTimeLimitExceeded

from app.core.errors import AttemptSuperseded, FailureCode, JobCanceled, JobFailure
from app.core.jobs import SnapshotJob
from app.core.pipelines import TASK_RUN_SNAPSHOT
from app.core.states import JobState
from app.metrics import WorkerMetrics
from app.notify.progress import ProgressPublisher
from app.settings import Settings
from app.storage.jobs import StartOutcome
from app.wiring import Services, build_services
from workers.celery_app import celery_app, settings
from workers.metrics import observe_job, process_metrics
from workers.pipeline import MediaLimits, StageTimes, core_share, public_message, run_snapshot
from workers.progress import ProgressEmitter
from workers.urlinput import UrlInputs

log = logging.getLogger(__name__)

TRANSIENT_RETRIES = 3
CANCEL_POLL_S = 0.25


@dataclass(frozen=True)
class JobOutputLog:
    """``workers.pipeline.OutputLog`` over the job store's written set (shared by all attempts)."""

    services: Services
    job_id: str

    def record(self, bucket: str, key: str) -> None:
        self.services.jobs.record_written(self.job_id, bucket, key)

    def recorded(self) -> list[tuple[str, str]]:
        return self.services.jobs.written(self.job_id)

    def forget(self, objects: list[tuple[str, str]]) -> None:
        self.services.jobs.forget_written(self.job_id, objects)


@dataclass
class _ProcessState:
    pid: int
    services: Services


_state: _ProcessState | None = None


def process_services() -> Services:
    """Services for this process, built after fork (connections must not cross a fork)."""
    global _state
    if _state is None or _state.pid != os.getpid():
        _state = _ProcessState(os.getpid(), build_services(settings, celery_app=celery_app))
    return _state.services


class Watch(threading.Thread):
    """Keeps the job's lease alive and notices cancel requests while the job runs."""

    def __init__(self, services: Services, job_id: str, lease_token: str, cfg: Settings) -> None:
        super().__init__(name=f"watch-{job_id}", daemon=True)
        self.services, self.job_id, self.lease_token, self.cfg = services, job_id, lease_token, cfg
        self.stop_event = threading.Event()
        self.cancel_event = threading.Event()
        self.lost_lease = threading.Event()

    def run(self) -> None:
        ttl_ms = int(self.cfg.lease_ttl_s * 1000)
        next_beat = time.monotonic() + self.cfg.heartbeat_interval_s
        while not self.stop_event.wait(CANCEL_POLL_S):
            try:
                if self.services.jobs.cancel_requested(self.job_id):
                    self.cancel_event.set()
                if time.monotonic() >= next_beat:
                    next_beat = time.monotonic() + self.cfg.heartbeat_interval_s
                    if not self.services.jobs.heartbeat(self.job_id, self.lease_token, ttl_ms):
                        self.lost_lease.set()
            except Exception:  # Redis blips: the lease TTL covers several missed beats
                log.warning("heartbeat for job %s failed", self.job_id, exc_info=True)

    def should_stop(self) -> bool:
        """The media code's ``should_cancel``: True on a cancel request; raises when superseded."""
        if self.lost_lease.is_set():
            raise AttemptSuperseded(f"job {self.job_id}: another attempt took over this job's lease")
        return self.cancel_event.is_set()

    def stop(self) -> None:
        self.stop_event.set()
        self.join(timeout=2)


class JobFailed(Exception):
    """Raised by the task after a failure is recorded, so Celery reports the task as failed; it is
    in the task's ``throws``, so Celery logs it as expected, in one line, without a traceback."""

    def __init__(self, job_id: str, code: str, message: str) -> None:
        super().__init__(job_id, code, message)  # the arguments themselves: it crosses a pickle
        self.job_id, self.code, self.message = job_id, code, message

    def __str__(self) -> str:
        return f"job {self.job_id} failed: {self.code}: {self.message}"


@dataclass(frozen=True)
class Delivery:
    outcome: StartOutcome
    failure: JobFailed | None = None  # the failure this delivery recorded


def execute(
    services: Services, job_id: str, *, worker: str, decoder: str = "auto", metrics: WorkerMetrics | None = None
) -> StartOutcome:
    """Run one delivery of the job's task. The slots its start and finish free (window, running)
    are refilled by the repository as part of those transitions, not here. ``metrics``: where the
    attempt's duration, stage times and images are observed (the task passes its process's)."""
    return deliver(services, job_id, worker=worker, decoder=decoder, metrics=metrics).outcome


def deliver(
    services: Services, job_id: str, *, worker: str, decoder: str = "auto", metrics: WorkerMetrics | None = None
) -> Delivery:
    """``execute``, also telling which failure (if any) it recorded; each recorded outcome is
    logged in one line with its code."""
    cfg = services.settings
    started = services.jobs.start(
        job_id, worker=worker, lease_ttl_ms=int(cfg.lease_ttl_s * 1000), max_attempts=cfg.max_attempts
    )
    if started.outcome not in (StartOutcome.STARTED, StartOutcome.TAKEOVER):
        log.info("job %s not started: %s (attempts %d)", job_id, started.outcome.value, started.attempts)
        return Delivery(started.outcome)
    job = services.jobs.get(job_id)
    log.info("job %s started (attempt %d, %s)", job_id, started.attempts, started.outcome.value)
    began = time.monotonic()
    failure: JobFailed | None = None
    ended: JobState | None = None  # None: superseded, nothing recorded by this attempt
    timings = StageTimes()

    def on_progress(done: int, total: int) -> None:
        services.jobs.record_progress(job_id, done, total)
        if emitter is not None:
            emitter.observe(done, total)

    def finish(state: JobState, *, manifest: Any = None, code: str | None = None, message: str = "") -> None:
        nonlocal failure, ended
        ended = state
        if emitter is not None:
            emitter.close()  # its last event is enqueued before the terminal state is recorded
        recorded = services.jobs.finish(
            job_id,
            state,
            lease_token=started.lease_token,
            manifest=manifest,
            error_code=code,
            error_message=message if code else None,
        )
        seconds = round(time.monotonic() - began, 3)
        extra = {
            "job_id": job_id,
            "state": state.value,
            "code": code,
            "duration_s": seconds,
            "attempt": started.attempts,
        }
        if not recorded:
            log.info("job %s: %s not recorded (lease lost or job already ended)", job_id, state.value, extra=extra)
        elif state is JobState.SUCCEEDED:
            images = len(manifest.images) if manifest is not None else 0
            log.info(
                "job %s succeeded: %d images in %.2f s", job_id, images, seconds, extra={**extra, "images": images}
            )
        elif state is JobState.FAILED:
            log.warning("job %s failed: %s: %s (after %.2f s)", job_id, code, message, seconds, extra=extra)
            failure = JobFailed(job_id, code or "", message)
        else:
            log.info("job %s %s after %.2f s", job_id, state.value, seconds, extra=extra)

    watch = Watch(services, job_id, started.lease_token, cfg)
    watch.start()
    emitter = progress_emitter(services, job, started.attempts)
    if metrics is not None:
        metrics.busy.inc()
    manifest = None
    share = core_share(cfg).hold()  # this host's cores, shared by its running jobs (workers/frames/cores.py)
    try:
        for retry in range(TRANSIENT_RETRIES + 1):
            try:
                manifest = run_snapshot(
                    job,
                    services.objects,
                    limits=MediaLimits(
                        max_frame_pixels=cfg.max_frame_pixels,
                        max_decoded_frames=cfg.max_decoded_frames,
                        deadline=time.monotonic() + cfg.job_soft_time_limit_s,
                    ),
                    on_progress=on_progress,
                    should_cancel=watch.should_stop,
                    decoder=decoder,
                    written=JobOutputLog(services, job_id),
                    timings=timings,
                    decode_threads=share.threads,
                    url_inputs=UrlInputs.from_settings(cfg),
                )
                break
            except JobFailure as failed:
                if not failed.transient or retry == TRANSIENT_RETRIES:
                    raise
                log.warning("job %s: transient failure (%s); retry %d", job_id, failed.message, retry + 1)
                if watch.cancel_event.wait(0.5 * 2**retry):  # a cancel must not wait out the back-off
                    raise JobCanceled("canceled while waiting to retry") from failed
        finish(JobState.SUCCEEDED, manifest=manifest)
    except AttemptSuperseded:
        log.warning("job %s: attempt %d was superseded by a takeover; it stops here", job_id, started.attempts)
    except JobCanceled:
        finish(JobState.CANCELED)
    except JobFailure as failed:
        finish(JobState.FAILED, code=failed.code.value, message=failed.message)
    except SoftTimeLimitExceeded:
        finish(
            JobState.FAILED,
            code=FailureCode.SNAPSHOT_TIMEOUT.value,
            message=f"the job ran longer than {cfg.job_soft_time_limit_s} s",
        )
    except Exception as exc:  # a bug or an unforeseen input: fail the job, keep the worker
        log.exception("job %s failed unexpectedly", job_id)
        finish(
            JobState.FAILED,
            code=FailureCode.INTERNAL_ERROR.value,
            message=public_message(f"internal error: {type(exc).__name__}: {exc}", "", ""),
        )
    finally:
        share.release()
        watch.stop()
        if emitter is not None:
            emitter.close()  # after a superseded attempt too (a second close returns at once)
        if metrics is not None:
            spent = time.monotonic() - began
            metrics.busy.dec()
            metrics.busy_seconds.inc(spent)
            if ended is not None:
                images = len(manifest.images) if ended is JobState.SUCCEEDED and manifest is not None else 0
                observe_job(metrics, cfg.worker_class, ended.value, spent, images, timings)
    return Delivery(started.outcome, failure)


def progress_emitter(services: Services, job: SnapshotJob, attempt: int) -> ProgressEmitter | None:
    """The attempt's progress events, when the job asks for them (``app.core.progress``)."""
    if job.progress_events is None:
        return None
    publisher = ProgressPublisher(services.redis, services.sealer, job)
    return ProgressEmitter(
        job.progress_events, publisher, job_id=job.id, attempt=attempt, total=job.progress_total
    ).start()


@celery_app.task(name=TASK_RUN_SNAPSHOT, bind=True, throws=(JobFailed,))
def run_snapshot_task(self, job_id: str) -> str:  # type: ignore[no-untyped-def]
    worker = f"{self.request.hostname or socket.gethostname()}:{os.getpid()}"
    decoder = "gpu" if settings.worker_class == "gpu" else "auto"
    delivery = deliver(process_services(), job_id, worker=worker, decoder=decoder, metrics=process_metrics())
    if delivery.failure is not None:
        raise delivery.failure  # recorded already; this tells Celery (task-failed, no traceback)
    return delivery.outcome.value
