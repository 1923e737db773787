"""The advisor's runs under the query time limit, kept per build (AdviceRuns): the rules run
in a process of their own that opens the build's store (or a snapshot of `memory:`, or the
remote store) and stays warm, killed past the limit; a store handed in as an object runs in a
thread. The web asks AdviceRuns for an answer (copkg.web.advisor) and never reads the store;
the process imports this module, without Flask."""

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

from copkg.errors import CopkgError
from copkg.pipeline.build import Manifest
from copkg.querying.deadline import WarmProcess
from copkg.reasoning.advice.answer import advise
from copkg.reasoning.advice.context import AdviceContext, ModeChoice, Vocabulary
from copkg.reasoning.advice.findings import Advice
from copkg.reasoning.advice.studied import Paging, studied
from copkg.store.embedded import OxigraphStore
from copkg.store.remote import SparqlEndpointStore
from copkg.store.temporary import TemporaryStore

log = logging.getLogger(__name__)

#: Answers kept per web process (an answer is a few KiB), and advice computed at a time.
KEPT_ANSWERS = 256
RUNNING_AT_ONCE = 2

#: How long the advisor's process may take to start and open the store (not in the limit).
STARTUP_TIMEOUT = 60.0


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
    control modes read (about 2.5 s at 1,000 studies) with what each mode at each degree
    matches, which each context then reuses."""
    return functools.partial(_advise_nothing, rules=rules)


def _advise_nothing(store: Any, rules: Any) -> None:
    advise(store, AdviceContext(), rules=rules)
    index = studied(store)  # the index of studied contexts that answers with modes read
    if index.derived is None:  # not a build: the index is read anew for each answer
        return
    # what each mode at each degree matches, and its counts, kept in the index: the first
    # answer with one mode would read them otherwise (about 15 ms at 1,000 studies)
    vocabulary = Vocabulary.read(store)
    for mode in vocabulary.choices("ControlMode"):
        for degree in vocabulary.choices("Degree"):
            if degree.iri in vocabulary.ranks:
                choice = ModeChoice(mode, degree, vocabulary.ranks[degree.iri])
                index.counts(AdviceContext(modes=(choice,)))


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
