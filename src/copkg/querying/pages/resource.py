"""What a resource page shows, as plain data a query worker hands to the web process: terms as
`Term` (kind, lexical value, language, datatype), IRIs as text, a resource's statements both
ways (incoming ones a page at a time) with labels and graphs, and its quotes with their pages.

Their text is what rdflib's terms gave (`str` of a term: an IRI, a blank node's label, a
literal's lexical form as stored), so the pages read the same."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import astuple, dataclass, field
from typing import Any, NamedTuple

import pyoxigraph as ox
from rdflib import BNode, Literal, URIRef
from rdflib.term import Node

from copkg.errors import CopkgError
from copkg.querying.pages.links import TWINS, curie, href, local_path
from copkg.store.results import plain_term

_XSD_STRING = "http://www.w3.org/2001/XMLSchema#string"
_LANG_STRING = "http://www.w3.org/1999/02/22-rdf-syntax-ns#langString"
RDF_TYPE = "http://www.w3.org/1999/02/22-rdf-syntax-ns#type"
COPKG_NS = "https://w3id.org/copkg/ontology#"

DEFINITION_PREDICATES = (
    "http://www.w3.org/2004/02/skos/core#definition",
    COPKG_NS + "statement",
    "http://purl.org/dc/terms/description",
    "http://www.w3.org/2000/01/rdf-schema#comment",
)

LABEL_PREDICATES = (
    "http://www.w3.org/2000/01/rdf-schema#label",
    "http://www.w3.org/2004/02/skos/core#prefLabel",
    "http://purl.org/dc/terms/title",
)


class Term(NamedTuple):
    """An RDF term as plain values; `str` gives its IRI, blank node label or lexical form."""

    kind: str  # "iri", "bnode" or "literal"
    value: str
    language: str | None = None
    #: a literal's datatype IRI (None for a plain or language-tagged string, as rdflib has it)
    datatype: str | None = None

    def __str__(self) -> str:
        return self.value

    def plain(self) -> Any:
        """The term as a plain JSON value (store.results.plain's)."""
        if self.kind == "bnode":
            return f"_:{self.value}"
        if self.kind == "literal" and self.datatype is not None:
            return plain_term(ox.Literal(self.value, datatype=ox.NamedNode(self.datatype)))
        return self.value

    def rdflib(self) -> Node:
        """The term as rdflib's (lexical forms kept as they are, as store.terms.from_ox)."""
        if self.kind == "iri":
            return URIRef(self.value)
        if self.kind == "bnode":
            return BNode(self.value)
        if self.language:
            return Literal(self.value, lang=self.language)
        if self.datatype:
            return Literal(self.value, datatype=URIRef(self.datatype), normalize=False)
        return Literal(self.value)


def term_of_rdflib(node: Node) -> Term:
    """An rdflib term as a Term."""
    if isinstance(node, URIRef):
        return Term("iri", str(node))
    if isinstance(node, BNode):
        return Term("bnode", str(node))
    assert isinstance(node, Literal)
    datatype = str(node.datatype) if node.datatype is not None else None
    return Term("literal", str(node), node.language, datatype)


def term_of(term: Any) -> Term:
    """A pyoxigraph term as a Term."""
    if isinstance(term, ox.NamedNode):
        return Term("iri", term.value)
    if isinstance(term, ox.BlankNode):
        return Term("bnode", term.value)
    if isinstance(term, ox.Literal):
        if term.language:
            return Term("literal", term.value, term.language)
        datatype = term.datatype.value
        plain = datatype in (_XSD_STRING, _LANG_STRING)
        return Term("literal", term.value, None, None if plain else datatype)
    raise CopkgError(f"RDF-star triple terms are not supported here: {term}", status=400)


@dataclass
class Value:
    """One object (or subject, for incoming links) with its label and graph."""

    term: Term
    label: str | None
    graphs: list[str] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"value": self.term.plain()}
        if self.term.kind == "iri":
            data["type"] = "iri"
            data["href"] = href(self.term.value)
        elif self.term.kind == "bnode":
            data["type"] = "bnode"
        else:
            data["type"] = "literal"
            if self.term.language:
                data["lang"] = self.term.language
            elif self.term.datatype:
                data["datatype"] = self.term.datatype
        if self.label:
            data["label"] = self.label
        data["graphs"] = self.graphs
        return data


@dataclass
class Quote:
    iri: str
    text: str
    page: int | None
    study: str | None
    study_label: str | None
    voice: str | None = None
    about: str | None = None
    about_label: str | None = None
    #: "quote" (the study's words), "paraphrase" or "summary" (a curator's restatement)
    kind: str = "quote"
    #: whether the build found the quote on its page of the study's source text
    verified: bool = False

    def as_json(self) -> dict[str, Any]:
        data = {
            "quote": self.iri,
            "kind": self.kind,
            "verified": self.verified,
            "text": self.text,
            "page": self.page,
            "study": self.study,
            "studyLabel": self.study_label,
            "voice": self.voice,
        }
        if self.about is not None:
            data["about"] = self.about
            data["aboutLabel"] = self.about_label
        return data


