"""Job states and the one table of allowed transitions.

Only the repository writes a job's state, and it does so as an atomic check-and-set against this
table: a refused transition is how a task detects a duplicate delivery. The table is rendered into
the repository's Lua scripts (``app.storage.lua``), which check every write of ``state`` against
it, so this module is the one authority; ``tests/integration/test_state_contract.py`` holds the
scripts to it.
"""

from __future__ import annotations

from enum import StrEnum


class JobState(StrEnum):
    SUBMITTED = "submitted"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELED = "canceled"

    @property
    def is_terminal(self) -> bool:
        return self in TERMINAL_STATES


TERMINAL_STATES = frozenset({JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELED})

# Every job is created in this state, and no transition leads back into it: creation is the only
# way in, so a job id that is already stored can never be "created" again over its job.
INITIAL_STATE = JobState.SUBMITTED

# RUNNING -> RUNNING is a takeover: allowed only when the previous attempt's lease has expired
# (its worker died); the repository checks the lease. RUNNING -> FAILED also covers a job whose
# attempts ran out (WorkerLost). A job fails only once it has run: SUBMITTED -> FAILED is absent.
TRANSITIONS: dict[JobState, frozenset[JobState]] = {
    JobState.SUBMITTED: frozenset({JobState.RUNNING, JobState.CANCELED}),
    JobState.RUNNING: frozenset({JobState.RUNNING, JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELED}),
    JobState.SUCCEEDED: frozenset(),
    JobState.FAILED: frozenset(),
    JobState.CANCELED: frozenset(),
}


def can_create(state: JobState) -> bool:
    """Whether a new job may be stored in ``state`` (only the initial one)."""
    return state is INITIAL_STATE


def can_transition(current: JobState, target: JobState) -> bool:
    """Whether a stored job in ``current`` may be moved to ``target`` (RUNNING -> RUNNING: see above)."""
    return target in TRANSITIONS[current]
