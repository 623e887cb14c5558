"""Where request handlers find the process's Services (stored on the Flask app, not a global)."""

from __future__ import annotations

from flask import current_app

from app.wiring import Services

EXTENSION_KEY = "openmps"


def services() -> Services:
    return current_app.extensions[EXTENSION_KEY]  # type: ignore[no-any-return]
