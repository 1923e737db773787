"""Real SPARQL clients against a live `copkg serve` (gunicorn) on 127.0.0.1: SPARQLWrapper and
rdflib's SPARQLStore; and `copkg serve` itself."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import requests
from gunicorn.util import load_class
from gunicorn.workers.gthread import ThreadWorker
from rdflib import Graph, Literal, URIRef
from rdflib.plugins.stores.sparqlstore import SPARQLStore
from SPARQLWrapper import CSV, JSON, POST, TURTLE, XML, SPARQLWrapper
from web_helpers import REPO, SAMPLE_FINDINGS, LiveServer, free_port

from copkg.config import Settings
from copkg.errors import CopkgError
from copkg.namespaces import COPKG
from copkg.web.server import default_workers, gunicorn_options

pytestmark = pytest.mark.server

FINDINGS = "SELECT ?f ?label WHERE { ?f a copkg:Finding ; rdfs:label ?label } ORDER BY ?label"
CONSTRUCT = "CONSTRUCT WHERE { ?f a copkg:Finding ; copkg:page ?page }"


@pytest.fixture(scope="module")
def server(sample_server: LiveServer) -> LiveServer:
    """The worker's server over the sample store with the default settings (conftest)."""
    return sample_server


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


# -- the server itself ---------------------------------------------------------------------------


def test_serve_refuses_a_corrupted_build(tmp_path: Path) -> None:
    (tmp_path / "build" / "oxigraph").mkdir(parents=True)
    (tmp_path / "build" / "manifest.json").write_text("{not json")
    command = [sys.executable, "-m", "copkg.cli", "serve", "--root", str(tmp_path),
               "--port", str(free_port())]  # fmt: skip
    env = {k: v for k, v in os.environ.items() if not k.startswith("COPKG_")}
    done = subprocess.run(command, check=False, capture_output=True, text=True, timeout=60, env=env)
    assert done.returncode != 0
    assert "cannot be used" in done.stderr and "copkg build" in done.stderr, done.stderr
    assert "Listening at" not in done.stdout + done.stderr


def test_serve_runs_gunicorn_with_threads() -> None:
    settings = Settings.load(REPO, environ={}, query_timeout=10)
    options = gunicorn_options(settings, "127.0.0.1", 5000, None)
    worker = load_class(options["worker_class"])  # gthread, or copkg's subclass of it
    assert issubclass(worker, ThreadWorker) and options["threads"] > 1
    assert options["bind"] == "127.0.0.1:5000" and options["workers"] == default_workers()
    assert options["timeout"] > settings.query_timeout
    with pytest.raises(CopkgError):
        gunicorn_options(settings, "127.0.0.1", 5000, 0)


def test_the_live_server_is_gunicorn(server: LiveServer) -> None:
    response = requests.get(server.endpoint, headers={"Accept": "text/turtle"}, timeout=10)
    assert response.headers["Server"].startswith("gunicorn")
    assert "copkg SPARQL endpoint: " + server.endpoint in server.log()
