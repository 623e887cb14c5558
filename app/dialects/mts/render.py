"""Core results -> MPS response shapes, in JSON or XML.

Shapes follow what both SDKs parse (``docs/vendor-wire.md`` §1.4, §2.4): the list wrappers of
MPS's XML heritage (``SnapshotJobList.SnapshotJob[]``, ``PipelineList.Pipeline[]``,
``NonExistSnapshotJobIds.String[]``), ``Input`` and ``SnapshotConfig`` as objects, and numbers
as strings wherever MPS sends strings (every job field; the pipeline's ``SpeedLevel`` and
``QuotaAllocate``, and the paging numbers of ``SearchPipeline``, are numbers).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import quote
from xml.sax.saxutils import escape

from flask import Response, g, request

from app.core import templates
from app.core.errors import FailureCode
from app.core.jobs import SnapshotJob
from app.core.pipelines import Pipeline, PipelineState
from app.core.specs import Average, FrameType, OutputTarget, Series, SingleTime, TimePoints, input_location
from app.core.states import JobState

JSON_TYPE = "application/json;charset=utf-8"
XML_TYPE = "text/xml;charset=utf-8"  # exactly the type the Tea SDK parses as XML
# Neutral token names -> MPS's key tokens (echoed key templates, messages, UrlPattern).
MPS_SPELLING = {templates.JOB_ID: "{JobId}", templates.INDEX: "{Count}", templates.SHEET: "{TileCount}"}
JOB_STATES = {
    JobState.SUBMITTED: "Submitted",
    JobState.RUNNING: "Snapshoting",  # sic: MPS's spelling on the wire
    JobState.SUCCEEDED: "Success",
    JobState.FAILED: "Fail",
    JobState.CANCELED: "Fail",
}
PIPELINE_STATES = {PipelineState.ACTIVE: "Active", PipelineState.PAUSED: "Paused"}
FRAME_TYPES = {FrameType.EXACT: "normal", FrameType.KEYFRAME: "intra"}
SPEED = "Standard"  # every openmps pipeline is a standard (CPU) queue

# Job failure codes (app/core/errors.py) -> MPS snapshot error codes (seed 002's table).
_INTERNAL = ("InternalError", "The operation has failed due to some unknown error, exception or failure.")
_BROKEN = ("InvalidParameter.ResourceContentBad", "The resource operated is broken.")
FAILURES: dict[str, tuple[str, str]] = {
    FailureCode.INPUT_NOT_FOUND: ("InvalidParameter.ResourceNotFound", "The resource operated cannot be found."),
    FailureCode.INPUT_UNREADABLE: _BROKEN,
    FailureCode.UNSUPPORTED_CODEC: _BROKEN,
    FailureCode.MEDIA_LIMIT_EXCEEDED: _BROKEN,
    FailureCode.INPUT_TOO_LARGE: _BROKEN,
    FailureCode.INPUT_REFUSED: (
        "PermissionDenied.ResourceAccess",
        "MTS not authorized to operate on the specified resource.",
    ),
    FailureCode.TIME_OUT_OF_RANGE: ("InvalidParameter.TimeArray", "TimeArray greater than video duration."),
    FailureCode.SNAPSHOT_TIMEOUT: ("SnapshotTimeOut", "Snapshot times out."),
    FailureCode.STORAGE_TRANSIENT: (
        "TransientNetWorkError",
        "Snapshot fail,transient network error occurs, please retry again!",
    ),
    FailureCode.OUTPUT_WRITE_FAILED: (
        "PermissionDenied.ResourceAccess",
        "MTS not authorized to operate on the specified resource.",
    ),
    FailureCode.WORKER_LOST: _INTERNAL,
    FailureCode.INTERNAL_ERROR: _INTERNAL,
}
CANCELED = ("JobCanceled", "The job was canceled.")
SYNC_TIMED_OUT = ("SnapshotTimeOut", "Snapshot times out; submit an asynchronous job (Num or Interval) instead.")
# Notification errors the notifier records (app/notify/errors.py codes) -> MNS's codes.
MNS_CODES = {
    "QueueNotFound": "QueueNotExist",
    "TopicNotFound": "TopicNotExist",
    "MessageTooLarge": "InvalidArgument",
    "EndpointRejected": "InvalidArgument",
}


def job_failure(job: SnapshotJob) -> tuple[str, str]:
    """The MPS ``Code`` and ``Message`` of a finished, unsuccessful job (``("", "")`` otherwise).

    A canceled MPS job with a single time is a synchronous one that ran out of its budget (the
    dialect has no cancel action, and async jobs always carry Interval, Num or a TimeArray), so it
    reads ``SnapshotTimeOut``, as the call that submitted it was answered.
    """
    if job.state is JobState.CANCELED:
        return SYNC_TIMED_OUT if isinstance(job.spec.timing, SingleTime) else CANCELED
    if job.state is not JobState.FAILED:
        return "", ""
    code, standard = FAILURES.get(job.error_code or "", _INTERNAL)
    if code == "InvalidParameter.TimeArray" and not isinstance(job.spec.timing, TimePoints):
        code, standard = "InvalidParameter.OutOfRange", "Time greater than video duration."
    return code, job.error_message or standard


# --- documents --------------------------------------------------------------------------------


def request_id() -> str:
    """The request id in Alibaba's shape (``8-4-4-4-12`` upper-case hex) when it is a bare uuid."""
    rid = str(g.get("request_id") or "")
    if re.fullmatch(r"[0-9a-f]{32}", rid):
        rid = "-".join((rid[:8], rid[8:12], rid[12:16], rid[16:20], rid[20:])).upper()
    return rid


