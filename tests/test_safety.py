"""Safe by default: SERVICE, FROM/FROM NAMED, USING and LOAD never reach outside the store.

A listener on 127.0.0.1 records every connection and a FIFO records every attempt to open it
for reading, so the tests see an outbound call or a file read that a refusal would hide. The
positive control (an endpoint the configuration allows) shows the listener does see calls.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from watchers import FifoWatch, Listener
from web_helpers import SAMPLE_GRAPH, memory_store, sample_app, sample_quads
from werkzeug.test import TestResponse

from copkg.errors import CopkgError
from copkg.querying.safety import analyse_query, analyse_update, with_using
from copkg.store.embedded import OxigraphStore
from copkg.web.app import create_app

TOKEN = "t0ken"


@pytest.fixture(scope="module", params=["threads", "processes"])
def app(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Flask]:
    with sample_app(request.param, tmp_path_factory.mktemp("s")) as application:
        yield application


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def writable() -> Iterator[FlaskClient]:
    application = create_app({"STORE": memory_store(), "TESTING": True, "UPDATE_TOKEN": TOKEN})
    yield application.test_client()
    application.extensions["copkg"].close()


def refused(response: TestResponse, fragment: str) -> None:
    assert response.status_code == 400, response.get_data(as_text=True)
    body = response.get_json()
    assert body["ok"] is False and fragment in body["error"], body["error"]


# -- SERVICE -----------------------------------------------------------------------------------

SERVICE_QUERIES = [
    "SELECT * {{ SERVICE <{url}> {{ ?s ?p ?o }} }}",
    "SELECT * {{ SERVICE SILENT <{url}> {{ ?s ?p ?o }} }}",
    "select * {{ service\n# a comment\n<{url}> {{ ?s ?p ?o }} }}",
    "PREFIX remote: <{url}>\nSELECT * {{ SERVICE remote: {{ ?s ?p ?o }} }}",
    "SELECT * {{ ?s ?p ?o OPTIONAL {{ SERVICE <{url}> {{ ?s ?p ?x }} }} }}",
    "SELECT * {{ ?s ?p ?o FILTER EXISTS {{ SERVICE <{url}> {{ ?s ?p ?x }} }} }}",
    "SELECT * {{ {{ SELECT ?s {{ SERVICE <{url}> {{ ?s ?p ?o }} }} }} }}",
    "ASK {{ SERVICE <{url}> {{ }} }}",
    "CONSTRUCT {{ ?s ?p ?o }} WHERE {{ SERVICE <{url}> {{ ?s ?p ?o }} }}",
    "BASE <{url}>\nSELECT * {{ SERVICE <sparql> {{ ?s ?p ?o }} }}",
]


@pytest.mark.parametrize("template", SERVICE_QUERIES)
def test_service_is_refused_and_never_called(
    client: FlaskClient, listener: Listener, template: str
) -> None:
    before = listener.connections
    response = client.get("/sparql", query_string={"query": template.format(url=listener.url)})
    refused(response, "SERVICE")
    time.sleep(0.05)
    assert listener.connections == before


def test_service_with_a_variable_endpoint_is_refused(client: FlaskClient) -> None:
    query = "SELECT * { VALUES ?e { <http://127.0.0.1:9/> } SERVICE ?e { ?s ?p ?o } }"
    refused(client.get("/sparql", query_string={"query": query}), "SERVICE ?e")


@pytest.mark.parametrize(
    "query",
    [
        "# SERVICE <{url}> {{ }}\nSELECT * {{ ?s ?p ?o }} LIMIT 1",
        'SELECT * {{ ?s ?p "SERVICE <{url}> {{ }}" }} LIMIT 1',
        "SELECT * {{ ?s ?p '''\nFROM <file:///etc/passwd>\n''' }} LIMIT 1",
        "SELECT ?service {{ ?service ?p ?o }} LIMIT 1",
    ],
)
def test_keywords_in_comments_and_strings_are_not_refused(
    client: FlaskClient, listener: Listener, query: str
) -> None:
    response = client.get("/sparql", query_string={"query": query.format(url=listener.url)})
    assert response.status_code == 200, response.get_data(as_text=True)


def test_an_allowed_endpoint_is_called(listener: Listener) -> None:
    """Positive control: the listener does see a SERVICE call the configuration allows."""
    store = OxigraphStore(allowed_service_endpoints=[listener.url])  # the store checks too
    store.native.extend(sample_quads())
    application = create_app(
        {"STORE": store, "TESTING": True, "ALLOWED_SERVICE_ENDPOINTS": [listener.url]}
    )
    try:
        before = listener.connections
        query = f"SELECT * {{ SERVICE SILENT <{listener.url}> {{ ?s ?p ?o }} }}"
        application.test_client().get("/sparql", query_string={"query": query})
        deadline = time.monotonic() + 5
        while listener.connections == before and time.monotonic() < deadline:
            time.sleep(0.01)
        assert listener.connections > before
    finally:
        application.extensions["copkg"].close()


def test_allowed_endpoints_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COPKG_ALLOWED_SERVICE_ENDPOINTS", "http://a.example/sparql, http://b/")
    application = create_app({"STORE": memory_store(), "TESTING": True})
    try:
        endpoints = application.config["ALLOWED_SERVICE_ENDPOINTS"]
        assert endpoints == ("http://a.example/sparql", "http://b/")
    finally:
        application.extensions["copkg"].close()


# -- FROM, FROM NAMED and protocol graphs ------------------------------------------------------


def test_the_fifo_watch_sees_a_read(tmp_path: Path) -> None:
    """Positive control: opening the FIFO for reading is seen."""
    watch = FifoWatch(tmp_path / "probe.ttl")
    try:
        with open(watch.path, "rb") as pipe:  # blocks until the watch opens it for writing
            pipe.read()
        assert watch.opened
    finally:
        watch.close()


@pytest.mark.parametrize("keyword", ["FROM", "FROM NAMED"])
def test_file_iris_in_from_are_refused_unread(
    client: FlaskClient, fifo: FifoWatch, keyword: str
) -> None:
    query = f"SELECT * {keyword} <{fifo.uri}> {{ ?s ?p ?o }}"
    refused(client.get("/sparql", query_string={"query": query}), "file:")
    refused(
        client.get("/sparql", query_string={"query": "SELECT * FROM <file:///etc/passwd> {}"}),
        "file:",
    )
    time.sleep(0.05)
    assert not fifo.opened


@pytest.mark.parametrize("keyword", ["FROM", "FROM NAMED"])
def test_from_a_graph_the_store_lacks_is_refused_unfetched(
    client: FlaskClient, listener: Listener, keyword: str
) -> None:
    before = listener.connections
    query = f"SELECT * {keyword} <{listener.url}data.ttl> {{ ?s ?p ?o }}"
    refused(client.get("/sparql", query_string={"query": query}), "not a graph of this store")
    assert listener.connections == before


def test_from_a_graph_of_the_store_is_fine(client: FlaskClient) -> None:
    query = f"ASK FROM <{SAMPLE_GRAPH}> {{ ?s ?p ?o }}"
    assert client.get("/sparql", query_string={"query": query}).status_code == 200


@pytest.mark.parametrize("parameter", ["default-graph-uri", "named-graph-uri"])
def test_file_iris_as_protocol_graphs_are_refused(
    client: FlaskClient, fifo: FifoWatch, parameter: str
) -> None:
    response = client.get("/sparql", query_string={"query": "ASK {}", parameter: fifo.uri})
    refused(response, "file:")
    assert not fifo.opened


# -- updates -------------------------------------------------------------------------------------


def post_update(client: FlaskClient, text: str, **params: str) -> TestResponse:
    return client.post(
        "/update",
        data=text,
        content_type="application/sparql-update",
        headers={"Authorization": f"Bearer {TOKEN}"},
        query_string=params,
    )


@pytest.mark.parametrize("silent", ["", "SILENT "])
def test_load_is_refused_and_never_fetched(
    writable: FlaskClient, listener: Listener, fifo: FifoWatch, silent: str
) -> None:
    before = listener.connections
    refused(post_update(writable, f"LOAD {silent}<{listener.url}data.ttl>"), "LOAD")
    refused(post_update(writable, f"LOAD {silent}<{fifo.uri}> INTO GRAPH <http://g>"), "LOAD")
    refused(post_update(writable, "CLEAR SILENT ALL ; LOAD <file:///etc/passwd>"), "LOAD")
    time.sleep(0.05)
    assert listener.connections == before and not fifo.opened


def test_service_in_an_update_is_refused(writable: FlaskClient, listener: Listener) -> None:
    before = listener.connections
    text = f"INSERT {{ ?s ?p ?o }} WHERE {{ SERVICE <{listener.url}> {{ ?s ?p ?o }} }}"
    refused(post_update(writable, text), "SERVICE")
    assert listener.connections == before


def test_using_a_file_or_unknown_graph_is_refused(writable: FlaskClient, fifo: FifoWatch) -> None:
    text = "INSERT {{ ?s ?p ?o }} USING <{iri}> WHERE {{ ?s ?p ?o }}"
    refused(post_update(writable, text.format(iri=fifo.uri)), "file:")
    refused(post_update(writable, text.format(iri="http://nowhere.example/g")), "not a graph")
    refused(post_update(writable, "CLEAR ALL", **{"using-graph-uri": fifo.uri}), "file:")
    assert not fifo.opened


# -- the analysis itself -----------------------------------------------------------------------


def test_prefixes_may_share_a_namespace() -> None:
    """`PREFIX dc: <.../dc/terms/>` leaves the predeclared dcterms: usable."""
    query = "PREFIX dc: <http://purl.org/dc/terms/> ASK { ?s dc:title ?t ; dcterms:date ?d }"
    assert analyse_query(query, graphs=()).kind == "ask"


def test_unknown_prefixes_are_named() -> None:
    with pytest.raises(CopkgError, match="unknown prefix nope:"):
        analyse_query("SELECT * { ?s nope:p ?o }", graphs=())


def test_the_rewrite_for_using_graph_uri_is_checked() -> None:
    update = (
        "# WHERE { in a comment\n"
        'INSERT DATA { <http://s> <http://p> "WHERE }" } ;\n'
        'INSERT { ?s ?p ?o } WHERE { ?s ?p ?o FILTER(?o != "}") } ;\n'
        "DELETE WHERE { ?s ?p ?o }"
    )
    rewritten = with_using(update, ["http://a"], ["http://b"])
    assert rewritten.count("USING <http://a> USING NAMED <http://b>") == 1
    assert analyse_update(rewritten, graphs={"http://a", "http://b"}).names_dataset


KEYWORD = st.sampled_from(["SERVICE", "service", "Service", "sErViCe"])
SPACE = st.sampled_from([" ", "\n", "\t", " # note { }\n", "\r\n "])
SILENT = st.sampled_from(["", "SILENT", "silent"])


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(keyword=KEYWORD, space1=SPACE, silent=SILENT, space2=SPACE)
def test_no_spelling_of_service_slips_through(
    keyword: str, space1: str, silent: str, space2: str
) -> None:
    query = (
        f"SELECT * {{ ?s ?p ?o .{space1}{keyword}{space1}{silent}{space2}"
        f"<http://127.0.0.1:9/sparql>{space2}{{ ?s ?p ?o }} }}"
    )
    with pytest.raises(CopkgError, match="SERVICE") as error:
        analyse_query(query, graphs=())
    assert error.value.status == 400
