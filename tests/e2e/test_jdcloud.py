"""JD Cloud MPS end to end with the official jdcloud-sdk, unmodified: SDK -> openmps -> a real
worker process -> object storage, and the notifier process pushing ``mpsThumbnailComplete`` to
the endpoint set with setNotification. One served stack for the module.

Every image is checked by the frame index the test video draws into each frame (GOP 40 at 25 fps:
key frames at 0, 1.6 and 3.2 s, so whole seconds tell key-frame and exact captures apart).
"""

from __future__ import annotations

import base64
import json
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
import redis
from jdcloud_sdk.services.mps.apis.CreateThumbnailTaskRequest import (
    CreateThumbnailTaskParameters,
    CreateThumbnailTaskRequest,
)
from jdcloud_sdk.services.mps.apis.GetThumbnailTaskRequest import GetThumbnailTaskParameters, GetThumbnailTaskRequest
from jdcloud_sdk.services.mps.apis.ListThumbnailTaskRequest import ListThumbnailTaskParameters, ListThumbnailTaskRequest
from jdcloud_sdk.services.mps.apis.SetNotificationRequest import SetNotificationParameters, SetNotificationRequest
from jdcloud_sdk.services.mps.models.ThumbnailTaskRule import ThumbnailTaskRule
from jdcloud_sdk.services.mps.models.ThumbnailTaskSource import ThumbnailTaskSource
from jdcloud_sdk.services.mps.models.ThumbnailTaskTarget import ThumbnailTaskTarget

from app.notify.delivery import DeliveryStore
from app.notify.messages import completion_message_id
from app.web import create_app
from app.wiring import Services
from tests.e2e.test_notifications import start_notifier
from tests.integration.dialects.jdcloud.sdk import AK, REGION, SK, client
from tests.integration.notify.receiver import Received, Receiver
from tests.media import VideoFacts, make_not_a_video, make_video, read_frame_index
from tests.servers import RedisServer, free_port, serve_wsgi
from tests.stack import fast_settings, make_services
from tests.workerproc import WorkerProcess

TENANT = "acme"


@dataclass
class Stack:
    url: str
    services: Services
    video: VideoFacts
    receiver: Receiver
    notifier: subprocess.Popen[bytes]
    tmp: Path


