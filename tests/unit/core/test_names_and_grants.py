"""S3 naming rules (checked by the core for every backend), bucket grants, and the keys a job
can write (what submission checks grants and the own-input rule against)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from app.core import outputs
from app.core.errors import InvalidParameter
from app.core.grants import ALL_BUCKETS, Access, Grant, parse_scope, permits
from app.core.names import bucket_problem, key_problem
from app.core.specs import (
    ArchiveSpec,
    ObjectRef,
    OutputTarget,
    Series,
    SingleTime,
    SnapshotSpec,
    SpriteSpec,
    validate_spec,
)

BASE = SnapshotSpec(input=ObjectRef("media", "in/v.mp4"), timing=SingleTime(0), output=OutputTarget("out", "x.jpg"))


@pytest.mark.parametrize("name", ["abc", "media", "my-bucket.v2", "a" * 63, "0x1"])
def test_valid_bucket_names(name: str) -> None:
    assert bucket_problem(name) is None


@pytest.mark.parametrize(
    ("name", "fragment"),
    [
        ("", "required"),
        ("ab", "3-63"),
        ("a" * 64, "3-63"),
        ("b" * 5000, "3-63"),
        ("Media", "lowercase"),
        ("my_bucket", "lowercase"),
        ("-abc", "starting and ending"),
        ("abc.", "starting and ending"),
        ("a..b", "'..'"),
        ("192.168.1.1", "IP address"),
        ("a/b", "lowercase"),
        ("a\x00b", "lowercase"),
    ],
)
def test_invalid_bucket_names(name: str, fragment: str) -> None:
    problem = bucket_problem(name)
    assert problem is not None and fragment in problem, problem


@pytest.mark.parametrize(
    "key", ["a.jpg", "in/video.mp4", "a/b/c/d.png", "é/ü.jpg", "x" * 255, "/".join(["s" * 255] * 4)]
)
def test_valid_keys(key: str) -> None:
    assert key_problem(key) is None


@pytest.mark.parametrize(
    ("key", "fragment"),
    [
        ("", "required"),
        ("k" * 5000, "5000 bytes; at most 1024"),
        ("é" * 513, "1026 bytes"),
        ("a\x00b.jpg", "control characters"),
        ("a\nb.jpg", "control characters"),
        ("a\x7fb", "control characters"),
        ("a\\b.jpg", "backslash"),
        ("x" * 256, "over 255 bytes"),
        ("a/" + "é" * 128, "over 255 bytes"),
        ("/abs.jpg", "'/'"),
        ("a//b.jpg", "'//'"),
        ("dir/", "'/'"),
        ("a/./b", "'.' or '..'"),
        ("../x", "'.' or '..'"),
        ("a\ud800b", "surrogate"),
    ],
)
def test_invalid_keys(key: str, fragment: str) -> None:
    problem = key_problem(key)
    assert problem is not None and fragment in problem, problem


@pytest.mark.parametrize(
    ("template", "fragment"),
    [
        ("a\x00{index:5}.jpg", "control characters"),
        ("a\\{index:5}.jpg", "backslash"),
        ("x" * 252 + "{index:5}.jpg", "over 255 bytes"),  # the rendered segment is 262 bytes
        ("a/" * 510 + "{index:5}", "renders keys of up to 1025 bytes"),
        ("{index:5}//x.jpg", "'//'"),
    ],
)
def test_output_templates_are_checked_as_the_keys_they_render(template: str, fragment: str) -> None:
    spec = replace(BASE, output=OutputTarget("out", template))
    with pytest.raises(InvalidParameter, match="output.key") as refused:
        validate_spec(spec)
    assert fragment in str(refused.value)


def test_sprite_templates_are_checked_too() -> None:
    sprite = SpriteSpec(target=OutputTarget("out", "s\\{sheet:5}.jpg"))
    with pytest.raises(InvalidParameter, match="sprite.output.key"):
        validate_spec(replace(BASE, sprite=sprite))


@pytest.mark.parametrize("value", [10**400, -(10**400), float("inf"), 10**13])
def test_huge_numbers_are_refused_without_overflow(value: float) -> None:
    with pytest.raises(InvalidParameter, match="snapshot.time_ms"):
        validate_spec(replace(BASE, timing=SingleTime(value)))


def test_scopes_and_grants() -> None:
    assert parse_scope("media") == ("media", "")
    assert parse_scope("media/in/") == ("media", "in/")
    assert parse_scope("*") == (ALL_BUCKETS, "")
    with pytest.raises(InvalidParameter):
        parse_scope("*/x")
    with pytest.raises(InvalidParameter):
        parse_scope("Bad_Bucket")
    grants = [Grant("media", "in/", read=True), Grant("out", write=True), Grant(ALL_BUCKETS, read=True, write=False)]
    assert permits(grants, Access.READ, "media", "in/v.mp4")
    assert permits(grants, Access.READ, "anything", "k")  # '*' read
    assert not permits(grants, Access.WRITE, "media", "in/v.mp4")
    assert permits(grants, Access.WRITE, "out", "")
    assert not permits([Grant("media", "in/", read=True)], Access.READ, "media", "inbox/v.mp4")
    assert not permits([], Access.READ, "media", "x")


def test_key_families_name_every_key_a_job_writes() -> None:
    spec = replace(
        BASE,
        output=OutputTarget("out", "jobs/{job_id}/{index:5}.jpg"),
        sprite=SpriteSpec(target=OutputTarget("out", "sheets/{job_id}-{sheet}.jpg")),
    )
    images, sheets, vtt, index = outputs.families(spec, "J1")
    assert (images.field, images.head) == ("output", "jobs/J1/")
    assert images.pattern.fullmatch("jobs/J1/00001.jpg") and images.pattern.fullmatch("jobs/J1/123456.jpg")
    assert not images.pattern.fullmatch("jobs/J1/1.jpg") and not images.pattern.fullmatch("jobs/J2/00001.jpg")
    assert (sheets.field, sheets.head) == ("sprite.output", "sheets/J1-")
    assert sheets.pattern.fullmatch("sheets/J1-3.jpg")
    assert (vtt.head, index.head) == ("sheets/J1.vtt", "sheets/J1.json")  # the stem loses its trailing '-'
    plain = replace(BASE, sprite=SpriteSpec(target=OutputTarget("out", "s/board.jpg")))
    _, sheet_family, *_ = outputs.families(plain, "J")
    assert sheet_family.head == "s/board"
    assert sheet_family.pattern.fullmatch("s/board.jpg") and sheet_family.pattern.fullmatch("s/board-00002.jpg")


def test_time_named_images_and_the_archive_are_key_families_too() -> None:
    spec = replace(
        BASE,
        timing=Series(0, 10, 3),
        output=OutputTarget("out", "thumbs/{job_id}/shot_{time_s}.jpg"),
        archive=ArchiveSpec(OutputTarget("out", "thumbs/{job_id}.tar")),
    )
    images, archive = outputs.families(spec, "J1")
    assert images.head == "thumbs/J1/shot_" and images.pattern.fullmatch("thumbs/J1/shot_20.jpg")
    assert (archive.field, archive.head) == ("archive.output", "thumbs/J1.tar")
    assert archive.pattern.fullmatch("thumbs/J1.tar") and not archive.pattern.fullmatch("thumbs/J1.tar.x")
