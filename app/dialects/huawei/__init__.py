"""Huawei Cloud MPC dialect: the snapshot API of ``huaweicloudsdkmpc.v1`` (CreateThumbnailsTask,
ListThumbnailsTask, DeleteThumbnailsTask) under ``/v1/<project_id>/thumbnails``, signed with
``SDK-HMAC-SHA256``; errors in MPC's and the API gateway's codes.
"""

from __future__ import annotations

from flask import Request

from app.dialects.huawei.auth import ALGORITHM
from app.dialects.huawei.errors import HuaweiError, render_error
from app.dialects.huawei.routes import create_blueprint
from app.gateway.dialect import Dialect

# JD Cloud's API lives under /v1/regions/<region>/...; no Huawei project id is "regions".
FOREIGN_ROOTS = frozenset({"", "regions"})


def owns(request: Request) -> bool:
    """``/v1/<project_id>/thumbnails[/...]``, and any other ``/v1/<project_id>/...`` request that a
    Huawei SDK signed (another MPC API: it gets the gateway's "no such API" in Huawei's format)."""
    parts = request.path.split("/")
    if len(parts) < 4 or parts[0] != "" or parts[1] != "v1" or parts[2] in FOREIGN_ROOTS:
        return False
    return parts[3] == "thumbnails" or request.headers.get("Authorization", "").startswith(ALGORITHM)


DIALECT = Dialect(
    name="huawei",
    create_blueprint=create_blueprint,
    render_error=render_error,
    owns=owns,
    expected_errors=(HuaweiError,),
)
