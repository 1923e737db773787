"""Real SPARQL clients against a live `copkg serve` (gunicorn) on 127.0.0.1: SPARQLWrapper and
rdflib's SPARQLStore."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import requests
from rdflib import Graph, Literal, URIRef
from rdflib.plugins.stores.sparqlstore import SPARQLStore
from SPARQLWrapper import CSV, JSON, POST, TURTLE, XML, SPARQLWrapper
from web_helpers import SAMPLE_FINDINGS, LiveServer, live_server

from copkg.namespaces import COPKG

pytestmark = pytest.mark.server

FINDINGS = "SELECT ?f ?label WHERE { ?f a copkg:Finding ; rdfs:label ?label } ORDER BY ?label"
CONSTRUCT = "CONSTRUCT WHERE { ?f a copkg:Finding ; copkg:page ?page }"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with live_server(tmp_path_factory.mktemp("clients")) as running:
        yield running


def wrapper(server: LiveServer, query: str, fmt: str, method: str | None = None) -> SPARQLWrapper:
    client = SPARQLWrapper(server.endpoint)
    client.setQuery(query)
    client.setReturnFormat(fmt)
    if method:
        client.setMethod(method)
    return client


@pytest.mark.parametrize("method", [None, POST])
def test_sparqlwrapper_select_json(server: LiveServer, method: str | None) -> None:
    result = wrapper(server, FINDINGS, JSON, method).queryAndConvert()
    bindings = result["results"]["bindings"]
    assert len(bindings) == SAMPLE_FINDINGS
    assert bindings[0]["label"] == {"type": "literal", "value": "Finding 0", "xml:lang": "en"}


def test_sparqlwrapper_select_xml_and_csv(server: LiveServer) -> None:
    document = wrapper(server, FINDINGS, XML).queryAndConvert()
    assert len(document.getElementsByTagName("result")) == SAMPLE_FINDINGS
    table = wrapper(server, FINDINGS, CSV).queryAndConvert().decode("utf-8")
    assert table.splitlines()[0] == "f,label" and len(table.splitlines()) == SAMPLE_FINDINGS + 1


def test_sparqlwrapper_construct_turtle(server: LiveServer) -> None:
    response = wrapper(server, CONSTRUCT, TURTLE).query()
    assert response.response.headers["Content-Type"].startswith("text/turtle")
    graph = Graph().parse(data=response.convert(), format="turtle")
    assert len(graph) == 2 * SAMPLE_FINDINGS


def test_sparqlwrapper_construct_default_rdfxml(server: LiveServer) -> None:
    graph = wrapper(server, CONSTRUCT, XML).queryAndConvert()
    assert isinstance(graph, Graph) and len(graph) == 2 * SAMPLE_FINDINGS


@pytest.mark.parametrize(("query", "expected"), [
    ("ASK { ?f a copkg:Finding }", True),
    ("ASK { ?f a copkg:Nothing }", False),
])  # fmt: skip
def test_sparqlwrapper_ask(server: LiveServer, query: str, expected: bool) -> None:
    assert wrapper(server, query, JSON).queryAndConvert()["boolean"] is expected


def test_sparqlwrapper_sees_errors(server: LiveServer) -> None:
    from SPARQLWrapper.SPARQLExceptions import QueryBadFormed

    with pytest.raises(QueryBadFormed):
        wrapper(server, "SELECT * {", JSON).query()


def test_rdflib_sparqlstore(server: LiveServer) -> None:
    graph = Graph(store=SPARQLStore(server.endpoint))
    rows = list(graph.query(FINDINGS))  # the server predeclares copkg: and rdfs:
    assert len(rows) == SAMPLE_FINDINGS
    assert rows[0].label == Literal("Finding 0", lang="en")
    assert isinstance(rows[0].f, URIRef)
    assert graph.query(f"ASK {{ ?f a <{COPKG.Finding}> }}").askAnswer is True
    constructed = graph.query(f"CONSTRUCT WHERE {{ ?f a <{COPKG.Finding}> }}").graph
    assert constructed is not None and len(constructed) == SAMPLE_FINDINGS


def test_rdflib_sparqlstore_triples(server: LiveServer) -> None:
    graph = Graph(store=SPARQLStore(server.endpoint))
    assert len(list(graph.triples((None, URIRef(str(COPKG.page)), None)))) == SAMPLE_FINDINGS


def test_cors_headers_reach_browsers(server: LiveServer) -> None:
    response = requests.options(
        server.endpoint,
        headers={
            "Origin": "https://example.org",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type",
        },
        timeout=10,
    )
    assert response.status_code == 200
    assert response.headers["Access-Control-Allow-Origin"] in ("*", "https://example.org")
