"""``python -m bench.fleet`` (``make bench-fleet``, as root): jobs/s with 1, 2 and 4 worker hosts.

Each worker "host" is a ``celery worker`` in a network namespace of its own, with its own
address on a bridge; nothing is shared but what sits on the bridge in the services namespace:
Redis (job store and broker) and the S3 server (moto) behind a delay proxy that holds every
storage request for ``BENCH_FLEET_DELAY_MS`` (default 200 ms, ``bench/delayproxy.py``), so jobs
are bound by storage latency, as against a real object store, not by this machine's cores.

    services namespace  (bridge br0 10.231.0.1/24: redis :6379, delay proxy :9000 -> moto on its loopback)
       |-- veth -- host 1 namespace (10.231.0.11): celery worker, OPENMPS_WORKER_CONCURRENCY processes
       |-- veth -- host 2 namespace (10.231.0.12) ...

Only addresses inside the namespaces this run creates (and their loopbacks) are used; nothing is
added to the machine's own namespace. Every namespace and process is removed on exit, also on
failure or SIGTERM. A driver process inside the services namespace (``bench/fleetdriver.py``) uploads the input, submits the jobs through ``SnapshotService.submit`` and checks
the outcome in the job store and the output bucket: lost = jobs not succeeded (or whose
outputs are missing), duplicates = extra attempts (``attempts`` > 1: the start guard counts every
run of a job) plus output objects no job should have written.

Rounds interleave fleet sizes (1, 2, 4, 1, 2, 4, ...); jobs/s = jobs / (last finish - first
submission), median over rounds. Environment: ``BENCH_FLEET_ROUNDS`` (2), ``BENCH_FLEET_JOBS_PER_HOST``
(24), ``BENCH_FLEET_CONCURRENCY`` (2 processes a host), ``BENCH_FLEET_DELAY_MS`` (200),
``BENCH_FLEET_TIMEOUT_S`` (900, the whole run).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import FrameType
from typing import Any

from app.devstack import redis_binary
from app.storage.secretbox import generate_key

ROUNDS = int(os.environ.get("BENCH_FLEET_ROUNDS", "2"))
JOBS_PER_HOST = int(os.environ.get("BENCH_FLEET_JOBS_PER_HOST", "24"))
CONCURRENCY = int(os.environ.get("BENCH_FLEET_CONCURRENCY", "2"))
# A small object's first byte from S3 takes some 100-200 ms; the upper end keeps the jobs
# storage-bound on a 2-core machine that all 8 worker processes share (100 ms saturated its cores).
DELAY_MS = float(os.environ.get("BENCH_FLEET_DELAY_MS", "200"))
TIMEOUT_S = float(os.environ.get("BENCH_FLEET_TIMEOUT_S", "900"))
SIZES = (1, 2, 4)

NET = "10.231.0"
SVC_IP = f"{NET}.1"
REDIS_PORT, MOTO_PORT, PROXY_PORT = 6379, 5000, 9000
S3_KEY, S3_SECRET, S3_REGION = "testing", "testing", "us-east-1"
BUCKET = "media"
INPUT_KEY = "in/fleet.mp4"
FRAMES = 4  # images per job: 1 range read of the (small) input + 4 uploads = 5 storage requests
ROOT = Path(__file__).resolve().parent.parent
SECRET_KEY = generate_key()  # one per run, shared by the driver and every worker host


def worker_env(host_ip: str | None) -> dict[str, str]:
    """Settings every process of the fleet shares; a worker host reaches S3 through the proxy,
    the driver (in the services namespace) directly."""
    s3 = f"{SVC_IP}:{PROXY_PORT}" if host_ip else f"127.0.0.1:{MOTO_PORT}"
    return {
        "OPENMPS_REDIS_URL": f"redis://{SVC_IP}:{REDIS_PORT}/0",
        "OPENMPS_STORAGE": "s3",
        "OPENMPS_S3_ENDPOINT": s3,
        "OPENMPS_S3_ACCESS_KEY": S3_KEY,
        "OPENMPS_S3_SECRET_KEY": S3_SECRET,
        "OPENMPS_S3_REGION": S3_REGION,
        "OPENMPS_SECRET_KEY": SECRET_KEY,  # secrets at rest are sealed with it (the settings require one)
        "OPENMPS_WORKER_CONCURRENCY": str(CONCURRENCY),
        "OPENMPS_DECODE_THREADS": "1",
        "OPENMPS_QUEUE_SYNC_S": "0.5",
        # Task messages in flight for the pipeline: enough for every process of the largest fleet
        # to find one waiting (a deployment with many workers raises the window the same way).
        "OPENMPS_DISPATCH_WINDOW": str(max(SIZES) * CONCURRENCY),
        "PYTHONPATH": str(ROOT),
    }


# --- the machine side (root): namespaces, processes, cleanup ---------------------------------


class Fleet:
    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.tag = f"omps{os.getpid() % 100_000}"
        self.namespaces: list[str] = []
        self.procs: list[tuple[str, subprocess.Popen[bytes]]] = []
        self.hosts: list[subprocess.Popen[bytes]] = []

    def ip(self, *args: str) -> None:
        subprocess.run(["ip", *args], check=True, capture_output=True)

    def namespace(self, name: str) -> str:
        full = f"{self.tag}-{name}"
        self.ip("netns", "add", full)
        self.namespaces.append(full)
        self.ip("-n", full, "link", "set", "lo", "up")
        return full

    @property
    def svc(self) -> str:
        return self.namespaces[0]

    def setup_network(self) -> None:
        svc = self.namespace("svc")
        self.ip("-n", svc, "link", "add", "br0", "type", "bridge")
        self.ip("-n", svc, "addr", "add", f"{SVC_IP}/24", "dev", "br0")
        self.ip("-n", svc, "link", "set", "br0", "up")
        for i in range(1, max(SIZES) + 1):
            host = self.namespace(f"h{i}")
            self.ip("-n", svc, "link", "add", f"vb{i}", "type", "veth", "peer", "name", "eth0", "netns", host)
            self.ip("-n", svc, "link", "set", f"vb{i}", "master", "br0", "up")
            self.ip("-n", host, "addr", "add", f"{NET}.{10 + i}/24", "dev", "eth0")
            self.ip("-n", host, "link", "set", "eth0", "up")

    def spawn(self, name: str, ns: str, cmd: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
        log = open(self.workdir / f"{name}.log", "ab")  # noqa: SIM115 - lives as long as the child
        proc = subprocess.Popen(
            ["ip", "netns", "exec", ns, *cmd],
            env={**os.environ, **env},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            cwd=ROOT,
        )
        self.procs.append((name, proc))
        return proc

    def start_services(self) -> None:
        data = self.workdir / "redis"
        data.mkdir()
        self.spawn(
            "redis",
            self.svc,
            [redis_binary(), "--bind", SVC_IP, "127.0.0.1", "--port", str(REDIS_PORT), "--dir", str(data)]
            + ["--save", "", "--appendonly", "yes", "--appendfsync", "everysec", "--protected-mode", "no"],
            {},
        )
        self.spawn("moto", self.svc, [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(MOTO_PORT)], {})
        self.spawn(
            "delayproxy",
            self.svc,
            [sys.executable, "-m", "bench.delayproxy", SVC_IP, str(PROXY_PORT), "127.0.0.1", str(MOTO_PORT)]
            + [f"{DELAY_MS:g}"],
            {"PYTHONPATH": str(ROOT)},
        )

    def driver(self, *args: str, timeout: float) -> dict[str, Any]:
        out = subprocess.run(
            ["ip", "netns", "exec", self.svc, sys.executable, "-m", "bench.fleetdriver", *args],
            env={**os.environ, **worker_env(None)},
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=ROOT,
        )
        lines = [x for x in out.stdout.splitlines() if x.startswith("RESULT ")]
        if out.returncode != 0 or not lines:
            raise SystemExit(f"driver {args[0]} failed ({out.returncode}):\n{out.stdout[-3000:]}\n{out.stderr[-3000:]}")
        result: dict[str, Any] = json.loads(lines[-1][len("RESULT ") :])
        return result

    def start_hosts(self, n: int) -> None:
        for i in range(1, n + 1):
            cmd = [sys.executable, "-m", "celery", "-A", "workers.celery_app:celery_app", "worker"]
            cmd += ["--concurrency", str(CONCURRENCY), "--hostname", f"host{i}@fleet", "--loglevel", "WARNING"]
            self.hosts.append(self.spawn(f"host{i}", self.namespaces[i], cmd, worker_env(f"{NET}.{10 + i}")))

    def stop_hosts(self) -> None:
        for proc in self.hosts:
            _terminate(proc)
        self.hosts.clear()

    def cleanup(self) -> None:
        for _, proc in reversed(self.procs):
            _terminate(proc)
        for ns in reversed(self.namespaces):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)
        self.namespaces.clear()


def _terminate(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(20)
        except ProcessLookupError:
            pass
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def _raise_exit(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(f"stopped by signal {signum}")


def cpu_times() -> tuple[int, int]:
    """(busy, total) jiffies of the whole machine (``/proc/stat``'s first line; idle and iowait
    are not busy). Every namespace's processes run on these same cores."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = values[3] + values[4]
    return sum(values) - idle, sum(values)


