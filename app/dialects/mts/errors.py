"""Core errors and job failure codes -> MPS error codes, HTTP statuses and the MPS error envelope.

Every failure of a request at the RPC endpoint ends here (the shell hands it over), so both SDKs
always meet ``{RequestId, HostId, Code, Message, Recommend}``: JSON by default, XML when the
request says ``Format=XML`` (sent as ``text/xml;charset=utf-8``, the one type the Tea SDK parses
as XML). Statuses are chosen for what each SDK does with them (``docs/vendor-wire.md`` §1.5,
§2.5): any non-2xx raises the classic ``ServerException``; the Tea SDK raises ``ClientException``
for 4xx, ``ServerException`` for 5xx and ``ThrottlingException`` whenever ``x-acs-retry-after``
(milliseconds) is present. MPS's own guidance decides 4xx vs 5xx: ``SnapshotTimeOut`` should not
be retried (4xx), ``TransientNetWorkError`` should (5xx).
"""

from __future__ import annotations

import math
import re

from flask import Response, g, request
from werkzeug.exceptions import HTTPException

from app.core import errors as e
from app.core import templates
from app.core.errors import AuthFailure
from app.core.jobs import SnapshotJob
from app.dialects.mts import render

RECOMMEND = "https://api.aliyun.com/troubleshoot?q={code}&product=Mts"
SIGNATURE_MISMATCH = "Specified signature is not matched with our calculation. server string to sign is:"


class MtsError(Exception):
    """An MPS error as the client will see it. Raised by this dialect's own parsing and checks."""

    def __init__(self, code: str, message: str, status: int = 400, *, retry_after_ms: int | None = None) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.status = status
        self.retry_after_ms = retry_after_ms


def invalid(path: str, reason: str) -> MtsError:
    """``InvalidParameter.<Param>`` naming the MPS parameter (``SnapshotConfig.TileOut.Lines`` ->
    ``InvalidParameter.TileOut``), with the whole path and the reason in the message."""
    top = path.split(".")[1] if path.startswith("SnapshotConfig.") else path.split(".")[0]
    top = re.sub(r"\[.*$", "", top)
    return MtsError(f"InvalidParameter.{top}", f'The specified parameter "{path}" is invalid: {reason}', 400)


def missing(name: str) -> MtsError:
    return MtsError(f"Missing{name}", f"{name} is mandatory for this action.", 400)


# Neutral field paths (app/core) -> the MPS parameter that carries them; longest prefix first.
FIELDS: tuple[tuple[str, str], ...] = (
    ("snapshot.points_ms", "SnapshotConfig.TimeArray.TimePointList"),
    ("snapshot.time_ms", "SnapshotConfig.Time"),
    ("snapshot.start_ms", "SnapshotConfig.Time"),
    ("snapshot.interval_s", "SnapshotConfig.Interval"),
    ("snapshot.count", "SnapshotConfig.Num"),
    ("snapshot.width", "SnapshotConfig.Width"),
    ("snapshot.height", "SnapshotConfig.Height"),
    ("snapshot.", "SnapshotConfig."),
    ("sprite.output.key", "SnapshotConfig.TileOutputFile.Object"),
    ("sprite.output.bucket", "SnapshotConfig.TileOutputFile.Bucket"),
    ("sprite.lines", "SnapshotConfig.TileOut.Lines"),
    ("sprite.columns", "SnapshotConfig.TileOut.Columns"),
    ("sprite.cell_width", "SnapshotConfig.TileOut.CellWidth"),
    ("sprite.cell_height", "SnapshotConfig.TileOut.CellHeight"),
    ("sprite.padding", "SnapshotConfig.TileOut.Padding"),
    ("sprite.margin", "SnapshotConfig.TileOut.Margin"),
    ("sprite.color", "SnapshotConfig.TileOut.Color"),
    ("sprite.cell_sel_step", "SnapshotConfig.TileOut.CellSelStep"),
    ("sprite.", "SnapshotConfig.TileOut."),
    ("output.key", "SnapshotConfig.OutputFile.Object"),
    ("output.bucket", "SnapshotConfig.OutputFile.Bucket"),
    ("input.key", "Input.Object"),
    ("input.bucket", "Input.Bucket"),
    ("user_data", "UserData"),
    ("pipeline_id", "PipelineId"),
    ("name", "Name"),
    ("limit", "MaximumPageSize"),
    ("created_after", "StartOfJobCreatedTimeRange"),
    ("created_before", "EndOfJobCreatedTimeRange"),
    ("page_token", "NextPageToken"),
    ("page_size", "PageSize"),
    ("page", "PageNumber"),
)


