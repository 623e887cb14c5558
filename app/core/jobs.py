"""SnapshotJob and its output manifest.

A job is what the store holds and every dialect renders. The manifest records, per image, the
time asked for and the timestamp of the frame actually captured, so a consumer can tell an exact
hit from a substitution (black-frame avoidance) or a key-frame snap.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from app.core.progress import ProgressEvents
from app.core.specs import SnapshotSpec, plain_data, spec_to_dict
from app.core.states import JobState

DEFAULT_PRIORITY = 5  # the middle of the range when a request names none; 10 is the highest
DEFAULT_ORIGIN = "native"
MAX_DIALECT_DATA_ITEMS = 16
MAX_DIALECT_DATA_CHARS = 8192  # all keys and values together (three object names of up to 1 KB, echoed)
MIN_PRIORITY = 1
MAX_PRIORITY = 10


@dataclass(frozen=True)
class OutputImage:
    index: int  # 1-based, the number substituted for {index}
    requested_ms: float
    actual_ms: float  # presentation timestamp of the frame captured
    key: str
    width: int
    height: int
    bytes: int
    substituted_ms: float | None = None  # black-frame avoidance moved the capture by this much
    uploaded: bool = True  # False when sprites-only (IsKeepCellPic false): cell kept in the sheet


@dataclass(frozen=True)
class SpriteSheet:
    index: int  # 1-based, the number substituted for {sheet}
    key: str
    width: int
    height: int
    bytes: int
    cells: int


@dataclass
class Manifest:
    images: list[OutputImage] = field(default_factory=list)
    sheets: list[SpriteSheet] = field(default_factory=list)
    storyboard_key: str | None = None  # WebVTT beside the sheets
    index_key: str | None = None  # JSON index beside the sheets
    archive_key: str | None = None  # the tar of every image (``SnapshotSpec.archive``)
    source_duration_ms: float | None = None
    source_width: int | None = None  # displayed size, after rotation
    source_height: int | None = None
    decoder: str | None = None  # which backend decoded, e.g. "pyav", "opencv", "pyav (gpu fallback)"
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        if self == _EMPTY_MANIFEST:  # every job until it runs: each submission renders one
            return {**_EMPTY_MANIFEST_DICT, "images": [], "sheets": [], "notes": []}
        data: dict[str, Any] = plain_data(self)  # = dataclasses.asdict, without the deep copies
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Manifest:
        data = dict(data)
        data["images"] = [OutputImage(**i) for i in data.get("images", [])]
        data["sheets"] = [SpriteSheet(**s) for s in data.get("sheets", [])]
        return cls(**data)


_EMPTY_MANIFEST = Manifest()
_EMPTY_MANIFEST_DICT: dict[str, Any] = plain_data(_EMPTY_MANIFEST)


@dataclass
class NotificationResult:
    """What happened to the job's completion message (never affects the job itself)."""

    message_id: str | None = None
    error_code: str | None = None
    error_message: str | None = None


@dataclass
class SnapshotJob:
    id: str
    tenant: str
    pipeline_id: str
    spec: SnapshotSpec
    state: JobState = JobState.SUBMITTED
    priority: int = DEFAULT_PRIORITY
    user_data: str | None = None
    client_token: str | None = None
    webhook_url: str | None = None
    created_at: datetime | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    attempts: int = 0
    progress_done: int = 0
    progress_total: int = 0
    manifest: Manifest = field(default_factory=Manifest)
    error_code: str | None = None
    error_message: str | None = None
    notification: NotificationResult | None = None
    origin: str = DEFAULT_ORIGIN  # the dialect that submitted it: renders its completion message
    # Opaque to the core: what the origin dialect must echo back in its own answers (a vendor's
    # Location or mode as submitted). Stored with the job, so it expires with it.
    dialect_data: dict[str, str] = field(default_factory=dict)
    retry_of: str | None = None  # the job this one re-runs (``SnapshotService.retry``), same spec
    progress_events: ProgressEvents | None = None  # events while it runs; its webhook_url is always set

    @property
    def is_terminal(self) -> bool:
        return self.state.is_terminal

    def spec_dict(self) -> dict[str, Any]:
        return spec_to_dict(self.spec)
