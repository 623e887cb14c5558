"""SnapshotSpec: every snapshot mode the vendors offer, in one canonical form, plus validation.

Units are part of the names: ``*_ms`` are milliseconds of media time, ``interval_s`` seconds.
Output image numbers (``{index}``) are 1-based. Key templates use the neutral syntax of
``app.core.templates``. Validation raises ``InvalidParameter(field, reason)`` with a neutral
field path (``snapshot.time_ms``, ``output.key``), so every dialect can name the field its way.
"""

from __future__ import annotations

import functools
import math
import re
import threading
from dataclasses import dataclass, field, fields, replace
from enum import StrEnum
from typing import Any
from urllib.parse import urlsplit

from app.core import names, outputs, templates
from app.core.errors import InvalidParameter

MIN_SIDE = 8
MAX_SIDE = 4096
MAX_TIME_POINTS = 100
MAX_SERIES_COUNT = 10_000
MAX_USER_DATA_BYTES = 1024
MAX_SHEET_SIDE = 16384
MAX_TIME_MS = 10**12  # ~31.7 years of media time: far past any video, small enough to stay exact as a float
MAX_INTERVAL_S = 10**9
MAX_URL_CHARS = 2048
SAMPLE_JOB_ID = "0" * 32  # as long as a real job id (uuid4 hex): rendered into keys to check their length


class FrameType(StrEnum):
    EXACT = "exact"  # the frame a player shows at t: last frame with timestamp <= t
    KEYFRAME = "keyframe"  # the nearest key frame at or before t


class ImageFormat(StrEnum):
    JPEG = "jpeg"
    PNG = "png"
    WEBP = "webp"

    @property
    def extension(self) -> str:
        return "jpg" if self is ImageFormat.JPEG else self.value

    @property
    def content_type(self) -> str:
        return f"image/{self.value}"


@dataclass(frozen=True)
class SingleTime:
    """One frame at ``time_ms``."""

    time_ms: float


@dataclass(frozen=True)
class Series:
    """``count`` frames: ``start_ms``, then every ``interval_s`` seconds (fractional allowed).

    ``end_ms`` (None = the duration) closes the window: times after it are dropped like times
    past the end of the video, so ``count`` is then a cap. ``closing_frame``: when the window
    reaches the end of the video, one more image of its last frame (at the duration) unless the
    series already landed there, as Huawei's interval snapshots end (0, 11, 20 s for a 20 s video
    every 11 s).
    """

    start_ms: float
    interval_s: float
    count: int
    end_ms: float | None = None
    closing_frame: bool = False


@dataclass(frozen=True)
class Average:
    """``count`` frames spread evenly over ``[start_ms, end_ms]``; ``end_ms`` None = the duration."""

    count: int
    start_ms: float = 0.0
    end_ms: float | None = None


@dataclass(frozen=True)
class TimePoints:
    """An explicit list of up to 100 time points, kept sorted; duplicates allowed."""

    points_ms: tuple[float, ...]


Timing = SingleTime | Series | Average | TimePoints


@dataclass(frozen=True)
class ObjectRef:
    bucket: str
    key: str


@dataclass(frozen=True)
class UrlSource:
    """An input the worker reads over HTTP(S) from the tenant's own URL, in bounded Range reads
    through the SSRF guard (``workers/urlinput.py``). No bucket grant applies: the tenant names
    the URL and whatever access it carries. ``url`` is kept as given: its query may hold the
    tenant's own token, so it is shown to that tenant only and logged without its query
    (``redact_url``)."""

    url: str


InputSource = ObjectRef | UrlSource


@dataclass(frozen=True)
class OutputTarget:
    """Where images go. ``key_template`` is neutral template text (``{job_id}``, ``{index:5}``, …)."""

    bucket: str
    key_template: str

    def key_for(self, job_id: str, index: int, time_ms: float | None = None) -> str:
        """The key of image ``index``; ``time_ms`` (its requested time) fills ``{time_s}``."""
        return templates.render(self.key_template, job_id=job_id, index=index, time_ms=time_ms)


