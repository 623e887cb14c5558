"""``python -m bench.gpu``: the GPU (NVDEC) path against the CPU path, where a GPU exists.

Without a usable GPU (no PyNvVideoCodec, or its import fails for want of a driver) it prints
"no GPU" with the reason and exits 0, so it runs everywhere.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

from app.core.jobs import SnapshotJob
from app.core.specs import Average, ObjectRef, OutputTarget, SingleTime, SnapshotSpec, Timing
from app.storage.objects import LocalObjectStore
from bench.inputs import ensure
from workers.frames.gpu import load_nvcodec
from workers.pipeline import MediaLimits, run_snapshot

LIMITS = MediaLimits(max_frame_pixels=8192 * 8192, max_decoded_frames=10_000_000, deadline=None)


def main() -> int:
    nvc, why = load_nvcodec()
    if nvc is None:
        print(f"no GPU: {why}")
        print("SUMMARY gpu=none")
        return 0
    inp = ensure("a", quick=True)
    with tempfile.TemporaryDirectory(prefix="openmps-gpu-") as tmp:
        root = Path(tmp)
        (root / "in").mkdir()
        (root / "in" / inp.path.name).symlink_to(inp.path)
        store = LocalObjectStore(root)
        store.make_bucket("out")
        results: dict[str, float] = {}
        for wl, timing in (("exact1", SingleTime(14_000)), ("even100", Average(100))):
            for decoder in ("pyav", "gpu"):
                job = _job(inp.path.name, timing)
                run_snapshot(job, store, limits=LIMITS, decoder=decoder)  # warm-up
                runs = []
                for _ in range(3):
                    t0 = time.perf_counter()
                    m = run_snapshot(job, store, limits=LIMITS, decoder=decoder)
                    runs.append(time.perf_counter() - t0)
                results[f"{wl}_{decoder}"] = statistics.median(runs)
                print(f"{wl:8s} {decoder:5s} {results[f'{wl}_{decoder}']:.3f}s  decoder={m.decoder}")
    print("SUMMARY " + " ".join(f"{k}={v:.3f}" for k, v in results.items()))
    return 0


def _job(key: str, timing: Timing) -> SnapshotJob:
    spec = SnapshotSpec(ObjectRef("in", key), timing, OutputTarget("out", "g/{job_id}/{index:5}.jpg"))
    return SnapshotJob(id="gpu", tenant="b", pipeline_id="b", spec=spec)


if __name__ == "__main__":
    sys.exit(main())
