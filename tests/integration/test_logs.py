"""Logs people can use: an access line per request (never a secret or a query string), one line
per job outcome with its code, JSON lines with OPENMPS_LOG_FORMAT=json, and a failed job that
Celery reports as a failed task (without a traceback)."""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from app import logs
from app.core.service import SubmitRequest
from app.core.specs import ObjectRef, OutputTarget, Series, SingleTime, SnapshotSpec
from app.settings import Settings, SettingsError
from app.web import create_app
from app.wiring import Services
from tests.media import make_video
from tests.workerproc import WorkerProcess


def test_one_access_line_per_request_without_secrets_or_query_strings(
    services: Services, caplog: pytest.LogCaptureFixture
) -> None:
    key = services.credentials.create("acme")
    services.objects.put("out", "a.jpg", b"jpeg", "image/jpeg")
    signed = urlsplit(services.snapshots.object_url("out", "a.jpg"))
    client = create_app(services.settings, services).test_client()
    caplog.set_level(logging.INFO, logger="openmps.access")
    requests = [
        ("GET", "/api/v1/jobs?limit=5", (key.id, key.secret), 200, "acme"),
        ("GET", f"{signed.path}?{signed.query}", None, 200, None),
        ("GET", "/api/v1/jobs", (key.id, "not-the-secret"), 401, None),
        ("GET", "/nowhere", None, 404, None),
    ]
    answers = []
    for method, target, auth, status, _ in requests:
        resp = client.open(target, method=method, auth=auth)
        assert resp.status_code == status, (target, resp.data)
        answers.append(resp.headers["X-Request-Id"])
    lines = [r for r in caplog.records if r.name == "openmps.access"]
    assert len(lines) == len(requests)
    for record, (method, target, _, status, tenant), request_id in zip(lines, requests, answers, strict=True):
        assert (record.method, record.path, record.status) == (method, target.split("?")[0], status)  # type: ignore[attr-defined]
        assert record.request_id == request_id and record.tenant == tenant  # type: ignore[attr-defined]
        assert isinstance(record.duration_ms, float) and record.duration_ms >= 0  # type: ignore[attr-defined]
        text = record.getMessage()
        assert f"{method} {target.split('?')[0]} {status} " in text and "?" not in text
        for secret in (key.secret, "not-the-secret", signed.query, "signature"):
            assert secret not in text and secret not in json.dumps(record.__dict__, default=str)


def test_json_format_is_one_object_per_line_with_the_extra_fields(caplog: pytest.LogCaptureFixture) -> None:
    logger = logging.getLogger("openmps.test")
    with caplog.at_level(logging.INFO, logger="openmps.test"):
        logger.info("job %s failed", "j1", extra={"job_id": "j1", "state": "failed", "code": "TimeOutOfRange"})
    line = logs.formatter("json").format(caplog.records[-1])
    assert "\n" not in line
    data = json.loads(line)
    assert data["message"] == "job j1 failed" and data["level"] == "INFO" and data["logger"] == "openmps.test"
    assert (data["job_id"], data["state"], data["code"]) == ("j1", "failed", "TimeOutOfRange") and data["time"]
    text = logs.formatter("text").format(caplog.records[-1])
    assert text.endswith("INFO openmps.test: job j1 failed")


def test_configure_replaces_only_its_own_handler() -> None:
    root = logging.getLogger()
    before = list(root.handlers)
    level = root.level
    try:
        logs.configure("text")
        handler = logs.configure("json")
        ours = [h for h in root.handlers if h not in before]
        assert ours == [handler] and all(h in root.handlers for h in before)
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


def test_an_unknown_log_format_is_refused_at_start_naming_the_variable() -> None:
    with pytest.raises(SettingsError, match="OPENMPS_LOG_FORMAT must be one of text, json, got 'xml'"):
        Settings.from_env({"OPENMPS_LOG_FORMAT": "xml", "OPENMPS_SECRET_KEY": "k" * 32})


def test_job_outcomes_are_logged_with_their_code_and_a_failed_job_is_a_failed_task(
    services: Services, settings: Settings, tmp_path: Path
) -> None:
    video = make_video(tmp_path / "v.mp4", seconds=2.0, fps=25)
    services.objects.put("media", "v.mp4", video.path.read_bytes(), "video/mp4")
    worker = WorkerProcess(settings.with_(log_format="json"), tmp_path).start()
    try:
        ok = services.snapshots.submit(
            "acme",
            SubmitRequest(
                spec=SnapshotSpec(
                    input=ObjectRef("media", "v.mp4"),
                    timing=Series(start_ms=0, interval_s=0.5, count=3),
                    output=OutputTarget("out", "logs/{job_id}/{index:5}.jpg"),
                )
            ),
        )
        bad = services.snapshots.submit(
            "acme",
            SubmitRequest(
                spec=SnapshotSpec(
                    input=ObjectRef("media", "v.mp4"),
                    timing=SingleTime(60_000),  # past the end: TimeOutOfRange
                    output=OutputTarget("out", "logs/{job_id}/x.jpg"),
                )
            ),
        )
        for job in (ok, bad):
            assert services.snapshots.wait("acme", job.id, 60).is_terminal
        # Both tasks returned to Celery (a job is terminal in the store a moment before its task
        # returns; stopping the worker in between logs a WorkerLostError traceback).
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not all(m in worker.log() for m in ("raised expected", "succeeded in")):
            time.sleep(0.1)
    finally:
        worker.stop()
    assert services.snapshots.get("acme", bad.id).error_code == "TimeOutOfRange"
    records = []
    for line in worker.log_path.read_text().splitlines():
        if line.startswith("{"):
            records.append(json.loads(line))  # every log line is one JSON object
    outcome = {r["job_id"]: r for r in records if r.get("state") in ("succeeded", "failed")}
    assert (outcome[ok.id]["state"], outcome[ok.id]["code"], outcome[ok.id]["images"]) == ("succeeded", None, 3)
    assert (outcome[bad.id]["state"], outcome[bad.id]["code"], outcome[bad.id]["level"]) == (
        "failed",
        "TimeOutOfRange",
        "WARNING",
    )
    celery_says = [r["message"] for r in records if "raised expected" in r["message"]]
    assert len(celery_says) == 1 and bad.id in celery_says[0] and "TimeOutOfRange" in celery_says[0]
    assert [r for r in records if r["logger"] == "celery.app.trace" and r["level"] == "ERROR"] == []
    assert "Traceback" not in worker.log_path.read_text()