@dataclass(frozen=True)
class OutputSize:
    """Requested size. One side given keeps the aspect ratio; none = source size; never upscales.

    ``long_side`` (only without ``width``/``height``) fits the longer side of the source to it,
    keeping the aspect ratio (Huawei ``max_length``, Qiniu's long-side sizing).
    """

    width: int | None = None
    height: int | None = None
    long_side: int | None = None


@dataclass(frozen=True)
class SpriteSpec:
    """Tiling into sprite sheets, Alibaba ``TileOut`` semantics.

    ``cell_width``/``cell_height`` None = the snapshot size. ``cell_sel_step`` takes every n-th
    snapshot into the sheet. ``keep_cells`` False = only sheets are uploaded.
    """

    target: OutputTarget
    lines: int = 10
    columns: int = 10
    cell_width: int | None = None
    cell_height: int | None = None
    padding: int = 0
    margin: int = 0
    color: str = "black"
    cell_sel_step: int = 1
    keep_cells: bool = True
    max_sheet_width: int = MAX_SHEET_SIDE
    max_sheet_height: int = MAX_SHEET_SIDE


@dataclass(frozen=True)
class BlackFrameSpec:
    """Opt-in black/blank frame avoidance.

    A frame is unacceptable when more than ``max_dark_ratio`` of its pixels have luma below
    ``black_level`` (0-255), or when it is nearly uniform (luma std-dev < ``min_stddev``). The
    search moves forward at most ``search_window_ms`` of media time.
    """

    black_level: int = 24
    max_dark_ratio: float = 0.98
    min_stddev: float = 4.0
    search_window_ms: float = 5000.0


@dataclass(frozen=True)
class ArchiveSpec:
    """Pack the job's images into one uncompressed tar object (Huawei ``tar=0``).

    Each image is a member named by the last segment of its key (``12.jpg``), in image order.
    ``keep_images`` False = only the archive is uploaded, not the images one by one.
    """

    target: OutputTarget
    keep_images: bool = False


@dataclass(frozen=True)
class SnapshotSpec:
    input: InputSource
    timing: Timing
    output: OutputTarget
    frame_type: FrameType = FrameType.EXACT
    size: OutputSize = field(default_factory=OutputSize)
    format: ImageFormat = ImageFormat.JPEG
    quality: int = 90
    sprite: SpriteSpec | None = None
    black_frames: BlackFrameSpec | None = None
    archive: ArchiveSpec | None = None

    @property
    def requested_count(self) -> int | None:
        """How many images the spec asks for, when that is known without the video's duration."""
        t = self.timing
        if isinstance(t, SingleTime):
            return 1
        if isinstance(t, TimePoints):
            return len(t.points_ms)
        if isinstance(t, Series) and (t.end_ms is not None or t.closing_frame):
            return None  # the window and the closing frame depend on the duration
        return t.count


def _require(cond: bool, field: str, reason: str) -> None:
    if not cond:
        raise InvalidParameter(field, reason)


