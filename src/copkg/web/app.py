"""The app factory: `create_app(config)` builds the Flask app (settings, store, executor,
blueprints, error handlers); blueprints reach what it opened through copkg.web."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping
from http import HTTPStatus
from pathlib import Path
from typing import Any

from flask import Flask, Response, jsonify, render_template, request
from flask_cors import CORS
from jinja2 import TemplateNotFound
from markupsafe import escape
from werkzeug.exceptions import HTTPException

from copkg.config import SETTING_TYPES, WEB_TYPES, Settings, read_environment
from copkg.errors import CopkgError, Problem
from copkg.pipeline.build import MANIFEST
from copkg.querying.memo import MemoExecutor
from copkg.web import PINNED, Services, advisor, api, cache, context, openapi, pages, sparql, void
from copkg.web.builds import BuildSwitch, open_services, pinning
from copkg.web.cache import DEFAULT_MAX_BYTES as DEFAULT_CACHE_BYTES
from copkg.web.negotiation import best_offer
from copkg.web.protocol import (
    CORS_ALLOW_HEADERS,
    CORS_EXPOSE_HEADERS,
    CORS_METHODS,
    CORS_PATHS,
    SECURITY_HEADERS,
)
from copkg.web.warmup import start_warm_up

__all__ = ["create_app"]

log = logging.getLogger(__name__)

#: Query worker processes (or threads, for a store that is not on disk) per web process.
DEFAULT_QUERY_WORKERS = 2

#: Paths whose errors are always JSON (in the one error shape).
JSON_PATHS = ("/sparql", "/update", "/api/")


def _defaults() -> dict[str, Any]:
    """The defaults: every Settings field (upper-cased) plus the web-only keys."""
    values = {
        f.name.upper(): f.default
        for f in dataclasses.fields(Settings)
        if f.default is not dataclasses.MISSING
    }
    values.update(
        ROOT=None,
        BUILD_DIR=None,
        QUERY_WORKERS=DEFAULT_QUERY_WORKERS,
        SETTINGS=None,  # a Settings: seeds the keys above (what `copkg serve` passes)
        STORE=None,  # a ready Store (tests); otherwise open_store(settings)
        CORS_ORIGINS="*",
        RESPONSE_CACHE_BYTES=DEFAULT_CACHE_BYTES,  # answers kept per build (0: none)
        WARM_UP=False,  # run the named queries once at start, in the background (copkg serve)
        OVERVIEW_TIMEOUT=120.0,  # the time limit of a page read over the whole graph (seconds)
    )
    return values


def _from_settings(settings: Settings) -> dict[str, Any]:
    return {f.name.upper(): getattr(settings, f.name) for f in dataclasses.fields(Settings)}


def _normalise(config: dict[str, Any]) -> None:
    """Give values from the environment (strings or JSON) the types the code expects."""
    try:
        config["QUERY_TIMEOUT"] = float(config["QUERY_TIMEOUT"])
        config["OVERVIEW_TIMEOUT"] = float(config["OVERVIEW_TIMEOUT"])
        for key in ("MAX_ROWS", "MAX_BODY", "QUERY_WORKERS", "RESPONSE_CACHE_BYTES"):
            config[key] = int(config[key])
    except (TypeError, ValueError) as exc:
        raise CopkgError(f"bad setting: {exc}", status=500) from exc
    if config["QUERY_TIMEOUT"] <= 0:
        raise CopkgError("QUERY_TIMEOUT must be a positive number of seconds", status=500)
    token = config.get("UPDATE_TOKEN")
    config["UPDATE_TOKEN"] = str(token) if token not in (None, "") else None
    endpoints = config.get("ALLOWED_SERVICE_ENDPOINTS") or ()
    if isinstance(endpoints, str):
        endpoints = endpoints.replace(",", " ").split()
    config["ALLOWED_SERVICE_ENDPOINTS"] = tuple(str(e) for e in endpoints)
    for key in ("ROOT", "BUILD_DIR"):
        if config.get(key) not in (None, ""):
            config[key] = Path(config[key])


def _settings(config: Mapping[str, Any]) -> Settings:
    """Settings made of the app's configuration (already merged with the environment)."""
    names = {f.name for f in dataclasses.fields(Settings)} - {"root"}
    overrides = {name: config.get(name.upper()) for name in names}
    return Settings.load(config.get("ROOT"), environ={}, **overrides)


