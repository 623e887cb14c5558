"""``python -m bench.sync``: one 1080p frame by synchronous MPS ``SubmitSnapshotJob`` through the
official classic SDK, side by side with the ffmpeg CLI taking the same frame from the same URL.

The openmps side is the whole path a migrating MPS client meets: the SDK signs and sends the call
-> the API (signature, replay and throttle checks, submit) -> the job store and the pipeline's
Celery queue on a real redis-server -> a real worker process reading the object from an S3 server
(moto, over HTTP, by presigned URL and range requests) -> decode, JPEG encode, upload -> the API
sees the job finished and answers. The peer is ``ffmpeg -ss T -i <presigned URL> -frames:v 1``
writing a local JPEG (no upload). Rounds are interleaved (SDK, ffmpeg, SDK, ...) after one warm-up
round of each, so load from other processes hits both alike. The frame is the ``exact1`` one of
``bench.run`` (70% of the clip + 0.48 s: not a key frame, so both must decode from the one before).
Prints a table of medians and the ratio, then one ``SUMMARY name=value ...`` line.
``BENCH_QUICK=1`` uses the 20-s input and fewer rounds.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
from aliyunsdkcore.client import AcsClient
from aliyunsdkmts.request.v20140618.SubmitSnapshotJobRequest import SubmitSnapshotJobRequest

from app.settings import Settings
from app.storage.grants import RedisGrantRepository
from app.storage.secretbox import generate_key
from app.web import create_app
from app.wiring import build_services, ensure_default_pipeline
from bench.inputs import ensure
from tests.servers import RedisServer, S3Server, serve_wsgi
from tests.workerproc import WorkerProcess
from workers.frames.probe import open_input

QUICK = os.environ.get("BENCH_QUICK") == "1"
ROUNDS = 3 if QUICK else 7
FF = shutil.which("ffmpeg") or "ffmpeg"
AK, SK = "benchAccessKeyId", "benchAccessKeySecret"


def ffmpeg_frame(url: str, t_ms: float, out: Path) -> None:
    subprocess.run(
        [
            FF,
            "-v",
            "error",
            "-nostdin",
            "-y",
            "-ss",
            f"{t_ms / 1000:.3f}",
            "-i",
            url,
            "-frames:v",
            "1",
            "-q:v",
            "2",
            str(out),
        ],
        check=True,
    )


def decode(data: bytes) -> np.ndarray:
    img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if img is None:
        raise RuntimeError("not an image")
    return img


def main() -> int:
    inp = ensure("a", QUICK)
    opened = open_input(str(inp.path), max_frame_pixels=8192 * 8192)
    duration = opened.index.table.duration_ms
    opened.close()
    t_ms = 0.7 * duration + 480
    with tempfile.TemporaryDirectory(prefix="openmps-bench-sync-") as tmp_dir:
        tmp = Path(tmp_dir)
        redis_server, s3 = RedisServer(tmp / "redis"), S3Server()
        redis_server.start()
        s3.start()
        worker = None
        server = None
        try:
            settings = Settings(
                redis_url=redis_server.url,
                data_dir=tmp / "data",
                storage="s3",
                s3_endpoint=s3.endpoint,
                s3_access_key=s3.access_key,
                s3_secret_key=s3.secret_key,
                s3_region=s3.region,
                throttle_rate=0.0,
                secret_keys=(generate_key(),),  # the settings require one: secrets at rest are sealed
            )
            services = build_services(settings)
            ensure_default_pipeline(services)
            for bucket in ("media", "out"):
                services.objects.make_bucket(bucket)
            services.objects.put("media", inp.path.name, inp.path.read_bytes(), "video/mp4")
            services.credentials.create("bench", key_id=AK, secret=SK)
            grants = RedisGrantRepository(services.redis)
            grants.grant("bench", "media", read=True, write=False)
            grants.grant("bench", "out", read=True, write=True)
            worker = WorkerProcess(settings, tmp, concurrency=1).start()
            server, _ = serve_wsgi(create_app(settings, services))
            client = AcsClient(AK, SK, "cn-hangzhou")
            client.add_endpoint("cn-hangzhou", "Mts", f"127.0.0.1:{server.server_port}")
            url = services.objects.media_locator("media", inp.path.name)  # the worker reads this URL too

            def sdk(n: int) -> None:
                req = SubmitSnapshotJobRequest()
                req.set_Input(json.dumps({"Bucket": "media", "Location": "oss-local", "Object": inp.path.name}))
                req.set_SnapshotConfig(
                    json.dumps({"OutputFile": {"Bucket": "out", "Object": f"bench/sync-{n}.jpg"}, "Time": str(t_ms)})
                )
                job = json.loads(client.do_action_with_exception(req))["SnapshotJob"]
                if job["State"] != "Success":
                    raise RuntimeError(f"sync job did not succeed: {job}")

            times: dict[str, list[float]] = {"sdk": [], "ffmpeg": []}
            for n in range(ROUNDS + 1):  # round 0 warms both up and is not counted
                for name in times:
                    t0 = time.perf_counter()
                    if name == "sdk":
                        sdk(n)
                    else:
                        ffmpeg_frame(url, t_ms, tmp / f"ff-{n}.jpg")
                    if n:
                        times[name].append(time.perf_counter() - t0)
            ours = decode(services.objects.get("out", f"bench/sync-{ROUNDS}.jpg"))
            theirs = decode((tmp / f"ff-{ROUNDS}.jpg").read_bytes())
            diff = float(np.abs(ours.astype(np.int16) - theirs.astype(np.int16)).mean())
        finally:
            if server is not None:
                server.shutdown()
                server.server_close()
            if worker is not None:
                worker.stop()
            s3.stop()
            redis_server.stop()
    med = {k: statistics.median(v) for k, v in times.items()}
    ratio = med["sdk"] / med["ffmpeg"]
    size_mb = inp.path.stat().st_size / 1e6
    print(f"\ninput: {inp.label} ({size_mb:.0f} MB) in S3 (moto), frame at {t_ms:.0f} ms, {ROUNDS} rounds")
    print("| method | median s | min s | max s |")
    print("|---|---|---|---|")
    labels = {
        "sdk": "sync SubmitSnapshotJob (classic SDK -> API -> queue -> worker -> S3 upload)",
        "ffmpeg": "ffmpeg -ss T -i <presigned URL> -frames:v 1 (local file)",
    }
    for name, values in times.items():
        print(f"| {labels[name]} | {med[name]:.3f} | {min(values):.3f} | {max(values):.3f} |")
    print(f"\nratio sync/ffmpeg: {ratio:.2f} (target <= 1.5); mean abs pixel difference of the two images: {diff:.2f}")
    print(
        f"SUMMARY input={inp.name}_1080p{'_quick' if QUICK else ''} sync_s={med['sdk']:.3f} "
        f"ffmpeg_s={med['ffmpeg']:.3f} sync_vs_ffmpeg={ratio:.3f} pixel_diff={diff:.2f} rounds={ROUNDS}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
