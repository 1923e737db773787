"""A resource's page read from the store: its statements both ways (incoming ones a page at a
time), labels, quotes with their pages, evidence of the facts it used; and its RDF twin."""

from __future__ import annotations

from typing import Any

import pyoxigraph as ox
from rdflib import Literal, URIRef
from rdflib.namespace import XSD
from rdflib.term import Node

from copkg.querying.named_queries.paging import kept, store_identity
from copkg.querying.pages.links import curie
from copkg.querying.pages.resource import (
    COPKG_NS,
    DEFINITION_PREDICATES,
    LABEL_PREDICATES,
    RDF_TYPE,
    Quote,
    Resource,
    Term,
    Value,
    term_of,
)
from copkg.querying.pages.rows import (
    first_labels,
    incoming_rows,
    lexical,
    outgoing_rows,
    page_number,
    page_rows,
)
from copkg.store import QueryResult, Store

#: Incoming links a page at a time, in the store's index order: an ORDER BY would sort every
#: link to a hub (10,000 to a Josserand role at 1,000 studies: a second) to show a hundred.
INCOMING_PAGE = 100

OUTGOING = """
SELECT ?s ?g ?p ?o ?oLabel ?quote ?text ?page ?study ?studyLabel ?voice ?kind ?verified WHERE {
  { GRAPH ?g { ?s ?p ?o }
    OPTIONAL { ?o rdfs:label|skos:prefLabel ?oLabel
               FILTER (LANG(?oLabel) = "" || LANGMATCHES(LANG(?oLabel), "en")) } }
  UNION
  { ?s copkg:hasEvidence ?quote . ?quote copkg:quoteText|copkg:evidenceText ?text .
    OPTIONAL { ?quote a ?kind FILTER (?kind IN (copkg:Quote, copkg:Paraphrase, copkg:Summary)) }
    OPTIONAL { ?quote copkg:quotedIn/copkg:quotesVerified ?verified }
    OPTIONAL { ?quote copkg:page ?page }
    OPTIONAL { ?quote copkg:voice ?voice }
    OPTIONAL { ?quote copkg:quotedIn ?study . OPTIONAL { ?study rdfs:label ?studyLabel } } }
}
"""

INCOMING = """
SELECT ?g ?s ?p WHERE { GRAPH ?g { ?s ?p ?o } }
"""

_INCOMING_COUNT = "SELECT (COUNT(*) AS ?n) WHERE { GRAPH ?g { ?s ?p ?o } }"

#: Hub counts kept per build at most (the set starts again past it).
_COUNTS_KEPT = 4096

#: Labels of the subjects of a page of links, once a subject (a VALUES row each).
SUBJECT_LABELS = """
SELECT ?s ?label WHERE {
  ?s rdfs:label|skos:prefLabel ?label FILTER (LANG(?label) = "" || LANGMATCHES(LANG(?label), "en"))
}
"""

_USED_EVIDENCE = """
SELECT ?s ?fact ?factLabel ?quote ?text ?page ?study ?studyLabel ?kind ?verified WHERE {
  ?s copkg:usedFact ?fact .
  OPTIONAL { ?fact rdfs:label ?factLabel }
  ?fact copkg:hasEvidence ?quote . ?quote copkg:quoteText|copkg:evidenceText ?text .
    OPTIONAL { ?quote a ?kind FILTER (?kind IN (copkg:Quote, copkg:Paraphrase, copkg:Summary)) }
    OPTIONAL { ?quote copkg:quotedIn/copkg:quotesVerified ?verified }
  OPTIONAL { ?quote copkg:page ?page }
  OPTIONAL { ?quote copkg:quotedIn ?study . OPTIONAL { ?study rdfs:label ?studyLabel } }
}
ORDER BY ?fact ?page
"""

TWIN = """
CONSTRUCT { ?s ?p ?o . ?quote ?qp ?qo }
WHERE { { ?s ?p ?o } UNION { ?s copkg:hasEvidence ?quote . ?quote ?qp ?qo } }
"""

_PREDICATE_LABELS = """
SELECT ?term ?label WHERE {
  GRAPH ?g { ?term a ?kind ; rdfs:label ?label }
  VALUES ?kind { owl:ObjectProperty owl:DatatypeProperty owl:AnnotationProperty owl:Class
                 rdf:Property }
}
"""

_USED_FACT = ox.NamedNode(COPKG_NS + "usedFact")


