"""The native dialect: openmps's own JSON API under ``/api/v1`` (HTTP Basic access keys)."""

from __future__ import annotations

from app.dialects.native.errors import render_error
from app.dialects.native.render import completion_event
from app.dialects.native.routes import URL_PREFIX, create_blueprint
from app.gateway.dialect import Dialect, path_prefix

DIALECT = Dialect(
    name="native",
    create_blueprint=create_blueprint,
    render_error=render_error,
    owns=path_prefix(URL_PREFIX),
    render_completion=completion_event,
)
