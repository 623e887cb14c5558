"""A bounded HTTP Range reader: a seekable binary file object over an HTTP(S) URL.

Why not let FFmpeg's http protocol read the URL: it asks for open-ended ranges (``bytes=N-``), so
the server keeps streaming until the socket closes, and FFmpeg 8.1 has a soft-seek bug on
``Connection: close`` servers (docs/frame-extraction-notes.md §8). This reader only ever asks for
``bytes=a-b`` of ``block_size``-aligned blocks (1 MiB), keeps a few recent blocks (LRU), and
counts requests and bytes received so tests and the benchmark can assert what a job read.
PyAV reads it through ``av.open(reader)``; the MP4 index parser reads it directly.

How a request reaches the server is a ``RangeTransport``: ``PoolTransport`` (a urllib3 pool, for
presigned object-store URLs) by default; a tenant's own URL goes through the SSRF-guarded
transport in ``workers/urlinput.py``. What an answer means (found, missing, retry) is decided
here, once, for both.
"""

from __future__ import annotations

import io
import logging
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Protocol

import urllib3

from app.core.errors import FailureCode, JobFailure

log = logging.getLogger(__name__)
DEFAULT_BLOCK = 1 << 20
NOT_FOUND = (403, 404, 410)  # S3 answers 403 for a missing key the credentials may not list
RETRIED = (408, 429)  # besides 5xx: the server asks us to come back


@dataclass(frozen=True)
class RangeAnswer:
    status: int
    data: bytes  # the body (empty for an error status)
    content_range: str | None


class RangeTransport(Protocol):
    """Sends ``GET`` with ``Range: bytes=start-end``. A connection failure or timeout raises
    ``urllib3.exceptions.HTTPError`` or ``OSError`` (the reader retries it); a final verdict
    (a refused address, the job's deadline) raises ``JobFailure``."""

    def get_range(self, start: int, end: int) -> RangeAnswer: ...
    def close(self) -> None: ...


class PoolTransport:
    """The URL through a urllib3 pool (made here unless given; one given stays the caller's)."""

    def __init__(self, url: str, http: urllib3.PoolManager | None = None) -> None:
        self.url = url
        self._owns_http = http is None
        self.http = http or urllib3.PoolManager(timeout=urllib3.Timeout(connect=5, read=30), retries=False)

    def get_range(self, start: int, end: int) -> RangeAnswer:
        resp = self.http.request("GET", self.url, headers={"Range": f"bytes={start}-{end}"}, preload_content=True)
        return RangeAnswer(resp.status, resp.data, resp.headers.get("Content-Range"))

    def close(self) -> None:
        if self._owns_http:
            self.http.clear()  # close the pooled keep-alive connections now, not at garbage collection