def busy_share(before: tuple[int, int], after: tuple[int, int]) -> float:
    total = after[1] - before[1]
    return (after[0] - before[0]) / total if total else 0.0


def make_input(path: Path) -> None:
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        raise SystemExit("bench-fleet needs the ffmpeg CLI (make install)")
    subprocess.run(
        [ffmpeg, "-v", "error", "-y", "-f", "lavfi", "-i", "testsrc2=size=320x240:rate=25", "-t", "4"]
        + ["-c:v", "libx264", "-g", "25", "-pix_fmt", "yuv420p", "-movflags", "+faststart", str(path)],
        check=True,
    )


def main() -> int:
    if os.geteuid() != 0 or shutil.which("ip") is None:
        print("bench-fleet needs root and iproute2 (network namespaces); not run", file=sys.stderr)
        return 2
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _raise_exit)
    deadline = time.monotonic() + TIMEOUT_S
    rows: dict[int, list[dict[str, Any]]] = {n: [] for n in SIZES}
    with tempfile.TemporaryDirectory(prefix="openmps-fleet-") as tmp:
        work = Path(tmp)
        fleet = Fleet(work)
        try:
            fleet.setup_network()
            fleet.start_services()
            make_input(work / "fleet.mp4")
            fleet.driver("setup", str(work / "fleet.mp4"), timeout=60)
            print(
                f"fleet: hosts {SIZES}, {CONCURRENCY} worker processes a host, {JOBS_PER_HOST} jobs a host a round "
                f"({FRAMES} images each), S3 requests delayed {DELAY_MS:g} ms, {ROUNDS} interleaved rounds",
                flush=True,
            )
            for rnd in range(ROUNDS):
                for n in SIZES:
                    left = deadline - time.monotonic()
                    if left < 30:
                        raise SystemExit("bench-fleet ran out of time (BENCH_FLEET_TIMEOUT_S)")
                    fleet.start_hosts(n)
                    try:
                        before = cpu_times()
                        res = fleet.driver("run", str(n), str(JOBS_PER_HOST * n), f"r{rnd}h{n}", timeout=left)
                        res["cpu_busy"] = busy_share(before, cpu_times())
                    finally:
                        fleet.stop_hosts()
                    rows[n].append(res)
                    print(
                        f"  round {rnd + 1}, {n} host(s): {res['jobs']} jobs in {res['seconds']:.2f} s = "
                        f"{res['jobs_per_s']:.2f} jobs/s; lost {res['lost']}, duplicates {res['duplicates']}; "
                        f"per host {res['per_host']}; machine CPU busy {res['cpu_busy']:.0%}",
                        flush=True,
                    )
        finally:
            fleet.cleanup()
    base = statistics.median(r["jobs_per_s"] for r in rows[1])
    print()
    print(
        "| hosts | worker processes | jobs/s (median) | rounds | vs 1 host | lost | duplicates "
        "| machine CPU busy (median) |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for n in SIZES:
        med = statistics.median(r["jobs_per_s"] for r in rows[n])
        rounds = ", ".join(f"{r['jobs_per_s']:.2f}" for r in rows[n])
        lost = sum(r["lost"] for r in rows[n])
        dup = sum(r["duplicates"] for r in rows[n])
        busy = statistics.median(r["cpu_busy"] for r in rows[n])
        print(f"| {n} | {n * CONCURRENCY} | {med:.2f} | {rounds} | {med / base:.2f} | {lost} | {dup} | {busy:.0%} |")
    print(
        "\nNear 100 % CPU busy, the fleet is bound by this machine's cores rather than by storage latency "
        "(every host shares them): raise BENCH_FLEET_DELAY_MS, or run fewer processes a host."
    )
    top = statistics.median(r["jobs_per_s"] for r in rows[max(SIZES)])
    summary = {
        **{f"hosts{n}_jobs_per_s": f"{statistics.median(r['jobs_per_s'] for r in rows[n]):.2f}" for n in SIZES},
        "speedup_4_vs_1": f"{top / base:.2f}",
        "lost": str(sum(r["lost"] for n in SIZES for r in rows[n])),
        "duplicates": str(sum(r["duplicates"] for n in SIZES for r in rows[n])),
        "delay_ms": f"{DELAY_MS:g}",
    }
    print("SUMMARY " + " ".join(f"{k}={v}" for k, v in summary.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
