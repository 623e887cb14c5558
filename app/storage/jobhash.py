"""A job as a Redis hash that stays a listpack on a Redis configured as it comes.

Redis stores a small hash as one compact listpack only while every field and value is at most
``hash-max-listpack-value`` (64) bytes and it has at most ``hash-max-listpack-entries`` (128)
fields. One longer value turns it into a hash table for good: a dictionary entry and two
allocations per field, about twice the bytes of a finished job (``make bench-memory``). Managed
Redis seldom lets one raise those limits, so the layout keeps within them:

* every attribute is a field of its own; an empty one is left out and reads back as empty;
* the JSON attributes (spec, manifest, notification, dialect data, progress events, what the
  job wrote) longer than 64 bytes are deflated with a preset dictionary (``ZDICT_1``: the field
  names and usual values they repeat) and base64-encoded behind a ``y`` (base85 behind a ``z``
  before): a one-image spec of 300 bytes of JSON takes about 64. Text because the client decodes
  every value as UTF-8;
* a value still longer than 64 bytes (that, user data, a long error message) is split into
  pieces ``name.0``, ``name.1``, ... of at most 64 bytes each, cut between characters so each
  piece decodes alone; reading joins them. The scripts write a whole attribute the same way
  (``lua.py`` ``PUT``), dropping every field it had before, so no piece outlives its value;
* a value that would take more than ``MAX_PIECES`` pieces stays whole: the hash then becomes a
  hash table anyway, and beside such a value its overhead is small.

The fields the scripts or ``RedisJobRepository.placement`` read by name (``WHOLE``) are never
split; they are short (ids, numbers, states, client tokens of at most 64 characters).

What the job wrote (``keys.written``) is a set while it runs; when it finishes, the set is
folded into the ``written`` attribute (``written_fields``): the images its manifest names (which
a worker records as it stores them) are not repeated, only the other objects are listed.

Records stored before this layout (every attribute a field, empty ones too, plain JSON) read
through the same code: a missing field is empty, a whole field is itself, JSON starting with
``{`` is plain, and a job without a ``written`` attribute has only its set.
"""

from __future__ import annotations

import base64
import json
import zlib
from collections.abc import Iterable, Mapping
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any

import orjson

from app.core.jobs import DEFAULT_ORIGIN, DEFAULT_PRIORITY, Manifest, NotificationResult, SnapshotJob
from app.core.progress import ProgressEvents
from app.core.specs import spec_from_dict, spec_to_dict
from app.core.states import JobState

LISTPACK_VALUE_BYTES = 64  # Redis's default hash-max-listpack-value
MAX_PIECES = 48  # 3 KB: beyond, a value stays whole (the hash cannot stay within 128 entries anyway)

# Read by name in app/storage/lua.py, placement() or the scheduler: always one field each.
WHOLE = frozenset(
    {"id", "tenant", "pipeline_id", "state", "client_token", "created_ms", "rank", "seq", "attempts", "worker"}
)
JSON_ATTRIBUTES = ("spec", "manifest", "notification", "dialect_data", "progress_events", "written")

