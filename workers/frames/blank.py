"""Black / blank frame detection for opt-in black-frame avoidance (``spec.black_frames``).

Runs on the output-sized image (a thumbnail is plenty to judge darkness and flatness, and it is
already converted). Luma is BT.601 from BGR, 0-255.
"""

from __future__ import annotations

import cv2
import numpy as np

from app.core.specs import BlackFrameSpec


def is_blank(image_bgr: np.ndarray, rule: BlackFrameSpec) -> bool:
    """True when more than ``max_dark_ratio`` of pixels are darker than ``black_level``, or the
    frame is nearly uniform (luma std-dev below ``min_stddev``: a fade, a title card colour)."""
    gray = cv2.cvtColor(image_bgr, cv2.COLOR_BGR2GRAY) if image_bgr.ndim == 3 else image_bgr
    if gray.size == 0:
        return True
    dark = float(np.count_nonzero(gray < rule.black_level)) / gray.size
    if dark > rule.max_dark_ratio:
        return True
    return float(gray.std()) < rule.min_stddev
