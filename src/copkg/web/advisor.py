"""The contingency advisor on the web: /advisor (form and answer) and /api/advice (JSON). A
context is checked against the vocabulary the query workers read (a page read), and the
answer is AdviceRuns' (copkg.pipeline.advice_runs: a process of its own, killed past the
limit): the web process never reads the store."""

from __future__ import annotations

import threading
from typing import Any
from urllib.parse import urlencode

from flask import Blueprint, Response, current_app, jsonify, redirect, render_template, request
from werkzeug.wrappers import Response as BaseResponse

from copkg.errors import CopkgError, Problem
from copkg.pipeline.advice_runs import AdviceRuns
from copkg.reasoning.advice.context import AdviceContext, Vocabulary, local_name, read_context
from copkg.reasoning.advice.findings import YOUR_INPUT, Advice
from copkg.reasoning.advice.studied import Paging
from copkg.web import app_settings, get_services, get_store, store_facts
from copkg.web.advisor_paging import (
    PAGING,
    page_headers,
    page_links,
    paging_from_args,
    paging_from_json,
)
from copkg.web.cache import store_identity

bp = Blueprint("advisor", __name__)


def _store_and_rules() -> tuple[Any, Any]:
    return get_store(), app_settings().rules_dir


#: Makes the first AdviceRuns of a build once, when several requests ask at once.
_CREATING = threading.Lock()


def advice_for(context: AdviceContext, paging: Paging | None = None) -> Advice:
    """The answer for a context, through the build's AdviceRuns (closed with the build)."""
    store, rules = _store_and_rules()
    identity = store_identity(store)
    services = get_services()
    with _CREATING:
        runs: AdviceRuns | None = services.advice
        if runs is None or runs.identity != identity:  # the first request, or a new build's
            if runs is not None:
                runs.close()
            runs = services.advice = AdviceRuns(identity, current_app.config["QUERY_TIMEOUT"])
    return runs.answer(store, context, rules, paging)


def advisor_vocabulary() -> Vocabulary:
    """The terms a user may name, read by the executor (a build's once)."""
    read = ("vocabulary",)
    return Vocabulary.from_rows(store_facts([read])[read])


def context_from_args(vocabulary: Vocabulary) -> AdviceContext | None:
    """A context from the query string: `mode=X[@Degree]`, `level=factor@Level`, `factor=Level`.

    None when the query string describes nothing (an empty form)."""
    modes = [m for m in request.args.getlist("mode") if m.strip()]
    levels: list[tuple[str, str]] = []
    for item in request.args.getlist("level"):
        if not item.strip():
            continue
        factor, sep, level = item.partition("@")
        if not sep:
            raise CopkgError(
                f"level {item!r} should read factor@Level",
                status=400,
                problems=[Problem("e.g. level=decentralization@Low", path="level")],
            )
        levels.append((factor, level))
    for key in request.args:
        if key in ("mode", "level", *PAGING):
            continue
        for value in request.args.getlist(key):
            if value.strip():
                levels.append((key, value))
    if not modes and not levels:
        return None
    return read_context(vocabulary, modes, levels)