def mps_field(field: str) -> str:
    for neutral, mps in FIELDS:
        if field == neutral or (neutral.endswith(".") and field.startswith(neutral)):
            return mps + field[len(neutral) :] if neutral.endswith(".") else mps
        if field.startswith(neutral + "["):
            return mps + field[len(neutral) :]
    return field or "Parameters"


def failed_call(job: SnapshotJob) -> MtsError:
    """A synchronous job that failed, as the error its call answers with."""
    code, message = render.job_failure(job)
    return MtsError(code, message, FAILURE_STATUS.get(code, 400))


FAILURE_STATUS = {
    "InvalidParameter.ResourceNotFound": 404,
    "PermissionDenied.ResourceAccess": 403,
    "TransientNetWorkError": 503,
    "InternalError": 500,
}


# The shared gate's refusals, as Alibaba's API gateway answers them.
AUTH: dict[AuthFailure, tuple[str, str, int]] = {
    AuthFailure.MISSING: ("MissingAccessKeyId", "AccessKeyId is mandatory for this action.", 400),
    AuthFailure.MALFORMED: ("IncompleteSignature", "The request signature does not conform to Aliyun standards.", 400),
    AuthFailure.UNKNOWN_KEY: ("InvalidAccessKeyId.NotFound", "Specified access key is not found.", 404),
    AuthFailure.BAD_SIGNATURE: ("SignatureDoesNotMatch", SIGNATURE_MISMATCH, 400),
    AuthFailure.STALE: ("InvalidTimeStamp.Expired", "Specified time stamp or date value is expired.", 400),
    AuthFailure.REPLAYED: ("SignatureNonceUsed", "Specified signature nonce was used already.", 400),
}

HTTP_CODES = {
    404: ("InvalidAction.NotFound", "Specified api is not found, please check your url and method."),
    405: ("UnsupportedHTTPMethod", "This http method is not supported."),
    413: ("RequestEntityTooLarge", "The request body is too large."),
    414: ("RequestURITooLong", "The request URI is too long."),
}


def to_mts(exc: Exception) -> MtsError:
    """Any failure of an MPS request -> the error its client should see."""
    if isinstance(exc, MtsError):
        return exc
    if isinstance(exc, e.Unauthenticated):
        code, message, status = AUTH[exc.reason]
        if exc.reason is AuthFailure.BAD_SIGNATURE:
            # The classic SDK compares what follows the only ':' with its own string to sign and
            # then reports InvalidAccessKeySecret; the Tea SDK keeps SignatureDoesNotMatch.
            message += g.get("mts_string_to_sign", "")
        return MtsError(code, message, status)
    if isinstance(exc, e.Throttled):
        return MtsError(
            "Throttling",
            "Request was denied due to request throttling.",
            400,
            retry_after_ms=max(1, math.ceil(exc.retry_after_s * 1000)),
        )
    if isinstance(exc, e.Unavailable):
        return MtsError("ServiceUnavailable", "The request has failed due to a temporary failure of the server.", 503)
    if isinstance(exc, e.InvalidParameter):
        reason = templates.to_vendor(exc.reason, render.MPS_SPELLING)
        return invalid(mps_field(exc.field), reason)
    if isinstance(exc, e.AccessDenied):  # seed 002: no permission on the OSS bucket or object
        return MtsError("PermissionDenied.ResourceAccess", f"The resource cannot be accessed: {exc.message}.", 403)
    if isinstance(exc, e.NotFound):  # the input object or bucket, a pipeline
        return MtsError(
            "InvalidParameter.ResourceNotFound", f"The resource operated cannot be found: {exc.message}.", 404
        )
    if isinstance(exc, e.Conflict):
        return MtsError("InvalidParameter.InvalidState", exc.message, 400)
    if isinstance(exc, e.DomainError):  # a refusal the core added later: the caller's, not a crash
        return MtsError("InvalidParameter", exc.message, 400)
    if isinstance(exc, HTTPException):
        status = exc.code or 500
        code, message = HTTP_CODES.get(
            status, ("InvalidParameter", exc.description or exc.name) if status < 500 else ("InternalError", exc.name)
        )
        return MtsError(code, message, status)
    return MtsError(
        "InternalError", "The request processing has failed due to some unknown error, exception or failure.", 500
    )


def render_error(exc: Exception) -> Response:
    err = to_mts(exc)
    body = {
        "RequestId": render.request_id(),
        "HostId": request.host,
        "Code": err.code,
        "Message": err.message,
        "Recommend": RECOMMEND.format(code=err.code),
    }
    response = render.document("Error", body, render.wants_xml(), err.status)
    if err.retry_after_ms is not None:
        response.headers["x-acs-retry-after"] = str(err.retry_after_ms)
        response.headers["Retry-After"] = str(max(1, math.ceil(err.retry_after_ms / 1000)))
    return response
