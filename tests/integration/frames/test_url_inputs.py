"""URL inputs through ``run_snapshot``: a loopback HTTP(S) server, the real SSRF guard, real decoding.

Each test names a failure the worker must turn into a clear job failure (not found, a refused
address directly or after a redirect, too large, a server that ignores Range on a large object,
a trickling server) or proves a read that must work: the right frame from a Range-reading
server, through redirects, over HTTPS to a pinned address with the URL's own Host and server
name, in parallel decode lanes that share one resolution. Frames are identified by the index
each test video draws into itself.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest

from app.core.errors import FailureCode, JobFailure
from app.core.jobs import Manifest, SnapshotJob
from app.core.specs import Average, OutputTarget, SingleTime, SnapshotSpec, Timing, UrlSource
from app.notify.ssrf import EndpointGuard
from app.storage.objects import LocalObjectStore
from tests.integration.frames.conftest import Videos
from tests.media import read_frame_index
from tests.urlserver import MediaServer, tls_files
from workers.pipeline import MediaLimits, run_snapshot
from workers.urlinput import UrlInputs

LIMITS = MediaLimits(max_frame_pixels=4096 * 4096, max_decoded_frames=100_000, deadline=None)
TOKEN = "sig=s3cr3t-t0ken"


def inputs(*, allow_private: bool = True, max_bytes: int = 1 << 30, timeout_s: float = 10.0, **kw: object) -> UrlInputs:
    guard = EndpointGuard(allow_private=allow_private, **kw)  # type: ignore[arg-type]
    return UrlInputs(guard=guard, max_bytes=max_bytes, timeout_s=timeout_s)


@pytest.fixture
def store(tmp_path: Path) -> LocalObjectStore:
    s = LocalObjectStore(tmp_path / "objects")
    s.make_bucket("out")
    return s


@pytest.fixture
def server(videos: Videos) -> Iterator[MediaServer]:
    srv = MediaServer()
    srv.objects["/v.mp4"] = videos.cfr.path.read_bytes()
    srv.start()
    yield srv
    srv.stop()


def job(url: str, timing: Timing = SingleTime(1000)) -> SnapshotJob:
    spec = SnapshotSpec(UrlSource(url), timing, OutputTarget("out", "u/{job_id}/{index:5}.jpg"))
    return SnapshotJob(id="urljob", tenant="t", pipeline_id="default", spec=spec)


def captured(store: LocalObjectStore, m: Manifest) -> list[int]:
    return [
        read_frame_index(cv2.imdecode(np.frombuffer(store.get("out", i.key), np.uint8), cv2.IMREAD_COLOR))
        for i in m.images
    ]


def failure(url: str, store: LocalObjectStore, url_inputs: UrlInputs) -> JobFailure:
    with pytest.raises(JobFailure) as caught:
        run_snapshot(job(url), store, limits=LIMITS, url_inputs=url_inputs)
    assert TOKEN not in caught.value.message  # the tenant's token never reaches a message (or a log)
    return caught.value


def test_a_url_input_captures_the_right_frame_in_range_reads(
    server: MediaServer, store: LocalObjectStore, videos: Videos
) -> None:
    cfr = videos.cfr
    m = run_snapshot(job(server.url(f"/v.mp4?{TOKEN}")), store, limits=LIMITS, url_inputs=inputs())
    assert captured(store, m) == [cfr.frame_at(1000)]
    seen = server.requests_for("/v.mp4")
    assert seen and all(s.path == f"/v.mp4?{TOKEN}" for s in seen)  # the query is sent as given
    assert all(s.range is not None and s.range.startswith("bytes=") and s.range.count("-") == 1 for s in seen)
    assert all(not s.range.endswith("-") for s in seen if s.range)  # bounded ranges only
    assert any(n.startswith("input read over HTTP") for n in m.notes)


def test_redirects_are_followed_and_each_hop_is_checked(server: MediaServer, store: LocalObjectStore) -> None:
    server.redirects["/short"] = "/hop"
    server.redirects["/hop"] = server.url("/v.mp4")
    m = run_snapshot(job(server.url("/short")), store, limits=LIMITS, url_inputs=inputs())
    assert len(m.images) == 1
    # The first request went through both hops; every later one went straight to the target.
    assert len(server.requests_for("/short")) == 1 and len(server.requests_for("/hop")) == 1
    server.redirects["/meta"] = "http://169.254.169.254/latest/meta-data/"  # link-local: refused even in dev
    refused = failure(server.url("/meta"), store, inputs())
    assert refused.code is FailureCode.INPUT_REFUSED and "link-local" in refused.message, refused.message
    server.redirects["/loop"] = "/loop"
    looped = failure(server.url("/loop"), store, inputs())
    assert looped.code is FailureCode.INPUT_UNREADABLE and "redirected more than 5 times" in looped.message
    server.redirects["/ftp"] = "ftp://example.com/v.mp4"
    assert failure(server.url("/ftp"), store, inputs()).code is FailureCode.INPUT_UNREADABLE


def test_missing_and_gone_inputs_are_input_not_found(server: MediaServer, store: LocalObjectStore) -> None:
    server.statuses["/gone.mp4"] = 410
    for path in ("/nothing-here.mp4", "/gone.mp4"):
        found = failure(server.url(f"{path}?{TOKEN}"), store, inputs())
        assert found.code is FailureCode.INPUT_NOT_FOUND and not found.transient, found.message
    server.statuses["/teapot.mp4"] = 418
    assert failure(server.url("/teapot.mp4"), store, inputs()).code is FailureCode.INPUT_UNREADABLE


def test_the_guard_refuses_a_name_that_resolves_to_loopback(server: MediaServer, store: LocalObjectStore) -> None:
    refused = failure(server.url(f"/v.mp4?{TOKEN}", host="localhost"), store, inputs(allow_private=False))
    assert refused.code is FailureCode.INPUT_REFUSED and not refused.transient
    assert "localhost resolves to" in refused.message and "loopback" in refused.message, refused.message
    assert server.seen == []  # refused before any connection


def test_an_input_larger_than_the_limit_fails_before_decoding(
    server: MediaServer, store: LocalObjectStore, videos: Videos
) -> None:
    size = len(server.objects["/v.mp4"])
    big = failure(server.url("/v.mp4"), store, inputs(max_bytes=size - 1))
    assert big.code is FailureCode.INPUT_TOO_LARGE and str(size) in big.message, big.message
    assert len(server.requests_for("/v.mp4")) == 1  # the first range told the size; nothing more was read
    m = run_snapshot(job(server.url("/v.mp4")), store, limits=LIMITS, url_inputs=inputs(max_bytes=size))
    assert captured(store, m) == [videos.cfr.frame_at(1000)]


def test_a_server_that_ignores_range_works_only_for_a_small_object(
    server: MediaServer, store: LocalObjectStore, videos: Videos
) -> None:
    assert len(server.objects["/v.mp4"]) < 1 << 20
    server.no_range.add("/v.mp4")
    m = run_snapshot(job(server.url("/v.mp4")), store, limits=LIMITS, url_inputs=inputs())
    assert captured(store, m) == [videos.cfr.frame_at(1000)]
    server.objects["/big.mp4"] = os.urandom((1 << 20) + 1)
    server.no_range.add("/big.mp4")
    ignored = failure(server.url("/big.mp4"), store, inputs())
    assert ignored.code is FailureCode.INPUT_UNREADABLE and "ignores Range" in ignored.message


def test_a_trickling_server_times_out_as_a_transient_failure(server: MediaServer, store: LocalObjectStore) -> None:
    server.objects["/slow.mp4"] = server.objects["/v.mp4"][:8192]
    server.trickle["/slow.mp4"] = 0.2  # 1 KiB every 0.2 s: each receive is prompt, the answer is not
    slow = failure(server.url("/slow.mp4"), store, inputs(timeout_s=0.5))
    assert slow.code is FailureCode.STORAGE_TRANSIENT and slow.transient, slow.message
    assert len(server.requests_for("/slow.mp4")) == 3  # the reader's own retries, then the task's
    # The job's deadline cuts a request short too, and then ends the job: no retry outlives it.
    late = MediaLimits(LIMITS.max_frame_pixels, LIMITS.max_decoded_frames, deadline=time.monotonic() + 0.5)
    with pytest.raises(JobFailure) as caught:
        run_snapshot(job(server.url("/slow.mp4")), store, limits=late, url_inputs=inputs(timeout_s=30))
    assert caught.value.code is FailureCode.SNAPSHOT_TIMEOUT and not caught.value.transient
    assert "time limit" in caught.value.message


def test_an_unreachable_server_is_a_transient_failure(store: LocalObjectStore) -> None:
    srv = MediaServer().start()
    url = srv.url("/v.mp4")
    srv.stop()  # nothing listens there now
    down = failure(url, store, inputs())
    assert down.code is FailureCode.STORAGE_TRANSIENT and down.transient, down.message


def test_url_inputs_switched_off_on_the_worker_fail_the_job(server: MediaServer, store: LocalObjectStore) -> None:
    off = UrlInputs(guard=EndpointGuard(allow_private=True), max_bytes=1 << 30, timeout_s=5, enabled=False)
    refused = failure(server.url("/v.mp4"), store, off)
    assert refused.code is FailureCode.INPUT_REFUSED and server.seen == []


def test_https_connects_to_the_checked_address_with_the_urls_own_name(
    videos: Videos, store: LocalObjectStore, tmp_path: Path
) -> None:
    """The name resolves (test resolver) to loopback; the connection goes to that address, and
    TLS checks the certificate against the URL's host name (SNI), not the address."""
    tls = tls_files(tmp_path, "media.test")
    srv = MediaServer()
    srv.objects["/v.mp4"] = videos.cfr.path.read_bytes()
    srv.start(ssl_context=tls.server_context())
    resolved: list[str] = []

    def resolver(host: str, port: int) -> list[str]:
        resolved.append(host)
        return ["127.0.0.1"] if host == "media.test" else []

    try:
        guard = EndpointGuard(allow_private=True, resolver=resolver)
        trusted = UrlInputs(guard=guard, max_bytes=1 << 30, timeout_s=10, ca_certs=str(tls.ca))
        url = srv.url("/v.mp4", host="media.test", scheme="https")
        m = run_snapshot(job(url), store, limits=LIMITS, url_inputs=trusted)
        assert captured(store, m) == [videos.cfr.frame_at(1000)]
        assert {s.host for s in srv.seen} == {f"media.test:{srv.port}"}
        assert resolved == ["media.test"]  # resolved once for the whole run
        untrusted = UrlInputs(guard=guard, max_bytes=1 << 30, timeout_s=10)  # the system's CAs only
        bad = failure(url, store, untrusted)
        assert bad.code is FailureCode.INPUT_UNREADABLE and "TLS with media.test failed" in bad.message
    finally:
        srv.stop()


def test_decode_lanes_share_one_resolution(videos: Videos, store: LocalObjectStore) -> None:
    long = videos.get("gops", seconds=12, fps=25, width=320, height=240, gop=50)
    srv = MediaServer()
    srv.objects["/long.mp4"] = long.path.read_bytes()
    srv.start()
    resolved: list[str] = []

    def resolver(host: str, port: int) -> list[str]:
        resolved.append(host)
        return ["127.0.0.1"]

    try:
        guard = EndpointGuard(allow_private=True, resolver=resolver)
        url_inputs = UrlInputs(guard=guard, max_bytes=1 << 30, timeout_s=10)
        m = run_snapshot(
            job(srv.url("/long.mp4", host="media.test"), Average(24)),
            store,
            limits=LIMITS,
            url_inputs=url_inputs,
            decode_threads=3,
        )
        assert any(n.startswith("decoded in ") for n in m.notes), m.notes  # several lanes ran
        assert captured(store, m) == [long.frame_at(i.requested_ms) for i in m.images]
        assert resolved == ["media.test"]
    finally:
        srv.stop()