def predicate_labels(store: Store) -> dict[str, str]:
    """Labels of the ontology's classes and properties (read once per read-only store)."""

    def read() -> dict[str, str]:
        labels: dict[str, str] = {}
        for row in store.query(_PREDICATE_LABELS, default_graphs=None).rows:
            labels.setdefault(str(row["term"]), str(row["label"]))
        return labels

    return kept(store, "predicate labels", read)


def incoming_count(store: Store, iri: URIRef) -> int:
    """How many links there are to a resource: counted once per build for a store that cannot
    change (10,000 links to a Josserand role at 1,000 studies: 5-10 ms a count)."""
    identity = store_identity(store)
    if identity is None:
        return _count_incoming(store, iri)
    counts: dict[URIRef, int] = kept(store, ("incoming counts", identity), dict)
    if len(counts) >= _COUNTS_KEPT:
        counts.clear()
    if iri not in counts:
        counts[iri] = _count_incoming(store, iri)
    count: int = counts[iri]
    return count


def _count_incoming(store: Store, iri: URIRef) -> int:
    return int(str(store.query(_INCOMING_COUNT, bindings={"o": iri}).rows[0]["n"]))


def read_incoming(
    store: Store, iri: URIRef, page: int = 1
) -> tuple[dict[str, dict[Term, Value]], int]:
    """One page of the links to a resource (INCOMING_PAGE of them) and how many there are.

    The page is read with one link more: when that one is missing the page is the last and the
    total is known without a count, which is left for hubs (and kept per build, see
    incoming_count).
    """
    offset = (page - 1) * INCOMING_PAGE
    text = f"{INCOMING.strip()}\nLIMIT {INCOMING_PAGE + 1} OFFSET {offset}\n"
    rows = incoming_rows(store, iri, offset, INCOMING_PAGE + 1, text)
    if len(rows) > INCOMING_PAGE or (not rows and page > 1):
        total = incoming_count(store, iri)
    else:
        total = offset + len(rows)
    rows = rows[:INCOMING_PAGE]
    labels = first_labels(store, (row["s"] for row in rows), SUBJECT_LABELS)
    incoming: dict[Any, dict[Any, Value]] = {}
    for row in rows:
        values = incoming.setdefault(row["p"], {})
        value = values.get(row["s"])
        if value is None:
            value = values[row["s"]] = Value(term_of(row["s"]), labels.get(row["s"]))
        if lexical(row["g"]) not in value.graphs:
            value.graphs.append(lexical(row["g"]))
    return {p.value: {v.term: v for v in values.values()} for p, values in incoming.items()}, total


def _kind(row: dict[str, Any]) -> str:
    """The kind of a piece of evidence (a row's ?kind): quote, paraphrase or summary."""
    kind = row.get("kind")
    return lexical(kind).rpartition("#")[2].lower() if kind is not None else "quote"


def _verified(row: dict[str, Any]) -> bool:
    """Whether a quote was verified: a verbatim quote of a study whose quotes the build
    verified against its source text (a row's ?kind and ?verified)."""
    verified = row.get("verified")
    return _kind(row) == "quote" and verified is not None and lexical(verified) in ("true", "1")


def _iri(term: Any) -> str | None:
    """An IRI's text (None for no term or another kind of term)."""
    return term.value if isinstance(term, ox.NamedNode) else None


