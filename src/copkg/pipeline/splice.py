"""Write a build's exports again with one graph more, from the old files (`copkg add`).

The exports are laid out graph by graph, the inferences last (pipeline.exports), so the new
files are the old bytes with the new graph's block inserted and the inference block's changed
runs written again. `Splice` starts copying as soon as it knows the new graph's name: the bytes
before the first place that can change (the new block or the inference block, whichever comes
first) go through a thread while the rules run; `insert` hands it the new graph's block as soon
as the checks are done, and the thread writes it and copies on up to the inference block;
`finish` writes the rest once the changes are known. Nothing but the changed runs is parsed.
The old files are hashed on the way, so the caller can check them against their manifest.
"""

from __future__ import annotations

import contextlib
import hashlib
import mmap
import os
import threading
from collections import defaultdict
from collections.abc import Callable, Collection, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pyoxigraph as ox

from copkg.errors import CopkgError
from copkg.namespaces import INFERENCE_GRAPH, PREFIXES
from copkg.pipeline.exports import (
    FILES,
    NQUADS,
    TRIG,
    Output,
    Subject,
    block,
    canonical_graph,
    graph_rank,
    header,
    sorted_quads,
    subject_run,
)

Data = bytes | mmap.mmap
_CHUNK = 1 << 22


@dataclass(frozen=True)
class GraphChange:
    """What changes in one graph: its quads whole (`whole`, as canonical_graph() gives them: a
    graph new to the files, or one written again), or some quads added and some removed
    (without blank nodes: the runs of their subjects are written again)."""

    graph: ox.NamedNode
    whole: list[ox.Quad] | None = None
    added: Sequence[ox.Quad] = ()
    removed: Sequence[ox.Quad] = ()


@dataclass(frozen=True)
class _Runs:
    """A change as runs to write: each changed subject's quads now (sorted; empty if none)."""

    graph: ox.NamedNode
    subjects: dict[Subject, list[ox.Quad]]


@dataclass(frozen=True)
class _Edit:
    """Replace the bytes start:end by data (inserted in `order` where several go at one place)."""

    start: int
    end: int
    data: bytes
    order: tuple[str, str] = ("", "")


