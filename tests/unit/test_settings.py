"""Settings that derive a value from the machine: the per-job decode thread budget."""

from __future__ import annotations

import pytest

from app.settings import Settings, usable_cpus


def test_decode_threads_default_shares_the_cpus_among_the_workers_jobs() -> None:
    cpus = usable_cpus()
    assert Settings.from_env({}).effective_decode_threads == max(1, cpus // 2)  # concurrency 2 by default
    alone = Settings.from_env({"OPENMPS_WORKER_CONCURRENCY": "1"})
    assert alone.effective_decode_threads == cpus
    busy = Settings.from_env({"OPENMPS_WORKER_CONCURRENCY": str(cpus * 4)})
    assert busy.effective_decode_threads == 1  # never below one, never more threads than cores


def test_decode_threads_setting_wins_and_is_checked() -> None:
    assert Settings.from_env({"OPENMPS_DECODE_THREADS": "3"}).effective_decode_threads == 3
    assert Settings.from_env({"OPENMPS_DECODE_THREADS": ""}).decode_threads == 0
    with pytest.raises(ValueError, match="OPENMPS_DECODE_THREADS"):
        Settings.from_env({"OPENMPS_DECODE_THREADS": "-1"})