# Never change these bytes: stored values name them by their tags ("y", "z"). A better dictionary
# gets a new tag and this one stays for what was written with it.
ZDICT_1 = (
    b'{"message_id":"message","error_code":null,"error_message":null}{"from_manifest":true,"objects":[["bu'
    b'cket","sprite/00001.jpg"]]}{"kind":"average","count":10,"start_ms":0.0,"end_ms":null}{"kind":"points'
    b'","points_ms":[1000.0,2000.0]}{"input":{"bucket":"bucket","key":"videos/input.mp4"},"timing":{"kind"'
    b':"series","start_ms":0.0,"interval_s":10.0,"count":10,"end_ms":null,"closing_frame":false},"output":'
    b'{"bucket":"bucket","key_template":"output/{job_id}/{index:5}.jpg"},"frame_type":"keyframe","size":{"'
    b'width":640,"height":360,"long_side":null},"format":"webp","quality":90,"sprite":{"target":{"bucket":'
    b'"bucket","key_template":"sprite/{job_id}/{sheet:5}.jpg"},"lines":10,"columns":10,"cell_width":null,"'
    b'cell_height":null,"padding":0,"margin":0,"color":"black","cell_sel_step":1,"keep_cells":true,"max_sh'
    b'eet_width":16384,"max_sheet_height":16384},"black_frames":{"black_level":24,"max_dark_ratio":0.98,"m'
    b'in_stddev":4.0,"search_window_ms":5000.0},"archive":{"target":{"bucket":"bucket","key_template":"arc'
    b'hive/{job_id}.tar"},"keep_images":false}}{"input":{"bucket":"bucket","key":"videos/input.mp4"},"timi'
    b'ng":{"kind":"single","time_ms":1000.0},"output":{"bucket":"bucket","key_template":"output/{job_id}.j'
    b'pg"},"frame_type":"exact","size":{"width":null,"height":null,"long_side":null},"format":"jpeg","qual'
    b'ity":90,"sprite":null,"black_frames":null,"archive":null}{"images":[{"index":2,"requested_ms":2000.0'
    b',"actual_ms":1960.0,"key":"output/00002.jpg","width":640,"height":360,"bytes":24001,"substituted_ms"'
    b':40.0,"uploaded":false},{"index":1,"requested_ms":1000.0,"actual_ms":1000.0,"key":"output/00001.jpg"'
    b',"width":1280,"height":720,"bytes":24000,"substituted_ms":null,"uploaded":true}],"sheets":[{"index":'
    b'1,"key":"sprite/00001.jpg","width":3200,"height":1800,"bytes":420000,"cells":100}],"storyboard_key":'
    b'"sprite.vtt","index_key":"sprite.json","archive_key":"archive.tar","source_duration_ms":60000.0,"sou'
    b'rce_width":1920,"source_height":1080,"decoder":"pyav","notes":["note"]}'
)


Objects = list[tuple[str, str]]  # (bucket, key)

# A compressor primed with ZDICT_1 once, copied for each value: priming it (hashing the 2 KB
# dictionary) cost more than compressing a spec. A 4 KB window holds the whole dictionary, and
# the smaller window and hash make the copy cheap; ``unpack_json``'s 32 KB window reads it.
_DEFLATE_1 = zlib.compressobj(9, zlib.DEFLATED, -12, 5, zlib.Z_DEFAULT_STRATEGY, ZDICT_1)


def to_ms(dt: datetime | None) -> str:
    return "" if dt is None else str(int(dt.timestamp() * 1000))


def from_ms(raw: str | None) -> datetime | None:
    return None if not raw else datetime.fromtimestamp(int(raw) / 1000, tz=UTC)


def pack_json(data: Any) -> str:
    """Compact JSON, or ``y`` + base64 of its deflate with ``ZDICT_1`` when that is shorter and the
    JSON alone would not fit one listpack value."""
    try:
        text = orjson.dumps(data).decode()  # compact, like json.dumps with separators, in C
    except TypeError:  # orjson.JSONEncodeError: beyond 64-bit integers, a lone surrogate
        text = json.dumps(data, separators=(",", ":"))
    if len(text.encode()) <= LISTPACK_VALUE_BYTES:
        return text
    deflate = _DEFLATE_1.copy()
    packed = "y" + base64.b64encode(deflate.compress(text.encode()) + deflate.flush()).decode()
    return packed if len(packed) < len(text) else text


def unpack_json(text: str) -> Any:
    """``pack_json``'s inverse, for every form it has written: plain JSON, ``y`` (base64) and the
    earlier ``z`` (base85: 6 % shorter, but Python encodes it about 30 times slower, a share of
    every submission)."""
    if text.startswith(("y", "z")):
        inflate = zlib.decompressobj(-15, ZDICT_1)
        raw = base64.b64decode(text[1:]) if text[0] == "y" else base64.b85decode(text[1:])
        return json.loads(inflate.decompress(raw) + inflate.flush())
    return json.loads(text)


