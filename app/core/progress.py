"""Progress events: what a job asks for, and when the next one is due (a pure function).

A job may ask to hear how far it has got while it runs, like MediaConvert's status updates: an
event every ``every_images`` more images, or every ``every_s`` seconds, whichever comes first.
The worker decides with ``progress_due``; the notifier's push loop delivers (``app.notify.progress``).
A progress event is a side channel: it never fails, slows or changes its job.
"""

from __future__ import annotations

from dataclasses import dataclass

from app.core.errors import InvalidParameter
from app.core.specs import MAX_SERIES_COUNT

MIN_EVERY_S = 1.0  # a heartbeat more often than once a second is load, not information
MAX_EVERY_S = 86_400.0
MAX_EVERY_IMAGES = MAX_SERIES_COUNT  # no job makes more images than this


@dataclass(frozen=True)
class ProgressEvents:
    """Where and how often a job reports progress. ``webhook_url`` None in a request means "the
    job's own ``webhook_url``"; a stored job always names the URL (``SnapshotService.submit``)."""

    webhook_url: str | None = None
    every_images: int | None = None  # an event once this many more images are done
    every_s: float | None = None  # an event once this many seconds passed since the last one

    def to_dict(self) -> dict[str, object]:
        return {"webhook_url": self.webhook_url, "every_images": self.every_images, "every_s": self.every_s}

    @classmethod
    def from_dict(cls, data: dict[str, object]) -> ProgressEvents:
        url, images, seconds = data.get("webhook_url"), data.get("every_images"), data.get("every_s")
        return cls(
            webhook_url=str(url) if url is not None else None,
            every_images=int(images) if isinstance(images, int | float) else None,
            every_s=float(seconds) if isinstance(seconds, int | float) else None,
        )


def check_intervals(progress: ProgressEvents) -> None:
    """At least one interval, each within its bounds (the URL is the service's to check)."""
    images, seconds = progress.every_images, progress.every_s
    if images is None and seconds is None:
        raise InvalidParameter("progress", "must set every_images, every_s or both")
    if images is not None and not 1 <= images <= MAX_EVERY_IMAGES:
        raise InvalidParameter("progress.every_images", f"must be in [1, {MAX_EVERY_IMAGES}], got {images}")
    if seconds is not None and not MIN_EVERY_S <= seconds <= MAX_EVERY_S:
        raise InvalidParameter("progress.every_s", f"must be in [{MIN_EVERY_S:g}, {MAX_EVERY_S:g}], got {seconds:g}")


@dataclass(frozen=True)
class Mark:
    """The last event sent (or the start of the run, before any): images done then, and when
    (seconds on a monotonic clock, the caller's)."""

    done: int
    at: float


def progress_due(progress: ProgressEvents, last: Mark, done: int, now: float) -> bool:
    """Whether an event is due now, with ``done`` images done, ``last`` being the previous event.

    Due when ``every_images`` more images are done than at the last event, or ``every_s``
    seconds have passed since it, whichever comes first; never more often. The time rule is a
    heartbeat: it fires with the same count when no image finished meanwhile (a long seek is
    still progress a watcher wants to see).
    """
    if progress.every_images is not None and done - last.done >= progress.every_images:
        return True
    return progress.every_s is not None and now - last.at >= progress.every_s
