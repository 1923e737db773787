"""What the other pages read: the landing page's counts and lists, a named graph's classes,
the rules, the VoID counts and the ontology's graph with each class's instances."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rdflib import Literal, URIRef
from rdflib.term import Node

from copkg.namespaces import BASE, COPKG, ONTOLOGY_GRAPH
from copkg.querying.pages.charts import read_roles, timeline_slug
from copkg.querying.pages.links import curie, href
from copkg.store import QueryResult, Store
from copkg.store.results import plain

_CLASS_COUNTS = """
SELECT ?class (SAMPLE(?l) AS ?label) (COUNT(DISTINCT ?s) AS ?n) WHERE {
  ?s a ?class . OPTIONAL { ?class rdfs:label ?l }
} GROUP BY ?class ORDER BY DESC(?n) ?class
"""

_GRAPH_COUNTS = "SELECT ?g (COUNT(*) AS ?n) WHERE { GRAPH ?g { ?s ?p ?o } } GROUP BY ?g ORDER BY ?g"

_STUDIES = """
SELECT ?study (SAMPLE(?l) AS ?label) (SAMPLE(?t) AS ?title) (COUNT(DISTINCT ?case) AS ?cases)
WHERE { ?study a copkg:Study .
        OPTIONAL { ?study rdfs:label ?l } OPTIONAL { ?study dcterms:title ?t }
        OPTIONAL { ?study copkg:hasCase ?case } }
GROUP BY ?study ORDER BY ?study
"""

_MEMBERS = """
SELECT ?s (SAMPLE(?l) AS ?label) WHERE {
  ?s a ?class . OPTIONAL { ?s rdfs:label|skos:prefLabel ?l } }
