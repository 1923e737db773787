"""The contingency advisor on the web: /advisor (form and answer) and /api/advice (JSON)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, jsonify, render_template, request

from copkg.errors import CopkgError, Problem
from copkg.reasoning.advice.answer import advise
from copkg.reasoning.advice.context import AdviceContext, Vocabulary, local_name, parse_context
from copkg.reasoning.advice.findings import Advice
from copkg.web import app_settings, get_store

bp = Blueprint("advisor", __name__)


def _store_and_rules() -> tuple[Any, Any]:
    return get_store(), app_settings().rules_dir


def context_from_args(store: Any, vocabulary: Vocabulary) -> AdviceContext | None:
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
        if key in ("mode", "level"):
            continue
        for value in request.args.getlist(key):
            if value.strip():
                levels.append((key, value))
    if not modes and not levels:
        return None
    return parse_context(store, modes, levels, vocabulary=vocabulary)


def context_from_json(store: Any, vocabulary: Vocabulary, body: Any) -> AdviceContext:
    """A context from a JSON body: {"modes": [...], "levels": {...}}."""
    if not isinstance(body, dict):
        raise CopkgError(
            "the body must be a JSON object with modes and/or levels",
            status=400,
            problems=[Problem('e.g. {"levels": {"decentralization": "Low"}}')],
        )
    unknown = sorted(set(body) - {"modes", "levels"})
    if unknown:
        raise CopkgError(
            f"unknown field {unknown[0]!r}",
            status=400,
            problems=[Problem("fields: modes, levels", path=unknown[0])],
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
    return parse_context(store, modes, pairs, vocabulary=vocabulary)


@bp.route("/api/advice", methods=["GET", "POST"])
def advice_api() -> Response:
    """The advisor's answer as JSON (GET parameters or a POST JSON body)."""
    store, rules = _store_and_rules()
    vocabulary = Vocabulary.read(store)
    if request.method == "POST":
        body = request.get_json(silent=True)
        if body is None:
            raise CopkgError(
                "send a JSON body (Content-Type: application/json)",
                status=400,
                problems=[Problem("the body is not JSON", path="body")],
            )
        context = context_from_json(store, vocabulary, body)
    else:
        context = context_from_args(store, vocabulary)
        if context is None:
            raise CopkgError(
                "describe a context: give at least one control mode or one factor level",
                status=400,
                problems=[Problem("e.g. ?mode=OutputControl&decentralization=Low", path="mode")],
            )
    answer = advise(store, context, rules=rules)
    return jsonify({"ok": True, **answer.as_json()})


@bp.get("/advisor")
def advisor_page() -> str:
    """The form, and the answer when the form describes a context."""
    store, rules = _store_and_rules()
    vocabulary = Vocabulary.read(store)
    answer: Advice | None = None
    context = context_from_args(store, vocabulary)
    if context is not None:
        answer = advise(store, context, rules=rules)
    selected_modes = {m.mode.iri: m.degree.iri for m in context.modes} if context else {}
    selected_levels = {lv.factor.iri: lv.level.iri for lv in context.levels} if context else {}
    return render_template(
        "advisor.html",
        modes=vocabulary.choices("ControlMode"),
        degrees=vocabulary.choices("Degree"),
        levels=sorted(vocabulary.choices("Level"), key=lambda t: vocabulary.ranks.get(t.iri, 0)),
        factors=sorted(vocabulary.terms["ContingencyFactor"].values(), key=lambda t: t.label),
        selected_modes=selected_modes,
        selected_levels=selected_levels,
        local_name=local_name,
        answer=answer,
        query_string=request.query_string.decode("utf-8", "replace"),
    )
