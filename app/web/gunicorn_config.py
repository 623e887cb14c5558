"""gunicorn settings for the API (``gunicorn -c python:app.web.gunicorn_config``; Procfile, make up).

Request-size limits sit just above the app's own (``app.web.MAX_TARGET_BYTES`` and
``MAX_HEADER_BYTES``), so that an oversized request reaching the app gets a 414/431 in its
dialect's format. What gunicorn still answers itself, as a plain-text/HTML page, before the app
sees anything: a request line over 8190 bytes (414), a header line over 8190 bytes or more than
100 headers (400 "Request Header Fields Too Large"), and malformed HTTP (400). 8190 is the most
gunicorn allows for a request line.

The hooks are what prometheus-client's multiprocess mode needs (``app/metrics.py``): the arbiter
clears ``PROMETHEUS_MULTIPROC_DIR`` before it forks the workers (a previous run's counters would
carry on), and a worker that exits stops counting in live gauges. Bind address, workers and
threads stay on the command line (Procfile, deploy/), where operators look for them.

Workers and threads (the Procfile's ``--workers 2 --threads 4``, gthread) were chosen with
``bench/load.py``-style interleaved runs (``BENCH_GUNICORN``), native ``POST /api/v1/jobs``, wrk
with 32 connections, on the 2-core dev box shared with other work (so compare within a run):

=========================  =========  ======  ===================  ==========================
configuration              jobs/s     p99 ms  server CPU ms/job    run (1-min load average)
=========================  =========  ======  ===================  ==========================
2 workers x 4 threads      1471       56      1.11                 A (quiet, rising to 7.6)
2 workers x 8 threads      1341       58      1.22                 A
2 workers x 16 threads     1316       72      1.23                 A
3 workers x 8 threads      1443       71      1.18                 A
2 workers x 4 threads      846        109     1.24                 B (8.3)
3 workers x 3 threads      755        125     1.47                 B
4 workers x 2 threads      571        219     1.52                 B
2 workers x 4 threads      795        107     1.27                 C (5.2)
gevent, 2 workers          695        208     1.27                 C
sync, 4 workers            325        196     -                    D (12.9; 2x4: ~700)
=========================  =========  ======  ===================  ==========================

One process per core; more processes only add CPU per job (context switches, one Redis pool
and set of caches each), more threads gain nothing measurable, gevent costs the same CPU with a
longer tail (and would monkeypatch the process), and sync workers leave the cores idle while a
request waits on Redis. Four threads per worker keep both cores busy through those waits.
"""

from __future__ import annotations

from typing import Any

from prometheus_client import multiprocess

from app import logs
from app.metrics import reset_multiprocess_dir
from app.settings import Settings

limit_request_line = 8190
limit_request_field_size = 8190
limit_request_fields = 100


def on_starting(server: Any) -> None:
    reset_multiprocess_dir(Settings.from_env())


def child_exit(server: Any, worker: Any) -> None:
    directory = Settings.from_env().prometheus_multiproc_dir
    if directory is not None:
        multiprocess.mark_process_dead(worker.pid, str(directory))


# The API's logs (access lines included) in OPENMPS_LOG_FORMAT, set up once in the master before
# it forks its workers. A bad setting stops gunicorn here with the variable named.
logs.configure(Settings.from_env().log_format)
