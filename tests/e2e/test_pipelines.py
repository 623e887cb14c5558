"""Pipelines across a fleet: real redis-server, real ``celery worker`` processes (two or more),
the native API. Pause/resume, priority, fairness, dynamic queues, concurrency caps, cancel,
progress and GPU routing, each observed from the job store the way an operator would.

Every job here is cheap (a tiny video, one frame) unless the test needs a job that runs for a
while (cancel, progress). Measured figures are printed (``pytest -s``) and reported in
docs/scheduling.md; assertions are in counts and orders, never in seconds, except the bound
the issue sets for fairness, which is a count of jobs too.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient

from app.core.jobs import SnapshotJob
from app.core.pipelines import queue_name
from app.core.service import SubmitRequest
from app.core.specs import Average, ImageFormat, ObjectRef, OutputTarget, SingleTime, SnapshotSpec
from app.core.states import JobState
from app.storage import keys
from app.storage.credentials import AccessKey
from app.wiring import Services
from tests.e2e.conftest import basic
from tests.media import make_video
from tests.workerproc import WorkerProcess

CHEAP = SnapshotSpec(
    input=ObjectRef("media", "tiny.mp4"), timing=SingleTime(100), output=OutputTarget("out", "c/{job_id}.jpg")
)
StartWorker = Callable[..., WorkerProcess]


@pytest.fixture(scope="module")
def media_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Videos are generated once per module: a tiny one for cheap jobs, a 720p one for long jobs."""
    d = tmp_path_factory.mktemp("media")
    make_video(d / "tiny.mp4", seconds=1, fps=10, width=160, height=120, gop=10)
    make_video(d / "long.mp4", seconds=8, fps=25, width=1280, height=720, gop=250)
    return d


@pytest.fixture(autouse=True)
def uploaded(services: Services, media_dir: Path) -> None:
    for name in ("tiny.mp4", "long.mp4"):
        services.objects.put("media", name, (media_dir / name).read_bytes(), "video/mp4")


def fleet(start_worker: StartWorker, n: int, **kw: Any) -> list[WorkerProcess]:
    """Start ``n`` workers at once (each start waits for its 'ready.')."""
    with ThreadPoolExecutor(n) as pool:
        return list(pool.map(lambda _: start_worker(**kw), range(n)))


def new_pipeline(client: FlaskClient, key: AccessKey, **fields: Any) -> str:
    resp = client.post("/api/v1/pipelines", headers=basic(key), json={"name": "p", **fields})
    assert resp.status_code == 201, resp.get_json()
    return str(resp.get_json()["id"])


def set_state(client: FlaskClient, key: AccessKey, pid: str, state: str) -> None:
    resp = client.patch(f"/api/v1/pipelines/{pid}", headers=basic(key), json={"state": state})
    assert resp.status_code == 200 and resp.get_json()["state"] == state, resp.get_json()


def submit(services: Services, pid: str, priority: int = 6, spec: SnapshotSpec = CHEAP) -> str:
    return services.snapshots.submit("acme", SubmitRequest(spec=spec, pipeline_id=pid, priority=priority)).id


def wait_for(predicate: Callable[[], bool], what: str, timeout: float = 60, logs: Sequence[WorkerProcess] = ()) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}\n" + "\n".join(w.log() for w in logs))
        time.sleep(0.02)


def jobs(services: Services, ids: list[str]) -> list[SnapshotJob]:
    return [j for j in services.jobs.get_many(ids) if j is not None]


def all_terminal(services: Services, ids: list[str]) -> bool:
    return all(j.is_terminal for j in jobs(services, ids))


def worker_of(services: Services, job_id: str) -> str:
    """Which worker process started the job: '<hostname>:<pid>' as the start guard recorded it."""
    return str(services.redis.hget(keys.job(job_id), "worker") or "")


def queue_drained(services: Services, pid: str) -> bool:
    """No task message of the pipeline left in its Celery queue or reserved unacked by a worker."""
    return services.redis.llen(queue_name(pid)) == 0 and services.redis.hlen("unacked") == 0


def ms(job: SnapshotJob, field: str) -> int:
    value = getattr(job, field)
    assert value is not None, (job.id, field)
    return int(value.timestamp() * 1000)


