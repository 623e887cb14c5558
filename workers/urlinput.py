"""URL inputs: a job's video read from the tenant's own http(s) URL, through the SSRF guard.

The tenant chooses the URL, so reading it is a request openmps makes on the tenant's behalf, like
a webhook push (``app/notify/push.py``), and the same guard applies (``app/notify/ssrf.py``): each
host is resolved once per job run, every address it resolves to is checked (one refused address
refuses the host), and every request connects to that checked address with the URL's own
``Host`` header and TLS server name (SNI and the certificate check), so a second resolution (DNS
rebinding) cannot swap the target between the check and the connect. Only public unicast
addresses pass; ``OPENMPS_ALLOW_PRIVATE_ENDPOINTS`` lets loopback and private ones through
(development and tests).

Reads are the bounded Range reads of ``workers/frames/rangeio.py`` (``bytes=a-b`` blocks of
1 MiB); this module is only their transport. Limits:

* size: ``OPENMPS_MAX_URL_INPUT_BYTES``, known from the first range answer's ``Content-Range``;
  a larger input fails the job ``InputTooLarge`` before anything is decoded;
* time: ``OPENMPS_URL_INPUT_TIMEOUT_S`` for one request: the connect, and the whole answer (each
  receive waits at most what is left of it, so a server that trickles bytes cannot hold a request
  open), cut to what is left of the job's deadline; past the deadline the job fails
  ``SnapshotTimeout``;
* body: never more than was asked for. A server that ignores Range may answer ``200`` with the
  whole object only while that fits in the block asked for (a small file); a larger one fails the
  job ``InputUnreadable`` (reading it whole for every block is what the Range reader exists to
  avoid). A compressed answer (``Content-Encoding``) is refused the same way: its bytes are not
  the object's.

Redirects are followed, at most ``MAX_REDIRECTS`` hops, each hop's host resolved and checked by
the guard like the first (a redirect to a refused address fails the job ``InputRefused``); once
an answer comes, the run's later requests go straight to where the redirects led.

Failures, classified as the object store's are (``RangeReader._get``): 403/404/410 is
``InputNotFound``; another 4xx is ``InputUnreadable``; a refused address is ``InputRefused``; a
TLS failure (a certificate that does not match or is not trusted) is ``InputUnreadable``; a
connection failure, a timeout, 5xx/408/429 or a name that does not resolve is retried by the
reader and then by the task, and recorded as ``StorageTransient`` when the retries run out. All
permanent verdicts end the job at once. No message holds the URL's query (the tenant's token):
logs name the input by ``redact_url``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urljoin

import urllib3

from app.core.errors import FailureCode, JobFailure
from app.core.specs import redact_url, url_problem
from app.notify.errors import EndpointRejected
from app.notify.ssrf import Endpoint, EndpointGuard, parse_endpoint
from app.settings import Settings
from workers.frames.rangeio import RangeAnswer, RangeReader

MAX_REDIRECTS = 5
REDIRECTS = frozenset({301, 302, 303, 307, 308})
CONNECT_S = 5.0
CHUNK = 64 * 1024
USER_AGENT = "openmps"


@dataclass(frozen=True)
class UrlInputs:
    """How this worker reads URL inputs (``from_settings``). ``ca_certs``: a CA bundle to trust
    instead of the system's (a test's own CA); None = the system's."""

    guard: EndpointGuard
    max_bytes: int
    timeout_s: float
    enabled: bool = True
    ca_certs: str | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> UrlInputs:
        return cls(
            guard=EndpointGuard(allow_private=settings.allow_private_endpoints),
            max_bytes=settings.max_url_input_bytes,
            timeout_s=settings.url_input_timeout_s,
            enabled=settings.allow_url_inputs,
        )

    def opener(self, url: str, deadline: float | None) -> Callable[[str], RangeReader]:
        """Range readers on ``url`` for one run of a job (its main reader and each decode lane's):
        they share one resolution per host and where the redirects led. ``deadline`` is a
        ``time.monotonic()`` value (None = none). Raises ``JobFailure`` when URL inputs are off:
        a job queued before the operator turned them off is not read either."""
        if not self.enabled:
            raise JobFailure(FailureCode.INPUT_REFUSED, "this server does not read URL inputs")
        session = UrlSession(url, self, deadline)

        def open_reader(_locator: str) -> RangeReader:
            return RangeReader(redact_url(url), transport=GuardedTransport(session), max_size=self.max_bytes)

        return open_reader


class UrlSession:
    """One run's state: each host's checked address (resolved once) and the URL requests go to."""

    def __init__(self, url: str, inputs: UrlInputs, deadline: float | None) -> None:
        self.url = url  # the input URL, or where its redirects led once an answer came from there
        self.inputs = inputs
        self.deadline = deadline
        self._pins: dict[tuple[str, str, int], str] = {}
        self._lock = threading.Lock()

    def pin(self, url: str) -> tuple[Endpoint, str]:
        """The endpoint and the checked address to connect to for ``url``."""
        try:
            endpoint = parse_endpoint(url)
            origin = (endpoint.scheme, endpoint.host, endpoint.port)
            with self._lock:  # lanes open together: one resolution per host, not one per lane
                address = self._pins.get(origin)
                if address is None:
                    _, address = self.inputs.guard.resolve(url)
                    self._pins[origin] = address
        except EndpointRejected as exc:
            if not exc.permanent:  # the name does not resolve right now: DNS may answer later
                raise JobFailure(FailureCode.STORAGE_TRANSIENT, f"input URL: {exc.message}", transient=True) from None
            raise JobFailure(FailureCode.INPUT_REFUSED, f"input URL refused: {exc.message}") from None
        return endpoint, address

    def request_timeout(self) -> float:
        """Seconds one request may take: the per-request limit, cut to what is left of the job."""
        timeout = self.inputs.timeout_s
        if self.deadline is not None:
            left = self.deadline - time.monotonic()
            if left <= 0:
                raise JobFailure(
                    FailureCode.SNAPSHOT_TIMEOUT, "the job's time limit ran out while reading the input URL"
                )
            timeout = min(timeout, left)
        return timeout


