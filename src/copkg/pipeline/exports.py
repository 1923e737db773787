"""The exports build/copkg.nq and build/copkg.trig, laid out so that `copkg add` can splice them.

Both files hold the same quads in the same order: graph by graph (by name), each graph's quads
sorted by subject, predicate and object. Blank nodes are labelled per graph: RDFC-1.0 within
the graph, each label suffixed with a hash of the graph's name, so that labels never meet
across graphs. Each graph is thus one block of bytes that depends on that graph alone, and in a
block each subject's statements are one run (lines in N-Quads, a `subject p o ; ...` group in
TriG). An add writes the new files from the old bytes, a new graph's block and the runs of the
subjects whose statements changed (`splice`), without parsing or sorting the rest; a full build
and an add of the same corpus give the same bytes.
"""

from __future__ import annotations

import functools
import hashlib
import mmap
import os
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyoxigraph as ox

from copkg.errors import CopkgError
from copkg.namespaces import PREFIXES

#: Names this layout in a build's manifest (extra.exports): only such exports are spliced.
LAYOUT = "graph blocks, blank nodes per graph"
NQUADS = "copkg.nq"
TRIG = "copkg.trig"
#: The export files and their formats, in the order they are written.
FILES = {NQUADS: ox.RdfFormat.N_QUADS, TRIG: ox.RdfFormat.TRIG}

Subject = ox.NamedNode | ox.BlankNode


def _order(quad: ox.Quad) -> tuple[str, str, str]:
    return str(quad.subject), str(quad.predicate), str(quad.object)


def graph_suffix(graph: ox.NamedNode) -> str:
    """What each blank node label of a graph ends with: 16 hex digits of its name's SHA-256."""
    return hashlib.sha256(graph.value.encode("utf-8")).hexdigest()[:16]


def canonical_graph(quads: Iterable[ox.Quad]) -> list[ox.Quad]:
    """One graph's quads without duplicates, blank nodes labelled canonically, sorted."""
    quads = list(dict.fromkeys(quads))
    if not any(isinstance(q.subject, ox.BlankNode) or isinstance(q.object, ox.BlankNode)
               for q in quads):  # fmt: skip
        return sorted(quads, key=_order)
    graph = quads[0].graph_name
    dataset = ox.Dataset(quads)
    dataset.canonicalize(ox.CanonicalizationAlgorithm.RDFC_1_0)
    suffix = graph_suffix(graph)

    def label(term: ox.NamedNode | ox.BlankNode | ox.Literal) -> Any:
        return ox.BlankNode(f"{term.value}-{suffix}") if isinstance(term, ox.BlankNode) else term

    relabelled = [ox.Quad(label(q.subject), q.predicate, label(q.object), graph) for q in dataset]
    return sorted(relabelled, key=_order)


def canonical_graphs(quads: Iterable[ox.Quad]) -> dict[ox.NamedNode, list[ox.Quad]]:
    """The quads by named graph, in export order, each graph as canonical_graph() makes it.

    A blank node in two graphs (one node, as a rule could make by copying one) is refused: the
    exports label blank nodes per graph, which would make it two.
    """
    by_graph: dict[ox.NamedNode, list[ox.Quad]] = defaultdict(list)
    for quad in quads:
        by_graph[quad.graph_name].append(quad)  # type: ignore[index]
    owner: dict[ox.BlankNode, ox.NamedNode] = {}
    for graph, members in by_graph.items():
        if not isinstance(graph, ox.NamedNode):
            raise CopkgError(f"the exports hold named graphs only, not {graph}", status=500)
        for quad in members:
            for term in (quad.subject, quad.object):
                if isinstance(term, ox.BlankNode) and owner.setdefault(term, graph) != graph:
                    raise CopkgError(
                        f"the blank node {term} is in the graphs <{owner[term].value}> and "
                        f"<{graph.value}>: a rule may not copy blank nodes into its results "
                        "(mint an IRI instead)",
                        status=500,
                    )
    return {graph: canonical_graph(by_graph[graph]) for graph in sorted(by_graph, key=str)}


