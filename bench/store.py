"""``python -m bench.store`` (``make bench-store``): the job store at 100 and 100 000 queued jobs.

Two private redis-servers (configured as deploy/ runs Redis), one filled with 100 queued jobs
and one with 100 000, across 10 pipelines, through the repository's own create script (what
a submission stores; nothing dispatched). Then, in interleaved rounds (small store, large
store, small, ...), the client-observed time of what the API and the workers do against the
store: list a page (newest first, a later page by token, by state, by pipeline, by pipeline
*and* state), get a job, a pipeline's queue depth, dispatch into a free window slot, the start
guard and the finish of a job, and the reconcile pass over the 10 pipelines. While measuring,
every job taken out of the queue is replaced by a new one, so both stores stay at their size.
Beside the client's time, the server's: the microseconds Redis itself spent on the commands
and scripts of the operation (its SLOWLOG with a 0 threshold, on these private servers only),
which no client, network or machine noise blurs: that is the column that shows an O(n) cost.

Memory: Redis bytes per finished job, for the jobs the benchmark finished (one image, a
100-image series, a 100-cell sprite, each with its outputs recorded as a worker records them) in
the 100 000-job store: ``MEMORY USAGE`` of the job's hash and written set plus its share of each
index it stays in (tenant, tenant+state, tenant+pipeline, tenant+pipeline+state and the retention
expiry set: a set's ``MEMORY USAGE`` / its size, taken on a set of that shape with thousands of
members). Target <= 2 KB for a one-image job, on Redis's default configuration. Beside it, the
same job's values one field each, JSON as JSON (the layout before ``app/storage/jobhash.py``),
written to a scratch key. Also the growth of ``used_memory`` per queued job between the two stores.

Environment: ``BENCH_STORE_LARGE`` (100000), ``BENCH_STORE_ROUNDS`` (3), ``BENCH_STORE_SAMPLES``
(21 per operation per round).
"""

from __future__ import annotations

import json
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

from app.core.jobs import Manifest, OutputImage, SnapshotJob, SpriteSheet
from app.core.pipelines import Pipeline
from app.core.ports import JobQuery
from app.core.service import SubmitRequest, request_fingerprint
from app.core.specs import (
    ObjectRef,
    OutputSize,
    OutputTarget,
    Series,
    SingleTime,
    SnapshotSpec,
    SpriteSpec,
    validate_spec,
)
from app.core.states import JobState
from app.storage import keys
from app.storage.jobhash import JSON_ATTRIBUTES, attributes, unpack_json
from app.storage.jobs import RedisJobRepository, StartOutcome, StartResult, encode_page_token
from app.storage.pipelines import RedisPipelineRepository
from app.storage.scheduler import RedisScheduler
from bench.procs import Procs

SMALL = 100
LARGE = int(os.environ.get("BENCH_STORE_LARGE", "100000"))
ROUNDS = int(os.environ.get("BENCH_STORE_ROUNDS", "3"))
SAMPLES = int(os.environ.get("BENCH_STORE_SAMPLES", "21"))
PIPELINES = [f"p{i:02d}" for i in range(10)]
TENANT = "bench"
LEASE_MS = 15_000


SHAPES = ("single image", "100-image series", "100-cell sprite")  # what the finished jobs are, in turn


def spec(frames: int, sprite: bool = False) -> SnapshotSpec:
    timing = SingleTime(1000) if frames == 1 else Series(0, 2.0, frames)
    key = "snapshots/{job_id}/{index:5}.jpg"
    sheets = SpriteSpec(OutputTarget("media", "sprites/{job_id}/{sheet:5}.jpg")) if sprite else None
    return validate_spec(
        SnapshotSpec(
            ObjectRef("media", "in/video.mp4"),
            timing,
            OutputTarget("media", key),
            size=OutputSize(width=320),
            sprite=sheets,
        )
    )


def manifest(job: SnapshotJob, frames: int) -> Manifest:
    """What a worker records for a typical job: one entry per image, the sheets of a sprite job and
    the files beside them, the source, the decoder."""
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
    done = Manifest(images=images, source_duration_ms=60_000.0, source_width=1920, source_height=1080, decoder="pyav")
    if job.spec.sprite is not None:
        done.sheets = [SpriteSheet(1, f"sprites/{job.id}/00001.jpg", 3200, 1800, 420_000, frames)]
        done.storyboard_key, done.index_key = f"sprites/{job.id}/sprite.vtt", f"sprites/{job.id}/sprite.json"
    return done


