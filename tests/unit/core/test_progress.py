"""The progress-event throttle (a pure function) and the bounds of what a job may ask for."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.core.errors import InvalidParameter
from app.core.progress import MAX_EVERY_IMAGES, Mark, ProgressEvents, check_intervals, progress_due

URL = "https://hooks.example/progress"


def run(progress: ProgressEvents, steps: list[tuple[int, float]]) -> list[tuple[int, float]]:
    """Feed (images done, seconds) observations through the throttle; the events it lets out."""
    last, events = Mark(0, 0.0), []
    for done, now in steps:
        if progress_due(progress, last, done, now):
            last = Mark(done, now)
            events.append((done, now))
    return events


def test_every_images_fires_at_each_multiple_and_not_between() -> None:
    steps = [(n, n * 0.01) for n in range(1, 21)]
    assert run(ProgressEvents(URL, every_images=5), steps) == [(5, 0.05), (10, 0.1), (15, 0.15), (20, 0.2)]


def test_every_images_counts_from_the_last_event_when_images_come_in_jumps() -> None:
    # 0 -> 3 -> 7 (4 more than the start: not yet 5) -> 9 (event) -> 12 -> 14 (event: 5 more than 9)
    steps = [(3, 1.0), (4, 2.0), (9, 3.0), (12, 4.0), (14, 5.0)]
    assert run(ProgressEvents(URL, every_images=5), steps) == [(9, 3.0), (14, 5.0)]


def test_every_s_is_a_heartbeat_even_without_new_images() -> None:
    steps = [(0, t / 4) for t in range(1, 21)]  # 5 s of a long seek, checked every 0.25 s
    assert run(ProgressEvents(URL, every_s=2), steps) == [(0, 2.0), (0, 4.0)]


def test_whichever_comes_first_and_the_time_counts_from_the_last_event() -> None:
    progress = ProgressEvents(URL, every_images=10, every_s=3)
    steps = [(2, 1.0), (4, 2.9), (5, 3.0), (15, 3.5), (16, 6.0), (17, 6.6)]
    # 3 s after the start (5 images), then 10 more images (15 at 3.5 s), then 3 s after that
    assert run(progress, steps) == [(5, 3.0), (15, 3.5), (17, 6.6)]


def test_nothing_is_due_at_the_start() -> None:
    assert not progress_due(ProgressEvents(URL, every_images=1, every_s=1), Mark(0, 10.0), 0, 10.0)


@given(
    every_images=st.one_of(st.none(), st.integers(1, 50)),
    every_s=st.one_of(st.none(), st.floats(1.0, 30.0)),
    gaps=st.lists(st.tuples(st.integers(0, 7), st.floats(0.0, 5.0)), max_size=200),
)
def test_events_are_never_closer_than_asked_and_never_late(
    every_images: int | None, every_s: float | None, gaps: list[tuple[int, float]]
) -> None:
    """Between two events, at least one rule was met; and no observation that met a rule went
    without an event (the throttle is exact at the observations it is given)."""
    if every_images is None and every_s is None:
        every_images = 3
    progress = ProgressEvents(URL, every_images=every_images, every_s=every_s)
    steps, done, now = [], 0, 0.0
    for more, dt in gaps:
        done, now = done + more, now + dt
        steps.append((done, now))
    events = run(progress, steps)

    def rule_met(prev: tuple[int, float], done_at: int, at: float) -> bool:
        by_images = every_images is not None and done_at - prev[0] >= every_images
        return by_images or (every_s is not None and at - prev[1] >= every_s)

    previous, emitted = (0, 0.0), iter(events)
    upcoming = next(emitted, None)
    for done_at, at in steps:
        if upcoming == (done_at, at):  # an event: a rule was met since the previous one
            assert rule_met(previous, done_at, at)
            previous, upcoming = upcoming, next(emitted, None)
        else:  # no event: no rule was met
            assert not rule_met(previous, done_at, at)
    assert upcoming is None


@pytest.mark.parametrize(
    ("progress", "field"),
    [
        (ProgressEvents(URL), "progress"),
        (ProgressEvents(URL, every_images=0), "progress.every_images"),
        (ProgressEvents(URL, every_images=MAX_EVERY_IMAGES + 1), "progress.every_images"),
        (ProgressEvents(URL, every_s=0.5), "progress.every_s"),
        (ProgressEvents(URL, every_s=86_401), "progress.every_s"),
        (ProgressEvents(URL, every_images=5, every_s=0.0), "progress.every_s"),
    ],
)
def test_bounds(progress: ProgressEvents, field: str) -> None:
    with pytest.raises(InvalidParameter) as caught:
        check_intervals(progress)
    assert caught.value.field == field


def test_within_bounds_and_the_stored_form_round_trips() -> None:
    for progress in (ProgressEvents(URL, every_images=1), ProgressEvents(URL, every_s=1), ProgressEvents(URL, 5, 2.5)):
        check_intervals(progress)
        assert ProgressEvents.from_dict(progress.to_dict()) == progress