# -- blocks ------------------------------------------------------------------------------------


@functools.cache
def header(name: str) -> bytes:
    """What a file starts with before its first graph (TriG: the prefixes)."""
    if FILES[name] != ox.RdfFormat.TRIG:
        return b""
    probe = ox.NamedNode("urn:copkg:probe")
    data = ox.serialize([ox.Quad(probe, probe, probe, probe)], format=ox.RdfFormat.TRIG,
                        prefixes=PREFIXES)  # fmt: skip
    return data[: data.index(b"<urn:copkg:probe> {\n")]


def block(name: str, quads: Sequence[ox.Quad]) -> bytes:
    """The bytes of some quads (sorted, of one graph) in file `name`, without its header."""
    if not quads:
        return b""
    if FILES[name] == ox.RdfFormat.N_QUADS:
        return ox.serialize(quads, format=ox.RdfFormat.N_QUADS)
    data = ox.serialize(quads, format=ox.RdfFormat.TRIG, prefixes=PREFIXES)
    head = header(name)
    if not data.startswith(head):
        raise CopkgError("pyoxigraph wrote an unexpected TriG header", status=500)
    return data[len(head) :]


def subject_run(name: str, quads: Sequence[ox.Quad]) -> bytes:
    """The bytes of one subject's statements (sorted, of one graph) inside its graph's block."""
    data = block(name, quads)
    if FILES[name] == ox.RdfFormat.TRIG and data:
        data = data[data.index(b" {\n") + 3 : -2]  # within `<g> {\n` ... `}\n`
    return data


def write(graphs: dict[ox.NamedNode, list[ox.Quad]], out_dir: Path) -> dict[str, str]:
    """Write both files (graphs as canonical_graphs() gives them); return their SHA-256."""
    hashes = {}
    for name in FILES:
        with _Output(out_dir / name) as out:
            out.write(header(name))
            for quads in graphs.values():
                out.write(block(name, quads))
        hashes[name] = out.sha256
    return hashes