def app_config(config: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The app's configuration: defaults, then `SETTINGS`, then `config`, then the COPKG_*
    environment, with the types the code expects."""
    given = dict(config or {})
    merged = _defaults()
    if given.get("SETTINGS") is not None:
        merged.update(_from_settings(given["SETTINGS"]))
    merged.update(given)
    environment = read_environment({**SETTING_TYPES, **WEB_TYPES})
    merged.update({name.upper(): value for name, value in environment.items()})
    _normalise(merged)
    if "MAX_CONTENT_LENGTH" not in given:
        merged["MAX_CONTENT_LENGTH"] = merged["MAX_BODY"]
    return merged


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    """The Flask app: defaults, then `config` (a test mapping), then COPKG_* environment.

    The store is opened once here (`STORE` if given, else `open_store(settings)`: the build,
    or `STORE_URL`) together with the query executor, and reached through `get_store()`.
    """
    app = Flask(__name__)
    app.config.from_mapping(app_config(config))
    settings = None
    store = app.config["STORE"]
    if store is None:
        settings = _settings(app.config)
    services = open_services(app.config, settings, store)
    if settings is not None and settings.store_url is None:
        # the build: swapped for a new one when build/ is replaced (copkg.web.builds)
        build_settings = settings

        def on_switch(new: Services) -> None:
            if app.config["WARM_UP"] and isinstance(new.executor, MemoExecutor):
                start_warm_up(app)

        switch = BuildSwitch(
            services,
            reopen=lambda: open_services(app.config, build_settings, None, start=True),
            manifest=settings.build_dir / MANIFEST,
            on_switch=on_switch,
        )
    else:
        switch = BuildSwitch(services)
    app.extensions["copkg"] = switch

    # before CORS: its headers depend on the request and are not kept with cached answers
    cache.init_app(app, lambda environ: environ[PINNED].cache, wait=4 * app.config["QUERY_TIMEOUT"])
    # Flask's way to add WSGI middleware, which mypy reads as assigning to a method (with self)
    app.wsgi_app = pinning(app.wsgi_app, switch)  # type: ignore[method-assign, assignment]
    CORS(
        app,
        resources={path: {"origins": app.config["CORS_ORIGINS"]} for path in CORS_PATHS},
        methods=CORS_METHODS,
        allow_headers=CORS_ALLOW_HEADERS,
        expose_headers=CORS_EXPOSE_HEADERS,
    )
    _register_blueprints(app)
    _register_error_handlers(app)
    app.after_request(_security_headers)
    if app.config["WARM_UP"] and isinstance(services.executor, MemoExecutor):
        start_warm_up(app)
    return app


def _security_headers(response: Response) -> Response:
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    return response


def _register_blueprints(app: Flask) -> None:
    """One blueprint per concern."""
    app.register_blueprint(sparql.bp)
    app.register_blueprint(api.bp)
    app.register_blueprint(openapi.bp)
    app.register_blueprint(pages.bp)
    app.register_blueprint(advisor.bp)
    app.register_blueprint(void.bp)
    app.register_blueprint(context.bp)


# -- errors ------------------------------------------------------------------------------------


def wants_json() -> bool:
    """JSON for the API paths, `.json` URLs and clients preferring JSON; HTML otherwise."""
    path = request.path
    if path.startswith(JSON_PATHS) or path.endswith(".json"):
        return True
    best = best_offer(["text/html", "application/json"])
    return best == "application/json"


def error_response(error: CopkgError) -> Response:
    """The one rendering of every error: the JSON error shape, or a simple HTML page."""
    body = error.body()
    if wants_json():
        response = jsonify(body)
    else:
        try:
            html = render_template("error.html", error=body)
        except TemplateNotFound:
            problems = "".join(f"<li>{escape(str(Problem(**p)))}</li>" for p in body["errors"])
            html = (
                f"<!doctype html><html lang=en><meta charset=utf-8>"
                f"<title>{error.status} error</title>"
                f"<h1>{error.status}</h1><p>{escape(error.message)}</p>"
                f"{f'<ul>{problems}</ul>' if problems else ''}</html>"
            )
        response = Response(html, mimetype="text/html")
    response.status_code = error.status
    for name, value in error.headers.items():
        response.headers[name] = value
    return response


def _register_error_handlers(app: Flask) -> None:
    @app.errorhandler(CopkgError)
    def copkg_error(error: CopkgError) -> Response:
        return error_response(error)

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException) -> Response:
        headers = {
            name: value
            for name, value in error.get_headers()
            if name.lower() not in ("content-type", "content-length")
        }
        status = error.code or 500
        message = error.description or error.name
        if status == HTTPStatus.METHOD_NOT_ALLOWED and "Allow" in headers:
            message = f"{request.method} is not allowed on {request.path}; use {headers['Allow']}"
        return error_response(CopkgError(message, status=status, headers=headers))

    @app.errorhandler(Exception)
    def unexpected(error: Exception) -> Response:
        log.exception("unexpected error on %s %s", request.method, request.path)
        return error_response(CopkgError("internal error; see the server log", status=500))
