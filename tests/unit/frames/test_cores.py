"""A job's share of its host's cores: the pure budget, and the host-local count of running jobs
(one flock-held file per job) that feeds it, released on exit, exception and crash alike."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from workers.frames.cores import CoreShare, HostJobs, lane_budget


@pytest.mark.parametrize(
    ("cores", "running", "lanes"),
    [
        (2, 1, 2),  # the default worker, one long job: both cores
        (2, 2, 1),  # concurrency 2, both slots busy: one each, the old fixed share
        (2, 3, 1),  # more jobs than cores: never below one
        (1, 1, 1),
        (4, 1, 4),
        (4, 2, 2),
        (4, 3, 1),  # an equal whole share: 4 // 3
        (16, 4, 4),
        (8, 0, 8),  # nobody counted (the count raced an exit): as if alone
    ],
)
def test_lane_budget_is_an_equal_whole_share_of_the_cores(cores: int, running: int, lanes: int) -> None:
    assert lane_budget(cores, running) == lanes


def test_registered_jobs_are_counted_until_released(tmp_path: Path) -> None:
    jobs = HostJobs(tmp_path / "run" / "jobs")
    assert jobs.count() == 0  # no directory yet
    first, second = jobs.register(), jobs.register()
    assert jobs.count() == 2
    first.release()
    first.release()  # idempotent
    assert jobs.count() == 1
    second.release()
    assert jobs.count() == 0
    assert os.listdir(jobs.directory) == []


def test_a_file_nobody_holds_is_a_dead_job_removed_by_the_next_count(tmp_path: Path) -> None:
    jobs = HostJobs(tmp_path)
    live = jobs.register()
    (tmp_path / "123-dead.job").write_bytes(b"")  # left behind by a process that died
    (tmp_path / "124-coming.new").write_bytes(b"")  # being registered: not counted, not touched
    assert jobs.count() == 1
    assert sorted(os.listdir(tmp_path)) == sorted([live.path.name, "124-coming.new"])
    live.release()


def test_a_share_is_released_when_its_job_raises(tmp_path: Path) -> None:
    share = CoreShare(HostJobs(tmp_path), cores=4)
    with pytest.raises(RuntimeError), share.hold() as threads:
        assert threads == 4
        assert share.jobs.count() == 1
        raise RuntimeError("the job failed")
    assert share.jobs.count() == 0


def test_jobs_share_the_cores_of_the_host(tmp_path: Path) -> None:
    share = CoreShare(HostJobs(tmp_path), cores=2)
    with share.hold() as alone:
        with share.hold() as beside:
            assert (alone, beside) == (2, 1)
        with share.hold() as after:
            assert after == 1  # the first job still runs
    with share.hold() as later:
        assert later == 2


def test_a_fixed_budget_wins_and_still_counts_for_the_others(tmp_path: Path) -> None:
    fixed = CoreShare(HostJobs(tmp_path), cores=4, fixed=1)
    dynamic = CoreShare(HostJobs(tmp_path), cores=4)
    with fixed.hold() as one, dynamic.hold() as other:
        assert (one, other) == (1, 2)


def test_an_unusable_directory_falls_back_to_the_static_share_and_never_fails_the_job(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-directory"
    blocker.write_bytes(b"")
    share = CoreShare(HostJobs(blocker / "jobs"), cores=8, fallback=3)
    with share.hold() as threads:
        assert threads == 3
    assert CoreShare(HostJobs(blocker / "jobs"), cores=8, fixed=5, fallback=3).hold().threads == 5


CHILD = """
import sys, time
from pathlib import Path
from workers.frames.cores import HostJobs
HostJobs(Path(sys.argv[1])).register()
print("registered", flush=True)
if sys.argv[2] == "exit":
    import os
    os._exit(3)  # no finally, no release: only the kernel lets go
time.sleep(60)
"""


@pytest.mark.parametrize("how", ["sigkill", "exit"])
def test_a_crashed_process_does_not_keep_its_share(tmp_path: Path, how: str) -> None:
    jobs = HostJobs(tmp_path)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(tmp_path), how], stdout=subprocess.PIPE, text=True, env=env
    )
    try:
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "registered"
        if how == "sigkill":
            assert jobs.count() == 1  # alive and counted
            child.send_signal(signal.SIGKILL)
        child.wait(30)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait(30)
        if child.stdout is not None:
            child.stdout.close()
    assert [p.suffix for p in tmp_path.iterdir()] == [".job"]  # it never removed its file
    assert jobs.count() == 0
    assert list(tmp_path.iterdir()) == []