def read_resource(store: Store, iri: str, incoming_page: int = 1) -> Resource | None:
    """A resource's outgoing statements and evidence and a page of its incoming links (the
    first by default), or None if it has none."""
    subject = URIRef(iri)
    properties: dict[Any, dict[Any, Value]] = {}
    quotes: dict[str, Quote] = {}
    for row in outgoing_rows(store, subject, OUTGOING):
        if "quote" in row:
            quote_iri = lexical(row["quote"])
            known = quotes.get(quote_iri)
            quotes[quote_iri] = Quote(
                quote_iri,
                lexical(row["text"]),
                page_number(row.get("page")),
                _iri(row.get("study")) or (known.study if known else None),
                lexical(row["studyLabel"])
                if "studyLabel" in row
                else (known.study_label if known else None),
                _iri(row.get("voice")) or (known.voice if known else None),
                kind=_kind(row),
                verified=_verified(row),
            )
            continue
        values = properties.setdefault(row["p"], {})
        value = values.get(row["o"])
        if value is None:
            value = values[row["o"]] = Value(term_of(row["o"]), None)
        if "oLabel" in row and value.label is None:
            value.label = lexical(row["oLabel"])
        graph = lexical(row["g"])
        if graph not in value.graphs:
            value.graphs.append(graph)
    incoming, incoming_total = read_incoming(store, subject, incoming_page)
    if not properties and not incoming_total:
        return None
    used: list[Quote] = []
    if _USED_FACT in properties:
        for row in page_rows(store, _USED_EVIDENCE, {"s": subject}):
            used.append(
                Quote(
                    lexical(row["quote"]),
                    lexical(row["text"]),
                    page_number(row.get("page")),
                    _iri(row.get("study")),
                    lexical(row["studyLabel"]) if "studyLabel" in row else None,
                    about=lexical(row["fact"]),
                    about_label=lexical(row["factLabel"]) if "factLabel" in row else None,
                    kind=_kind(row),
                    verified=_verified(row),
                )
            )
    ordered = {
        p: sorted(v.values(), key=_value_key)
        for p, v in sorted(((p.value, v) for p, v in properties.items()), key=_predicate_key)
    }
    ordered_in = {
        p: sorted(v.values(), key=_value_key)
        for p, v in sorted(incoming.items(), key=_predicate_key)
    }
    evidence = sorted(quotes.values(), key=lambda q: (q.page or 0, q.iri))
    labels = predicate_labels(store)
    named = {*ordered, *ordered_in, *(str(v.term) for v in ordered.get(RDF_TYPE, ()))}
    return Resource(
        iri,
        ordered,
        ordered_in,
        evidence,
        used,
        {term: labels[term] for term in named if term in labels},
        INCOMING_PAGE,
        incoming_total,
        incoming_page,
    )


def _predicate_key(item: tuple[str, Any]) -> tuple[int, str]:
    predicate = item[0]
    if predicate == RDF_TYPE:
        return (0, predicate)
    if predicate in LABEL_PREDICATES or predicate in DEFINITION_PREDICATES:
        return (1, predicate)
    return (2, curie(predicate))


def _value_key(value: Value) -> tuple[str, str]:
    return ((value.label or "").casefold(), str(value.term))


#: XSD integer subtypes and the values they hold. The store keeps such a literal as xsd:integer
#: (its value kept: "312"^^xsd:positiveInteger is served as 312); a twin writes it back with the
#: datatype the ontology declares for its property, as the sources give it, so that a twin
#: passes the shapes its sources passed.
_SUBTYPES = {
    str(XSD.positiveInteger): lambda v: v > 0,
    str(XSD.nonNegativeInteger): lambda v: v >= 0,
    str(XSD.negativeInteger): lambda v: v < 0,
    str(XSD.nonPositiveInteger): lambda v: v <= 0,
}
_INTEGER_RANGES = """
SELECT ?p ?d WHERE {
  ?p rdfs:range ?d
  FILTER (?d IN (xsd:positiveInteger, xsd:nonNegativeInteger, xsd:negativeInteger,
                 xsd:nonPositiveInteger))
}
"""


def integer_ranges(store: Store) -> dict[Node, str]:
    """Properties whose declared range is an XSD integer subtype (read once per read-only
    store)."""

    def read() -> dict[Node, str]:
        return {row["p"]: str(row["d"]) for row in store.query(_INTEGER_RANGES).rows}

    return kept(store, "integer ranges", read)


def declared_datatypes(
    triples: list[tuple[Node, Node, Node]], ranges: dict[Node, str]
) -> list[tuple[Node, Node, Node]]:
    """The triples with each xsd:integer object of a property declared with an integer
    subtype written with that subtype (when its value lies in the subtype's values)."""
    result = []
    for s, p, o in triples:
        written = o
        declared = ranges.get(p)
        if declared and isinstance(o, Literal) and o.datatype == XSD.integer:
            value = o.toPython()
            if isinstance(value, int) and _SUBTYPES[declared](value):
                written = Literal(str(value), datatype=URIRef(declared))
        result.append((s, p, written))
    return result


def resource_twin(store: Store, iri: str, media_type: str) -> bytes:
    """The resource's statements (and its quotes') in an RDF format, with the datatypes the
    sources give (see _SUBTYPES)."""
    result = store.query(TWIN, bindings={"s": URIRef(iri)})
    triples = declared_datatypes(result.triples, integer_ranges(store))
    return QueryResult("graph", triples=triples).serialize(media_type)
