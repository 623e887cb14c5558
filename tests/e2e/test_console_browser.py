"""The console in a real browser: headless Debian Chromium driven by Playwright, against the real
API (threaded server on loopback), a real Celery worker process, the real notifier process and a
push receiver. ``make install`` installs Chromium (scripts/bootstrap.sh); where it cannot be
installed these tests skip with that message, and only then.

Screenshots are saved under the test's tmp dir (``screenshots/``) and checked for content: a blank
or one-colour page fails. The storyboard preview is checked by reading the frame index the test
video drew into the cell the preview shows, so "the right cell" is proved from pixels.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import cv2
import httpx
import numpy as np
import pytest

from app.settings import Settings
from app.storage.credentials import AccessKey
from app.web import create_app
from app.wiring import Services
from tests.e2e.conftest import basic
from tests.e2e.test_notifications import start_notifier
from tests.integration.notify.receiver import Receiver
from tests.media import make_video, read_frame_index
from tests.servers import free_port, serve_wsgi
from tests.stack import fast_settings, make_services
from tests.workerproc import WorkerProcess

playwright_api = pytest.importorskip("playwright.sync_api", reason="playwright is installed by `make install`")

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None,
    reason="Debian's chromium package is not installed (scripts/bootstrap.sh installs it as root: apt-get install chromium)",
)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with playwright_api.sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox", "--disable-gpu"])
        yield b
        b.close()


class Stack:
    def __init__(self, settings: Settings, services: Services, url: str) -> None:
        self.settings, self.services, self.url = settings, services, url

    def submit(self, key: AccessKey, snapshot: dict[str, Any], **extra: Any) -> dict[str, Any]:
        body = {
            "input": {"bucket": "media", "key": "v.mp4"},
            "output": {"bucket": "out", "key": "o/{JobId}/{Count}.jpg"},
            "snapshot": snapshot,
            **extra,
        }
        resp = httpx.post(f"{self.url}/api/v1/jobs", json=body, headers=basic(key), timeout=10)
        assert resp.status_code == 202, resp.text
        return resp.json()


@pytest.fixture
def stack(redis_url: str, tmp_path: Path) -> Iterator[Stack]:
    port = free_port()
    settings = fast_settings(redis_url, tmp_path / "data", public_url=f"http://127.0.0.1:{port}")
    services = make_services(settings)
    services.objects.make_bucket("sprites")
    for tenant in ("acme", "beta"):
        for bucket in ("media", "out", "sprites"):
            services.grants.grant(tenant, bucket, read=True, write=True)
    video = make_video(tmp_path / "v.mp4", seconds=8, fps=25, width=320, height=240, gop=25)
    services.objects.put("media", "v.mp4", video.path.read_bytes(), "video/mp4")
    server, url = serve_wsgi(create_app(settings, services), port=port)
    yield Stack(settings, services, url)
    server.shutdown()
    server.server_close()


def login(page: Any, url: str, key: AccessKey) -> None:
    page.goto(f"{url}/console/")
    assert "/console/login" in page.url
    page.fill("#access_key_id", key.id)
    page.fill("#access_key_secret", key.secret)
    page.click("#login-form button[type=submit]")
    page.wait_for_url("**/console/pipelines")


def shot(page: Any, path: Path, *, element: Any = None, **kw: Any) -> np.ndarray:
    """Save a screenshot and prove it shows something: real contrast, and for a page many colours
    (a cell of the test video is black and white blocks, so an element needs only contrast)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    (element or page).screenshot(path=str(path), **kw)
    img = cv2.imread(str(path), cv2.IMREAD_COLOR)
    assert img is not None, path
    gray = cv2.cvtColor(img, cv2.COLOR_BGR2GRAY)
    colours = len(np.unique(img.reshape(-1, 3) // 16, axis=0))
    assert float(gray.std()) > 8.0, f"{path} looks blank (grey std {gray.std():.1f})"
    assert element is not None or colours > 8, f"{path} looks blank ({colours} colours)"
    return img


def wait_until(check: Callable[[], bool], what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


def row_text(page: Any, pipeline_id: str, field: str) -> str:
    return str(page.inner_text(f'tr[data-pipeline="{pipeline_id}"] [data-field="{field}"]')).strip()


def test_operator_flow_in_chromium(
    browser: Any, stack: Stack, tmp_path: Path, start_worker: Callable[..., WorkerProcess]
) -> None:
    services, shots = stack.services, tmp_path / "screenshots"
    key = services.credentials.create("acme")
    thumbs = services.snapshots.create_pipeline("acme", "thumbs")
    secret = httpx.get(f"{stack.url}/api/v1/webhook-secret", headers=basic(key)).json()["secret"]
    receiver = Receiver(cert_prefix=stack.settings.effective_public_url, webhook_secret=secret)
    notifier = start_notifier(stack.settings, tmp_path)
    start_worker(settings=stack.settings)
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    try:
        login(page, stack.url, key)
        assert page.inner_text("#who-tenant") == "acme"
        assert page.locator(f'tr[data-pipeline="{thumbs.id}"]').count() == 1
        assert page.locator('tr[data-pipeline="default"]').count() == 1

        # Pause: submitted jobs wait in the pending set and the page's live depth shows them.
        page.click(f'tr[data-pipeline="{thumbs.id}"] button[data-action="pause"]')
        page.wait_for_url("**/console/pipelines")
        assert row_text(page, thumbs.id, "state") == "paused"
        queued = [stack.submit(key, {"mode": "single", "time_ms": 500}, pipeline_id=thumbs.id) for _ in range(3)]
        wait_until(lambda: row_text(page, thumbs.id, "queued") == "3", "the live depth to show 3 queued")
        assert row_text(page, thumbs.id, "running") == "0"
        shot(page, shots / "pipelines-paused.png", full_page=True)
        page.click(f'tr[data-pipeline="{thumbs.id}"] button[data-action="resume"]')
        page.wait_for_url("**/console/pipelines")
        assert row_text(page, thumbs.id, "state") == "active"
        wait_until(lambda: row_text(page, thumbs.id, "queued") == "0", "the queue to drain after resume")
        wait_until(
            lambda: all(services.jobs.get(j["id"]).state.value == "succeeded" for j in queued), "the resumed jobs"
        )

        # A sprite job with a webhook: open its page while it runs and watch it finish.
        job = stack.submit(
            key,
            {
                "mode": "series",
                "start_ms": 0,
                "interval_s": 0.4,
                "count": 20,
                "width": 160,
                "sprite": {
                    "output": {"bucket": "sprites", "key": "s/{JobId}/sheet-{TileCount}.jpg"},
                    "lines": 3,
                    "columns": 4,
                },
            },
            webhook_url=f"{receiver.url}/hook",
        )
        page.goto(f"{stack.url}/console/jobs/{job['id']}")
        # The page polls the job's status and reloads itself once the job has ended. (Waits poll from
        # here: the pages' CSP forbids the string evaluation Playwright's wait_for_function uses.)
        wait_until(lambda: page.locator("#gallery img").count() > 0, "the page to show the finished job")
        assert page.inner_text("#job-state") == "succeeded"
        stored = services.jobs.get(job["id"])
        images = page.locator("#gallery img")
        assert images.count() == len(stored.manifest.images) == 20
        wait_until(lambda: page.eval_on_selector_all("img", "els => els.every(e => e.complete)"), "images to load")
        widths = page.eval_on_selector_all("img", "els => els.map(e => [e.getAttribute('src'), e.naturalWidth])")
        assert widths and all(w > 0 for _, w in widths), widths
        captions = page.locator("#gallery figcaption").all_inner_texts()
        first = stored.manifest.images[1]
        assert f"asked {first.requested_ms:.0f} ms" in captions[1] and f"got {first.actual_ms:.0f} ms" in captions[1]

        # The storyboard preview: hover at a known time, expect that cue's cell, read its pixels.
        page.wait_for_selector("#storyboard[data-ready=true]")
        index = json.loads(services.objects.get("sprites", stored.manifest.index_key))
        bar = page.locator("#storyboard-bar").bounding_box()
        preview = page.locator("#storyboard-preview")
        for frac in (0.1, 0.55, 0.9):
            t = frac * index["duration_ms"]
            cell = next(c for c in index["cells"] if c["start_ms"] <= t < c["end_ms"])
            page.mouse.move(bar["x"] + frac * bar["width"], bar["y"] + bar["height"] / 2)
            want = str(round(t))
            wait_until(lambda w=want: preview.get_attribute("data-t") == w, "the preview to follow the mouse")
            assert (int(preview.get_attribute("data-x")), int(preview.get_attribute("data-y"))) == (
                cell["x"],
                cell["y"],
            )
            sheet_key = index["sheets"][cell["sheet"] - 1]["key"]
            assert sheet_key.endswith(preview.get_attribute("data-sheet"))
            img = shot(page, shots / f"preview-{frac}.png", element=preview)  # the outline is outside the box
            # The box may straddle a device pixel (one row more at a fractional offset).
            assert abs(img.shape[0] - cell["h"]) <= 1 and abs(img.shape[1] - cell["w"]) <= 1, img.shape
            own = cv2.imdecode(
                np.frombuffer(services.objects.get("out", stored.manifest.images[cell["image"] - 1].key), np.uint8),
                cv2.IMREAD_COLOR,
            )
            assert read_frame_index(img) == read_frame_index(own)
        shot(page, shots / "job-succeeded.png", full_page=True)

        # The completion message was pushed to the webhook: redeliver it from the page.
        def delivered() -> bool:
            page.reload()
            return page.locator('#deliveries [data-field="state"]').all_inner_texts() == ["delivered"]

        wait_until(delivered, "the webhook delivery to be delivered")
        assert len(receiver.got) == 1
        page.click("#deliveries button.redeliver")
        page.wait_for_url("**/console/jobs/*")
        wait_until(lambda: len(receiver.got) == 2, "the redelivered push")
        wait_until(
            lambda: (page.reload() or True) and page.inner_text('#deliveries [data-field="attempts"]') == "2",
            "the second attempt in the delivery log",
        )
        assert receiver.got[1].body == receiver.got[0].body and receiver.got[1].webhook_signature_ok

        # A failed job shows its error; Retry submits a linked job and opens it.
        bad = stack.submit(key, {"mode": "single", "time_ms": 60_000})
        page.goto(f"{stack.url}/console/jobs/{bad['id']}")
        page.wait_for_selector("#job-error-code", timeout=60_000)
        assert page.inner_text("#job-error-code") == "TimeOutOfRange"
        assert "duration" in page.inner_text("#job-error-message")
        shot(page, shots / "job-failed.png", full_page=True)
        page.click("#retry")
        page.wait_for_selector("text=Retry of")
        assert page.url.rsplit("/", 1)[-1] != bad["id"]

        # The jobs list filters by state.
        page.goto(f"{stack.url}/console/jobs?state=failed")
        ids = page.eval_on_selector_all("#jobs tr[data-job]", "rows => rows.map(r => r.dataset.job)")
        assert bad["id"] in ids and job["id"] not in ids
        page.goto(f"{stack.url}/console/jobs")
        shot(page, shots / "jobs.png", full_page=True)
    finally:
        context.close()
        notifier.terminate()
        notifier.wait(15)
        receiver.close()


def test_a_second_tenant_sees_none_of_the_first_tenants_jobs(browser: Any, stack: Stack, tmp_path: Path) -> None:
    services = stack.services
    a, b = services.credentials.create("acme"), services.credentials.create("beta")
    private = services.snapshots.create_pipeline("acme", "acme-private")
    job = stack.submit(a, {"mode": "single", "time_ms": 0}, pipeline_id=private.id)
    first, second = browser.new_context(), browser.new_context()
    try:
        pa, pb = first.new_page(), second.new_page()
        login(pa, stack.url, a)
        pa.goto(f"{stack.url}/console/jobs")
        assert pa.locator(f'tr[data-job="{job["id"]}"]').count() == 1

        login(pb, stack.url, b)
        assert pb.locator(f'tr[data-pipeline="{private.id}"]').count() == 0
        pb.goto(f"{stack.url}/console/jobs")
        assert pb.locator("#jobs tr[data-job]").count() == 0 and pb.is_visible("#no-jobs")
        assert job["id"][:12] not in pb.content()
        shot(pb, tmp_path / "screenshots" / "beta-jobs.png", full_page=True)
        resp = pb.goto(f"{stack.url}/console/jobs/{job['id']}")
        assert resp.status == 404 and "does not exist" in pb.inner_text("#error-message")
        assert pb.request.get(f"{stack.url}/console/jobs/{job['id']}/status.json").status == 404
        # The first tenant's session is untouched by the second's.
        pa.goto(f"{stack.url}/console/jobs/{job['id']}")
        assert pa.inner_text("#job-state") in ("submitted", "running", "succeeded")
    finally:
        first.close()
        second.close()