class _Output:
    """A file written whole or not at all (temp file, fsync, rename), hashed as it goes."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.tmp = path.with_name(f".{path.name}.tmp")
        self.hash = hashlib.sha256()
        self.file = open(self.tmp, "wb")  # noqa: SIM115 - closed in __exit__

    def write(self, data: bytes | memoryview) -> None:
        self.hash.update(data)
        self.file.write(data)

    @property
    def sha256(self) -> str:
        return self.hash.hexdigest()

    def __enter__(self) -> _Output:
        return self

    def __exit__(self, kind: object, *_: object) -> None:
        try:
            if kind is None:
                self.file.flush()
                os.fsync(self.file.fileno())
            self.file.close()
            if kind is None:
                os.chmod(self.tmp, 0o644)
                os.replace(self.tmp, self.path)
        finally:
            self.tmp.unlink(missing_ok=True)


# -- splicing ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class GraphChange:
    """What changes in one graph: its quads whole (`whole`, a graph new to the files or one
    written again), or the statements of some subjects (`subjects`: each subject's quads now,
    sorted; empty if it has none left)."""

    graph: ox.NamedNode
    whole: list[ox.Quad] | None = None
    subjects: dict[Subject, list[ox.Quad]] | None = None


@dataclass(frozen=True)
class _Edit:
    """Replace the bytes start:end by data (inserted in `order` where several go at one place)."""

    start: int
    end: int
    data: bytes
    order: tuple[str, str] = ("", "")


def splice(
    old_dir: Path, new_dir: Path, graphs: Sequence[str], changes: Sequence[GraphChange]
) -> tuple[dict[str, str], dict[str, str]]:
    """Write both files into new_dir: those of old_dir (whose non-empty graphs are `graphs`)
    with the changes. Return the SHA-256 of the old files (read on the way) and of the new."""
    old_hashes, new_hashes = {}, {}
    for name in FILES:
        with open(old_dir / name, "rb") as handle:
            data = mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) if _size(handle) else b""
            try:
                edits = sorted(
                    (e for change in changes for e in _edits(name, data, graphs, change)),
                    key=lambda e: (e.start, e.end, e.order),
                )
                old_hashes[name], new_hashes[name] = _copy_with(data, edits, new_dir / name)
            finally:
                if isinstance(data, mmap.mmap):
                    data.close()
    return old_hashes, new_hashes


def _size(handle: object) -> int:
    return os.fstat(handle.fileno()).st_size  # type: ignore[attr-defined]


def _copy_with(data: bytes | mmap.mmap, edits: list[_Edit], path: Path) -> tuple[str, str]:
    """Write data with the edits applied to path; the SHA-256 of data and of what was written."""
    old = hashlib.sha256()
    view = memoryview(data)
    try:
        with _Output(path) as out:
            at = 0
            for edit in edits:
                if edit.start < at:
                    raise CopkgError(f"{path.name}: overlapping changes to splice", status=500)
                old.update(view[at : edit.end])
                out.write(view[at : edit.start])
                out.write(edit.data)
                at = edit.end
            old.update(view[at:])
            out.write(view[at:])
    finally:
        view.release()
    return old.hexdigest(), out.sha256


def _edits(
    name: str, data: bytes | mmap.mmap, graphs: Sequence[str], change: GraphChange
) -> list[_Edit]:
    """Where the change goes in file `name` and what it writes there."""
    span = _graph_span(name, data, change.graph, graphs)
    if change.whole is not None or span is None:
        quads = change.whole
        if quads is None:  # subjects changed in a graph the old file did not hold: all new
            quads = sorted((q for qs in (change.subjects or {}).values() for q in qs), key=_order)
        order = (str(change.graph), "")
        if span is None:
            at = _insertion_point(name, data, change.graph, graphs)
            return [_Edit(at, at, block(name, quads), order)]
        return [_Edit(span[0], span[1], block(name, quads), order)]
    start, end = span
    if FILES[name] == ox.RdfFormat.TRIG:
        start = data.find(b"\n", start) + 1  # the runs follow `<g> {`, end before `}`
        end -= 2
    runs = (
        _NQuadsRuns(data, start, end)
        if FILES[name] == ox.RdfFormat.N_QUADS
        else _TrigRuns(data, start, end)
    )
    edits = []
    for subject, quads in (change.subjects or {}).items():
        key = str(subject).encode("utf-8")
        first, last = runs.run(key)
        edits.append(
            _Edit(first, last, subject_run(name, quads), (str(change.graph), str(subject)))
        )
    return edits


def _graph_token(name: str, graph: ox.NamedNode) -> bytes:
    """How file `name` writes a graph's name where its block starts."""
    if FILES[name] == ox.RdfFormat.N_QUADS:
        return f" {graph} .\n".encode()  # the end of each line of the block
    data = block(name, [ox.Quad(graph, graph, graph, graph)])
    return b"\n" + data[: data.index(b" {\n") + 3]  # the line before the block's runs


def _graph_span(
    name: str, data: bytes | mmap.mmap, graph: ox.NamedNode, graphs: Sequence[str]
) -> tuple[int, int] | None:
    """Where the block of `graph` lies in the file, if the file holds it."""
    if graph.value not in graphs:
        return None
    token = _graph_token(name, graph)
    found = data.find(token)
    if found < 0:
        raise _damaged(name, f"it has no block for the graph <{graph.value}>")
    if FILES[name] == ox.RdfFormat.N_QUADS:
        start = data.rfind(b"\n", 0, found) + 1
        return start, data.rfind(token) + len(token)
    start = found + 1
    end = data.find(b"\n}\n", start)
    if end < 0:
        raise _damaged(name, f"the block of the graph <{graph.value}> is not closed")
    return start, end + 3