class RangeReader(io.RawIOBase):
    def __init__(
        self,
        url: str,
        *,
        block_size: int = DEFAULT_BLOCK,
        cache_blocks: int = 8,
        http: urllib3.PoolManager | None = None,
        retries: int = 2,
        transport: RangeTransport | None = None,
        max_size: int | None = None,
    ) -> None:
        """``url`` names the input in logs (without its query); ``transport`` (default: a
        ``PoolTransport`` over ``url`` and ``http``) sends the requests. ``max_size``: a larger
        input fails with ``InputTooLarge`` as soon as the first answer tells its size."""
        super().__init__()
        self.url = url
        self.block_size = block_size
        self.cache_blocks = cache_blocks
        self.retries = retries
        self.max_size = max_size
        self._transport = transport or PoolTransport(url, http)
        self._cache: OrderedDict[int, bytes] = OrderedDict()
        self._pos = 0
        self.bytes_read = 0  # bytes received from the server, all requests together
        self.requests = 0
        self.ranges_ignored = False  # the server answered a Range request with the whole object (200)
        try:
            self.size = self._fetch_size()
        except BaseException:
            self._transport.close()  # no reader to close it later
            raise

    # --- HTTP -------------------------------------------------------------------------------

    @property
    def _http(self) -> urllib3.PoolManager:
        """The default transport's pool (tests look at its connections)."""
        if not isinstance(self._transport, PoolTransport):
            raise AttributeError("this reader's transport has no urllib3 pool manager")
        return self._transport.http

    def _get(self, start: int, end: int) -> tuple[int, bytes, str | None]:
        """One bounded GET with a couple of retries for connection errors, 5xx, 408 and 429.

        Not found is 403/404/410 and permanent; another 4xx is permanent too (the same request
        would get the same answer); what is still failing after the retries is transient, for
        the task to retry the job (``workers/tasks.py``), as an object store's errors are."""
        last: Exception | None = None
        for attempt in range(self.retries + 1):
            try:
                answer = self._transport.get_range(start, end)
            except (urllib3.exceptions.HTTPError, OSError) as exc:
                last = exc
            else:
                self.requests += 1
                self.bytes_read += len(answer.data)
                status = answer.status
                if status in (200, 206):
                    return status, answer.data, answer.content_range
                if status in NOT_FOUND:
                    raise JobFailure(FailureCode.INPUT_NOT_FOUND, f"input URL answered HTTP {status}")
                if status == 416:
                    return status, b"", answer.content_range
                if status < 500 and status not in RETRIED:
                    raise JobFailure(FailureCode.INPUT_UNREADABLE, f"input URL answered HTTP {status}")
                last = RuntimeError(f"HTTP {status}")
            time.sleep(0.05 * (attempt + 1))
        raise JobFailure(FailureCode.STORAGE_TRANSIENT, f"reading the input failed: {last}", transient=True)

    def _fetch_size(self) -> int:
        """The object size from the first block's Content-Range (and that block is cached)."""
        status, data, content_range = self._get(0, self.block_size - 1)
        if status == 200:  # the server ignored Range: we got the whole object
            self._note_ranges_ignored()
            self._store(0, data[: self.block_size])
            return self._checked_size(len(data))
        if status == 416 or content_range is None:
            self._store(0, b"")
            return 0
        total = content_range.rsplit("/", 1)[-1]
        if not total.isdigit():
            raise JobFailure(FailureCode.INPUT_UNREADABLE, f"server sent Content-Range {content_range!r}")
        self._store(0, data)
        return self._checked_size(int(total))

    def _checked_size(self, size: int) -> int:
        if self.max_size is not None and size > self.max_size:
            raise JobFailure(
                FailureCode.INPUT_TOO_LARGE, f"the input is {size} bytes; this server reads at most {self.max_size}"
            )
        return size

    def _store(self, block: int, data: bytes) -> None:
        self._cache[block] = data
        self._cache.move_to_end(block)
        while len(self._cache) > self.cache_blocks:
            self._cache.popitem(last=False)

    def _block(self, block: int) -> bytes:
        data = self._cache.get(block)
        if data is not None:
            self._cache.move_to_end(block)
            return data
        start = block * self.block_size
        end = min(self.size, start + self.block_size) - 1
        status, data, _ = self._get(start, end)
        if status == 200:
            # The whole object, not the block: keep only the block. Correct, but each block costs
            # a full download; bytes_read shows it, and the note says why.
            self._note_ranges_ignored()
            data = data[start : end + 1]
        self._store(block, data)
        return data

    def _note_ranges_ignored(self) -> None:
        if not self.ranges_ignored:
            self.ranges_ignored = True
            log.warning("%s ignores Range requests: every block read downloads the whole object", _redacted(self.url))

    # --- file object ------------------------------------------------------------------------

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        if whence == io.SEEK_SET:
            pos = offset
        elif whence == io.SEEK_CUR:
            pos = self._pos + offset
        elif whence == io.SEEK_END:
            pos = self.size + offset
        else:
            raise ValueError(f"bad whence {whence}")
        if pos < 0:
            raise ValueError("negative seek position")
        self._pos = pos
        return pos

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        out = memoryview(buffer).cast("B")
        n = min(len(out), max(0, self.size - self._pos))
        done = 0
        while done < n:
            block, offset = divmod(self._pos, self.block_size)
            data = self._block(block)
            chunk = data[offset : offset + (n - done)]
            if not chunk:
                break
            out[done : done + len(chunk)] = chunk
            done += len(chunk)
            self._pos += len(chunk)
        return done

    def read(self, size: int = -1) -> bytes:
        if size is None or size < 0:
            size = max(0, self.size - self._pos)
        buf = bytearray(size)
        n = self.readinto(memoryview(buf))
        return bytes(buf[:n])

    def read_at(self, offset: int, size: int) -> bytes:
        self.seek(offset)
        return self.read(size)

    def close(self) -> None:
        self._cache.clear()
        self._transport.close()
        super().close()


def _redacted(url: str) -> str:
    """The URL without its query: a presigned URL's query holds the credentials."""
    return url.split("?", 1)[0]
