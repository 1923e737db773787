"""What a resource page shows, read from the store: its statements both ways (incoming ones a
page at a time), labels, quotes with their pages, and an organisation's dated events."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pyoxigraph as ox
from flask import current_app
from rdflib import BNode, Literal, URIRef
from rdflib.namespace import RDF
from rdflib.term import Node

from copkg.namespaces import COPKG
from copkg.store import Store
from copkg.store.results import plain
from copkg.store.terms import as_iri, as_optional_iri, from_ox
from copkg.web.cache import store_identity
from copkg.web.pages.links import TWINS, curie, href, local_path
from copkg.web.pages.page_rows import (
    first_labels,
    incoming_rows,
    lexical,
    node,
    outgoing_rows,
    page_number,
    page_rows,
)
from copkg.web.pages.svg import TimelineEvent

_OUTGOING = """
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

#: Incoming links a page at a time, in the store's index order: an ORDER BY would sort every
#: link to a hub (10,000 to a Josserand role at 1,000 studies: a second) to show a hundred.
INCOMING_PAGE = 100

_INCOMING = """
SELECT ?g ?s ?p WHERE { GRAPH ?g { ?s ?p ?o } }
"""

_INCOMING_COUNT = "SELECT (COUNT(*) AS ?n) WHERE { GRAPH ?g { ?s ?p ?o } }"

#: Hub counts kept per build at most (the set starts again past it).
_COUNTS_KEPT = 4096

