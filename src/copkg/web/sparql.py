"""The SPARQL 1.1 Protocol: queries at /sparql (GET, form POST, direct POST), updates at /update.

GET /sparql without a query gives the SPARQL 1.1 Service Description (Turtle and the other RDF
formats), or sends a browser to the query page.
"""

from __future__ import annotations

import hmac

from flask import Blueprint, Response, current_app, jsonify, redirect, request
from rdflib import RDF, BNode, Dataset, Graph, Literal, Namespace, URIRef
from rdflib.namespace import DCTERMS, XSD
from werkzeug.wrappers import Response as BaseResponse

from copkg.errors import CopkgError
from copkg.querying.safety import analyse_update, with_using
from copkg.web import client_address, get_executor, get_services, read_page
from copkg.web.negotiation import best_offer
from copkg.web.protocol import (
    FORM,
    GRAPH_TYPES,
    JSONLD,
    NQUADS,
    NTRIPLES,
    RDFXML,
    SPARQL_UPDATE,
    TRIG,
    TURTLE,
    ProtocolRequest,
    answer_headers,
    base_iri,
    body_text,
    check_charset,
    content_type,
    graph_parameters,
    one,
    read_query,
    requested_format,
)

bp = Blueprint("sparql", __name__)

SD = Namespace("http://www.w3.org/ns/sparql-service-description#")
FORMATS = Namespace("http://www.w3.org/ns/formats/")
VOID = Namespace("http://rdfs.org/ns/void#")

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


# -- reading requests --------------------------------------------------------------------------


def protocol_request() -> ProtocolRequest:
    """Flask's request as the protocol reads it."""
    return ProtocolRequest(
        request.method,
        request.query_string,
        request.headers.get,
        request.get_data(cache=True),
        request.base_url,
    )


# -- endpoints -----------------------------------------------------------------------------------


@bp.route("/sparql", methods=["GET", "POST"])
def query() -> BaseResponse:
    """Answer a SPARQL query (SPARQL 1.1 Protocol), or describe the service."""
    call = read_query(protocol_request())
    if call is None:
        return service_description()
    answer = get_executor().run(call.job(client_address()))
    headers = answer_headers(call, answer, current_app.config["MAX_ROWS"])
    return Response(answer.body, headers=headers)


def service_description() -> BaseResponse:
    """The SPARQL 1.1 Service Description of this endpoint, or the query page for browsers."""
    requested = requested_format(request.values.getlist("format"))
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
    for name, count in read_page("graph_counts"):
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


def _update_text(call: ProtocolRequest) -> str:
    mimetype = call.mimetype
    if mimetype == FORM:
        check_charset(call)
        if call.field("query") or call.arg("query"):
            raise CopkgError("/update runs updates; send queries to /sparql", status=400)
        text = one(call.field("update"), "update")
    elif mimetype == SPARQL_UPDATE:
        text = body_text(call)
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
    call = protocol_request()
    text = _update_text(call)
    using, using_named = graph_parameters(call, "using-graph-uri", "using-named-graph-uri")
    services = get_services()
    base = base_iri(call.base_url)
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
