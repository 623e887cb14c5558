"""The load benchmark's peer: a bare Flask app that answers ``POST /api/v1/jobs`` with 202.

It parses the JSON body (as any endpoint must) and returns a small JSON object, nothing else:
the framework's and the server's own cost under the same gunicorn configuration.
"""

from __future__ import annotations

from flask import Flask, Response, jsonify, request

flask_app = Flask(__name__)


@flask_app.post("/api/v1/jobs")
def submit() -> tuple[Response, int]:
    body = request.get_json(silent=True) or {}
    return jsonify({"id": "bare", "state": "submitted", "fields": len(body)}), 202