def runs_strictly_in_order(services: Services, ids: list[str]) -> None:
    """Each job started after the one before it had finished: a sequence, not an overlap."""
    done = jobs(services, ids)
    assert [j.state for j in done] == [JobState.SUCCEEDED] * len(ids), [(j.id, j.state, j.error_message) for j in done]
    for before, after in pairwise(done):
        assert ms(before, "finished_at") <= ms(after, "started_at"), (before.id, after.id)


def test_pause_holds_jobs_on_every_worker_including_a_later_one_and_resume_runs_them_in_order(
    client: FlaskClient,
    key: AccessKey,
    services: Services,
    start_worker: StartWorker,
) -> None:
    w1, w2 = fleet(start_worker, 2, concurrency=2)
    # cap 1: the fleet runs the pipeline one job at a time, so "in order" is a strict sequence
    pid = new_pipeline(client, key, max_concurrency=1)
    running = submit(
        services,
        pid,
        spec=SnapshotSpec(
            input=ObjectRef("media", "long.mp4"),
            timing=Average(count=12),
            output=OutputTarget("out", "r/{job_id}/{index:5}.jpg"),
        ),
    )
    wait_for(lambda: services.jobs.get(running).progress_done >= 1, "the first job to run", logs=[w1, w2])
    set_state(client, key, pid, "paused")
    paused_ms = int(time.time() * 1000)
    held = [submit(services, pid) for _ in range(6)]
    # Task messages already on their way when the pause came (a dispatch window, a reconcile
    # re-send) reach the workers anyway: simulate them, the start guard must park every one.
    for job_id in held:
        services.scheduler.send(job_id, pid)
    wait_for(lambda: queue_drained(services, pid), "w1/w2 to consume the stray messages", logs=[w1, w2])
    wait_for(lambda: services.jobs.get(running).is_terminal, "the running job to finish", logs=[w1, w2])
    finished = services.jobs.get(running)  # running jobs finish during a pause
    assert finished.state is JobState.SUCCEEDED and ms(finished, "finished_at") >= paused_ms
    late = start_worker(concurrency=2)  # a worker that never saw the pause being made
    w1.stop()
    w2.stop()  # now only the late worker consumes the pipeline
    for job_id in held:
        services.scheduler.send(job_id, pid)
    wait_for(lambda: queue_drained(services, pid), "the late worker to consume the messages", logs=[late])
    parked_by = {w.name: sum(f"{j} not started: paused" in w.log() for j in held) for w in (w1, w2, late)}
    assert parked_by[late.name] == len(held) and parked_by[w1.name] + parked_by[w2.name] == len(held), parked_by
    for job in jobs(services, held):
        assert (job.state, job.attempts, job.started_at) == (JobState.SUBMITTED, 0, None)
    assert client.get(f"/api/v1/pipelines/{pid}", headers=basic(key)).get_json()["depth"] == {"queued": 6, "running": 0}
    assert services.scheduler.pending_ids(pid) == held

    set_state(client, key, pid, "active")
    wait_for(lambda: all_terminal(services, held), "the held jobs to run after resume", logs=[late])
    runs_strictly_in_order(services, held)
    assert {worker_of(services, j).split(":")[0] for j in held} == {f"{late.name}@test"}


def test_priority_order_with_one_worker(
    client: FlaskClient,
    key: AccessKey,
    services: Services,
    start_worker: StartWorker,
) -> None:
    worker = start_worker(concurrency=1)
    pid = new_pipeline(client, key, state="paused")  # collect the jobs first, then let them run
    priorities = [6, 1, 10, 6, 10, 3, 1, 9, 6, 2, 10, 5]
    ids = [submit(services, pid, p) for p in priorities]
    set_state(client, key, pid, "active")
    wait_for(lambda: all_terminal(services, ids), "the jobs to run", logs=[worker])
    expected = [job_id for job_id, _ in sorted(zip(ids, priorities), key=lambda x: -x[1])]  # stable: FIFO within
    started = [j.id for j in sorted(jobs(services, ids), key=lambda j: ms(j, "started_at"))]
    assert started == expected
    runs_strictly_in_order(services, expected)


