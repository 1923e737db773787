"""The published JSON-LD `@context` of copkg data, at /ns/context.jsonld."""

from __future__ import annotations

from importlib import resources

from flask import Blueprint, Response

from copkg.scholarly.jsonld import CONTEXT_FILE

bp = Blueprint("scholarly", __name__)


@bp.get("/ns/context.jsonld")
def context() -> Response:
    """The context file shipped with the package, as application/ld+json."""
    text = resources.files("copkg.scholarly").joinpath(CONTEXT_FILE).read_text("utf-8")
    response = Response(text, mimetype="application/ld+json")
    response.headers["Access-Control-Allow-Origin"] = "*"
    response.headers["Cache-Control"] = "public, max-age=86400"
    return response
