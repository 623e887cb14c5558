"""Huawei MPC's official SDK (``huaweicloudsdkmpc`` 3.1.219, unmodified) against openmps with a
real worker: queued TIME and DOTS tasks, sync DOTS and DOTS_MS, tar packing, sizes, black-frame
knobs, listing by ids, status, time window and pages, cancelling a waiting task, and parity with
the native API.

Every picture is checked for content: the test video draws its frame index into each frame,
and the picture must hold the frame a player shows at the requested time. Key names are
Huawei's: ``<output_filename>_<second>.jpg`` (several pictures), ``<output_filename>.jpg`` (one),
``<second>.jpg`` without a name, under ``<output.object>/<task_id>/`` unless ``original_dir: 1``.
"""

from __future__ import annotations

import base64
import io
import tarfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import httpx
import numpy as np
import pytest
from huaweicloudsdkcore.exceptions.exceptions import ClientRequestException
from huaweicloudsdkmpc.v1 import (
    CreateThumbnailsTaskRequest,
    CreateThumbReq,
    DeleteThumbnailsTaskRequest,
    ListThumbnailsTaskRequest,
    MpcClient,
    ObsObjInfo,
    ThumbnailPara,
)

from app.core.pipelines import DEFAULT_PIPELINE_ID, PipelineState
from tests.integration.dialects.huawei.conftest import Stack, finished
from tests.media import make_video
from tests.urlserver import MediaServer


@pytest.fixture(scope="module")
def live(stack: Stack) -> Iterator[Stack]:
    stack.start_worker()
    yield stack


@pytest.fixture(scope="module")
def client(live: Stack) -> MpcClient:
    return live.client()


def create(client: MpcClient, para: ThumbnailPara, *, out: str = "thumbs/", video: str = "in/v.mp4", **kw: object):  # type: ignore[no-untyped-def]
    body = CreateThumbReq(
        input=ObsObjInfo(bucket="media", location="cn-north-4", object=video),
        output=ObsObjInfo(bucket="out", location="cn-north-4", object=out),
        thumbnail_para=para,
        **kw,
    )
    return client.create_thumbnails_task(CreateThumbnailsTaskRequest(body=body))


def pictures(live: Stack, task) -> list[int]:  # type: ignore[no-untyped-def]
    return [live.drawn("out", f"{task.output.object}/{p.pic_name}") for p in task.thumbnail_info]


def test_queued_time_task_every_second_to_the_last_frame(live: Stack, client: MpcClient) -> None:
    v = live.video  # 4 s, 25 fps
    made = create(client, ThumbnailPara(type="TIME", time=1, output_filename="snap"), user_data="ud-1")
    assert made.status_code == 200 and made.task_id
    task = finished(client, made.task_id)
    assert task.status == "SUCCEEDED", task.description
    assert task.output.object == f"thumbs/{made.task_id}" and task.output.location == "cn-north-4"
    assert task.input.object == "in/v.mp4" and task.user_data == "ud-1"
    assert [p.pic_name for p in task.thumbnail_info] == [f"snap_{s}.jpg" for s in range(5)]
    # 0..3 s, then the closing frame at the 4 s end: the last frame
    assert pictures(live, task) == [v.frame_at(s * 1000) for s in range(4)] + [v.frame_count - 1]
    assert len(task.create_time) == len(task.end_time) == 14 and task.create_time <= task.end_time


def test_queued_time_task_inside_a_window(live: Stack, client: MpcClient) -> None:
    made = create(client, ThumbnailPara(type="TIME", time=1, start_time=1, duration=2), original_dir=1, out="win")
    task = finished(client, made.task_id)
    assert task.output.object == "win"
    assert [p.pic_name for p in task.thumbnail_info] == ["1.jpg", "2.jpg", "3.jpg"]
    assert pictures(live, task) == [live.video.frame_at(s * 1000) for s in (1, 2, 3)]


def test_queued_dots_task_with_sizes(live: Stack, client: MpcClient) -> None:
    boxed = create(client, ThumbnailPara(type="DOTS", dots=[3, 1], width=160, height=100), out="dots/")
    longest = create(client, ThumbnailPara(type="DOTS", dots=[2], max_length=240, output_filename="cover"))
    task = finished(client, boxed.task_id)
    assert [p.pic_name for p in task.thumbnail_info] == ["1.jpg", "3.jpg"]
    assert pictures(live, task) == [live.video.frame_at(1000), live.video.frame_at(3000)]
    assert live.image("out", f"{task.output.object}/1.jpg").shape[:2] == (100, 160)  # width x height box
    single = finished(client, longest.task_id)
    assert single.output_file_name == "cover.jpg" and [p.pic_name for p in single.thumbnail_info] == ["cover.jpg"]
    assert live.image("out", f"{single.output.object}/cover.jpg").shape[:2] == (180, 240)  # long side 240


