"""Linked-data pages: the landing page, one page per resource (with RDF and JSON twins),
the ontology, an organisation's timeline, the role x context risk matrix and the query page."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from flask import Blueprint, Response, current_app, jsonify, render_template, request, url_for
from markupsafe import Markup
from rdflib import BNode, Literal, URIRef
from rdflib.namespace import RDF
from rdflib.term import Node

from copkg.errors import CopkgError
from copkg.namespaces import BASE, COPKG, ONTOLOGY_GRAPH, shorten
from copkg.store import QueryResult, Store
from copkg.store.results import plain
from copkg.store.scan import bind_values
from copkg.store.terms import to_ox as ox_term
from copkg.web import get_store, named_queries
from copkg.web.cache import store_identity
from copkg.web.pages.ontology_docs import ontology_html
from copkg.web.pages.svg import Axis, MatrixCell, TimelineEvent, matrix_svg, timeline_svg

bp = Blueprint("pages", __name__)

ROOT_IRI = BASE.rstrip("/")  # https://w3id.org/copkg

#: Twin suffixes and the media type each stands for; HTML is the page itself.
TWINS: dict[str, str] = {
    ".ttl": "text/turtle",
    ".jsonld": "application/ld+json",
    ".nt": "application/n-triples",
    ".rdf": "application/rdf+xml",
    ".json": "application/json",
}
HTML = "text/html"
OFFERED = [HTML, "application/json", *(t for t in TWINS.values() if t != "application/json")]
RDF_MEDIA = {t for t in TWINS.values() if t != "application/json"}

LABEL_PATH = "rdfs:label|skos:prefLabel|dcterms:title"


# -- IRIs and links --------------------------------------------------------------------------


def local_path(iri: Node | str) -> str | None:
    """The path that serves an IRI of copkg (`https://w3id.org/copkg/id/x` -> `/id/x`)."""
    text = str(iri)
    if not text.startswith(BASE):
        return None
    rest = text[len(ROOT_IRI) :]
    path, sep, fragment = rest.partition("#")
    result = quote(path, safe="/:@!$&'()*+,;=-._~")
    return result + (sep + quote(fragment, safe="-._~") if sep else "")


def href(iri: Node | str) -> str:
    """Where a link to an IRI goes: its page here, or the IRI itself."""
    return local_path(iri) or str(iri)


def curie(iri: Node | str) -> str:
    """An IRI shortened with the copkg prefixes (longest namespace first)."""
    return shorten(str(iri)) or str(iri)


def iri_of_path(path: str) -> URIRef:
    """The IRI a local path stands for (the inverse of local_path)."""
    return URIRef(ROOT_IRI + path)


@bp.app_template_filter("href")
def _href_filter(iri: Any) -> str:
    return href(iri)


@bp.app_template_filter("curie")
def _curie_filter(iri: Any) -> str:
    return curie(iri)


@bp.app_template_global("link")
def link(iri: Any, label: Any = None) -> Markup:
    """An <a> to a resource with its label (or CURIE) as text."""
    text = str(label) if label else curie(iri)
    return Markup('<a href="{}" title="{}">{}</a>').format(href(iri), str(iri), text)


def _wants(suffix: str | None, offered: list[str] | None = None) -> str:
    """The media type asked for: a suffix wins, then the Accept header (406 if none fits)."""
    if suffix:
        return TWINS[suffix]
    offered = offered or OFFERED
    if not request.accept_mimetypes:
        return offered[0]
    best = request.accept_mimetypes.best_match(offered)
    if best is None:
        raise CopkgError(
            f"cannot serve {request.headers.get('Accept')}; offered: {', '.join(offered)}",
            status=406,
        )
    return best


def _split_suffix(path: str) -> tuple[str, str | None]:
    for suffix in TWINS:
        if path.endswith(suffix) and len(path) > len(suffix):
            return path[: -len(suffix)], suffix
    return path, None


def _alternates(path: str, types: Iterable[str]) -> str:
    suffix_of = {t: s for s, t in TWINS.items()}
    links = [f'<{path}>; rel="canonical"; type="text/html"']
    links += [f'<{path}{suffix_of[t]}>; rel="alternate"; type="{t}"' for t in types]
    return ", ".join(links)


def _twin_response(body: bytes | str, media_type: str, link_header: str | None = None) -> Response:
    charset = "; charset=utf-8" if not media_type.startswith("application/ld") else ""
    response = Response(body, mimetype=media_type)
    response.headers["Content-Type"] = media_type + charset
    response.headers["Vary"] = "Accept"
    if link_header:
        response.headers["Link"] = link_header
    return response


# -- resources -------------------------------------------------------------------------------

_OUTGOING = """
SELECT ?s ?g ?p ?o ?oLabel ?quote ?text ?page ?study ?studyLabel ?voice WHERE {
  { GRAPH ?g { ?s ?p ?o }
    OPTIONAL { ?o rdfs:label|skos:prefLabel ?oLabel
               FILTER (LANG(?oLabel) = "" || LANGMATCHES(LANG(?oLabel), "en")) } }
  UNION
  { ?s copkg:hasEvidence ?quote . ?quote copkg:quoteText ?text .
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
SELECT ?s ?fact ?factLabel ?quote ?text ?page ?study ?studyLabel WHERE {
  ?s copkg:usedFact ?fact .
  OPTIONAL { ?fact rdfs:label ?factLabel }
  ?fact copkg:hasEvidence ?quote . ?quote copkg:quoteText ?text .
  OPTIONAL { ?quote copkg:page ?page }
  OPTIONAL { ?quote copkg:quotedIn ?study . OPTIONAL { ?study rdfs:label ?studyLabel } }
}
ORDER BY ?fact ?page
"""

_TWIN = """
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

    def as_json(self) -> dict[str, Any]:
        data = {
            "quote": str(self.iri),
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


def _page_number(value: Node | None) -> int | None:
    if value is None:
        return None
    text = str(value)
    return int(text) if text.isdigit() else None


def predicate_labels(store: Store) -> dict[str, str]:
    """Labels of the ontology's classes and properties (read once per app)."""
    cache = current_app.extensions.setdefault("copkg.pages", {})
    if "predicate_labels" not in cache:
        rows = store.query(_PREDICATE_LABELS, default_graphs=None).rows
        labels: dict[str, str] = {}
        for row in rows:
            labels.setdefault(str(row["term"]), str(row["label"]))
        cache["predicate_labels"] = labels
    return cache["predicate_labels"]


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
    return counts[iri]


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
    rows = store.query(text, bindings={"o": iri}).rows
    if len(rows) > INCOMING_PAGE or (not rows and page > 1):
        total = incoming_count(store, iri)
    else:
        total = offset + len(rows)
    rows = rows[:INCOMING_PAGE]
    labels: dict[Node, str] = {}
    subjects = sorted({str(ox_term(row["s"])) for row in rows if isinstance(row["s"], URIRef)})
    if subjects:
        for row in store.query(bind_values(_SUBJECT_LABELS, {"s": subjects})).rows:
            labels.setdefault(row["s"], str(row["label"]))
    incoming: dict[URIRef, dict[Node, Value]] = {}
    for row in rows:
        values = incoming.setdefault(row["p"], {})
        value = values.setdefault(row["s"], Value(row["s"], labels.get(row["s"])))
        if str(row["g"]) not in value.graphs:
            value.graphs.append(str(row["g"]))
    return incoming, total


def read_resource(store: Store, iri: URIRef, incoming_page: int = 1) -> Resource | None:
    """A resource's outgoing statements and evidence and a page of its incoming links (the
    first by default), or None if it has none."""
    properties: dict[URIRef, dict[Node, Value]] = {}
    quotes: dict[URIRef, Quote] = {}
    for row in store.query(_OUTGOING, bindings={"s": iri}).rows:
        if "quote" in row:
            quote_iri = URIRef(str(row["quote"]))
            known = quotes.get(quote_iri)
            quotes[quote_iri] = Quote(
                quote_iri,
                str(row["text"]),
                _page_number(row.get("page")),
                row.get("study") or (known.study if known else None),
                str(row["studyLabel"])
                if "studyLabel" in row
                else (known.study_label if known else None),
                row.get("voice") or (known.voice if known else None),
            )
            continue
        values = properties.setdefault(row["p"], {})
        value = values.setdefault(row["o"], Value(row["o"], None))
        if "oLabel" in row and value.label is None:
            value.label = str(row["oLabel"])
        graph = str(row["g"])
        if graph not in value.graphs:
            value.graphs.append(graph)
    incoming, incoming_total = read_incoming(store, iri, incoming_page)
    if not properties and not incoming_total:
        return None
    used: list[Quote] = []
    if COPKG.usedFact in properties:
        for row in store.query(_USED_EVIDENCE, bindings={"s": iri}).rows:
            used.append(
                Quote(
                    URIRef(str(row["quote"])),
                    str(row["text"]),
                    _page_number(row.get("page")),
                    row.get("study"),
                    str(row["studyLabel"]) if "studyLabel" in row else None,
                    about=row["fact"],
                    about_label=str(row["factLabel"]) if "factLabel" in row else None,
                )
            )
    ordered = {
        p: sorted(v.values(), key=_value_key)
        for p, v in sorted(properties.items(), key=_predicate_key)
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


def resource_twin(store: Store, iri: URIRef, media_type: str) -> bytes:
    """The resource's statements (and its quotes') in an RDF format."""
    result = store.query(_TWIN, bindings={"s": iri})
    return QueryResult("graph", triples=result.triples).serialize(media_type)


def _serve_resource(path: str) -> Response | str:
    base_path, suffix = _split_suffix(path)
    store = get_store()
    iri = iri_of_path(path)
    given = request.args.get("incoming", "1")
    if not given.isdigit() or int(given) < 1:
        raise CopkgError("incoming must be a page number from 1", status=400)
    page = int(given)
    resource = read_resource(store, iri, page) if suffix else None
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
            f"{resource.incoming_total}, {INCOMING_PAGE} a page",
            status=400,
        )
    media_type = _wants(suffix)
    link_header = _alternates(base_path, RDF_MEDIA | {"application/json"})
    if media_type == "application/json":
        response = jsonify(resource.as_json())
        response.headers["Link"] = link_header
        response.headers["Vary"] = "Accept"
        return response
    if media_type in RDF_MEDIA:
        return _twin_response(resource_twin(store, iri, media_type), media_type, link_header)
    timeline = None
    if resource.has_type(COPKG.Organisation):
        events = organisation_events(store, iri)
        if events:
            timeline = Markup(timeline_svg(events, f"Timeline of {resource.label}"))
    html = render_template(
        "resource.html", r=resource, path=base_path, twins=TWINS, timeline=timeline
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
    base_path, suffix = _split_suffix("/graph/" + rest)
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
    if _wants(suffix, [HTML, "application/json"]) == "application/json":
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
    if request.path.endswith(".json") or _wants(None, [HTML, "application/json"]) != HTML:
        return jsonify({"ok": True, "rules": items})
    return render_template("rules.html", rules=items)


# -- the landing page ------------------------------------------------------------------------

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
_ROLES = """
SELECT ?role ?roleLabel ?objectiveLabel ?risk ?riskLabel ?factor ?factorLabel
       (MIN(?i) AS ?index) WHERE {
  ?role a copkg:ManagementRole .
  OPTIONAL { ?role rdfs:label ?roleLabel }
  OPTIONAL { ?role copkg:hasObjective/(rdfs:label|skos:prefLabel) ?objectiveLabel }
  OPTIONAL { ?role copkg:hasRisk ?risk . OPTIONAL { ?risk rdfs:label ?riskLabel } }
  OPTIONAL { ?role copkg:hasContingency ?factor . OPTIONAL { ?factor rdfs:label ?factorLabel } }
  OPTIONAL { ?cell copkg:cellAbout ?role ; copkg:rowIndex ?i }
} GROUP BY ?role ?roleLabel ?objectiveLabel ?risk ?riskLabel ?factor ?factorLabel
ORDER BY ?index ?roleLabel
"""


def _members(store: Store, cls: URIRef) -> list[dict[str, str]]:
    rows = store.query(_MEMBERS, bindings={"class": cls}).rows
    return [
        {"iri": str(r["s"]), "label": str(r.get("label") or curie(r["s"])), "href": href(r["s"])}
        for r in rows
    ]


def landing_data(store: Store) -> dict[str, Any]:
    """What the graph holds: studies, cases, roles, risks, counts per class and per graph."""
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
    roles = []
    seen: set[str] = set()
    for r in store.query(_ROLES).rows:
        if str(r["role"]) in seen:
            continue
        seen.add(str(r["role"]))
        roles.append(
            {
                "iri": str(r["role"]),
                "href": href(r["role"]),
                "label": str(r.get("roleLabel") or curie(r["role"])),
                "objective": str(r["objectiveLabel"]) if "objectiveLabel" in r else None,
                "risk": str(r["risk"]) if "risk" in r else None,
                "riskLabel": str(r["riskLabel"]) if "riskLabel" in r else None,
                "factor": str(r["factor"]) if "factor" in r else None,
                "factorLabel": str(r["factorLabel"]) if "factorLabel" in r else None,
            }
        )
    organisations = _members(store, COPKG.Organisation)
    for org in organisations:
        org["timeline"] = "/timeline/" + _slug(org["iri"])
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
        "queries": _named_query_summaries(),
    }


def _named_query_summaries() -> list[dict[str, str]]:
    return [
        {
            "name": q.name,
            "summary": q.summary,
            "api": f"/api/queries/{q.name}",
            "query": f"/query?name={q.name}",
        }
        for q in named_queries().values()
    ]


@bp.get("/")
@bp.get("/index.json")
def landing() -> Response | str:
    """The landing page: what the graph holds, with links and example queries."""
    store = get_store()
    suffix = ".json" if request.path.endswith(".json") else None
    data = landing_data(store)
    if _wants(suffix, [HTML, "application/json"]) == "application/json":
        return jsonify(data)
    response = Response(render_template("landing.html", d=data), mimetype=HTML)
    response.headers["Link"] = '</index.json>; rel="alternate"; type="application/json"'
    response.headers["Vary"] = "Accept"
    return response


# -- the ontology ----------------------------------------------------------------------------

ONTOLOGY_TWINS = {
    ".ttl": "text/turtle",
    ".owl": "application/rdf+xml",
    ".rdf": "application/rdf+xml",
    ".nt": "application/n-triples",
    ".jsonld": "application/ld+json",
}


def ontology_triples(store: Store) -> list[tuple[Node, Node, Node]]:
    """The ontology named graph (the ontology and the shared vocabularies)."""
    result = store.query(
        "CONSTRUCT { ?s ?p ?o } WHERE { ?s ?p ?o }", default_graphs=[str(ONTOLOGY_GRAPH)]
    )
    return result.triples


@bp.get("/ontology")
@bp.get("/ontology<any('.ttl', '.owl', '.rdf', '.nt', '.jsonld'):suffix>")
def ontology(suffix: str | None = None) -> Response | str:
    """The ontology: documentation for people, Turtle / RDF/XML / ... for tools."""
    store = get_store()
    offered = [
        HTML,
        "text/turtle",
        "application/rdf+xml",
        "application/n-triples",
        "application/ld+json",
    ]
    media_type = ONTOLOGY_TWINS[suffix] if suffix else _wants(None, offered)
    link_header = ", ".join(
        f'</ontology{s}>; rel="alternate"; type="{t}"'
        for s, t in ONTOLOGY_TWINS.items()
        if s != ".rdf"
    )
    if media_type != HTML:
        triples = ontology_triples(store)
        body = QueryResult("graph", triples=triples).serialize(media_type)
        return _twin_response(body, media_type, link_header)
    cache = current_app.extensions.setdefault("copkg.pages", {})
    if "ontology_html" not in cache:
        cache["ontology_html"] = ontology_html(ontology_triples(store))
    response = Response(
        render_template("ontology.html", body=Markup(cache["ontology_html"])), mimetype=HTML
    )
    response.headers["Link"] = link_header
    response.headers["Vary"] = "Accept"
    return response


# -- timelines -------------------------------------------------------------------------------

_ORGANISATIONS = """
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
ORDER BY ?date ?label
"""


def _slug(iri: str) -> str:
    return re.split(r"[#/]", iri.rstrip("/"))[-1]


def organisation_events(store: Store, org: URIRef) -> list[TimelineEvent]:
    """The dated events of an organisation (and of the collectives it hosts)."""
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


@bp.get("/timeline/<path:slug>")
def timeline(slug: str) -> Response | str:
    """An organisation's dated timeline: HTML page, `.svg` picture or `.json` events."""
    suffix = None
    for candidate in (".svg", ".json"):
        if slug.endswith(candidate):
            slug, suffix = slug[: -len(candidate)], candidate
    if not re.fullmatch(r"[A-Za-z0-9_\-]+(/[A-Za-z0-9_\-]+)?", slug):
        raise CopkgError(f"no organisation {slug!r}", status=404)
    store = get_store()
    rows = store.query(_ORGANISATIONS, bindings={"suffix": Literal("/" + slug)}).rows
    if not rows:
        raise CopkgError(f"no organisation {slug!r} in the graph", status=404)
    org = rows[0]["org"]
    resource = read_resource(store, org)
    label = resource.label if resource else slug
    events = organisation_events(store, org)
    svg = timeline_svg(events, f"Timeline of {label}")
    if suffix == ".svg":
        return Response(svg, mimetype="image/svg+xml")
    if suffix == ".json" or _wants(None, [HTML, "application/json"]) == "application/json":
        return jsonify(
            {
                "ok": True,
                "organisation": str(org),
                "label": label,
                "events": [e.__dict__ for e in events],
            }
        )
    return render_template(
        "timeline.html", org=org, label=label, events=events, svg=Markup(svg), slug=slug
    )


# -- the risk matrix -------------------------------------------------------------------------

_MATRIX_CELLS = """
SELECT ?role ?context ?assessment ?assessmentLabel ?riskLabel ?ruleLabel WHERE {
  ?context copkg:riskyRole ?role .
  OPTIONAL {
    ?assessment a copkg:RiskAssessment ; copkg:inContext ?context ; copkg:assessedRole ?role .
    OPTIONAL { ?assessment rdfs:label ?assessmentLabel }
    OPTIONAL { ?assessment copkg:assessedRisk/rdfs:label ?riskLabel }
    OPTIONAL { ?assessment copkg:derivedBy/rdfs:label ?ruleLabel }
  }
}
ORDER BY ?role ?context ?assessment
"""
_MATRIX_CONTEXTS = """
SELECT ?context (SAMPLE(?l) AS ?label) (SAMPLE(?caseL) AS ?caseLabel) (SAMPLE(?d) AS ?start)
       (SAMPLE(?f) AS ?favourability) WHERE {
  ?context a copkg:OrganisationalContext .
  OPTIONAL { ?context rdfs:label ?l }
  OPTIONAL { ?context copkg:ofCase/rdfs:label ?caseL }
  OPTIONAL { ?context copkg:startDate ?d }
  OPTIONAL { ?context copkg:favourability/(rdfs:label|skos:prefLabel) ?f }
} GROUP BY ?context ORDER BY ?caseLabel ?start ?label
"""


def matrix_data(store: Store) -> dict[str, Any]:
    """Roles as rows, contexts as columns, the risky cells with their explanations."""
    rows = landing_data_roles(store)
    columns = [
        {
            "iri": str(r["context"]),
            "href": href(r["context"]),
            "label": str(r.get("label") or curie(r["context"])),
            "case": str(r["caseLabel"]) if "caseLabel" in r else None,
            "favourability": str(r["favourability"]) if "favourability" in r else None,
        }
        for r in store.query(_MATRIX_CONTEXTS).rows
    ]
    cells: dict[tuple[str, str], dict[str, Any]] = {}
    for r in store.query(_MATRIX_CELLS).rows:
        key = (str(r["role"]), str(r["context"]))
        cell = cells.setdefault(key, {"role": key[0], "context": key[1], "assessments": []})
        if "assessment" in r:
            cell["assessments"].append(
                {
                    "iri": str(r["assessment"]),
                    "href": href(r["assessment"]),
                    "label": str(r.get("assessmentLabel") or curie(r["assessment"])),
                    "risk": str(r["riskLabel"]) if "riskLabel" in r else None,
                    "rule": str(r["ruleLabel"]) if "ruleLabel" in r else None,
                }
            )
    return {"ok": True, "roles": rows, "contexts": columns, "cells": list(cells.values())}


def landing_data_roles(store: Store) -> list[dict[str, Any]]:
    roles = []
    seen: set[str] = set()
    for r in store.query(_ROLES).rows:
        if str(r["role"]) in seen:
            continue
        seen.add(str(r["role"]))
        roles.append(
            {
                "iri": str(r["role"]),
                "href": href(r["role"]),
                "label": str(r.get("roleLabel") or curie(r["role"])),
                "risk": str(r["riskLabel"]) if "riskLabel" in r else None,
            }
        )
    return roles


def matrix_picture(data: Mapping[str, Any]) -> str:
    rows = [Axis(r["iri"], r["label"], r["href"], r.get("risk")) for r in data["roles"]]
    columns = [
        Axis(
            c["iri"],
            c["label"],
            c["href"],
            " - ".join(x for x in (c["case"], c["label"], c["favourability"]) if x),
        )
        for c in data["contexts"]
    ]
    cells = []
    for cell in data["cells"]:
        first = cell["assessments"][0] if cell["assessments"] else None
        title = (
            "; ".join(
                a["label"] + (f" - risk: {a['risk']}" if a["risk"] else "")
                for a in cell["assessments"]
            )
            or "risky"
        )
        cells.append(
            MatrixCell(
                cell["role"],
                cell["context"],
                title,
                first["href"] if first else href(cell["context"]),
            )
        )
    return matrix_svg(rows, columns, cells, "Management roles x organisational contexts")


@bp.get("/matrix")
@bp.get("/matrix<any('.svg', '.json'):suffix>")
def matrix(suffix: str | None = None) -> Response | str:
    """The role x context risk matrix, cells from copkg:riskyRole linked to the explanations."""
    data = matrix_data(get_store())
    if suffix == ".svg":
        return Response(matrix_picture(data), mimetype="image/svg+xml")
    if suffix == ".json" or _wants(None, [HTML, "application/json"]) == "application/json":
        return jsonify(data)
    lookup = {(c["role"], c["context"]): c for c in data["cells"]}
    return render_template("matrix.html", d=data, svg=Markup(matrix_picture(data)), lookup=lookup)


# -- the query page --------------------------------------------------------------------------


@bp.get("/query")
def query_page() -> str:
    """A SPARQL editor with the named queries as examples, run against /sparql."""
    return render_template(
        "query.html", initial=request.args.get("name", ""), sparql_url=_sparql_url()
    )


def _sparql_url() -> str:
    try:
        return url_for("sparql.sparql")
    except Exception:  # noqa: BLE001 - the protocol blueprint names its endpoint as it likes
        return "/sparql"
