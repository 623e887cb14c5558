"""Alibaba Cloud MPS ("mts", API version 2014-06-18): the RPC endpoint at the host root.

Serves ``SubmitSnapshotJob`` (sync and async), ``QuerySnapshotJobList`` and the pipeline actions
to ``aliyun-python-sdk-mts`` and ``alibabacloud-mts20140618`` unmodified, and renders the
completion messages of the jobs it submitted in MPS's format (``events``).
"""

from __future__ import annotations

from flask import Request
from werkzeug.exceptions import HTTPException

from app.dialects.mts.errors import MtsError, render_error
from app.dialects.mts.events import render_completion
from app.dialects.mts.routes import create_blueprint
from app.dialects.mts.schema import ORIGIN
from app.gateway.dialect import Dialect

FORM = "application/x-www-form-urlencoded"


def _owns(request: Request) -> bool:
    """Root-path requests that name an action (RPC query or form, or ACS3's ``x-acs-action``)."""
    if request.path != "/":
        return False
    if "Action" in request.args or request.headers.get("x-acs-action"):
        return True
    if request.mimetype != FORM:
        return False
    try:
        return "Action" in request.form
    except HTTPException:  # a body too large to read (413) is not evidence either way
        return False


DIALECT = Dialect(
    name=ORIGIN,
    create_blueprint=create_blueprint,
    render_error=render_error,
    owns=_owns,
    expected_errors=(MtsError,),
    render_completion=render_completion,
)
