"""Snapshot jobs through both official Alibaba SDKs against the whole stack: API -> job store ->
a real Celery worker -> object storage -> notifier -> the pipeline's MNS queue.

Every image is checked for content: the test videos draw their frame number into each frame, so
each assertion names the frame that must be there (``tests/media.py``).
"""

from __future__ import annotations

import base64
import json
import os
import signal
import threading
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
from alibabacloud_mts20140618 import models as tea
from alibabacloud_tea_openapi.exceptions import ClientException
from aliyunsdkcore.acs_exception.exceptions import ServerException
from aliyunsdkmts.request.v20140618.AddPipelineRequest import AddPipelineRequest
from aliyunsdkmts.request.v20140618.QuerySnapshotJobListRequest import QuerySnapshotJobListRequest
from aliyunsdkmts.request.v20140618.SubmitSnapshotJobRequest import SubmitSnapshotJobRequest
from aliyunsdkmts.request.v20140618.UpdatePipelineRequest import UpdatePipelineRequest
from mns.account import Account
from mns.mns_exception import MNSServerException
from mns.queue import QueueMeta

from app.core.ports import JobQuery
from app.core.states import JobState
from app.web import create_app
from app.wiring import build_services
from tests.integration.dialects.mts.conftest import AK, SK, TENANT, Stack, call, http
from tests.media import VideoFacts, make_bulky_video, make_not_a_video, make_video, read_frame_index
from tests.servers import serve_wsgi
from tests.workerproc import WorkerProcess

pytestmark = pytest.mark.usefixtures("worker")
# Jobs are frozen on purpose in one test: leases must outlast that; cancels are seen quickly.
STACK_SETTINGS = {"lease_ttl_s": 20.0, "heartbeat_interval_s": 0.1}
LOC = "oss-cn-hangzhou"


@pytest.fixture(scope="module")
def video(stack: Stack) -> VideoFacts:
    facts = make_video(stack.tmp / "v.mp4", seconds=4, fps=25, width=320, height=240, gop=25)
    data = facts.path.read_bytes()
    stack.put("v.mp4", data)
    stack.put("dir/a b+c.mp4", data)  # reached through a URL-encoded Object name
    return facts


def oss(obj: str, bucket: str = "out") -> dict[str, str]:
    return {"Bucket": bucket, "Location": LOC, "Object": obj}


def source(obj: str = "v.mp4") -> str:
    return json.dumps(oss(obj, "media"))


def image(stack: Stack, key: str, bucket: str = "out") -> np.ndarray:
    img = cv2.imdecode(np.frombuffer(stack.services.objects.get(bucket, key), np.uint8), cv2.IMREAD_COLOR)
    assert img is not None, key
    return img


def frame(stack: Stack, key: str) -> int:
    return read_frame_index(image(stack, key))


def submit_classic(stack: Stack, config: dict[str, Any], inp: str | None = None, **extra: str) -> dict[str, Any]:
    req = SubmitSnapshotJobRequest()
    req.set_Input(inp or source())
    req.set_SnapshotConfig(json.dumps(config))
    for name, value in extra.items():
        getattr(req, f"set_{name}")(value)
    return call(stack.classic(), req)["SnapshotJob"]


def query_ids(stack: Stack, ids: list[str]) -> dict[str, Any]:
    req = QuerySnapshotJobListRequest()
    req.set_SnapshotJobIds(",".join(ids))
    return call(stack.classic(), req)


def finished(stack: Stack, ids: list[str], timeout: float = 60) -> dict[str, dict[str, Any]]:
    """Poll QuerySnapshotJobList (Tea SDK) until every job is Success or Fail."""
    deadline = time.monotonic() + timeout
    while True:
        got = stack.tea().query_snapshot_job_list(tea.QuerySnapshotJobListRequest(snapshot_job_ids=",".join(ids)))
        jobs = {j.id: j.to_map() for j in got.body.snapshot_job_list.snapshot_job}
        if all(j["State"] in ("Success", "Fail") for j in jobs.values()) or time.monotonic() > deadline:
            return jobs
        time.sleep(0.1)