def wants_xml() -> bool:
    """``Format=XML`` (any case) in the query; read from the raw query so that it still works
    for a request whose body could not be read (413)."""
    return bool(g.get("mts_xml")) or request.args.get("Format", "").upper() == "XML"


def document(root: str, body: dict[str, Any], xml: bool, status: int = 200) -> Response:
    if xml:
        text = '<?xml version="1.0" encoding="UTF-8"?>' + _xml(root, body)
        response = Response(text.encode("utf-8"), status, content_type=XML_TYPE)
    else:
        data = json.dumps(body, ensure_ascii=False, separators=(",", ":"))
        response = Response(data.encode("utf-8"), status, content_type=JSON_TYPE)
    response.headers["x-acs-request-id"] = body.get("RequestId", "")
    return response


def ok(action: str, body: dict[str, Any], xml: bool) -> Response:
    return document(f"{action}Response", {"RequestId": request_id(), **body}, xml)


def _xml(name: str, value: Any) -> str:
    if isinstance(value, list):  # MPS's XML: a list is the element repeated
        return "".join(_xml(name, v) for v in value)
    if isinstance(value, dict):
        inner = "".join(_xml(k, v) for k, v in value.items() if v is not None)
        return f"<{name}>{inner}</{name}>"
    if isinstance(value, bool):
        value = "true" if value else "false"
    return f"<{name}>{escape(str(value))}</{name}>"


# --- jobs ---------------------------------------------------------------------------------------


ECHO_KEY = "echo"


@dataclass(frozen=True)
class Echo:
    """What a SubmitSnapshotJob named that the core does not keep: OSS ``Location`` and
    ``RoleArn`` values and the ``Object`` names exactly as sent (still URL-encoded), echoed in
    the submit response. Keys: ``Input``, ``OutputFile``, ``TileOutputFile``."""

    files: dict[str, dict[str, str]] = field(default_factory=dict)

    def to_dialect_data(self) -> dict[str, str]:
        """Kept with the job (``SnapshotJob.dialect_data``), so queries echo what was sent too."""
        return {ECHO_KEY: json.dumps(self.files, separators=(",", ":"))} if self.files else {}

    @classmethod
    def of(cls, job: SnapshotJob) -> Echo:
        raw = job.dialect_data.get(ECHO_KEY)
        return cls(json.loads(raw)) if raw else cls()


def iso(dt: datetime | None) -> str:
    return "" if dt is None else dt.strftime("%Y-%m-%dT%H:%M:%SZ")


def number(value: float) -> str:
    """MPS numbers as strings: ``5``, not ``5.0``; fractions keep up to two decimals."""
    return str(int(value)) if float(value).is_integer() else f"{value:.2f}".rstrip("0")


def _object(name: str) -> str:
    """A stored key as an MPS ``Object``: URL-encoded, as MPS asks clients to send it."""
    return quote(name, safe="/~{}")


def _file(bucket: str, key: str, echo: dict[str, str] | None) -> dict[str, str]:
    out = {"Bucket": bucket, "Object": _object(key)}
    if echo:
        out.update(echo)
    return out