class Splice:
    """The exports of old_dir (whose non-empty graphs are `graphs`) being written into new_dir
    with the graph `graph` added: begun at once, finished by finish(), or abandoned by close().
    The old files are hashed on the way but those `trusted` (unchanged since their build)."""

    def __init__(
        self,
        old_dir: Path,
        new_dir: Path,
        graphs: Sequence[str],
        graph: str,
        trusted: Collection[str] = (),
    ) -> None:
        self.graphs = list(graphs)
        self._stack = contextlib.ExitStack()
        self._stop = threading.Event()
        self._failure: BaseException | None = None
        try:
            self.data = {name: self._stack.enter_context(_mapped(old_dir / name)) for name in FILES}
            self._copies = {
                name: self._stack.enter_context(
                    _Copy(old_dir / name, new_dir / name, self._stop, verify=name not in trusted)
                )
                for name in FILES
            }
            heads = {name: self._head(name, ox.NamedNode(graph)) for name in FILES}
        except BaseException as exc:
            self._stack.close()
            if isinstance(exc, FileNotFoundError):
                raise CopkgError(
                    f"{exc.filename} is missing from the build: run `copkg build` again",
                    status=500,
                ) from exc
            raise
        self._thread = threading.Thread(
            target=self._copy_heads, args=(heads,), name="copkg-splice", daemon=True
        )
        self._thread.start()
        self._inserted: list[GraphChange] = []
        self._written: set[str] = set()  # the files the inserted block is written into
        self._next: threading.Thread | None = None

    def _head(self, name: str, graph: ox.NamedNode) -> int:
        """Where the first byte that may change is: the new graph's place, the inferences'."""
        places = [_span(name, self.data[name], graph, self.graphs)[0]]
        inferences = ox.NamedNode(str(INFERENCE_GRAPH))
        if str(INFERENCE_GRAPH) in self.graphs:
            places.append(_span(name, self.data[name], inferences, self.graphs)[0])
        return min(places)

    def _copy_heads(self, heads: dict[str, int]) -> None:
        try:
            for name, head in heads.items():
                self._copies[name].pump(head)
                self._copies[name].out.sync()  # here rather than when the add waits
        except BaseException as exc:  # noqa: BLE001 - handed to finish()
            self._failure = exc

    def insert(self, change: GraphChange) -> None:
        """Give the new graph's block (a whole change) before the others are known: the thread
        writes it and copies on up to the inferences' block while the rules run (an add's new
        graph may sort anywhere among the others, so up to the whole file is left otherwise
        for finish(), after the rules)."""
        if change.whole is None or self._next is not None:
            raise CopkgError("only one new graph, whole, is inserted ahead", status=500)
        self._inserted.append(change)
        self._next = threading.Thread(
            target=self._copy_inserted, args=(change,), name="copkg-splice-insert", daemon=True
        )
        self._next.start()

    def _copy_inserted(self, change: GraphChange) -> None:
        self._thread.join()
        if self._failure is not None:
            return
        inferences = ox.NamedNode(str(INFERENCE_GRAPH))
        try:
            for name, copy in self._copies.items():
                (edit,) = _edits(name, self.data[name], self.graphs, change)
                if edit.start < copy.at:
                    continue  # before what was copied: finish() writes it
                stop = copy.size
                if str(INFERENCE_GRAPH) in self.graphs:
                    stop = _span(name, self.data[name], inferences, self.graphs)[0]
                if stop < edit.end:
                    continue
                copy.pump(edit.start)
                copy.pump(edit.end, copy=False)
                copy.out.write(edit.data)
                self._written.add(name)
                copy.pump(stop)
        except BaseException as exc:  # noqa: BLE001 - handed to finish()
            self._failure = exc

    def wait(self) -> None:
        """Wait until the bytes before the first change are copied (and those the inserted
        block is written with)."""
        self._thread.join()
        if self._next is not None:
            self._next.join()
        if self._failure is not None:
            raise self._failure

    def finish(self, changes: Sequence[GraphChange]) -> tuple[dict[str, str], dict[str, str]]:
        """Write the rest with the changes (besides the one inserted ahead, if any); the
        SHA-256 of the old files (those not trusted) and of the new."""
        self.wait()
        resolved = [_resolve(self.data[NQUADS], change) for change in changes]
        old_hashes, new_hashes = {}, {}
        for name, copy in self._copies.items():
            edits = sorted(
                (e for c in resolved for e in _edits(name, self.data[name], self.graphs, c)),
                key=lambda e: (e.start, e.end, e.order),
            )
            if name not in self._written or (edits and edits[0].start < copy.at):
                # the inserted block is not written yet, or is written again from the start
                edits = sorted(
                    edits
                    + [
                        e
                        for c in self._inserted
                        for e in _edits(name, self.data[name], self.graphs, c)
                    ],
                    key=lambda e: (e.start, e.end, e.order),
                )
            found, new_hashes[name] = copy.apply(edits)
            if found is not None:
                old_hashes[name] = found
        return old_hashes, new_hashes

    def close(self) -> None:
        """Stop copying (if not finished) and let go of the files; unfinished outputs are
        removed."""
        self._stop.set()
        self._thread.join()
        if self._next is not None:
            self._next.join()
        self._stack.close()

    def __enter__(self) -> Splice:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


class _Copy:
    """One old file copied into a new one with edits, both hashed on the way."""

    def __init__(
        self, source: Path, target: Path, stop: threading.Event, *, verify: bool = True
    ) -> None:
        self.handle = open(source, "rb", buffering=0)  # noqa: SIM115 - closed in __exit__
        self.size = os.fstat(self.handle.fileno()).st_size
        self.out = Output(target)
        self.verify = verify
        self.old = hashlib.sha256()
        self.at = 0
        self.stop = stop
        self.done = False
        self.buffer = bytearray(_CHUNK)

    def pump(self, stop: int, *, copy: bool = True) -> None:
        """Read (and copy, with `copy`) the old bytes up to `stop`."""
        view = memoryview(self.buffer)
        while self.at < stop:
            if self.stop.is_set():
                raise CopkgError("the splice was stopped", status=500)
            size = os.preadv(self.handle.fileno(), [view[: min(_CHUNK, stop - self.at)]], self.at)
            if not size:
                raise _damaged(self.out.path.name, "it is shorter than it was")
            if self.verify:
                self.old.update(view[:size])
            if copy:
                self.out.write(view[:size])
            self.at += size

    def apply(self, edits: list[_Edit]) -> tuple[str | None, str]:
        """Write the rest of the file with the edits; the SHA-256 of the old file (if verified)
        and of the new."""
        if edits and edits[0].start < self.at:  # a change before what was copied early
            self.out.restart()
            self.old = hashlib.sha256()
            self.at = 0
        for edit in edits:
            if edit.start < self.at:
                raise CopkgError(f"{self.out.path.name}: overlapping changes", status=500)
            self.pump(edit.start)
            self.pump(edit.end, copy=False)
            self.out.write(edit.data)
        self.pump(self.size)
        self.out.close(keep=True)
        self.done = True
        return (self.old.hexdigest() if self.verify else None), self.out.sha256

    def __enter__(self) -> _Copy:
        return self

    def __exit__(self, *_: object) -> None:
        self.handle.close()
        if not self.done:
            self.out.close(keep=False)


