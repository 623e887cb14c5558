"""Output size rules and image encoding.

Size rules (all vendors agree on the shape of these; [8, 4096] is the JD/Alibaba range):

* neither side given: the source's displayed size;
* one side given: the other follows the source aspect ratio (rounded, at least 1 px);
* both given: exactly that box (aspect not kept, like Alibaba Width+Height);
* long side given (Huawei ``max_length``): the source's longer side becomes it, aspect kept;
* never upscale: a request larger than the source is scaled down by the same factor on both
  sides so the result fits within the source (the aspect of the *request* is kept).
"""

from __future__ import annotations

import cv2
import numpy as np

from app.core.errors import FailureCode, JobFailure
from app.core.specs import ImageFormat, OutputSize


def output_size(source_w: int, source_h: int, size: OutputSize) -> tuple[int, int]:
    """(width, height) of the output image for a source of displayed size source_w x source_h."""
    if source_w <= 0 or source_h <= 0:
        raise ValueError(f"bad source size {source_w}x{source_h}")
    w, h = size.width, size.height
    if w is None and h is None and size.long_side is not None:
        if source_w >= source_h:
            w = size.long_side
        else:
            h = size.long_side
    if w is None and h is None:
        return source_w, source_h
    if w is not None and h is None:
        h = max(1, round(w * source_h / source_w))
    elif h is not None and w is None:
        w = max(1, round(h * source_w / source_h))
    assert w is not None and h is not None
    factor = min(1.0, source_w / w, source_h / h)
    if factor < 1.0:
        w = min(source_w, max(1, round(w * factor)))
        h = min(source_h, max(1, round(h * factor)))
    return w, h


def resize(image: np.ndarray, width: int, height: int) -> np.ndarray:
    """Area-averaging downscale (no aliasing); bilinear for the rare up-step inside a box."""
    h, w = image.shape[:2]
    if (w, h) == (width, height):
        return image
    interp = cv2.INTER_AREA if width <= w and height <= h else cv2.INTER_LINEAR
    return cv2.resize(image, (width, height), interpolation=interp)


def encode_image(image: np.ndarray, fmt: ImageFormat, quality: int) -> bytes:
    """Encode a BGR image. ``quality`` 1-100 maps to JPEG/WebP quality and to PNG compression
    effort (PNG is lossless: higher quality = less effort, i.e. faster and larger)."""
    if fmt is ImageFormat.JPEG:
        params = [cv2.IMWRITE_JPEG_QUALITY, quality]
        ext = ".jpg"
    elif fmt is ImageFormat.WEBP:
        params = [cv2.IMWRITE_WEBP_QUALITY, quality]
        ext = ".webp"
    else:
        params = [cv2.IMWRITE_PNG_COMPRESSION, max(0, min(9, (100 - quality) // 11))]
        ext = ".png"
    ok, buf = cv2.imencode(ext, image, params)
    if not ok:
        raise JobFailure(
            FailureCode.INTERNAL_ERROR, f"could not encode a {image.shape[1]}x{image.shape[0]} {fmt} image"
        )
    return bytes(buf.tobytes())
