"""One build at a time, without a restart: the app serves one build's Services (store, query
workers, answer caches) and swaps them for a new build's when `copkg build` or `copkg add`
replaces build/ (a watcher thread in each web process sees build/manifest.json change).

Each request is pinned to the Services of the build it started on (`pinning`, the outermost WSGI
layer), so no answer mixes two builds, and every answer names its build (`Copkg-Build`). The old
build's Services are closed once no request holds them. Its folder is renamed away and deleted by
the swap, and that is sound: the store stays readable through the handles already open (the web
process's read-only store and the live query workers; RocksDB opens every table file when it
opens, and a deleted file lives on while a handle to it is open). What cannot reopen the old
build (a replacement for a killed query worker) is not started: the old pool drains.
"""

from __future__ import annotations

import logging
import os
import threading
import weakref
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from werkzeug.wsgi import ClosingIterator

from copkg.config import Settings
from copkg.errors import CopkgError
from copkg.pipeline.build import MANIFEST
from copkg.pipeline.open import open_store
from copkg.querying.executor import Executor, ThreadExecutor
from copkg.querying.memo import MemoExecutor
from copkg.querying.workers import ProcessExecutor
from copkg.store import Store
from copkg.store.remote import SparqlEndpointStore
from copkg.store.temporary import TemporaryStore
from copkg.web import PINNED, Services, cache

log = logging.getLogger(__name__)

#: Seconds between two looks at build/manifest.json (one stat each).
POLL_INTERVAL = 0.2

#: The response header that names the build an answer comes from.
BUILD_HEADER = "Copkg-Build"

StartResponse = Callable[..., Any]
WSGIApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]
Signature = tuple[int, int, int, int]


def _signature(path: Path | None) -> Signature | None:
    """What changes when a build is swapped in: the manifest file's identity and time."""
    if path is None:
        return None
    try:
        stat = os.stat(path)
    except OSError:  # between the two renames of a swap
        return None
    return (stat.st_dev, stat.st_ino, stat.st_mtime_ns, stat.st_size)


def _drain(executor: Any) -> None:
    """Tell an executor (through the layers wrapping it) that its build is gone."""
    while executor is not None:
        drain = getattr(executor, "drain", None)
        if drain is not None:
            drain()
        executor = getattr(executor, "inner", None)


def query_workers(
    path: str | os.PathLike[str], identity: str | None, config: Mapping[str, Any]
) -> ProcessExecutor:
    """Query worker processes reading the on-disk read-only store at `path`, under the limits
    of the app's `config`; a build's (`identity`: its manifest's) workers check they opened
    that build, not one swapped in since."""
    expect = None if identity is None else (Path(path).parent / MANIFEST, identity)
    return ProcessExecutor(
        path,
        workers=config["QUERY_WORKERS"],
        expect=expect,
        timeout=config["QUERY_TIMEOUT"],
        max_rows=config["MAX_ROWS"],
        allowed_service_endpoints=config["ALLOWED_SERVICE_ENDPOINTS"],
    )


