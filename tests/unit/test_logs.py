"""Log lines' time stamps: worked out once a second (``app.logs``), written as logging's own."""

from __future__ import annotations

import json
import logging

import pytest

from app import logs


def _record(created: float) -> logging.LogRecord:
    record = logging.LogRecord("openmps.access", logging.INFO, "", 0, "POST /api/v1/jobs 202", None, None)
    record.created = created
    record.msecs = int((created - int(created)) * 1000)
    return record


# Within one second, across a second and a day boundary, and back in time (a clock stepped back).
TIMES = [1764625791.123, 1764625791.999, 1764625792.0005, 1764633599.5, 1764633600.25, 1764625791.5]


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_time_stamps_are_those_logging_writes(fmt: str) -> None:
    ours, reference = logs.formatter(fmt), logging.Formatter()
    for created in TIMES:
        record = _record(created)
        assert ours.formatTime(record) == reference.formatTime(record), created
        assert ours.formatTime(record, "%H:%M") == reference.formatTime(record, "%H:%M")


def test_both_formats_carry_the_stamp() -> None:
    record = _record(TIMES[0])
    stamp = logging.Formatter().formatTime(record)
    assert logs.formatter("text").format(record) == f"{stamp} INFO openmps.access: POST /api/v1/jobs 202"
    assert json.loads(logs.formatter("json").format(_record(TIMES[0])))["time"] == stamp
