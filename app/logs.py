"""Logging for every openmps process, configured in one place (``configure``), called by each
entry point: the API (``app.web.gunicorn_config``), the worker (Celery's ``setup_logging``
signal in ``workers.celery_app``) and the notifier.

``OPENMPS_LOG_FORMAT=text`` (default): ``time level logger: message``. ``json``: one JSON object
per line (python-json-logger) with ``time``, ``level``, ``logger``, ``message`` and every field
passed as ``extra`` (the access log's ``method``, ``path``, ``status``, ``duration_ms``,
``request_id``, ``tenant``; a job outcome's ``job_id``, ``state``, ``code``).
"""

from __future__ import annotations

import logging
import sys

from pythonjsonlogger.json import JsonFormatter

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
_MARK = "_openmps_handler"


def formatter(fmt: str) -> logging.Formatter:
    if fmt == "json":
        return JsonFormatter(
            "%(asctime)s %(levelname)s %(name)s %(message)s",
            rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
        )
    return logging.Formatter(TEXT_FORMAT)


class _DropCeleryTraceback(logging.Filter):
    """Celery passes a task's traceback in ``extra={"data": ...}`` even for an expected failure
    (a task's ``throws``); a JSON line would carry it. A real crash keeps its traceback through
    ``exc_info``, which both formats print."""

    def filter(self, record: logging.LogRecord) -> bool:
        data = getattr(record, "data", None)
        if isinstance(data, dict) and "traceback" in data:
            record.data = {k: v for k, v in data.items() if k != "traceback"}
        return True


def configure(fmt: str = "text", level: int | str = logging.INFO) -> logging.Handler:
    """One stderr handler on the root logger in ``fmt``; calling it again replaces only its own."""
    root = logging.getLogger()
    for handler in [h for h in root.handlers if getattr(h, _MARK, False)]:
        root.removeHandler(handler)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter(fmt))
    handler.addFilter(_DropCeleryTraceback())
    setattr(handler, _MARK, True)
    root.addHandler(handler)
    # Neither format shows the caller, thread or process, so no record computes them: the
    # logging HOWTO's "Optimization" switches. The API writes a line per request (its access
    # log), and the caller lookup alone walks the stack each time.
    logging._srcfile = None  # documented there, though underscored
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    root.setLevel(level)
    return handler
