"""The job hash layout (``app/storage/jobhash.py``) without a server: every value fits a listpack
value, every job reads back as it was written, and the preset dictionary never changes."""

from __future__ import annotations

import base64
import hashlib
import json
import zlib
from datetime import UTC, datetime

from hypothesis import given
from hypothesis import strategies as st

from app.core.jobs import Manifest, NotificationResult, OutputImage, SnapshotJob
from app.core.progress import ProgressEvents
from app.core.specs import ObjectRef, OutputTarget, SingleTime, SnapshotSpec
from app.core.states import JobState
from app.storage.jobhash import (
    LISTPACK_VALUE_BYTES,
    MAX_PIECES,
    WHOLE,
    ZDICT_1,
    attributes,
    encode,
    job_from_hash,
    job_to_hash,
    pack_json,
    unpack_json,
    written_fields,
    written_objects,
)

SPEC = SnapshotSpec(ObjectRef("media", "in/v.mp4"), SingleTime(1000), OutputTarget("out", "s/{job_id}.jpg"))


def test_the_preset_dictionary_is_the_one_stored_values_were_packed_with() -> None:
    assert hashlib.sha256(ZDICT_1).hexdigest() == "4999db466e429a0494fcb397482685cdf6279bddb02961911641d06d8e4d4437"


@given(st.dictionaries(st.sampled_from(["user_data", "error_message", "webhook_url", "x"]), st.text(max_size=400)))
def test_any_text_splits_into_listpack_values_and_joins_back(values: dict[str, str]) -> None:
    fields = encode(values)
    assert all(len(v.encode()) <= LISTPACK_VALUE_BYTES and len(k) <= LISTPACK_VALUE_BYTES for k, v in fields.items())
    assert attributes(fields) == {k: v for k, v in values.items() if v}


def test_a_value_too_long_for_the_pieces_stays_whole_and_the_named_fields_never_split() -> None:
    huge = "x" * (LISTPACK_VALUE_BYTES * MAX_PIECES + 1)
    assert encode({"user_data": huge}) == {"user_data": huge}
    token = "é" * 64  # 64 characters, 128 bytes: placement() reads it by name
    assert "client_token" in WHOLE and encode({"client_token": token}) == {"client_token": token}


@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(), lambda c: st.lists(c) | st.dictionaries(st.text(), c)
    )
)
def test_json_packs_and_unpacks(data: object) -> None:
    assert unpack_json(pack_json(data)) == data


def test_values_packed_in_base85_by_earlier_releases_still_read() -> None:
    """Records stored before the base64 tag ("y") carry base85 behind "z"; both decode."""
    data = {"input": {"bucket": "media", "key": "in/v.mp4"}, "timing": {"kind": "single", "time_ms": 1000.0}}
    text = json.dumps(data, separators=(",", ":")).encode()
    deflate = zlib.compressobj(9, zlib.DEFLATED, -15, 9, zlib.Z_DEFAULT_STRATEGY, ZDICT_1)
    earlier = "z" + base64.b85encode(deflate.compress(text) + deflate.flush()).decode()
    assert unpack_json(earlier) == data
    assert pack_json(data).startswith("y") and unpack_json(pack_json(data)) == data


def test_a_job_reads_back_exactly_and_every_field_fits() -> None:
    job = SnapshotJob(
        id="a" * 32,
        tenant="acme",
        pipeline_id="p1",
        spec=SPEC,
        state=JobState.SUCCEEDED,
        priority=7,
        user_data="ü" * 700,  # multi-byte, split between characters
        client_token="tok",
        webhook_url="https://hooks.example.com/" + "p" * 200,
        created_at=datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=UTC),
        attempts=2,
        progress_done=1,
        progress_total=1,
        manifest=Manifest(images=[OutputImage(1, 1000.0, 990.0, "s/a.jpg", 320, 180, 14000)], decoder="pyav"),
        error_code="X",
        error_message="m" * 300,
        notification=NotificationResult(message_id="m-1"),
        origin="mts",
        dialect_data={"echo": '{"Location":"oss-cn-hangzhou"}' * 5},
        retry_of="b" * 32,
        progress_events=ProgressEvents("https://hooks.example.com/p", every_images=10, every_s=5.0),
    )
    fields = job_to_hash(job)
    assert all(len(v.encode()) <= LISTPACK_VALUE_BYTES for v in fields.values())
    assert job_from_hash(fields) == job
    empty = SnapshotJob(id="e", tenant="acme", pipeline_id="p1", spec=SPEC, user_data="")
    assert "user_data" not in job_to_hash(empty) and job_from_hash(job_to_hash(empty)) == empty
    assert job_from_hash(job_to_hash(SnapshotJob(id="n", tenant="t", pipeline_id="p", spec=SPEC))).user_data is None


def test_what_a_job_wrote_folds_around_its_manifest() -> None:
    manifest = Manifest(
        images=[
            OutputImage(1, 0.0, 0.0, "s/1.jpg", 1, 1, 1),
            OutputImage(2, 0.0, 0.0, "s/2.jpg", 1, 1, 1, uploaded=False),  # kept in a sheet only
        ]
    )
    job = SnapshotJob(id="j", tenant="acme", pipeline_id="p1", spec=SPEC, manifest=manifest)
    wrote = [("out", "s/1.jpg"), ("out", "sheet.jpg")]
    folded = {**job_to_hash(job), **written_fields(wrote, "out", manifest)}
    assert unpack_json(attributes(folded)["written"]) == {"from_manifest": True, "objects": [["out", "sheet.jpg"]]}
    assert written_objects(folded, []) == sorted(wrote)
    # An image the manifest names but the set lacks: nothing is derived, everything is listed.
    partial = {**job_to_hash(job), **written_fields([("out", "sheet.jpg")], "out", manifest)}
    assert "from_manifest" not in unpack_json(attributes(partial)["written"])
    assert written_objects(partial, [("out", "late.jpg")]) == [("out", "late.jpg"), ("out", "sheet.jpg")]
