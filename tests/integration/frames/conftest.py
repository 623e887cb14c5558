"""Generated inputs shared by the frame-engine integration tests (made once per session)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.media import VideoFacts, make_video


class Videos:
    def __init__(self, root: Path) -> None:
        self.root = root
        self._made: dict[str, VideoFacts] = {}

    def get(self, name: str, **kw: object) -> VideoFacts:
        if name not in self._made:
            self._made[name] = make_video(self.root / f"{name}.mp4", **kw)  # type: ignore[arg-type]
        return self._made[name]

    @property
    def cfr(self) -> VideoFacts:
        return self.get("cfr", seconds=4, fps=25, width=320, height=240, gop=25)

    @property
    def vfr(self) -> VideoFacts:
        return self.get("vfr", seconds=4, vfr=True, width=320, height=240, gop=10)

    @property
    def black_lead(self) -> VideoFacts:
        return self.get("black", seconds=2, fps=25, gop=25, black_lead_frames=12)

    @property
    def rot90(self) -> VideoFacts:
        return self.get("rot90", seconds=1, fps=25, width=320, height=240, gop=10, rotation=90)

    @property
    def mpeg4(self) -> VideoFacts:
        return self.get("mpeg4", seconds=2, fps=25, codec="mpeg4")


@pytest.fixture(scope="session")
def videos(tmp_path_factory: pytest.TempPathFactory) -> Videos:
    return Videos(tmp_path_factory.mktemp("videos"))
