"""GpuDecoder's ownership of its source, with a stand-in for PyNvVideoCodec (no NVDEC here)."""

from __future__ import annotations

import io
from typing import Any

import numpy as np

from app.core.specs import OutputSize
from workers.frames.capture import Budget
from workers.frames.gpu import GpuDecoder
from workers.frames.plan import FrameTable

TABLE = FrameTable(pts_ms=(0.0, 40.0, 80.0), key_frames=(0,), duration_ms=120.0)


class FakeNvc:
    """The two names GpuDecoder uses; every frame is mid-grey RGB, 32x24."""

    class OutputColorType:
        RGB = "RGB"

    class SimpleDecoder:
        def __init__(self, source: Any, **options: Any) -> None:
            self.source = source

        def __getitem__(self, index: int) -> np.ndarray:
            return np.full((24, 32, 3), 128, np.uint8)


def test_a_file_object_source_is_closed_with_the_decoder() -> None:
    source = io.BytesIO(b"not read by the fake")
    dec = GpuDecoder(FakeNvc, source, TABLE, 0, Budget(10))
    assert dec.read(1, None, OutputSize(width=16)).image.shape == (12, 16, 3)
    assert not source.closed
    dec.close()
    assert source.closed
    dec.close()  # a second close is harmless


def test_a_path_source_is_left_alone() -> None:
    dec = GpuDecoder(FakeNvc, "/media/in.mp4", TABLE, 0, Budget(10))
    dec.close()
