"""The frame table: from the MP4 moov box, and from demuxing for other containers."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from app.core.specs import OutputSize
from tests.integration.frames.conftest import Videos
from tests.media import VideoFacts, read_frame_index
from workers.frames.capture import Budget, PyAVDecoder
from workers.frames.probe import open_input


@pytest.mark.parametrize("kind", ["cfr", "vfr", "mpeg4", "rot90", "black_lead"])
def test_moov_table_matches_the_packets(videos: Videos, kind: str) -> None:
    facts: VideoFacts = getattr(videos, kind)
    opened = open_input(str(facts.path), max_frame_pixels=1 << 30)
    try:
        assert opened.index.source == "mp4"
        t = opened.index.table
        assert (t.pts_ms, t.key_frames, t.duration_ms) == (facts.pts_ms, facts.key_frames, facts.duration_ms)
        assert opened.rotation == (facts.rotation or 0)
    finally:
        opened.close()


def test_other_containers_fall_back_to_demuxing(videos: Videos, tmp_path: Path) -> None:
    exe = shutil.which("ffmpeg")
    assert exe is not None
    facts = videos.cfr
    mkv = tmp_path / "v.mkv"
    subprocess.run([exe, "-v", "error", "-i", str(facts.path), "-c", "copy", str(mkv)], check=True)
    opened = open_input(str(mkv), max_frame_pixels=1 << 30)
    try:
        assert opened.index.source == "demux"
        t = opened.index.table
        assert t.key_frames == facts.key_frames
        # Matroska keeps milliseconds: same frames, same times
        assert t.pts_ms == facts.pts_ms
    finally:
        opened.close()


def test_frames_nothing_refers_to_are_skipped_before_the_target(videos: Videos) -> None:
    """x264 B-frames that are not references are never decoded on the way to a target, and
    the target itself (whatever its type) still comes out."""
    facts = videos.cfr
    for target in (20, 21, 22, 23, 24):
        budget = Budget(1000)
        dec = PyAVDecoder(open_input(str(facts.path), max_frame_pixels=1 << 30), budget)
        try:
            got = dec.read(target, 0, OutputSize(width=64))
            assert got.frame == target
            assert read_frame_index(got.image) == target
            assert budget.frames < target + 1  # fewer than the key-to-target run of frames
        finally:
            dec.close()