def _key(target: OutputTarget) -> str:
    return templates.to_vendor(target.key_template, MPS_SPELLING)


def snapshot_config(job: SnapshotJob, echo: Echo | None = None) -> dict[str, Any]:
    spec = job.spec
    files = (echo or Echo.of(job)).files
    cfg: dict[str, Any] = {"OutputFile": _file(spec.output.bucket, _key(spec.output), files.get("OutputFile"))}
    t = spec.timing
    if isinstance(t, SingleTime):
        cfg["Time"] = number(t.time_ms)
    elif isinstance(t, Series):
        cfg.update({"Time": number(t.start_ms), "Interval": number(t.interval_s), "Num": str(t.count)})
    elif isinstance(t, Average):
        cfg.update({"Time": number(t.start_ms), "Interval": "0", "Num": str(t.count)})
    else:
        cfg["TimeArray"] = {"TimePointList": [int(p) if float(p).is_integer() else p for p in t.points_ms]}
    cfg["FrameType"] = FRAME_TYPES[spec.frame_type]
    if spec.size.width is not None:
        cfg["Width"] = str(spec.size.width)
    if spec.size.height is not None:
        cfg["Height"] = str(spec.size.height)
    sprite = spec.sprite
    if sprite is not None:
        cfg["TileOutputFile"] = _file(sprite.target.bucket, _key(sprite.target), files.get("TileOutputFile"))
        tile = {
            "Lines": str(sprite.lines),
            "Columns": str(sprite.columns),
            "CellWidth": None if sprite.cell_width is None else str(sprite.cell_width),
            "CellHeight": None if sprite.cell_height is None else str(sprite.cell_height),
            "Margin": str(sprite.margin),
            "Padding": str(sprite.padding),
            "Color": sprite.color,
            "IsKeepCellPic": "true" if sprite.keep_cells else "false",
            "CellSelStep": str(sprite.cell_sel_step),
        }
        cfg["TileOut"] = {k: v for k, v in tile.items() if v is not None}
    return cfg


def mns_result(job: SnapshotJob) -> dict[str, str]:
    """``MNSMessageResult``: the message id of a sent completion message, or why it failed;
    ``{}`` until the notifier has sent it (or when the pipeline notifies nobody)."""
    n = job.notification
    if n is None:
        return {}
    if n.error_code:
        return {"ErrorCode": MNS_CODES.get(n.error_code, n.error_code), "ErrorMessage": n.error_message or ""}
    return {"MessageId": n.message_id or ""}


def job_record(job: SnapshotJob, echo: Echo | None = None) -> dict[str, Any]:
    """A job as ``SnapshotJob`` in MPS responses: every value a string."""
    code, message = job_failure(job)
    files = (echo or Echo.of(job)).files
    record: dict[str, Any] = {
        "Id": job.id,
        "State": JOB_STATES[job.state],
        "Code": code,
        "Message": message,
        "Count": str(len(job.manifest.images)),
        "TileCount": str(len(job.manifest.sheets)),
        "CreationTime": iso(job.created_at),
        "PipelineId": job.pipeline_id,
        "UserData": job.user_data or "",
        "Input": _file(*input_location(job.spec.input), files.get("Input")),  # a URL input: the URL as Object
        "SnapshotConfig": snapshot_config(job, echo or Echo.of(job)),
        "MNSMessageResult": mns_result(job),
    }
    if job.finished_at is not None:
        record["FinishTime"] = iso(job.finished_at)
    return record


def job_list(jobs: list[SnapshotJob]) -> dict[str, Any]:
    return {"SnapshotJob": [job_record(j) for j in jobs]}


# --- pipelines ----------------------------------------------------------------------------------


def pipeline_record(p: Pipeline, *, creation_time: bool = True) -> dict[str, Any]:
    notify: dict[str, str] = {}
    if p.notify is not None and p.notify.topic:
        notify["Topic"] = p.notify.topic
    elif p.notify is not None and p.notify.queue:
        notify["QueueName"] = p.notify.queue
    out: dict[str, Any] = {
        "Id": p.id,
        "Name": p.name,
        "State": PIPELINE_STATES[p.state],
        "Speed": SPEED,
        "SpeedLevel": 1,
        "Role": "",
        "NotifyConfig": notify,
    }
    if p.max_concurrency is not None:
        out["QuotaAllocate"] = p.max_concurrency
    if creation_time:
        out["CreationTime"] = iso(p.created_at)
    return out