def test_sync_snapshots_are_in_the_bucket_when_the_call_returns(stack: Stack, video: VideoFacts) -> None:
    job = submit_classic(
        stack,
        {"OutputFile": oss("sync%2Fexact%20one.jpg"), "Time": "1530"},
        inp=source("dir%2Fa%20b%2Bc.mp4"),
        UserData="ticket-1",
    )
    assert job["State"] == "Success" and job["Count"] == "1" and job["Code"] == ""
    assert job["Input"] == {"Bucket": "media", "Location": LOC, "Object": "dir%2Fa%20b%2Bc.mp4"}
    assert job["SnapshotConfig"]["OutputFile"]["Object"] == "sync%2Fexact%20one.jpg"
    assert job["SnapshotConfig"]["Time"] == "1530" and job["SnapshotConfig"]["FrameType"] == "normal"
    assert job["UserData"] == "ticket-1" and job["PipelineId"] == "default"
    assert frame(stack, "sync/exact one.jpg") == video.frame_at(1530)  # decoded names, the exact frame
    assert stack.services.snapshots.get(TENANT, job["Id"]).priority == 10  # sync jobs go first
    queried = query_ids(stack, [job["Id"]])["SnapshotJobList"]["SnapshotJob"][0]  # what was sent, echoed again
    assert queried["Input"] == job["Input"]
    assert queried["SnapshotConfig"]["OutputFile"] == job["SnapshotConfig"]["OutputFile"]

    resp = stack.tea().submit_snapshot_job(
        tea.SubmitSnapshotJobRequest(
            input=source(),
            snapshot_config=json.dumps(
                {"OutputFile": oss("sync/intra.jpg"), "Time": 1530, "FrameType": "intra", "Width": 160}
            ),
        )
    )
    body = resp.body.snapshot_job
    assert resp.status_code == 200 and body.state == "Success" and body.snapshot_config.frame_type == "intra"
    img = image(stack, "sync/intra.jpg")
    assert img.shape[:2] == (120, 160)  # Width alone keeps the aspect ratio
    assert read_frame_index(img) == video.key_at(1530) != video.frame_at(1530)


def test_async_interval_even_and_time_point_jobs(stack: Stack, video: VideoFacts) -> None:
    configs = {
        "series": {"OutputFile": oss("a/{JobId}/s-{Count}.jpg"), "Time": "200", "Interval": "1", "Num": "3"},
        "even": {"OutputFile": oss("a/{JobId}/e-{Count}.jpg"), "Interval": "0", "Num": "4", "Height": "60"},
        "points": {
            "OutputFile": oss("a/{JobId}/p-{Count}.jpg"),
            "TimeArray": {"TimePointList": [3100, 500, 500, 2000]},
        },
        "intra": {
            "OutputFile": oss("a/{JobId}/i-{Count}.jpg"),
            "Time": "500",
            "Interval": "1",
            "Num": "3",
            "FrameType": "intra",
        },
    }
    expected = {
        "series": [video.frame_at(t) for t in (200, 1200, 2200)],
        "even": [video.frame_at(t) for t in (500, 1500, 2500, 3500)],  # centred in four equal slices
        "points": [video.frame_at(t) for t in (500, 500, 2000, 3100)],  # sorted, duplicates kept
        "intra": [video.key_at(t) for t in (500, 1500, 2500)],
    }
    submitted = {name: submit_classic(stack, cfg, UserData=name) for name, cfg in configs.items()}
    assert all(j["State"] == "Submitted" for j in submitted.values()), submitted
    assert submitted["series"]["SnapshotConfig"]["Num"] == "3"
    assert stack.services.snapshots.get(TENANT, submitted["series"]["Id"]).priority == 6  # MPS's default
    ids = {name: j["Id"] for name, j in submitted.items()}
    done = finished(stack, list(ids.values()))
    for name, job_id in ids.items():
        job = done[job_id]
        assert job["State"] == "Success" and job["Code"] == "" and job["UserData"] == name, job
        prefix = {"series": "s", "even": "e", "points": "p", "intra": "i"}[name]
        keys = [f"a/{job_id}/{prefix}-{n:05d}.jpg" for n in range(1, len(expected[name]) + 1)]
        assert job["Count"] == str(len(keys))
        assert [frame(stack, k) for k in keys] == expected[name], name
    assert image(stack, f"a/{ids['even']}/e-00001.jpg").shape[:2] == (60, 80)
    assert done[ids["points"]]["SnapshotConfig"]["TimeArray"]["TimePointList"] == [500, 500, 2000, 3100]


