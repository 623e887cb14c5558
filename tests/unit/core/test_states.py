"""The transition table's own invariants. Whether the Lua scripts obey it is pinned separately,
against a real redis-server, in tests/integration/test_state_contract.py."""

from app.core.states import (
    INITIAL_STATE,
    TERMINAL_STATES,
    TRANSITIONS,
    JobState,
    can_create,
    can_transition,
)


def test_the_table_names_every_state_and_only_states() -> None:
    assert set(TRANSITIONS) == set(JobState)
    for targets in TRANSITIONS.values():
        assert targets <= set(JobState)


def test_terminal_states_are_exactly_the_states_without_exits() -> None:
    """``is_terminal`` (what waiters, the outbox and renderers rely on) and the table agree."""
    assert TERMINAL_STATES == {s for s in JobState if not TRANSITIONS[s]}
    for state in JobState:
        assert state.is_terminal == (not TRANSITIONS[state])
        assert state.is_terminal or any(can_transition(state, t) for t in JobState)


def test_nothing_leads_back_into_the_initial_state() -> None:
    """Creation is the only way into ``submitted``; the create script relies on it to refuse an id
    already in use instead of overwriting its job."""
    assert all(not can_transition(s, INITIAL_STATE) for s in JobState)
    assert [s for s in JobState if can_create(s)] == [INITIAL_STATE]
    assert not INITIAL_STATE.is_terminal


def test_every_state_is_reachable_from_the_initial_state() -> None:
    seen, frontier = {INITIAL_STATE}, [INITIAL_STATE]
    while frontier:
        for target in TRANSITIONS[frontier.pop()]:
            if target not in seen:
                seen.add(target)
                frontier.append(target)
    assert seen == set(JobState)


def test_every_terminal_state_is_reachable_from_running() -> None:
    """A worker ends what it started: succeeded, failed (including attempts exhausted), canceled."""
    assert {t for t in JobState if t.is_terminal and can_transition(JobState.RUNNING, t)} == TERMINAL_STATES


def test_the_lifecycle_edges() -> None:
    assert can_transition(JobState.SUBMITTED, JobState.RUNNING)
    assert can_transition(JobState.SUBMITTED, JobState.CANCELED)  # canceled while queued
    assert can_transition(JobState.RUNNING, JobState.RUNNING)  # takeover after a dead worker's lease expired
    assert not can_transition(JobState.SUBMITTED, JobState.FAILED)  # a job fails only once it has run
    assert not can_transition(JobState.SUBMITTED, JobState.SUCCEEDED)
    assert not can_transition(JobState.SUCCEEDED, JobState.RUNNING)
