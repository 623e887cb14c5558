"""Optional NVDEC decode through PyNvVideoCodec, behind the same ``FrameDecoder`` Protocol.

PyNvVideoCodec is imported lazily, here and only here: without an NVIDIA driver its import raises
``RuntimeError`` ("Failed to load NVENC library"), not ``ImportError`` (docs/dependency-notes.md §5), and
the CPU image must not pay for it. ``open_gpu_decoder`` returns None plus the reason when the GPU
path is unavailable; the pipeline then decodes on the CPU and records the reason in the manifest.

Frame lookup uses the decoder's own frame numbering (presentation order, 0-based), which is the
frame table's numbering; timestamps are taken from the table.
"""

from __future__ import annotations

import io
import logging
from typing import Any

import cv2
import numpy as np

from app.core.errors import FailureCode, JobFailure
from app.core.specs import OutputSize
from workers.frames.capture import Budget, Captured, displayed, rotate_upright
from workers.frames.encode import output_size, resize
from workers.frames.plan import FrameTable

log = logging.getLogger(__name__)


def load_nvcodec() -> tuple[Any | None, str]:
    """(module, "") or (None, why not)."""
    try:
        import PyNvVideoCodec as nvc  # noqa: PLC0415 - lazy on purpose: raises RuntimeError without a driver
    except (ImportError, RuntimeError, OSError) as exc:
        return None, f"PyNvVideoCodec unavailable ({type(exc).__name__}: {exc})"
    return nvc, ""


class GpuDecoder:
    """``source`` is a path or a file object (a URL's ``RangeReader``). A file object is handed
    over: ``close`` closes it, once the decoder that reads it is dropped."""

    name = "gpu"

    def __init__(self, nvc: Any, source: Any, table: FrameTable, rotation: int, budget: Budget) -> None:
        self.table = table
        self._source = source
        self._rotation = rotation
        self._budget = budget
        self.position: int | None = None
        try:
            self._dec = nvc.SimpleDecoder(
                source, gpu_id=0, use_device_memory=False, output_color_type=nvc.OutputColorType.RGB
            )
        except Exception as exc:  # the SDK raises bare RuntimeErrors for unsupported input
            raise JobFailure(FailureCode.UNSUPPORTED_CODEC, f"NVDEC cannot decode the input: {exc}") from exc

    def _frame(self, index: int, size: OutputSize) -> Captured:
        self._budget.tick()
        try:
            raw = self._dec[index]
        except Exception as exc:
            raise JobFailure(FailureCode.INPUT_UNREADABLE, f"NVDEC failed on frame {index}: {exc}") from exc
        rgb = np.asarray(np.from_dlpack(raw) if hasattr(raw, "__dlpack__") else raw)
        if rgb.ndim == 3 and rgb.shape[0] == 3:  # planar CHW -> HWC
            rgb = np.transpose(rgb, (1, 2, 0))
        bgr = cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2BGR)
        h, w = bgr.shape[:2]
        src_w, src_h = displayed(w, h, self._rotation)
        out_w, out_h = output_size(src_w, src_h, size)
        conv_w, conv_h = displayed(out_w, out_h, self._rotation)
        image = rotate_upright(resize(bgr, conv_w, conv_h), self._rotation)
        self.position = index
        return Captured(image, index, self.table.pts_ms[index], src_w, src_h)

    def read(self, frame: int, seek_to: int | None, size: OutputSize) -> Captured:
        return self._frame(frame, size)

    def read_next(self, size: OutputSize) -> Captured | None:
        nxt = 0 if self.position is None else self.position + 1
        return self._frame(nxt, size) if nxt < self.table.frame_count else None

    def close(self) -> None:
        self._dec = None
        if isinstance(self._source, io.IOBase):
            self._source.close()  # idempotent: a second close does nothing


def open_gpu_decoder(source: Any, table: FrameTable, rotation: int, budget: Budget) -> tuple[GpuDecoder | None, str]:
    nvc, why = load_nvcodec()
    if nvc is None:
        log.warning("GPU decode requested but unavailable, decoding on the CPU: %s", why)
        return None, why
    return GpuDecoder(nvc, source, table, rotation, budget), ""
