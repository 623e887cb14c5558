"""Alibaba MNS dialect: the MNS REST API over openmps's queues, topics and push deliveries.

Serves ``/queues/...``, ``/topics/...`` and the ``/mns/...`` extensions at the application root.
"""

from __future__ import annotations

from flask import Request

from app.dialects.mns.errors import MnsError, render_error
from app.dialects.mns.routes import create_blueprint
from app.gateway.dialect import Dialect

ROOTS = ("/queues", "/topics", "/mns")


def _owns(request: Request) -> bool:
    return any(request.path == root or request.path.startswith(root + "/") for root in ROOTS)


DIALECT = Dialect(
    name="mns",
    create_blueprint=create_blueprint,
    render_error=render_error,
    owns=_owns,
    expected_errors=(MnsError,),
)
