"""What a dialect is: one object that says how it is mounted, renders its errors and its
completion messages, and builds its blueprint from the services it is handed.

Flask's blueprint 404/405 handlers never fire (routing errors happen before any blueprint is
chosen), and a blueprint's per-class handlers lose to the app's for parent classes; so the shell
owns every error handler and asks ``owns`` which dialect a request belongs to, then lets that
dialect's ``render_error`` answer it: a dialect's client meets only its vendor's format, for a
routing 404 as for a crash.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import redis
from flask import Blueprint, Request, Response

from app.core.ports import CompletionRenderer, PushRenderer, Sealer
from app.core.service import SnapshotService
from app.gateway.gate import RequestGate
from app.settings import Settings


@dataclass(frozen=True)
class DialectServices:
    """What a dialect's blueprint factory receives (it never looks anything up in ``current_app``)."""

    settings: Settings
    snapshots: SnapshotService
    gate: RequestGate
    redis: redis.Redis  # a dialect's own state, e.g. MNS queues and topics (``decode_responses=True``)
    sealer: Sealer  # seals secrets a dialect stores itself (MNS subscriptions' webhook secrets, the push key)


ErrorRenderer = Callable[[Exception], Response]


@dataclass(frozen=True)
class Dialect:
    """One API dialect.

    ``owns(request)`` claims requests by shape (a path prefix, or "the root path with an
    ``Action`` parameter") so that errors raised before routing reaches a view are still answered
    in the dialect's format. ``render_error`` turns any exception into the dialect's response: a
    core ``DomainError`` (``Unauthenticated``, ``Throttled``, ``Unavailable``, ...), a werkzeug
    ``HTTPException`` (404, 405, 413, ...), one of ``expected_errors`` (its own error types), or
    anything else (an unexpected crash, already logged by the shell). ``render_completion``
    renders the completion message of the jobs it submitted (``SnapshotJob.origin == name``);
    ``render_push`` the one pushed to a tenant's own endpoint for them (``PushEndpoint``, set
    through ``SnapshotService.set_push_endpoint``), in the format that endpoint asked for (None:
    ``render_completion``'s message is pushed).
    """

    name: str
    create_blueprint: Callable[[DialectServices], Blueprint]
    render_error: ErrorRenderer
    owns: Callable[[Request], bool]
    expected_errors: tuple[type[Exception], ...] = ()
    render_completion: CompletionRenderer | None = None
    render_push: PushRenderer | None = None


def path_prefix(prefix: str) -> Callable[[Request], bool]:
    """An ``owns`` for a dialect mounted under ``prefix`` (``/api/v1``)."""
    stripped = prefix.rstrip("/")
    return lambda request: request.path == stripped or request.path.startswith(stripped + "/")
