"""``python -m bench.store`` (``make bench-store``): the job store at 100 and 100 000 queued jobs.

Two private redis-servers (configured as deploy/ runs Redis), one filled with 100 queued jobs
and one with 100 000, across 10 pipelines, through the repository's own create script (what
a submission stores; nothing dispatched). Then, in interleaved rounds (small store, large
store, small, ...), the client-observed time of what the API and the workers do against the
store: list a page (newest first, a later page by token, by state, by pipeline, by pipeline
*and* state), get a job, a pipeline's queue depth, dispatch into a free window slot, the start
guard and the finish of a job, and the reconcile pass over the 10 pipelines. While measuring,
every job taken out of the queue is replaced by a new one, so both stores stay at their size.

Memory: Redis bytes per finished job = ``MEMORY USAGE`` of the job's hash plus its share of
each index it stays in (the tenant's, the tenant-and-state's and the tenant-and-pipeline's
sorted sets: the set's ``MEMORY USAGE`` / its size, in the 100 000-job store), averaged over the
jobs the benchmark finished (a single-frame and a 10-frame job with their manifests). Target
<= 2 KB. Also the growth of ``used_memory`` per queued job between the two stores.

Environment: ``BENCH_STORE_LARGE`` (100000), ``BENCH_STORE_ROUNDS`` (3), ``BENCH_STORE_SAMPLES``
(20 per operation per round).
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import redis

from app.core.jobs import Manifest, OutputImage, SnapshotJob
from app.core.pipelines import Pipeline
from app.core.ports import JobQuery
from app.core.service import SubmitRequest, request_fingerprint
from app.core.specs import ObjectRef, OutputSize, OutputTarget, Series, SingleTime, SnapshotSpec, validate_spec
from app.core.states import JobState
from app.storage import keys
from app.storage.jobs import RedisJobRepository, StartOutcome, StartResult, encode_page_token
from app.storage.pipelines import RedisPipelineRepository
from app.storage.scheduler import RedisScheduler
from bench.procs import Procs

SMALL = 100
LARGE = int(os.environ.get("BENCH_STORE_LARGE", "100000"))
ROUNDS = int(os.environ.get("BENCH_STORE_ROUNDS", "3"))
SAMPLES = int(os.environ.get("BENCH_STORE_SAMPLES", "20"))
PIPELINES = [f"p{i:02d}" for i in range(10)]
TENANT = "bench"
LEASE_MS = 15_000


def spec(frames: int) -> SnapshotSpec:
    timing = SingleTime(1000) if frames == 1 else Series(0, 2.0, frames)
    key = "snapshots/{job_id}/{index:5}.jpg"
    return validate_spec(
        SnapshotSpec(ObjectRef("media", "in/video.mp4"), timing, OutputTarget("media", key), size=OutputSize(width=320))
    )


def manifest(job: SnapshotJob, frames: int) -> Manifest:
    """What a worker records for a typical job: one entry per image, the source, the decoder."""
    images = [
        OutputImage(
            index=n,
            requested_ms=1000.0 + 2000.0 * (n - 1),
            actual_ms=1000.0 + 2000.0 * (n - 1),
            key=job.spec.output.key_for(job.id, n),
            width=320,
            height=180,
            bytes=14_000 + n,
        )
        for n in range(1, frames + 1)
    ]
    return Manifest(images=images, source_duration_ms=60_000.0, source_width=1920, source_height=1080, decoder="pyav")


@dataclass
class Store:
    name: str
    size: int
    client: redis.Redis
    jobs: RedisJobRepository
    scheduler: RedisScheduler
    seq: int = 0
    finished: list[tuple[str, int]] = field(default_factory=list)  # (job id, images in its manifest)
    times: dict[str, list[float]] = field(default_factory=dict)

    def new_job(self, pipeline_id: str, frames: int = 1) -> SnapshotJob:
        self.seq += 1
        s = spec(frames)
        job = SnapshotJob(
            id=f"{self.name}-{self.seq:07d}",
            tenant=TENANT,
            pipeline_id=pipeline_id,
            spec=s,
            created_at=datetime.now(tz=UTC),
            progress_total=frames,
        )
        return self.jobs.create(job, request_fingerprint(TENANT, SubmitRequest(spec=s, pipeline_id=pipeline_id)))

    def fill(self) -> float:
        """Queue ``size`` jobs round-robin over the pipelines (two client threads); jobs/s."""
        t0 = time.perf_counter()
        per_thread = [self.size // 2, self.size - self.size // 2]
        lock = threading.Lock()

        def make(n: int) -> None:
            for _ in range(n):
                with lock:
                    self.seq += 1
                    seq = self.seq
                s = spec(1)
                pid = PIPELINES[seq % len(PIPELINES)]
                job = SnapshotJob(
                    id=f"{self.name}-{seq:07d}",
                    tenant=TENANT,
                    pipeline_id=pid,
                    spec=s,
                    created_at=datetime.now(tz=UTC),
                    progress_total=1,
                )
                self.jobs.create(job, request_fingerprint(TENANT, SubmitRequest(spec=s, pipeline_id=pid)))

        threads = [threading.Thread(target=make, args=(n,)) for n in per_thread]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        return self.size / (time.perf_counter() - t0)

    def time(self, op: str, fn: Callable[[], object]) -> None:
        t0 = time.perf_counter()
        fn()
        self.times.setdefault(op, []).append(time.perf_counter() - t0)


def open_store(procs: Procs, name: str, size: int) -> Store:
    client = redis.Redis.from_url(procs.redis(f"redis-{name}"), decode_responses=True)
    pipelines = RedisPipelineRepository(client)
    for pid in PIPELINES:
        pipelines.create(Pipeline(id=pid, name=pid))
    scheduler = RedisScheduler(client, lambda job_id, pipeline_id: None, window=2, queue_length=None)
    # No refill callback: the benchmark times dispatch on its own.
    return Store(name, size, client, RedisJobRepository(client), scheduler)


def one_round(st: Store, rnd: int) -> None:
    """SAMPLES of each operation, the pipelines taken in turn."""
    jobs, sched = st.jobs, st.scheduler
    some_id = f"{st.name}-{max(1, st.size // 2):07d}"
    mid = jobs.get(some_id)
    middle_token = encode_page_token(int(mid.created_at.timestamp() * 1000), mid.id)  # type: ignore[union-attr]
    for k in range(SAMPLES):
        pid = PIPELINES[(rnd * SAMPLES + k) % len(PIPELINES)]
        # Control: a round trip that does no work, so the table shows the noise floor and what a
        # larger Redis process costs per command anyway (a bigger heap, colder caches).
        st.time("control: PING", st.client.ping)
        st.time("list page 1 (20, newest first)", lambda: jobs.list(TENANT, JobQuery(limit=20)))
        st.time(
            "list a middle page (page_token)", lambda: jobs.list(TENANT, JobQuery(limit=20, page_token=middle_token))
        )
        st.time("list state=submitted", lambda: jobs.list(TENANT, JobQuery(limit=20, state=JobState.SUBMITTED)))
        st.time("list pipeline_id=p", lambda p=pid: jobs.list(TENANT, JobQuery(limit=20, pipeline_id=p)))
        st.time(
            "list pipeline_id=p & state=succeeded",
            lambda p=pid: jobs.list(TENANT, JobQuery(limit=20, pipeline_id=p, state=JobState.SUCCEEDED)),
        )
        jid = f"{st.name}-{1 + (k * 7919) % st.size:07d}"
        st.time("get a job", lambda j=jid: jobs.find(j))
        st.time("queue depth of a pipeline", lambda p=pid: sched.depth(p))
        # A worker's cycle on this pipeline: dispatch fills the window; start takes the oldest
        # dispatched job (its slot frees); finish records it; a new job keeps the size constant.
        st.time("dispatch (window slot free)", lambda p=pid: sched.dispatch(p))
        job_id = st.client.zrange(keys.dispatched(pid), 0, 0)[0]
        started: list[StartResult] = []
        st.time(
            "start guard",
            lambda j=job_id, out=started: out.append(
                jobs.start(j, worker="bench", lease_ttl_ms=LEASE_MS, max_attempts=3)
            ),
        )
        assert started[0].outcome is StartOutcome.STARTED, started
        frames = 10 if k % 2 else 1
        done = manifest(jobs.get(job_id), frames)
        lease = started[0].lease_token
        st.time(
            "finish (succeeded, manifest)",
            lambda j=job_id, m=done, t=lease: jobs.finish(j, JobState.SUCCEEDED, lease_token=t, manifest=m),
        )
        st.finished.append((job_id, frames))
        st.new_job(pid)
    for _ in range(max(1, SAMPLES // 2)):
        st.time("reconcile pass (10 pipelines)", lambda: sched.reconcile(PIPELINES))


def bytes_per_finished_job(r: redis.Redis, job_ids: list[str]) -> tuple[float, float, dict[str, float]]:
    """(average hash bytes, index bytes, per-index bytes per entry) of finished jobs."""

    def per_entry(key: str) -> float:
        n = int(r.zcard(key))
        return (int(r.memory_usage(key, samples=0) or 0) / n) if n else 0.0

    big = keys.tenant_jobs(TENANT)
    per = {
        "tenant index": per_entry(big),
        # Same member and score shape as the tenant index; in a store of many finished jobs it is
        # as large, so its per-entry cost is the big set's (here it holds only the few finished).
        "tenant+state index": per_entry(big),
        "tenant+pipeline index": per_entry(keys.tenant_pipeline_jobs(TENANT, PIPELINES[0])),
    }
    hashes = [int(r.memory_usage(keys.job(j), samples=0) or 0) for j in job_ids]
    return statistics.mean(hashes), sum(per.values()), per


PACKED = 2048


def listpack_hash_bytes(r: redis.Redis, job_ids: list[str]) -> float:
    """The same hashes with ``hash-max-listpack-value`` raised from Redis's 64 bytes: the spec
    and manifest fields are longer than 64 bytes, which turns every job hash into a hash table
    (about twice the bytes). Rewritten into a scratch key, measured, deleted."""
    old = r.config_get("hash-max-listpack-value")["hash-max-listpack-value"]
    r.config_set("hash-max-listpack-value", PACKED)
    try:
        sizes = []
        for j in job_ids:
            r.delete("bench:scratch")
            r.hset("bench:scratch", mapping=r.hgetall(keys.job(j)))
            sizes.append(int(r.memory_usage("bench:scratch", samples=0) or 0))
        r.delete("bench:scratch")
        return statistics.mean(sizes)
    finally:
        r.config_set("hash-max-listpack-value", old)


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="openmps-store-") as tmp, Procs(Path(tmp)) as procs:
        small = open_store(procs, "small", SMALL)
        large = open_store(procs, "large", LARGE)
        for st in (small, large):
            rate = st.fill()
            print(f"{st.name}: {st.size} queued jobs in {len(PIPELINES)} pipelines ({rate:.0f} creates/s)", flush=True)
        used = {st.name: int(st.client.info("memory")["used_memory"]) for st in (small, large)}
        for rnd in range(ROUNDS):
            for st in (small, large):
                one_round(st, rnd)
            print(f"round {rnd + 1} done", flush=True)
        for st in (small, large):
            queued = sum(
                int(st.client.zcard(keys.pending(p))) + int(st.client.zcard(keys.dispatched(p))) for p in PIPELINES
            )
            assert queued == st.size, f"{st.name} holds {queued} queued jobs, not {st.size}"
        h1, i1, per = bytes_per_finished_job(large.client, [j for j, n in large.finished if n == 1])
        h10, _, _ = bytes_per_finished_job(large.client, [j for j, n in large.finished if n == 10])
        b1, b10 = h1 + i1, h10 + i1
        packed = {n: listpack_hash_bytes(large.client, [j for j, m in large.finished if m == n]) for n in (1, 10)}
        per_queued = (used["large"] - used["small"]) / (LARGE - SMALL)

    print()
    print(f"| operation | {SMALL} queued: median ms | p90 ms | {LARGE} queued: median ms | p90 ms | large / small |")
    print("|---|---|---|---|---|---|")
    for op in small.times:
        a, b = sorted(small.times[op]), sorted(large.times[op])
        ma, mb = statistics.median(a) * 1e3, statistics.median(b) * 1e3
        pa, pb = a[int(0.9 * (len(a) - 1))] * 1e3, b[int(0.9 * (len(b) - 1))] * 1e3
        print(f"| {op} | {ma:.3f} | {pa:.3f} | {mb:.3f} | {pb:.3f} | {mb / ma:.2f} |")
    print()
    print("| Redis bytes per finished job | hash | indexes | total | target |")
    print("|---|---|---|---|---|")
    print(f"| single frame (1 image in the manifest) | {h1:.0f} | {i1:.0f} | {b1:.0f} | <= 2048 |")
    print(f"| series of 10 (10 images) | {h10:.0f} | {i1:.0f} | {b10:.0f} | <= 2048 |")
    for n, h in packed.items():
        print(
            f"| {n} image(s), Redis `hash-max-listpack-value {PACKED}` | {h:.0f} | {i1:.0f} | {h + i1:.0f} | <= 2048 |"
        )
    print("index bytes per entry: " + ", ".join(f"{k} {v:.0f}" for k, v in per.items()))
    print(f"used_memory growth per queued job (small -> large store): {per_queued:.0f} bytes")
    worst = max(statistics.median(large.times[op]) / statistics.median(small.times[op]) for op in small.times)
    summary = {
        **{
            f"{slug}_large_vs_small": statistics.median(large.times[op]) / statistics.median(small.times[op])
            for slug, op in [
                ("list", "list page 1 (20, newest first)"),
                ("get", "get a job"),
                ("dispatch", "dispatch (window slot free)"),
                ("reconcile", "reconcile pass (10 pipelines)"),
            ]
        },
        "worst_large_vs_small": worst,
        "bytes_per_finished_job": b1,
        "bytes_per_finished_job_10_images": b10,
        "bytes_per_queued_job": per_queued,
        "bytes_per_finished_job_listpack": packed[1] + i1,
    }
    print("SUMMARY " + " ".join(f"{k}={v:.2f}" for k, v in summary.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