def context_from_json(vocabulary: Vocabulary, body: Any) -> AdviceContext:
    """A context from a JSON body: {"modes": [...], "levels": {...}}."""
    if not isinstance(body, dict):
        raise CopkgError(
            "the body must be a JSON object with modes and/or levels",
            status=400,
            problems=[Problem('e.g. {"levels": {"decentralization": "Low"}}')],
        )
    unknown = sorted(set(body) - {"modes", "levels", "page", "pageSize"})
    if unknown:
        raise CopkgError(
            f"unknown field {unknown[0]!r}",
            status=400,
            problems=[Problem("fields: modes, levels, page, pageSize", path=unknown[0])],
        )
    modes: list[str | tuple[str, str | None]] = []
    for item in body.get("modes") or []:
        if isinstance(item, str):
            modes.append(item)
        elif isinstance(item, dict) and isinstance(item.get("mode"), str):
            degree = item.get("degree")
            modes.append((item["mode"], degree if isinstance(degree, str) else None))
        else:
            raise CopkgError(
                'each mode is a name or {"mode": ..., "degree": ...}',
                status=400,
                problems=[Problem(repr(item), path="modes")],
            )
    raw_levels = body.get("levels") or {}
    if isinstance(raw_levels, dict):
        pairs = list(raw_levels.items())
    elif isinstance(raw_levels, list):
        pairs = [(x.get("factor"), x.get("level")) for x in raw_levels if isinstance(x, dict)]
    else:
        pairs = []
    if any(not isinstance(f, str) or not isinstance(v, str) for f, v in pairs) or (
        raw_levels and not pairs
    ):
        raise CopkgError(
            "levels map a factor to a level name",
            status=400,
            problems=[Problem('e.g. {"decentralization": "Low"}', path="levels")],
        )
    return read_context(vocabulary, modes, pairs)


@bp.route("/api/advice", methods=["GET", "POST"])
def advice_api() -> Response:
    """The advisor's answer as JSON (GET parameters or a POST JSON body)."""
    terms = advisor_vocabulary()
    context: AdviceContext | None
    if request.method == "POST":
        try:
            body = request.get_json(silent=True)
        except RecursionError:  # nested deeper than the JSON parser goes
            body = None
        if body is None:
            raise CopkgError(
                "send a JSON body (Content-Type: application/json)",
                status=400,
                problems=[Problem("the body is not JSON", path="body")],
            )
        context = context_from_json(terms, body)
        paging = paging_from_json(body)
    else:
        paging = paging_from_args()
        context = context_from_args(terms)
        if context is None:
            raise CopkgError(
                "describe a context: give at least one control mode or one factor level",
                status=400,
                problems=[Problem("e.g. ?mode=OutputControl&decentralization=Low", path="mode")],
            )
    answer = advice_for(context, paging)
    links = page_links("/api/advice", answer) if request.method == "GET" else {}
    response = jsonify({"ok": True, **answer.as_json(), "links": links})
    response.headers.update(page_headers(links, answer) if links else {})
    return response


def canonical_query() -> str | None:
    """The query string without its empty fields (the form sends one for every choice left
    at "not used" / "unknown"), or None when it has none to drop."""
    pairs = list(request.args.items(multi=True))
    kept = [(k, v) for k, v in pairs if v.strip()]
    return urlencode(kept, safe="@") if len(kept) < len(pairs) else None


@bp.get("/advisor")
def advisor_page() -> BaseResponse | str:
    """The form, and the answer when the form describes a context. A query string with empty
    fields is redirected to the same one without them: the URL to share."""
    canonical = canonical_query()
    if canonical is not None:
        return redirect(f"/advisor?{canonical}" if canonical else "/advisor", code=303)
    terms = advisor_vocabulary()
    answer: Advice | None = None
    paging = paging_from_args()
    context = context_from_args(terms)
    links: dict[str, str] = {}
    if context is not None:
        answer = advice_for(context, paging)
        links = page_links("/advisor", answer)
    selected_modes = {m.mode.iri: m.degree.iri for m in context.modes} if context else {}
    selected_levels = {lv.factor.iri: lv.level.iri for lv in context.levels} if context else {}
    return render_template(
        "advisor.html",
        modes=terms.choices("ControlMode"),
        degrees=terms.choices("Degree"),
        levels=sorted(terms.choices("Level"), key=lambda t: terms.ranks.get(t.iri, 0)),
        factors=sorted(terms.terms["ContingencyFactor"].values(), key=lambda t: t.label),
        selected_modes=selected_modes,
        selected_levels=selected_levels,
        definitions=terms.definitions,
        local_name=local_name,
        answer=answer,
        page_links=links,
        your_input=YOUR_INPUT,
        query_string=request.query_string.decode("utf-8", "replace"),
    )
