"""The web service: the app factory is copkg.web.app; here, what every blueprint reaches of the
running app (its store, executor, settings and named queries), so that blueprints never import
each other or the factory."""

from __future__ import annotations

import pickle
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from flask import current_app, has_request_context, request

from copkg.config import Settings
from copkg.errors import CopkgError
from copkg.querying.executor import Answer, Executor, Job
from copkg.querying.messages import loads_plain
from copkg.querying.named_queries import Fact, NamedQuery, load_named_queries
from copkg.querying.pages.reads import WHOLE_GRAPH
from copkg.store import Store

__all__ = [
    "PINNED",
    "Services",
    "app_settings",
    "client_address",
    "get_executor",
    "get_services",
    "get_store",
    "named_queries",
    "read_answer",
    "read_job",
    "read_page",
    "store_facts",
]


#: Where a request keeps the Services of the build it started on (copkg.web.builds).
PINNED = "copkg.build"


@dataclass
class Services:
    """What the app opened for one build (store, executor, answer cache) and the requests
    that started on that build share; a new build gets new Services (copkg.web.builds)."""

    store: Store
    executor: Executor
    settings: Settings | None = None
    update_lock: threading.Lock = field(default_factory=threading.Lock)
    cache: Any = None  # the build's answer cache (a copkg.web.cache.ResponseCache)
    build_id: str | None = None  # the build's name in answers (Copkg-Build), if a build
    advice: Any = None  # the advisor's runs (copkg.pipeline.advice_runs.AdviceRuns)
    #: Facts of the whole store (a named query's values in the data and keys of its pages:
    #: copkg.querying.named_queries.Fact; the advisor's vocabulary), as the executor read
    #: them: kept while the store cannot change (a build's), so read once.
    facts: dict[Fact, Any] = field(default_factory=dict)

    def known_facts(self, facts: Iterable[Fact]) -> tuple[dict[Fact, Any], list[Fact]]:
        """Those of `facts` read already, and the others (to read through the executor)."""
        asked = list(dict.fromkeys(facts))
        known = {fact: self.facts[fact] for fact in asked if fact in self.facts}
        return known, [fact for fact in asked if fact not in known]

    def keep_facts(self, read: Mapping[Fact, Any]) -> None:
        """Keep facts read, if the store cannot change (read-only: a build's)."""
        if getattr(self.store, "read_only", False):
            self.facts.update(read)

    def close(self) -> None:
        self.executor.close()
        if self.advice is not None:
            self.advice.close()


def get_services() -> Services:
    """The Services of the build this request started on (outside a request: the app's
    current build)."""
    if has_request_context():
        pinned: Services | None = request.environ.get(PINNED)
        if pinned is not None:
            return pinned
    current: Services = current_app.extensions["copkg"].current
    return current


def get_store() -> Store:
    """The app's store (opened once in create_app)."""
    return get_services().store


def get_executor() -> Executor:
    """Runs queries under the time and row limits (see copkg.querying.executor)."""
    return get_services().executor


def app_settings() -> Settings:
    """The app's settings: those it opened its store with, else made from its ROOT."""
    settings = get_services().settings
    if settings is None:
        cache = current_app.extensions.setdefault("copkg.settings", {})
        if "settings" not in cache:
            cache["settings"] = Settings.load(current_app.config.get("ROOT"), environ={})
        settings = cache["settings"]
    return settings


def named_queries() -> dict[str, NamedQuery]:
    """The named queries of the project, read once per app (a bad file fails at start-up)."""
    cache = current_app.extensions.setdefault("copkg.api", {})
    if "queries" not in cache:
        cache["queries"] = load_named_queries(app_settings().queries_dir)
    queries: dict[str, NamedQuery] = cache["queries"]
    return queries


def client_address() -> str | None:
    """Who sent the request, for the executor's per-client share: the peer's address, or the
    last hop of X-Forwarded-For when the request came over gunicorn's Unix socket (from
    copkg's own front, which sets it; a client-sent one never gets that far)."""
    environ = request.environ
    forwarded = environ.get("HTTP_X_FORWARDED_FOR", "")
    if forwarded and "REMOTE_PORT" not in environ:
        return forwarded.rsplit(",", 1)[-1].strip() or None
    return environ.get("REMOTE_ADDR") or None


def read_job(
    name: str, args: tuple[Any, ...], *, client: str | None, timeout: float, overview: float
) -> Job:
    """The job of the page read `name` (copkg.querying.pages.reads) with `args`: a read of the
    whole graph gets the longer of the query limit (`timeout`) and its own (`overview`:
    OVERVIEW_TIMEOUT), the others the executor's."""
    limit = max(timeout, overview) if name in WHOLE_GRAPH else None
    return Job.page_read(name, *args, client=client, timeout=limit)


def read_answer(name: str, answer: Answer) -> Any:
    """A page read's result, as plain data (500 for anything else)."""
    try:
        return loads_plain(answer.body)
    except pickle.UnpicklingError as exc:  # a read gave more than plain data: a bug, or worse
        raise CopkgError(f"the page read {name} answered other than plain data", 500) from exc


def read_page(name: str, *args: Any) -> Any:
    """A page's data, read by the executor as one job (in a query worker: under the time limit,
    in the sandbox, fairly scheduled): the page read `name` of copkg.querying.pages.reads,
    called with `args`. The web renders it; it never reads the store itself."""
    executor = get_executor()
    overview = float(current_app.config.get("OVERVIEW_TIMEOUT", 0))
    job = read_job(name, args, client=client_address(), timeout=executor.timeout, overview=overview)
    return read_answer(name, executor.run(job))


def store_facts(facts: Iterable[Fact]) -> dict[Fact, Any]:
    """Facts of the whole store (a named query's values in the data and keys of pages, the
    advisor's vocabulary), each a page read of the executor: (its name, its arguments...). A
    build's are read once (`Services.facts`)."""
    services = get_services()
    known, missing = services.known_facts(facts)
    read = {fact: read_page(*fact) for fact in missing}
    services.keep_facts(read)
    return {**known, **read}
