"""Reading a remote endpoint's answers into rdflib terms: each answer's blank nodes its own, and
Virtuoso's blank nodes in SPARQL results (`nodeID://b10007`) read as blank nodes."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any
from xml.etree import ElementTree

import pyoxigraph as ox
from defusedxml import ElementTree as DefusedET
from rdflib import BNode
from rdflib.term import Node

from copkg.store.results import QueryResult, solutions_result, triples_result
from copkg.store.terms import OxTerm, from_ox

#: How Virtuoso 7.2 writes a blank node in SPARQL JSON and XML results: a `bnode` whose value is
#: `nodeID://b10007`, which is no blank node label (in N-Triples, Turtle and RDF/XML it writes a
#: label, `_:b10007`).
VIRTUOSO_NODE_ID = b"nodeID://"
_RESULTS_XML = "{http://www.w3.org/2005/sparql-results#}"


def readable_blank_nodes(body: bytes, fmt: ox.QueryResultsFormat) -> bytes:
    """The SPARQL results `body` with every blank node labelled `n0`, `n1` ... (one label for
    each value, so the same node keeps one label) where one is written as Virtuoso writes it;
    the body as it is otherwise. Only `bnode` terms change: a literal or IRI `nodeID://...`
    (Virtuoso's `STR()` of a blank node) is kept."""
    if VIRTUOSO_NODE_ID not in body:
        return body
    labels: dict[str, str] = {}

    def label(value: str) -> str:
        return labels.setdefault(value, f"n{len(labels)}")

    if fmt == ox.QueryResultsFormat.JSON:
        doc = json.loads(body)
        for binding in doc.get("results", {}).get("bindings", ()):
            for term in binding.values():
                _relabel_json(term, label)
        return json.dumps(doc, ensure_ascii=False).encode("utf-8")
    if fmt == ox.QueryResultsFormat.XML:
        root = DefusedET.fromstring(body)  # no DTD, no entities
        for node in root.iter(_RESULTS_XML + "bnode"):
            node.text = label(node.text or "")
        written: bytes = ElementTree.tostring(root, encoding="utf-8")
        return written
    return body


def _relabel_json(term: Any, label: Any) -> None:
    if not isinstance(term, dict):
        return
    if term.get("type") == "bnode" and isinstance(term.get("value"), str):
        term["value"] = label(term["value"])
    elif term.get("type") == "triple" and isinstance(term.get("value"), dict):
        for part in term["value"].values():  # RDF-star: a triple's own terms
            _relabel_json(part, label)


class AnswerTerms:
    """Terms of one answer as rdflib terms: each blank node label a new blank node, the same
    throughout this answer and found in no other (SPARQL scopes a label to one result, and a
    server such as Virtuoso labels a node alike in every answer)."""

    def __init__(self) -> None:
        self._blank: dict[str, BNode] = {}

    def __call__(self, term: OxTerm) -> Node:
        if isinstance(term, ox.BlankNode):
            node = self._blank.get(term.value)
            if node is None:
                node = self._blank[term.value] = BNode()
            return node
        return from_ox(term)


def read_solutions(answer: ox.QuerySolutions, limit: int | None) -> QueryResult:
    """The rows of SELECT results, at most `limit` (then marked truncated)."""
    variables = [v.value for v in answer.variables]
    return solutions_result(answer, variables, AnswerTerms(), limit)


def read_graph(quads: Iterable[ox.Quad | ox.Triple], limit: int | None) -> QueryResult:
    """The triples of a CONSTRUCT or DESCRIBE answer, at most `limit` (then marked truncated)."""
    return triples_result(quads, AnswerTerms(), limit)
