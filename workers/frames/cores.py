"""A job's share of its host's cores: how many decode threads (parallel GOP lanes) it may use.

Celery's prefork pool runs each job in a child process of its own, and no child sees what its
siblings run, so the only safe fixed share is cores // concurrency: on the default 2-core worker
with concurrency 2 that is one thread, and a single long job leaves the second core idle. So
each job counts the jobs running on its host when it starts and takes cores // running (at
least 1, ``lane_budget``): alone it gets every core; once the host runs as many jobs as it has
cores (a busy fleet), each gets one, exactly the fixed share, so decode lanes never add threads
to a busy worker. ``OPENMPS_DECODE_THREADS`` > 0 still fixes the budget instead.

The count lives in the file system, not in Redis: each running job holds an exclusive ``flock``
on a file of its own in one directory per host (``HostJobs``), and the jobs running are the
files someone holds locked. The kernel drops a process's locks when it exits, however it exits
(an exception, the hard time limit's SIGKILL, the OOM killer), so a child that crashed cannot
keep a share it no longer uses: no lease to renew, no expiry to wait out, no network round
trip. Its file stays behind unlocked, and the next count deletes it. Every worker process on a
host pointed at the same directory (cpu and gpu workers, several Celery instances) shares one
count; ``workers.pipeline.core_share`` puts it under the data directory, per host name.

The share is taken once, when the job starts: a job that started alone keeps its lanes when a
second job starts beside it, so for that overlap a 2-core host runs 3 decode threads (the
second job gets 2 // 2 = 1). Re-planning a running decode to give a core back would cost more
than the short overlap does; the next job to start sees both and takes its fair share.
"""

from __future__ import annotations

import errno
import fcntl
import logging
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

SUFFIX = ".job"  # a registered job's file (always locked from its first moment under this name)
PENDING = ".new"  # being registered: locked, not yet renamed, never counted


def lane_budget(cores: int, running: int) -> int:
    """Decode threads for one of ``running`` jobs (itself included) on ``cores`` cores: an equal
    whole share, at least 1 (a job always decodes)."""
    return max(1, cores // max(1, running))


class HostJobs:
    """The jobs running on this host, one locked file each in ``directory``."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def count(self) -> int:
        """Registered jobs alive now. A file nobody holds locked belongs to a job whose process
        died without removing it: it is deleted, and not counted."""
        alive = 0
        try:
            names = os.listdir(self.directory)
        except FileNotFoundError:
            return 0
        for name in names:
            if not name.endswith(SUFFIX):
                continue
            path = self.directory / name
            try:
                fd = os.open(path, os.O_RDONLY)
            except FileNotFoundError:  # its job just ended
                continue
            try:
                # Shared and non-blocking: counters never wait for, or exclude, each other.
                fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except OSError as exc:
                if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN):
                    raise
                alive += 1  # held exclusively: its job is running
            else:
                path.unlink(missing_ok=True)
            finally:
                os.close(fd)
        return alive

    def register(self) -> Registration:
        """Register one job until ``Registration.release`` (or its process's end).

        The file is locked before it gets its counted name (created as ``*.new``, locked, then
        renamed: the lock follows the inode), so a counter never mistakes a job being registered
        for a dead one."""
        self.directory.mkdir(parents=True, exist_ok=True)
        stem = f"{os.getpid()}-{secrets.token_hex(6)}"
        pending, path = self.directory / f"{stem}{PENDING}", self.directory / f"{stem}{SUFFIX}"
        fd = os.open(pending, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # a new file: nobody else has it
            os.rename(pending, path)
        except BaseException:
            pending.unlink(missing_ok=True)
            os.close(fd)
            raise
        return Registration(path, fd)


@dataclass
class Registration:
    """One job's locked file. ``release`` unlinks it, then drops the lock (unlinking first: a
    counter that opened it just before sees a live job, never a dead one to delete twice)."""

    path: Path
    fd: int | None

    def release(self) -> None:
        if self.fd is None:
            return
        try:
            self.path.unlink(missing_ok=True)
        finally:
            os.close(self.fd)
            self.fd = None


@dataclass
class Share:
    """A job's decode threads, held until ``release`` (idempotent; the task calls it in a
    ``finally``, and a process that dies releases it by dying)."""

    threads: int
    registration: Registration | None

    def release(self) -> None:
        if self.registration is not None:
            self.registration.release()

    def __enter__(self) -> int:
        return self.threads

    def __exit__(self, *exc: object) -> None:
        self.release()


@dataclass(frozen=True)
class CoreShare:
    """Decode-thread budgets for the jobs of one worker process.

    ``fixed`` > 0 (``OPENMPS_DECODE_THREADS``) gives every job that many; otherwise a job gets
    ``lane_budget(cores, jobs running on the host)``. ``fallback`` (cores // the worker's
    concurrency) is used when the count cannot be kept, e.g. an unwritable directory: a side
    channel, so it never fails a job. A job is registered either way, so that jobs with a
    fixed budget still count for the others on the host."""

    jobs: HostJobs
    cores: int
    fixed: int = 0
    fallback: int = 1

    def hold(self) -> Share:
        """Register a job and give it its share, counted with it among the running jobs."""
        try:
            registration = self.jobs.register()
        except OSError as exc:
            log.warning("cannot count this host's jobs (%s): this one decodes with %d threads", exc, self.fallback)
            return Share(self.fixed or self.fallback, None)
        try:
            running = self.jobs.count()
        except OSError as exc:
            log.warning("cannot count this host's jobs (%s): this one decodes with %d threads", exc, self.fallback)
            return Share(self.fixed or self.fallback, registration)
        except BaseException:
            registration.release()
            raise
        return Share(self.fixed or lane_budget(self.cores, running), registration)