def _pieces(text: str) -> list[str]:
    """``text`` cut between characters into pieces of at most LISTPACK_VALUE_BYTES UTF-8 bytes."""
    if text.isascii():  # one byte a character (every packed JSON value): cut by length
        return [text[i : i + LISTPACK_VALUE_BYTES] for i in range(0, len(text), LISTPACK_VALUE_BYTES)] or [""]
    pieces: list[str] = []
    start = size = 0
    for i, char in enumerate(text):
        width = len(char.encode())
        if size + width > LISTPACK_VALUE_BYTES:
            pieces.append(text[start:i])
            start, size = i, 0
        size += width
    pieces.append(text[start:])
    return pieces


def encode(attributes: Mapping[str, str], *, keep_empty: bool = False) -> dict[str, str]:
    """Hash fields for attributes: long values split (``name.N``), empty ones left out, or, with
    ``keep_empty`` (an update through ``lua.py`` ``PUT``), kept as "" so the script drops them."""
    fields: dict[str, str] = {}
    for name, value in attributes.items():
        if not value:
            if keep_empty:
                fields[name] = ""
            continue
        if name in WHOLE or len(value.encode()) <= LISTPACK_VALUE_BYTES:
            fields[name] = value
            continue
        pieces = _pieces(value)
        if len(pieces) > MAX_PIECES:
            fields[name] = value
            continue
        fields.update((f"{name}.{n}", piece) for n, piece in enumerate(pieces))
    return fields


def attributes(fields: Mapping[str, str]) -> dict[str, str]:
    """A stored hash's attributes, its split values joined (the inverse of ``encode``)."""
    found: dict[str, str] = {}
    split: dict[str, list[tuple[int, str]]] = {}
    for name, value in fields.items():
        base, dot, number = name.rpartition(".")
        if dot and number.isdigit():
            split.setdefault(base, []).append((int(number), value))
        else:
            found[name] = value
    for base, pieces in split.items():
        found[base] = "".join(piece for _, piece in sorted(pieces))
    return found


def job_to_hash(job: SnapshotJob) -> dict[str, str]:
    """The fields CREATE stores for a new job (``attributes(job_to_hash(job))`` reads back as it)."""
    return encode(
        {
            "id": job.id,
            "tenant": job.tenant,
            "pipeline_id": job.pipeline_id,
            "state": job.state.value,
            "priority": str(job.priority),
            "user_data": job.user_data or "",
            "has_user_data": "1" if job.user_data is not None else "",
            "client_token": job.client_token or "",
            "webhook_url": job.webhook_url or "",
            "spec": pack_json(spec_to_dict(job.spec)),
            "created_ms": to_ms(job.created_at),
            "started_ms": to_ms(job.started_at),
            "finished_ms": to_ms(job.finished_at),
            "attempts": str(job.attempts) if job.attempts else "",
            "progress_done": str(job.progress_done) if job.progress_done else "",
            "progress_total": str(job.progress_total) if job.progress_total else "",
            "manifest": pack_json(job.manifest.to_dict()) if job.manifest != Manifest() else "",
            "error_code": job.error_code or "",
            "error_message": job.error_message or "",
            "notification": pack_json(asdict(job.notification)) if job.notification else "",
            "origin": job.origin if job.origin != DEFAULT_ORIGIN else "",
            "dialect_data": pack_json(job.dialect_data) if job.dialect_data else "",
            "retry_of": job.retry_of or "",
            "progress_events": pack_json(job.progress_events.to_dict()) if job.progress_events else "",
        }
    )


