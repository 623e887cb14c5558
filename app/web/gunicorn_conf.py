"""gunicorn settings for the API: ``gunicorn -c python:app.web.gunicorn_conf 'app.web:create_app()'``.

Only the hooks prometheus-client's multiprocess mode needs (``app/metrics.py``): the arbiter clears
``PROMETHEUS_MULTIPROC_DIR`` before it forks the workers (a previous run's counters would carry
on), and a worker that exits stops counting in live gauges. Bind address, workers and threads stay
on the command line (Procfile, deploy/), where operators look for them.
"""

from __future__ import annotations

from typing import Any

from prometheus_client import multiprocess

from app.metrics import reset_multiprocess_dir
from app.settings import Settings


def on_starting(server: Any) -> None:
    reset_multiprocess_dir(Settings.from_env())


def child_exit(server: Any, worker: Any) -> None:
    directory = Settings.from_env().prometheus_multiproc_dir
    if directory is not None:
        multiprocess.mark_process_dead(worker.pid, str(directory))
