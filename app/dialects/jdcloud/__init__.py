"""JD Cloud MPS dialect: the v1 thumbnail API and notification setting under ``/v1/regions/``,
signed JDCLOUD3-HMAC-SHA256 (jdcloud-sdk 1.6.99+) or JDCLOUD2-HMAC-SHA256 (older SDKs).

Claims only paths that start with ``/v1/regions/``, so that Huawei's ``/v1/{project_id}/...``
stays Huawei's.
"""

from __future__ import annotations

from app.dialects.jdcloud.errors import JdError, render_error
from app.dialects.jdcloud.events import render_completion, render_push
from app.dialects.jdcloud.routes import URL_PREFIX, create_blueprint
from app.gateway.dialect import Dialect, path_prefix

DIALECT = Dialect(
    name="jdcloud",
    create_blueprint=create_blueprint,
    render_error=render_error,
    owns=path_prefix(URL_PREFIX),
    expected_errors=(JdError,),
    render_completion=render_completion,
    render_push=render_push,
)
