"""The SPARQL 1.1 Protocol: queries at /sparql (GET, form POST, direct POST), updates at /update.

GET /sparql without a query gives the SPARQL 1.1 Service Description (Turtle and the other RDF
formats), or sends a browser to the query page.
"""

from __future__ import annotations

import hmac
from collections.abc import Sequence

from flask import Blueprint, Response, current_app, jsonify, redirect, request
from rdflib import RDF, BNode, Dataset, Graph, Literal, Namespace, URIRef
from rdflib.namespace import DCTERMS, XSD
from werkzeug.wrappers import Response as BaseResponse

from copkg.errors import CopkgError
from copkg.querying.executor import Job
from copkg.querying.safety import (
    UPDATE_HINT,
    analyse_update,
    check_protocol_graphs,
    with_using,
)
from copkg.store.lexer import tokens
from copkg.store.results import CSV, GRAPH_MEDIA_TYPES, SPARQL_JSON, SPARQL_XML, TSV
from copkg.web import client_address, get_executor, get_services, get_store
from copkg.web.negotiation import accepted, best_offer

bp = Blueprint("sparql", __name__)

SD = Namespace("http://www.w3.org/ns/sparql-service-description#")
FORMATS = Namespace("http://www.w3.org/ns/formats/")
VOID = Namespace("http://rdfs.org/ns/void#")

FORM = "application/x-www-form-urlencoded"
SPARQL_QUERY = "application/sparql-query"
SPARQL_UPDATE = "application/sparql-update"
TURTLE = "text/turtle"
NTRIPLES = "application/n-triples"
JSONLD = "application/ld+json"
RDFXML = "application/rdf+xml"
TRIG = "application/trig"
NQUADS = "application/n-quads"

#: Media types a client may ask for (Accept), mapped to the one we write; first is the default.
SOLUTION_TYPES: dict[str, str] = {
    SPARQL_JSON: SPARQL_JSON,
    SPARQL_XML: SPARQL_XML,
    CSV: CSV,
    TSV: TSV,
    "application/json": SPARQL_JSON,
    "application/xml": SPARQL_XML,
    "text/xml": SPARQL_XML,
}
GRAPH_TYPES: dict[str, str] = {
    **{media_type: media_type for media_type in GRAPH_MEDIA_TYPES},
    "application/x-turtle": TURTLE,
    "application/turtle": TURTLE,
    "text/plain": NTRIPLES,
    "application/json": JSONLD,
    "application/xml": RDFXML,
}

#: The `format` parameter: the names clients send (SPARQLWrapper's, Virtuoso's, Fuseki's), each
#: a family of media types per kind of result; the Accept header chooses within a family.
FORMAT_NAMES: dict[str, dict[str, tuple[str, ...]]] = {
    "json": {"solutions": (SPARQL_JSON,), "graph": (JSONLD,)},
    "srj": {"solutions": (SPARQL_JSON,)},
    "xml": {"solutions": (SPARQL_XML,), "graph": (RDFXML,)},
    "srx": {"solutions": (SPARQL_XML,)},
    "csv": {"solutions": (CSV,)},
    "tsv": {"solutions": (TSV,)},
    "rdf": {"graph": (RDFXML,)},
    "rdfxml": {"graph": (RDFXML,)},
    "rdf+xml": {"graph": (RDFXML,)},
    "turtle": {"graph": (TURTLE,)},
    "ttl": {"graph": (TURTLE,)},
    "n3": {"graph": (TURTLE, NTRIPLES)},
    "ntriples": {"graph": (NTRIPLES,)},
    "n-triples": {"graph": (NTRIPLES,)},
    "nt": {"graph": (NTRIPLES,)},
    "jsonld": {"graph": (JSONLD,)},
    "json-ld": {"graph": (JSONLD,)},
    "trig": {"graph": (TRIG,)},
    "nquads": {"graph": (NQUADS,)},
    "n-quads": {"graph": (NQUADS,)},
    "nq": {"graph": (NQUADS,)},
}

#: How rdflib names the formats of the service description.
_RDFLIB_FORMATS = {
    TURTLE: "turtle",
    NTRIPLES: "nt",
    JSONLD: "json-ld",
    RDFXML: "xml",
    TRIG: "trig",
    NQUADS: "nquads",
}