GROUP BY ?s ORDER BY ?label ?s
"""


def _members(store: Store, cls: URIRef) -> list[dict[str, str]]:
    rows = store.query(_MEMBERS, bindings={"class": cls}).rows
    return [
        {"iri": str(r["s"]), "label": str(r.get("label") or curie(r["s"])), "href": href(r["s"])}
        for r in rows
    ]


def landing_data(store: Store) -> dict[str, Any]:
    """What the graph holds: studies, cases, roles, risks, counts per class and per graph
    (the web adds the named queries)."""
    classes = [
        {
            "class": str(r["class"]),
            "curie": curie(r["class"]),
            "href": href(r["class"]),
            "label": str(r.get("label") or curie(r["class"])),
            "count": int(str(r["n"])),
        }
        for r in store.query(_CLASS_COUNTS).rows
    ]
    graphs = [
        {"graph": str(r["g"]), "href": href(r["g"]), "count": int(str(r["n"]))}
        for r in store.query(_GRAPH_COUNTS).rows
    ]
    studies = [
        {
            "iri": str(r["study"]),
            "href": href(r["study"]),
            "label": str(r.get("label") or r.get("title") or curie(r["study"])),
            "title": str(r["title"]) if "title" in r else None,
            "cases": int(str(r["cases"])),
        }
        for r in store.query(_STUDIES).rows
    ]
    roles = read_roles(store)
    organisations = _members(store, COPKG.Organisation)
    for org in organisations:
        org["timeline"] = "/timeline/" + timeline_slug(org["iri"])
    return {
        "ok": True,
        "statements": sum(g["count"] for g in graphs),
        "graphs": graphs,
        "classes": classes,
        "studies": studies,
        "cases": _members(store, COPKG.Case),
        "organisations": organisations,
        "roles": roles,
        "risks": _members(store, COPKG.Risk),
        "contexts": _members(store, COPKG.OrganisationalContext),
    }


_GRAPH_CLASSES = (
    "SELECT ?class (COUNT(DISTINCT ?s) AS ?n) WHERE { ?s a ?class } GROUP BY ?class "
    "ORDER BY DESC(?n) ?class"
)


def graph_data(store: Store, iri: str) -> dict[str, Any] | None:
    """A named graph: how many statements and its subjects by class (None: no such graph)."""
    if iri not in store.graphs():
        return None
    rows = store.query(_GRAPH_CLASSES, default_graphs=[iri]).rows
    classes = [{"class": str(r["class"]), "count": int(str(r["n"]))} for r in rows]
    count = store.quad_count(iri)
    return {"ok": True, "graph": iri, "statements": count, "classes": classes}


def graph_counts(store: Store) -> list[tuple[str, int]]:
    """Each named graph with its number of statements (the service description's)."""
    return [(name, store.quad_count(name)) for name in store.graphs()]


_NAMESPACE_MEMBERS = """
SELECT ?s ?p ?o WHERE { ?s ?p ?o . FILTER (STRSTARTS(STR(?s), STR(?ns))) }
ORDER BY ?s ?p
"""


def rules_data(store: Store) -> list[dict[str, Any]]:
    """The inference rules (https://w3id.org/copkg/rules#name), each with its properties."""
    rows = store.query(_NAMESPACE_MEMBERS, bindings={"ns": Literal(BASE + "rules#")}).rows
    rules: dict[str, dict[str, Any]] = {}
    for row in rows:
        entry = rules.setdefault(str(row["s"]), {"iri": str(row["s"]), "properties": {}})
        entry["properties"].setdefault(curie(row["p"]), []).append(plain(row["o"]))
    items = sorted(rules.values(), key=lambda r: r["iri"])
    for item in items:
        item["anchor"] = item["iri"].partition("#")[2]
    return items


_VOID_COUNTS = """
SELECT ?g (COUNT(*) AS ?triples) (COUNT(DISTINCT ?s) AS ?subjects)
       (COUNT(DISTINCT ?o) AS ?objects) (COUNT(DISTINCT ?p) AS ?properties)
WHERE { GRAPH ?g { ?s ?p ?o } } GROUP BY ?g
"""
_VOID_CLASSES = """
SELECT ?class (COUNT(DISTINCT ?s) AS ?entities) WHERE { ?s a ?class } GROUP BY ?class
"""
_VOID_TOTAL = """
SELECT (COUNT(DISTINCT ?s) AS ?subjects) (COUNT(DISTINCT ?o) AS ?objects)
       (COUNT(DISTINCT ?p) AS ?properties) WHERE { ?s ?p ?o }
"""

_GRAPH_FIELDS = ("triples", "subjects", "objects", "properties")


def void_counts(store: Store) -> dict[str, Any]:
    """The VoID counts: per named graph (`graphs`: graph, triples, subjects, objects,
    properties, in the engine's order), per class (`classes`: class, entities) and of the
    whole (`total`: subjects, objects, properties)."""
    graphs = [
        {"graph": str(row["g"]), **{k: int(str(row[k])) for k in _GRAPH_FIELDS}}
        for row in store.query(_VOID_COUNTS).rows
    ]
    classes = [
        {"class": str(row["class"]), "entities": int(str(row["entities"]))}
        for row in store.query(_VOID_CLASSES).rows
    ]
    (totals,) = store.query(_VOID_TOTAL).rows
    total = {k: int(str(totals[k])) for k in ("subjects", "objects", "properties")}
    return {"graphs": graphs, "classes": classes, "total": total}


def ontology_triples(store: Store) -> list[tuple[Node, Node, Node]]:
    """The ontology named graph (the ontology and the shared vocabularies)."""
    result = store.query(
        "CONSTRUCT { ?s ?p ?o } WHERE { ?s ?p ?o }", default_graphs=[str(ONTOLOGY_GRAPH)]
    )
    return result.triples


def ontology_twin(store: Store, media_type: str) -> bytes:
    """The ontology named graph in an RDF format."""
    return QueryResult("graph", triples=ontology_triples(store)).serialize(media_type)


#: At most this many instances are listed under a class (the count says how many there are).
MAX_INSTANCES = 12

_INSTANCES = """
SELECT ?class ?s ?label WHERE {
  ?s a ?class .
  FILTER (STRSTARTS(STR(?class), STR(copkg:)) && isIRI(?s))
  OPTIONAL { ?s rdfs:label ?label FILTER (LANGMATCHES(LANG(?label), "en") || LANG(?label) = "") }
}
"""


@dataclass(frozen=True)
class Instances:
    """Some instances of a class (IRI, label), and how many it has in all."""

    count: int
    examples: tuple[tuple[URIRef, str], ...]


def class_instances(store: Store, limit: int = MAX_INSTANCES) -> dict[URIRef, Instances]:
    """The direct instances of each copkg class in the store, the first `limit` by label."""
    found: dict[URIRef, dict[URIRef, str]] = {}
    for row in store.query(_INSTANCES).rows:
        members = found.setdefault(URIRef(str(row["class"])), {})
        subject = URIRef(str(row["s"]))
        label = str(row["label"]) if "label" in row else None
        if subject not in members or (label and members[subject] == curie(subject)):
            members[subject] = label or curie(subject)

    def order(item: tuple[URIRef, str]) -> tuple[str, str]:
        return item[1].lower(), str(item[0])

    return {
        cls: Instances(len(members), tuple(sorted(members.items(), key=order)[:limit]))
        for cls, members in found.items()
    }
