"""The docs page in a real browser (Debian's chromium through playwright, as the console's tests
drive it), with every request that leaves this server refused: Swagger UI still renders every
operation of the document, and "Try it out" with an access key reaches the API."""

from __future__ import annotations

import base64
import shutil
from collections.abc import Iterator
from typing import Any

import pytest

from app.dialects.native.openapi import ROUTES
from app.storage.credentials import AccessKey
from app.web import create_app
from app.wiring import Services
from tests.servers import serve_wsgi

playwright_api = pytest.importorskip("playwright.sync_api", reason="playwright is installed by `make install`")

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None,
    reason="Debian's chromium package is not installed (scripts/bootstrap.sh installs it as root: apt-get install chromium)",
)


@pytest.fixture
def served(services: Services) -> Iterator[str]:
    server, url = serve_wsgi(create_app(services.settings, services))
    yield url
    server.shutdown()
    server.server_close()


@pytest.fixture
def tenant_key(services: Services) -> AccessKey:
    return services.credentials.create("acme")


@pytest.fixture
def page() -> Iterator[Any]:
    with playwright_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox", "--disable-gpu"])
        yield browser.new_page()
        browser.close()


def test_the_docs_render_every_operation_with_nothing_fetched_from_elsewhere(
    page: Any, served: str, tenant_key: AccessKey
) -> None:
    elsewhere: list[str] = []
    errors: list[str] = []

    def only_this_server(route: Any) -> None:
        url = route.request.url
        if url.startswith(served + "/") or url.startswith("data:"):
            route.continue_()
        else:
            elsewhere.append(url)
            route.abort()

    page.route("**/*", only_this_server)
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(f"{served}/docs")
    page.wait_for_selector(".opblock", timeout=30_000)
    assert page.locator(".opblock").count() == len(ROUTES)
    assert page.locator(".info .title").inner_text().startswith("openmps native API")
    assert elsewhere == [] and errors == []

    # Authorize with HTTP Basic and try GET /api/v1/webhook-secret from the page.
    token = base64.b64encode(f"{tenant_key.id}:{tenant_key.secret}".encode()).decode()
    page.click("button.authorize")
    page.fill(".auth-container input[type=text]", tenant_key.id)
    page.fill(".auth-container input[type=password]", tenant_key.secret)
    page.click(".auth-btn-wrapper button.authorize")
    page.click(".btn-done")
    op = page.locator("#operations-jobs-getWebhookSecret")
    op.locator(".opblock-summary").click()
    op.locator("button.try-out__btn").click()
    with page.expect_response(lambda r: r.url.endswith("/api/v1/webhook-secret")) as answer:
        op.locator("button.execute").click()
    response = answer.value
    assert response.status == 200 and response.request.headers["authorization"] == f"Basic {token}"
    assert response.json()["secret"].startswith("whsec_")
    assert elsewhere == [] and errors == []
