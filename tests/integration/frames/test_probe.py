"""The frame table: from the MP4 moov box, and from demuxing for other containers."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from tests.integration.frames.conftest import Videos
from tests.media import VideoFacts
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
