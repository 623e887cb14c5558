"""``GET /openapi.json`` and the docs page ``GET /docs``, at the site root.

The page is Swagger UI from the installed ``openapi-ui-bundles`` package, served by this server:
nothing is fetched from elsewhere, and the page's Content-Security-Policy says so to a browser.
"""

from __future__ import annotations

import json

import openapi_ui_bundles
from flask import Blueprint, Response, jsonify, send_from_directory, url_for
from flask.blueprints import BlueprintSetupState
from werkzeug.exceptions import NotFound

from app.dialects.native.openapi import document

OPENAPI_PATH = "/openapi.json"
DOCS_PATH = "/docs"

SWAGGER_UI = openapi_ui_bundles.swagger_ui.static_path
ASSETS = {"swagger-ui.css", "swagger-ui-bundle.js", "favicon-32x32.png"}
# The page loads only this server's files: Swagger UI sets inline styles, nothing else inline.
CSP = "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; frame-ancestors 'none'"

PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>openmps API</title>
<link rel="stylesheet" href="{css}">
<link rel="icon" type="image/png" href="{icon}">
</head>
<body>
<div id="swagger-ui"></div>
<script src="{bundle}"></script>
<script src="{init}"></script>
</body>
</html>
"""
# validatorUrl null: Swagger UI would otherwise send the document to validator.swagger.io.
INIT = """window.ui = SwaggerUIBundle({{
  url: {spec}, dom_id: "#swagger-ui", validatorUrl: null, deepLinking: true,
  presets: [SwaggerUIBundle.presets.apis], layout: "BaseLayout"
}});
"""


def attach(bp: Blueprint) -> None:
    """Serve the document and the docs page at the site root from the native blueprint.

    A blueprint's ``url_prefix`` applies to every rule it registers, so these rules are added to
    the app itself when the blueprint is registered, under endpoints named after it
    (``native.openapi``): the shell (``app/web/__init__.py``) then counts them as the native
    dialect's, and renders their errors as native JSON.
    """
    bp.record(_register)


def _register(state: BlueprintSetupState) -> None:
    app = state.app
    name = state.name

    def openapi_json() -> Response:
        return jsonify(document())

    def docs() -> Response:
        page = PAGE.format(
            css=url_for(f"{name}.docs_asset", filename="swagger-ui.css"),
            icon=url_for(f"{name}.docs_asset", filename="favicon-32x32.png"),
            bundle=url_for(f"{name}.docs_asset", filename="swagger-ui-bundle.js"),
            init=url_for(f"{name}.docs_init"),
        )
        return Response(page, mimetype="text/html", headers={"Content-Security-Policy": CSP})

    def docs_init() -> Response:
        script = INIT.format(spec=json.dumps(url_for(f"{name}.openapi")))
        return Response(script, mimetype="text/javascript")

    def docs_asset(filename: str) -> Response:
        if filename not in ASSETS:
            raise NotFound()  # answered as native JSON, like any 404 of this blueprint's
        return send_from_directory(SWAGGER_UI, filename, max_age=86_400)

    app.add_url_rule(OPENAPI_PATH, f"{name}.openapi", openapi_json, methods=["GET"])
    app.add_url_rule(DOCS_PATH, f"{name}.docs", docs, methods=["GET"])
    app.add_url_rule(f"{DOCS_PATH}/init.js", f"{name}.docs_init", docs_init, methods=["GET"])
    app.add_url_rule(f"{DOCS_PATH}/assets/<filename>", f"{name}.docs_asset", docs_asset, methods=["GET"])
