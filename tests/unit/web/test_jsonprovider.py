"""The app's JSON responses (``app/web/jsonprovider.py``) mean what Flask's own provider's do:
orjson writes them, with the same key order, compactness and conversions, and falls back to
Flask's provider for what orjson refuses."""

from __future__ import annotations

import dataclasses
import decimal
import json
import uuid
from datetime import UTC, date, datetime
from typing import Any

import pytest
from flask import Flask
from flask.json.provider import DefaultJSONProvider

from app.web.jsonprovider import OrjsonProvider


@dataclasses.dataclass
class Point:
    x: int
    label: str


VALUES: list[Any] = [
    {"b": 1, "a": [1, 2.5, None, True], "é": "naïve ✓", "nested": {"z": {}, "y": []}},
    {"when": datetime(2026, 12, 1, 9, 30, tzinfo=UTC), "day": date(2026, 12, 1)},
    {"point": Point(3, "p"), "id": uuid.UUID(int=7), "amount": decimal.Decimal("1.50")},
    {"big": 2**70, "ok": 1},  # beyond 64 bits: orjson refuses, Flask's provider writes it
]


@pytest.fixture
def providers() -> tuple[Flask, DefaultJSONProvider]:
    app = Flask(__name__)
    app.json = OrjsonProvider(app)
    return app, DefaultJSONProvider(Flask(__name__))


@pytest.mark.parametrize("value", VALUES)
def test_a_response_reads_back_as_flasks_own_would(providers: tuple[Flask, DefaultJSONProvider], value: Any) -> None:
    app, default = providers
    with app.app_context():
        fast = app.json.response(value)
    body = fast.get_data()
    assert fast.mimetype == "application/json" and body.endswith(b"\n")
    assert json.loads(body) == json.loads(default.dumps(value))
    # Key order and compactness too: Flask's compact text, but for non-ASCII written as UTF-8.
    expected = default.dumps(value, separators=(",", ":"), ensure_ascii=False)
    assert body.decode() == expected + "\n"


def test_floats_read_back_the_same(providers: tuple[Flask, DefaultJSONProvider]) -> None:
    """Both write the shortest text that reads back exactly (orjson spells 1e16 without '+')."""
    app, _ = providers
    floats = [0.1, 1e16, -0.0, 1000.0, 1 / 3]
    with app.app_context():
        assert json.loads(app.json.response(floats).get_data()) == floats


def test_dumps_matches_flask_and_keeps_its_keyword_arguments(providers: tuple[Flask, DefaultJSONProvider]) -> None:
    app, default = providers
    value = {"b": [1, {"d": 2, "c": 3}], "a": "x"}
    assert json.loads(app.json.dumps(value)) == json.loads(default.dumps(value))
    assert app.json.dumps(value, indent=2) == default.dumps(value, indent=2)  # kwargs: Flask's own path


def test_what_neither_can_write_still_raises_type_error(providers: tuple[Flask, DefaultJSONProvider]) -> None:
    app, _ = providers
    with app.app_context(), pytest.raises(TypeError):
        app.json.response({"x": object()})
