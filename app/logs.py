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
import time
from typing import cast

from pythonjsonlogger.json import JsonFormatter

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
_MARK = "_openmps_handler"


class _SecondStamps:
    """``formatTime`` as ``logging.Formatter`` writes it (``2026-12-01 21:49:51,123``), with the
    date and time worked out once a second rather than once a line: the API writes a line per
    request, and ``localtime`` plus ``strftime`` were 8 % of the instructions of writing one
    (callgrind). Two threads that meet here compute the same text, so no lock is needed."""

    _stamp: tuple[int, str] = (-1, "")

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:  # noqa: N802 - logging's name
        if datefmt:
            return logging.Formatter.formatTime(cast(logging.Formatter, self), record, datefmt)
        second = int(record.created)
        cached, text = self._stamp
        if cached != second:
            text = time.strftime(logging.Formatter.default_time_format, cast(logging.Formatter, self).converter(second))
            self._stamp = (second, text)
        return logging.Formatter.default_msec_format % (text, record.msecs)


class _TextFormatter(_SecondStamps, logging.Formatter):
    pass


class _JsonFormatter(_SecondStamps, JsonFormatter):
    pass


def formatter(fmt: str) -> logging.Formatter:
    if fmt == "json":
        return _JsonFormatter(
            "%(asctime)s %(levelname)s %(name)s %(message)s",
            rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
        )
    return _TextFormatter(TEXT_FORMAT)


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
    # Neither format shows the caller, thread or process name, so no record computes them: the
    # logging HOWTO's "Optimization" switches. The API writes a line per request (its access
    # log), and the caller lookup alone walks the stack each time. The process id stays:
    # gunicorn's own lines are formatted with ``%(process)d``, which fails on a record without it
    # (``tests/integration/test_gunicorn_limits.py``).
    logging._srcfile = None  # documented there, though underscored
    logging.logThreads = False
    logging.logMultiprocessing = False
    root.setLevel(level)
    return handler
