"""SPARQL clients as they are: SPARQLWrapper in every return format (with and without
`onlyConneg`), rdflib's SPARQLStore and SPARQLUpdateStore, and curl with the Accept headers
clients send, against a live `copkg serve` on 127.0.0.1."""

from __future__ import annotations

import shutil
import subprocess

import pytest
import requests
from rdflib import Graph, Literal, URIRef
from rdflib.plugins.stores.sparqlstore import SPARQLStore, SPARQLUpdateStore
from SPARQLWrapper import CSV, JSON, JSONLD, N3, RDF, RDFXML, TSV, TURTLE, XML, SPARQLWrapper
from SPARQLWrapper.SPARQLExceptions import QueryBadFormed
from web_helpers import SAMPLE_FINDINGS, LiveServer, live_server

pytestmark = pytest.mark.server

SELECT = "SELECT ?f ?label WHERE { ?f a copkg:Finding ; rdfs:label ?label }"
CONSTRUCT = "CONSTRUCT WHERE { ?f a copkg:Finding ; copkg:page ?page }"
TOKEN = "client-t0ken"


@pytest.fixture(scope="module")
def server(sample_server: LiveServer) -> LiveServer:
    """The worker's server over the sample store with the default settings (conftest)."""
    return sample_server


def ask(server: LiveServer, query: str, fmt: str, only_conneg: bool) -> object:
    client = SPARQLWrapper(server.endpoint)
    client.setQuery(query)
    client.setReturnFormat(fmt)
    client.setOnlyConneg(only_conneg)
    return client.query()


#: (return format, the Content-Type the answer must carry) for a SELECT
SELECT_FORMATS = [
    (JSON, "application/sparql-results+json"),
    (XML, "application/sparql-results+xml"),
    (CSV, "text/csv"),
    (TSV, "text/tab-separated-values"),
]
#: ... and for a CONSTRUCT (N3: SPARQLWrapper accepts Turtle or N-Triples)
CONSTRUCT_FORMATS = [
    (TURTLE, ("text/turtle",)),
    (N3, ("text/turtle", "application/n-triples")),
    (RDF, ("application/rdf+xml",)),
    (RDFXML, ("application/rdf+xml",)),
    (XML, ("application/rdf+xml",)),
    (JSONLD, ("application/ld+json",)),
    (JSON, ("application/ld+json",)),
]


@pytest.mark.parametrize("only_conneg", [False, True])
@pytest.mark.parametrize(("fmt", "media_type"), SELECT_FORMATS)
def test_sparqlwrapper_select_in_every_format(
    server: LiveServer, fmt: str, media_type: str, only_conneg: bool
) -> None:
    response = ask(server, SELECT, fmt, only_conneg)
    assert response.response.headers["Content-Type"].split(";")[0] == media_type
    converted = response.convert()
    if fmt == JSON:
        assert len(converted["results"]["bindings"]) == SAMPLE_FINDINGS
    elif fmt == XML:
        assert len(converted.getElementsByTagName("result")) == SAMPLE_FINDINGS
    else:
        assert len(converted.decode("utf-8").strip().splitlines()) == SAMPLE_FINDINGS + 1


ANY_RDF = ("text/turtle", "application/n-triples", "application/rdf+xml", "application/ld+json")


@pytest.mark.parametrize("only_conneg", [False, True])
@pytest.mark.parametrize(("fmt", "media_types"), CONSTRUCT_FORMATS)
def test_sparqlwrapper_construct_in_every_format(
    server: LiveServer, fmt: str, media_types: tuple[str, ...], only_conneg: bool
) -> None:
    response = ask(server, CONSTRUCT, fmt, only_conneg)
    content_type = response.response.headers["Content-Type"].split(";")[0]
    if only_conneg and fmt in (RDF, JSON):  # SPARQLWrapper then accepts any RDF syntax
        media_types = ANY_RDF
    assert content_type in media_types
    body = response.response.read()
    parser = {
        "text/turtle": "turtle",
        "application/n-triples": "nt",
        "application/rdf+xml": "xml",
        "application/ld+json": "json-ld",
    }[content_type]
    assert len(Graph().parse(data=body, format=parser)) == 2 * SAMPLE_FINDINGS


