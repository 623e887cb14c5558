"""Vendor tenant clients for the isolation suite: Alibaba MPS, JD Cloud and Huawei MPC, each
signing with its vendor's official SDK, unmodified, against the app served on a loopback port.

Each reads its vendor's refusals (``app/dialects/*/errors.py``):

* MPS: ``PermissionDenied.ResourceAccess`` (403) for a bucket without grant; another tenant's
  job ids are listed in QuerySnapshotJobList's ``NonExistSnapshotJobIds`` (a call that names
  one answers ``InvalidParameter.ResourceNotFound``). MPS has no snapshot cancel or delete.
* JD Cloud: ``403 HTTP_FORBIDDEN``; ``404 NOT_FOUND`` for another tenant's task. No cancel or
  delete. Images are named ``{destKeyPrefix}-{taskID}-%04d.{format}``.
* Huawei MPC: ``403 MPC.10203``; another tenant's task is not listed by ListThumbnailsTask and
  DeleteThumbnailsTask (its cancel, of WAITING tasks only) answers ``400 MPC.10212``. A key is
  ``output.object`` + ``output_filename`` (``.jpg`` added); a series is ``<second>.jpg``.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

from aliyunsdkcore.acs_exception.exceptions import ServerException
from aliyunsdkcore.client import AcsClient
from aliyunsdkmts.request.v20140618.QuerySnapshotJobListRequest import QuerySnapshotJobListRequest
from aliyunsdkmts.request.v20140618.SubmitSnapshotJobRequest import SubmitSnapshotJobRequest
from flask.testing import FlaskClient

from app.storage.credentials import AccessKey
from tests.e2e.tenancy import Outcome, Sprite
from tests.servers import serve_wsgi

NOT_DONE = "running"


class Served:
    """The app behind ``http``, served on a loopback port for an SDK; ``close`` stops it."""

    def __init__(self, http: FlaskClient) -> None:
        self.server, self.url = serve_wsgi(http.application)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


# --- Alibaba MPS (aliyun-python-sdk-core + aliyun-python-sdk-mts) ---------------------------------

MPS_REGION = "cn-hangzhou"
MPS_STATES = {"Success": "succeeded", "Fail": "failed", "Submitted": NOT_DONE, "Snapshoting": NOT_DONE}


def _oss(bucket: str, key: str) -> dict[str, str]:
    return {"Bucket": bucket, "Location": f"oss-{MPS_REGION}", "Object": quote(key, safe="")}


class MpsTenant(Served):
    dialect = "mts"
    can_delete = False
    can_cancel = False
    cancels_running = False
    can_sprite = True
    series_count = 100  # JPEG only, written about 4x as fast as the native suite's PNG: more to cancel

    def __init__(self, http: FlaskClient, key: AccessKey) -> None:
        super().__init__(http)
        self.client = AcsClient(key.id, key.secret, MPS_REGION)
        self.client.add_endpoint(MPS_REGION, "Mts", self.url.removeprefix("http://"))

    def _call(self, request: Any) -> Outcome:
        try:
            return Outcome(200, json.loads(self.client.do_action_with_exception(request)))
        except ServerException as exc:
            body = {"Code": exc.get_error_code(), "Message": exc.get_error_msg()}
            return Outcome(exc.get_http_status(), body)

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
        config: dict[str, Any] = {"OutputFile": _oss(output_bucket, output_key), "Time": str(time_ms)}
        if count > 1:  # Interval 0 with Num: Num images spread over the video, asynchronously
            config = {"OutputFile": _oss(output_bucket, output_key + "{Count}.jpg"), "Num": str(count), "Interval": "0"}
        if sprite is not None:
            config["TileOutputFile"] = _oss(sprite.bucket, sprite.prefix + "{TileCount}.jpg")
            config["TileOut"] = {"Lines": "2", "Columns": "2"}
        request = SubmitSnapshotJobRequest()
        request.set_Input(json.dumps(_oss(input_bucket, input_key)))
        request.set_SnapshotConfig(json.dumps(config))
        outcome = self._call(request)
        if outcome.status != 200:
            return outcome
        return Outcome(200, outcome.body, str(outcome.body["SnapshotJob"]["Id"]))

    def series_key(self, prefix: str, n: int, job_id: str) -> str:
        return f"{prefix}{n:05d}.jpg"

    def single_key(self, output_key: str, job_id: str) -> str:
        return output_key

    def denied(self, outcome: Outcome) -> bool:
        return outcome.status == 403 and outcome.body["Code"] == "PermissionDenied.ResourceAccess"

    def not_found(self, outcome: Outcome) -> bool:
        if outcome.status != 200:
            return bool(outcome.body["Code"] == "InvalidParameter.ResourceNotFound")
        return (
            bool(outcome.body["NonExistSnapshotJobIds"]["String"])
            and not outcome.body["SnapshotJobList"]["SnapshotJob"]
        )

    def job(self, job_id: str) -> Outcome:
        request = QuerySnapshotJobListRequest()
        request.set_SnapshotJobIds(job_id)
        return self._call(request)

    def state(self, job_id: str) -> str:
        (record,) = self.job(job_id).body["SnapshotJobList"]["SnapshotJob"]
        if record["State"] == "Fail" and record["Code"] in ("JobCanceled", "SnapshotTimeOut"):
            return "canceled"
        return MPS_STATES[record["State"]]

    def cancel(self, job_id: str) -> Outcome:
        raise NotImplementedError("MPS has no snapshot cancel")

    def delete(self, job_id: str, *, outputs: bool) -> Outcome:
        raise NotImplementedError("MPS has no snapshot delete")

    def list_ids(self) -> set[str]:
        request = QuerySnapshotJobListRequest()
        request.set_MaximumPageSize(100)
        body = self._call(request).body
        return {j["Id"] for j in body["SnapshotJobList"]["SnapshotJob"]}


CLIENTS: dict[str, Any] = {"mts": MpsTenant}
