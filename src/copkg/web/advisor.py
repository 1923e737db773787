"""The contingency advisor on the web: /advisor (form and answer) and /api/advice (JSON)."""

from __future__ import annotations

import logging
import math
import threading
from collections import OrderedDict
from collections.abc import Hashable
from typing import Any
from urllib.parse import urlencode

from flask import Blueprint, Response, current_app, jsonify, redirect, render_template, request
from werkzeug.wrappers import Response as BaseResponse

from copkg.errors import CopkgError, Problem
from copkg.reasoning.advice.answer import advise
from copkg.reasoning.advice.context import AdviceContext, Vocabulary, local_name, parse_context
from copkg.reasoning.advice.findings import Advice
from copkg.web import app_settings, get_store
from copkg.web.cache import store_identity

bp = Blueprint("advisor", __name__)

log = logging.getLogger(__name__)

#: Answers kept per web process (an answer is a few KiB), and advice computed at a time.
KEPT_ANSWERS = 256
RUNNING_AT_ONCE = 2


def _store_and_rules() -> tuple[Any, Any]:
    return get_store(), app_settings().rules_dir


def context_key(context: AdviceContext) -> Hashable:
    """What an answer depends on besides the build: the modes and levels, in any order."""
    return (
        tuple(sorted((str(m.mode.iri), str(m.degree.iri)) for m in context.modes)),
        tuple(sorted((str(lv.factor.iri), str(lv.level.iri)) for lv in context.levels)),
    )


class AdviceRuns:
    """The advisor's answers under the query time limit, kept per build.

    The rules run in a thread (at most RUNNING_AT_ONCE at a time); past `timeout` s the
    request gets 503 with Retry-After, and the thread, which cannot be stopped, finishes into
    the cache, so that asking again gets the answer. Requests for the same context share one
    run and its answer; answers are kept (LRU) only for a store that cannot change (the
    identity of its build), whether asked by GET, POST or the form.
    """

    def __init__(self, identity: str | None, timeout: float) -> None:
        self.identity = identity
        self.timeout = timeout
        self._answers: OrderedDict[Hashable, Advice] = OrderedDict()
        self._running: dict[Hashable, tuple[threading.Event, dict[str, Any]]] = {}
        self._slots = threading.BoundedSemaphore(RUNNING_AT_ONCE)
        self._lock = threading.Lock()
        self.runs = 0

    def answer(self, store: Any, context: AdviceContext, rules: Any) -> Advice:
        key = context_key(context)
        with self._lock:
            if key in self._answers:
                self._answers.move_to_end(key)
                return self._answers[key]
            running = self._running.get(key)
            if running is None:
                if not self._slots.acquire(blocking=False):
                    raise self._refusal("the advisor is busy with other contexts")
                running = self._running[key] = (threading.Event(), {})
                self.runs += 1
                threading.Thread(target=self._run, args=(key, store, context, rules, running),
                                 name="copkg-advice", daemon=True).start()  # fmt: skip
        done, outcome = running
        if not done.wait(self.timeout):
            raise self._refusal(
                f"the advice took longer than the limit of {self.timeout:g} s; ask again "
                "shortly (it is still being worked out)"
            )
        if "error" in outcome:
            raise outcome["error"]
        answer: Advice = outcome["answer"]
        return answer

    def _run(self, key: Hashable, store: Any, context: AdviceContext, rules: Any,
             running: tuple[threading.Event, dict[str, Any]]) -> None:  # fmt: skip
        done, outcome = running
        try:
            outcome["answer"] = advise(store, context, rules=rules)
        except CopkgError as exc:
            outcome["error"] = CopkgError(exc.message, exc.status, exc.problems, exc.headers)
        except Exception:
            log.exception("the advisor failed")
            outcome["error"] = CopkgError("the advisor failed; see the server log", 500)
        finally:
            with self._lock:
                if "answer" in outcome and self.identity is not None:
                    self._answers[key] = outcome["answer"]
                    while len(self._answers) > KEPT_ANSWERS:
                        self._answers.popitem(last=False)
                del self._running[key]
            self._slots.release()
            done.set()

    def _refusal(self, message: str) -> CopkgError:
        wait = str(max(1, math.ceil(self.timeout)))
        return CopkgError(message, status=503, headers={"Retry-After": wait})


def advice_for(context: AdviceContext) -> Advice:
    """The answer for a context, through the app's AdviceRuns."""
    store, rules = _store_and_rules()
    runs: AdviceRuns | None = current_app.extensions.get("copkg.advice")
    if runs is None:
        runs = AdviceRuns(store_identity(store), app_settings().query_timeout)
        runs = current_app.extensions.setdefault("copkg.advice", runs)
    return runs.answer(store, context, rules)


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
    store = get_store()
    vocabulary = Vocabulary.read(store)
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
        context = context_from_json(store, vocabulary, body)
    else:
        context = context_from_args(store, vocabulary)
        if context is None:
            raise CopkgError(
                "describe a context: give at least one control mode or one factor level",
                status=400,
                problems=[Problem("e.g. ?mode=OutputControl&decentralization=Low", path="mode")],
            )
    answer = advice_for(context)
    return jsonify({"ok": True, **answer.as_json()})


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
    store = get_store()
    vocabulary = Vocabulary.read(store)
    answer: Advice | None = None
    context = context_from_args(store, vocabulary)
    if context is not None:
        answer = advice_for(context)
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
        definitions=vocabulary.definitions,
        local_name=local_name,
        answer=answer,
        query_string=request.query_string.decode("utf-8", "replace"),
    )