@pytest.fixture(scope="module")
def stack(redis_server: RedisServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    plain = redis.Redis.from_url(redis_server.url)
    plain.flushall()
    plain.close()
    tmp = tmp_path_factory.mktemp("jd-e2e")
    port = free_port()
    settings = fast_settings(
        redis_server.url, tmp / "data", public_url=f"http://127.0.0.1:{port}", notify_time_scale=0.01
    )
    services = make_services(settings)
    services.credentials.create(TENANT, key_id=AK, secret=SK)
    video = make_video(tmp / "v.mp4", seconds=4, fps=25, width=320, height=240, gop=40)
    services.objects.put("media", "videos/in put.mp4", video.path.read_bytes(), "video/mp4")
    services.objects.put("media", "bad.mp4", make_not_a_video(tmp / "bad.mp4").read_bytes(), "video/mp4")
    server, url = serve_wsgi(create_app(settings, services), port=port)
    receiver = Receiver(
        cert_prefix=settings.effective_public_url, webhook_secret=services.snapshots.webhook_secret(TENANT)
    )
    worker = WorkerProcess(settings, tmp, concurrency=2).start()
    notifier = start_notifier(settings, tmp)
    try:
        yield Stack(url, services, video, receiver, notifier, tmp)
    finally:
        notifier.terminate()
        notifier.wait(15)
        worker.stop()
        receiver.close()
        server.shutdown()
        server.server_close()
        services.redis.close()


def create(stack: Stack, rule: ThumbnailTaskRule | None = None, key: str = "videos/in put.mp4", **target: Any) -> str:
    params = CreateThumbnailTaskParameters(
        REGION, ThumbnailTaskSource("media", key), ThumbnailTaskTarget("out", **target)
    )
    if rule is not None:
        params.setRule(rule)
    resp = client(stack.url).send(CreateThumbnailTaskRequest(params))
    assert resp.error is None, vars(resp.error)
    return str(resp.result["taskID"])


def finished(stack: Stack, task_id: str, timeout: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        task = client(stack.url).send(GetThumbnailTaskRequest(GetThumbnailTaskParameters(REGION, task_id))).result
        if task["status"] in ("SUCCESS", "ERROR") or time.monotonic() > deadline:
            return dict(task)
        time.sleep(0.1)


def image(stack: Stack, key: str) -> np.ndarray:
    img = cv2.imdecode(np.frombuffer(stack.services.objects.get("out", key), np.uint8), cv2.IMREAD_COLOR)
    assert img is not None, key
    return img


def frames(stack: Stack, task: dict[str, Any]) -> list[int]:
    return [read_frame_index(image(stack, k)) for k in task["target"]["keys"]]


def requested_ms(stack: Stack, task_id: str) -> list[float]:
    return [i.requested_ms for i in stack.services.jobs.get(task_id).manifest.images]


def spread(count: int, start_ms: float, end_ms: float) -> list[float]:
    """Centred in ``count`` equal slices of the window: what multi and average promise."""
    return [start_ms + (i + 0.5) * (end_ms - start_ms) / count for i in range(count)]


def test_all_three_modes_with_and_without_key_frames(stack: Stack) -> None:
    v = stack.video
    cases = {
        "single-key": ThumbnailTaskRule(mode="single", startTimeInSecond=3),
        "single-exact": ThumbnailTaskRule(mode="single", keyFrame=False, startTimeInSecond=3),
        "multi-exact": ThumbnailTaskRule(mode="multi", keyFrame=False, startTimeInSecond=1, endTimeInSecond=3, count=4),
        "multi-key": ThumbnailTaskRule(mode="multi", startTimeInSecond=1, endTimeInSecond=3, count=4),
        "average-exact": ThumbnailTaskRule(mode="average", keyFrame=False, count=4),
        "default": None,
    }
    ids = {name: create(stack, rule, destKeyPrefix=f"modes/{name}") for name, rule in cases.items()}
    tasks = {name: finished(stack, task_id) for name, task_id in ids.items()}
    for name, task in tasks.items():
        assert task["status"] == "SUCCESS" and task["errorCode"] == 0, (name, task)
        count = len(task["target"]["keys"])
        assert task["target"]["keys"] == [f"modes/{name}-{ids[name]}-{n:04d}.jpg" for n in range(1, count + 1)]
        assert image(stack, task["target"]["keys"][0]).shape == (240, 320, 3)  # no size asked: the source's
    assert frames(stack, tasks["single-key"]) == [v.key_at(3000)] == [40]
    assert frames(stack, tasks["single-exact"]) == [v.frame_at(3000)] == [75]
    window = spread(4, 1000, 3000)
    assert requested_ms(stack, ids["multi-exact"]) == pytest.approx(window)
    assert frames(stack, tasks["multi-exact"]) == [v.frame_at(t) for t in window]
    assert frames(stack, tasks["multi-key"]) == [v.key_at(t) for t in window] == [0, 40, 40, 40]
    whole = requested_ms(stack, ids["average-exact"])
    assert whole == pytest.approx(spread(4, 0, v.duration_ms), abs=50)
    assert frames(stack, tasks["average-exact"]) == [v.frame_at(t) for t in whole]
    assert frames(stack, tasks["default"]) == [0]  # single, key frame, at 0 s
    assert tasks["default"]["target"]["destKeyPrefix"] == "modes/default"
    assert tasks["multi-key"]["rule"] == {
        "mode": "multi",
        "keyFrame": True,
        "startTimeInSecond": 1,
        "endTimeInSecond": 3,
        "count": 4,
    }


def test_sizes_format_and_the_default_prefix(stack: Stack) -> None:
    half = finished(stack, create(stack, ThumbnailTaskRule(startTimeInSecond=2), widthInPixel=160))
    box = finished(stack, create(stack, widthInPixel=100, heightInPixel=100, format="png"))
    never_up = finished(stack, create(stack, heightInPixel=960))
    assert image(stack, half["target"]["keys"][0]).shape == (120, 160, 3)
    assert read_frame_index(image(stack, half["target"]["keys"][0])) == stack.video.key_at(2000)
    assert image(stack, box["target"]["keys"][0]).shape == (100, 100, 3)
    assert stack.services.objects.get("out", box["target"]["keys"][0])[:8] == b"\x89PNG\r\n\x1a\n"
    assert image(stack, never_up["target"]["keys"][0]).shape == (240, 320, 3)
    assert never_up["target"]["keys"] == [f"videos/in put.mp4-{never_up['taskID']}-0001.jpg"]


def test_a_failed_task_is_error_with_an_integer_code(stack: Stack) -> None:
    bad = finished(stack, create(stack, key="bad.mp4"))
    assert bad["status"] == "ERROR" and bad["errorCode"] == 415 and bad["target"]["keys"] == []
    listed = ListThumbnailTaskParameters(REGION)
    listed.setStatus("ERROR")
    errors = client(stack.url).send(ListThumbnailTaskRequest(listed)).result["taskList"]
    assert bad["taskID"] in [t["taskID"] for t in errors] and {t["status"] for t in errors} == {"ERROR"}


def test_jd_and_native_requests_capture_the_same_frames(stack: Stack) -> None:
    key = stack.services.credentials.create(TENANT)
    auth = {"Authorization": "Basic " + base64.b64encode(f"{key.id}:{key.secret}".encode()).decode()}
    native = create_app(stack.services.settings, stack.services).test_client()
    job = native.post(
        "/api/v1/jobs",
        headers=auth,
        json={
            "input": {"bucket": "media", "key": "videos/in put.mp4"},
            "output": {"bucket": "out", "key": "parity/native/{JobId}-{Count}.jpg"},
            "snapshot": {"mode": "average", "count": 4, "start_ms": 1000, "end_ms": 3000, "frame_type": "exact"},
        },
    ).get_json()
    jd = finished(
        stack,
        create(
            stack,
            ThumbnailTaskRule(mode="multi", keyFrame=False, startTimeInSecond=1, endTimeInSecond=3, count=4),
            destKeyPrefix="parity/jd",
        ),
    )
    deadline = time.monotonic() + 60
    while (state := native.get(f"/api/v1/jobs/{job['id']}", headers=auth).get_json())["state"] != "succeeded":
        assert time.monotonic() < deadline and state["state"] in ("submitted", "running"), state
        time.sleep(0.1)
    native_keys = [i["key"] for i in state["manifest"]["images"]]
    assert [read_frame_index(image(stack, k)) for k in native_keys] == frames(stack, jd)
    for a, b in zip(native_keys, jd["target"]["keys"], strict=True):
        assert np.array_equal(image(stack, a), image(stack, b))


def _wait_for(receiver: Receiver, task_id: str, count: int = 1, timeout: float = 30) -> list[Received]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = [r for r in list(receiver.got) if task_id.encode() in r.body]
        if len(got) >= count:
            return got
        time.sleep(0.05)
    raise AssertionError(f"no push for {task_id}: {[r.body[:200] for r in receiver.got]}")


def _notify(stack: Stack, path: str, fmt: str, strategy: str) -> None:
    params = SetNotificationParameters(REGION, True)
    params.setEndpoint(f"{stack.receiver.url}{path}")
    params.setEvents(["mpsThumbnailComplete"])
    params.setNotifyContentFormat(fmt)
    params.setNotifyStrategy(strategy)
    assert client(stack.url).send(SetNotificationRequest(params)).error is None


def test_set_notification_pushes_thumbnail_complete(stack: Stack) -> None:
    _notify(stack, "/jd/json", "JSON", "EXPONENTIAL_DECAY_RETRY")
    task_id = create(
        stack, ThumbnailTaskRule(mode="multi", startTimeInSecond=0, endTimeInSecond=2, count=2), destKeyPrefix="n/j"
    )
    [push] = _wait_for(stack.receiver, task_id)
    assert push.path == "/jd/json" and push.webhook_signature_ok and push.mns_signature_ok
    body = json.loads(push.body)
    assert body["messageType"] == "Notification" and body["eventType"] == "mpsThumbnailComplete"
    message = json.loads(body["message"])
    task = finished(stack, task_id)
    assert message["taskID"] == task_id and message["status"] == "SUCCESS" and message["count"] == 2
    assert message["target"]["keys"] == task["target"]["keys"] == [f"n/j-{task_id}-0001.jpg", f"n/j-{task_id}-0002.jpg"]
    assert push.headers["webhook-id"] == completion_message_id(task_id)

    # SIMPLIFIED, BACKOFF_RETRY: the receiver fails the first attempt; the retry comes 10-20 s
    # later on JD's schedule (here x0.01), with the same bytes; a failed task is announced too.
    stack.receiver.answer = lambda n: 500 if _first(stack.receiver, n) else 204
    _notify(stack, "/jd/simple", "SIMPLIFIED", "BACKOFF_RETRY")
    bad_id = create(stack, key="bad.mp4", destKeyPrefix="n/bad")
    first, second = _wait_for(stack.receiver, bad_id, count=2)
    assert first.body == second.body and first.path == second.path == "/jd/simple"
    assert 0.09 <= second.at - first.at < 5  # U(10, 20) s scaled by 0.01, not the exponential 1 s
    simplified = json.loads(second.body)
    assert simplified["eventType"] == "mpsThumbnailComplete" and simplified["taskID"] == bad_id
    assert simplified["status"] == "ERROR" and simplified["errorCode"] == 415 and simplified["errorMessage"]
    [delivery] = DeliveryStore(stack.services.redis).for_message(completion_message_id(bad_id))
    assert delivery.strategy == "BACKOFF_RETRY" and delivery.endpoint.endswith("/jd/simple")
    deadline = time.monotonic() + 10
    while DeliveryStore(stack.services.redis).get(delivery.id).state != "delivered" and time.monotonic() < deadline:
        time.sleep(0.05)
    assert [a.status for a in DeliveryStore(stack.services.redis).log(delivery.id)] == [500, 204]


def _first(receiver: Receiver, n: int) -> bool:
    """True for the first push of a task id not pushed before (the attempt to fail)."""
    body = receiver.got[n - 1].body
    return sum(1 for r in receiver.got if r.body == body) == 1