def job_from_hash(fields: Mapping[str, str]) -> SnapshotJob:
    """The job a stored hash holds, in this layout or the one before it."""
    h = attributes(fields)
    return SnapshotJob(
        id=h["id"],
        tenant=h["tenant"],
        pipeline_id=h["pipeline_id"],
        spec=spec_from_dict(unpack_json(h["spec"])),
        state=JobState(h["state"]),
        priority=int(h.get("priority") or DEFAULT_PRIORITY),
        user_data=h.get("user_data", "") if h.get("has_user_data") == "1" else None,
        client_token=h.get("client_token") or None,
        webhook_url=h.get("webhook_url") or None,
        created_at=from_ms(h.get("created_ms")),
        started_at=from_ms(h.get("started_ms")),
        finished_at=from_ms(h.get("finished_ms")),
        attempts=int(h.get("attempts") or 0),
        progress_done=int(h.get("progress_done") or 0),
        progress_total=int(h.get("progress_total") or 0),
        manifest=Manifest.from_dict(unpack_json(h["manifest"])) if h.get("manifest") else Manifest(),
        error_code=h.get("error_code") or None,
        error_message=h.get("error_message") or None,
        notification=NotificationResult(**unpack_json(h["notification"])) if h.get("notification") else None,
        origin=h.get("origin") or DEFAULT_ORIGIN,
        dialect_data=unpack_json(h["dialect_data"]) if h.get("dialect_data") else {},
        retry_of=h.get("retry_of") or None,
        progress_events=ProgressEvents.from_dict(unpack_json(h["progress_events"]))
        if h.get("progress_events")
        else None,
    )


def finish_fields(manifest: Manifest | None, error_code: str | None, error_message: str | None) -> dict[str, str]:
    """The attributes FINISH writes besides the state, for ``lua.py`` ``PUT``."""
    attrs: dict[str, str] = {}
    if manifest is not None:
        attrs["manifest"] = pack_json(manifest.to_dict())
        attrs["progress_done"] = str(len(manifest.images))
    if error_code is not None:
        attrs["error_code"] = error_code
        attrs["error_message"] = error_message or ""
    return encode(attrs, keep_empty=True)


def notification_fields(result: NotificationResult) -> dict[str, str]:
    return encode({"notification": pack_json(asdict(result))}, keep_empty=True)


def manifest_objects(spec_bucket: str, manifest: Manifest) -> set[tuple[str, str]]:
    """The objects a finished job's manifest names as stored by it: its uploaded images, which the
    worker writes to the spec's output bucket (``workers/pipeline.py``). Fixed for good: stored
    ``written`` attributes that say ``from_manifest`` mean exactly these."""
    return {(spec_bucket, image.key) for image in manifest.images if image.uploaded}


def written_fields(recorded: Iterable[tuple[str, str]], spec_bucket: str, manifest: Manifest | None) -> dict[str, str]:
    """The ``written`` attribute for a job that finishes having written ``recorded`` (its set).

    When the manifest's images are all among them they are left out (``from_manifest``): for a
    job that succeeded, that is nearly always every object it wrote."""
    objects = set(recorded)
    named = manifest_objects(spec_bucket, manifest) if manifest is not None else set()
    derived = bool(named) and named <= objects
    rest = sorted(objects - named) if derived else sorted(objects)
    data: dict[str, Any] = {"from_manifest": True, "objects": rest} if derived else {"objects": rest}
    return encode({"written": pack_json(data)}, keep_empty=True)


def written_objects(fields: Mapping[str, str], recorded: Iterable[tuple[str, str]]) -> Objects:
    """Every object a job wrote: its ``written`` attribute (finished jobs) and its set (``recorded``:
    running jobs, records from before this layout, and anything recorded after it finished)."""
    objects = set(recorded)
    h = attributes(fields)
    if h.get("written"):
        data = unpack_json(h["written"])
        objects.update((bucket, key) for bucket, key in data.get("objects", []))
        if data.get("from_manifest"):
            job = job_from_hash(fields)
            objects |= manifest_objects(job.spec.output.bucket, job.manifest)
    return sorted(objects)
