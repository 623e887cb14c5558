"""The native dialect: openmps's own JSON API under ``/api/v1`` (HTTP Basic access keys)."""

from __future__ import annotations

from flask import Blueprint

from app.dialects.native import docs, routes
from app.dialects.native.errors import render_error
from app.dialects.native.render import completion_event
from app.dialects.native.routes import URL_PREFIX
from app.gateway.dialect import Dialect, DialectServices, path_prefix


def create_blueprint(services: DialectServices) -> Blueprint:
    """The API under ``/api/v1``, and its OpenAPI document and docs page at the site root."""
    bp = routes.create_blueprint(services)
    docs.attach(bp)
    return bp


DIALECT = Dialect(
    name="native",
    create_blueprint=create_blueprint,
    render_error=render_error,
    owns=path_prefix(URL_PREFIX),
    render_completion=completion_event,
)