class GuardedTransport:
    """``rangeio.RangeTransport`` over a ``UrlSession``: one pool per checked address, each
    connection made to that address with the URL's host as ``Host`` and TLS server name."""

    def __init__(self, session: UrlSession) -> None:
        self.session = session
        self._pools: dict[tuple[str, str, int, str], urllib3.HTTPConnectionPool] = {}

    def get_range(self, start: int, end: int) -> RangeAnswer:
        url = self.session.url
        for hop in range(MAX_REDIRECTS + 1):
            endpoint, address = self.session.pin(url)
            timeout = self.session.request_timeout()
            until = time.monotonic() + timeout
            try:
                resp = self._pool(endpoint, address).urlopen(
                    "GET",
                    endpoint.target,
                    headers={
                        "Host": endpoint.host_header,
                        "Range": f"bytes={start}-{end}",
                        "Accept-Encoding": "identity",
                        "User-Agent": USER_AGENT,
                    },
                    redirect=False,
                    retries=False,
                    assert_same_host=False,
                    preload_content=False,
                    decode_content=False,
                    timeout=urllib3.Timeout(connect=min(CONNECT_S, timeout), read=timeout),
                )
            except urllib3.exceptions.SSLError as exc:
                raise JobFailure(
                    FailureCode.INPUT_UNREADABLE, f"input URL: TLS with {endpoint.host} failed: {exc}"
                ) from None
            try:
                if resp.status in REDIRECTS and resp.headers.get("Location"):
                    url = _redirect_target(url, resp.headers["Location"], hop)
                    continue
                data = b""
                if resp.status in (200, 206):
                    _check_encoding(resp.headers.get("Content-Encoding"))
                    data = _read_bounded(resp, end - start + 1, until)
                self.session.url = url
                return RangeAnswer(resp.status, data, resp.headers.get("Content-Range"))
            finally:
                # What was not read to the end is not reused: the connection is closed, not pooled.
                if not resp.closed:
                    resp.close()
                resp.release_conn()
        raise AssertionError("unreachable: the last hop returns or raises")  # pragma: no cover

    def _pool(self, endpoint: Endpoint, address: str) -> urllib3.HTTPConnectionPool:
        key = (endpoint.scheme, endpoint.host, endpoint.port, address)
        pool = self._pools.get(key)
        if pool is None:
            if endpoint.scheme == "https":
                pool = urllib3.HTTPSConnectionPool(
                    address,
                    endpoint.port,
                    maxsize=1,
                    retries=False,
                    server_hostname=endpoint.host,  # SNI and the certificate's name: the URL's host
                    cert_reqs="CERT_REQUIRED",
                    ca_certs=self.session.inputs.ca_certs,
                )
            else:
                pool = urllib3.HTTPConnectionPool(address, endpoint.port, maxsize=1, retries=False)
            self._pools[key] = pool
        return pool

    def close(self) -> None:
        for pool in self._pools.values():
            pool.close()
        self._pools.clear()


def _redirect_target(url: str, location: str, hop: int) -> str:
    """Where a redirect leads (a relative ``Location`` against ``url``), shape-checked here so
    that no message repeats the target (its query may hold a token); its host is checked by
    the guard when it is pinned."""
    if hop >= MAX_REDIRECTS:
        raise JobFailure(FailureCode.INPUT_UNREADABLE, f"input URL redirected more than {MAX_REDIRECTS} times")
    target = urljoin(url, location.strip())
    problem = url_problem(target)
    if problem:
        raise JobFailure(FailureCode.INPUT_UNREADABLE, f"input URL redirected to a location that {problem}")
    return target


def _check_encoding(encoding: str | None) -> None:
    if encoding and encoding.strip().lower() != "identity":
        raise JobFailure(
            FailureCode.INPUT_UNREADABLE,
            f"input URL answered with Content-Encoding {encoding[:40]!r}; its bytes must be sent as they are",
        )


def _read_bounded(resp: urllib3.BaseHTTPResponse, limit: int, until: float) -> bytes:
    """At most ``limit`` bytes of the body, before ``until`` (monotonic): each receive waits only
    for what is left. More than ``limit`` is refused: a 206 larger than its range is a broken
    server, a 200 larger than the block is a server that ignores Range on a large object."""
    parts: list[bytes] = []
    size = 0
    sock = getattr(resp.connection, "sock", None)
    while True:
        left = until - time.monotonic()
        if left <= 0:
            raise TimeoutError("the input URL did not send its answer in time")
        if sock is not None:
            sock.settimeout(left)
        chunk = resp.read1(min(CHUNK, limit + 1 - size))
        if not chunk:
            return b"".join(parts)
        parts.append(chunk)
        size += len(chunk)
        if size > limit:
            if resp.status == 200:
                raise JobFailure(
                    FailureCode.INPUT_UNREADABLE,
                    "input URL ignores Range requests (it answered with the whole object, larger than "
                    f"{limit} bytes); URL inputs are read in ranges",
                )
            raise JobFailure(FailureCode.INPUT_UNREADABLE, f"input URL sent more than the {limit} bytes asked for")