@pytest.mark.parametrize("only_conneg", [False, True])
def test_sparqlwrapper_ask(server: LiveServer, only_conneg: bool) -> None:
    response = ask(server, "ASK { ?f a copkg:Finding }", JSON, only_conneg)
    assert response.convert()["boolean"] is True


def test_sparqlstore_iterates_the_whole_graph(server: LiveServer) -> None:
    store = SPARQLStore(server.endpoint)
    graph = Graph(store=store)
    count = int(next(iter(store.query("SELECT (COUNT(*) AS ?n) { ?s ?p ?o }")))[0])
    assert len(list(graph.triples((None, None, None)))) == count > 0


def test_sparqlstore_cannot_miss_a_cut(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Over the row limit, iterating the graph fails loudly instead of stopping short."""
    env = {"COPKG_MAX_ROWS": "5"}
    with live_server(tmp_path_factory.mktemp("small"), env=env) as small:
        graph = Graph(store=SPARQLStore(small.endpoint))
        with pytest.raises(ValueError):  # rdflib's reading of the 400
            list(graph.triples((None, None, None)))
        client = SPARQLWrapper(small.endpoint)
        client.setQuery("SELECT * { ?s ?p ?o }")
        with pytest.raises(QueryBadFormed, match="more than 5 rows"):
            client.query()


def test_sparqlupdatestore_with_a_writable_store(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    env = {"COPKG_STORE_URL": "memory:", "COPKG_UPDATE_TOKEN": TOKEN}
    with live_server(tmp_path_factory.mktemp("writable"), env=env) as writable:
        store = SPARQLUpdateStore(
            writable.endpoint,
            writable.url + "/update",
            headers={"Authorization": f"Bearer {TOKEN}"},
        )
        graph = Graph(store=store, identifier=URIRef("http://example.org/graph/new"))
        graph.add((URIRef("http://example.org/a"), URIRef("http://example.org/p"), Literal(1)))
        reader = SPARQLStore(writable.endpoint)
        rows = list(reader.query("SELECT ?o { <http://example.org/a> ?p ?o }"))
        assert [int(row[0]) for row in rows] == [1]


def test_the_update_token_on_the_builds_read_only_store_says_why(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    with live_server(tmp_path_factory.mktemp("ro"), env={"COPKG_UPDATE_TOKEN": TOKEN}) as ro:
        response = requests.post(
            ro.url + "/update",
            data="INSERT DATA { <http://a> <http://b> <http://c> }",
            headers={
                "Content-Type": "application/sparql-update",
                "Authorization": f"Bearer {TOKEN}",
            },
            timeout=30,
        )
    assert response.status_code == 403
    error = response.json()["error"]
    assert "read-only" in error and "--store memory:" in error


CURL_ACCEPTS = [
    ("application/sparql-results+json; charset=utf-8", "application/sparql-results+json"),
    ("application/sparql-results+json;q=0.9, text/csv;q=0.1", "application/sparql-results+json"),
    ("text/csv; header=present", "text/csv"),
    ("application/json", "application/sparql-results+json"),
    ("*/*", "application/sparql-results+json"),
    ("application/xml; charset=UTF-8", "application/sparql-results+xml"),
]


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
@pytest.mark.parametrize(("accept", "media_type"), CURL_ACCEPTS)
def test_curl_with_accept_variants(server: LiveServer, accept: str, media_type: str) -> None:
    done = subprocess.run(
        ["curl", "-s", "-o", "/dev/null", "-w", "%{http_code} %{content_type}",
         "-H", f"Accept: {accept}", "--data-urlencode", f"query={SELECT}", server.endpoint],
        capture_output=True, text=True, timeout=30, check=True,
    )  # fmt: skip
    status, content_type = done.stdout.split(" ", 1)
    assert status == "200" and content_type.split(";")[0] == media_type
