"""Bucket grants at submission (read on the input; write on every output, sheet and storyboard
key; never the job's own input), in the core so that every dialect gets them, and the operator's
grant/revoke semantics."""

from __future__ import annotations

from typing import Any

import pytest
from flask.testing import FlaskClient

from app.core.errors import AccessDenied
from app.core.service import SubmitRequest
from app.core.specs import ObjectRef, OutputTarget, SingleTime, SnapshotSpec, SpriteSpec
from app.storage.credentials import AccessKey
from app.web import create_app
from app.wiring import Services
from tests.integration.test_api import assert_error, auth, body, submit


@pytest.fixture
def client(services: Services) -> FlaskClient:
    for bucket in ("beta-media", "shared"):
        services.objects.make_bucket(bucket)
    for bucket, key in (("media", "in/video.mp4"), ("beta-media", "v.mp4"), ("shared", "in/v.mp4")):
        services.objects.put(bucket, key, b"\x00" * 64, "video/mp4")
    return create_app(services.settings, services).test_client()


@pytest.fixture
def beta(services: Services) -> AccessKey:
    """A tenant with its own bucket, and a prefix of a shared one."""
    services.grants.grant("beta", "beta-media", read=True, write=True)
    services.grants.grant("beta", "shared/in/", read=True)
    services.grants.grant("beta", "shared/out/beta/", write=True)
    return services.credentials.create("beta")


def job(**overrides: Any) -> dict[str, Any]:
    """beta's own input and output unless overridden."""
    return body(
        **{
            "input": {"bucket": "beta-media", "key": "v.mp4"},
            "output": {"bucket": "beta-media", "key": "x/{Count}.jpg"},
        }
        | overrides
    )


def test_a_tenant_works_inside_its_grants(client: FlaskClient, beta: AccessKey) -> None:
    ok = [
        job(output={"bucket": "beta-media", "key": "shots/{JobId}/{Count}.jpg"}),
        job(input={"bucket": "shared", "key": "in/v.mp4"}, output={"bucket": "shared", "key": "out/beta/{Count}.jpg"}),
        job(
            output={"bucket": "beta-media", "key": "c/{Count}.jpg"},
            snapshot={
                "mode": "single",
                "sprite": {"output": {"bucket": "shared", "key": "out/beta/s-{TileCount}.jpg"}},
            },
        ),
    ]
    for payload in ok:
        resp = submit(client, beta, payload)
        assert resp.status_code == 202, resp.get_data(as_text=True)


@pytest.mark.parametrize(
    ("payload", "fragment"),
    [
        (job(input={"bucket": "media", "key": "in/video.mp4"}), "read media/in/video.mp4"),
        (job(input={"bucket": "shared", "key": "inbox/v.mp4"}), "read shared/inbox/v.mp4"),
        (job(output={"bucket": "out", "key": "{Count}.jpg"}), "write to out/"),
        (job(output={"bucket": "shared", "key": "out/alpha/{Count}.jpg"}), "write to shared/out/alpha/"),
        (job(output={"bucket": "shared", "key": "out/{JobId}/beta/{Count}.jpg"}), "write to shared/out/"),
        (job(output={"bucket": "shared", "key": "in/v.mp4"}), "write to shared/in/v.mp4"),
        (
            job(
                output={"bucket": "beta-media", "key": "x/{Count}.jpg"},
                snapshot={"mode": "single", "sprite": {"output": {"bucket": "media", "key": "s/{TileCount}.jpg"}}},
            ),
            "write to media/s/",
        ),
    ],
)
def test_everything_outside_the_grants_is_403(
    client: FlaskClient, beta: AccessKey, payload: dict[str, Any], fragment: str
) -> None:
    assert_error(submit(client, beta, payload), 403, "AccessDenied", fragment)


def test_grants_come_before_existence_so_objects_cannot_be_probed(client: FlaskClient, beta: AccessKey) -> None:
    present = submit(client, beta, job(input={"bucket": "media", "key": "in/video.mp4"}))
    absent = submit(client, beta, job(input={"bucket": "media", "key": "in/none.mp4"}))
    assert present.status_code == absent.status_code == 403