def remembered(executor: Executor, identity: str | None, config: Mapping[str, Any]) -> Executor:
    """The executor behind the answer memo, for a store that cannot change (`identity`) when
    the app keeps answers."""
    kept = config["RESPONSE_CACHE_BYTES"]
    if kept > 0 and identity is not None:
        return MemoExecutor(executor, kept // 2, wait=4 * config["QUERY_TIMEOUT"])
    return executor


def start_executor(executor: Any) -> None:
    """Wait for an executor's workers to open their store (through the wrapping layers)."""
    while executor is not None:
        start = getattr(executor, "start", None)
        if start is not None:
            start()
        executor = getattr(executor, "inner", None)


def executor_for(store: Store, config: Mapping[str, Any]) -> Executor:
    """Worker processes for an on-disk read-only store (the build's) and for `memory:` (which
    they read in snapshots), threads for a remote store or a store handed in."""
    workers = config["QUERY_WORKERS"]
    path = getattr(store, "path", None)
    if workers > 0 and path is not None and getattr(store, "read_only", False):
        return query_workers(path, getattr(store, "build_identity", None), config)
    if workers > 0 and isinstance(store, TemporaryStore):
        snapshots = store.snapshots
        return ProcessExecutor(
            snapshots.folder,
            workers=workers,
            snapshots=snapshots,
            timeout=config["QUERY_TIMEOUT"],
            max_rows=config["MAX_ROWS"],
            allowed_service_endpoints=config["ALLOWED_SERVICE_ENDPOINTS"],
        )
    if isinstance(store, SparqlEndpointStore):
        log.warning(
            "queries run on the remote store %s: copkg closes a query's connection at the "
            "time limit, but the query sandbox applies to local stores only",
            store.query_url,
        )
    else:
        log.warning(
            "queries run in threads of the web process (%s store, handed in): at the time "
            "limit they are answered 503 but cannot be stopped, and the query sandbox (no "
            "network, files confined to the store) does not apply",
            type(store).__name__,
        )
    return ThreadExecutor(
        store,
        workers=max(1, workers),
        timeout=config["QUERY_TIMEOUT"],
        max_rows=config["MAX_ROWS"],
        allowed_service_endpoints=config["ALLOWED_SERVICE_ENDPOINTS"],
    )


def open_services(
    config: Mapping[str, Any], settings: Settings | None, store: Store | None, start: bool = False
) -> Services:
    """One build's store (`store`, else open_store(settings)), executor and answer cache;
    `start`: wait for its query workers to open the store (a build swapped in)."""
    if store is None:
        if settings is None:
            raise CopkgError("no store and no settings to open one with", status=500)
        store = open_store(settings)
    executor = remembered(executor_for(store, config), cache.store_identity(store), config)
    services = Services(
        store,
        executor,
        settings,
        cache=cache.cache_for(store, config["RESPONSE_CACHE_BYTES"]),
        build_id=getattr(store, "build_id", None),
    )
    if start:
        try:
            start_executor(executor)
        except BaseException:
            services.close()
            raise
    return services


class BuildSwitch:
    """The Services of the build being served, the builds still pinned by requests, and the
    watcher that swaps in a new build (`reopen` opens the Services of build/ as it is now)."""

    def __init__(
        self,
        first: Services,
        *,
        reopen: Callable[[], Services] | None = None,
        manifest: Path | None = None,
        on_switch: Callable[[Services], None] | None = None,
    ) -> None:
        self.current = first
        self._reopen = reopen
        self._manifest = manifest if reopen is not None else None
        self._on_switch = on_switch
        self._seen = _signature(self._manifest)
        self._lock = threading.Lock()
        self._refs: dict[int, int] = {}  # id(Services) -> requests pinned to it
        self._retired: list[Services] = []
        self._stop = threading.Event()
        self._watcher: threading.Thread | None = None

    # what tests and the factory reach: the current build's
    @property
    def store(self) -> Any:
        return self.current.store

    @property
    def executor(self) -> Any:
        return self.current.executor

    @property
    def settings(self) -> Any:
        return self.current.settings

    def pin(self) -> Services:
        """The current build's Services, held until `release`."""
        if self._manifest is not None and self._watcher is None:
            self._start_watching()  # at the first request: after gunicorn forked the worker
        with self._lock:
            services = self.current
            self._refs[id(services)] = self._refs.get(id(services), 0) + 1
        return services

    def release(self, services: Services) -> None:
        with self._lock:
            left = self._refs[id(services)] - 1
            if left:
                self._refs[id(services)] = left
                return
            del self._refs[id(services)]
            if not any(s is services for s in self._retired):
                return
            self._retired = [s for s in self._retired if s is not services]
        services.close()

    def switch(self, new: Services) -> None:
        """Serve `new` from now on; the old build's Services close when no request holds them."""
        with self._lock:
            old, self.current = self.current, new
            idle = id(old) not in self._refs
            if not idle:
                self._retired.append(old)
        _drain(old.executor)
        if idle:
            old.close()
        log.info("now serving build %s (was %s)", new.build_id, old.build_id)
        if self._on_switch is not None:
            self._on_switch(new)

    def check(self) -> bool:
        """Swap in the build on disk if its manifest changed and it is another build: True if
        it did. A build that cannot be opened is logged and the current one kept."""
        signature = _signature(self._manifest)
        if self._reopen is None or signature is None or signature == self._seen:
            return False
        try:
            new = self._reopen()
        except CopkgError as exc:
            log.warning("still serving build %s: %s", self.current.build_id, exc.message)
            self._seen = signature  # not again until the build changes again
            return False
        self._seen = signature
        if new.build_id == self.current.build_id:
            new.close()
            return False
        self.switch(new)
        return True

    def _start_watching(self) -> None:
        with self._lock:
            if self._watcher is not None:
                return
            self._watcher = threading.Thread(
                target=_watch, args=(weakref.ref(self), self._stop), name="copkg-build-watch",
                daemon=True,
            )  # fmt: skip
        self._watcher.start()

    def close(self) -> None:
        self._stop.set()
        with self._lock:
            doomed = [self.current, *self._retired]
            self._retired = []
        for services in doomed:
            services.close()


def _watch(ref: weakref.ref[BuildSwitch], stop: threading.Event) -> None:
    """Poll the manifest until the app is closed or gone (a weak reference: the thread never
    keeps an app alive)."""
    while not stop.wait(POLL_INTERVAL):
        switch = ref()
        if switch is None:
            return
        try:
            switch.check()
        except Exception:  # the watcher must outlive a bad build
            log.exception("watching the build failed")
        del switch


def pinning(app: WSGIApp, switch: BuildSwitch) -> WSGIApp:
    """The outermost WSGI layer: pin each request to the current build until its answer has
    been sent, and name that build in a `Copkg-Build` header."""

    def pinned(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        services = switch.pin()
        environ[PINNED] = services
        build_id = services.build_id

        def named(status: str, headers: list[tuple[str, str]], *exc_info: Any) -> Any:
            if build_id is not None:
                headers = [*headers, (BUILD_HEADER, build_id)]
            return start_response(status, headers, *exc_info)

        try:
            body = app(environ, named)
        except BaseException:
            switch.release(services)
            raise
        return ClosingIterator(body, [lambda: switch.release(services)])

    return pinned