@contextlib.contextmanager
def _mapped(path: Path) -> Iterator[Data]:
    """A file's bytes, mapped (read-only) rather than read."""
    with open(path, "rb") as handle:
        if not os.fstat(handle.fileno()).st_size:
            yield b""
            return
        with mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as data:
            yield data


def _resolve(nquads: Data, change: GraphChange) -> GraphChange | _Runs:
    """The runs an added/removed change writes: each subject's quads in the old N-Quads, less
    those removed, with those added (the change without blank nodes: then no other run's
    labels change)."""
    if change.whole is not None:
        return change
    moved = [*change.added, *change.removed]
    if any(isinstance(t, ox.BlankNode) for q in moved for t in (q.subject, q.object)):
        raise CopkgError("blank nodes cannot be spliced: write the graph whole", status=500)
    start, end = _nquads_span(nquads, change.graph)
    if start == end:
        if change.removed:
            raise _damaged(NQUADS, f"the graph <{change.graph.value}> has nothing to remove")
        return GraphChange(change.graph, whole=canonical_graph(change.added))
    lines = _Lines(nquads, start, end, _nquads_subject)
    added: dict[Subject, set[ox.Quad]] = defaultdict(set)
    removed: dict[Subject, set[ox.Quad]] = defaultdict(set)
    for quad in change.added:
        added[quad.subject].add(quad)  # type: ignore[index]
    for quad in change.removed:
        removed[quad.subject].add(quad)  # type: ignore[index]
    subjects = {}
    for subject in {*added, *removed}:
        first, last = lines.run(str(subject).encode("utf-8"))
        old = set(ox.parse(nquads[first:last], format=ox.RdfFormat.N_QUADS))
        if not removed[subject] <= old:
            raise _damaged(NQUADS, f"statements of {subject} to remove are not in it")
        # blank nodes in the old run keep their labels: RDFC-1.0 labels a blank node by the
        # quads that mention blank nodes, and the change has none
        subjects[subject] = sorted_quads((old - removed[subject]) | added[subject])
    return _Runs(change.graph, subjects)


def _edits(
    name: str, data: Data, graphs: Sequence[str], change: GraphChange | _Runs
) -> list[_Edit]:
    """Where the change goes in file `name` and what it writes there."""
    if isinstance(change, GraphChange):
        start, end = _span(name, data, change.graph, graphs)
        return [_Edit(start, end, block(name, change.whole or []), (str(change.graph), ""))]
    start, end = _span(name, data, change.graph, graphs)
    if start == end:
        raise _damaged(name, f"it has no block for the graph <{change.graph.value}>")
    if FILES[name] == ox.RdfFormat.N_QUADS:
        runs = _Lines(data, start, end, _nquads_subject)
    else:  # the runs follow `<g> {`, and end before `}`
        runs = _TrigRuns(data, data.find(b"\n", start) + 1, end - 2, _trig_subject)
    edits = []
    for subject, quads in change.subjects.items():
        first, last = runs.run(str(subject).encode("utf-8"))
        edits.append(
            _Edit(first, last, subject_run(name, quads), (str(change.graph), str(subject)))
        )
    return edits


def _span(name: str, data: Data, graph: ox.NamedNode, graphs: Sequence[str]) -> tuple[int, int]:
    """Where the block of `graph` is in file `name` (an empty span where it would go)."""
    key = graph_rank(str(graph).encode("utf-8"))
    if FILES[name] == ox.RdfFormat.N_QUADS:
        return _Lines(data, 0, len(data), _nquads_graph).run(key)
    start = len(header(TRIG))
    if data[:start] != header(TRIG):
        raise _damaged(TRIG, "its prefixes are not those of this copkg")
    return _TrigBlocks(data, start, len(data), _trig_graph).run(key)


