"""Run SPARQL queries under a time limit and a row limit, where a runaway query can be stopped.

Neither pyoxigraph nor rdflib can cancel a running query, so:

- `ProcessExecutor` (copkg.querying.workers: an on-disk store opened read-only, the build's)
  keeps a small pool of worker processes, each opening the same store read-only. A query that
  outlives the limit has its worker killed and replaced; the client gets 503 with Retry-After
  and the other workers go on answering. Results come back serialized (bytes and a media
  type), never as Python objects.
  The same pool serves `--store memory:` (a writable store in a temporary folder), each worker
  reading a snapshot taken after the store's last change (copkg.store.temporary).
- `ThreadExecutor` (a remote store, or a store handed in by a library caller) runs each query
  in a daemon thread, a bounded number at a time. At the limit the client gets its 503 and
  the thread's HTTP connections are closed (copkg.store.http.Cancel): a remote server sees
  the request end (and was sent its own time limit where it has one), and the thread ends at
  once. Work in the thread's own process cannot be stopped so: it keeps its slot until the
  store's deadline check (between result rows) or its end, and when every slot is taken new
  queries wait at most the limit for one, then get 503.

Either way the query is parsed and checked by `copkg.querying.safety` inside the time limit.

A job is a SPARQL query or a page read: a function of copkg.querying.pages.reads named with
plain arguments (a resource's page data, the landing page's counts ...), run under the same
limits, in the same workers.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import functools
import logging
import math
import threading
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from rdflib.term import Node

from copkg.errors import CopkgError
from copkg.querying.pages.reads import READ_MEDIA, run_read
from copkg.querying.safety import QueryPlan, ResultKind, analyse_query
from copkg.store import Store
from copkg.store.http import Cancel, cancelling

log = logging.getLogger(__name__)

#: The largest answer a worker hands to the web process (which holds it while it is sent).
MAX_ANSWER_BYTES = 128 << 20


@dataclass(frozen=True)
class Job:
    """One query to run: the text, its dataset, bound variables and the acceptable media types.

    `media_types` maps a result kind ("select", "ask", "graph") to the media type to write it
    in; a kind that is missing cannot be served (406).
    """

    sparql: str
    default_graphs: tuple[str, ...] | None = None
    named_graphs: tuple[str, ...] | None = None
    bindings: Mapping[str, Node] | None = None
    media_types: Mapping[str, str] = field(default_factory=dict)
    base: str | None = None
    #: Who asked (the client's address): the executor bounds each client's long queries.
    client: str | None = None
    #: A page read instead of a query: its name in copkg.querying.pages.reads.READS, and its
    #: arguments (plain values); the answer is the read's result, pickled (READ_MEDIA).
    read: str | None = None
    args: tuple[Any, ...] = ()
    #: A time limit of its own (seconds), for a read of the whole graph (a page's counts): the
    #: executor's otherwise.
    timeout: float | None = None

    def to_message(self) -> tuple[Any, ...]:
        """The job as plain values, for a worker process (pickled faster than the class)."""
        return (self.sparql, self.default_graphs, self.named_graphs, self.bindings,
                dict(self.media_types), self.base, self.client, self.read, self.args,
                self.timeout)  # fmt: skip

    @classmethod
    def page_read(
        cls, name: str, *args: Any, client: str | None = None, timeout: float | None = None
    ) -> Job:
        """The job of a page read: `name` called with the store and `args`."""
        return cls("", client=client, read=name, args=args, timeout=timeout)

    @classmethod
    def from_message(cls, message: tuple[Any, ...]) -> Job:
        return cls(*message)


@dataclass(frozen=True)
class Answer:
    """A serialized result (of a page read: kind "read", its result pickled)."""

    kind: ResultKind | Literal["read"]
    media_type: str
    body: bytes
    count: int
    truncated: bool


class Executor(Protocol):
    """Runs jobs within the limits; raises CopkgError (503 on timeout or saturation)."""

    timeout: float

    def run(self, job: Job) -> Answer: ...

    def close(self) -> None: ...


class AsyncExecutor(Executor, Protocol):
    """An executor an asyncio loop can run jobs on with no thread in between."""

    async def run_async(self, job: Job, threads: concurrent.futures.Executor) -> Answer: ...


#: Query plans kept (by exact text, store graphs, allowed endpoints and base IRI), and the
#: longest text kept: the same text always gets the same plan, so a named query asked again
#: with other parameter values is read once.
PLANS_KEPT = 256
PLANNED_TEXT = 1 << 16


def plan_of(
    sparql: str, graphs: Collection[str], allowed: Collection[str], base: str | None
) -> QueryPlan:
    """`analyse_query` of a query, kept for the next time the same text comes (a refusal is
    not kept: it is raised again)."""
    if len(sparql) > PLANNED_TEXT:
        return analyse_query(sparql, graphs=graphs, allowed_service_endpoints=allowed, base=base)
    return _kept_plan(sparql, frozenset(graphs), tuple(allowed), base)


@functools.lru_cache(maxsize=PLANS_KEPT)
def _kept_plan(
    sparql: str, graphs: frozenset[str], allowed: tuple[str, ...], base: str | None
) -> QueryPlan:
    return analyse_query(sparql, graphs=graphs, allowed_service_endpoints=allowed, base=base)


def run_job(
    store: Store,
    job: Job,
    *,
    graphs: Collection[str],
    allowed_service_endpoints: Collection[str],
    max_rows: int | None = None,
) -> Answer:
    """Check, run and serialize one query (in whichever process or thread holds the store).

    The store applies its own row limit while collecting; `max_rows` caps what it returned
    for stores made without one (a store passed in by a test, say). A page read runs its
    function (under the store's own limits).
    """
    if job.read is not None:
        return Answer("read", READ_MEDIA, run_read(store, job.read, job.args), 1, False)
    plan = plan_of(job.sparql, graphs, allowed_service_endpoints, job.base)
    media_type = job.media_types.get(plan.kind)
    if media_type is None:
        offered = ", ".join(sorted(set(job.media_types.values()))) or "none"
        raise CopkgError(
            f"a {plan.form} gives {'triples' if plan.kind == 'graph' else 'solutions'}, which "
            f"cannot be written in the requested format (requested: {offered})",
            status=406,
        )
    default_graphs, named_graphs = job.default_graphs, job.named_graphs
    if default_graphs is None and named_graphs is None and plan.has_dataset:
        default_graphs, named_graphs = plan.from_graphs, plan.from_named_graphs
    base = {"base": job.base} if job.base and plan.relative_iris else {}
    write = getattr(store, "query_serialized", None)
    if write is not None:  # the engine writes its own answer: no term becomes an rdflib object
        kind, body, count, truncated = write(
            job.sparql,
            media_type,
            bindings=job.bindings,
            default_graphs=default_graphs,
            named_graphs=named_graphs,
            max_rows=max_rows,
            **base,
        )
        return Answer(kind, media_type, body, count, truncated)
    result = store.query(
        job.sparql,
        bindings=job.bindings,
        default_graphs=default_graphs,
        named_graphs=named_graphs,
        **base,
    )
    if max_rows is not None and len(result) > max_rows:
        result = dataclasses.replace(
            result, rows=result.rows[:max_rows], triples=result.triples[:max_rows], truncated=True
        )
    return Answer(
        result.kind, media_type, result.serialize(media_type), len(result), result.truncated
    )


def timed_out(timeout: float) -> CopkgError:
    seconds = f"{timeout:g}"
    return CopkgError(
        f"the query took longer than the limit of {seconds} s and was stopped; "
        "simplify it (fewer joins, a LIMIT) or try again later",
        status=503,
        headers={"Retry-After": str(max(1, math.ceil(timeout)))},
    )


def out_of_memory(limit: int | None, timeout: float) -> CopkgError:
    bound = f" of {limit >> 20} MiB" if limit else ""
    return CopkgError(
        f"the query needed more memory than the limit{bound} and was stopped; "
        "simplify it (fewer joins, shorter strings, a LIMIT)",
        status=503,
        headers={"Retry-After": str(max(1, math.ceil(timeout)))},
    )


def too_large(size: int) -> CopkgError:
    return CopkgError(
        f"the result is {size >> 20} MiB, more than the limit of {MAX_ANSWER_BYTES >> 20} MiB; "
        "ask for fewer or shorter values (a LIMIT, SUBSTR)",
        status=503,
        headers={"Retry-After": "1"},
    )


def over_share(client: str | None, limit: int, timeout: float, *, stopped: float = 0) -> CopkgError:
    """503 at once for a client running as many long queries as it may (or, `stopped`, for a
    query stopped on becoming long because the long lane is full)."""
    who = f"this client ({client})" if client else "this client"
    if stopped:
        why = (
            f"the query ran longer than {stopped:g} s while the service already ran as many long "
            f"queries as it keeps room for (at most {limit} for {who}, and one worker is kept "
            "for short queries), so it was stopped"
        )
    else:
        why = (
            f"{who} already runs {limit} long "
            f"quer{'y' if limit == 1 else 'ies'}, the most one client may run at once"
        )
    return CopkgError(
        f"{why}; try again when it has ended",
        status=503,
        headers={"Retry-After": str(max(1, math.ceil(timeout)))},
    )


def saturated(timeout: float) -> CopkgError:
    return CopkgError(
        "the service is busy with other queries; try again shortly",
        status=503,
        headers={"Retry-After": str(max(1, math.ceil(timeout)))},
    )


class ThreadExecutor:
    """Queries in daemon threads, at most `workers` at a time (remote stores, stores handed in).

    At the limit the thread's HTTP connections are closed, which ends a remote query's thread
    at once; in-process work cannot be stopped and keeps its slot until it ends (being a
    daemon, it never holds up the end of the process).
    """

    def __init__(
        self,
        store: Store,
        *,
        timeout: float,
        workers: int = 2,
        max_rows: int | None = None,
        allowed_service_endpoints: Collection[str] = (),
    ) -> None:
        self.store = store
        self.timeout = timeout
        self.max_rows = max_rows
        self.allowed_service_endpoints = tuple(allowed_service_endpoints)
        self._slots = threading.BoundedSemaphore(max(1, workers))

    def run(self, job: Job) -> Answer:
        if not self._slots.acquire(timeout=self.timeout):
            raise saturated(self.timeout)
        done = threading.Event()
        outcome: dict[str, Any] = {}
        cancel = Cancel()

        def work() -> None:
            try:
                with cancelling(cancel):
                    outcome["answer"] = run_job(
                        self.store,
                        job,
                        graphs=frozenset() if job.read else frozenset(self.store.graphs()),
                        allowed_service_endpoints=self.allowed_service_endpoints,
                        max_rows=self.max_rows,
                    )
            except CopkgError as exc:
                # hand over a copy without the traceback: its frames hold pyoxigraph objects
                # that must be dropped in this thread
                outcome["error"] = CopkgError(exc.message, exc.status, exc.problems, exc.headers)
            except Exception:
                log.exception("query failed")
                outcome["error"] = CopkgError("the query failed; see the server log", 500)
            finally:
                self._slots.release()
                done.set()

        limit = job.timeout or self.timeout
        threading.Thread(target=work, name="copkg-query", daemon=True).start()
        if not done.wait(limit):
            cancel.cancel()
            log.warning("query over %ss: its connections closed", limit)
            raise timed_out(limit)
        if "error" in outcome:
            raise outcome["error"]
        answer: Answer = outcome["answer"]
        return answer

    def close(self) -> None:
        """Nothing to stop: running queries are daemon threads."""