def test_a_tile_out_sprite_has_its_geometry_and_cells(stack: Stack, video: VideoFacts) -> None:
    job = submit_classic(
        stack,
        {
            "OutputFile": oss("t/{JobId}/c-{Count}.jpg"),
            "Time": "100",
            "Interval": "0.5",
            "Num": "6",
            "Width": "96",
            "TileOutputFile": oss("t/{JobId}/sheet-{TileCount}.jpg"),
            "TileOut": {
                "Lines": "2",
                "Columns": "2",
                "Margin": "4",
                "Padding": "2",
                "Color": "#336699",
                "IsKeepCellPic": "false",
                "CellSelStep": "1",
            },
        },
    )
    done = finished(stack, [job["Id"]])[job["Id"]]
    assert done["State"] == "Success" and done["Count"] == "6" and done["TileCount"] == "2"
    assert done["SnapshotConfig"]["TileOut"]["IsKeepCellPic"] == "false"
    first, second = (image(stack, f"t/{job['Id']}/sheet-0000{n}.jpg") for n in (1, 2))
    assert first.shape[:2] == (4 * 2 + 72 * 2 + 2, 4 * 2 + 96 * 2 + 2)  # margins, two rows, padding
    assert second.shape[:2] == (4 * 2 + 72, 4 * 2 + 96 * 2 + 2)  # the last sheet holds one row
    b, gr, r = (int(v) for v in first[1, 1])
    assert abs(r - 0x33) < 12 and abs(gr - 0x66) < 12 and abs(b - 0x99) < 12  # the background colour
    times = [100 + 500 * i for i in range(6)]
    cells = [(first, k) for k in range(4)] + [(second, k) for k in range(2)]
    for (sheet, k), t in zip(cells, times, strict=True):
        x, y = 4 + (k % 2) * (96 + 2), 4 + (k // 2) * (72 + 2)
        assert read_frame_index(sheet[y : y + 72, x : x + 96]) == video.frame_at(t)
    assert stack.services.objects.stat("out", f"t/{job['Id']}/c-00001.jpg") is None  # cells not kept


def test_failed_jobs_carry_mps_codes(stack: Stack, video: VideoFacts) -> None:
    stack.put("broken.mp4", make_not_a_video(stack.tmp / "broken.mp4").read_bytes())
    req = SubmitSnapshotJobRequest()
    req.set_Input(source("broken.mp4"))
    req.set_SnapshotConfig(json.dumps({"OutputFile": oss("f/x.jpg"), "Time": "0"}))
    with pytest.raises(ServerException) as sync_err:
        call(stack.classic(), req)
    assert sync_err.value.get_error_code() == "InvalidParameter.ResourceContentBad"
    assert sync_err.value.get_http_status() == 400
    with pytest.raises(ClientException) as tea_err:
        stack.tea().submit_snapshot_job(
            tea.SubmitSnapshotJobRequest(
                input=source(), snapshot_config=json.dumps({"OutputFile": oss("f/y.jpg"), "Time": "99000"})
            )
        )
    assert tea_err.value.code == "InvalidParameter.OutOfRange"  # a single exact time past the end
    broken = submit_classic(
        stack, {"OutputFile": oss("f/{Count}.jpg"), "Num": "2", "Interval": "1"}, inp=source("broken.mp4")
    )
    late = submit_classic(stack, {"OutputFile": oss("f/l{Count}.jpg"), "TimeArray": {"TimePointList": [60000, 90000]}})
    done = finished(stack, [broken["Id"], late["Id"]])
    assert done[broken["Id"]]["State"] == "Fail" and done[broken["Id"]]["Code"] == "InvalidParameter.ResourceContentBad"
    assert done[late["Id"]]["State"] == "Fail" and done[late["Id"]]["Code"] == "InvalidParameter.TimeArray"
    assert "duration" in done[late["Id"]]["Message"]


def test_a_paused_pipeline_holds_jobs_and_its_queue_gets_the_completion_message(
    stack: Stack, video: VideoFacts, notifier: object
) -> None:
    queue = Account(f"http://{stack.endpoint}", AK, SK).get_queue("mts-done")
    queue.create(QueueMeta())
    queue.set_encoding(False)  # MPS writes raw JSON into the queue
    add = AddPipelineRequest()
    add.set_Name("notified")
    add.set_NotifyConfig('{"QueueName": "mts-done"}')
    pipeline_id = call(stack.classic(), add)["Pipeline"]["Id"]
    pause = UpdatePipelineRequest()
    pause.set_PipelineId(pipeline_id)
    pause.set_State("Paused")
    assert call(stack.classic(), pause)["Pipeline"]["State"] == "Paused"

    job = submit_classic(
        stack,
        {"OutputFile": oss("n/{Count}.jpg"), "TimeArray": {"TimePointList": [1000, 2500]}},
        PipelineId=pipeline_id,
        UserData='{"order":7}',
    )
    time.sleep(2)  # long enough for a worker to have taken it, were the pipeline active
    [held] = query_ids(stack, [job["Id"]])["SnapshotJobList"]["SnapshotJob"]
    assert held["State"] == "Submitted" and held["MNSMessageResult"] == {}
    stack.tea().update_pipeline(tea.UpdatePipelineRequest(pipeline_id=pipeline_id, state="Active"))

    deadline = time.monotonic() + 60
    message = None
    while message is None and time.monotonic() < deadline:
        try:
            message = queue.receive_message(3)
        except MNSServerException as exc:  # MessageNotExist after the long poll: keep waiting
            assert exc.type == "MessageNotExist", exc
    assert message is not None, (stack.tmp / "notifier.log").read_text()[-3000:]
    queue.delete_message(message.receipt_handle)
    body = json.loads(message.message_body)
    assert body["JobId"] == body["jobId"] == job["Id"]
    assert body["State"] == body["state"] == "Success" and body["Type"] == body["type"] == "Snapshot"
    assert body["UserData"] == '{"order":7}' and body["Count"] == 2 and body["TimeArray"] == [1000, 2500]
    assert body["UrlPattern"].endswith("/out/n/{Count}.jpg")  # a pattern: plain, not signed
    assert body["LastUrl"].split("?")[0].endswith("/out/n/00002.jpg") and "signature=" in body["LastUrl"]
    assert [frame(stack, f"n/0000{n}.jpg") for n in (1, 2)] == [video.frame_at(1000), video.frame_at(2500)]
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        [done] = query_ids(stack, [job["Id"]])["SnapshotJobList"]["SnapshotJob"]
        if done["MNSMessageResult"]:
            break
        time.sleep(0.1)
    assert done["State"] == "Success" and done["MNSMessageResult"] == {"MessageId": message.message_id}


def test_query_pages_newest_first_by_pipeline_and_state(stack: Stack, video: VideoFacts) -> None:
    made = stack.tea().add_pipeline(tea.AddPipelineRequest(name="listing")).body.pipeline.id
    ids = [
        submit_classic(stack, {"OutputFile": oss(f"q/{i}-{{Count}}.jpg"), "Num": "1"}, PipelineId=made)["Id"]
        for i in range(3)
    ]
    finished(stack, ids)
    seen: list[str] = []
    token = None
    while True:
        req = tea.QuerySnapshotJobListRequest(
            pipeline_id=made, state="Success", maximum_page_size=2, next_page_token=token
        )
        page = stack.tea().query_snapshot_job_list(req).body
        seen += [j.id for j in page.snapshot_job_list.snapshot_job]
        token = page.next_page_token
        if not token:
            break
    assert seen == list(reversed(ids))  # newest first, each once
    req2 = QuerySnapshotJobListRequest()
    req2.set_PipelineId(made)
    req2.set_State("Fail")
    assert call(stack.classic(), req2)["SnapshotJobList"]["SnapshotJob"] == []
    mixed = query_ids(stack, [ids[0], "0" * 32])
    assert [j["Id"] for j in mixed["SnapshotJobList"]["SnapshotJob"]] == [ids[0]]
    assert mixed["NonExistSnapshotJobIds"] == {"String": ["0" * 32]}


def test_native_and_mps_requests_produce_the_same_frames(stack: Stack, video: VideoFacts) -> None:
    points = [40, 1020, 1999, 3960]
    auth = "Basic " + base64.b64encode(f"{AK}:{SK}".encode()).decode()
    body = {
        "input": {"bucket": "media", "key": "v.mp4"},
        "output": {"bucket": "out", "key": "parity/native-{Count}.jpg"},
        "snapshot": {"mode": "points", "points_ms": points, "width": 160},
    }
    native = http(
        "POST",
        f"http://{stack.endpoint}/api/v1/jobs?wait=10",
        data=json.dumps(body).encode(),
        headers={"Authorization": auth, "Content-Type": "application/json"},
    ).json()
    mps = submit_classic(
        stack, {"OutputFile": oss("parity/mps-{Count}.jpg"), "TimeArray": {"TimePointList": points}, "Width": "160"}
    )
    assert native["state"] == "succeeded", native
    assert finished(stack, [mps["Id"]])[mps["Id"]]["State"] == "Success"
    native_frames = [frame(stack, f"parity/native-0000{n}.jpg") for n in range(1, 5)]
    mps_frames = [frame(stack, f"parity/mps-0000{n}.jpg") for n in range(1, 5)]
    assert native_frames == mps_frames == [video.frame_at(t) for t in points]
    for n in range(1, 5):
        assert image(stack, f"parity/native-0000{n}.jpg").shape == image(stack, f"parity/mps-0000{n}.jpg").shape


def test_a_sync_call_over_budget_is_snapshot_timeout_and_leaves_nothing_behind(
    stack: Stack, worker: WorkerProcess, tmp_path: Path
) -> None:
    """Over the budget the job is canceled: a queued one at once, a running one by its worker,
    which deletes what it wrote. The worker is frozen (SIGSTOP) once the job runs, so the job is
    certainly still running when the budget and the cancel grace run out."""
    slow = make_bulky_video(tmp_path / "slow.mp4", seconds=12, width=1920, height=1080, gop=300, noise=6, qp=32)
    stack.put("slow.mp4", slow.path.read_bytes())
    settings = stack.settings.with_(mts_sync_budget_s=0.3)
    services = build_services(settings)
    server, _ = serve_wsgi(create_app(settings, services))
    tight = Stack(settings, services, server.server_port, stack.tmp)
    errors: list[ServerException] = []

    def submit(config: dict[str, Any], **extra: str) -> threading.Thread:
        def go() -> None:
            try:
                submit_classic(tight, config, inp=source("slow.mp4"), **extra)
            except ServerException as exc:
                errors.append(exc)

        thread = threading.Thread(target=go)
        thread.start()
        return thread

    def running_job() -> str:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            found = stack.services.jobs.list(TENANT, JobQuery(state=JobState.RUNNING, limit=5)).jobs
            if found:
                return found[0].id
            time.sleep(0.002)
        raise AssertionError(f"no job started:\n{worker.log()}")

    assert worker.proc is not None
    try:
        thread = submit({"OutputFile": oss("late/one.jpg"), "Time": "11900"})
        job_id = running_job()
        os.killpg(worker.proc.pid, signal.SIGSTOP)
        try:
            thread.join(12)
            [err] = errors
            assert err.get_error_code() == "SnapshotTimeOut" and err.get_http_status() == 400
            assert stack.services.jobs.get(job_id).state is JobState.RUNNING  # frozen mid-job
            assert stack.services.jobs.cancel_requested(job_id)
        finally:
            os.killpg(worker.proc.pid, signal.SIGCONT)
        deadline = time.monotonic() + 15
        while not stack.services.jobs.get(job_id).is_terminal and time.monotonic() < deadline:
            time.sleep(0.05)
        assert stack.services.jobs.get(job_id).state is JobState.CANCELED
        assert stack.services.objects.stat("out", "late/one.jpg") is None
        [record] = query_ids(stack, [job_id])["SnapshotJobList"]["SnapshotJob"]
        assert record["State"] == "Fail" and record["Code"] == "SnapshotTimeOut"

        paused = stack.tea().add_pipeline(tea.AddPipelineRequest(name="frozen")).body.pipeline.id
        stack.tea().update_pipeline(tea.UpdatePipelineRequest(pipeline_id=paused, state="Paused"))
        errors.clear()
        submit({"OutputFile": oss("late/two.jpg"), "Time": "0"}, PipelineId=paused).join(12)
        [err] = errors
        assert err.get_error_code() == "SnapshotTimeOut"
        [queued] = stack.services.jobs.list(TENANT, JobQuery(pipeline_id=paused, limit=5)).jobs
        assert queued.state is JobState.CANCELED and stack.services.objects.stat("out", "late/two.jpg") is None
    finally:
        server.shutdown()
        server.server_close()
        services.redis.close()
