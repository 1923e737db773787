"""A SHACL engine that compiles shapes to SPARQL and runs them with pyoxigraph.

`validate_quads` and `validate_graphs` load the data (and the ontology) into one in-memory
store's default graph, as a merge of the graphs, and return the raw results; `validate_store`
validates the union of the graphs of a store (the build's, on disk) where they are.
`copkg.validation.report` turns them into a report, as it does pyshacl's.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence

import pyoxigraph as ox
from rdflib import Graph, Literal
from rdflib.namespace import RDF, RDFS
from rdflib.term import Node

from copkg.store.terms import from_ox, to_ox, to_ox_subject
from copkg.validation.shacl.batched import Batch, validate_batches
from copkg.validation.shacl.engine import Engine, RawResult
from copkg.validation.shacl.literals import Originals

#: Part of the validation key of a build: change it when the engine's results may change.
ENGINE_VERSION = "copkg-sparql-shacl 1"

__all__ = [
    "ENGINE_VERSION",
    "Batch",
    "Originals",
    "RawResult",
    "StoreLookup",
    "validate_graphs",
    "validate_quads",
    "validate_store",
]

_LABEL = ox.NamedNode(str(RDFS.label))
_TYPE = ox.NamedNode(str(RDF.type))


class StoreLookup:
    """Labels and types of the validated data, for the report (`union`: of every graph)."""

    def __init__(self, store: ox.Store, originals: Originals, *, union: bool = False) -> None:
        self.store = store
        self.originals = originals
        self.graph = None if union else ox.DefaultGraph()

    def _objects(self, subject: object, predicate: ox.NamedNode) -> list[object]:
        """The objects, each once (a triple may be in several graphs of a union)."""
        found = self.store.quads_for_pattern(subject, predicate, None, self.graph)  # type: ignore[arg-type]
        return list(dict.fromkeys(q.object for q in found))

    def labels(self, node: Node) -> list[Literal]:
        subject = to_ox_subject(node)
        found = []
        for obj in self._objects(subject, _LABEL):
            if isinstance(obj, ox.Literal):
                found += self.originals.written(subject, _LABEL, obj)
        return found  # type: ignore[return-value]

    def types(self, node: Node) -> list[Node]:
        return [from_ox(o) for o in self._objects(to_ox(node), _TYPE)]  # type: ignore[arg-type]


def validate_quads(quads: Iterable[ox.Quad], shapes: Graph) -> tuple[list[RawResult], StoreLookup]:
    """Validate the merge of the quads' graphs against the shapes."""
    store, originals = ox.Store(), Originals()
    store.bulk_extend(_merged(quads, originals))
    return _run(store, originals, shapes)


def _merged(quads: Iterable[ox.Quad], originals: Originals) -> Iterator[ox.Quad]:
    """The quads as triples of the default graph; their literals recorded on the way."""
    for quad in quads:
        obj = quad.object
        if isinstance(obj, ox.Literal):
            originals.add(quad.subject, quad.predicate, obj)
        yield ox.Quad(quad.subject, quad.predicate, obj)


def validate_store(
    store: ox.Store,
    originals: Originals,
    shapes: Graph,
    batches: Iterable[Sequence[ox.NamedNode] | Batch] | None = None,
    shared: Sequence[ox.NamedNode] = (),
) -> tuple[list[RawResult], StoreLookup]:
    """Validate the union of the store's graphs (each triple once however many graphs hold it:
    the engine's queries are DISTINCT or count distinct values) against the shapes, with the
    written forms of its literals recorded in `originals` (Originals.add, as they were loaded).

    With `batches` (graphs: all of them but the `shared` ones, each once), the shapes that
    can run a batch at a time run so, in memory (copkg.validation.shacl.batched): the same
    results where every resource is described in one graph, or only in the shared ones."""
    if batches is not None:
        raw = validate_batches(store, originals, shapes, batches, shared)
    else:
        raw = Engine(store, originals, shapes, union=True).run()
    return raw, StoreLookup(store, originals, union=True)


def validate_graphs(graphs: Iterable[Graph], shapes: Graph) -> tuple[list[RawResult], StoreLookup]:
    """Validate the merge of rdflib graphs against the shapes."""
    store, originals = ox.Store(), Originals()
    triples = []
    for graph in graphs:
        for s, p, o in graph:
            quad = ox.Quad(to_ox(s), to_ox(p), to_ox(o))  # type: ignore[arg-type]
            if isinstance(quad.object, ox.Literal):
                originals.add(quad.subject, quad.predicate, quad.object, written=o)
            triples.append(quad)
    store.bulk_extend(triples)
    return _run(store, originals, shapes)


def _run(
    store: ox.Store, originals: Originals, shapes: Graph
) -> tuple[list[RawResult], StoreLookup]:
    engine = Engine(store, originals, shapes)
    return engine.run(), StoreLookup(store, originals)