@pytest.mark.parametrize(
    ("output", "snapshot"),
    [
        ({"bucket": "beta-media", "key": "v.mp4"}, {"mode": "single"}),
        ({"bucket": "beta-media", "key": "{Count}.mp4"}, {"mode": "series", "interval_s": 1, "count": 3}),
        (
            {"bucket": "beta-media", "key": "x.jpg"},
            {"mode": "single", "sprite": {"output": {"bucket": "beta-media", "key": "v.mp4"}}},
        ),
    ],
)
def test_a_job_never_writes_over_its_own_input(
    client: FlaskClient, beta: AccessKey, services: Services, output: dict[str, str], snapshot: dict[str, Any]
) -> None:
    if output["key"] == "{Count}.mp4":
        services.objects.put("beta-media", "00002.mp4", b"\x00" * 64, "video/mp4")
        payload = job(input={"bucket": "beta-media", "key": "00002.mp4"}, output=output, snapshot=snapshot)
    else:
        payload = job(output=output, snapshot=snapshot)
    assert_error(submit(client, beta, payload), 400, "InvalidParameter", "own input")


def test_storyboard_keys_are_checked_against_the_input_too(services: Services) -> None:
    services.objects.put("out", "s/board.vtt", b"WEBVTT", "text/vtt")
    services.grants.grant("acme", "out", read=True, write=True)
    spec = SnapshotSpec(
        input=ObjectRef("out", "s/board.vtt"),
        timing=SingleTime(0),
        output=OutputTarget("out", "c.jpg"),
        sprite=SpriteSpec(target=OutputTarget("out", "s/board-{sheet}.jpg")),
    )
    with pytest.raises(Exception, match="own input"):
        services.snapshots.submit("acme", SubmitRequest(spec=spec))


def test_the_core_refuses_for_every_dialect(services: Services) -> None:
    """The check is in the use case, so a vendor dialect calling ``submit`` gets it too."""
    spec = SnapshotSpec(
        input=ObjectRef("media", "in/video.mp4"), timing=SingleTime(0), output=OutputTarget("out", "x.jpg")
    )
    services.objects.put("media", "in/video.mp4", b"\x00", "video/mp4")
    with pytest.raises(AccessDenied) as denied:
        services.snapshots.submit("nobody", SubmitRequest(spec=spec))
    assert (denied.value.code, denied.value.field, denied.value.access) == ("AccessDenied", "input", "read")
    services.grants.grant("nobody", "media", read=True)
    with pytest.raises(AccessDenied) as denied:
        services.snapshots.submit("nobody", SubmitRequest(spec=spec))
    assert (denied.value.field, denied.value.access) == ("output", "write")


def test_grant_and_revoke_add_and_take_away_permissions(services: Services) -> None:
    grants = services.grants
    grants.grant("t1", "media/in/", read=True)
    grants.grant("t1", "media/in/", write=True)
    assert [(g.scope, g.read, g.write) for g in grants.grants_for("t1")] == [("media/in/", True, True)]
    left = grants.revoke("t1", "media/in/", read=True, write=False)
    assert left is not None and (left.read, left.write) == (False, True)
    assert grants.revoke("t1", "media/in/") is None and grants.grants_for("t1") == []
    assert all(tenant != "t1" for tenant, _ in grants.list_all())
    with pytest.raises(Exception, match="read"):
        grants.grant("t1", "media")  # neither flag


def test_unsigned_object_reads_need_a_read_grant(client: FlaskClient, beta: AccessKey, tenant_key: AccessKey) -> None:
    assert client.get("/objects/beta-media/v.mp4", headers=auth(beta)).status_code == 200
    assert_error(client.get("/objects/media/in/video.mp4", headers=auth(beta)), 403, "AccessDenied")
    assert_error(client.get("/objects/media/in/absent.mp4", headers=auth(beta)), 403, "AccessDenied")
    assert client.get("/objects/media/in/video.mp4", headers=auth(tenant_key)).status_code == 200
    assert_error(client.get("/objects/beta-media/v.mp4", headers=auth(tenant_key)), 403, "AccessDenied")
