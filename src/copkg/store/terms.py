"""The one place where rdflib terms and pyoxigraph terms are converted into each other."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator, Mapping

import pyoxigraph as ox
from rdflib import BNode, Graph, Literal, URIRef
from rdflib.namespace import RDF, XSD
from rdflib.term import Node

from copkg.errors import CopkgError
from copkg.namespaces import PREFIXES

OxTerm = ox.NamedNode | ox.BlankNode | ox.Literal | ox.Triple
OxGraphName = ox.NamedNode | ox.BlankNode | ox.DefaultGraph

_XSD_STRING = str(XSD.string)
_LANG_STRING = str(RDF.langString)


def serialize(
    items: Iterable[ox.Triple] | Iterable[ox.Quad],
    fmt: ox.RdfFormat,
    prefixes: dict[str, str] | None = None,
) -> bytes:
    """pyoxigraph's serialiser, written to memory (its result is None only with an output)."""
    data = ox.serialize(items, format=fmt, prefixes=prefixes)
    assert data is not None
    return data


def as_iri(node: Node | None) -> URIRef:
    """A term that its query or graph pattern makes an IRI, typed as one (rdflib types rows and
    graph lookups as Node): TypeError for any other term or None."""
    if not isinstance(node, URIRef):
        raise TypeError(f"an IRI was expected here, not {node!r}")
    return node


def as_optional_iri(node: Node | None) -> URIRef | None:
    """as_iri for a term that may be missing (an OPTIONAL variable, a graph value)."""
    return None if node is None else as_iri(node)


def to_ox(node: Node) -> OxTerm:
    """An rdflib term as a pyoxigraph term (400 for an IRI or language tag RDF does not allow)."""
    try:
        if isinstance(node, URIRef):
            return ox.NamedNode(str(node))
        if isinstance(node, BNode):
            return _ox_blank(str(node))
        if isinstance(node, Literal):
            if node.language:
                return ox.Literal(str(node), language=node.language)
            if node.datatype is not None:
                return ox.Literal(str(node), datatype=ox.NamedNode(str(node.datatype)))
            return ox.Literal(str(node))
    except ValueError as exc:
        raise CopkgError(f"not a valid RDF term: {str(node)!r}: {exc}", status=400) from exc
    raise CopkgError(f"cannot use {node!r} as an RDF term", status=400)


def to_ox_iri(iri: URIRef) -> ox.NamedNode:
    """to_ox for an IRI, typed as the NamedNode it makes."""
    term = to_ox(iri)
    assert isinstance(term, ox.NamedNode)
    return term


def to_ox_subject(node: Node) -> ox.NamedNode | ox.BlankNode | ox.Triple:
    """to_ox for a subject (400 for a literal, which RDF does not allow there)."""
    term = to_ox(node)
    if isinstance(term, ox.Literal):
        raise CopkgError(f"a literal cannot be a subject: {term}", status=400)
    return term


def _ox_blank(label: str) -> ox.BlankNode:
    try:
        return ox.BlankNode(label)
    except ValueError:
        return ox.BlankNode("b" + hashlib.sha1(label.encode()).hexdigest()[:16])


def to_ox_graph_name(graph: str | Node | None) -> OxGraphName:
    """A graph IRI (or None for the default graph) as a pyoxigraph graph name."""
    if graph is None:
        return ox.DefaultGraph()
    if isinstance(graph, BNode):
        return _ox_blank(str(graph))
    return ox.NamedNode(str(graph))


def from_ox(term: OxTerm) -> Node:
    """A pyoxigraph term as an rdflib term (lexical forms kept as they are)."""
    if isinstance(term, ox.NamedNode):
        return URIRef(term.value)
    if isinstance(term, ox.BlankNode):
        return BNode(term.value)
    if isinstance(term, ox.Literal):
        if term.language:
            return Literal(term.value, lang=term.language)
        datatype = term.datatype.value
        if datatype in (_XSD_STRING, _LANG_STRING):
            return Literal(term.value)
        return Literal(term.value, datatype=URIRef(datatype), normalize=False)
    raise CopkgError(f"RDF-star triple terms are not supported here: {term}", status=400)


def from_ox_graph_name(graph: OxGraphName) -> str | None:
    """A pyoxigraph graph name as an IRI string, or None for the default graph."""
    if isinstance(graph, ox.DefaultGraph):
        return None
    return graph.value


def graph_of(quad: ox.Quad) -> str:
    """The name of the named graph a quad is in (TypeError for the default graph)."""
    graph = quad.graph_name
    if isinstance(graph, ox.DefaultGraph):
        raise TypeError(f"a named graph was expected here, not the default graph: {quad}")
    return graph.value


def term_value(term: OxTerm) -> str:
    """A term's IRI, blank node label or lexical form (TypeError for an RDF-star triple)."""
    if isinstance(term, ox.Triple):
        raise TypeError(f"an IRI, blank node or literal was expected here, not {term}")
    return term.value


def triples_to_quads(
    triples: Iterable[tuple[Node, Node, Node]], graph: str | Node | None
) -> Iterator[ox.Quad]:
    """rdflib triples as pyoxigraph quads in one graph."""
    name = to_ox_graph_name(graph)
    for s, p, o in triples:
        yield ox.Quad(to_ox(s), to_ox(p), to_ox(o), name)  # type: ignore[arg-type]


def quad_from_ox(quad: ox.Quad) -> tuple[Node, Node, Node, str | None]:
    return (
        from_ox(quad.subject),
        from_ox(quad.predicate),
        from_ox(quad.object),
        from_ox_graph_name(quad.graph_name),
    )


def quads_to_graph(quads: Iterable[ox.Quad]) -> Graph:
    """pyoxigraph quads as one rdflib Graph (graph names dropped), with the copkg prefixes."""
    graph = Graph()
    for prefix, ns in PREFIXES.items():
        graph.bind(prefix, ns)
    for quad in quads:
        graph.add((from_ox(quad.subject), from_ox(quad.predicate), from_ox(quad.object)))
    return graph


def terms_as_sparql(bindings: Mapping[str, Node]) -> dict[str, str]:
    """Each bound term written by pyoxigraph's serialiser (escaped, validated), by variable."""
    values = {}
    for name, value in bindings.items():
        term = to_ox(value)
        if isinstance(term, ox.BlankNode):
            raise CopkgError(f"?{name}: a blank node cannot be bound to a variable", status=400)
        values[name.lstrip("?$")] = str(term)
    return values
