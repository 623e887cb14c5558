"""Core errors and job failures -> MPS codes and statuses; the RPC v1 string to sign."""

from __future__ import annotations

import pytest

from app.core import errors as e
from app.core.errors import FailureCode
from app.core.jobs import SnapshotJob
from app.core.specs import ObjectRef, OutputTarget, Series, SnapshotSpec, TimePoints
from app.core.states import JobState
from app.dialects.mts.auth import rpc_sign, rpc_string_to_sign
from app.dialects.mts.errors import failed_call, to_mts
from app.dialects.mts.render import number
from app.gateway.signing import parse_query


def test_the_captured_classic_sdk_request_verifies() -> None:
    """``docs/vendor-wire.md`` §1.2/§1.6: a SearchPipeline request the SDK signed."""
    query = (
        "State=All&PageNumber=1&PageSize=10&Version=2014-06-18&Action=SearchPipeline&Format=JSON"
        "&RegionId=cn-hangzhou&Timestamp=2026-11-21T09%3A32%3A09Z&SignatureMethod=HMAC-SHA1&SignatureType="
        "&SignatureVersion=1.0&SignatureNonce=3e6874d86a5aa6baec299eb7b166cc53&AccessKeyId=testAccessKeyId"
        "&Signature=jscKvJdz0ls%2BWh7XD4GMCuQIq1k%3D"
    )
    text = rpc_string_to_sign("POST", parse_query(query))
    assert text.startswith("POST&%2F&AccessKeyId%3DtestAccessKeyId%26Action%3DSearchPipeline%26Format%3DJSON")
    assert "%26SignatureType%3D%26" in text  # the empty SignatureType is signed too
    assert rpc_sign("testAccessKeySecret", text) == "jscKvJdz0ls+Wh7XD4GMCuQIq1k="


def _job(state: JobState, code: str | None = None, timing: object = Series(0.0, 1.0, 2)) -> SnapshotJob:
    spec = SnapshotSpec(ObjectRef("in", "v.mp4"), timing, OutputTarget("out", "{index:5}.jpg"))  # type: ignore[arg-type]
    return SnapshotJob(id="J", tenant="t", pipeline_id="p", spec=spec, state=state, error_code=code)


@pytest.mark.parametrize(
    ("failure", "code", "status"),
    [
        (FailureCode.INPUT_NOT_FOUND, "InvalidParameter.ResourceNotFound", 404),
        (FailureCode.INPUT_UNREADABLE, "InvalidParameter.ResourceContentBad", 400),
        (FailureCode.UNSUPPORTED_CODEC, "InvalidParameter.ResourceContentBad", 400),
        (FailureCode.MEDIA_LIMIT_EXCEEDED, "InvalidParameter.ResourceContentBad", 400),
        (FailureCode.TIME_OUT_OF_RANGE, "InvalidParameter.OutOfRange", 400),
        (FailureCode.SNAPSHOT_TIMEOUT, "SnapshotTimeOut", 400),
        (FailureCode.STORAGE_TRANSIENT, "TransientNetWorkError", 503),
        (FailureCode.OUTPUT_WRITE_FAILED, "PermissionDenied.ResourceAccess", 403),
        (FailureCode.WORKER_LOST, "InternalError", 500),
        (FailureCode.INTERNAL_ERROR, "InternalError", 500),
    ],
)
def test_every_failure_code_has_its_mps_code_and_status(failure: FailureCode, code: str, status: int) -> None:
    err = failed_call(_job(JobState.FAILED, failure.value))
    assert (err.code, err.status) == (code, status) and err.message


def test_time_out_of_range_of_a_time_array_names_the_time_array() -> None:
    job = _job(JobState.FAILED, FailureCode.TIME_OUT_OF_RANGE.value, TimePoints((1.0,)))
    assert failed_call(job).code == "InvalidParameter.TimeArray"


@pytest.mark.parametrize(
    ("exc", "code", "status"),
    [
        (e.InvalidParameter("snapshot.points_ms[3]", "must be >= 0"), "InvalidParameter.TimeArray", 400),
        (e.InvalidParameter("sprite.lines", "must be in [1, 100]"), "InvalidParameter.TileOut", 400),
        (e.InvalidParameter("output.key", "must contain {index}"), "InvalidParameter.OutputFile", 400),
        (e.InvalidParameter("user_data", "is too long"), "InvalidParameter.UserData", 400),
        (e.InputNotFound("no such object"), "InvalidParameter.ResourceNotFound", 404),
        (e.PipelineNotFound("no such pipeline"), "InvalidParameter.ResourceNotFound", 404),
        (e.PipelineNotEmpty("jobs left"), "InvalidParameter.InvalidState", 400),
        (e.Throttled(0.25), "Throttling", 400),
        (e.Unauthenticated(e.AuthFailure.STALE, "old"), "InvalidTimeStamp.Expired", 400),
        (e.Unauthenticated(e.AuthFailure.REPLAYED, "again"), "SignatureNonceUsed", 400),
        (e.Unauthenticated(e.AuthFailure.UNKNOWN_KEY, "who"), "InvalidAccessKeyId.NotFound", 404),
        (e.Unavailable("redis down"), "ServiceUnavailable", 503),
        (RuntimeError("boom"), "InternalError", 500),
    ],
)
def test_core_errors_map_to_mps_codes(exc: Exception, code: str, status: int) -> None:
    err = to_mts(exc)
    assert (err.code, err.status) == (code, status)


def test_parameter_messages_name_the_mps_path_and_token() -> None:
    err = to_mts(e.InvalidParameter("output.key", "must contain {index} when a job can produce more than one image"))
    assert err.message.startswith('The specified parameter "SnapshotConfig.OutputFile.Object" is invalid')
    assert "{Count}" in err.message and "{index}" not in err.message
    assert to_mts(e.Throttled(0.25)).retry_after_ms == 250
    point = to_mts(e.InvalidParameter("snapshot.points_ms[3]", "must be >= 0")).message
    assert '"SnapshotConfig.TimeArray.TimePointList[3]"' in point


def test_numbers_render_as_mps_strings() -> None:
    assert [number(v) for v in (5.0, 1500, 2.5, 0.125)] == ["5", "1500", "2.5", "0.12"]
