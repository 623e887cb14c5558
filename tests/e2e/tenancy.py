"""Tenant clients for the isolation suite (``test_tenant_isolation.py``): one tenant's view of
the API through one dialect, reduced to what the isolation checks need.

Adding a dialect's checks = one class and one entry in ``DIALECT_CLIENTS`` (the vendor dialects'
are in ``tenancy_vendors.py``). The suite sets
up the data through the native API and then runs every refusal and every own-work check as the
second tenant through the dialect under test. A client for a vendor dialect signs its requests
with its vendor's SDK or scheme and reads its vendor's error format; what it must provide:

* ``submit``: a snapshot job (one image at ``output_key``, or ``count`` images whose keys the
  client reports with ``series_key``, or sheets under ``sprite``) -> ``Outcome``;
* ``denied`` / ``not_found``: whether an ``Outcome`` is the dialect's permission error (MPS
  ``PermissionDenied.ResourceAccess``, JD Cloud ``403 HTTP_FORBIDDEN``, Huawei ``403 MPC.10203``)
  or its "no such job" answer (MPS: listed in ``NonExistSnapshotJobIds``; JD Cloud: 404
  ``NOT_FOUND``; Huawei: not listed, ``MPC.10212`` from its cancel);
* ``job`` / ``cancel`` / ``delete``: read, cancel and (where the vendor has it) delete a job by id;
  ``list_ids``: the ids the tenant's listing shows;
* ``series_key(prefix, n, job_id)``: the key its index token gives image ``n`` for ``prefix``;
  ``single_key(output_key, job_id)``: the key one image submitted for ``output_key`` gets;
* ``state(job_id)``: the job's state in the core's words (``succeeded``, ``failed``, ``canceled``,
  or ``running`` for any unfinished one), read through the dialect.

Both key methods may use the job id (JD Cloud names images after the task), so the suite asks
for them after the submission.

A client whose vendor has no such call sets the capability to ``False`` and the suite leaves out
only that check for it: ``can_delete`` (no vendor deletes snapshot jobs); ``can_cancel`` (MPS and
JD Cloud have no snapshot cancel); ``cancels_running`` (none of the vendors cancels a running
job; Huawei cancels WAITING tasks only): the cleanup race then cancels through the native API with
the same tenant's key; ``can_sprite`` (only MPS of the vendors draws sprite sheets).
``series_count`` is the image the cleanup race plans alpha's key at, from beta's ``race_input``
(Huawei's TIME mode, 1-100 s apart, needs the 1000 s ``in/long.mp4``). Vendor clients serve the
app on a loopback port for their SDKs; ``close`` stops it.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from flask.testing import FlaskClient

from app.storage.credentials import AccessKey


@dataclass(frozen=True)
class Outcome:
    status: int
    body: Any
    job_id: str | None = None


@dataclass(frozen=True)
class Sprite:
    bucket: str
    prefix: str  # sheets go to prefix + sheet number + ".jpg"


class TenantClient(Protocol):
    dialect: str
    can_delete: bool
    can_cancel: bool
    cancels_running: bool
    can_sprite: bool
    series_count: int
    race_input: str

    def submit(
        self,
        input_bucket: str,
        input_key: str,
        output_bucket: str,
        output_key: str,
        *,
        count: int = 1,
        sprite: Sprite | None = None,
        time_ms: int = 100,
    ) -> Outcome: ...
    def series_key(self, prefix: str, n: int, job_id: str) -> str: ...
    def single_key(self, output_key: str, job_id: str) -> str: ...
    def state(self, job_id: str) -> str: ...
    def close(self) -> None: ...
    def denied(self, outcome: Outcome) -> bool: ...
    def not_found(self, outcome: Outcome) -> bool: ...
    def job(self, job_id: str) -> Outcome: ...
    def cancel(self, job_id: str) -> Outcome: ...
    def delete(self, job_id: str, *, outputs: bool) -> Outcome: ...
    def list_ids(self) -> set[str]: ...


@dataclass
class NativeTenant:
    """The native JSON API (HTTP Basic). ``count`` > 1: ``output_key`` is a prefix and images go
    to ``prefix{Count}.jpg`` (5 digits)."""

    http: FlaskClient
    key: AccessKey
    dialect: str = "native"
    can_delete: bool = True
    can_cancel: bool = True
    cancels_running: bool = True
    can_sprite: bool = True
    series_count: int = 40
    race_input: str = "in/heavy.mp4"
    headers: dict[str, str] = field(init=False)

    def __post_init__(self) -> None:
        token = base64.b64encode(f"{self.key.id}:{self.key.secret}".encode()).decode()
        self.headers = {"Authorization": f"Basic {token}"}

    def _outcome(self, resp: Any) -> Outcome:
        body = resp.get_json(silent=True)
        job_id = body.get("id") if isinstance(body, dict) and resp.status_code < 300 else None
        return Outcome(resp.status_code, body, job_id)

    def submit(
        self,
        input_bucket: str,
        input_key: str,
        output_bucket: str,
        output_key: str,
        *,
        count: int = 1,
        sprite: Sprite | None = None,
        time_ms: int = 100,
    ) -> Outcome:
        snapshot: dict[str, Any] = {"mode": "single", "time_ms": time_ms}
        key = output_key
        if count > 1:
            snapshot = {"mode": "average", "count": count, "format": "png"}
            key = output_key + "{Count}.png"
        if sprite is not None:
            snapshot["sprite"] = {"output": {"bucket": sprite.bucket, "key": sprite.prefix + "{TileCount}.jpg"}}
        body = {
            "input": {"bucket": input_bucket, "key": input_key},
            "output": {"bucket": output_bucket, "key": key},
            "snapshot": snapshot,
        }
        return self._outcome(self.http.post("/api/v1/jobs", json=body, headers=self.headers))

    def series_key(self, prefix: str, n: int, job_id: str) -> str:
        return f"{prefix}{n:05d}.png"

    def single_key(self, output_key: str, job_id: str) -> str:
        return output_key

    def state(self, job_id: str) -> str:
        return str(self.job(job_id).body["state"])

    def close(self) -> None:
        pass

    def denied(self, outcome: Outcome) -> bool:
        return outcome.status == 403 and outcome.body["code"] == "AccessDenied"

    def not_found(self, outcome: Outcome) -> bool:
        return outcome.status == 404 and outcome.body["code"] == "JobNotFound"

    def job(self, job_id: str) -> Outcome:
        return self._outcome(self.http.get(f"/api/v1/jobs/{job_id}", headers=self.headers))

    def cancel(self, job_id: str) -> Outcome:
        return self._outcome(self.http.post(f"/api/v1/jobs/{job_id}/cancel", headers=self.headers))

    def delete(self, job_id: str, *, outputs: bool) -> Outcome:
        path = f"/api/v1/jobs/{job_id}" + ("?outputs=true" if outputs else "")
        resp = self.http.delete(path, headers=self.headers)
        return Outcome(resp.status_code, resp.get_json(silent=True))

    def list_ids(self) -> set[str]:
        return {j["id"] for j in self.http.get("/api/v1/jobs?limit=100", headers=self.headers).get_json()["jobs"]}


# dialect name -> how the suite builds the second tenant's client from the app's test client and
# that tenant's access key (a vendor client may also start its own served app from ``http``).
DIALECT_CLIENTS: dict[str, Callable[[FlaskClient, AccessKey], TenantClient]] = {"native": NativeTenant}


def _register_vendors() -> None:
    from tests.e2e import tenancy_vendors

    DIALECT_CLIENTS.update(tenancy_vendors.CLIENTS)


_register_vendors()
