"""Domain errors with stable native codes.

Codes here are openmps's own; each dialect maps them onto its vendor's codes and HTTP statuses
in its own ``errors.py``. Job failure codes (``FailureCode``) are what a failed job records.
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import StrEnum


class DomainError(Exception):
    """Base of every error a use case raises on purpose. ``code`` is stable and machine-readable."""

    code = "InternalError"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code


class InvalidParameter(DomainError):
    """A request field is wrong. ``field`` is a neutral snake_case path (``output.key``,
    ``snapshot.points_ms[3]``; ``""`` for the request as a whole) and ``reason`` completes the
    sentence "<field> ...". Dialects rename the field into their own parameter names and codes
    (``OutputFile.Object`` / ``InvalidParameter.OutputFile``) without parsing strings.

    ``errors`` holds every ``(field, reason)`` found at once, ``field``/``reason`` first: a
    request model reports all its problems in one answer (``InvalidParameter.of``), while a
    dialect whose vendor answers with one error renders ``field``/``reason`` alone, unchanged."""

    code = "InvalidParameter"

    def __init__(self, field: str, reason: str, *, more: Sequence[tuple[str, str]] = ()) -> None:
        errors = ((field, reason), *more)
        super().__init__("; ".join(f"{f} {r}" if f else r for f, r in errors))
        self.field = field
        self.reason = reason
        self.errors: tuple[tuple[str, str], ...] = errors

    @classmethod
    def of(cls, errors: Sequence[tuple[str, str]]) -> InvalidParameter:
        """One error for several problems, in the order given (at least one)."""
        if not errors:
            raise ValueError("InvalidParameter.of needs at least one (field, reason)")
        (field, reason), *more = errors
        return cls(field, reason, more=more)


class NotFound(DomainError):
    code = "NotFound"


class JobNotFound(NotFound):
    code = "JobNotFound"


class PipelineNotFound(NotFound):
    code = "PipelineNotFound"


class InputNotFound(NotFound):
    code = "InputNotFound"


class Conflict(DomainError):
    code = "Conflict"


class IdempotencyConflict(Conflict):
    code = "IdempotencyConflict"


class InvalidJobState(Conflict):
    code = "InvalidJobState"


class PipelineNotEmpty(Conflict):
    code = "PipelineNotEmpty"


class AlreadyExists(Conflict):
    code = "AlreadyExists"


class AuthFailure(StrEnum):
    """Why a request was not let in; each dialect spells these as its vendor does."""

    MISSING = "missing"  # no credentials at all
    MALFORMED = "malformed"  # credentials present but not in the scheme's shape
    UNKNOWN_KEY = "unknown_key"  # no such access key id
    BAD_SIGNATURE = "bad_signature"  # the key exists; the signature or secret does not match
    STALE = "stale"  # signed too long ago (or in the future): outside the clock window
    REPLAYED = "replayed"  # a nonce this key already used inside the clock window


class Unauthenticated(DomainError):
    code = "Unauthenticated"

    def __init__(self, reason: AuthFailure, message: str) -> None:
        super().__init__(message)
        self.reason = reason


class Throttled(DomainError):
    """An access key sent more requests than its token bucket allows; retry after ``retry_after_s``."""

    code = "Throttled"

    def __init__(self, retry_after_s: float) -> None:
        super().__init__(f"too many requests for this access key; retry in {retry_after_s:.2f} s")
        self.retry_after_s = retry_after_s


class AccessDenied(DomainError):
    """The caller's tenant holds no grant for what it asked (``app.core.grants``): reading an
    input or object, writing an output, deleting outputs; or a signed object URL that is expired
    or does not match. ``field`` is the neutral path of the request field concerned (``input``,
    ``output``, ``sprite.output``; ``""`` for an object read) and ``access`` is ``read`` or
    ``write``, so a dialect can name both its own way (MPS ``PermissionDenied.ResourceAccess``).
    Submission checks grants before existence, so a tenant cannot probe which objects of
    another tenant exist."""

    code = "AccessDenied"

    def __init__(self, message: str, *, field: str = "", access: str = "read") -> None:
        super().__init__(message)
        self.field = field
        self.access = access


class TooLarge(DomainError):
    """A request body (an uploaded object) is larger than this server accepts."""

    code = "RequestTooLarge"


class Unavailable(DomainError):
    """A dependency (object storage, broker) did not answer; the request may be retried."""

    code = "ServiceUnavailable"


class FailureCode(StrEnum):
    """Why a job failed. Stored on the job; dialects translate (e.g. MTS ``ResourceNotFound``)."""

    INPUT_NOT_FOUND = "InputNotFound"
    INPUT_UNREADABLE = "InputUnreadable"  # not a video, truncated, corrupt
    INPUT_REFUSED = "InputRefused"  # a URL input whose address the SSRF guard refuses (private, metadata, ...)
    INPUT_TOO_LARGE = "InputTooLarge"  # a URL input larger than OPENMPS_MAX_URL_INPUT_BYTES
    UNSUPPORTED_CODEC = "UnsupportedCodec"
    TIME_OUT_OF_RANGE = "TimeOutOfRange"
    MEDIA_LIMIT_EXCEEDED = "MediaLimitExceeded"  # pixels per frame, frames decoded
    SNAPSHOT_TIMEOUT = "SnapshotTimeout"
    STORAGE_TRANSIENT = "StorageTransient"  # retried first; recorded only when retries ran out
    OUTPUT_WRITE_FAILED = "OutputWriteFailed"
    WORKER_LOST = "WorkerLost"  # the job crashed its worker too many times
    INTERNAL_ERROR = "InternalError"


class JobFailure(Exception):
    """Raised by media code to end a job as ``failed`` with a stated reason.

    Not a ``DomainError``: it never reaches an API caller directly, it is recorded on the job.
    """

    def __init__(self, code: FailureCode, message: str, *, transient: bool = False) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.transient = transient


class JobCanceled(Exception):
    """Raised inside media code when a running job's cancel request is seen; ends it ``canceled``."""


class AttemptSuperseded(Exception):
    """This attempt lost its lease to a newer one (its worker stalled past the lease TTL and the
    job was taken over): it stops at once and touches neither outputs nor the job's state, which
    now belong to the newer attempt."""
