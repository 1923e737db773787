"""`--store memory:`: a writable store that belongs to one serving process, kept in a private
temporary folder (removed when the store is dropped or the process ends) so that other
processes can read it.

Opening a store read-only while another process writes it is undefined behaviour in RocksDB,
so readers never open the store itself: they open a snapshot (`Snapshots`), a RocksDB
checkpoint taken after the store's last change (hard links: about 0.1 s, little space), and a
snapshot is removed once no reader holds it. The query worker processes read snapshots (and
can be killed at the time limit, losing nothing); updates go to the store, in its process.
"""

from __future__ import annotations

import collections
import itertools
import shutil
import tempfile
import threading
import weakref
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from rdflib import Graph
from rdflib.term import Node

from copkg.store.embedded import OxigraphStore


class TemporaryStore(OxigraphStore):
    """A writable on-disk store in a temporary folder of its own, with `snapshots` of it.

    `changes` differs after every change made through this object (not through `native`):
    a snapshot is taken again when it no longer matches.
    """

    def __init__(self, **options: Any) -> None:
        folder = Path(tempfile.mkdtemp(prefix="copkg-memory-"))
        self._finalizer = weakref.finalize(self, shutil.rmtree, folder, ignore_errors=True)
        super().__init__(folder / "store", **options)
        self.folder = folder
        self._counter = itertools.count(1)
        self.changes = 0
        self.snapshots = Snapshots(self, folder / "snapshots")

    def _changed(self) -> None:
        self.changes = next(self._counter)  # a new number each time (atomic under the GIL)

    def update(self, sparql: str) -> None:
        try:
            super().update(sparql)
        finally:  # an update that failed half-way may still have changed something
            self._changed()

    def replace_graph(self, graph: str, triples: Iterable[tuple[Node, Node, Node]]) -> None:
        try:
            super().replace_graph(graph, triples)
        finally:
            self._changed()

    def add_graph(self, graph: str, data: Graph | Iterable[tuple[Node, Node, Node]]) -> None:
        try:
            super().add_graph(graph, data)
        finally:
            self._changed()

    def load_dataset(self, path: Path) -> None:
        try:
            super().load_dataset(path)
        finally:
            self._changed()

    def close(self) -> None:
        """Remove the folder now (the store must not be used after)."""
        self._finalizer()


class Snapshots:
    """Read-only copies of a `TemporaryStore` for other processes, counted by who holds them."""

    def __init__(self, store: TemporaryStore, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        #: where the snapshots are: what a reader must be allowed to read
        self.folder = folder
        self._store = weakref.ref(store)
        self._lock = threading.Lock()
        self._numbers = itertools.count(1)
        self._current: Path | None = None
        self._of_change = -1
        self._holders: collections.Counter[Path] = collections.Counter()

    def acquire(self) -> Path:
        """A snapshot holding every change made so far (taken now if the store changed since
        the last one); the caller releases it when it no longer reads it."""
        store = self._store()
        with self._lock:
            if store is not None and (self._current is None or store.changes != self._of_change):
                changes = store.changes  # read first: a change made meanwhile takes another
                path = self.folder / str(next(self._numbers))
                store.backup(path)
                previous, self._current, self._of_change = self._current, path, changes
                if previous is not None and not self._holders[previous]:
                    self._remove(previous)
            if self._current is None:
                raise RuntimeError("the store is gone")
            self._holders[self._current] += 1
            return self._current

    def release(self, path: str | Path) -> None:
        """No longer read `path` (a snapshot acquire() gave)."""
        path = Path(path)
        with self._lock:
            self._holders[path] -= 1
            if self._holders[path] <= 0 and path != self._current:
                self._remove(path)

    def _remove(self, path: Path) -> None:
        self._holders.pop(path, None)
        shutil.rmtree(path, ignore_errors=True)
