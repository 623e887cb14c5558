from dataclasses import replace

import pytest

from app.core.errors import InvalidParameter
from app.core.specs import (
    ArchiveSpec,
    Average,
    BlackFrameSpec,
    FrameType,
    ImageFormat,
    ObjectRef,
    OutputSize,
    OutputTarget,
    Series,
    SingleTime,
    SnapshotSpec,
    SpriteSpec,
    TimePoints,
    parse_color,
    spec_from_dict,
    spec_to_dict,
    validate_spec,
    validate_user_data,
)

BASE = SnapshotSpec(
    input=ObjectRef("media", "v.mp4"), timing=SingleTime(0), output=OutputTarget("out", "{job_id}/{index:5}.jpg")
)


def test_key_template_placeholders() -> None:
    assert OutputTarget("b", "a/{job_id}/{index:5}.jpg").key_for("j1", 7) == "a/j1/00007.jpg"
    assert OutputTarget("b", "{index:5}-{index:5}").key_for("j", 12) == "00012-00012"
    assert OutputTarget("b", "a/snap_{time_s}.jpg").key_for("j", 3, 11_999.0) == "a/snap_11.jpg"


def test_time_seconds_tell_images_apart_like_the_index() -> None:
    series = replace(BASE, timing=Series(0, 1, 5))
    validate_spec(replace(series, output=OutputTarget("out", "a/{job_id}/{time_s}.jpg")))
    with pytest.raises(InvalidParameter, match="must contain {index}"):
        validate_spec(replace(series, output=OutputTarget("out", "a/{job_id}.jpg")))


def test_a_series_window_makes_the_count_unknown_and_is_checked() -> None:
    assert replace(BASE, timing=Series(0, 1, 5, end_ms=3000)).requested_count is None
    assert replace(BASE, timing=Series(0, 1, 5, closing_frame=True)).requested_count is None
    assert replace(BASE, timing=Series(0, 1, 5)).requested_count == 5
    with pytest.raises(InvalidParameter, match="end_ms must not be less than start_ms"):
        validate_spec(replace(BASE, timing=Series(2000, 1, 5, end_ms=1000)))


def test_long_side_stands_alone_within_the_size_bounds() -> None:
    validate_spec(replace(BASE, size=OutputSize(long_side=480)))
    with pytest.raises(InvalidParameter, match="long_side cannot be combined"):
        validate_spec(replace(BASE, size=OutputSize(width=320, long_side=480)))
    with pytest.raises(InvalidParameter, match="long_side must be an integer in"):
        validate_spec(replace(BASE, size=OutputSize(long_side=5000)))


def test_an_archive_is_one_object_per_job() -> None:
    validate_spec(replace(BASE, archive=ArchiveSpec(OutputTarget("out", "t/{job_id}.tar"))))
    for key in ("t/{index}.tar", "t/{time_s}.tar", "../t.tar"):
        with pytest.raises(InvalidParameter, match="archive.output"):
            validate_spec(replace(BASE, archive=ArchiveSpec(OutputTarget("out", key))))


@pytest.mark.parametrize("width", [8, 4096, None])
def test_sizes_at_the_bounds_are_valid(width: int | None) -> None:
    validate_spec(replace(BASE, size=OutputSize(width=width, height=width)))


@pytest.mark.parametrize("bad", [7, 4097, 0, -8, 5, 5000])
def test_sizes_outside_8_4096_are_refused(bad: int) -> None:
    with pytest.raises(InvalidParameter, match="width must be an integer in \\[8, 4096\\]"):
        validate_spec(replace(BASE, size=OutputSize(width=bad)))


def test_points_are_sorted_duplicates_kept_and_capped_at_100() -> None:
    spec = validate_spec(replace(BASE, timing=TimePoints((5.0, 1.0, 5.0, 0.5))))
    assert spec.timing == TimePoints((0.5, 1.0, 5.0, 5.0))
    validate_spec(replace(BASE, timing=TimePoints(tuple(float(i) for i in range(100)))))
    with pytest.raises(InvalidParameter, match="101 time points"):
        validate_spec(replace(BASE, timing=TimePoints(tuple(float(i) for i in range(101)))))
    with pytest.raises(InvalidParameter, match="at least one"):
        validate_spec(replace(BASE, timing=TimePoints(())))


@pytest.mark.parametrize(
    ("timing", "message"),
    [
        (SingleTime(-1), "time_ms must be a finite number >= 0"),
        (SingleTime(float("inf")), "finite"),
        (Series(0, 0, 3), "interval_s must be greater than 0"),
        (Series(0, 1, 0), "count must be in"),
        (Average(0), "count must be in"),
        (Average(2, start_ms=10, end_ms=5), "end_ms must not be less than start_ms"),
    ],
)
def test_timing_validation(timing: object, message: str) -> None:
    with pytest.raises(InvalidParameter, match=message):
        validate_spec(replace(BASE, timing=timing))  # type: ignore[arg-type]