#: Labels of the subjects of a page of links, once a subject (a VALUES row each).
_SUBJECT_LABELS = """
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

_DEFINITION_PREDICATES = (
    "http://www.w3.org/2004/02/skos/core#definition",
    str(COPKG.statement),
    "http://purl.org/dc/terms/description",
    "http://www.w3.org/2000/01/rdf-schema#comment",
)

_LABEL_PREDICATES = (
    "http://www.w3.org/2000/01/rdf-schema#label",
    "http://www.w3.org/2004/02/skos/core#prefLabel",
    "http://purl.org/dc/terms/title",
)


@dataclass
class Value:
    """One object (or subject, for incoming links) with its label and graph."""

    term: Node
    label: str | None
    graphs: list[str] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"value": plain(self.term)}
        if isinstance(self.term, URIRef):
            data["type"] = "iri"
            data["href"] = href(self.term)
        elif isinstance(self.term, BNode):
            data["type"] = "bnode"
        else:
            data["type"] = "literal"
            assert isinstance(self.term, Literal)
            if self.term.language:
                data["lang"] = self.term.language
            elif self.term.datatype:
                data["datatype"] = str(self.term.datatype)
        if self.label:
            data["label"] = self.label
        data["graphs"] = self.graphs
        return data


@dataclass
class Quote:
    iri: URIRef
    text: str
    page: int | None
    study: URIRef | None
    study_label: str | None
    voice: URIRef | None = None
    about: URIRef | None = None
    about_label: str | None = None
    #: "quote" (the study's words), "paraphrase" or "summary" (a curator's restatement)
    kind: str = "quote"
    #: whether the build found the quote on its page of the study's source text
    verified: bool = False

    def as_json(self) -> dict[str, Any]:
        data = {
            "quote": str(self.iri),
            "kind": self.kind,
            "verified": self.verified,
            "text": self.text,
            "page": self.page,
            "study": str(self.study) if self.study else None,
            "studyLabel": self.study_label,
            "voice": str(self.voice) if self.voice else None,
        }
        if self.about is not None:
            data["about"] = str(self.about)
            data["aboutLabel"] = self.about_label
        return data


@dataclass
class Resource:
    """Everything a resource page shows, read with two or three indexed queries."""

    iri: URIRef
    properties: dict[URIRef, list[Value]]
    incoming: dict[URIRef, list[Value]]
    evidence: list[Quote]
    used_evidence: list[Quote]
    predicate_labels: Mapping[str, str]
    incoming_total: int = 0  # links to the resource, of which `incoming` holds one page
    incoming_page: int = 1

    incoming_page_size = INCOMING_PAGE

    @property
    def incoming_pages(self) -> int:
        return max(1, -(-self.incoming_total // INCOMING_PAGE))

    def incoming_link(self, page: int) -> str:
        """The URL of another page of the incoming links (of the HTML page or its JSON twin)."""
        return f"{local_path(self.iri) or ''}?incoming={page}"

    @property
    def label(self) -> str:
        for predicate in _LABEL_PREDICATES:
            values = self.properties.get(URIRef(predicate), [])
            english = [v for v in values if getattr(v.term, "language", None) in ("en", None)]
            if english or values:
                return str((english or values)[0].term)
        return curie(self.iri)

    @property
    def definition(self) -> str | None:
        for predicate in _DEFINITION_PREDICATES:
            values = self.properties.get(URIRef(predicate))
            if values:
                return str(values[0].term)
        return None

    @property
    def types(self) -> list[Value]:
        return self.properties.get(RDF.type, [])

    def has_type(self, iri: URIRef) -> bool:
        return any(v.term == iri for v in self.types)

    @property
    def studies(self) -> list[tuple[URIRef, str | None]]:
        """The studies the resource comes from: reportedIn, then its quotes' studies."""
        found: dict[URIRef, str | None] = {}
        for value in self.properties.get(COPKG.reportedIn, []):
            found.setdefault(URIRef(str(value.term)), value.label)
        for q in self.evidence:
            if q.study is not None:
                found.setdefault(q.study, q.study_label)
        return list(found.items())

    @property
    def graphs(self) -> list[str]:
        return sorted({g for values in self.properties.values() for v in values for g in v.graphs})

    @property
    def shown_properties(self) -> dict[URIRef, list[Value]]:
        """The properties the table lists: not rdf:type, the title or the definition, which the
        header shows (a label predicate stays when it has another value than the title)."""
        shown = {}
        definition_given = False
        for predicate, values in self.properties.items():
            text = str(predicate)
            if predicate == RDF.type:
                continue
            if text in _LABEL_PREDICATES and all(str(v.term) == self.label for v in values):
                continue
            if predicate == COPKG.hasEvidence and self.evidence:
                continue  # the evidence section shows the quotes
            if text in _DEFINITION_PREDICATES and not definition_given and len(values) == 1:
                definition_given = True
                continue
            shown[predicate] = values
        return shown

    def predicate_label(self, predicate: Node) -> str:
        return self.predicate_labels.get(str(predicate)) or curie(predicate)

    def as_json(self) -> dict[str, Any]:
        path = local_path(self.iri) or ""
        return {
            "ok": True,
            "iri": str(self.iri),
            "label": self.label,
            "definition": self.definition,
            "types": [v.as_json() for v in self.types],
            "graphs": self.graphs,
            "properties": [
                {
                    "predicate": str(p),
                    "label": self.predicate_label(p),
                    "values": [v.as_json() for v in values],
                }
                for p, values in self.properties.items()
            ],
            "incoming": [
                {
                    "predicate": str(p),
                    "label": self.predicate_label(p),
                    "subjects": [v.as_json() for v in values],
                }
                for p, values in self.incoming.items()
            ],
            "incomingTotal": self.incoming_total,
            "incomingPage": self.incoming_page,
            "incomingPages": self.incoming_pages,
            "evidence": [q.as_json() for q in self.evidence],
            "evidenceOfUsedFacts": [q.as_json() for q in self.used_evidence],
            "studies": [{"iri": str(s), "label": label} for s, label in self.studies],
            "links": {
                "html": path,
                **{s.lstrip("."): path + s for s in TWINS},
                **self._incoming_links(path),
            },
        }

    def _incoming_links(self, path: str) -> dict[str, str]:
        links = {}
        if self.incoming_page > 1:
            links["incomingPrev"] = f"{path}.json?incoming={self.incoming_page - 1}"
        if self.incoming_page < self.incoming_pages:
            links["incomingNext"] = f"{path}.json?incoming={self.incoming_page + 1}"
        return links


