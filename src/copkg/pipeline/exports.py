"""The exports build/copkg.nq and build/copkg.trig, laid out so that `copkg add` can splice them.

Both files hold the same quads in the same order: graph by graph (the sources by name, then the
inferences), each graph's quads sorted by subject, predicate and object. Blank nodes are
labelled per graph: RDFC-1.0 within the graph, each label suffixed with a hash of the graph's
name, so that labels never meet across graphs. Each graph is thus one block of bytes that
depends on that graph alone, and in a block each subject's statements are one run (lines in
N-Quads, a `subject p o ; ...` group in TriG). A build keeps these bytes cut into segments (a
graph's block, runs of the inferences' subjects: pipeline.segments); an add writes the new
graph's segments and those of the subjects whose inferences changed (pipeline.splice), without
reading or writing the rest; a full build and an add of the same corpus give the same bytes.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import os
from collections import defaultdict
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import pyoxigraph as ox

from copkg.errors import CopkgError
from copkg.namespaces import INFERENCE_GRAPH, PREFIXES
from copkg.store.terms import graph_of, serialize

#: Names this layout in a build's manifest (extra.exports): only such exports are spliced
#: (kept as segments, pipeline.segments).
LAYOUT = "segments: graph blocks, the inferences last, blank nodes per graph"
NQUADS = "copkg.nq"
TRIG = "copkg.trig"
#: The export files and their formats, in the order they are written.
FILES = {NQUADS: ox.RdfFormat.N_QUADS, TRIG: ox.RdfFormat.TRIG}

Subject = ox.NamedNode | ox.BlankNode
_INFERENCES = str(ox.NamedNode(str(INFERENCE_GRAPH))).encode("utf-8")


def graph_rank(term: bytes) -> bytes:
    """Where a graph's block goes (its name as N-Quads writes it: `<iri>`): the sources by
    name, then the inferences (the block an add changes, last, after the bytes it copies)."""
    return (b"1" if term == _INFERENCES else b"0") + term


def _order(quad: ox.Quad) -> tuple[str, str, str]:
    return str(quad.subject), str(quad.predicate), str(quad.object)


def graph_suffix(graph: str) -> str:
    """What each blank node label of a graph ends with: 16 hex digits of its name's SHA-256."""
    return hashlib.sha256(graph.encode("utf-8")).hexdigest()[:16]


def sorted_quads(quads: Iterable[ox.Quad]) -> list[ox.Quad]:
    """Quads without duplicates, in export order (subject, predicate, object)."""
    return sorted(dict.fromkeys(quads), key=_order)


def canonical_graph(quads: Iterable[ox.Quad]) -> list[ox.Quad]:
    """One graph's quads without duplicates, blank nodes labelled canonically, sorted."""
    quads = list(dict.fromkeys(quads))
    if not any(isinstance(q.subject, ox.BlankNode) or isinstance(q.object, ox.BlankNode)
               for q in quads):  # fmt: skip
        return sorted(quads, key=_order)
    graph = quads[0].graph_name
    dataset = ox.Dataset(quads)
    dataset.canonicalize(ox.CanonicalizationAlgorithm.RDFC_1_0)
    suffix = graph_suffix(graph_of(quads[0]))

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
                    raise shared_blank_node(term, owner[term], graph)
    ranked = sorted(by_graph, key=lambda g: graph_rank(str(g).encode("utf-8")))
    return {graph: canonical_graph(by_graph[graph]) for graph in ranked}


def shared_blank_node(node: ox.BlankNode, first: Any, second: Any) -> CopkgError:
    """The error for a blank node in two graphs (the exports would make it two nodes)."""
    return CopkgError(
        f"the blank node {node} is in the graphs <{first.value}> and <{second.value}>: a rule "
        "may not copy blank nodes into its results (mint an IRI instead)",
        status=500,
    )


# -- blocks ------------------------------------------------------------------------------------


@functools.cache
def header(name: str) -> bytes:
    """What a file starts with before its first graph (TriG: the prefixes)."""
    if FILES[name] != ox.RdfFormat.TRIG:
        return b""
    probe = ox.NamedNode("urn:copkg:probe")
    data = serialize([ox.Quad(probe, probe, probe, probe)], ox.RdfFormat.TRIG, PREFIXES)
    return data[: data.index(b"<urn:copkg:probe> {\n")]


def block(name: str, quads: Sequence[ox.Quad]) -> bytes:
    """The bytes of some quads (sorted, of one graph) in file `name`, without its header."""
    if not quads:
        return b""
    if FILES[name] == ox.RdfFormat.N_QUADS:
        return serialize(quads, ox.RdfFormat.N_QUADS)
    data = serialize(quads, ox.RdfFormat.TRIG, PREFIXES)
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
    return write_chunked(([quads] for quads in graphs.values()), out_dir)


def write_chunked(graphs: Iterable[Iterable[Sequence[ox.Quad]]], out_dir: Path) -> dict[str, str]:
    """Write both files at once, graph by graph in export order, each graph given as chunks
    of its quads in export order (a whole subject's statements in one chunk): the bytes of
    write() without the whole dataset, nor even a whole graph, in memory. Return their SHA-256."""
    with contextlib.ExitStack() as stack:
        outputs = {name: stack.enter_context(Output(out_dir / name)) for name in FILES}
        for name, out in outputs.items():
            out.write(header(name))
        for chunks in graphs:
            opened = False
            for quads in chunks:
                if not quads:
                    continue
                for name, out in outputs.items():
                    data = block(name, quads)
                    if FILES[name] == ox.RdfFormat.TRIG:  # one `<g> {` ... `}` for all chunks
                        start = data.index(b" {\n") + 3 if opened else 0
                        data = data[start:-2]
                    out.write(data)
                opened = True
            if opened:
                outputs[TRIG].write(b"}\n")
    return {name: out.sha256 for name, out in outputs.items()}


class Output:
    """A file written whole or not at all (temp file, fsync, rename), hashed as it goes."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.tmp = path.with_name(f".{path.name}.tmp")
        self.hash = hashlib.sha256()
        self.file = open(self.tmp, "wb")  # noqa: SIM115 - closed in __exit__

    def write(self, data: bytes | memoryview) -> None:
        self.hash.update(data)
        self.file.write(data)

    def sync(self) -> None:
        """Put what was written so far on disk (so that closing has less to sync)."""
        self.file.flush()
        os.fdatasync(self.file.fileno())

    def restart(self) -> None:
        """Drop what was written so far."""
        self.file.seek(0)
        self.file.truncate()
        self.hash = hashlib.sha256()

    @property
    def sha256(self) -> str:
        return self.hash.hexdigest()

    def __enter__(self) -> Output:
        return self

    def __exit__(self, kind: object, *_: object) -> None:
        self.close(keep=kind is None)

    def close(self, *, keep: bool) -> None:
        """Finish the file (`keep`) or remove what was written."""
        try:
            if keep:
                self.file.flush()
                os.fsync(self.file.fileno())
            self.file.close()
            if keep:
                os.chmod(self.tmp, 0o644)
                os.replace(self.tmp, self.path)
        finally:
            self.tmp.unlink(missing_ok=True)
