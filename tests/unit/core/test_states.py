from app.core.states import TERMINAL_STATES, TRANSITIONS, JobState, can_transition, sources_of


def test_terminal_states_have_no_way_out() -> None:
    for state in TERMINAL_STATES:
        assert TRANSITIONS[state] == frozenset()
        assert all(not can_transition(state, t) for t in JobState)


def test_the_lifecycle_edges() -> None:
    assert can_transition(JobState.SUBMITTED, JobState.RUNNING)
    assert can_transition(JobState.SUBMITTED, JobState.CANCELED)
    assert can_transition(JobState.RUNNING, JobState.SUCCEEDED)
    assert can_transition(JobState.RUNNING, JobState.RUNNING)  # takeover after a dead worker's lease expired
    assert not can_transition(JobState.SUBMITTED, JobState.SUCCEEDED)
    assert not can_transition(JobState.SUCCEEDED, JobState.RUNNING)


def test_sources_are_the_inverse_of_the_table() -> None:
    for target in JobState:
        assert sources_of(target) == {s for s in JobState if target in TRANSITIONS[s]}
    assert sources_of(JobState.SUBMITTED) == frozenset()
