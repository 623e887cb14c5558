"""Neutral key templates: rendering, checking, and the round trip through a vendor's spelling."""

from __future__ import annotations

import pytest

from app.core import templates
from app.core.errors import InvalidParameter

MPS = {"{JobId}": "{job_id}", "{Count}": "{index:5}", "{TileCount}": "{sheet:5}"}
MPS_BACK = {"job_id": "{JobId}", "index": "{Count}", "sheet": "{TileCount}"}


def test_render_fills_tokens_and_pads_only_when_asked() -> None:
    t = "a/{job_id}/{index:5}-{index}-{sheet:3}.jpg"
    assert templates.render(t, job_id="J", index=7, sheet=2) == "a/J/00007-7-002.jpg"
    assert templates.render("s/{job_id}-{sheet:5}.jpg", job_id="J") == "s/J-.jpg"  # no sheet given


def test_time_seconds_round_down_and_pad() -> None:
    t = "a/snap_{time_s}-{time_s:3}.jpg"
    assert templates.render(t, job_id="J", time_ms=20_040.0) == "a/snap_20-020.jpg"
    assert templates.render(t, job_id="J", time_ms=2999.9999999999995) == "a/snap_3-003.jpg"  # float noise
    assert templates.render(t, job_id="J") == "a/snap_-.jpg"  # no time given
    templates.check(t, "output.key")


def test_literal_braces_survive_from_vendor_and_render() -> None:
    neutral = templates.from_vendor("x/{raw}/{Count}}.jpg", MPS)
    assert neutral == "x/{{raw}}/{index:5}}}.jpg"
    templates.check(neutral, "output.key")
    assert templates.render(neutral, job_id="J", index=3) == "x/{raw}/00003}.jpg"


def test_vendor_round_trip_keeps_the_key_text() -> None:
    text = "out/{JobId}/{Count}/{TileCount}-{weird}.png"
    neutral = templates.from_vendor(text, MPS)
    assert templates.to_vendor(neutral, MPS_BACK) == text
    assert templates.to_vendor(neutral, MPS_BACK, job_id="J1") == "out/J1/{Count}/{TileCount}-{weird}.png"


@pytest.mark.parametrize("bad", ["a/{nope}.jpg", "a/{index.jpg", "a/}x", "{job_id:3}"])
def test_check_refuses_unknown_tokens_and_lone_braces(bad: str) -> None:
    with pytest.raises(InvalidParameter) as info:
        templates.check(bad, "output.key")
    assert info.value.field == "output.key"


def test_uses_ignores_escaped_text() -> None:
    assert templates.uses("a/{index:5}", templates.INDEX)
    assert not templates.uses("a/{{index}}", templates.INDEX)
