"""Which shapes can be validated a batch of studies at a time, read from the shapes themselves.

A shape is *local* when what it reads of the data, for a focus node, is no more than:

- the focus node's own statements (its outgoing triples, whatever their predicate);
- the statements of the nodes those link to, one hop away (for a value's rdf:type above all);
- the schema: rdfs:subClassOf, rdfs:subPropertyOf, rdfs:domain and rdfs:range statements, and
  the rdf:type statements that declare classes and properties (SCHEMA_PREDICATES,
  META_CLASSES), wherever they are.

and its focus nodes are found by their own statements (sh:targetClass, sh:targetSubjectsOf, or
a SPARQL target that binds ?this as a subject and reads no more than the above). A batch store
that holds its studies' graphs, the ontology, the schema and the statements of what the batch
links to outside itself then gives such a shape the same results, for the focus nodes the
batch describes, as the whole corpus does: when every resource is described by one study, as
the build's corpus checks ensure.

SPARQL constraints and targets are read with rdflib's SPARQL parser (its algebra): every triple
pattern, property paths step by step, in EXISTS, MINUS and subqueries alike, is checked. What
the analysis cannot place (a GRAPH or SERVICE clause, an inverse or negated path, a
non-schema path closure, a pattern from a constant or an unlinked variable) makes the shape
non-local: it then runs once over the whole store. A variable is read by its name across the
query's scopes: a subquery or EXISTS that reused a linked variable's name for another node
would be misread (tests/test_shacl_batched.py compares both ways on the shipped shapes).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from rdflib import URIRef, Variable
from rdflib.namespace import OWL, RDF, RDFS, SKOS
from rdflib.paths import AlternativePath, MulPath, Path, SequencePath
from rdflib.plugins.sparql.algebra import translateQuery
from rdflib.plugins.sparql.parser import parseQuery
from rdflib.plugins.sparql.parserutils import CompValue
from rdflib.term import Node

from copkg.validation.shacl.shapes import Query, Shape

#: Predicates whose statements every batch holds, wherever they are in the corpus.
SCHEMA_PREDICATES = (RDFS.subClassOf, RDFS.subPropertyOf, RDFS.domain, RDFS.range)
#: Classes whose rdf:type statements every batch holds (the declarations of terms).
META_CLASSES = (
    OWL.Class,
    OWL.ObjectProperty,
    OWL.DatatypeProperty,
    OWL.AnnotationProperty,
    RDFS.Class,
    RDF.Property,
    SKOS.ConceptScheme,
)
_THIS = Variable("this")
_NOT_LOCAL = ("Graph", "GraphGraphPattern", "ServiceGraphPattern", "Service")
#: How far from the focus node a step may start: its own statements (0), what it links to (1).
_REACH = 1


class NotLocalError(Exception):
    """The query reads something a batch may not hold."""


def local_shapes(top: list[Shape]) -> set[Node]:
    """The top-level shapes (their nodes) that give the same results a batch at a time."""
    return {shape.node for shape in top if _top_local(shape)}


def _top_local(shape: Shape) -> bool:
    if shape.nodes or shape.objects_of:  # focus nodes that need not be described where found
        return False
    try:
        for query in shape.target_queries:
            if not query.deactivated:
                _check_query(query, target=True)
        _check_shape(shape, 0)
        for prop in shape.properties:
            _check_shape(prop, 0)
    except NotLocalError:
        return False
    return True


def _check_shape(shape: Shape, level: int) -> None:
    """Raise NotLocalError unless `shape`, applied to a node `level` hops from the focus node,
    reads only what a batch holds."""
    if shape.deactivated:
        return
    value_level = level
    if shape.path is not None:
        if shape.path.inverse or level >= _REACH + 1:
            raise NotLocalError
        value_level = level + 1
    for key, rule in shape.values:
        nested = rule if isinstance(rule, list) else [rule]
        for member in nested:
            if isinstance(member, Shape):
                _check_shape(member, value_level)
        if key == URIRef("http://www.w3.org/ns/shacl#class") and value_level > _REACH:
            raise NotLocalError  # the value's rdf:type
    if shape.qualified is not None:
        _check_shape(shape.qualified, value_level)
    for prop in shape.properties:
        _check_shape(prop, level)
    for query in shape.sparql:
        if query.deactivated:
            continue
        if level > 0:
            raise NotLocalError
        text = query.select
        if "$PATH" in text:
            if shape.path is None:
                raise NotLocalError
            text = text.replace("$PATH", shape.path.sparql())
        _check_query(Query(query.node, text, query.prologue), target=False)


def _check_query(query: Query, *, target: bool) -> None:
    try:
        parsed = translateQuery(parseQuery(f"{query.prologue}\n{query.select}")).algebra
    except Exception as exc:  # the engine reports a query it cannot run, not this analysis
        raise NotLocalError from exc
    triples = list(_triples(parsed))
    if target and not any(t[0] == _THIS for t in triples):
        raise NotLocalError  # focus nodes not found by their own statements
    linked: set[Variable] = set()
    changed = True
    while changed:  # the variables one hop from the focus node
        changed = False
        for s, p, o in triples:
            if s == _THIS and isinstance(o, Variable) and o not in linked and _one_hop(p):
                linked.add(o)
                changed = True
    for s, p, o in triples:
        if p == RDF.type and o in META_CLASSES:
            continue  # every batch holds the declarations of terms
        level = 0 if s == _THIS else 1 if s in linked else None
        _check_steps(_steps(p), level)


def _one_hop(p: Any) -> bool:
    return isinstance(p, (URIRef, Variable)) or (
        isinstance(p, AlternativePath) and all(isinstance(a, URIRef) for a in p.args)
    )


def _steps(p: Any) -> list[Any]:
    return list(p.args) if isinstance(p, SequencePath) else [p]


def _check_steps(steps: list[Any], level: int | None) -> None:
    """Raise NotLocalError unless the path `steps`, from a node `level` hops from the focus node
    (None: not reached from it), reads only what a batch holds."""
    for step in steps:
        if _schema(step):
            level = None  # the schema is everywhere; what it reaches is schema too
            continue
        if level is None or level > _REACH or not _one_hop(step):
            raise NotLocalError
        level += 1


def _schema(step: Any) -> bool:
    if isinstance(step, MulPath):
        return _schema(step.path)
    if isinstance(step, AlternativePath):
        return all(_schema(a) for a in step.args)
    return isinstance(step, URIRef) and step in SCHEMA_PREDICATES


def _triples(node: Any) -> Iterator[tuple[Any, Any, Any]]:
    """Every triple pattern of a query's algebra; NotLocalError for what names a graph or a
    service."""
    if isinstance(node, CompValue):
        if node.name in _NOT_LOCAL:
            raise NotLocalError
        if node.name in {"TriplesBlock", "BGP"}:
            yield from _block(node.get("triples") or [])
            return
        for key, value in node.items():
            if key != "_vars":
                yield from _triples(value)
    elif isinstance(node, (list, tuple)) and not isinstance(node, Path):
        for item in node:
            yield from _triples(item)


def _block(triples: Any) -> Iterator[tuple[Any, Any, Any]]:
    """The triples of a BGP (tuples), or of a TriplesBlock in an EXISTS (flat lists of
    subject, predicate, object, subject, ...)."""
    for item in triples:
        flat = list(item)
        if not flat or len(flat) % 3:
            raise NotLocalError  # a form not understood
        for i in range(0, len(flat), 3):
            yield flat[i], _term(flat[i + 1]), flat[i + 2]


def _term(value: Any) -> Any:
    """A predicate as parsed (a CompValue for a path) as a term or an rdflib Path."""
    if isinstance(value, (URIRef, Variable, Path)):
        return value
    raise NotLocalError
