"""RangeReader against tiny loopback HTTP servers: one that honours Range, one that ignores it."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest
from werkzeug.wrappers import Request, Response

from tests.servers import serve_wsgi
from workers.frames.rangeio import RangeReader

DATA = os.urandom(5000)
BLOCK = 1024


def _app(*, honour_range: bool) -> Any:
    @Request.application  # type: ignore[arg-type]
    def app(request: Request) -> Response:
        if not honour_range:
            return Response(DATA, 200, content_type="application/octet-stream")
        # conditional=True: werkzeug answers a Range request with 206 and Content-Range.
        return Response(DATA, 200, content_type="application/octet-stream").make_conditional(
            request, accept_ranges=True, complete_length=len(DATA)
        )

    return app


@pytest.fixture(params=[True, False], ids=["honours-range", "ignores-range"])
def server(request: pytest.FixtureRequest) -> Iterator[tuple[str, bool]]:
    """(URL, whether the server honours Range)."""
    httpd, base = serve_wsgi(_app(honour_range=request.param))
    yield base + "/object.bin", request.param
    httpd.shutdown()
    httpd.server_close()


def test_every_block_reads_the_right_bytes(server: tuple[str, bool]) -> None:
    url, honours_range = server
    reader = RangeReader(url, block_size=BLOCK, cache_blocks=2)
    try:
        assert reader.size == len(DATA)
        # Out of order, across block edges, into the short last block, past the end.
        for offset, size in [(2500, 1000), (1023, 2), (4900, 500), (0, 10), (3072, 1024), (4999, 1)]:
            assert reader.read_at(offset, size) == DATA[offset : offset + size], (offset, size)
        assert reader.ranges_ignored is not honours_range
    finally:
        reader.close()


def test_close_closes_the_pooled_connections(server: tuple[str, bool]) -> None:
    reader = RangeReader(server[0], block_size=BLOCK)
    reader.read_at(3000, 100)
    pools = reader._http.pools  # noqa: SLF001 - the pool this reader made for itself
    assert len(pools) == 1
    reader.close()
    assert reader.closed and len(pools) == 0