@dataclass
class Resource:
    """Everything a resource page shows (predicates by IRI), read off the store's indexes."""

    iri: str
    properties: dict[str, list[Value]]
    incoming: dict[str, list[Value]]
    evidence: list[Quote]
    used_evidence: list[Quote]
    #: labels of the predicates and types the page names (of the ontology's classes and
    #: properties)
    predicate_labels: Mapping[str, str]
    incoming_page_size: int  # incoming links a page (reading.INCOMING_PAGE)
    incoming_total: int = 0  # links to the resource, of which `incoming` holds one page
    incoming_page: int = 1

    @property
    def incoming_pages(self) -> int:
        return max(1, -(-self.incoming_total // self.incoming_page_size))

    def incoming_link(self, page: int) -> str:
        """The URL of another page of the incoming links (of the HTML page or its JSON twin)."""
        return f"{local_path(self.iri) or ''}?incoming={page}"

    @property
    def label(self) -> str:
        for predicate in LABEL_PREDICATES:
            values = self.properties.get(predicate, [])
            english = [v for v in values if v.term.language in ("en", None)]
            if english or values:
                return str((english or values)[0].term)
        return curie(self.iri)

    @property
    def definition(self) -> str | None:
        for predicate in DEFINITION_PREDICATES:
            values = self.properties.get(predicate)
            if values:
                return str(values[0].term)
        return None

    @property
    def types(self) -> list[Value]:
        return self.properties.get(RDF_TYPE, [])

    def has_type(self, iri: str) -> bool:
        return any(v.term.kind == "iri" and v.term.value == iri for v in self.types)

    @property
    def studies(self) -> list[tuple[str, str | None]]:
        """The studies the resource comes from: reportedIn, then its quotes' studies."""
        found: dict[str, str | None] = {}
        for value in self.properties.get(COPKG_NS + "reportedIn", []):
            found.setdefault(str(value.term), value.label)
        for q in self.evidence:
            if q.study is not None:
                found.setdefault(q.study, q.study_label)
        return list(found.items())

    @property
    def graphs(self) -> list[str]:
        return sorted({g for values in self.properties.values() for v in values for g in v.graphs})

    @property
    def shown_properties(self) -> dict[str, list[Value]]:
        """The properties the table lists: not rdf:type, the title or the definition, which the
        header shows (a label predicate stays when it has another value than the title)."""
        shown = {}
        definition_given = False
        for predicate, values in self.properties.items():
            if predicate == RDF_TYPE:
                continue
            if predicate in LABEL_PREDICATES and all(str(v.term) == self.label for v in values):
                continue
            if predicate == COPKG_NS + "hasEvidence" and self.evidence:
                continue  # the evidence section shows the quotes
            if predicate in DEFINITION_PREDICATES and not definition_given and len(values) == 1:
                definition_given = True
                continue
            shown[predicate] = values
        return shown

    def predicate_label(self, predicate: Any) -> str:
        return self.predicate_labels.get(str(predicate)) or curie(predicate)

    def as_json(self) -> dict[str, Any]:
        path = local_path(self.iri) or ""
        return {
            "ok": True,
            "iri": self.iri,
            "label": self.label,
            "definition": self.definition,
            "types": [v.as_json() for v in self.types],
            "graphs": self.graphs,
            "properties": [
                {
                    "predicate": p,
                    "label": self.predicate_label(p),
                    "values": [v.as_json() for v in values],
                }
                for p, values in self.properties.items()
            ],
            "incoming": [
                {
                    "predicate": p,
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
            "studies": [{"iri": s, "label": label} for s, label in self.studies],
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

    def to_plain(self) -> tuple[Any, ...]:
        """The resource as plain values (a query worker's reply is read as plain data only)."""

        def values(table: dict[str, list[Value]]) -> dict[str, list[Any]]:
            return {p: [(tuple(v.term), v.label, v.graphs) for v in vs] for p, vs in table.items()}

        return (self.iri, values(self.properties), values(self.incoming),
                [astuple(q) for q in self.evidence], [astuple(q) for q in self.used_evidence],
                dict(self.predicate_labels), self.incoming_page_size, self.incoming_total,
                self.incoming_page)  # fmt: skip

    @classmethod
    def from_plain(cls, data: tuple[Any, ...]) -> Resource:
        """The resource `to_plain` wrote."""
        iri, properties, incoming, evidence, used, labels, size, total, page = data

        def values(table: dict[str, list[Any]]) -> dict[str, list[Value]]:
            return {p: [Value(Term(*t), label, g) for t, label, g in vs] for p, vs in table.items()}

        return cls(iri, values(properties), values(incoming), [Quote(*q) for q in evidence],
                   [Quote(*q) for q in used], labels, size, total, page)  # fmt: skip