def outputs(job: SnapshotJob, done: Manifest) -> list[str]:
    """Every object the job wrote (its keys in the "media" bucket), as the worker records them."""
    names = [i.key for i in done.images] + [s.key for s in done.sheets]
    return names + [k for k in (done.storyboard_key, done.index_key) if k]


@dataclass
class Store:
    name: str
    size: int
    client: redis.Redis
    jobs: RedisJobRepository
    scheduler: RedisScheduler
    seq: int = 0
    times: dict[str, list[float]] = field(default_factory=dict)
    server_us: dict[str, list[float]] = field(default_factory=dict)

    def new_job(self, pipeline_id: str, frames: int = 1, sprite: bool = False) -> SnapshotJob:
        self.seq += 1
        s = spec(frames, sprite)
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
        self.client.slowlog_reset()
        t0 = time.perf_counter()
        fn()
        self.times.setdefault(op, []).append(time.perf_counter() - t0)
        entries = self.client.slowlog_get(SLOWLOG_LEN)
        spent = sum(int(e["duration"]) for e in entries if not str(e["command"]).lower().startswith("slowlog"))
        self.server_us.setdefault(op, []).append(float(spent))


SLOWLOG_LEN = 10_000


def open_store(procs: Procs, name: str, size: int) -> Store:
    client = redis.Redis.from_url(procs.redis(f"redis-{name}"), decode_responses=True)
    # Measurement only (this private server's SLOWLOG records every command with its duration);
    # nothing the store relies on is configured.
    client.config_set("slowlog-log-slower-than", 0)
    client.config_set("slowlog-max-len", SLOWLOG_LEN)
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
        for name in outputs(jobs.get(job_id), done):
            jobs.record_written(job_id, "media", name)
        lease = started[0].lease_token
        st.time(
            "finish (succeeded, manifest)",
            lambda j=job_id, m=done, t=lease: jobs.finish(j, JobState.SUCCEEDED, lease_token=t, manifest=m),
        )

        st.new_job(pid)
    for _ in range(max(1, SAMPLES // 2)):
        st.time("reconcile pass (10 pipelines)", lambda: sched.reconcile(PIPELINES))


def finish_shapes(st: Store, per_shape: int) -> dict[str, list[str]]:
    """``per_shape`` finished jobs of each shape in ``st`` (not timed): created, started, every
    output recorded as written, finished with its manifest, as a worker does."""
    finished: dict[str, list[str]] = {}
    for shape in SHAPES:
        for n in range(per_shape):
            frames = 1 if shape == "single image" else 100
            job = st.new_job(PIPELINES[n % len(PIPELINES)], frames, sprite=shape == "100-cell sprite")
            started = st.jobs.start(job.id, worker="bench-host:4242", lease_ttl_ms=LEASE_MS, max_attempts=3)
            assert started.outcome is StartOutcome.STARTED, started
            done = manifest(job, frames)
            for name in outputs(job, done):
                st.jobs.record_written(job.id, "media", name)
            assert st.jobs.finish(job.id, JobState.SUCCEEDED, lease_token=started.lease_token, manifest=done)
            finished.setdefault(shape, []).append(job.id)
    return finished


def index_bytes_per_entry(r: redis.Redis) -> dict[str, float]:
    """What one more member costs each index a finished job stays in, measured on sets of that
    shape with thousands of members (as in a store holding that many finished jobs)."""

    def per_entry(key: str) -> float:
        n = int(r.zcard(key))
        return (int(r.memory_usage(key, samples=0) or 0) / n) if n else 0.0

    scratch = "bench:scratch:expiry"
    now = int(time.time() * 1000)
    r.zadd(scratch, {f"{TENANT}|{PIPELINES[i % 10]}|succeeded|large-{i:07d}": now + i for i in range(5000)})
    per = {
        "tenant": per_entry(keys.tenant_jobs(TENANT)),
        # same members and scores as the tenant's index, and as large in a store of finished jobs
        "tenant+state": per_entry(keys.tenant_jobs(TENANT)),
        "tenant+pipeline": per_entry(keys.tenant_pipeline_jobs(TENANT, PIPELINES[0])),
        "tenant+pipeline+state": per_entry(keys.tenant_pipeline_state_jobs(TENANT, PIPELINES[0], "submitted")),
        "retention expiry": per_entry(scratch),
    }
    r.delete(scratch)
    return per


def job_bytes(r: redis.Redis, job_ids: list[str]) -> dict[str, float]:
    """Average ``MEMORY USAGE`` of the jobs' hashes and written sets, and of their attributes
    rewritten one field each, JSON as JSON, into a scratch hash: the layout before
    ``app/storage/jobhash.py``, less its empty fields and its written set (kept apart then)."""
    hashes, written, plain = [], [], []
    for j in job_ids:
        hashes.append(int(r.memory_usage(keys.job(j), samples=0) or 0))
        written.append(int(r.memory_usage(keys.written(j), samples=0) or 0))
        before = attributes(r.hgetall(keys.job(j)))
        before.pop("written", None)
        for name in JSON_ATTRIBUTES:
            if name in before:
                before[name] = json.dumps(unpack_json(before[name]), separators=(",", ":"))
        r.delete("bench:scratch")
        r.hset("bench:scratch", mapping=before)
        plain.append(int(r.memory_usage("bench:scratch", samples=0) or 0))
    r.delete("bench:scratch")
    return {"hash": statistics.mean(hashes), "written": statistics.mean(written), "plain": statistics.mean(plain)}


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
        per_queued = (used["large"] - used["small"]) / (LARGE - SMALL)
        finished = finish_shapes(large, 20)
        per = index_bytes_per_entry(large.client)
        index = sum(per.values())
        sizes = {shape: job_bytes(large.client, ids) for shape, ids in finished.items()}
        total = {shape: m["hash"] + m["written"] + index for shape, m in sizes.items()}
        version = large.client.info("server")["redis_version"]
        listpack = large.client.config_get("hash-max-listpack-value")["hash-max-listpack-value"]

    print()
    print(
        f"| operation | {SMALL} queued: median ms | p90 ms | {LARGE} queued: median ms | p90 ms | large / small "
        f"| server µs, {SMALL} | server µs, {LARGE} | server large / small |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for op in small.times:
        a, b = sorted(small.times[op]), sorted(large.times[op])
        ma, mb = statistics.median(a) * 1e3, statistics.median(b) * 1e3
        pa, pb = a[int(0.9 * (len(a) - 1))] * 1e3, b[int(0.9 * (len(b) - 1))] * 1e3
        sa, sb = statistics.median(small.server_us[op]), statistics.median(large.server_us[op])
        server = f"{sb / sa:.2f}" if sa else "-"
        print(f"| {op} | {ma:.3f} | {pa:.3f} | {mb:.3f} | {pb:.3f} | {mb / ma:.2f} | {sa:.0f} | {sb:.0f} | {server} |")
    print()
    print(f"Redis {version}, hash-max-listpack-value {listpack} (the default), in the {LARGE}-job store")
    print(
        "| Redis bytes per finished job | hash | written set | indexes | total | target | hash, one field per value, plain JSON |"
    )
    print("|---|---|---|---|---|---|---|")
    for shape, m in sizes.items():
        target = "<= 2048" if shape == "single image" else "-"
        print(
            f"| {shape} | {m['hash']:.0f} | {m['written']:.0f} | {index:.0f} | {total[shape]:.0f} | {target} "
            f"| {m['plain']:.0f} |"
        )
    print("index bytes per entry: " + ", ".join(f"{k} {v:.0f}" for k, v in per.items()))
    print(f"used_memory growth per queued job (small -> large store): {per_queued:.0f} bytes")
    worst = max(statistics.median(large.times[op]) / statistics.median(small.times[op]) for op in small.times)
    summary = {
        **{
            f"{slug}_large_vs_small": statistics.median(large.times[op]) / statistics.median(small.times[op])
            for slug, op in [
                ("list", "list page 1 (20, newest first)"),
                ("list_pipeline_state", "list pipeline_id=p & state=succeeded"),
                ("get", "get a job"),
                ("dispatch", "dispatch (window slot free)"),
                ("reconcile", "reconcile pass (10 pipelines)"),
            ]
        },
        "worst_large_vs_small": worst,
        "worst_server_large_vs_small": max(
            statistics.median(large.server_us[op]) / statistics.median(small.server_us[op])
            for op in small.server_us
            if statistics.median(small.server_us[op])
        ),
        "bytes_per_finished_job": total["single image"],
        "bytes_per_finished_job_series100": total["100-image series"],
        "bytes_per_finished_job_sprite": total["100-cell sprite"],
        "bytes_per_queued_job": per_queued,
    }
    print("SUMMARY " + " ".join(f"{k}={v:.2f}" for k, v in summary.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
