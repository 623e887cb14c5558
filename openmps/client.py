"""A typed Python client for the native openmps API (``/api/v1``), built on httpx.

    from openmps.client import Client

    with Client("http://127.0.0.1:8080", "KEY_ID", "SECRET") as client:
        job = client.submit({"input": {"bucket": "media", "key": "in.mp4"},
                             "output": {"bucket": "out", "key": "shots/{JobId}/{Count}.jpg"},
                             "snapshot": {"mode": "average", "count": 10}})
        job = client.wait(job.id, on_progress=lambda j: print(j.done, "/", j.total))
        print([image.key for image in job.images])

An input is ``{"bucket", "key"}`` or ``{"url": "https://..."}`` (a video the workers read from
that URL, when the server allows URL inputs); ``input_for("https://...")`` or
``input_for("media/in.mp4")`` builds either from one string, as the CLI takes it.

Every API error raises ``ApiError`` with the server's ``code``, ``message``, HTTP status and
``request_id``; a server that cannot be reached raises ``ConnectionFailed``. The client speaks
only HTTP: it needs nothing of the server's code and no Redis.
"""

from __future__ import annotations

import mimetypes
import os
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, BinaryIO
from urllib.parse import quote

import httpx

DEFAULT_TIMEOUT_S = 30.0
TERMINAL_STATES = frozenset({"succeeded", "failed", "canceled"})


def is_url(text: str) -> bool:
    """An http(s) URL, which the API takes as ``{"url": text}``."""
    return text.startswith(("http://", "https://"))


def input_for(source: str) -> dict[str, str]:
    """A job body's ``input`` for ``source``: an http(s) URL, or ``BUCKET/KEY``."""
    if is_url(source):
        return {"url": source}
    bucket, _, key = source.partition("/")
    if not bucket or not key:
        raise ValueError(f"an input is an http(s) URL or BUCKET/KEY, got {source!r}")
    return {"bucket": bucket, "key": key}


class ClientError(Exception):
    """Base of everything the client raises."""


class ConnectionFailed(ClientError):
    """The server did not answer (wrong URL, not running, network down)."""


