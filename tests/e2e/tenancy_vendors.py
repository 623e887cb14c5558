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
from huaweicloudsdkcore.auth.credentials import BasicCredentials
from huaweicloudsdkcore.exceptions.exceptions import ServiceResponseException
from huaweicloudsdkcore.http.http_config import HttpConfig
from huaweicloudsdkmpc.v1 import (
    CreateThumbnailsTaskRequest,
    CreateThumbReq,
    DeleteThumbnailsTaskRequest,
    ListThumbnailsTaskRequest,
    MpcClient,
    ObsObjInfo,
    ThumbnailPara,
)
from jdcloud_sdk.core.config import Config
from jdcloud_sdk.core.credential import Credential
from jdcloud_sdk.core.logger import ERROR, Logger
from jdcloud_sdk.services.mps.apis.CreateThumbnailTaskRequest import (
    CreateThumbnailTaskParameters,
    CreateThumbnailTaskRequest,
)
from jdcloud_sdk.services.mps.apis.GetThumbnailTaskRequest import GetThumbnailTaskParameters, GetThumbnailTaskRequest
from jdcloud_sdk.services.mps.apis.ListThumbnailTaskRequest import ListThumbnailTaskParameters, ListThumbnailTaskRequest
from jdcloud_sdk.services.mps.client.MpsClient import MpsClient
from jdcloud_sdk.services.mps.models.ThumbnailTaskRule import ThumbnailTaskRule
from jdcloud_sdk.services.mps.models.ThumbnailTaskSource import ThumbnailTaskSource
from jdcloud_sdk.services.mps.models.ThumbnailTaskTarget import ThumbnailTaskTarget

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
    series_count = 1000  # images come at ~300/s and a cancel lands in ~0.3 s: enough to be canceled
    race_input = "in/heavy.mp4"

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


# --- JD Cloud (jdcloud-sdk) -----------------------------------------------------------------------

JD_REGION = "cn-north-1"
JD_STATES = {"SUCCESS": "succeeded", "ERROR": "failed", "PENDDING": NOT_DONE, "RUNNING": NOT_DONE}
JD_CANCELED = 499  # a canceled task reads ERROR with errorCode 499 (app/dialects/jdcloud/render.py)


