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

Workers and threads (the Procfile's ``--workers 2 --threads 2``, gthread) were chosen with
``bench/load.py`` runs (``BENCH_GUNICORN``), native ``POST /api/v1/jobs`` and the batch endpoint,
wrk with 32 connections, on the 2-core dev box shared with other work (so compare within a run),
each row against the bare endpoint under the same settings in the same run:

==========================  ========  ======  =================  ==========  ===================
configuration               jobs/s    p99 ms  server CPU ms/job  batch j/s   run (1-min load)
==========================  ========  ======  =================  ==========  ===================
2 workers x 2 threads       1723      36      0.94               10 857      E (quiet)
2 workers x 4 threads       1242      57      1.25               8 932       E (one noisy round)
3 workers x 2 threads       1755      48      0.96               11 945      E
2 workers x 4 threads       1388      61      1.19               7 513       F (4.8)
2 workers x 2 threads       1618      39      0.99               10 781      F (5.0)
3 workers x 2 threads       1663      54      1.00               10 674      F (4.1)
2 workers x 4 threads       1574      61      1.02               10 050      F (4.4)
2 workers x 1 thread        1587      29      0.90               11 219      G (1.1)
2 workers x 2 threads       1078      87      1.56               8 489       G (2.1, noisy)
3 workers x 1 thread        1535      29      1.05               10 829      G (3.9)
2 workers x 4 threads       1167      64      1.32               -           H (rounds 625, 1710)
2 workers x 2 threads       1705      32      0.95               -           H (4.0)
2 workers x 4 threads       1214      53      1.17               -           H (rounds 1645, 783)
2 workers x 2 threads       1511      75      1.08               -           H (3.1)
2 workers x 2 threads       527       106     2.54               4 785       I (slower machine)
2 workers x 1 thread        689       86      2.21               5 188       I
2 workers x 2 threads       713       102     2.31               5 117       I
2 workers x 1 thread        774       64      1.98               5 265       I
==========================  ========  ======  =================  ==========  ===================

Run I came on a machine about twice as slow (the bare endpoint's CPU per request 0.66-0.78 ms
against 0.33-0.36 ms before), after the submit path lost a third of its instructions; there one
thread a process measured 5-15 % cheaper a job, within the spread of two runs of one setting.

One process per core, two threads each: a request's Redis round trip is short next to its
Python, so two threads keep a core busy through it (one thread measured as well, but would let
a single synchronous call below stall its whole process), while more threads only contend for
the GIL (more CPU per job, a longer tail: p99 53-64 ms with four against 31-39 with two in most
runs; machine noise moves single runs of either). A third process
gains nothing measurable on two cores and lengthens the tail too. An earlier, slower submit path
(1.1-1.5 ms of CPU a job) measured best at 2 x 4; gevent cost the same CPU with a longer tail
(and would monkeypatch the process), and sync workers leave the cores idle while a request
waits on Redis. 2 x 4 also fell, in about one round in three, to half its rate (600-800 jobs/s)
while 2 x 2 beside it did not.

The cost of fewer threads: a synchronous call holds its thread until its job ends or its budget
runs out (``?wait=`` up to 10 s, MPS ``SubmitSnapshotJob``'s synchronous snapshot, Huawei's
synchronous task), and with 2 x 2 the fifth concurrent one waits for a thread, as does every
request behind it. Where clients use them heavily, raise ``--threads`` (idle waiting threads cost
almost nothing; only busy ones contend). ``deploy/`` runs 4 x 4 for its larger hosts: measure
there the same way.
"""

from __future__ import annotations

import gc
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


def post_worker_init(worker: Any) -> None:
    """Freeze what the worker built at start-up (the app, its dialects, every SDK module they
    import: about 96 000 tracked objects) into the collector's permanent generation.

    Each full collection otherwise walks all of them again, however little a request left behind:
    it took about 50 ms of one worker's time (measured in-process on the 2-core dev box), every
    few thousand submissions, stalling each request in flight meanwhile (``gc.freeze`` is the
    standard library's switch for objects that live as long as the process)."""
    gc.collect()
    gc.freeze()


def child_exit(server: Any, worker: Any) -> None:
    directory = Settings.from_env().prometheus_multiproc_dir
    if directory is not None:
        multiprocess.mark_process_dead(worker.pid, str(directory))


# The API's logs (access lines included) in OPENMPS_LOG_FORMAT, set up once in the master before
# it forks its workers. A bad setting stops gunicorn here with the variable named.
logs.configure(Settings.from_env().log_format)