def _insertion_point(
    name: str, data: bytes | mmap.mmap, graph: ox.NamedNode, graphs: Sequence[str]
) -> int:
    """Where the block of a graph the file does not hold goes: before the next graph's block."""
    later = sorted((g for g in graphs if str(ox.NamedNode(g)) > str(graph)), key=lambda g: f"<{g}>")
    if not later:
        return len(data)
    span = _graph_span(name, data, ox.NamedNode(later[0]), graphs)
    assert span is not None
    return span[0]


def _damaged(name: str, why: str) -> CopkgError:
    return CopkgError(
        f"build/{name} is not as a build writes it ({why}): run `copkg build` again", status=500
    )


class _NQuadsRuns:
    """The runs of subjects in an N-Quads block: its lines, sorted, one statement each."""

    def __init__(self, data: bytes | mmap.mmap, start: int, end: int) -> None:
        self.data, self.start, self.end = data, start, end

    def _subject(self, line: int) -> bytes:
        return self.data[line : self.data.find(b" ", line)]

    def _first(self, key: bytes, *, after: bool) -> int:
        """The first line whose subject is above `key` (after) or not below it."""
        data, lo, hi = self.data, self.start, self.end
        while lo < hi:
            newline = data.rfind(b"\n", lo, (lo + hi) // 2)
            mid = newline + 1 if newline >= 0 else lo
            subject = self._subject(mid)
            if subject < key or (after and subject == key):
                lo = data.find(b"\n", mid) + 1
            else:
                hi = mid
        return lo

    def run(self, key: bytes) -> tuple[int, int]:
        """Where the lines of subject `key` are (an empty span where they would go)."""
        return self._first(key, after=False), self._first(key, after=True)


class _TrigRuns(_NQuadsRuns):
    """The runs of subjects in a TriG block: groups that start with a line `\\tsubject ...`
    (continuation lines start with two tabs; TriG from pyoxigraph escapes newlines in
    literals, so every line break is one the serialiser made)."""

    def _run_start(self, pos: int) -> int:
        """The start of the run that holds the byte before `pos` (or the block's first)."""
        data = self.data
        while pos > self.start:
            tab = data.rfind(b"\n\t", self.start - 1, pos)
            if tab < 0:
                break
            if data[tab + 2 : tab + 3] != b"\t":
                return tab + 1
            pos = tab
        return self.start

    def _subject(self, line: int) -> bytes:
        token = self.data[line + 1 : self.data.find(b" ", line + 1)]
        return _expand(token)

    def _first(self, key: bytes, *, after: bool) -> int:
        data, lo, hi = self.data, self.start, self.end
        while lo < hi:
            mid = self._run_start((lo + hi) // 2 + 1)
            subject = self._subject(mid)
            if subject < key or (after and subject == key):
                nxt = data.find(b"\n\t", mid + 1, hi)
                while nxt >= 0 and data[nxt + 2 : nxt + 3] == b"\t":
                    nxt = data.find(b"\n\t", nxt + 1, hi)
                lo = nxt + 1 if nxt >= 0 else hi
            else:
                hi = mid
        return lo


_LOCAL_ESCAPES = b"_~.-!$&'()*+,;=/?#@%"


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


def blank_nodes_in(old_dir: Path, graph: ox.NamedNode, graphs: Sequence[str]) -> bool:
    """Whether the block of `graph` in old_dir/copkg.nq may hold blank nodes (then its runs
    cannot be spliced: its labels depend on the whole graph)."""
    with open(old_dir / NQUADS, "rb") as handle:
        if not _size(handle):
            return False
        with mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as data:
            span = _graph_span(NQUADS, data, graph, graphs)
            return span is not None and data.find(b"_:", *span) >= 0
