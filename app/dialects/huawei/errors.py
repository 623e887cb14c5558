"""Huawei's error envelope ``{"error_code", "error_msg"}`` with MPC's and the API gateway's codes.

Two layers answer a Huawei client, and each has its own codes (``docs/vendor-apis.md`` (d),
``docs/vendor-wire.md`` §4.4): the API gateway (``APIGW.*``) refuses what never reaches the
service (no such API or method, oversized requests, AK/SK authentication, throttling); MPC
itself (``MPC.<n>``) answers everything else, with 400 for a request it will not carry out. The
SDK raises ``ClientRequestException`` (< 500) or ``ServerResponseException`` (>= 500) carrying
both fields and the ``X-Request-Id`` header, which the shell sets on every response.
"""

from __future__ import annotations

import math

from flask import Response, jsonify
from werkzeug.exceptions import HTTPException

from app.core import errors as e

INVALID_PARAMETER = "MPC.10202"
OPERATION_FAILED = "MPC.10212"
SYSTEM_ERROR = "MPC.10050"
INPUT_MISSING = "MPC.10053"
INPUT_UNFETCHABLE = "MPC.10052"
UNSUPPORTED_CODEC = "MPC.10062"
UNSUPPORTED_CONTAINER = "MPC.10063"
INVALID_OBS_PATH = "MPC.10209"
BAD_CONTENT_TYPE = "MPC.10205"
AUTH_FAILED = "MPC.10203"

GW_NOT_FOUND = "APIGW.0101"
GW_BAD_REQUEST = "APIGW.0201"
GW_IAM = "APIGW.0301"
GW_THROTTLED = "APIGW.0308"


class HuaweiError(Exception):
    """An answer in Huawei's own terms: status, code, message."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.status = status
        self.code = code
        self.message = message


def invalid(field: str, reason: str) -> HuaweiError:
    return HuaweiError(400, INVALID_PARAMETER, f"Invalid request parameter: {field} {reason}".rstrip())


# Neutral field paths (app.core) -> the request fields a Huawei client sent; first match wins.
_FIELDS = (
    ("input.key", "input.object"),
    ("output.key", "output.object"),
    ("archive.output.key", "thumbnail_para.output_filename"),
    ("snapshot.long_side", "thumbnail_para.max_length"),
    ("snapshot.black_frames.black_level", "thumbnail_para.threshold"),
    ("snapshot.black_frames.max_dark_ratio", "thumbnail_para.amount"),
    ("snapshot.points_ms", "thumbnail_para.dots"),
    ("snapshot.", "thumbnail_para."),
)


def huawei_field(field: str) -> str:
    for neutral, vendor in _FIELDS:
        if field.startswith(neutral):
            return vendor + field[len(neutral) :]
    return field


# A failed task's ``FailureCode`` as the MPC code its description starts with.
FAILURE_CODES = {
    e.FailureCode.INPUT_NOT_FOUND: INPUT_MISSING,
    e.FailureCode.INPUT_UNREADABLE: UNSUPPORTED_CONTAINER,
    e.FailureCode.UNSUPPORTED_CODEC: UNSUPPORTED_CODEC,
    e.FailureCode.TIME_OUT_OF_RANGE: INVALID_PARAMETER,
    e.FailureCode.STORAGE_TRANSIENT: INPUT_UNFETCHABLE,
    e.FailureCode.INPUT_REFUSED: INPUT_UNFETCHABLE,
    e.FailureCode.INPUT_TOO_LARGE: UNSUPPORTED_CONTAINER,
    e.FailureCode.OUTPUT_WRITE_FAILED: INVALID_OBS_PATH,
}

_AUTH_MESSAGES = {
    e.AuthFailure.STALE: "Incorrect IAM authentication information: signature expired (X-Sdk-Date is outside the allowed window)",
    e.AuthFailure.UNKNOWN_KEY: "Incorrect IAM authentication information: verify aksk signature fail",
    e.AuthFailure.BAD_SIGNATURE: "Incorrect IAM authentication information: verify aksk signature fail",
    e.AuthFailure.REPLAYED: "Incorrect IAM authentication information: the request was already received",
}

_GATEWAY_HTTP = {
    404: (404, GW_NOT_FOUND, "The API does not exist or has not been published in the environment."),
    # The gateway looks an API up by method and path: a known path with another method is no API.
    405: (404, GW_NOT_FOUND, "The API does not exist."),
    413: (413, GW_BAD_REQUEST, "Request entity too large."),
    414: (414, GW_BAD_REQUEST, "Request URI too large."),
    431: (431, GW_BAD_REQUEST, "Request headers too large."),
}


def to_huawei(exc: Exception) -> HuaweiError:
    """Any failure of a Huawei request -> what its SDK should see."""
    if isinstance(exc, HuaweiError):
        return exc
    if isinstance(exc, e.Unauthenticated):
        message = _AUTH_MESSAGES.get(exc.reason) or f"Incorrect IAM authentication information: {exc.message}"
        return HuaweiError(401, GW_IAM, message)
    if isinstance(exc, e.Throttled):
        return HuaweiError(429, GW_THROTTLED, "The throttling threshold has been reached: " + exc.message)
    if isinstance(exc, e.InvalidParameter):
        field = huawei_field(exc.field)
        code = INVALID_OBS_PATH if field.startswith(("input.", "output.")) else INVALID_PARAMETER
        label = "Invalid OBS path" if code == INVALID_OBS_PATH else "Invalid request parameter"
        return HuaweiError(400, code, f"{label}: {field} {exc.reason}" if field else f"{label}: {exc.reason}")
    if isinstance(exc, e.AccessDenied):  # no bucket grant for the OBS input or output
        return HuaweiError(403, AUTH_FAILED, f"Authentication failed: no access to the OBS object: {exc.message}")
    if isinstance(exc, e.InputNotFound):
        return HuaweiError(400, INPUT_MISSING, f"The input file does not exist: {exc.message}")
    if isinstance(exc, e.PipelineNotFound):  # the default pipeline is ours to keep, not the client's
        return HuaweiError(500, SYSTEM_ERROR, f"System error: {exc.message}")
    if isinstance(exc, e.Unavailable):
        return HuaweiError(503, SYSTEM_ERROR, f"System error: {exc.message}")
    if isinstance(exc, e.DomainError):  # unknown task, a task that can no longer be canceled, ...
        return HuaweiError(400, OPERATION_FAILED, f"Operation failed: {exc.message}")
    if isinstance(exc, HTTPException):
        status = exc.code or 500
        if status in _GATEWAY_HTTP:
            return HuaweiError(*_GATEWAY_HTTP[status])
        if status < 500:
            return HuaweiError(status, GW_BAD_REQUEST, "API request error.")
        return HuaweiError(status, SYSTEM_ERROR, "System error.")
    return HuaweiError(500, SYSTEM_ERROR, "System error: the request failed; it was logged")


def render_error(exc: Exception) -> Response:
    err = to_huawei(exc)
    response = jsonify({"error_code": err.code, "error_msg": err.message})
    response.status_code = err.status
    if isinstance(exc, e.Throttled):
        response.headers["Retry-After"] = str(max(1, math.ceil(exc.retry_after_s)))
    return response
