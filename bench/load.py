"""``python -m bench.load`` (``make bench-load``): accepted jobs/s and latency of job submission.

Side by side in one run, under the Procfile's gunicorn configuration (read from the Procfile,
so the benchmark follows it): openmps ``POST /api/v1/jobs`` (single), ``POST /api/v1/jobs:batch``
(batch, when the endpoint answers; else the row says so), and a bare Flask endpoint returning 202
(``bench/bare.py``). A private redis-server (AOF every second, as deploy/ runs it), local object
storage holding the input, no workers running (jobs just queue), throttling off (the default of 50
requests/s per access key would measure the throttle). Load: ``wrk`` (Debian package, installed by
``make install``) with a Lua script for the POST body and the latency percentiles; a bounded
Python load generator when wrk is missing. Rounds interleave the targets (bare, single, batch,
bare, ...) so load from other processes on this shared machine hits them alike; each figure is
the median over rounds.

Accepted jobs are counted in the job store (the tenant's index before and after a round), not
from HTTP statuses (a batch answers 200 even for the jobs it refused). Each row also gives the
server's own CPU per accepted job (gunicorn master and workers, from /proc), which other load on
a shared machine moves far less than jobs/s, and the output ends with the load average.
Environment: ``BENCH_LOAD_ROUNDS`` (2), ``BENCH_LOAD_SECONDS`` (10), ``BENCH_LOAD_CONNECTIONS``
(32), ``BENCH_LOAD_THREADS`` (2), ``BENCH_LOAD_BATCH`` (100 jobs a request), ``BENCH_GUNICORN``
(other gunicorn workers/threads than the Procfile's, ``bench/procs.py``).
"""

from __future__ import annotations

import base64
import http.client
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import redis

from app.settings import Settings
from app.storage import keys
from app.storage.credentials import RedisCredentialStore
from app.storage.grants import RedisGrantRepository
from app.storage.objects import LocalObjectStore
from app.storage.secretbox import SecretBox, generate_key
from bench.procs import Procs, procfile_gunicorn_options, wait_for

ROUNDS = int(os.environ.get("BENCH_LOAD_ROUNDS", "2"))
SECONDS = int(os.environ.get("BENCH_LOAD_SECONDS", "10"))
CONNECTIONS = int(os.environ.get("BENCH_LOAD_CONNECTIONS", "32"))
THREADS = int(os.environ.get("BENCH_LOAD_THREADS", "2"))
BATCH = int(os.environ.get("BENCH_LOAD_BATCH", "100"))
TENANT = "bench"

JOB = {
    "input": {"bucket": "media", "key": "in/video.mp4"},
    "output": {"bucket": "media", "key": "snapshots/{JobId}/{Count}.jpg"},
    "snapshot": {"mode": "single", "time_ms": 1000, "width": 320},
}

LUA = """
wrk.method = "POST"
wrk.body = [==[%(body)s]==]
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "%(auth)s"
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "WRKJSON {\\"requests\\": %%d, \\"duration_us\\": %%d, \\"status\\": %%d, \\"socket\\": %%d, "
    .. "\\"p50_us\\": %%d, \\"p99_us\\": %%d, \\"max_us\\": %%d}\\n",
    summary.requests, summary.duration, e.status, e.connect + e.read + e.write + e.timeout,
    latency:percentile(50), latency:percentile(99), latency.max))
end
"""


@dataclass(frozen=True)
class Run:
    requests: int  # answered requests
    seconds: float
    non_2xx: int  # answered with another status (wrk: non-2xx/3xx)
    socket_errors: int
    p50_ms: float
    p99_ms: float
    jobs: int  # jobs the store accepted during the run (requests for the bare endpoint)
    server_cpu_s: float = 0.0  # CPU the server's processes (gunicorn master and workers) used meanwhile

    @property
    def per_s(self) -> float:
        return self.requests / self.seconds

    @property
    def jobs_per_s(self) -> float:
        return self.jobs / self.seconds

    @property
    def cpu_ms_per_job(self) -> float:
        """Server CPU per accepted job: unlike jobs/s, barely moved by other load on the machine."""
        return self.server_cpu_s * 1000 / max(1, self.jobs)


