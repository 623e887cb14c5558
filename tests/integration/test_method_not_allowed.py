"""Every 405, in every dialect's format, names the methods the resource does take (RFC 9110
``Allow``): a routing refusal is rendered by the dialect that owns the path, and the shell adds
the header where that dialect's renderer did not."""

from __future__ import annotations

import re

from flask.testing import FlaskClient

from app.web import create_app
from app.wiring import Services

METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")


def test_every_routed_path_answers_a_wrong_method_with_allow(services: Services) -> None:
    app = create_app(services.settings, services)
    client: FlaskClient = app.test_client()
    checked = 0
    for rule in app.url_map.iter_rules():
        path = re.sub(r"<[^>]+>", "x", rule.rule)
        wrong = next((m for m in METHODS if m not in (rule.methods or set())), None)
        if wrong is None:
            continue
        resp = client.open(path, method=wrong)
        if resp.status_code != 405:  # another rule takes this method on the same path
            continue
        allowed = {m.strip() for m in resp.headers.get("Allow", "").split(",") if m.strip()}
        assert allowed and wrong not in allowed, (rule.endpoint, wrong, dict(resp.headers))
        assert "text/html" not in resp.headers.get("Content-Type", "") or rule.endpoint.startswith("console.")
        checked += 1
    assert checked >= 20  # every dialect's routes, not a handful