def test_a_flood_of_priority_10_jobs_in_one_pipeline_does_not_starve_another(
    client: FlaskClient,
    key: AccessKey,
    services: Services,
    start_worker: StartWorker,
) -> None:
    workers = fleet(start_worker, 2, concurrency=1)
    a, b = new_pipeline(client, key, name="A", state="paused"), new_pipeline(client, key, name="B")
    flood = [submit(services, a, 10) for _ in range(200)]
    set_state(client, key, a, "active")
    wait_for(
        lambda: sum(j.started_at is not None for j in jobs(services, flood)) >= 4, "the flood to start", logs=workers
    )
    assert services.scheduler.depth(a).queued >= 180  # A holds its queue; only the window is out
    lone = submit(services, b, 1)  # the lowest priority, in another pipeline
    wait_for(lambda: services.jobs.get(lone).started_at is not None, "B's job to start", logs=workers)
    set_state(client, key, a, "paused")  # the rest of the flood is not needed
    b_job = services.jobs.get(lone)
    submitted_at, started_at = ms(b_job, "created_at"), ms(b_job, "started_at")
    a_started = sorted(ms(j, "started_at") for j in jobs(services, flood) if j.started_at is not None)
    overtaking = [t for t in a_started if submitted_at <= t <= started_at]
    finished = sorted(ms(j, "finished_at") for j in jobs(services, flood) if j.finished_at is not None)
    per_job = (finished[-1] - a_started[0]) / max(1, len(finished))
    print(
        f"\nfairness: {len(overtaking)} A jobs started between B's submission and its start; "
        f"B waited {started_at - submitted_at} ms; A jobs took {per_job:.0f} ms each on average "
        f"({len(finished)} finished, {services.scheduler.depth(a).queued} still queued)"
    )
    bound = 2 * services.settings.dispatch_window + len(workers)
    assert len(overtaking) <= bound, (len(overtaking), bound)
    assert b_job.state in (JobState.RUNNING, JobState.SUCCEEDED)


def test_a_pipeline_created_through_the_api_is_served_by_running_workers(
    client: FlaskClient,
    key: AccessKey,
    services: Services,
    start_worker: StartWorker,
) -> None:
    workers = fleet(start_worker, 2, concurrency=1)
    created = time.monotonic()
    pid = new_pipeline(client, key, name="new")
    job_id = submit(services, pid)
    wait_for(lambda: services.jobs.get(job_id).is_terminal, "the new pipeline's job", logs=workers)
    print(
        f"\ndynamic pipeline: created -> job finished in {time.monotonic() - created:.2f} s "
        f"(queue sync every {services.settings.queue_sync_interval_s} s)"
    )
    assert services.jobs.get(job_id).state is JobState.SUCCEEDED
    assert worker_of(services, job_id).split(":")[0] in {f"{w.name}@test" for w in workers}
    wait_for(
        lambda: all(f"consuming new pipeline queue {queue_name(pid)}" in w.log() for w in workers),
        "both workers to consume the new queue",
        logs=workers,
    )
    assert client.delete(f"/api/v1/pipelines/{pid}", headers=basic(key)).status_code == 204
    wait_for(
        lambda: all(f"no longer consuming {queue_name(pid)}" in w.log() for w in workers),
        "both workers to drop the deleted pipeline's queue",
        logs=workers,
    )


def test_concurrency_cap_is_never_exceeded_across_workers(
    client: FlaskClient,
    key: AccessKey,
    services: Services,
    start_worker: StartWorker,
) -> None:
    fleet(start_worker, 2, concurrency=2)  # four slots for a pipeline capped at two
    cap = 2
    pid = new_pipeline(client, key, max_concurrency=cap, state="paused")
    spec = SnapshotSpec(
        input=ObjectRef("media", "long.mp4"), timing=SingleTime(7000), output=OutputTarget("out", "cap/{job_id}.jpg")
    )  # a seek through a long GOP
    ids = [submit(services, pid, spec=spec) for _ in range(16)]
    set_state(client, key, pid, "active")
    samples: list[int] = []
    while not all_terminal(services, ids):
        samples.append(int(services.redis.zcard(keys.running(pid))))
        samples.append(client.get(f"/api/v1/pipelines/{pid}", headers=basic(key)).get_json()["depth"]["running"])
    done = jobs(services, ids)
    assert [j.state for j in done] == [JobState.SUCCEEDED] * len(ids)
    edges = sorted([(ms(j, "started_at"), 1) for j in done] + [(ms(j, "finished_at"), -1) for j in done])
    overlap = peak = 0
    for _, step in edges:  # ends sort before starts at the same ms
        overlap += step
        peak = max(peak, overlap)
    hosts = {worker_of(services, j).split(":")[0] for j in ids}
    print(
        f"\nconcurrency cap {cap}: {len(samples)} samples, max running {max(samples)}, "
        f"histogram {dict(sorted((n, samples.count(n)) for n in set(samples)))}, interval peak {peak}, "
        f"workers used {len(hosts)}"
    )
    assert max(samples) == cap and peak <= cap
    assert len(hosts) == 2  # both workers ran the pipeline's jobs


