"""What the advisor's answer says about a resource it names: its label, and a fact's label,
statement, types, voice and evidence. Read off the store's indexes where it has them (a few
lookups a resource, where a SPARQL query costs a millisecond or two to plan and convert),
else by query; the rows are those of the query either way."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pyoxigraph as ox
from rdflib import URIRef
from rdflib.term import Node

from copkg.namespaces import COPKG
from copkg.store import Store
from copkg.store.terms import from_ox

DESCRIBE = """
SELECT ?label ?statement ?type ?voice ?quote ?text ?page ?study ?studyLabel WHERE {
  { ?fact rdfs:label|skos:prefLabel ?label }
  UNION { ?fact copkg:statement ?statement }
  UNION { ?fact copkg:voice ?voice }
  UNION { ?fact a ?type }
  UNION {
    ?fact copkg:hasEvidence ?quote .
    ?quote copkg:quoteText ?text .
    OPTIONAL { ?quote copkg:page ?page }
    OPTIONAL { ?quote copkg:quotedIn ?study .
               OPTIONAL { ?study rdfs:label ?studyLabel } }
  }
}
"""

LABEL = (
    "SELECT ?l WHERE { ?s rdfs:label|skos:prefLabel|dcterms:title ?l } "
    "ORDER BY DESC(LANGMATCHES(LANG(?l), 'en')) LIMIT 1"
)


def _node(iri: str) -> ox.NamedNode:
    return ox.NamedNode(iri)


_RDFS_LABEL = _node("http://www.w3.org/2000/01/rdf-schema#label")
_PREF_LABEL = _node("http://www.w3.org/2004/02/skos/core#prefLabel")
_TITLE = _node("http://purl.org/dc/terms/title")
_TYPE = _node("http://www.w3.org/1999/02/22-rdf-syntax-ns#type")
_STATEMENT = _node(str(COPKG.statement))
_VOICE = _node(str(COPKG.voice))
_EVIDENCE = _node(str(COPKG.hasEvidence))
_TEXT = _node(str(COPKG.quoteText))
_PAGE = _node(str(COPKG.page))
_QUOTED_IN = _node(str(COPKG.quotedIn))


class Describer:
    """Labels and descriptions of resources, from `store` (whose `query` may be one that keeps
    answers per build) or, when `native` is given, from its indexes; `memo` keeps what was
    read (a dict kept per build, or None for a store that can change)."""

    def __init__(
        self, store: Store, native: ox.Store | None, memo: dict[Any, Any] | None = None
    ) -> None:
        self.store = store
        self.native = native
        self.memo = memo

    def _objects(self, subject: ox.NamedNode | ox.BlankNode, predicate: ox.NamedNode) -> list[Any]:
        assert self.native is not None
        found = [q.object for q in self.native.quads_for_pattern(subject, predicate, None)]
        return found if len(found) <= 1 else list(dict.fromkeys(found))

    def label(self, iri: URIRef) -> Node | None:
        """A label of the resource (rdfs:label, skos:prefLabel, dcterms:title), English first."""
        if self.memo is None:
            return self._label(iri)
        key = ("label", iri)
        if key not in self.memo:
            self.memo[key] = self._label(iri)
        found: Node | None = self.memo[key]
        return found

    def _label(self, iri: URIRef) -> Node | None:
        if self.native is None:
            rows = self.store.query(LABEL, bindings={"s": iri}).rows
            return rows[0]["l"] if rows else None
        subject = _node(str(iri))
        found = [o for p in (_RDFS_LABEL, _PREF_LABEL, _TITLE) for o in self._objects(subject, p)]
        english = [o for o in found if isinstance(o, ox.Literal) and _english(o.language)]
        chosen = (english or found or [None])[0]
        return from_ox(chosen) if chosen is not None else None

    def rows(self, iri: URIRef) -> list[dict[str, Node]]:
        """The rows of DESCRIBE for the resource."""
        if self.memo is None:
            return self._described(iri)
        key = ("rows", iri)
        found: list[dict[str, Node]] | None = self.memo.get(key)
        if found is None:
            found = self.memo[key] = self._described(iri)
        return found

    def _described(self, iri: URIRef) -> list[dict[str, Node]]:
        if self.native is None:
            return list(self.store.query(DESCRIBE, bindings={"fact": iri}).rows)
        return list(self._rows(_node(str(iri))))

    def _rows(self, fact: ox.NamedNode) -> Iterator[dict[str, Node]]:
        for predicate in (_RDFS_LABEL, _PREF_LABEL):
            for label in self._objects(fact, predicate):
                yield {"label": from_ox(label)}
        for name, predicate in (("statement", _STATEMENT), ("voice", _VOICE), ("type", _TYPE)):
            for value in self._objects(fact, predicate):
                yield {name: from_ox(value)}
        for quote in self._objects(fact, _EVIDENCE):
            if not isinstance(quote, ox.NamedNode | ox.BlankNode):
                continue
            pages = self._objects(quote, _PAGE) or [None]
            studies = self._objects(quote, _QUOTED_IN) or [None]
            for text in self._objects(quote, _TEXT):
                for page in pages:
                    for study in studies:
                        labels = (
                            self._study_labels(study)
                            if isinstance(study, ox.NamedNode | ox.BlankNode)
                            else []
                        )
                        for study_label in labels or [None]:
                            row = {"quote": from_ox(quote), "text": from_ox(text)}
                            for key, value in (
                                ("page", page),
                                ("study", study),
                                ("studyLabel", study_label),
                            ):
                                if value is not None:
                                    row[key] = from_ox(value)
                            yield row

    def _study_labels(self, study: ox.NamedNode | ox.BlankNode) -> list[Any]:
        """A quoted study's rdfs:labels (kept per build: many facts quote one study)."""
        if self.memo is None:
            return self._objects(study, _RDFS_LABEL)
        key = ("study labels", study)
        found: list[Any] | None = self.memo.get(key)
        if found is None:
            found = self.memo[key] = self._objects(study, _RDFS_LABEL)
        return found


def _english(language: str | None) -> bool:
    """LANGMATCHES(language, "en")."""
    tag = (language or "").lower()
    return tag == "en" or tag.startswith("en-")