class JdTenant(Served):
    """Images are ``{destKeyPrefix}-{taskID}-%04d.{format}``: ``output_key`` less ``.jpg`` is the
    prefix of one image; a series (``mode: average``) is PNG, as the native suite's."""

    dialect = "jdcloud"
    can_delete = False
    can_cancel = False
    cancels_running = False
    can_sprite = False
    series_count = 1000  # 40 or 100 finished before the cancel landed about once in 10 runs
    race_input = "in/heavy.mp4"

    def __init__(self, http: FlaskClient, key: AccessKey) -> None:
        super().__init__(http)
        config = Config(endpoint=self.url.removeprefix("http://"), scheme="http", timeout=10)
        self.client = MpsClient(Credential(key.id, key.secret), config, Logger(ERROR))

    def _send(self, request: Any) -> Outcome:
        resp = self.client.send(request)
        if resp.error is not None:
            return Outcome(
                resp.error.code, {"code": resp.error.code, "status": resp.error.status, "message": resp.error.message}
            )
        return Outcome(200, resp.result)

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
        assert sprite is None, "JD Cloud draws no sprite sheets"
        if count > 1:
            target = ThumbnailTaskTarget(output_bucket, destKeyPrefix=output_key, format="png")
            rule = ThumbnailTaskRule(mode="average", count=count)
        else:
            target = ThumbnailTaskTarget(output_bucket, destKeyPrefix=output_key.removesuffix(".jpg"), format="jpg")
            rule = ThumbnailTaskRule(mode="single", keyFrame=False, startTimeInSecond=time_ms // 1000)
        params = CreateThumbnailTaskParameters(JD_REGION, ThumbnailTaskSource(input_bucket, input_key), target)
        params.setRule(rule)
        outcome = self._send(CreateThumbnailTaskRequest(params))
        return Outcome(outcome.status, outcome.body, outcome.body["taskID"] if outcome.status == 200 else None)

    def series_key(self, prefix: str, n: int, job_id: str) -> str:
        return f"{prefix}-{job_id}-{n:04d}.png"

    def single_key(self, output_key: str, job_id: str) -> str:
        return f"{output_key.removesuffix('.jpg')}-{job_id}-0001.jpg"

    def denied(self, outcome: Outcome) -> bool:
        return outcome.status == 403 and outcome.body["status"] == "HTTP_FORBIDDEN"

    def not_found(self, outcome: Outcome) -> bool:
        return outcome.status == 404 and outcome.body["status"] == "NOT_FOUND"

    def job(self, job_id: str) -> Outcome:
        return self._send(GetThumbnailTaskRequest(GetThumbnailTaskParameters(JD_REGION, job_id)))

    def state(self, job_id: str) -> str:
        task = self.job(job_id).body
        if task["status"] == "ERROR" and task["errorCode"] == JD_CANCELED:
            return "canceled"
        return JD_STATES[task["status"]]

    def cancel(self, job_id: str) -> Outcome:
        raise NotImplementedError("JD Cloud has no thumbnail task cancel")

    def delete(self, job_id: str, *, outputs: bool) -> Outcome:
        raise NotImplementedError("JD Cloud has no thumbnail task delete")

    def list_ids(self) -> set[str]:
        params = ListThumbnailTaskParameters(JD_REGION)
        params.setLimit(100)
        return {t["taskID"] for t in self._send(ListThumbnailTaskRequest(params)).body["taskList"]}


# --- Huawei MPC (huaweicloudsdkmpc) -----------------------------------------------------------------

HUAWEI_LOCATION = "cn-north-4"
HUAWEI_PROJECT = "0123456789abcdef0123456789abcdef"
HUAWEI_STATES = {
    "WAITING": NOT_DONE,
    "PROCESSING": NOT_DONE,
    "SUCCEEDED": "succeeded",
    "FAILED": "failed",
    "CANCELED": "canceled",
}


class HuaweiTenant(Served):
    """``original_dir: 1`` and ``tar: 1`` (no sub-directory per task, no tar): one image is
    ``output.object/output_filename`` (``.jpg`` added unless there), a ``TIME`` series every 1 s is
    ``output.object/<second>.jpg``; the cleanup race reads ``in/long.mp4`` (1000 s at 1 fps), the
    only way to plan many images at 1-100 s apart. DeleteThumbnailsTask is the cancel."""

    dialect = "huawei"
    can_delete = False
    can_cancel = True
    cancels_running = False
    can_sprite = False
    series_count = 900
    race_input = "in/long.mp4"

    def __init__(self, http: FlaskClient, key: AccessKey) -> None:
        super().__init__(http)
        self.client = (
            MpcClient.new_builder()
            .with_credentials(BasicCredentials(key.id, key.secret, HUAWEI_PROJECT))
            .with_endpoint(self.url)
            .with_http_config(HttpConfig(timeout=(5, 30)))
            .build()
        )

    def _call(self, method: Any, request: Any) -> Outcome:
        try:
            resp = method(request)
        except ServiceResponseException as exc:
            return Outcome(exc.status_code, {"error_code": exc.error_code, "error_msg": exc.error_msg})
        return Outcome(resp.status_code or 200, resp.to_dict())

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
        assert sprite is None, "Huawei MPC draws no sprite sheets"
        if count > 1:
            directory, para = output_key.strip("/"), ThumbnailPara(type="TIME", time=1, start_time=0)
        else:
            directory, _, name = output_key.rpartition("/")
            para = ThumbnailPara(type="DOTS_MS", dots_ms=[time_ms], output_filename=name, format=1)
        body = CreateThumbReq(
            input=ObsObjInfo(bucket=input_bucket, location=HUAWEI_LOCATION, object=input_key),
            output=ObsObjInfo(bucket=output_bucket, location=HUAWEI_LOCATION, object=directory),
            thumbnail_para=para,
            tar=1,
            original_dir=1,
            sync=0,
        )
        outcome = self._call(self.client.create_thumbnails_task, CreateThumbnailsTaskRequest(body=body))
        return Outcome(outcome.status, outcome.body, outcome.body.get("task_id") if outcome.status < 300 else None)

    def series_key(self, prefix: str, n: int, job_id: str) -> str:
        return f"{prefix}{n - 1}.jpg"  # image n at second n - 1

    def single_key(self, output_key: str, job_id: str) -> str:
        return output_key if output_key.endswith(".jpg") else output_key + ".jpg"

    def denied(self, outcome: Outcome) -> bool:
        return outcome.status == 403 and outcome.body["error_code"] == "MPC.10203"

    def not_found(self, outcome: Outcome) -> bool:
        if outcome.status >= 300:  # DeleteThumbnailsTask of an unknown task
            return outcome.status == 400 and outcome.body["error_code"] == "MPC.10212"
        return not outcome.body["task_array"]  # ListThumbnailsTask leaves unknown ids out

    def job(self, job_id: str) -> Outcome:
        return self._call(self.client.list_thumbnails_task, ListThumbnailsTaskRequest(task_id=[job_id]))

    def state(self, job_id: str) -> str:
        (task,) = self.job(job_id).body["task_array"]
        return HUAWEI_STATES[task["status"]]

    def cancel(self, job_id: str) -> Outcome:
        return self._call(self.client.delete_thumbnails_task, DeleteThumbnailsTaskRequest(task_id=job_id))

    def delete(self, job_id: str, *, outputs: bool) -> Outcome:
        raise NotImplementedError("Huawei MPC's DeleteThumbnailsTask is its cancel: no delete")

    def list_ids(self) -> set[str]:
        body = self._call(self.client.list_thumbnails_task, ListThumbnailsTaskRequest(size=100)).body
        return {t["task_id"] for t in body["task_array"]}


CLIENTS: dict[str, Any] = {"mts": MpsTenant, "jdcloud": JdTenant, "huawei": HuaweiTenant}
