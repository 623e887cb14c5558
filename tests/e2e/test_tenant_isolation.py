"""Two tenants on one stack, through the HTTP API, with a real worker: every way the hostile
second tenant (beta) tried to read, overwrite or delete the first tenant's (alpha's) objects is
refused, and alpha's objects are byte-identical afterwards, while each tenant's own work succeeds.

Grants (what an operator sets with ``openmps buckets grant``): alpha read+write on ``alpha``,
beta read+write on ``beta``, each read+write on its prefix of ``shared`` (``shared/a/``,
``shared/b/``), and both read+write on ``common``: a bucket shared on purpose, where only the
cleanup rule (a job deletes only what it wrote) protects one tenant's objects from the other's
canceled job. The checks run as beta through each dialect in ``tests/e2e/tenancy.py``.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from flask.testing import FlaskClient

from app.core.states import JobState
from app.settings import Settings
from app.web import create_app
from app.wiring import Services
from tests.e2e.tenancy import DIALECT_CLIENTS, NativeTenant, Sprite, TenantClient
from tests.media import make_video
from tests.stack import make_services
from tests.workerproc import WorkerProcess

BUCKETS = ("alpha", "beta", "shared", "common")


@dataclass
class Stack:
    services: Services
    http: FlaskClient
    alpha: NativeTenant
    alpha_job: dict  # type: ignore[type-arg]  # alpha's finished job, as its JSON


def fingerprint(services: Services, owner_buckets: dict[str, str]) -> dict[str, str]:
    """sha256 of every object under each (bucket, prefix): what must not change."""
    out = {}
    for bucket, prefix in owner_buckets.items():
        for key in services.objects.list_keys(bucket, prefix):
            out[f"{bucket}/{key}"] = hashlib.sha256(services.objects.get(bucket, key)).hexdigest()
    return out


ALPHAS = {"alpha": "", "shared": "a/"}


@pytest.fixture(scope="module")
def video_paths(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    base = tmp_path_factory.mktemp("videos")
    small = make_video(base / "small.mp4", seconds=2, fps=25, width=320, height=240, gop=25).path
    heavy = make_video(base / "heavy.mp4", seconds=6, fps=25, width=1280, height=720, gop=150).path
    long = make_video(base / "long.mp4", seconds=1000, fps=1, width=160, height=120, gop=10).path  # 1 image/s series
    return small, heavy, long


@pytest.fixture
def stack(
    settings: Settings, video_paths: tuple[Path, Path, Path], start_worker: Callable[..., WorkerProcess]
) -> Iterator[Stack]:
    services = make_services(settings)
    small, heavy, long = video_paths
    for bucket in BUCKETS:
        services.objects.make_bucket(bucket)
    grants = services.grants
    for tenant, own in (("alpha", "alpha"), ("beta", "beta")):
        grants.grant(tenant, own, read=True, write=True)
        grants.grant(tenant, f"shared/{tenant[0]}/", read=True, write=True)
        grants.grant(tenant, "common", read=True, write=True)
    services.objects.put("alpha", "in/a.mp4", small.read_bytes(), "video/mp4")
    services.objects.put("shared", "a/in/a.mp4", small.read_bytes(), "video/mp4")
    services.objects.put("beta", "in/b.mp4", small.read_bytes(), "video/mp4")
    services.objects.put("beta", "in/heavy.mp4", heavy.read_bytes(), "video/mp4")
    services.objects.put("beta", "in/long.mp4", long.read_bytes(), "video/mp4")
    http = create_app(settings, services).test_client()
    alpha = NativeTenant(http, services.credentials.create("alpha"))
    start_worker(concurrency=2)
    submitted = alpha.submit("alpha", "in/a.mp4", "alpha", "out/{JobId}.jpg", time_ms=500)
    assert submitted.job_id, submitted
    assert wait_finished(alpha, submitted.job_id) == "succeeded", alpha.job(submitted.job_id).body
    alpha_job = alpha.job(submitted.job_id).body
    yield Stack(services, http, alpha, alpha_job)
    services.redis.close()


def wait_finished(client: TenantClient, job_id: str, timeout: float = 60) -> str:
    """The job's state once it ended (or at the timeout), read through the client's dialect."""
    deadline = time.monotonic() + timeout
    while True:
        state = client.state(job_id)
        if state in ("succeeded", "failed", "canceled") or time.monotonic() > deadline:
            return state
        time.sleep(0.1)


@pytest.fixture(params=sorted(DIALECT_CLIENTS))
def beta(request: pytest.FixtureRequest, stack: Stack) -> Iterator[TenantClient]:
    client = DIALECT_CLIENTS[request.param](stack.http, stack.services.credentials.create("beta"))
    yield client
    client.close()


def test_the_second_tenant_can_neither_read_nor_overwrite_nor_delete_the_firsts_objects(
    stack: Stack, beta: TenantClient
) -> None:
    services = stack.services
    before = fingerprint(services, ALPHAS)
    a_image = stack.alpha_job["manifest"]["images"][0]
    assert len(before) == 3  # alpha's input, its output image, its input under shared/a/

    # Reads: alpha's output and input over /objects with beta's key.
    beta_key = services.credentials.create("beta")
    native_beta = NativeTenant(stack.http, beta_key)
    for path in (f"/objects/alpha/{a_image['key']}", "/objects/alpha/in/a.mp4", "/objects/shared/a/in/a.mp4"):
        resp = stack.http.get(path, headers=native_beta.headers)
        assert resp.status_code == 403 and resp.get_json()["code"] == "AccessDenied", path
    # A signed URL is for the one object it names: re-pointed at alpha's input it is refused.
    signed = urlsplit(a_image["url"])
    assert stack.http.get(f"{signed.path}?{signed.query}").status_code == 200  # the capability alpha shares
    assert stack.http.get(f"/objects/alpha/in/a.mp4?{signed.query}").status_code == 403

    # Submissions that would read alpha's objects or write over them, through beta's dialect.
    hostile = {
        "read alpha's input": beta.submit("alpha", "in/a.mp4", "beta", "out/x.jpg"),
        "read alpha's shared input": beta.submit("shared", "a/in/a.mp4", "beta", "out/x.jpg"),
        "output onto alpha's input": beta.submit("beta", "in/b.mp4", "alpha", "in/a.mp4"),
        "output onto alpha's image": beta.submit("beta", "in/b.mp4", "alpha", a_image["key"]),
        "output into alpha's shared prefix": beta.submit("beta", "in/b.mp4", "shared", "a/in/a.mp4"),
    }
    if beta.can_sprite:
        sprite = Sprite("alpha", "out/sheet-")
        hostile["sheets into alpha's bucket"] = beta.submit("beta", "in/b.mp4", "beta", "out/c.jpg", sprite=sprite)
    for what, outcome in hostile.items():
        assert beta.denied(outcome), (what, outcome)

    # Alpha's job does not exist for beta: no read, no cancel, no delete, not listed.
    a_id = stack.alpha_job["id"]
    assert beta.not_found(beta.job(a_id))
    if beta.can_cancel:
        assert beta.not_found(beta.cancel(a_id))
    if beta.can_delete:
        assert beta.not_found(beta.delete(a_id, outputs=True))
    assert a_id not in beta.list_ids()
    assert services.jobs.get(a_id).state is JobState.SUCCEEDED

    # Beta's own work succeeds, in its own bucket and its own shared prefix.
    own = beta.submit("beta", "in/b.mp4", "shared", "b/out/own.jpg")
    assert own.job_id and wait_finished(beta, own.job_id) == "succeeded", own
    assert services.objects.stat("shared", beta.single_key("b/out/own.jpg", own.job_id)) is not None
    assert fingerprint(services, ALPHAS) == before


def test_a_canceled_job_deletes_only_what_it_wrote_in_a_shared_bucket(stack: Stack, beta: TenantClient) -> None:
    """Beta's 40-image job plans the key where alpha keeps an object in the bucket both may write;
    canceled early, its cleanup removes the images it wrote and leaves alpha's object alone.

    Alpha uploads right after the submission (a key may name the job), long before the job would
    reach that image. A dialect that cannot cancel a running job cancels through the native API."""
    services = stack.services
    started = beta.submit("beta", beta.race_input, "common", "race/", count=beta.series_count)
    assert started.job_id, started
    alphas = beta.series_key("race/", beta.series_count, started.job_id)  # the key of its last planned image
    alpha_bytes = b"alpha's own bytes in the common bucket"
    services.objects.put("common", alphas, alpha_bytes, "image/png")  # alpha uploads it, as to any S3 bucket
    canceller = beta if beta.cancels_running else NativeTenant(stack.http, services.credentials.create("beta"))
    deadline = time.monotonic() + 60
    while services.jobs.get(started.job_id).progress_done < 2:
        assert time.monotonic() < deadline, services.jobs.get(started.job_id)
        time.sleep(0.02)
    assert canceller.cancel(started.job_id).status < 300
    assert wait_finished(canceller, started.job_id) == "canceled"
    assert services.objects.get("common", alphas) == alpha_bytes
    assert services.objects.list_keys("common", "race/") == [alphas]
    assert services.jobs.written(started.job_id) == []


def test_each_tenant_reads_its_own_outputs(stack: Stack) -> None:
    image = stack.alpha_job["manifest"]["images"][0]
    resp = stack.http.get(f"/objects/alpha/{image['key']}", headers=stack.alpha.headers)
    assert resp.status_code == 200 and resp.data == stack.services.objects.get("alpha", image["key"])
    assert stack.alpha.delete(stack.alpha_job["id"], outputs=True).status == 204
    assert stack.services.objects.stat("alpha", image["key"]) is None
    assert stack.services.objects.stat("alpha", "in/a.mp4") is not None  # its input was never its output