_RESULT_FORMATS = [
    FORMATS.SPARQL_Results_JSON,
    FORMATS.SPARQL_Results_XML,
    FORMATS.SPARQL_Results_CSV,
    FORMATS.SPARQL_Results_TSV,
    FORMATS.Turtle,
    FORMATS["N-Triples"],
    FORMATS["JSON-LD"],
    FORMATS.RDF_XML,
    FORMATS.TriG,
    FORMATS["N-Quads"],
]


# -- negotiation -------------------------------------------------------------------------------


def content_type(media_type: str) -> str:
    """A Content-Type header value: text types say they are UTF-8."""
    return f"{media_type}; charset=utf-8" if media_type.startswith("text/") else media_type


def _requested_format() -> dict[str, tuple[str, ...]] | None:
    """The `format` parameter as {"solutions"|"graph": family of media types}; None when it is
    absent or names nothing we know (then Accept decides, as for clients that send their own
    names)."""
    for raw in request.values.getlist("format"):
        value = raw.strip().lower()
        if value in FORMAT_NAMES:
            return FORMAT_NAMES[value]
        chosen: dict[str, tuple[str, ...]] = {
            kind: (offered[value],)
            for kind, offered in (("solutions", SOLUTION_TYPES), ("graph", GRAPH_TYPES))
            if value in offered
        }
        if chosen:
            return chosen
    return None


def negotiate() -> dict[str, str]:
    """The media type to write each kind of result in ({kind: media type}); a kind left out
    cannot be served (406 once the query says what kind it is). Content-Type is always the
    canonical media type of what is written, whatever alias was asked for."""
    chosen: dict[str, str] = {}
    requested = _requested_format() or {}
    for group, family in requested.items():
        kinds = ("select", "ask") if group == "solutions" else ("graph",)
        chosen.update(dict.fromkeys(kinds, best_offer(family) or family[0]))
    named = {value for value, q in accepted() if q > 0}
    for kinds, offered in ((("select", "ask"), SOLUTION_TYPES), (("graph",), GRAPH_TYPES)):
        if requested and (kinds[0] in chosen or not named & set(offered)):
            continue  # the format said, or says nothing of this kind and Accept names none
        best = best_offer(list(offered))
        if best is not None:
            chosen.update(dict.fromkeys(kinds, offered[best]))
    if requested:
        return chosen
    if not chosen:
        raise CopkgError(
            f"cannot answer in any type of Accept: {request.headers.get('Accept', '')}; "
            f"results come as {', '.join(SOLUTION_TYPES)} (SELECT, ASK) or "
            f"{', '.join(GRAPH_TYPES)} (CONSTRUCT, DESCRIBE)",
            status=406,
        )
    return chosen


# -- reading requests --------------------------------------------------------------------------


def _check_charset() -> None:
    charset = request.mimetype_params.get("charset")
    if charset and charset.strip().lower() not in ("utf-8", "utf8"):
        raise CopkgError(
            f"the request body must be UTF-8, not {charset}",
            status=415,
        )


def _body_text() -> str:
    _check_charset()
    try:
        return request.get_data(cache=True).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise CopkgError(f"the request body is not valid UTF-8: {exc}", status=400) from exc


def _one(values: Sequence[str], name: str) -> str | None:
    if len(values) > 1:
        raise CopkgError(f"give one {name}, not {len(values)}", status=400)
    return values[0] if values else None


def _graph_parameters(default_name: str, named_name: str) -> tuple[tuple[str, ...] | None, ...]:
    """Protocol graph IRIs (query string, and a form body) or None when not given."""
    result = []
    for name in (default_name, named_name):
        values = request.args.getlist(name)
        if request.method == "POST" and request.mimetype == FORM:
            values += request.form.getlist(name)
        values = [v.strip() for v in values if v.strip()]
        check_protocol_graphs(values, name)
        result.append(tuple(values) if values else None)
    return tuple(result)


def _refuse_update() -> None:
    raise CopkgError(f"/sparql answers queries only: {UPDATE_HINT}", status=403)


def _query_text() -> str | None:
    """The query of a protocol request (None for a GET without one); 4xx for a bad request."""
    if request.method in ("GET", "HEAD"):
        if request.args.getlist("update"):
            _refuse_update()
        return _one(request.args.getlist("query"), "query")
    mimetype = request.mimetype
    if mimetype == FORM:
        _check_charset()
        if request.form.getlist("update") or request.args.getlist("update"):
            _refuse_update()
        queries = request.form.getlist("query") + request.args.getlist("query")
        query = _one(queries, "query")
    elif mimetype == SPARQL_QUERY:
        if request.args.getlist("query"):
            raise CopkgError("give the query in the body or in the URL, not both", status=400)
        query = _body_text()
    elif mimetype == SPARQL_UPDATE:
        _refuse_update()
    else:
        raise CopkgError(
            f"POST a query as {FORM} (query=...) or as {SPARQL_QUERY}, "
            f"not as {mimetype or 'a body without a Content-Type'}",
            status=415,
        )
    if query is None or not query.strip():
        raise CopkgError("the request has no query", status=400)
    return query