def test_several_images_need_count_in_the_key() -> None:
    with pytest.raises(InvalidParameter, match="must contain \\{index\\}"):
        validate_spec(replace(BASE, timing=Series(0, 1, 2), output=OutputTarget("out", "fixed.jpg")))
    validate_spec(replace(BASE, output=OutputTarget("out", "fixed.jpg")))  # one image: fine


def test_user_data_limit_counts_bytes_not_characters() -> None:
    validate_user_data("a" * 1024)
    validate_user_data(None)
    with pytest.raises(InvalidParameter, match="1026 bytes"):
        validate_user_data("é" * 513)


def test_colors() -> None:
    assert parse_color("black") == (0, 0, 0)
    assert parse_color("#FF8000") == (255, 128, 0)
    assert parse_color("random") == "random"
    assert parse_color("#12345") is None and parse_color("plaid") is None and parse_color("#gg0000") is None


def test_spec_round_trips_through_its_dict_form() -> None:
    spec = SnapshotSpec(
        input=ObjectRef("media", "v.mp4"),
        timing=TimePoints((1.0, 2.5)),
        output=OutputTarget("out", "x/{index:5}.png"),
        frame_type=FrameType.KEYFRAME,
        size=OutputSize(width=320),
        format=ImageFormat.PNG,
        quality=70,
        sprite=SpriteSpec(target=OutputTarget("out", "s/{sheet:5}.jpg"), lines=2, columns=3, color="#101010"),
        black_frames=BlackFrameSpec(black_level=30),
    )
    assert spec_from_dict(spec_to_dict(spec)) == spec
    packed = replace(
        BASE,
        size=OutputSize(long_side=480),
        archive=ArchiveSpec(OutputTarget("out", "t/{job_id}.tar"), keep_images=True),
    )
    assert spec_from_dict(spec_to_dict(packed)) == packed
    for timing in (
        SingleTime(5),
        Series(1, 0.5, 3),
        Series(0, 2, 100, end_ms=9000, closing_frame=True),
        Average(4, 0, None),
        Average(4, 10, 20),
    ):
        s = replace(BASE, timing=timing)
        assert spec_from_dict(spec_to_dict(s)) == s


@pytest.mark.parametrize("key", ["../x.jpg", "a/../../b.jpg", "a/./b.jpg", "/abs.jpg"])
def test_output_keys_cannot_walk_out_of_their_bucket(key: str) -> None:
    with pytest.raises(InvalidParameter, match="output.key"):
        validate_spec(replace(BASE, output=OutputTarget("out", key)))


@pytest.mark.parametrize(
    "spec",
    [
        BASE,
        replace(
            BASE,
            timing=TimePoints((5, 1000, 1000)),
            sprite=SpriteSpec(OutputTarget("out", "s/{sheet}.jpg"), lines=2, columns=3),
            archive=ArchiveSpec(OutputTarget("out", "a.tar"), keep_images=True),
            black_frames=BlackFrameSpec(),
            size=OutputSize(width=320),
            format=ImageFormat.PNG,
            frame_type=FrameType.KEYFRAME,
        ),
        replace(BASE, timing=Series(start_ms=0, interval_s=0.5, count=4, end_ms=900.0)),
        replace(BASE, timing=Average(count=7)),
    ],
    ids=["single", "everything", "series", "average"],
)
def test_spec_to_dict_is_what_asdict_gave(spec: SnapshotSpec) -> None:
    """Client-token fingerprints hash this JSON: a faster spec_to_dict must not change a byte of
    it, or a retried request after an upgrade would be refused as a different one."""
    import json
    from dataclasses import asdict

    expected = asdict(spec)
    expected["timing"] = {"kind": spec_to_dict(spec)["timing"]["kind"], **asdict(spec.timing)}
    if isinstance(spec.timing, TimePoints):
        expected["timing"]["points_ms"] = list(spec.timing.points_ms)
    assert json.dumps(spec_to_dict(spec), sort_keys=True) == json.dumps(expected, sort_keys=True)
    assert spec_from_dict(spec_to_dict(spec)) == spec


@pytest.mark.parametrize(
    ("spec", "field"),
    [
        (replace(BASE, output=OutputTarget("out", "../{index}.jpg")), "output.key"),
        (replace(BASE, output=OutputTarget("Bad_Bucket", "{index}.jpg")), "output.bucket"),
        (replace(BASE, sprite=SpriteSpec(OutputTarget("out", "/s/{sheet}.jpg"))), "sprite.output.key"),
        (replace(BASE, archive=ArchiveSpec(OutputTarget("out", "a/../../x.tar"))), "archive.output.key"),
        (replace(BASE, output=OutputTarget("out", "{index}" + "x" * 1100)), "output.key"),
    ],
)
def test_a_target_refused_once_is_refused_every_time(spec: SnapshotSpec, field: str) -> None:
    """Each target's verdict is remembered (``_target_problem``): the same refusal, field and
    words, on every later submission of it; and a good target beside it stays good."""
    refusals = []
    for _ in range(3):
        with pytest.raises(InvalidParameter) as refused:
            validate_spec(spec)
        refusals.append((refused.value.field, refused.value.reason))
        validate_spec(BASE)
    assert refusals[0][0] == field
    assert refusals == [refusals[0]] * 3