def test_cancel_a_running_job_and_watch_its_progress(
    client: FlaskClient,
    key: AccessKey,
    services: Services,
    start_worker: StartWorker,
) -> None:
    workers = fleet(start_worker, 2, concurrency=1)
    spec = SnapshotSpec(
        input=ObjectRef("media", "long.mp4"),
        timing=Average(count=60),
        output=OutputTarget("out", "long/{job_id}/{index:5}.png"),
        format=ImageFormat.PNG,
    )
    job_id = submit(services, "default", spec=spec)
    seen: list[tuple[int, int]] = []
    deadline = time.monotonic() + 60
    while len({d for d, _ in seen if d > 0}) < 3:
        assert time.monotonic() < deadline, [w.log() for w in workers]
        body = client.get(f"/api/v1/jobs/{job_id}", headers=basic(key)).get_json()
        assert body["state"] in ("submitted", "running"), body
        seen.append((body["progress"]["done"], body["progress"]["total"]))
        time.sleep(0.02)
    dones = [d for d, _ in seen]
    assert dones == sorted(dones) and {t for _, t in seen} == {60}, seen  # it only ever increases
    assert services.objects.list_keys("out", f"long/{job_id}/")  # partial outputs exist now
    asked = time.monotonic()
    resp = client.post(f"/api/v1/jobs/{job_id}/cancel", headers=basic(key))
    assert resp.status_code == 202 and resp.get_json()["state"] == "running"
    wait_for(lambda: services.jobs.get(job_id).is_terminal, "the canceled job to end", logs=workers)
    latency = time.monotonic() - asked
    job = services.jobs.get(job_id)
    print(
        f"\ncancel: running job ended {job.state.value} {latency * 1000:.0f} ms after the request, "
        f"at {job.progress_done}/60 images"
    )
    assert job.state is JobState.CANCELED and job.progress_done < 60
    assert services.objects.list_keys("out", f"long/{job_id}/") == []  # partial outputs removed
    assert job.manifest.images == []
    assert [e["job_id"] for _, e in services.redis.xrange(keys.OUTBOX)].count(job_id) == 1


def test_gpu_pipelines_run_only_on_gpu_workers_which_fall_back_to_the_cpu_and_say_so(
    client: FlaskClient,
    key: AccessKey,
    services: Services,
    start_worker: StartWorker,
) -> None:
    cpu = start_worker(concurrency=1)
    gpu_pid = new_pipeline(client, key, name="gpu", resource_class="gpu")
    cpu_pid = new_pipeline(client, key, name="cpu")
    gpu_job = submit(services, gpu_pid)
    wait_for(
        lambda: f"consuming new pipeline queue {queue_name(cpu_pid)}" in cpu.log(), "the cpu worker's sync", logs=[cpu]
    )
    cpu_job = submit(services, cpu_pid)  # proves the cpu worker is live and synced while the gpu job waits
    wait_for(lambda: services.jobs.get(cpu_job).is_terminal, "the cpu job", logs=[cpu])
    assert services.jobs.get(gpu_job).state is JobState.SUBMITTED and services.redis.llen(queue_name(gpu_pid)) == 1
    assert queue_name(gpu_pid) not in cpu.log()

    gpu = start_worker(concurrency=1, worker_class="gpu")
    wait_for(lambda: services.jobs.get(gpu_job).is_terminal, "the gpu job", logs=[cpu, gpu])
    done = services.jobs.get(gpu_job)
    assert done.state is JobState.SUCCEEDED, done.error_message
    assert worker_of(services, gpu_job).split(":")[0] == f"{gpu.name}@test"
    assert done.manifest.decoder == "pyav (gpu unavailable)"
    assert any("GPU decode unavailable, decoded on the CPU" in n for n in done.manifest.notes), done.manifest.notes
    assert "GPU decode requested but unavailable" in gpu.log()
    default_job = submit(services, "default")  # and the gpu worker never takes cpu work
    wait_for(lambda: services.jobs.get(default_job).is_terminal, "a default-pipeline job", logs=[cpu, gpu])
    assert worker_of(services, default_job).split(":")[0] == f"{cpu.name}@test"
    assert queue_name("default") not in gpu.log().split("[tasks]")[0].split("[queues]")[-1]