def _base_iri() -> str:
    """The base IRI of relative IRIs in a request: the endpoint's own URL."""
    base = request.base_url
    if any(c in base for c in '<>"{}|^`\\ '):
        raise CopkgError("the request URL cannot serve as a base IRI", status=400)
    return base


# -- endpoints -----------------------------------------------------------------------------------


@bp.route("/sparql", methods=["GET", "POST"])
def query() -> BaseResponse:
    """Answer a SPARQL query (SPARQL 1.1 Protocol), or describe the service."""
    text = _query_text()
    if text is None:
        return service_description()
    media_types = negotiate()
    default_graphs, named_graphs = _graph_parameters("default-graph-uri", "named-graph-uri")
    job = Job(
        text,
        default_graphs=default_graphs,
        named_graphs=named_graphs,
        media_types=media_types,
        base=_base_iri(),
        client=client_address(),
    )
    answer = get_executor().run(job)
    if answer.truncated and not _partial_wanted() and not has_own_limit(text):
        limit = current_app.config["MAX_ROWS"]
        raise CopkgError(
            f"the answer has more than {limit} rows, the most this service returns at once "
            f"(COPKG_MAX_ROWS): add LIMIT and OFFSET to page through it, or ask for the first "
            f"{limit} rows only with partial=true",
            status=400,
        )
    response = Response(answer.body, content_type=content_type(answer.media_type))
    response.vary.add("Accept")
    if answer.truncated:
        response.headers["Copkg-Truncated"] = f"results cut at {answer.count} rows"
    return response


def _partial_wanted() -> bool:
    """Whether the client opted in to a partial answer (`partial=true`)."""
    return request.values.get("partial", "").strip().lower() in ("true", "1", "yes")


def has_own_limit(sparql: str) -> bool:
    """Whether the query's outermost level has a LIMIT of its own."""
    return any(t.depth == 0 and t.kind == "word" and t.upper == "LIMIT" for t in tokens(sparql))


def service_description() -> BaseResponse:
    """The SPARQL 1.1 Service Description of this endpoint, or the query page for browsers."""
    requested = _requested_format()
    if requested is not None:
        if "graph" not in requested:
            raise CopkgError("the service description is RDF: use an RDF format", status=406)
        media_type = best_offer(requested["graph"]) or requested["graph"][0]
    else:
        offered = {**GRAPH_TYPES, "text/html": "text/html"}
        best = best_offer(list(offered))
        if best is None:
            raise CopkgError(
                f"the service description comes as {', '.join(GRAPH_TYPES)} or text/html",
                status=406,
            )
        if offered[best] == "text/html":
            return redirect(request.script_root + "/query", code=303)
        media_type = offered[best]
    graph = describe_service(request.base_url)
    if media_type in (TRIG, NQUADS):  # a dataset: the description in a graph named for it
        dataset = Dataset()
        named = dataset.graph(URIRef(f"{request.base_url}#description"))
        for prefix, namespace in graph.namespaces():
            dataset.bind(prefix, namespace)
        for triple in graph:
            named.add(triple)
        body = dataset.serialize(format=_RDFLIB_FORMATS[media_type], encoding="utf-8")
    else:
        body = graph.serialize(format=_RDFLIB_FORMATS[media_type], encoding="utf-8")
    response = Response(body, content_type=content_type(media_type))
    response.vary.add("Accept")
    return response