def predicate_labels(store: Store) -> dict[str, str]:
    """Labels of the ontology's classes and properties (read once per app)."""
    cache = current_app.extensions.setdefault("copkg.pages", {})
    if "predicate_labels" not in cache:
        rows = store.query(_PREDICATE_LABELS, default_graphs=None).rows
        labels: dict[str, str] = {}
        for row in rows:
            labels.setdefault(str(row["term"]), str(row["label"]))
        cache["predicate_labels"] = labels
    labels = cache["predicate_labels"]
    return labels


def incoming_count(store: Store, iri: URIRef) -> int:
    """How many links there are to a resource: counted once per build for a store that cannot
    change (10,000 links to a Josserand role at 1,000 studies: 5-10 ms a count)."""
    identity = store_identity(store)
    if identity is None:
        return _count_incoming(store, iri)
    pages = current_app.extensions.setdefault("copkg.pages", {})
    kept_for, counts = pages.get("incoming_counts", (None, {}))
    if kept_for != identity or len(counts) >= _COUNTS_KEPT:
        counts = {}
        pages["incoming_counts"] = (identity, counts)
    if iri not in counts:
        counts[iri] = _count_incoming(store, iri)
    count: int = counts[iri]
    return count


def _count_incoming(store: Store, iri: URIRef) -> int:
    return int(str(store.query(_INCOMING_COUNT, bindings={"o": iri}).rows[0]["n"]))


def read_incoming(
    store: Store, iri: URIRef, page: int = 1
) -> tuple[dict[URIRef, dict[Node, Value]], int]:
    """One page of the links to a resource (INCOMING_PAGE of them) and how many there are.

    The page is read with one link more: when that one is missing the page is the last and the
    total is known without a count, which is left for hubs (and kept per build, see
    incoming_count).
    """
    offset = (page - 1) * INCOMING_PAGE
    text = f"{_INCOMING.strip()}\nLIMIT {INCOMING_PAGE + 1} OFFSET {offset}\n"
    rows = incoming_rows(store, iri, offset, INCOMING_PAGE + 1, text)
    if len(rows) > INCOMING_PAGE or (not rows and page > 1):
        total = incoming_count(store, iri)
    else:
        total = offset + len(rows)
    rows = rows[:INCOMING_PAGE]
    labels = first_labels(store, (row["s"] for row in rows), _SUBJECT_LABELS)
    incoming: dict[Any, dict[Any, Value]] = {}
    for row in rows:
        values = incoming.setdefault(row["p"], {})
        value = values.get(row["s"])
        if value is None:
            value = values[row["s"]] = Value(from_ox(row["s"]), labels.get(row["s"]))
        if lexical(row["g"]) not in value.graphs:
            value.graphs.append(lexical(row["g"]))
    return {
        URIRef(p.value): {v.term: v for v in values.values()} for p, values in incoming.items()
    }, total


def _kind(row: dict[str, Any]) -> str:
    """The kind of a piece of evidence (a row's ?kind): quote, paraphrase or summary."""
    kind = row.get("kind")
    return lexical(kind).rpartition("#")[2].lower() if kind is not None else "quote"


def _verified(row: dict[str, Any]) -> bool:
    """Whether a quote was verified: a verbatim quote of a study whose quotes the build
    verified against its source text (a row's ?kind and ?verified)."""
    verified = row.get("verified")
    return _kind(row) == "quote" and verified is not None and lexical(verified) in ("true", "1")