def _nquads_span(data: Data, graph: ox.NamedNode) -> tuple[int, int]:
    """Where the lines of `graph` are in N-Quads (an empty span where they would go)."""
    return _span(NQUADS, data, graph, ())


def _nquads_graph(data: Data, line: int) -> bytes:
    """The rank of an N-Quads line's graph (`... <g> .`: IRIs hold no spaces)."""
    end = data.find(b"\n", line)
    return graph_rank(data[data.rfind(b" <", line, end) + 1 : end - 2])


def _nquads_subject(data: Data, line: int) -> bytes:
    return data[line : data.find(b" ", line)]


def _trig_graph(data: Data, block: int) -> bytes:
    """The rank of the graph of a TriG block (`<g> {` on its first line)."""
    return graph_rank(_expand(data[block : data.find(b" {\n", block)]))


def _damaged(name: str, why: str) -> CopkgError:
    return CopkgError(
        f"build/{name} is not as a build writes it ({why}): run `copkg build` again", status=500
    )


class _Lines:
    """Sorted lines of a file between start and end, found by bisection on a key of each line
    (`key(data, line_start)`): a subject's run, a graph's block."""

    def __init__(self, data: Data, start: int, end: int, key: Callable[[Data, int], bytes]) -> None:
        self.data, self.start, self.end, self.key = data, start, end, key

    def _unit(self, pos: int) -> int:
        """The start of the unit (here a line) that holds the byte at `pos`."""
        return self.data.rfind(b"\n", self.start, pos) + 1 or self.start

    def _next(self, unit: int) -> int:
        return self.data.find(b"\n", unit) + 1

    def _first(self, key: bytes, *, after: bool) -> int:
        """The first unit whose key is above `key` (after) or not below it."""
        lo, hi = self.start, self.end
        while lo < hi:
            unit = self._unit((lo + hi) // 2)
            found = self.key(self.data, unit)
            if found < key or (after and found == key):
                lo = self._next(unit) or hi
            else:
                hi = unit
        return lo

    def run(self, key: bytes) -> tuple[int, int]:
        """Where the units with key `key` are (an empty span where they would go)."""
        first = self._first(key, after=False)
        return first, self._first(key, after=True)


class _TrigRuns(_Lines):
    """The runs of subjects in a TriG block: groups that start with a line `\\tsubject ...`
    (continuation lines start with two tabs; pyoxigraph escapes newlines in literals, so every
    line break is one the serialiser made)."""

    def _unit(self, pos: int) -> int:
        data = self.data
        while pos >= self.start:
            tab = data.rfind(b"\n\t", self.start - 1, pos + 1)
            if tab < 0:
                break
            if data[tab + 2 : tab + 3] != b"\t":
                return tab + 1
            pos = tab - 1
        return self.start

    def _next(self, unit: int) -> int:
        data = self.data
        tab = data.find(b"\n\t", unit + 1, self.end)
        while tab >= 0 and data[tab + 2 : tab + 3] == b"\t":
            tab = data.find(b"\n\t", tab + 1, self.end)
        return tab + 1 if tab >= 0 else self.end


class _TrigBlocks(_Lines):
    """The graph blocks of TriG, each from its `<g> {` line to its `}` line (a line `}` only
    closes a block: newlines in literals are escaped)."""

    def _unit(self, pos: int) -> int:
        closer = self.data.rfind(b"\n}\n", self.start - 1, pos)
        return closer + 3 if closer >= 0 else self.start

    def _next(self, unit: int) -> int:
        closer = self.data.find(b"\n}\n", unit)
        return closer + 3 if closer >= 0 else self.end


def _trig_subject(data: Data, run: int) -> bytes:
    return _expand(data[run + 1 : data.find(b" ", run + 1)])


def _expand(token: bytes) -> bytes:
    """A subject as TriG writes it (IRI, blank node or prefixed name) as N-Triples writes it."""
    if token.startswith((b"<", b"_:")):
        return token
    prefix, colon, local = token.partition(b":")
    namespace = PREFIXES.get(prefix.decode("utf-8")) if colon else None
    if namespace is None:
        raise CopkgError(f"cannot read the TriG subject {token!r}", status=500)
    plain = bytearray()
    escaped = False
    for byte in local:
        if escaped or byte != ord("\\"):
            plain.append(byte)
            escaped = False
        else:
            escaped = True
    return b"<" + namespace.encode("utf-8") + bytes(plain) + b">"
