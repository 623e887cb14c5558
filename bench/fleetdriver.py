"""The fleet benchmark's driver, run by ``bench/fleet.py`` inside the services namespace:
``python -m bench.fleetdriver setup INPUT`` | ``run HOSTS JOBS TAG``. Prints one ``RESULT {json}``.

``run`` waits until HOSTS worker hosts consume the default pipeline's queue, submits JOBS jobs
through ``SnapshotService.submit`` (what every API dialect calls), waits for them to end, and
checks the job store and the output bucket (see ``bench/fleet.py`` for lost and duplicates).
"""

from __future__ import annotations

import json
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import redis

from app.core.pipelines import DEFAULT_PIPELINE_ID, queue_name
from app.core.service import SubmitRequest
from app.core.specs import ObjectRef, OutputSize, OutputTarget, Series, SnapshotSpec
from app.core.states import JobState
from app.settings import Settings
from app.storage import keys
from app.storage.grants import RedisGrantRepository
from app.wiring import build_services, ensure_default_pipeline
from bench.fleet import BUCKET, FRAMES, INPUT_KEY

TENANT = "fleet"
WAIT_HOSTS_S = 120.0
WAIT_JOBS_S = 300.0


def _wait(probe: Any, what: str, timeout: float) -> Any:
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            got = probe()
            if got:
                return got
        except Exception as exc:  # not up yet
            last = exc
        time.sleep(0.2)
    raise SystemExit(f"{what} not ready after {timeout:.0f} s ({last})")


def setup(video: Path) -> dict[str, Any]:
    settings = Settings.from_env()
    _wait(lambda: redis.Redis.from_url(settings.redis_url).ping(), "redis", 30)
    services = build_services(settings)
    _wait(lambda: services.objects.bucket_exists(BUCKET) or services.objects.make_bucket(BUCKET) or True, "S3", 30)
    services.objects.put(BUCKET, INPUT_KEY, video.read_bytes(), "video/mp4")
    RedisGrantRepository(services.redis).grant(TENANT, BUCKET, read=True, write=True)  # else every job is a 403
    ensure_default_pipeline(services)
    return {"ok": True}


def run_round(hosts: int, jobs: int, tag: str) -> dict[str, Any]:
    settings = Settings.from_env()
    services = build_services(settings)
    queue = queue_name(DEFAULT_PIPELINE_ID)

    def consuming() -> bool:
        active = services.celery.control.inspect(timeout=1.0).active_queues() or {}
        return sum(1 for qs in active.values() if any(q["name"] == queue for q in qs)) >= hosts

    _wait(consuming, f"{hosts} worker host(s)", WAIT_HOSTS_S)
    spec = SnapshotSpec(
        ObjectRef(BUCKET, INPUT_KEY),
        Series(200, 0.8, FRAMES),
        OutputTarget(BUCKET, f"fleet/{tag}/{{job_id}}/{{index:5}}.jpg"),
        size=OutputSize(width=160),
    )
    ids = [services.snapshots.submit(TENANT, SubmitRequest(spec=spec)).id for _ in range(jobs)]
    deadline = time.monotonic() + WAIT_JOBS_S
    while time.monotonic() < deadline:
        states = [j.state if j else None for j in services.jobs.get_many(ids)]
        if all(s is not None and s.is_terminal for s in states):
            break
        time.sleep(0.1)
    done = [j for j in services.jobs.get_many(ids) if j is not None]
    succeeded = [j for j in done if j.state is JobState.SUCCEEDED]
    created = min(j.created_at.timestamp() for j in done if j.created_at)
    finished = max((j.finished_at.timestamp() for j in succeeded if j.finished_at), default=created)
    expected = {spec.output.key_for(j, n) for j in ids for n in range(1, FRAMES + 1)}
    stored = set(services.objects.list_keys(BUCKET, prefix=f"fleet/{tag}/"))
    missing_outputs = {k.split("/")[2] for k in expected - stored}
    lost = len({j.id for j in done if j.state is not JobState.SUCCEEDED} | missing_outputs) + (jobs - len(done))
    extra_attempts = sum(max(0, j.attempts - 1) for j in done)
    # The start guard records the attempt's worker as "hostname:pid"; hostnames are hostN@fleet.
    per_host = Counter((services.redis.hget(keys.job(j), "worker") or "?").split("@")[0] for j in ids)
    seconds = finished - created
    return {
        "hosts": hosts,
        "jobs": jobs,
        "seconds": seconds,
        "jobs_per_s": len(succeeded) / seconds if seconds > 0 else 0.0,
        "lost": lost,
        "duplicates": extra_attempts + len(stored - expected),
        "per_host": dict(sorted(per_host.items())),
        "states": dict(Counter(j.state.value for j in done)),
    }


def main(argv: list[str]) -> int:
    if argv[0] == "setup":
        result = setup(Path(argv[1]))
    else:
        result = run_round(int(argv[1]), int(argv[2]), argv[3])
    print("RESULT " + json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
