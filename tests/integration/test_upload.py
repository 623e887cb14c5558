"""``PUT /api/v1/objects/{bucket}/{key}`` over a real socket: the body streamed to the object store
by the core's upload use case, which checks names, the tenant's write grant, the size limit and
the bucket, in that order; ``Client.upload`` sends a local file through it."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from app.storage.credentials import AccessKey
from app.web import create_app
from app.wiring import Services
from openmps.client import ApiError, Client
from tests.servers import serve_wsgi

LIMIT = 3 << 20  # 3 MiB: above the JSON body limit (1 MiB), so the upload path's own limit is what counts


@pytest.fixture
def api_url(services: Services) -> Iterator[str]:
    services.snapshots.max_upload_bytes = LIMIT
    server, url = serve_wsgi(create_app(services.settings.with_(max_upload_bytes=LIMIT), services))
    yield url
    server.shutdown()
    server.server_close()


@pytest.fixture
def key(services: Services) -> AccessKey:
    return services.credentials.create("acme")


def test_a_local_file_goes_up_whole_and_its_signed_url_reads_it_back(
    api_url: str, key: AccessKey, services: Services, tmp_path: Path
) -> None:
    data = os.urandom(LIMIT - 17)  # several chunks, larger than any JSON body may be
    path = tmp_path / "clip.mp4"
    path.write_bytes(data)
    with Client(api_url, key.id, key.secret) as client:
        up = client.upload(path, "media", "uploads/clip.mp4")
    assert (up.bucket, up.key, up.size) == ("media", "uploads/clip.mp4", len(data))
    assert services.objects.get("media", "uploads/clip.mp4") == data
    assert up.url is not None
    signed = urlsplit(up.url)  # points at OPENMPS_PUBLIC_URL; this test's server is on another port
    assert httpx.get(f"{api_url}{signed.path}?{signed.query}").content == data  # no credentials: it is signed
    leftovers = [p.name for p in (services.settings.data_dir / "objects" / "media" / "uploads").iterdir()]
    assert leftovers == ["clip.mp4"]  # no temporary file left beside it


def test_refusals_name_the_problem_in_the_native_envelope(api_url: str, key: AccessKey, services: Services) -> None:
    auth = (key.id, key.secret)
    stranger = services.credentials.create("stranger")  # holds no grant at all
    services.grants.grant("acme", "nosuchbucket", read=True, write=True)  # a grant, but no bucket
    cases = [
        (auth, "/api/v1/objects/media/a.bin", b"x" * (LIMIT + 1), 413, "RequestTooLarge"),
        (auth, "/api/v1/objects/nosuchbucket/a.bin", b"x", 400, "InvalidParameter"),
        (auth, "/api/v1/objects/media/a%5Cb.bin", b"x", 400, "InvalidParameter"),
        ((stranger.id, stranger.secret), "/api/v1/objects/media/a.bin", b"x", 403, "AccessDenied"),
        ((stranger.id, stranger.secret), "/api/v1/objects/media/a.bin", b"x" * (LIMIT + 1), 403, "AccessDenied"),
        ((key.id, "wrong"), "/api/v1/objects/media/a.bin", b"x", 401, "InvalidAccessKey"),
    ]
    for credentials, path, body, status, code in cases:
        resp = httpx.put(api_url + path, content=body, auth=credentials)
        assert (resp.status_code, resp.json()["code"]) == (status, code), (path, resp.text)
        assert resp.json()["request_id"]
    assert services.objects.stat("media", "a.bin") is None


def test_the_client_raises_the_server_code(api_url: str, services: Services, tmp_path: Path) -> None:
    stranger = services.credentials.create("stranger")
    (tmp_path / "v.mp4").write_bytes(b"video")
    with Client(api_url, stranger.id, stranger.secret) as client, pytest.raises(ApiError) as caught:
        client.upload(tmp_path / "v.mp4", "media", "v.mp4")
    assert (caught.value.status, caught.value.code) == (403, "AccessDenied")
