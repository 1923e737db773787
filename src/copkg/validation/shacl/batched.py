"""SHACL over a large on-disk store, a batch of graphs at a time in memory.

The shapes that read no more than a focus node's statements, what those link to and the schema
(copkg.validation.shacl.locality) run on an in-memory store a batch of studies at a time:
the batch's graphs, the graphs every batch holds (the ontology), the schema statements of the
whole store, and the statements of the IRIs the batch links to outside itself. In memory the
engine's queries run 2-2.5 times faster than on disk, and what each reads stays the size of a
batch. The other shapes run once over the whole store.

The results are those of copkg.validation.shacl.validate_store on the same store when every
resource is described in one graph (or only in the shared graphs), as the build's corpus
checks ensure: each batch keeps the results of the focus nodes it describes (the shared
graphs' in the first batch only), and drops those of nodes it holds only as imported.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator, Sequence, Set
from dataclasses import dataclass, field
from pathlib import Path

import pyoxigraph as ox
from rdflib import Graph
from rdflib.namespace import RDF
from rdflib.term import Node

from copkg.store.terms import from_ox
from copkg.validation.shacl.engine import Engine, RawResult
from copkg.validation.shacl.literals import Originals
from copkg.validation.shacl.locality import META_CLASSES, SCHEMA_PREDICATES, local_shapes
from copkg.validation.shacl.shapes import ShapesReader

_TYPE = ox.NamedNode(str(RDF.type))


@dataclass
class Batch:
    """Graphs of the store validated together. Their statements are read from the store, or,
    cheaper (an on-disk store decodes every term it reads), from `triples`: an N-Triples file
    of them written as they were loaded (with the store's blank node labels), plus `extra`."""

    graphs: Sequence[ox.NamedNode]
    triples: Path | None = None
    extra: Sequence[ox.Quad] = field(default_factory=list)

    def statements(self, store: ox.Store) -> Iterator[ox.Quad]:
        """The batch's statements as triples of the default graph."""
        if self.triples is None:
            found: Iterable[ox.Quad | ox.Triple] = (
                q for g in self.graphs for q in store.quads_for_pattern(None, None, None, g)
            )
        else:
            found = ox.parse(path=self.triples, format=ox.RdfFormat.N_TRIPLES)
        for t in itertools.chain(found, self.extra):
            yield ox.Quad(t.subject, t.predicate, t.object)


def validate_batches(
    store: ox.Store,
    originals: Originals,
    shapes: Graph,
    batches: Iterable[Sequence[ox.NamedNode] | Batch],
    shared: Sequence[ox.NamedNode],
) -> list[RawResult]:
    """Validate the union of the store's graphs: the local shapes a batch of graphs at a time
    (with the `shared` graphs, e.g. the ontology, in every batch), the others once over the
    whole store. `batches` (graphs, or Batch) must cover every graph but the shared ones, each
    once."""
    top = ShapesReader(shapes).top_level()  # unsupported features fail here, first
    local = local_shapes(top)
    whole = Engine(store, originals, union=True, top=top)
    results = whole.run([s for s in top if s.node not in local])
    everywhere = _triples(q for g in shared for q in store.quads_for_pattern(None, None, None, g))
    shared_subjects = {t.subject for t in everywhere}
    schema = _triples(_schema(store))
    links = _outside(store, {t.object for t in everywhere}, shared_subjects)
    for index, batch in enumerate(list(batches) or [[]]):
        memory = ox.Store()
        described: set[object] = set()
        targets: set[object] = set()
        found = batch if isinstance(batch, Batch) else Batch(batch)
        memory.bulk_extend(_noted(found.statements(store), described, targets))
        imported = _outside(store, targets, described | shared_subjects)
        memory.bulk_extend(everywhere)
        memory.bulk_extend(links)
        memory.bulk_extend(schema)
        memory.bulk_extend(imported)
        foreign = {
            from_ox(t.subject)
            for t in (*schema, *imported, *links)
            if t.subject not in described and t.subject not in shared_subjects
        }
        if index:  # the shared graphs' resources: the first batch reports them
            foreign |= {from_ox(s) for s in shared_subjects}
        engine = Engine(memory, originals, top=top, subclasses=whole.subclasses)
        results += _kept(engine.run([s for s in top if s.node in local]), foreign)
    return results


def _noted(
    statements: Iterator[ox.Quad], subjects: set[object], objects: set[object]
) -> Iterator[ox.Quad]:
    """The statements, their subjects and IRI objects noted on the way."""
    for t in statements:
        subjects.add(t.subject)
        if isinstance(t.object, ox.NamedNode):
            objects.add(t.object)
        yield t


def _kept(results: list[RawResult], foreign: set[Node]) -> list[RawResult]:
    return [r for r in results if r.focus not in foreign]


def _triples(quads: Iterable[ox.Quad]) -> list[ox.Quad]:
    """The quads as triples of the default graph."""
    return [ox.Quad(q.subject, q.predicate, q.object) for q in quads]


def _schema(store: ox.Store) -> Iterator[ox.Quad]:
    """The statements every batch holds: class and property hierarchies, domains, ranges and
    the declarations of terms, from every graph."""
    for predicate in SCHEMA_PREDICATES:
        yield from store.quads_for_pattern(None, ox.NamedNode(str(predicate)), None, None)
    for cls in META_CLASSES:
        yield from store.quads_for_pattern(None, _TYPE, ox.NamedNode(str(cls)), None)


def _outside(store: ox.Store, targets: Set[object], known: Set[object]) -> list[ox.Quad]:
    """The statements, from the whole store, of the IRIs linked to (`targets`) that are not
    `known` (described where the links are)."""
    return _triples(
        q
        for node in sorted(targets - known, key=str)
        if isinstance(node, ox.NamedNode)
        for q in store.quads_for_pattern(node, None, None, None)
    )