class ApiError(ClientError):
    """The server answered with an error: ``code`` is its stable machine-readable code."""

    def __init__(self, status: int, code: str, message: str, request_id: str | None) -> None:
        super().__init__(f"{code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.request_id = request_id


class WaitTimedOut(ClientError):
    """``wait`` gave up before the job finished; ``job`` is how it stood then."""

    def __init__(self, job: Job) -> None:
        super().__init__(f"job {job.id} is still {job.state}")
        self.job = job


@dataclass(frozen=True)
class Image:
    index: int  # 1-based image number
    requested_ms: float
    actual_ms: float  # timestamp of the frame captured
    key: str
    width: int
    height: int
    url: str | None = None


@dataclass(frozen=True)
class Job:
    """A job as the API returns it; ``raw`` keeps every field, the attributes the common ones."""

    id: str
    state: str
    done: int
    total: int
    images: list[Image]
    error_code: str | None
    error_message: str | None
    raw: dict[str, Any] = field(repr=False)

    @property
    def is_finished(self) -> bool:
        return self.state in TERMINAL_STATES

    @property
    def retry_of(self) -> str | None:
        """The failed or canceled job this one re-runs (``Client.retry``); None for a new job."""
        value = self.raw.get("retry_of")
        return str(value) if value else None

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Job:
        progress = data.get("progress") or {}
        error = data.get("error") or {}
        manifest = data.get("manifest") or {}
        images = [
            Image(
                index=int(i["index"]),
                requested_ms=float(i["requested_ms"]),
                actual_ms=float(i["actual_ms"]),
                key=str(i["key"]),
                width=int(i["width"]),
                height=int(i["height"]),
                url=i.get("url"),
            )
            for i in manifest.get("images", [])
        ]
        return cls(
            id=str(data["id"]),
            state=str(data["state"]),
            done=int(progress.get("done", 0)),
            total=int(progress.get("total", 0)),
            images=images,
            error_code=error.get("code"),
            error_message=error.get("message"),
            raw=dict(data),
        )


@dataclass(frozen=True)
class Upload:
    bucket: str
    key: str
    size: int
    url: str | None  # signed: fetches the object without credentials until it expires


@dataclass(frozen=True)
class JobPage:
    jobs: list[Job]
    next_page_token: str | None


class Client:
    def __init__(
        self,
        base_url: str,
        access_key_id: str,
        secret: str,
        *,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self._http = httpx.Client(
            base_url=base_url.rstrip("/") + "/api/v1",
            auth=(access_key_id, secret),
            timeout=timeout_s,
            transport=transport,
        )

    # --- jobs -------------------------------------------------------------------------------

    def submit(self, body: Mapping[str, Any], *, idempotency_key: str | None = None, wait_s: float = 0) -> Job:
        """Submit a job (the body of ``POST /api/v1/jobs``); ``wait_s`` (<= 10) lets the server
        hold the answer until the job finishes, for jobs that take a moment."""
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else {}
        params = {"wait": wait_s} if wait_s else {}
        return Job.from_json(self._call("POST", "/jobs", json=dict(body), headers=headers, params=params))

    def get(self, job_id: str) -> Job:
        return Job.from_json(self._call("GET", f"/jobs/{job_id}"))

    def wait(
        self,
        job_id: str,
        *,
        timeout_s: float = 600.0,
        poll_s: float = 0.5,
        on_progress: Callable[[Job], None] | None = None,
    ) -> Job:
        """Poll until the job finishes; ``on_progress`` sees every change of state or count."""
        deadline = time.monotonic() + timeout_s
        last: tuple[str, int, int] | None = None
        while True:
            job = self.get(job_id)
            seen = (job.state, job.done, job.total)
            if on_progress is not None and seen != last:
                on_progress(job)
            last = seen
            if job.is_finished:
                return job
            if time.monotonic() >= deadline:
                raise WaitTimedOut(job)
            time.sleep(poll_s)

    def list_jobs(
        self,
        *,
        state: str | None = None,
        pipeline_id: str | None = None,
        limit: int = 20,
        page_token: str | None = None,
    ) -> JobPage:
        params: dict[str, Any] = {"limit": limit}
        for name, value in (("state", state), ("pipeline_id", pipeline_id), ("page_token", page_token)):
            if value:
                params[name] = value
        data = self._call("GET", "/jobs", params=params)
        return JobPage([Job.from_json(j) for j in data["jobs"]], data.get("next_page_token"))

    def iter_jobs(
        self, *, state: str | None = None, pipeline_id: str | None = None, page_size: int = 100
    ) -> Iterator[Job]:
        """Every matching job, newest first, following page tokens."""
        token: str | None = None
        while True:
            page = self.list_jobs(state=state, pipeline_id=pipeline_id, limit=page_size, page_token=token)
            yield from page.jobs
            if not page.next_page_token:
                return
            token = page.next_page_token

    def cancel(self, job_id: str) -> Job:
        return Job.from_json(self._call("POST", f"/jobs/{job_id}/cancel"))

    def retry(self, job_id: str) -> Job:
        """Run a failed or canceled job again: a *new* job with the same request, whose
        ``retry_of`` names the old one (which stays as it ended). Any other state: ``ApiError``
        409 ``InvalidJobState``."""
        return Job.from_json(self._call("POST", f"/jobs/{job_id}/retry"))

    def delete_job(self, job_id: str, *, outputs: bool = False) -> None:
        """Forget a finished job now; ``outputs=True`` first deletes every object it wrote."""
        self._call("DELETE", f"/jobs/{job_id}", params={"outputs": "true"} if outputs else {})

    # --- objects ------------------------------------------------------------------------------

    def upload(self, path: str | os.PathLike[str], bucket: str, key: str, *, content_type: str | None = None) -> Upload:
        """Stream a local file to ``bucket/key`` (``PUT /api/v1/objects/...``; the tenant needs
        write on it), e.g. a video to snapshot next."""
        size = os.path.getsize(path)
        kind = content_type or mimetypes.guess_type(str(path))[0] or "application/octet-stream"
        with open(path, "rb") as fh:
            data = self._object(
                "PUT",
                f"/objects/{quote(bucket, safe='')}/{quote(key, safe='/')}",
                content=_chunks(fh),
                headers={"Content-Type": kind, "Content-Length": str(size)},
            )
        return Upload(bucket=str(data["bucket"]), key=str(data["key"]), size=int(data["size"]), url=data.get("url"))

    # --- pipelines ----------------------------------------------------------------------------

    def create_pipeline(self, name: str, **fields: Any) -> dict[str, Any]:
        return self._object("POST", "/pipelines", json={"name": name, **fields})

    def get_pipeline(self, pipeline_id: str) -> dict[str, Any]:
        return self._object("GET", f"/pipelines/{pipeline_id}")

    def list_pipelines(self, *, state: str | None = None, page: int = 1, page_size: int = 50) -> dict[str, Any]:
        params: dict[str, Any] = {"page": page, "page_size": page_size}
        if state:
            params["state"] = state
        return self._object("GET", "/pipelines", params=params)

    def update_pipeline(self, pipeline_id: str, **changes: Any) -> dict[str, Any]:
        return self._object("PATCH", f"/pipelines/{pipeline_id}", json=changes)

    def pause_pipeline(self, pipeline_id: str) -> dict[str, Any]:
        return self.update_pipeline(pipeline_id, state="paused")

    def resume_pipeline(self, pipeline_id: str) -> dict[str, Any]:
        return self.update_pipeline(pipeline_id, state="active")

    def delete_pipeline(self, pipeline_id: str) -> None:
        self._call("DELETE", f"/pipelines/{pipeline_id}")

    # --- plumbing -----------------------------------------------------------------------------

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            resp = self._http.request(method, path, **kwargs)
        except httpx.TransportError as exc:
            raise ConnectionFailed(f"cannot reach {self._http.base_url}: {exc}") from exc
        if resp.status_code >= 400:
            raise _api_error(resp)
        if resp.status_code == 204 or not resp.content:
            return None
        return resp.json()

    def _object(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        data = self._call(method, path, **kwargs)
        if not isinstance(data, dict):
            raise ClientError(f"{method} {path}: expected a JSON object, got {type(data).__name__}")
        return data

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def _api_error(resp: httpx.Response) -> ApiError:
    try:
        data = resp.json()
    except ValueError:
        data = None
    if isinstance(data, dict) and "code" in data:
        return ApiError(resp.status_code, str(data["code"]), str(data.get("message", "")), data.get("request_id"))
    return ApiError(resp.status_code, f"HTTP{resp.status_code}", resp.text[:200], resp.headers.get("X-Request-Id"))


def _chunks(fh: BinaryIO, size: int = 1 << 20) -> Iterator[bytes]:
    while chunk := fh.read(size):
        yield chunk
