"""Output size rules and encoders."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from app.core.specs import ImageFormat, OutputSize
from workers.frames.encode import encode_image, output_size, resize


@pytest.mark.parametrize(
    ("src", "size", "expected"),
    [
        ((1920, 1080), OutputSize(), (1920, 1080)),
        ((1920, 1080), OutputSize(width=320), (320, 180)),
        ((1920, 1080), OutputSize(height=90), (160, 90)),
        ((1920, 1080), OutputSize(width=100, height=100), (100, 100)),  # box: aspect not kept
        ((320, 240), OutputSize(width=640), (320, 240)),  # never upscale
        ((320, 240), OutputSize(height=4096), (320, 240)),
        ((320, 240), OutputSize(width=640, height=240), (320, 120)),  # scaled to fit, request aspect kept
        ((240, 320), OutputSize(width=8), (8, 11)),  # portrait, minimum side
        ((4096, 8), OutputSize(width=8), (8, 1)),  # extreme aspect still >= 1 px
        ((1920, 1080), OutputSize(long_side=480), (480, 270)),  # long side: landscape fits its width
        ((1080, 1920), OutputSize(long_side=480), (270, 480)),  # portrait fits its height
        ((320, 240), OutputSize(long_side=480), (320, 240)),  # long side never upscales either
    ],
)
def test_output_size(src: tuple[int, int], size: OutputSize, expected: tuple[int, int]) -> None:
    assert output_size(*src, size) == expected


def test_output_size_rejects_empty_source() -> None:
    with pytest.raises(ValueError):
        output_size(0, 10, OutputSize())


@pytest.mark.parametrize("fmt", list(ImageFormat))
def test_encode_round_trip(fmt: ImageFormat) -> None:
    img = np.zeros((48, 64, 3), np.uint8)
    img[:, 32:] = (0, 0, 255)
    data = encode_image(img, fmt, 80)
    back = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    assert back.shape == img.shape
    assert back[24, 48, 2] > 200 and back[24, 10, 2] < 50
    magic = {ImageFormat.JPEG: b"\xff\xd8", ImageFormat.PNG: b"\x89PNG", ImageFormat.WEBP: b"RIFF"}[fmt]
    assert data.startswith(magic)


def test_jpeg_quality_changes_size() -> None:
    rng = np.random.default_rng(1)
    img = rng.integers(0, 255, (120, 160, 3), dtype=np.uint8)
    assert len(encode_image(img, ImageFormat.JPEG, 30)) < len(encode_image(img, ImageFormat.JPEG, 95))


def test_resize_area() -> None:
    img = np.zeros((100, 200, 3), np.uint8)
    img[:, ::2] = 255
    out = resize(img, 50, 25)
    assert out.shape == (25, 50, 3)
    assert 100 < int(out.mean()) < 155  # averaged, not aliased to 0 or 255
