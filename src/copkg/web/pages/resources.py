"""One page per resource (/id/..., /graph/...) with its RDF and JSON twins, and the rules page."""

from __future__ import annotations

from typing import Any

from flask import Response, current_app, jsonify, render_template, request
from markupsafe import Markup
from rdflib import Literal, URIRef
from rdflib.namespace import XSD
from rdflib.term import Node

from copkg.errors import CopkgError
from copkg.namespaces import BASE, COPKG
from copkg.store import QueryResult, Store
from copkg.store.results import plain
from copkg.web import get_store
from copkg.web.pages.charts import timeline_slug
from copkg.web.pages.citation import study_citation
from copkg.web.pages.explanations import EXPLAINED_BY, read_explanations
from copkg.web.pages.links import (
    HTML,
    RDF_MEDIA,
    TWINS,
    alternates,
    bp,
    curie,
    iri_of_path,
    split_suffix,
    twin_response,
    wants,
)
from copkg.web.pages.page_rows import mentioned
from copkg.web.pages.resource_data import (
    TWIN,
    organisation_events,
    predicate_labels,
    read_resource,
)
from copkg.web.pages.svg import timeline_svg

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
    """Properties whose declared range is an XSD integer subtype (read once per app)."""
    cache = current_app.extensions.setdefault("copkg.pages", {})
    if "integer_ranges" not in cache:
        rows = store.query(_INTEGER_RANGES).rows
        cache["integer_ranges"] = {row["p"]: str(row["d"]) for row in rows}
    ranges: dict[Node, str] = cache["integer_ranges"]
    return ranges


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


def resource_twin(store: Store, iri: URIRef, media_type: str) -> bytes:
    """The resource's statements (and its quotes') in an RDF format, with the datatypes the
    sources give (see _SUBTYPES)."""
    result = store.query(TWIN, bindings={"s": iri})
    triples = declared_datatypes(result.triples, integer_ranges(store))
    return QueryResult("graph", triples=triples).serialize(media_type)


_MENTIONED = "ASK { { ?s ?p ?o } UNION { ?o ?p ?s } }"


def _in_graph(store: Store, iri: URIRef) -> bool:
    """Whether the graph has statements about or to `iri` (one lookup, not a page's reading)."""
    return mentioned(store, iri, _MENTIONED)


def _serve_resource(path: str) -> Response | str:
    base_path, suffix = split_suffix(path)
    store = get_store()
    iri = iri_of_path(path)
    given = request.args.get("incoming", "1")
    if not given.isdigit() or int(given) < 1:
        raise CopkgError("incoming must be a page number from 1", status=400)
    page = int(given)
    # an IRI that itself ends in a suffix is read as it is; any other as the suffix's twin
    resource = read_resource(store, iri, page) if suffix and _in_graph(store, iri) else None
    if resource is None:
        iri = iri_of_path(base_path)
        resource = read_resource(store, iri, page)
    else:
        base_path, suffix = path, None
    if resource is None:
        raise CopkgError(f"no resource {iri} in the graph", status=404)
    if page > resource.incoming_pages:
        raise CopkgError(
            f"page {page} of the links to {iri} is past the end: there are "
            f"{resource.incoming_total}, {resource.incoming_page_size} a page",
            status=400,
        )
    media_type = wants(suffix)
    link_header = alternates(base_path, RDF_MEDIA | {"application/json"})
    if media_type == "application/json":
        response = jsonify(resource.as_json())
        response.headers["Link"] = link_header
        response.headers["Vary"] = "Accept"
        return response
    if media_type in RDF_MEDIA:
        return twin_response(resource_twin(store, iri, media_type), media_type, link_header)
    timeline = None
    timeline_href = None
    if resource.has_type(COPKG.Organisation):
        events = organisation_events(store, iri)
        timeline_href = "/timeline/" + timeline_slug(str(iri))
        if events:
            timeline = Markup(timeline_svg(events, f"Timeline of {resource.label}"))
    quoted = {q.study for q in [*resource.evidence, *resource.used_evidence] if q.study}
    citations = {study: study_citation(store, study) for study in sorted(quoted)}
    explanations, more_explanations = read_explanations(store, iri)
    html = render_template(
        "resource.html",
        r=resource,
        path=base_path,
        twins=TWINS,
        timeline=timeline,
        timeline_href=timeline_href,
        citations=citations,
        explanations=explanations,
        more_explanations=more_explanations,
        explained_by=EXPLAINED_BY if explanations else (),
    )
    response = Response(html, mimetype=HTML)
    response.headers["Link"] = link_header
    response.headers["Vary"] = "Accept"
    return response


@bp.get("/id/<path:rest>")
def resource_page(rest: str) -> Response | str:
    """The page of https://w3id.org/copkg/id/... (and its twins by suffix or Accept)."""
    return _serve_resource("/id/" + rest)


@bp.get("/graph/<path:rest>")
def graph_page(rest: str) -> Response | str:
    """A named graph: how many statements and what it holds, by class."""
    base_path, suffix = split_suffix("/graph/" + rest)
    if suffix not in (None, ".json"):
        raise CopkgError("a graph page has an HTML and a JSON twin only", status=404)
    store = get_store()
    iri = str(iri_of_path(base_path))
    if iri not in store.graphs():
        return _serve_resource("/graph/" + rest)
    rows = store.query(
        "SELECT ?class (COUNT(DISTINCT ?s) AS ?n) WHERE { ?s a ?class } GROUP BY ?class "
        "ORDER BY DESC(?n) ?class",
        default_graphs=[iri],
    ).rows
    classes = [{"class": str(r["class"]), "count": int(str(r["n"]))} for r in rows]
    data = {"ok": True, "graph": iri, "statements": store.quad_count(iri), "classes": classes}
    if wants(suffix, [HTML, "application/json"]) == "application/json":
        return jsonify(data)
    return render_template("graph.html", data=data, path=base_path, labels=predicate_labels(store))


_NAMESPACE_MEMBERS = """
SELECT ?s ?p ?o WHERE { ?s ?p ?o . FILTER (STRSTARTS(STR(?s), STR(?ns))) }
ORDER BY ?s ?p
"""


@bp.get("/rules")
@bp.get("/rules.json")
def rules_page() -> Response | str:
    """The inference rules (https://w3id.org/copkg/rules#name), each with its SPARQL text."""
    store = get_store()
    rows = store.query(_NAMESPACE_MEMBERS, bindings={"ns": Literal(BASE + "rules#")}).rows
    rules: dict[str, dict[str, Any]] = {}
    for row in rows:
        entry = rules.setdefault(str(row["s"]), {"iri": str(row["s"]), "properties": {}})
        entry["properties"].setdefault(curie(row["p"]), []).append(plain(row["o"]))
    items = sorted(rules.values(), key=lambda r: r["iri"])
    for item in items:
        item["anchor"] = item["iri"].partition("#")[2]
    if request.path.endswith(".json") or wants(None, [HTML, "application/json"]) != HTML:
        return jsonify({"ok": True, "rules": items})
    return render_template("rules.html", rules=items)