def test_sync_dots_and_dots_ms_answer_with_the_picture_in_place(live: Stack, client: MpcClient) -> None:
    dots = create(client, ThumbnailPara(type="DOTS", dots=[2], output_filename="now"), sync=1)
    assert dots.status == "SUCCEEDED" and dots.output_file_name == "now.jpg" and dots.thumbnail_time == "2"
    assert dots.output.object == f"thumbs/{dots.task_id}" and len(dots.create_time) == 14
    # no polling: the picture exists when the call returns
    assert live.drawn("out", f"{dots.output.object}/now.jpg") == live.video.frame_at(2000)
    ms = create(client, ThumbnailPara(type="DOTS_MS", dots_ms=[1530]), sync=1, original_dir=1, out="sync")
    assert ms.status == "SUCCEEDED" and ms.output_file_name == "1530.jpg" and ms.thumbnail_time == "1530"
    assert live.drawn("out", "sync/1530.jpg") == live.video.frame_at(1530)


def test_tar_packs_the_pictures_under_their_names(live: Stack, client: MpcClient) -> None:
    made = create(client, ThumbnailPara(type="DOTS", dots=[1, 2], output_filename="pack"), tar=0)
    task = finished(client, made.task_id)
    assert task.output_file_name == "pack.tar"
    assert [p.pic_name for p in task.thumbnail_info] == ["pack_1.jpg", "pack_2.jpg"]
    folder = task.output.object
    assert live.services.objects.list_keys("out", folder + "/") == [f"{folder}/pack.tar"]  # the tar alone
    with tarfile.open(fileobj=io.BytesIO(live.services.objects.get("out", f"{folder}/pack.tar"))) as tar:
        assert tar.getnames() == ["pack_1.jpg", "pack_2.jpg"]
        first = tar.extractfile("pack_2.jpg")
        assert first is not None
        data = first.read()
    live.services.objects.put("out", "scratch/pack_2.jpg", data, "image/jpeg")
    assert live.drawn("out", "scratch/pack_2.jpg") == live.video.frame_at(2000)


def test_black_frame_knobs_skip_a_black_opening(live: Stack, client: MpcClient) -> None:
    dark = make_video(live.tmp / "dark.mp4", seconds=2, fps=25, gop=25, black_lead_frames=12)
    live.services.objects.put("media", "in/dark.mp4", dark.path.read_bytes(), "video/mp4")
    made = create(client, ThumbnailPara(type="DOTS", dots=[0], amount=95, threshold=30), video="in/dark.mp4", sync=1)
    assert made.status == "SUCCEEDED"
    assert live.drawn("out", f"{made.output.object}/0.jpg") == 12  # the first frame that is not black