def server_cpu_s(session: int) -> float:
    """User + system CPU seconds of every live process in ``session`` (a gunicorn started by
    ``Procs``, which gives each child its own session: the master and its workers)."""
    total = 0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:  # gone meanwhile
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        if int(fields[3]) == session:  # fields[3] = session id; [11], [12] = utime, stime
            total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def wrk(url: str, body: str, auth: str, seconds: int, work: Path) -> Run:
    script = work / "post.lua"
    script.write_text(LUA % {"body": body, "auth": auth})
    out = subprocess.run(
        ["wrk", "-t", str(THREADS), "-c", str(CONNECTIONS), "-d", f"{seconds}s", "--timeout", "10s"]
        + ["-s", str(script), url],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    line = next(x for x in out.splitlines() if x.startswith("WRKJSON "))
    d = json.loads(line[len("WRKJSON ") :])
    ok = d["requests"] - d["status"]
    return Run(
        d["requests"], d["duration_us"] / 1e6, d["status"], d["socket"], d["p50_us"] / 1e3, d["p99_us"] / 1e3, ok
    )


def python_load(url: str, body: str, auth: str, seconds: int, work: Path) -> Run:
    """Fallback without wrk: CONNECTIONS keep-alive connections on threads, closed loop, bounded
    by time. Heavier per request than wrk (the generator shares the cores), so figures are lower."""
    parts = urlsplit(url)
    latencies: list[list[float]] = [[] for _ in range(CONNECTIONS)]
    bad = [0] * CONNECTIONS
    errors = [0] * CONNECTIONS
    deadline = time.monotonic() + seconds
    headers = {"Content-Type": "application/json", "Authorization": auth}

    def loop(i: int) -> None:
        conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=10)
        while time.monotonic() < deadline:
            t0 = time.perf_counter()
            try:
                conn.request("POST", parts.path, body=body, headers=headers)
                resp = conn.getresponse()
                resp.read()
            except OSError:
                errors[i] += 1
                conn.close()
                conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=10)
                continue
            latencies[i].append(time.perf_counter() - t0)
            if resp.status >= 300:
                bad[i] += 1
        conn.close()

    t0 = time.perf_counter()
    threads = [threading.Thread(target=loop, args=(i,)) for i in range(CONNECTIONS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - t0
    lat = sorted(x for per in latencies for x in per)
    n = len(lat)
    pick = (lambda q: lat[min(n - 1, int(q * n))] * 1000) if n else (lambda q: 0.0)
    return Run(n, elapsed, sum(bad), sum(errors), pick(0.5), pick(0.99), n - sum(bad))


LOAD = wrk if shutil.which("wrk") else python_load


def stored_jobs(r: redis.Redis) -> int:
    return int(r.zcard(keys.tenant_jobs(TENANT)))


def settled_jobs(r: redis.Redis) -> int:
    """The store's count once requests still in flight when the load stopped have landed."""
    last = stored_jobs(r)
    while True:
        time.sleep(0.3)
        now = stored_jobs(r)
        if now == last:
            return now
        last = now


def measure(
    name: str, url: str, body: str, auth: str, r: redis.Redis | None, work: Path, seconds: int, session: int
) -> Run:
    before = settled_jobs(r) if r is not None else 0
    cpu_before = server_cpu_s(session)
    run = LOAD(url, body, auth, seconds, work)
    jobs = settled_jobs(r) - before if r is not None else run.jobs
    cpu = server_cpu_s(session) - cpu_before
    run = Run(run.requests, run.seconds, run.non_2xx, run.socket_errors, run.p50_ms, run.p99_ms, jobs, cpu)
    print(
        f"  {name}: {run.per_s:.0f} req/s, {run.jobs_per_s:.0f} jobs/s, p50 {run.p50_ms:.1f} ms, "
        f"p99 {run.p99_ms:.1f} ms, non-2xx {run.non_2xx}, socket errors {run.socket_errors}, "
        f"server CPU {run.cpu_ms_per_job:.3f} ms/job",
        flush=True,
    )
    return run


def probe_batch(base: str, auth: str, body: str) -> str | None:
    """None when ``POST /api/v1/jobs:batch`` accepts our batch; else why the row is n/a."""
    resp = httpx.post(
        f"{base}/api/v1/jobs:batch", content=body, headers={"Authorization": auth, "Content-Type": "application/json"}
    )
    if resp.status_code in (404, 405):
        return "n/a (endpoint missing)"
    if resp.status_code >= 300:
        return f"n/a (endpoint answered {resp.status_code}: {resp.text[:120]})"
    return None


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="openmps-load-") as tmp, Procs(Path(tmp) / "procs") as procs:
        work = Path(tmp)
        redis_url = procs.redis()
        data_dir = work / "data"
        store = LocalObjectStore(data_dir / "objects")
        store.make_bucket("media")
        store.put("media", "in/video.mp4", b"\0" * 1024, "video/mp4")  # submission checks existence only
        r = redis.Redis.from_url(redis_url, decode_responses=True)
        secret_key = generate_key()
        key = RedisCredentialStore(r, SecretBox((secret_key,))).create(TENANT)
        RedisGrantRepository(r).grant(TENANT, "media", read=True, write=True)  # else every job is a 403
        auth = "Basic " + base64.b64encode(f"{key.id}:{key.secret}".encode()).decode()
        env = {
            "OPENMPS_REDIS_URL": redis_url,
            "OPENMPS_DATA_DIR": str(data_dir),
            "OPENMPS_STORAGE": "local",
            "OPENMPS_THROTTLE_RATE": "0",
            "OPENMPS_SECRET_KEY": secret_key,
        }
        Settings.from_env(env)  # the settings are valid before anything starts
        bare = procs.gunicorn("bare", "bench.bare:flask_app", env)
        bare_session = procs.children[-1][1].pid
        api = procs.gunicorn("api", "app.web:create_app()", env)
        api_session = procs.children[-1][1].pid
        for base in (bare, api):
            wait_for(lambda b=base: httpx.get(f"{b}/healthz" if b == api else b, timeout=1), base)
        single_body = json.dumps(JOB)
        batch_body = json.dumps({"jobs": [JOB] * BATCH})
        batch_missing = probe_batch(api, auth, batch_body)
        targets: list[tuple[str, str, str, redis.Redis | None, int]] = [
            ("bare", f"{bare}/api/v1/jobs", single_body, None, bare_session),
            ("single", f"{api}/api/v1/jobs", single_body, r, api_session),
        ]
        if batch_missing is None:
            targets.append(("batch", f"{api}/api/v1/jobs:batch", batch_body, r, api_session))
        gen = "wrk" if LOAD is wrk else "python load generator (wrk not installed)"
        print(
            f"load: {gen}, {THREADS} threads, {CONNECTIONS} connections, {SECONDS} s x {ROUNDS} interleaved "
            f"rounds; gunicorn {' '.join(procfile_gunicorn_options())}; no workers; throttling off",
            flush=True,
        )
        load_before = os.getloadavg()
        for name, url, body, rr, session in targets:  # warm-up: imports, connection pools, script cache
            measure(f"warm-up {name}", url, body, auth, rr, work, 2, session)
        runs: dict[str, list[Run]] = {name: [] for name, *_ in targets}
        for rnd in range(ROUNDS):
            print(f"round {rnd + 1}", flush=True)
            for name, url, body, rr, session in targets:
                runs[name].append(measure(name, url, body, auth, rr, work, SECONDS, session))
        load_after = os.getloadavg()
        queued = stored_jobs(r)
        pending = sum(int(r.zcard(k)) for k in r.scan_iter(keys.pending("*")))

    def med(name: str, f: str) -> float:
        return statistics.median(getattr(x, f) for x in runs[name])

    print()
    print(
        "| endpoint | accepted jobs/s | requests/s | p50 ms | p99 ms | non-2xx | vs bare (req/s) "
        "| server CPU ms/job | rounds (jobs/s) |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    bare_rps = med("bare", "per_s")
    for name in ("bare", "single", "batch"):
        if name not in runs:
            print(f"| {name} `POST /api/v1/jobs:batch` | {batch_missing} | - | - | - | - | - | - | - |")
            continue
        label = {
            "bare": "bare Flask 202",
            "single": "`POST /api/v1/jobs`",
            "batch": f"`POST /api/v1/jobs:batch` x{BATCH}",
        }
        rounds = ", ".join(f"{x.jobs_per_s:.0f}" for x in runs[name])
        print(
            f"| {label[name]} | {med(name, 'jobs_per_s'):.0f} | {med(name, 'per_s'):.0f} | {med(name, 'p50_ms'):.1f} "
            f"| {med(name, 'p99_ms'):.1f} | {sum(x.non_2xx for x in runs[name])} | {med(name, 'per_s') / bare_rps:.2f} "
            f"| {med(name, 'cpu_ms_per_job'):.3f} | {rounds} |"
        )
    print(f"\njobs in the store after the run: {queued} (pending, never dispatched: {pending})")
    print(
        "load average (1 min) before/after the rounds: "
        f"{load_before[0]:.1f} / {load_after[0]:.1f} on {os.cpu_count()} CPUs (other work on the machine "
        "lowers jobs/s and raises latency; server CPU ms/job moves much less)"
    )
    summary = {
        "single_jobs_per_s": f"{med('single', 'jobs_per_s'):.0f}",
        "single_p50_ms": f"{med('single', 'p50_ms'):.1f}",
        "single_p99_ms": f"{med('single', 'p99_ms'):.1f}",
        "single_vs_bare": f"{med('single', 'per_s') / bare_rps:.3f}",
        "bare_req_per_s": f"{bare_rps:.0f}",
        "single_cpu_ms_per_job": f"{med('single', 'cpu_ms_per_job'):.3f}",
        "bare_cpu_ms_per_req": f"{med('bare', 'cpu_ms_per_job'):.3f}",
        "batch_cpu_ms_per_job": f"{med('batch', 'cpu_ms_per_job'):.3f}" if "batch" in runs else "n/a",
        "batch_jobs_per_s": f"{med('batch', 'jobs_per_s'):.0f}" if "batch" in runs else "n/a",
        "connections": str(CONNECTIONS),
    }
    print("SUMMARY " + " ".join(f"{k}={v}" for k, v in summary.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
