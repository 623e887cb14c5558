"""Fuzzing profiles and the request tally.

``make test`` runs the property tests with the ``quick`` profile (a few dozen examples each, the
same ones every run); ``make fuzz`` selects ``fuzz`` with ``OPENMPS_FUZZ_PROFILE=fuzz`` (1 800
random examples per test, over 5 000 requests in all, checked when the session ends).
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, settings

PROFILE = os.environ.get("OPENMPS_FUZZ_PROFILE", "quick")
MIN_REQUESTS = 5000  # what the fuzz profile must have sent when the session ends

common = {"deadline": None, "suppress_health_check": [HealthCheck.too_slow, HealthCheck.data_too_large]}
settings.register_profile("quick", max_examples=40, derandomize=True, database=None, **common)
settings.register_profile("fuzz", max_examples=1800, database=None, **common)
settings.load_profile(PROFILE)


class Tally:
    def __init__(self) -> None:
        self.requests = 0
        self.by_status: dict[int, int] = {}

    def add(self, status: int) -> None:
        self.requests += 1
        self.by_status[status] = self.by_status.get(status, 0) + 1


TALLY = Tally()


@pytest.fixture(scope="session", autouse=True)
def fuzz_tally() -> Iterator[Tally]:
    yield TALLY
    if TALLY.requests:
        statuses = ", ".join(f"{s}: {n}" for s, n in sorted(TALLY.by_status.items()))
        print(f"\nfuzz ({PROFILE}): {TALLY.requests} requests, answered {statuses}")
        if PROFILE == "fuzz":
            assert TALLY.requests >= MIN_REQUESTS, f"only {TALLY.requests} requests; make fuzz sends {MIN_REQUESTS}"
        assert not any(s >= 500 for s in TALLY.by_status), TALLY.by_status