def test_listing_by_ids_status_window_and_pages(live: Stack, client: MpcClient) -> None:
    ids = []
    for i in range(3):
        ids.append(create(client, ThumbnailPara(type="DOTS", dots=[1]), out=f"list/{i}").task_id)
        time.sleep(0.01)  # creation times are in ms: keep the newest-first order unambiguous
    done = [finished(client, task_id) for task_id in ids]
    assert {t.status for t in done} == {"SUCCEEDED"}
    by_ids = client.list_thumbnails_task(ListThumbnailsTaskRequest(task_id=[ids[2], "no-such-task", ids[0]]))
    # unknown ids are not listed; newest first (the SDK sorts the ids it sends)
    assert [t.task_id for t in by_ids.task_array] == [ids[2], ids[0]]
    reverse = client.list_thumbnails_task(ListThumbnailsTaskRequest(task_id=[ids[0], ids[2]]))
    assert [t.task_id for t in reverse.task_array] == [ids[2], ids[0]]
    assert by_ids.total == 2 and by_ids.is_truncated == 0
    everything = client.list_thumbnails_task(ListThumbnailsTaskRequest(size=100))
    total = everything.total
    assert total == len(everything.task_array) >= 3 and everything.is_truncated == 0
    newest_first = [t.task_id for t in everything.task_array]
    assert newest_first[:3] == ids[::-1]
    # pages from 0, `size` each, newest first, no task twice, the same total on each
    pages = [client.list_thumbnails_task(ListThumbnailsTaskRequest(page=n, size=2)) for n in range((total + 1) // 2)]
    assert [t.task_id for p in pages for t in p.task_array] == newest_first
    assert {p.total for p in pages} == {total}
    assert [p.is_truncated for p in pages] == [1] * (len(pages) - 1) + [0]
    succeeded = client.list_thumbnails_task(ListThumbnailsTaskRequest(status="SUCCEEDED", size=100))
    assert set(ids) <= {t.task_id for t in succeeded.task_array} and {t.status for t in succeeded.task_array} == {
        "SUCCEEDED"
    }
    now = datetime.now(tz=UTC)
    window = dict(start_time=(now - timedelta(minutes=5)).strftime("%Y%m%d%H%M%S"), size=100)
    recent = client.list_thumbnails_task(ListThumbnailsTaskRequest(end_time=now.strftime("%Y%m%d%H%M%S"), **window))
    assert set(ids) <= {t.task_id for t in recent.task_array}
    old = client.list_thumbnails_task(ListThumbnailsTaskRequest(start_time="20200101000000", end_time="20200102000000"))
    assert old.total == 0 and old.task_array == []


def test_cancel_a_waiting_task_and_refuse_a_finished_one(live: Stack, client: MpcClient) -> None:
    """Huawei tasks queue on the shared default pipeline: an operator pause keeps one waiting."""
    snapshots = live.services.snapshots
    snapshots.set_pipeline_state_as_operator(DEFAULT_PIPELINE_ID, PipelineState.PAUSED)
    try:
        waiting = create(client, ThumbnailPara(type="DOTS", dots=[1]))
        time.sleep(0.5)  # a worker would have picked it up by now if the pipeline ran
        listed = client.list_thumbnails_task(ListThumbnailsTaskRequest(task_id=[waiting.task_id]))
        assert listed.task_array[0].status == "WAITING"
        gone = client.delete_thumbnails_task(DeleteThumbnailsTaskRequest(task_id=waiting.task_id))
        assert gone.status_code == 204
        task = client.list_thumbnails_task(ListThumbnailsTaskRequest(task_id=[waiting.task_id])).task_array[0]
        assert task.status == "CANCELED" and task.thumbnail_info == [] and task.end_time
        canceled = client.list_thumbnails_task(ListThumbnailsTaskRequest(status="CANCELED"))
        assert waiting.task_id in [t.task_id for t in canceled.task_array]
    finally:
        snapshots.set_pipeline_state_as_operator(DEFAULT_PIPELINE_ID, PipelineState.ACTIVE)
    done = create(client, ThumbnailPara(type="DOTS", dots=[1]), sync=1)
    for task_id in (waiting.task_id, done.task_id):  # canceled already, succeeded
        with pytest.raises(ClientRequestException) as info:
            client.delete_thumbnails_task(DeleteThumbnailsTaskRequest(task_id=task_id))
        assert (info.value.status_code, info.value.error_code) == (400, "MPC.10212")
        assert "only WAITING tasks can be canceled" in info.value.error_msg


def test_parity_with_the_native_api(live: Stack, client: MpcClient) -> None:
    """The same request, natively and through Huawei, captures the same frames, byte for byte."""
    key = live.services.credentials.create("acme")
    auth = {"Authorization": "Basic " + base64.b64encode(f"{key.id}:{key.secret}".encode()).decode()}
    native = httpx.post(
        f"{live.url}/api/v1/jobs?wait=10",
        headers=auth,
        json={
            "input": {"bucket": "media", "key": "in/v.mp4"},
            "output": {"bucket": "out", "key": "native/{JobId}/{Count}.jpg"},
            "snapshot": {"mode": "points", "points_ms": [1000, 2000, 3000], "width": 160},
        },
    ).json()
    assert native["state"] == "succeeded", native
    huawei = finished(client, create(client, ThumbnailPara(type="DOTS", dots=[1, 2, 3], width=160)).task_id)
    native_keys = [i["key"] for i in native["manifest"]["images"]]
    huawei_keys = [f"{huawei.output.object}/{p.pic_name}" for p in huawei.thumbnail_info]
    assert [live.drawn("out", k) for k in native_keys] == [live.drawn("out", k) for k in huawei_keys]
    assert [live.drawn("out", k) for k in huawei_keys] == [live.video.frame_at(t) for t in (1000, 2000, 3000)]
    objects = live.services.objects
    assert [objects.get("out", k) for k in native_keys] == [objects.get("out", k) for k in huawei_keys]
    assert np.array_equal(live.image("out", native_keys[0]), live.image("out", huawei_keys[0]))


def test_a_url_input_job_shows_in_the_listing(live: Stack, client: MpcClient) -> None:
    """A job whose input is a URL (native API only) lists through the SDK like any other task:
    no bucket, the URL as the object, its pictures captured from the URL's video."""
    server = MediaServer()
    server.objects["/clip.mp4"] = live.video.path.read_bytes()
    server.start()
    try:
        url = server.url("/clip.mp4?token=abc")
        key = live.services.credentials.create("acme")
        auth = {"Authorization": "Basic " + base64.b64encode(f"{key.id}:{key.secret}".encode()).decode()}
        native = httpx.post(
            f"{live.url}/api/v1/jobs?wait=10",
            headers=auth,
            json={
                "input": {"url": url},
                "output": {"bucket": "out", "key": "byurl/{JobId}/{Count}.jpg"},
                "snapshot": {"mode": "points", "points_ms": [1500]},
            },
        ).json()
        assert native["state"] == "succeeded", native
        task = finished(client, native["id"])
        assert (task.status, task.input.bucket, task.input.object) == ("SUCCEEDED", "", url)
        assert live.drawn("out", native["manifest"]["images"][0]["key"]) == live.video.frame_at(1500)
    finally:
        server.stop()
