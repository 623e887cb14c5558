"""The operator CLI against a real redis-server: ``app.cli.main`` is called as the console script
would call it, configured the only way it is, through ``OPENMPS_*`` environment variables."""

from __future__ import annotations

import os

import pytest

from app import cli
from app.core.errors import AccessDenied, InvalidParameter
from app.core.pipelines import DEFAULT_PIPELINE_ID, PipelineState, queue_name
from app.core.service import PipelineChanges, SubmitRequest
from app.core.specs import ObjectRef, OutputTarget, SingleTime, SnapshotSpec
from app.storage import keys
from app.wiring import Services

SPEC = SnapshotSpec(input=ObjectRef("media", "in/v.mp4"), timing=SingleTime(1000), output=OutputTarget("out", "x.jpg"))


@pytest.fixture(autouse=True)
def cli_env(services: Services, monkeypatch: pytest.MonkeyPatch) -> None:
    """Point the CLI at this test's redis and data dir, and nowhere else."""
    for name in [n for n in os.environ if n.startswith("OPENMPS_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("OPENMPS_REDIS_URL", services.settings.redis_url)
    monkeypatch.setenv("OPENMPS_STORAGE", "local")
    monkeypatch.setenv("OPENMPS_DATA_DIR", str(services.settings.data_dir))
    monkeypatch.setenv("OPENMPS_SECRET_KEY", ",".join(services.settings.secret_keys))
    services.objects.put("media", "in/v.mp4", b"\x00" * 64, "video/mp4")


def test_pause_holds_the_shared_default_pipeline_and_resume_dispatches_what_queued(
    services: Services, capsys: pytest.CaptureFixture[str]
) -> None:
    """Tenants cannot pause the shared default pipeline through the API; operators can."""
    with pytest.raises(InvalidParameter):
        services.snapshots.update_pipeline("acme", DEFAULT_PIPELINE_ID, PipelineChanges(state=PipelineState.PAUSED))
    assert cli.main(["pipelines", "pause", DEFAULT_PIPELINE_ID]) == 0
    assert capsys.readouterr().out == f"{DEFAULT_PIPELINE_ID}\tpaused\n"
    default = services.pipelines.find(DEFAULT_PIPELINE_ID)
    assert default is not None and default.state is PipelineState.PAUSED and default.name == "Default"
    job = services.snapshots.submit("acme", SubmitRequest(spec=SPEC))
    assert services.redis.zrange(keys.pending(DEFAULT_PIPELINE_ID), 0, -1) == [job.id]  # held back
    assert services.redis.llen(queue_name(DEFAULT_PIPELINE_ID)) == 0
    assert cli.main(["pipelines", "resume", DEFAULT_PIPELINE_ID]) == 0
    assert capsys.readouterr().out == f"{DEFAULT_PIPELINE_ID}\tactive\n"
    assert services.redis.zrange(keys.dispatched(DEFAULT_PIPELINE_ID), 0, -1) == [job.id]
    assert services.redis.llen(queue_name(DEFAULT_PIPELINE_ID)) == 1  # its task message went out


def test_pause_of_an_unknown_pipeline_fails_with_a_message(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["pipelines", "pause", "nope"]) == 1
    assert capsys.readouterr().err == "openmps: no pipeline nope\n"


def test_the_list_shows_the_state_the_cli_set(services: Services, capsys: pytest.CaptureFixture[str]) -> None:
    mine = services.snapshots.create_pipeline("acme", "mine")
    assert cli.main(["pipelines", "pause", mine.id]) == 0
    capsys.readouterr()
    assert cli.main(["pipelines", "list"]) == 0
    rows = {line.split("\t")[0]: line.split("\t") for line in capsys.readouterr().out.splitlines()}
    assert rows[mine.id][1:3] == ["mine", "paused"] and rows[DEFAULT_PIPELINE_ID][2] == "active"


def test_the_operator_pause_writes_only_the_state(services: Services, monkeypatch: pytest.MonkeyPatch) -> None:
    """An operator working from a stale read (a tenant renamed the pipeline meanwhile) changes the
    state and nothing else: the rename sticks."""
    p = services.snapshots.create_pipeline("acme", "before")
    stale = services.pipelines.find(p.id)
    services.snapshots.update_pipeline("acme", p.id, PipelineChanges(name="after", max_concurrency=4))
    with monkeypatch.context() as patched:
        patched.setattr(services.pipelines, "find", lambda pipeline_id: stale)
        services.snapshots.set_pipeline_state_as_operator(p.id, PipelineState.PAUSED)
    stored = services.pipelines.find(p.id)
    assert stored is not None
    assert (stored.state, stored.name, stored.max_concurrency) == (PipelineState.PAUSED, "after", 4)


def test_buckets_grant_list_and_revoke(services: Services, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["buckets", "grant", "beta", "media/in/", "--read"]) == 0
    assert cli.main(["buckets", "grant", "beta", "out", "--read", "--write"]) == 0
    assert capsys.readouterr().out == "beta\tmedia/in/\tread\nbeta\tout\tread,write\n"
    assert cli.main(["buckets", "list", "--tenant", "beta"]) == 0
    assert capsys.readouterr().out == "beta\tmedia/in/\tread\nbeta\tout\tread,write\n"
    assert cli.main(["buckets", "revoke", "beta", "out", "--write"]) == 0
    assert capsys.readouterr().out == "beta\tout\tread\n"
    assert cli.main(["buckets", "revoke", "beta", "media/in/"]) == 0
    assert capsys.readouterr().out == "beta\tmedia/in/\t-\n"
    assert cli.main(["buckets", "list"]) == 0
    rows = capsys.readouterr().out.splitlines()
    assert "beta\tout\tread" in rows and not any(r.startswith("beta\tmedia") for r in rows)
    spec_for_beta = SnapshotSpec(
        input=ObjectRef("out", "v.mp4"), timing=SingleTime(0), output=OutputTarget("out", "x.jpg")
    )
    services.objects.put("out", "v.mp4", b"\x00", "video/mp4")
    with pytest.raises(AccessDenied):  # read stayed, write went: the grant the CLI left is what submission sees
        services.snapshots.submit("beta", SubmitRequest(spec=spec_for_beta))


def test_buckets_refuse_bad_scopes_and_empty_grants(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["buckets", "grant", "beta", "Bad_Bucket", "--read"]) == 2
    assert "InvalidParameter" in capsys.readouterr().err
    assert cli.main(["buckets", "grant", "beta", "media"]) == 2
    assert "--read" in capsys.readouterr().err


def test_store_reindex_rebuilds_the_pipeline_and_state_indexes(
    services: Services, capsys: pytest.CaptureFixture[str]
) -> None:
    jobs = [services.snapshots.submit("acme", SubmitRequest(spec=SPEC)) for _ in range(3)]
    index = keys.tenant_pipeline_state_jobs("acme", DEFAULT_PIPELINE_ID, "submitted")
    assert sorted(services.redis.zrange(index, 0, -1)) == sorted(j.id for j in jobs)
    services.redis.delete(index)  # as a store from before that index holds its jobs
    assert cli.main(["store", "reindex", "--json"]) == 0
    assert '"changed": 3' in capsys.readouterr().out
    assert sorted(services.redis.zrange(index, 0, -1)) == sorted(j.id for j in jobs)
    assert cli.main(["store", "reindex"]) == 0  # each job read in the pipeline's index and in its per-state one
    assert capsys.readouterr().out == "1 pipelines, 6 index entries read, 0 changed\n"
