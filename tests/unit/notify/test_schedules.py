"""MNS retry strategies as pure arithmetic (docs/queue-semantics.md §2.3)."""

from __future__ import annotations

import random

import pytest

from app.notify.delivery import Strategy, retry_delay, schedule


def test_exponential_decay_full_schedule() -> None:
    delays = schedule(Strategy.EXPONENTIAL_DECAY_RETRY, random.Random(0))
    assert len(delays) == 176  # 177 attempts in all
    assert delays[:10] == [1, 2, 4, 8, 16, 32, 64, 128, 256, 512]
    assert delays[9:] == [512] * 167
    assert sum(delays[:9]) == 511
    assert sum(delays) == 86_015  # 23 h 53 m 35 s
    # A one-hour outage: 15 retries fall inside it (last at 3583 s), the next comes at 4095 s.
    cumulative = [sum(delays[: i + 1]) for i in range(len(delays))]
    assert [c for c in cumulative if c <= 3600][-1] == 3583
    assert len([c for c in cumulative if c <= 3600]) == 15
    assert cumulative[15] == 4095


def test_backoff_three_retries_between_10_and_20_seconds() -> None:
    rng = random.Random(42)
    for _ in range(200):
        delays = schedule(Strategy.BACKOFF_RETRY, rng)
        assert len(delays) == 3
        assert all(10 <= d <= 20 for d in delays)
    spread = [retry_delay(Strategy.BACKOFF_RETRY, 1, rng) or 0 for _ in range(500)]
    assert min(spread) < 11 and max(spread) > 19  # uniform over the range, not a constant


def test_exhaustion_and_bad_input() -> None:
    rng = random.Random(1)
    assert retry_delay(Strategy.BACKOFF_RETRY, 4, rng) is None
    assert retry_delay(Strategy.EXPONENTIAL_DECAY_RETRY, 176, rng) == 512
    assert retry_delay(Strategy.EXPONENTIAL_DECAY_RETRY, 177, rng) is None
    with pytest.raises(ValueError):
        retry_delay(Strategy.BACKOFF_RETRY, 0, rng)
