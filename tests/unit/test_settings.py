"""Settings are read once and refused at start, with the variable named, when no process could run."""

from __future__ import annotations

import pytest

from app.settings import Settings, SettingsError, usable_cpus


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"OPENMPS_PORT": "eighty"}, "OPENMPS_PORT must be an integer, got 'eighty'"),
        ({"OPENMPS_PORT": "70000"}, "OPENMPS_PORT must be a TCP port"),
        ({"OPENMPS_LEASE_TTL_S": "inf"}, "OPENMPS_LEASE_TTL_S must be a finite number"),
        ({"OPENMPS_LEASE_TTL_S": "0"}, "OPENMPS_LEASE_TTL_S must be greater than 0"),
        ({"OPENMPS_STORAGE": "ftp"}, "OPENMPS_STORAGE must be one of local, s3"),
        ({"OPENMPS_WORKER_CLASS": "tpu"}, "OPENMPS_WORKER_CLASS must be one of cpu, gpu"),
        ({"OPENMPS_THROTTLE_RATE": "-1"}, "OPENMPS_THROTTLE_RATE must be >= 0"),
        ({"OPENMPS_JOB_HARD_TIMEOUT_S": "2000"}, "must be less than OPENMPS_VISIBILITY_TIMEOUT_S"),
        ({"OPENMPS_DIALECT_PORTS": "mts:8101"}, "OPENMPS_DIALECT_PORTS must look like"),
        ({"OPENMPS_URL_TTL_S": "0"}, "OPENMPS_URL_TTL_S must be 1 s to 7 days"),
        ({"OPENMPS_URL_TTL_S": "604801"}, "OPENMPS_URL_TTL_S must be 1 s to 7 days"),
        ({"OPENMPS_JOB_RETENTION_DAYS": "0"}, "OPENMPS_JOB_RETENTION_DAYS must be a number of days > 0"),
        ({"OPENMPS_JOB_RETENTION_DAYS": "a month"}, "OPENMPS_JOB_RETENTION_DAYS must be a number of days > 0"),
        ({"OPENMPS_JOB_RETENTION_DAYS": "inf"}, "OPENMPS_JOB_RETENTION_DAYS must be a number of days > 0"),
        ({"OPENMPS_CACHE_TTL_S": "-1"}, "OPENMPS_CACHE_TTL_S must be 0 \\(off\\) to 60 seconds"),
        ({"OPENMPS_CACHE_TTL_S": "3600"}, "OPENMPS_CACHE_TTL_S must be 0 \\(off\\) to 60 seconds"),
        ({"OPENMPS_MAX_URL_INPUT_BYTES": "0"}, "OPENMPS_MAX_URL_INPUT_BYTES must be greater than 0"),
        ({"OPENMPS_MAX_URL_INPUT_BYTES": "50G"}, "OPENMPS_MAX_URL_INPUT_BYTES must be an integer"),
        ({"OPENMPS_URL_INPUT_TIMEOUT_S": "0"}, "OPENMPS_URL_INPUT_TIMEOUT_S must be greater than 0"),
    ],
)
def test_bad_values_name_their_variable(env: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError, match=message):
        Settings.from_env(env)


def test_defaults_and_empty_values_are_valid() -> None:
    assert Settings.from_env({}) == Settings()
    assert Settings.from_env({"OPENMPS_PORT": "", "OPENMPS_THROTTLE_RATE": "0"}).throttle_rate == 0


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


def test_url_inputs_are_on_by_default_and_can_be_turned_off() -> None:
    d = Settings.from_env({})
    assert (d.allow_url_inputs, d.max_url_input_bytes, d.url_input_timeout_s) == (True, 50 << 30, 30.0)
    off = Settings.from_env({"OPENMPS_ALLOW_URL_INPUTS": "false", "OPENMPS_MAX_URL_INPUT_BYTES": "1000"})
    assert (off.allow_url_inputs, off.max_url_input_bytes) == (False, 1000)