def read_resource(store: Store, iri: URIRef, incoming_page: int = 1) -> Resource | None:
    """A resource's outgoing statements and evidence and a page of its incoming links (the
    first by default), or None if it has none."""
    properties: dict[Any, dict[Any, Value]] = {}
    quotes: dict[URIRef, Quote] = {}
    for row in outgoing_rows(store, iri, _OUTGOING):
        if "quote" in row:
            quote_iri = URIRef(lexical(row["quote"]))
            known = quotes.get(quote_iri)
            quotes[quote_iri] = Quote(
                quote_iri,
                lexical(row["text"]),
                page_number(row.get("page")),
                as_optional_iri(node(row.get("study"))) or (known.study if known else None),
                lexical(row["studyLabel"])
                if "studyLabel" in row
                else (known.study_label if known else None),
                as_optional_iri(node(row.get("voice"))) or (known.voice if known else None),
                kind=_kind(row),
                verified=_verified(row),
            )
            continue
        values = properties.setdefault(row["p"], {})
        value = values.get(row["o"])
        if value is None:
            value = values[row["o"]] = Value(from_ox(row["o"]), None)
        if "oLabel" in row and value.label is None:
            value.label = lexical(row["oLabel"])
        graph = lexical(row["g"])
        if graph not in value.graphs:
            value.graphs.append(graph)
    incoming, incoming_total = read_incoming(store, iri, incoming_page)
    if not properties and not incoming_total:
        return None
    used: list[Quote] = []
    if ox.NamedNode(str(COPKG.usedFact)) in properties:
        for row in page_rows(store, _USED_EVIDENCE, {"s": iri}):
            used.append(
                Quote(
                    URIRef(lexical(row["quote"])),
                    lexical(row["text"]),
                    page_number(row.get("page")),
                    as_optional_iri(node(row.get("study"))),
                    lexical(row["studyLabel"]) if "studyLabel" in row else None,
                    about=as_iri(node(row["fact"])),
                    about_label=lexical(row["factLabel"]) if "factLabel" in row else None,
                    kind=_kind(row),
                    verified=_verified(row),
                )
            )
    ordered = {
        p: sorted(v.values(), key=_value_key)
        for p, v in sorted(
            ((URIRef(p.value), v) for p, v in properties.items()), key=_predicate_key
        )
    }
    ordered_in = {
        p: sorted(v.values(), key=_value_key)
        for p, v in sorted(incoming.items(), key=_predicate_key)
    }
    evidence = sorted(quotes.values(), key=lambda q: (q.page or 0, str(q.iri)))
    return Resource(
        iri,
        ordered,
        ordered_in,
        evidence,
        used,
        predicate_labels(store),
        incoming_total,
        incoming_page,
    )


def _predicate_key(item: tuple[Node, Any]) -> tuple[int, str]:
    predicate = str(item[0])
    if predicate == str(RDF.type):
        return (0, predicate)
    if predicate in _LABEL_PREDICATES or predicate in _DEFINITION_PREDICATES:
        return (1, predicate)
    return (2, curie(predicate))


def _value_key(value: Value) -> tuple[str, str]:
    return ((value.label or "").casefold(), str(value.term))


ORGANISATIONS = """
SELECT ?org WHERE { ?org a copkg:Organisation . FILTER (STRENDS(STR(?org), STR(?suffix))) }
ORDER BY ?org
"""

_EVENTS = """
SELECT DISTINCT ?org ?event ?label ?date ?qualifier ?typeLabel WHERE {
  { ?event copkg:eventOf ?org } UNION { ?event copkg:affects/copkg:hostedBy ?org }
  ?event copkg:date ?date .
  OPTIONAL { ?event rdfs:label ?label }
  OPTIONAL { ?event copkg:dateQualifier ?qualifier }
  OPTIONAL { ?event copkg:eventType/(rdfs:label|skos:prefLabel) ?typeLabel }
}
ORDER BY ?date ?label ?typeLabel
"""


def organisation_events(store: Store, org: URIRef) -> list[TimelineEvent]:
    """The dated events of an organisation (and of the collectives it hosts); an event type with
    two labels shows the first in order, whatever order the store gives equal rows in."""
    events: dict[str, TimelineEvent] = {}
    for row in store.query(_EVENTS, bindings={"org": org}).rows:
        key = str(row["event"])
        if key in events:
            continue
        events[key] = TimelineEvent(
            date=str(row["date"]),
            label=str(row.get("label") or curie(row["event"])),
            href=href(row["event"]),
            qualifier=str(row["qualifier"]) if "qualifier" in row else None,
            kind=str(row["typeLabel"]) if "typeLabel" in row else None,
        )
    return list(events.values())