def shown(value: object) -> str:
    """A value for an error message; a huge integer is described, not printed (Python refuses to
    print one of more than 4300 digits, and a message should not carry 400 of them)."""
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 10**20:
        return f"an integer of {len(str(abs(value)))} digits" if value.bit_length() < 14_000 else "a huge integer"
    text = repr(value) if isinstance(value, str) else str(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _finite_non_negative(value: float, name: str, maximum: float = MAX_TIME_MS) -> None:
    """Compares integers as integers: ``math.isfinite`` converts to float and overflows on a huge one.
    The messages are built only for a value that fails (every submission checks its times)."""
    _require(isinstance(value, int | float) and not isinstance(value, bool), name, "must be a number")
    finite = isinstance(value, int) or math.isfinite(value)
    if not (finite and value >= 0):
        raise InvalidParameter(name, f"must be a finite number >= 0, got {shown(value)}")
    if value > maximum:
        raise InvalidParameter(name, f"must be at most {maximum:g}, got {shown(value)}")


def _validate_target(target: OutputTarget, name: str, sample_keys: list[str]) -> None:
    """``sample_keys``: keys the template renders with the largest numbers a job can reach, so
    the length and segment rules hold for every key it will write."""
    names.check_bucket(target.bucket, f"{name}.bucket")
    _require(bool(target.key_template), f"{name}.key", "is required")
    templates.check(target.key_template, f"{name}.key")
    for key in sample_keys:
        problem = names.key_problem(key)
        if problem and problem.startswith("is ") and "bytes" in problem:
            size = len(key.encode("utf-8"))
            raise InvalidParameter(
                f"{name}.key", f"renders keys of up to {size} bytes; at most {names.MAX_KEY_BYTES} are allowed"
            )
        if problem:
            raise InvalidParameter(f"{name}.key", problem)


def _check_target(target: OutputTarget, name: str, samples: str) -> None:
    """``_validate_target`` with the sample keys of ``samples`` ("image", "sheet" or "archive"),
    remembered per target: a pure function of its arguments that renders and checks several
    keys, while a high-volume submitter sends the same few output templates again and again."""
    problem = _target_problem(target, name, samples)
    if problem is not None:
        raise InvalidParameter(*problem)


@functools.lru_cache(maxsize=4096)
def _target_problem(target: OutputTarget, name: str, samples: str) -> tuple[str, str] | None:
    if samples == "image":
        keys = _image_samples(target)
    elif samples == "sheet":
        keys = _sheet_samples(target)
    else:
        keys = [templates.render(target.key_template, job_id=SAMPLE_JOB_ID)]
    try:
        _validate_target(target, name, keys)
    except InvalidParameter as refused:
        return refused.field, refused.reason
    return None


def _image_samples(target: OutputTarget) -> list[str]:
    # A ten-hour time point: {time_s} renders as many digits as any real video's.
    return [target.key_for(SAMPLE_JOB_ID, MAX_SERIES_COUNT, 36_000_000.0)]


def _sheet_samples(target: OutputTarget) -> list[str]:
    t = target.key_template
    return [
        outputs.sheet_key(t, SAMPLE_JOB_ID, MAX_SERIES_COUNT, 1),
        outputs.sheet_key(t, SAMPLE_JOB_ID, MAX_SERIES_COUNT, MAX_SERIES_COUNT),
        *outputs.storyboard_keys(t, SAMPLE_JOB_ID),
    ]


_URL_TEXT = re.compile(r"[!-~]+")  # printable ASCII, no space: what RFC 3986 allows once percent-encoded


def url_problem(url: object) -> str | None:
    """Why ``url`` cannot be a URL input, or None. Shape only: whether its host may be reached is
    the endpoint policy's question (a literal address at submission, every resolved address at
    connect time)."""
    reason = f"must be an http:// or https:// URL with a host, of at most {MAX_URL_CHARS} characters"
    if not isinstance(url, str):
        return "must be a string"
    if not url:
        return "is required"
    if len(url) > MAX_URL_CHARS:
        return f"{reason}; it has {len(url)}"
    if not _URL_TEXT.fullmatch(url):
        return f"{reason}, in printable ASCII without spaces (percent-encode the rest)"
    try:
        parts = urlsplit(url)
        host, _ = parts.hostname, parts.port  # both parse lazily and raise on "http://[::1" or ":99999"
    except ValueError:
        return f"{reason}; it does not parse"
    if parts.scheme not in ("http", "https") or not host:
        return reason
    if parts.username is not None or parts.password is not None:
        return "must not carry credentials (user:password@); put a token in the query if the server needs one"
    return None


def redact_url(url: str) -> str:
    """``url`` without its query and fragment, for logs and for anyone but its tenant: a presigned
    or tokenised URL carries its credentials in the query."""
    return url.split("#", 1)[0].split("?", 1)[0]


def input_location(source: InputSource) -> tuple[str, str]:
    """(bucket, key) of an object input; ("", the URL) for a URL input: for vendor shapes that
    know only a bucket and an object name, so they still say where the input is."""
    if isinstance(source, UrlSource):
        return "", source.url
    return source.bucket, source.key


def validate_spec(spec: SnapshotSpec) -> SnapshotSpec:
    """Check every field; returns the spec (time points sorted) or raises ``InvalidParameter``."""
    if isinstance(spec.input, UrlSource):
        problem = url_problem(spec.input.url)
        if problem:
            raise InvalidParameter("input.url", problem)
    else:
        names.check_bucket(spec.input.bucket, "input.bucket")
        names.check_key(spec.input.key, "input.key")
    _check_target(spec.output, "output", "image")
    timing = spec.timing
    if isinstance(timing, SingleTime):
        _finite_non_negative(timing.time_ms, "snapshot.time_ms")
    elif isinstance(timing, Series):
        _finite_non_negative(timing.start_ms, "snapshot.start_ms")
        _finite_non_negative(timing.interval_s, "snapshot.interval_s", MAX_INTERVAL_S)
        _require(timing.interval_s > 0, "snapshot.interval_s", "must be greater than 0")
        _check_count(timing.count)
        if timing.end_ms is not None:
            _finite_non_negative(timing.end_ms, "snapshot.end_ms")
            _require(timing.end_ms >= timing.start_ms, "snapshot.end_ms", "must not be less than start_ms")
    elif isinstance(timing, Average):
        _finite_non_negative(timing.start_ms, "snapshot.start_ms")
        _check_count(timing.count)
        if timing.end_ms is not None:
            _finite_non_negative(timing.end_ms, "snapshot.end_ms")
            _require(timing.end_ms >= timing.start_ms, "snapshot.end_ms", "must not be less than start_ms")
    elif isinstance(timing, TimePoints):
        _require(len(timing.points_ms) >= 1, "snapshot.points_ms", "must hold at least one time point")
        _require(
            len(timing.points_ms) <= MAX_TIME_POINTS,
            "snapshot.points_ms",
            f"holds {len(timing.points_ms)} time points; at most {MAX_TIME_POINTS} are allowed",
        )
        for i, p in enumerate(timing.points_ms):
            _finite_non_negative(p, f"snapshot.points_ms[{i}]")
        spec = replace(spec, timing=TimePoints(tuple(sorted(timing.points_ms))))
    else:  # pragma: no cover - the union is closed
        raise InvalidParameter("snapshot.mode", "is not a known snapshot mode")
    if spec.size.long_side is not None:
        _require(
            spec.size.width is None and spec.size.height is None,
            "snapshot.long_side",
            "cannot be combined with width or height",
        )
    for side, value in (("width", spec.size.width), ("height", spec.size.height), ("long_side", spec.size.long_side)):
        if value is not None:
            if not (isinstance(value, int) and not isinstance(value, bool) and MIN_SIDE <= value <= MAX_SIDE):
                raise InvalidParameter(
                    f"snapshot.{side}", f"must be an integer in [{MIN_SIDE}, {MAX_SIDE}], got {shown(value)}"
                )
    if not 1 <= spec.quality <= 100:  # (messages are built only for a refusal: every submission passes here)
        raise InvalidParameter("snapshot.quality", f"must be in [1, 100], got {shown(spec.quality)}")
    count = spec.requested_count
    if (count is None or count > 1) and not any(
        templates.uses(spec.output.key_template, token) for token in templates.IMAGE_TOKENS
    ):
        # ({time_s} also tells images apart; the message names the token every dialect spells.)
        raise InvalidParameter("output.key", "must contain {index} when a job can produce more than one image")
    if spec.sprite is not None:
        _validate_sprite(spec.sprite)
    if spec.archive is not None:
        _check_target(spec.archive.target, "archive.output", "archive")
        _require(
            not any(
                templates.uses(spec.archive.target.key_template, t)
                for t in (templates.INDEX, templates.SHEET, templates.TIME_S)
            ),
            "archive.output.key",
            "names one object per job: it may hold {job_id} only",
        )
    if spec.black_frames is not None:
        b = spec.black_frames
        _require(0 <= b.black_level <= 255, "snapshot.black_frames.black_level", "must be in [0, 255]")
        _require(0 < b.max_dark_ratio <= 1, "snapshot.black_frames.max_dark_ratio", "must be in (0, 1]")
        _require(0 <= b.min_stddev <= 255, "snapshot.black_frames.min_stddev", "must be in [0, 255]")
        _require(0 < b.search_window_ms <= 60_000, "snapshot.black_frames.search_window_ms", "must be in (0, 60000]")
    return spec


def _check_count(count: int) -> None:
    if not 1 <= count <= MAX_SERIES_COUNT:
        raise InvalidParameter("snapshot.count", f"must be in [1, {MAX_SERIES_COUNT}], got {shown(count)}")


def _validate_sprite(s: SpriteSpec) -> None:
    f = "sprite"
    _check_target(s.target, f"{f}.output", "sheet")
    for name, cells in (("lines", s.lines), ("columns", s.columns)):
        if not 1 <= cells <= 100:
            raise InvalidParameter(f"{f}.{name}", f"must be in [1, 100], got {shown(cells)}")
    for name, v in (("cell_width", s.cell_width), ("cell_height", s.cell_height)):
        if v is not None:
            _require(MIN_SIDE <= v <= MAX_SIDE, f"{f}.{name}", f"must be in [{MIN_SIDE}, {MAX_SIDE}], got {shown(v)}")
    _require(0 <= s.padding <= 1024, f"{f}.padding", "must be in [0, 1024]")
    _require(0 <= s.margin <= 1024, f"{f}.margin", "must be in [0, 1024]")
    _require(1 <= s.cell_sel_step <= MAX_SERIES_COUNT, f"{f}.cell_sel_step", f"must be in [1, {MAX_SERIES_COUNT}]")
    _require(64 <= s.max_sheet_width <= MAX_SHEET_SIDE, f"{f}.max_sheet_width", f"must be in [64, {MAX_SHEET_SIDE}]")
    _require(64 <= s.max_sheet_height <= MAX_SHEET_SIDE, f"{f}.max_sheet_height", f"must be in [64, {MAX_SHEET_SIDE}]")
    _require(parse_color(s.color) is not None, f"{f}.color", f"must be a keyword, #rrggbb or 'random', got {s.color!r}")


NAMED_COLORS: dict[str, tuple[int, int, int]] = {
    "black": (0, 0, 0),
    "white": (255, 255, 255),
    "red": (255, 0, 0),
    "green": (0, 128, 0),
    "blue": (0, 0, 255),
    "yellow": (255, 255, 0),
    "gray": (128, 128, 128),
    "grey": (128, 128, 128),
    "orange": (255, 165, 0),
    "purple": (128, 0, 128),
}


def parse_color(text: str) -> tuple[int, int, int] | str | None:
    """RGB for a keyword or ``#rrggbb``; the string ``"random"`` for random; None when invalid."""
    t = text.strip().lower()
    if t == "random":
        return "random"
    if t in NAMED_COLORS:
        return NAMED_COLORS[t]
    if len(t) == 7 and t.startswith("#"):
        try:
            return (int(t[1:3], 16), int(t[3:5], 16), int(t[5:7], 16))
        except ValueError:
            return None
    return None


def validate_user_data(user_data: str | None) -> None:
    if user_data is None:
        return
    try:
        size = len(user_data.encode("utf-8"))
    except UnicodeEncodeError:
        raise InvalidParameter("user_data", "is not valid Unicode text (it holds a lone surrogate)") from None
    if size > MAX_USER_DATA_BYTES:
        raise InvalidParameter("user_data", f"is {size} bytes; at most {MAX_USER_DATA_BYTES} are allowed")


# --- serialisation (the job store keeps the spec as JSON) -----------------------------------

_TIMING_KINDS: dict[str, type] = {"single": SingleTime, "series": Series, "average": Average, "points": TimePoints}


_FIELD_NAMES: dict[type, tuple[str, ...]] = {}
_LEAVES = (str, int, float, type(None))  # enums here are StrEnum (str): kept as the members asdict keeps


def _field_names(cls: type) -> tuple[str, ...]:
    names = _FIELD_NAMES.get(cls)
    if names is None:
        names = _FIELD_NAMES[cls] = tuple(f.name for f in fields(cls))
    return names


def plain_data(value: Any) -> Any:
    """``dataclasses.asdict`` without its deep copies: the same dict for dataclasses that hold
    only strings, numbers, enums, lists, tuples and dataclasses (a spec, a manifest), which a copy
    would not change; several times cheaper (leaves are kept without a call), and each submission
    converts its spec and manifest more than once (fingerprint, stored record, response)."""
    if isinstance(value, _LEAVES):
        return value
    cls = type(value)
    if hasattr(cls, "__dataclass_fields__"):
        out: dict[str, Any] = {}
        for name in _field_names(cls):
            item = getattr(value, name)
            out[name] = item if isinstance(item, _LEAVES) else plain_data(item)
        return out
    if isinstance(value, list | tuple):
        return cls(plain_data(v) for v in value)
    if isinstance(value, dict):
        return {k: plain_data(v) for k, v in value.items()}
    return value


_RECENT = threading.local()  # per thread: the last (spec, plain dict) pairs, by the spec's identity
_RECENT_SPECS = 128  # more than a batch's jobs (MAX_BATCH_JOBS), each converted twice apart


def spec_to_dict(spec: SnapshotSpec) -> dict[str, Any]:
    """The spec as plain JSON-ready data (``dataclasses.asdict`` plus the timing's ``kind``).

    A submission converts the same spec more than once (fingerprint, stored record, response),
    and a batch stores all its jobs before it renders the first; so the last conversions of this
    thread are kept by the spec's identity (specs are immutable; the entry holds the spec, so
    its id cannot be reused while it is kept). Each call gets a fresh top-level dict over nested
    values shared with the other callers of the same spec: build new nested dicts rather than
    changing them (``app/dialects/native/render.py`` ``native_spec``)."""
    recent: dict[int, tuple[SnapshotSpec, dict[str, Any]]] | None = getattr(_RECENT, "pairs", None)
    if recent is None:
        recent = _RECENT.pairs = {}
    found = recent.get(id(spec))
    if found is not None and found[0] is spec:
        return dict(found[1])
    data = plain_data(spec)
    kind = next(k for k, cls in _TIMING_KINDS.items() if isinstance(spec.timing, cls))
    data["timing"] = {"kind": kind, **data["timing"]}  # converted with the spec
    if isinstance(spec.timing, TimePoints):
        data["timing"]["points_ms"] = list(spec.timing.points_ms)
    recent[id(spec)] = (spec, data)
    if len(recent) > _RECENT_SPECS:
        del recent[next(iter(recent))]  # the oldest (dicts keep insertion order)
    return dict(data)


def spec_from_dict(data: dict[str, Any]) -> SnapshotSpec:
    timing_data = dict(data["timing"])
    kind = timing_data.pop("kind")
    if kind == "points":
        timing_data["points_ms"] = tuple(timing_data["points_ms"])
    timing = _TIMING_KINDS[kind](**timing_data)
    archive = None
    if data.get("archive"):
        ad = dict(data["archive"])
        archive = ArchiveSpec(target=OutputTarget(**ad["target"]), keep_images=bool(ad.get("keep_images", False)))
    sprite = None
    if data.get("sprite"):
        sd = dict(data["sprite"])
        sd["target"] = OutputTarget(**sd["target"])
        sprite = SpriteSpec(**sd)
    source = data["input"]
    return SnapshotSpec(
        input=UrlSource(source["url"]) if "url" in source else ObjectRef(**source),
        timing=timing,
        output=OutputTarget(**data["output"]),
        frame_type=FrameType(data.get("frame_type", "exact")),
        size=OutputSize(**data.get("size", {})),
        format=ImageFormat(data.get("format", "jpeg")),
        quality=int(data.get("quality", 90)),
        sprite=sprite,
        black_frames=BlackFrameSpec(**data["black_frames"]) if data.get("black_frames") else None,
        archive=archive,
    )