def describe_service(endpoint: str) -> Graph:
    """sd:Service with its endpoint, languages, result formats and dataset (named graphs)."""
    services = get_services()
    store = get_store()
    config = current_app.config
    graph = Graph()
    for prefix, namespace in (
        ("sd", SD),
        ("formats", FORMATS),
        ("void", VOID),
        ("dcterms", DCTERMS),
    ):
        graph.bind(prefix, namespace)
    service = URIRef(f"{endpoint}#service")
    graph.add((service, RDF.type, SD.Service))
    graph.add((service, SD.endpoint, URIRef(endpoint)))
    graph.add((service, SD.supportedLanguage, SD.SPARQL11Query))
    graph.add((service, DCTERMS.title, Literal("copkg SPARQL endpoint")))
    graph.add(
        (
            service,
            DCTERMS.description,
            Literal(
                f"Read-only queries over the copkg knowledge graph; each query runs at most "
                f"{config['QUERY_TIMEOUT']:g} s and returns at most {config['MAX_ROWS']} rows. "
                "The default graph is the union of the named graphs."
            ),
        )
    )
    for result_format in _RESULT_FORMATS:
        graph.add((service, SD.resultFormat, result_format))
    graph.add((service, SD.feature, SD.UnionDefaultGraph))
    if config["ALLOWED_SERVICE_ENDPOINTS"]:
        graph.add((service, SD.feature, SD.BasicFederatedQuery))
    dataset = BNode()
    graph.add((service, SD.defaultDataset, dataset))
    graph.add((dataset, RDF.type, SD.Dataset))
    default = BNode()
    graph.add((dataset, SD.defaultGraph, default))
    graph.add((default, RDF.type, SD.Graph))
    total = 0
    for name in store.graphs():
        count = store.quad_count(name)
        total += count
        named, described = BNode(), BNode()
        graph.add((dataset, SD.namedGraph, named))
        graph.add((named, RDF.type, SD.NamedGraph))
        graph.add((named, SD.name, URIRef(name)))
        graph.add((named, SD.graph, described))
        graph.add((described, RDF.type, SD.Graph))
        graph.add((described, VOID.triples, Literal(count, datatype=XSD.integer)))
    graph.add((default, VOID.triples, Literal(total, datatype=XSD.integer)))
    if config["UPDATE_TOKEN"] and not getattr(services.store, "read_only", False):
        update_endpoint = endpoint.rsplit("/", 1)[0] + "/update"
        updates = URIRef(f"{update_endpoint}#service")
        graph.add((updates, RDF.type, SD.Service))
        graph.add((updates, SD.endpoint, URIRef(update_endpoint)))
        graph.add((updates, SD.supportedLanguage, SD.SPARQL11Update))
    return graph


def _check_token() -> None:
    token = current_app.config["UPDATE_TOKEN"]
    if not token:
        raise CopkgError(
            "updates are disabled on this service (no update token is set)", status=403
        )
    auth = request.authorization
    given = auth.token if auth is not None and auth.type == "bearer" else None
    if not given or not hmac.compare_digest(given.encode(), token.encode()):
        raise CopkgError("updates need a valid Authorization: Bearer token", status=403)


def _update_text() -> str:
    mimetype = request.mimetype
    if mimetype == FORM:
        _check_charset()
        if request.form.getlist("query") or request.args.getlist("query"):
            raise CopkgError("/update runs updates; send queries to /sparql", status=400)
        text = _one(request.form.getlist("update"), "update")
    elif mimetype == SPARQL_UPDATE:
        text = _body_text()
    else:
        raise CopkgError(
            f"POST an update as {FORM} (update=...) or as {SPARQL_UPDATE}, "
            f"not as {mimetype or 'a body without a Content-Type'}",
            status=415,
        )
    if text is None or not text.strip():
        raise CopkgError("the request has no update", status=400)
    return text


@bp.route("/update", methods=["POST"])
def update() -> Response:
    """Run a SPARQL update (needs the configured bearer token and a writable store)."""
    _check_token()
    if getattr(get_services().store, "read_only", False):
        raise CopkgError(
            "this service answers from the build's store, which is read-only: updates need a "
            "writable store (serve --store memory: or a SPARQL store URL); studies enter the "
            "build through copkg add",
            status=403,
        )
    text = _update_text()
    using, using_named = _graph_parameters("using-graph-uri", "using-named-graph-uri")
    services = get_services()
    base = _base_iri()
    plan = analyse_update(
        text,
        graphs=frozenset(services.store.graphs()),
        allowed_service_endpoints=current_app.config["ALLOWED_SERVICE_ENDPOINTS"],
        base=base,
    )
    if using is not None or using_named is not None:
        if plan.names_dataset:
            raise CopkgError(
                "using-graph-uri / using-named-graph-uri cannot be combined with an update "
                "that has USING, USING NAMED or WITH",
                status=400,
            )
        text = with_using(text, using or (), using_named or (), base=base)
    if plan.relative_iris:
        text = f"BASE <{base}> {text}"
    with services.update_lock:
        services.store.update(text)
    return jsonify(ok=True, status=200, operations=list(plan.operations))
