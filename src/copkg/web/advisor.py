"""The contingency advisor on the web: /advisor (form and answer) and /api/advice (JSON)."""

from __future__ import annotations

import functools
import logging
import math
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from flask import Blueprint, Response, current_app, jsonify, redirect, render_template, request
from werkzeug.wrappers import Response as BaseResponse

from copkg.errors import CopkgError, Problem
from copkg.pipeline.build import Manifest
from copkg.querying.deadline import WarmProcess
from copkg.reasoning.advice.answer import advise
from copkg.reasoning.advice.context import AdviceContext, Vocabulary, local_name, read_context
from copkg.reasoning.advice.findings import YOUR_INPUT, Advice
from copkg.reasoning.advice.studied import Paging, studied
from copkg.store.embedded import OxigraphStore
from copkg.store.remote import SparqlEndpointStore
from copkg.store.temporary import TemporaryStore
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

log = logging.getLogger(__name__)

#: Answers kept per web process (an answer is a few KiB), and advice computed at a time.
KEPT_ANSWERS = 256
RUNNING_AT_ONCE = 2

#: How long the advisor's process may take to start and open the store (not in the limit).
STARTUP_TIMEOUT = 60.0


def _store_and_rules() -> tuple[Any, Any]:
    return get_store(), app_settings().rules_dir


def context_key(context: AdviceContext) -> Hashable:
    """What an answer depends on besides the build: the modes and levels, in any order."""
    return (
        tuple(sorted((str(m.mode.iri), str(m.degree.iri)) for m in context.modes)),
        tuple(sorted((str(lv.factor.iri), str(lv.level.iri)) for lv in context.levels)),
    )


def _reachable(store: Any) -> bool:
    """Whether a process of its own can reach the store: the build's (or another read-only)
    store by its folder, `memory:` by a snapshot, a remote store by its URL; not a store
    handed in as an object, which only this process can read."""
    return isinstance(store, TemporaryStore | SparqlEndpointStore) or (
        isinstance(store, OxigraphStore) and store.read_only and store.path is not None
    )


def _options(store: OxigraphStore) -> dict[str, Any]:
    return {
        "timeout": store.timeout,
        "max_rows": store.max_rows,
        "allowed_service_endpoints": store.allowed_service_endpoints,
    }


def open_source(source: tuple[Any, ...]) -> Any:
    """The store, opened in the advisor's process: a remote store as it was handed over, or a
    folder (the build's store, checked to be the build the request began on, or a snapshot)."""
    if source[0] == "remote":
        return source[1]
    folder, options, identity = Path(source[1]), source[2], source[3]
    before = _build_identity(folder) if identity is not None else None
    store = OxigraphStore.open_read_only(folder, **options)
    if identity is not None and not before == _build_identity(folder) == identity:
        raise CopkgError(
            "a new build was swapped in while the advice was asked for; ask again",
            status=503,
            headers={"Retry-After": "1"},
        )
    # the build it checked it opened: what the advice reads from it is kept per build (the
    # lookups, descriptions and the index of studied contexts), as in the web process
    store.build_identity = identity
    return store


def advise_in(store: Any, context: AdviceContext, rules: Any, paging: Paging) -> Advice:
    """The advice, in the advisor's process, on the store it opened."""
    return advise(store, context, rules=rules, paging=paging)


def prime_advice(rules: Any) -> Callable[[Any], None]:
    """Advise an empty context once in a new process: it reads the rules and what every answer
    shares (about 0.7 s of CPU), and the build's index of studied contexts that answers with
    control modes read (about 2.5 s at 1,000 studies), which each context then reuses."""
    return functools.partial(_advise_nothing, rules=rules)


def _advise_nothing(store: Any, rules: Any) -> None:
    advise(store, AdviceContext(), rules=rules)
    studied(store)  # the index of studied contexts that answers with modes read (once a build)


def _build_identity(store_folder: Path) -> str | None:
    """The identity of the build whose store is in `store_folder` (its manifest's)."""
    try:
        return Manifest.read(store_folder.parent).identity
    except CopkgError:
        return None


@dataclass
class _Warm:
    """An advisor's process, the store it opened (`key`), and what to do when it goes."""

    key: Hashable
    process: WarmProcess
    release: Callable[[], None]

    def close(self) -> None:
        self.process.close()
        self.release()


class AdviceRuns:
    """The advisor's answers under the query time limit, kept per build.

    The rules run in a process of their own (at most RUNNING_AT_ONCE at a time), which opens
    the store once and stays warm for the next context; a run that outlives `timeout` s has
    its process killed (what it reads and holds goes with it; a remote server sees its
    connection close): the request gets 503 with Retry-After, nothing goes on, and the next
    run starts a new process. `memory:` is read from a snapshot, which a process holds while
    it lives; a change makes a new snapshot and a new process. A store handed in as an object
    (a library caller's) cannot be reached from another process: its advice runs in a thread,
    which at the limit cannot be stopped and finishes into the cache. Requests for the same
    context share one run and its answer; answers are kept (LRU) only for a store that cannot
    change (the identity of its build), whether asked by GET, POST or the form.
    """

    def __init__(self, identity: str | None, timeout: float) -> None:
        self.identity = identity
        self.timeout = timeout
        self._answers: OrderedDict[Hashable, Advice] = OrderedDict()
        self._running: dict[Hashable, tuple[threading.Event, dict[str, Any]]] = {}
        self._slots = threading.BoundedSemaphore(RUNNING_AT_ONCE)
        self._lock = threading.Lock()
        self._idle: list[_Warm] = []
        self._closed = False
        self.runs = 0

    def answer(
        self, store: Any, context: AdviceContext, rules: Any, paging: Paging | None = None
    ) -> Advice:
        paging = paging or Paging()
        key = (context_key(context), paging.page, paging.size)
        with self._lock:
            if key in self._answers:
                self._answers.move_to_end(key)
                return self._answers[key]
            running = self._running.get(key)
            if running is None:
                if not self._slots.acquire(blocking=False):
                    raise self._refusal("the advisor is busy with other contexts")
                running = self._running[key] = (threading.Event(), {"apart": _reachable(store)})
                self.runs += 1
                threading.Thread(target=self._run, args=(key, store, context, rules, paging,
                                 running), name="copkg-advice", daemon=True).start()  # fmt: skip
        done, outcome = running
        # a run in a process ends by the limit (after its start); one in a thread may not
        if not done.wait(self.timeout + (STARTUP_TIMEOUT if outcome["apart"] else 0)):
            raise self._refusal(
                f"the advice took longer than the limit of {self.timeout:g} s; ask again "
                "shortly (it is still being worked out)"
            )
        if "error" in outcome:
            raise outcome["error"]
        answer: Advice = outcome["answer"]
        return answer

    def _run(self, key: Hashable, store: Any, context: AdviceContext, rules: Any, paging: Paging,
             running: tuple[threading.Event, dict[str, Any]]) -> None:  # fmt: skip
        done, outcome = running
        try:
            if not outcome["apart"]:
                outcome["answer"] = advise(store, context, rules=rules, paging=paging)
            else:
                warm = self._take(store, rules)
                try:
                    outcome["answer"] = warm.process.call(
                        advise_in,
                        (context, rules, paging),
                        self.timeout,
                        on_timeout=lambda: self._refusal(
                            f"the advice took longer than the limit of {self.timeout:g} s and "
                            "was stopped; try again later"
                        ),
                    )
                finally:
                    self._give_back(warm)
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

    def _take(self, store: Any, rules: Any) -> _Warm:
        """A warm process on the store as it is now, or a new one (idle ones on an older
        snapshot of `memory:` are stopped)."""
        release: Callable[[], None] = _nothing
        if isinstance(store, TemporaryStore):
            path = store.snapshots.acquire()
            source: tuple[Any, ...] = ("folder", str(path), _options(store), None)
            release = functools.partial(store.snapshots.release, path)
        elif isinstance(store, SparqlEndpointStore):
            source = ("remote", store)
        else:  # the build's: the process checks it opened this build, not one swapped in since
            source = ("folder", str(store.path), _options(store), store.build_identity)
        key = (source[0], source[1] if source[0] == "folder" else id(store), source[-1])
        with self._lock:
            found = next((w for w in self._idle if w.key == key and w.process.alive), None)
            stale = [w for w in self._idle if w is not found]
            self._idle = []
        for warm in stale:
            warm.close()
        if found is not None:
            release()  # the process holds its own snapshot
            return found
        try:
            process = WarmProcess(
                open_source, (source,), startup=STARTUP_TIMEOUT, prime=prime_advice(rules)
            )
        except BaseException:
            release()
            raise
        return _Warm(key, process, release)

    def _give_back(self, warm: _Warm) -> None:
        with self._lock:
            if warm.process.alive and not self._closed:
                self._idle.append(warm)
                return
        warm.close()

    def close(self) -> None:
        """Stop the idle processes (those at work stop when their run ends)."""
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
        for warm in idle:
            warm.close()

    def _refusal(self, message: str) -> CopkgError:
        wait = str(max(1, math.ceil(self.timeout)))
        return CopkgError(message, status=503, headers={"Retry-After": wait})


def _nothing() -> None:
    """Nothing to release (the store needs no snapshot)."""


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
