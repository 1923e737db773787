"""The SPARQL 1.1 Protocol at /sparql and /update: request forms, result formats, datasets,
the service description, CORS, limits, and every error with its status."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from xml.etree import ElementTree

import pytest
from flask import Flask
from flask.testing import FlaskClient
from rdflib import Dataset, Graph, Namespace, URIRef
from web_helpers import (
    SAMPLE_FINDINGS,
    SAMPLE_GRAPH,
    disk_store,
    memory_store,
)
from werkzeug.test import TestResponse

from copkg.namespaces import ONTOLOGY_GRAPH
from copkg.store.embedded import OxigraphStore
from copkg.web.app import create_app

TOKEN = "s3cret"
SD = Namespace("http://www.w3.org/ns/sparql-service-description#")
SRX = "{http://www.w3.org/2005/sparql-results#}"

#: Triples in the sample dataset: 2 in the ontology graph, 3 a finding in the study graph.
ALL_TRIPLES = 2 + 3 * SAMPLE_FINDINGS

SELECT = "SELECT ?s ?label WHERE { ?s rdfs:label ?label }"
ASK = "ASK { ?s a copkg:Finding }"
CONSTRUCT = "CONSTRUCT WHERE { ?s a copkg:Finding }"


@pytest.fixture(scope="module", params=["threads", "processes"])
def app(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Flask]:
    """The app over the sample dataset: in memory (threads) and on disk (worker processes)."""
    if request.param == "threads":
        store = memory_store()
    else:
        store_dir = disk_store(tmp_path_factory.mktemp("sparql") / "store")
        store = OxigraphStore.open_read_only(store_dir)
    application = create_app(
        {"STORE": store, "TESTING": True, "QUERY_WORKERS": 1, "MAX_BODY": 4096, "MAX_ROWS": 50}
    )
    yield application
    application.extensions["copkg"].close()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def writable() -> Iterator[FlaskClient]:
    """An app over a throwaway in-memory store with updates enabled."""
    application = create_app({"STORE": memory_store(), "TESTING": True, "UPDATE_TOKEN": TOKEN})
    yield application.test_client()
    application.extensions["copkg"].close()


# -- the three request forms -------------------------------------------------------------------


def via_get(client: FlaskClient, query: str, **kw: object) -> TestResponse:
    args = {"query": query, **kw.pop("params", {})}  # type: ignore[dict-item]
    return client.get("/sparql", query_string=args, **kw)


def via_form(client: FlaskClient, query: str, **kw: object) -> TestResponse:
    data = {"query": query, **kw.pop("params", {})}  # type: ignore[dict-item]
    return client.post("/sparql", data=data, **kw)


def via_body(client: FlaskClient, query: str, **kw: object) -> TestResponse:
    return client.post(
        "/sparql",
        data=query.encode("utf-8"),
        content_type="application/sparql-query",
        query_string=kw.pop("params", {}),
        **kw,
    )


FORMS: dict[str, Callable[..., TestResponse]] = {
    "GET": via_get,
    "POST form": via_form,
    "POST direct": via_body,
}


def rows(response: TestResponse) -> int:
    """How many solutions a SELECT response holds, whatever its format."""
    media_type = response.mimetype
    body = response.get_data(as_text=True)
    if media_type in ("application/sparql-results+json", "application/json"):
        return len(json.loads(body)["results"]["bindings"])
    if media_type == "application/sparql-results+xml":
        return len(ElementTree.fromstring(body).findall(f"{SRX}results/{SRX}result"))
    if media_type == "text/csv":
        return len(list(csv.reader(io.StringIO(body)))) - 1
    if media_type == "text/tab-separated-values":
        return len(body.strip().splitlines()) - 1
    raise AssertionError(f"not a SELECT result type: {media_type}")


RDF_FORMATS = {
    "text/turtle": "turtle",
    "application/n-triples": "nt",
    "application/ld+json": "json-ld",
    "application/rdf+xml": "xml",
    "application/trig": "trig",
    "application/n-quads": "nquads",
}


def triples(response: TestResponse) -> int:
    fmt = RDF_FORMATS[response.mimetype]
    if fmt in ("trig", "nquads"):
        return len(Dataset().parse(data=response.get_data(), format=fmt))
    return len(Graph().parse(data=response.get_data(), format=fmt))


# (Accept header, format parameter) -> media type of the answer
SELECT_FORMATS = [
    (None, None, "application/sparql-results+json"),
    ("*/*", None, "application/sparql-results+json"),
    ("application/sparql-results+json", None, "application/sparql-results+json"),
    ("application/sparql-results+xml", None, "application/sparql-results+xml"),
    ("text/csv", None, "text/csv"),
    ("text/tab-separated-values", None, "text/tab-separated-values"),
    ("application/json", None, "application/sparql-results+json"),  # canonical, not the alias
    ("application/sparql-results+json; charset=utf-8", None, "application/sparql-results+json"),
    ("text/csv; charset=utf-8; header=present", None, "text/csv"),
    ("application/sparql-results+xml;q=0.2, text/csv;q=0.9", None, "text/csv"),
    ("text/csv", "rdf", "text/csv"),  # a name for graphs only: Accept decides for solutions
    ("text/csv", "yaml", "text/csv"),  # a name we do not know: Accept decides
    (None, "srj", "application/sparql-results+json"),
    ("text/csv;q=0.5, application/sparql-results+xml", None, "application/sparql-results+xml"),
    ("text/html,application/xhtml+xml,*/*;q=0.8", None, "application/sparql-results+json"),
    (None, "json", "application/sparql-results+json"),
    (None, "xml", "application/sparql-results+xml"),
    (None, "csv", "text/csv"),
    (None, "tsv", "text/tab-separated-values"),
    ("text/csv", "xml", "application/sparql-results+xml"),  # the parameter wins
]

CONSTRUCT_FORMATS = [
    (None, None, "text/turtle"),
    ("*/*", None, "text/turtle"),
    ("text/turtle", None, "text/turtle"),
    ("application/n-triples", None, "application/n-triples"),
    ("application/ld+json", None, "application/ld+json"),
    ("application/rdf+xml", None, "application/rdf+xml"),
    ("application/trig", None, "application/trig"),
    ("application/n-quads", None, "application/n-quads"),
    (None, "turtle", "text/turtle"),
    (None, "ntriples", "application/n-triples"),
    (None, "jsonld", "application/ld+json"),
    (None, "rdfxml", "application/rdf+xml"),
    (None, "trig", "application/trig"),
    (None, "nquads", "application/n-quads"),
    (None, "xml", "application/rdf+xml"),
    (None, "rdf", "application/rdf+xml"),  # SPARQLWrapper's RDF
    (None, "nt", "application/n-triples"),
    (None, "n3", "text/turtle"),
    ("application/n-triples", "n3", "application/n-triples"),  # Accept chooses in the family
    ("application/n-triples; charset=utf-8", None, "application/n-triples"),
    ("text/plain", None, "application/n-triples"),
]

ASK_FORMATS = [
    (None, None, "application/sparql-results+json"),
    ("application/sparql-results+xml", None, "application/sparql-results+xml"),
    (None, "xml", "application/sparql-results+xml"),
]


def _send(
    form: str, client: FlaskClient, query: str, accept: str | None, fmt: str | None
) -> TestResponse:
    headers = {"Accept": accept} if accept else {}
    params = {"format": fmt} if fmt else {}
    return FORMS[form](client, query, headers=headers, params=params)


@pytest.mark.parametrize("form", FORMS)
@pytest.mark.parametrize(("accept", "fmt", "media_type"), SELECT_FORMATS)
def test_select_in_every_form_and_format(
    client: FlaskClient, form: str, accept: str | None, fmt: str | None, media_type: str
) -> None:
    response = _send(form, client, SELECT, accept, fmt)
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.mimetype == media_type
    assert rows(response) == SAMPLE_FINDINGS + 1
    if media_type.startswith("text/"):
        assert response.mimetype_params["charset"] == "utf-8"
    assert "Accept" in response.vary


@pytest.mark.parametrize("form", FORMS)
@pytest.mark.parametrize(("accept", "fmt", "media_type"), CONSTRUCT_FORMATS)
def test_construct_in_every_form_and_format(
    client: FlaskClient, form: str, accept: str | None, fmt: str | None, media_type: str
) -> None:
    response = _send(form, client, CONSTRUCT, accept, fmt)
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.mimetype == media_type
    assert triples(response) == SAMPLE_FINDINGS


@pytest.mark.parametrize("form", FORMS)
@pytest.mark.parametrize(("accept", "fmt", "media_type"), ASK_FORMATS)
def test_ask_in_every_form(
    client: FlaskClient, form: str, accept: str | None, fmt: str | None, media_type: str
) -> None:
    response = _send(form, client, ASK, accept, fmt)
    assert response.status_code == 200
    assert response.mimetype == media_type
    assert b"true" in response.get_data()


def test_describe_gives_rdf(client: FlaskClient) -> None:
    finding = "https://w3id.org/copkg/id/sample/finding-3"
    response = via_get(client, f"DESCRIBE <{finding}>")
    assert response.status_code == 200 and response.mimetype == "text/turtle"
    graph = Graph().parse(data=response.get_data(), format="turtle")
    assert set(graph.subjects()) == {URIRef(finding)}


# -- datasets ----------------------------------------------------------------------------------


def count(client: FlaskClient, query: str, **params: object) -> int:
    response = via_get(client, query, params=params)
    assert response.status_code == 200, response.get_data(as_text=True)
    return int(json.loads(response.get_data())["results"]["bindings"][0]["n"]["value"])


COUNT_ALL = "SELECT (COUNT(*) AS ?n) WHERE { ?s ?p ?o }"
COUNT_NAMED = "SELECT (COUNT(*) AS ?n) WHERE { GRAPH ?g { ?s ?p ?o } }"


def test_the_default_graph_is_the_union_of_the_named_graphs(client: FlaskClient) -> None:
    assert count(client, COUNT_ALL) == ALL_TRIPLES
    assert count(client, COUNT_NAMED) == ALL_TRIPLES


def test_default_graph_uri_restricts_the_default_graph(client: FlaskClient) -> None:
    assert count(client, COUNT_ALL, **{"default-graph-uri": str(ONTOLOGY_GRAPH)}) == 2
    # named graphs not listed are out of the dataset
    assert count(client, COUNT_NAMED, **{"default-graph-uri": str(ONTOLOGY_GRAPH)}) == 0


def test_named_graph_uri_restricts_the_named_graphs(client: FlaskClient) -> None:
    assert count(client, COUNT_NAMED, **{"named-graph-uri": SAMPLE_GRAPH}) == ALL_TRIPLES - 2
    assert count(client, COUNT_ALL, **{"named-graph-uri": SAMPLE_GRAPH}) == 0


def test_from_in_the_query_is_honoured(client: FlaskClient) -> None:
    assert count(client, f"SELECT (COUNT(*) AS ?n) FROM <{ONTOLOGY_GRAPH}> {{ ?s ?p ?o }}") == 2
    named = f"SELECT (COUNT(*) AS ?n) FROM NAMED <{ONTOLOGY_GRAPH}> {{ GRAPH ?g {{ ?s ?p ?o }} }}"
    assert count(client, named) == 2


def test_protocol_dataset_overrides_from(client: FlaskClient) -> None:
    query = f"SELECT (COUNT(*) AS ?n) FROM <{ONTOLOGY_GRAPH}> {{ ?s ?p ?o }}"
    assert count(client, query, **{"default-graph-uri": SAMPLE_GRAPH}) == ALL_TRIPLES - 2


def test_relative_iris_resolve_against_the_endpoint(client: FlaskClient) -> None:
    response = via_get(client, "SELECT ?x { BIND(<thing> AS ?x) }")
    value = json.loads(response.get_data())["results"]["bindings"][0]["x"]["value"]
    assert value == "http://localhost/thing"


def test_an_answer_over_the_row_limit_is_refused_unless_asked_for(client: FlaskClient) -> None:
    """A client cannot miss a cut: without LIMIT or partial=true, a 400 names the limit."""
    body = assert_error(via_get(client, "SELECT * { ?s ?p ?o }"), 400)
    assert "more than 50 rows" in body["error"] and "partial=true" in body["error"]
    partial = via_get(client, "SELECT * { ?s ?p ?o }", params={"partial": "true"})
    assert partial.status_code == 200 and rows(partial) == 50
    assert "50" in partial.headers["Copkg-Truncated"]
    own = via_get(client, "SELECT * { ?s ?p ?o } LIMIT 1000")  # its own LIMIT: it asked
    assert own.status_code == 200 and rows(own) == 50 and "Copkg-Truncated" in own.headers
    small = via_get(client, "SELECT * { ?s ?p ?o } LIMIT 5")
    assert rows(small) == 5 and "Copkg-Truncated" not in small.headers
    inner = via_get(client, "SELECT * { { SELECT * { ?s ?p ?o } LIMIT 1000 } }")
    assert inner.status_code == 400  # a LIMIT inside does not bound the answer


# -- service description -------------------------------------------------------------------


def test_service_description_for_tools(client: FlaskClient) -> None:
    response = client.get("/sparql")
    assert response.status_code == 200 and response.mimetype == "text/turtle"
    graph = Graph().parse(data=response.get_data(), format="turtle")
    service = graph.value(None, SD.endpoint, URIRef("http://localhost/sparql"))
    assert service is not None
    assert (service, SD.supportedLanguage, SD.SPARQL11Query) in graph
    assert (service, SD.feature, SD.UnionDefaultGraph) in graph
    formats = {str(f).rsplit("/", 1)[-1] for f in graph.objects(service, SD.resultFormat)}
    assert {"SPARQL_Results_JSON", "SPARQL_Results_CSV", "Turtle", "JSON-LD"} <= formats
    dataset = graph.value(service, SD.defaultDataset)
    names = {str(graph.value(named, SD.name)) for named in graph.objects(dataset, SD.namedGraph)}
    assert names == {str(ONTOLOGY_GRAPH), SAMPLE_GRAPH}


@pytest.mark.parametrize(
    ("accept", "fmt", "media_type"),
    [
        ("application/ld+json", None, "application/ld+json"),
        ("application/n-triples", None, "application/n-triples"),
        ("text/turtle; charset=utf-8", None, "text/turtle"),
        (None, "rdfxml", "application/rdf+xml"),
        (None, "rdf", "application/rdf+xml"),
        (None, "trig", "application/trig"),
        (None, "nquads", "application/n-quads"),
    ],
)
def test_service_description_in_other_formats(
    client: FlaskClient, accept: str | None, fmt: str | None, media_type: str
) -> None:
    response = client.get(
        "/sparql",
        headers={"Accept": accept} if accept else {},
        query_string={"format": fmt} if fmt else {},
    )
    assert response.status_code == 200 and response.mimetype == media_type
    if media_type in ("application/trig", "application/n-quads"):
        dataset = Dataset().parse(data=response.get_data(), format=RDF_FORMATS[media_type])
        names = {g.identifier for g in dataset.graphs() if len(g)}
        assert names == {URIRef("http://localhost/sparql#description")}  # named, not a bnode
        graph = dataset.graph(URIRef("http://localhost/sparql#description"))
    else:
        graph = Graph().parse(data=response.get_data(), format=RDF_FORMATS[media_type])
    assert (None, SD.endpoint, URIRef("http://localhost/sparql")) in graph


def test_browsers_go_to_the_query_page(client: FlaskClient) -> None:
    accept = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
    response = client.get("/sparql", headers={"Accept": accept})
    assert response.status_code == 303
    assert response.location.endswith("/query")


def test_service_description_names_the_update_endpoint_when_enabled(
    writable: FlaskClient,
) -> None:
    graph = Graph().parse(data=writable.get("/sparql").get_data(), format="turtle")
    assert (None, SD.supportedLanguage, SD.SPARQL11Update) in graph


# -- CORS --------------------------------------------------------------------------------------


def test_cors_on_queries(client: FlaskClient) -> None:
    origin = {"Origin": "https://example.org"}
    response = via_get(client, ASK, headers=origin)
    assert response.headers["Access-Control-Allow-Origin"] in ("*", "https://example.org")
    preflight = client.options(
        "/sparql",
        headers={
            **origin,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "Content-Type",
        },
    )
    assert preflight.status_code == 200
    assert "POST" in preflight.headers["Access-Control-Allow-Methods"]


def test_no_cors_on_updates(writable: FlaskClient) -> None:
    response = writable.post(
        "/update",
        data={"update": "CLEAR ALL"},
        headers={"Origin": "https://example.org", "Authorization": f"Bearer {TOKEN}"},
    )
    assert "Access-Control-Allow-Origin" not in response.headers


# -- errors --------------------------------------------------------------------------------------


def assert_error(response: TestResponse, status: int) -> dict[str, object]:
    """The response is the one JSON error shape with this status."""
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/json"
    body = response.get_json()
    assert body["ok"] is False and body["status"] == status
    assert isinstance(body["error"], str) and body["error"]
    assert isinstance(body["errors"], list)
    return body


@pytest.mark.parametrize("form", FORMS)
def test_malformed_query_is_400_with_position(client: FlaskClient, form: str) -> None:
    body = assert_error(FORMS[form](client, "SELECT * WHERE {\n  ?s ?p \n}"), 400)
    # the engine reports the furthest point its parser reached: after the "}"
    assert "line 3, column 2: unexpected end of query" in body["error"]
    (problem,) = body["errors"]
    assert (problem["line"], problem["column"]) == (3, 2)  # type: ignore[index]


def test_unknown_prefix_is_400(client: FlaskClient) -> None:
    body = assert_error(via_get(client, "SELECT * { ?s nope:p ?o }"), 400)
    assert "nope" in body["error"]


@pytest.mark.parametrize("method", ["PUT", "DELETE", "PATCH"])
def test_wrong_method_is_405_with_allow(client: FlaskClient, method: str) -> None:
    response = client.open("/sparql", method=method, query_string={"query": ASK})
    assert_error(response, 405)
    assert {"GET", "POST"} <= {m.strip() for m in response.headers["Allow"].split(",")}


def test_get_on_update_is_405(writable: FlaskClient) -> None:
    response = writable.get("/update", query_string={"update": "CLEAR ALL"})
    assert_error(response, 405)
    assert "POST" in response.headers["Allow"]


@pytest.mark.parametrize(
    ("query", "accept", "fmt"),
    [
        (SELECT, "image/png", None),
        (CONSTRUCT, "text/csv", None),
        (SELECT, "text/turtle", None),
        (SELECT, None, "turtle"),
        (CONSTRUCT, None, "csv"),
    ],
)
def test_unsatisfiable_format_is_406(
    client: FlaskClient, query: str, accept: str | None, fmt: str | None
) -> None:
    assert_error(_send("GET", client, query, accept, fmt), 406)


def test_an_unknown_format_falls_back_to_accept(client: FlaskClient) -> None:
    response = _send("GET", client, SELECT, None, "yaml")
    assert response.status_code == 200
    assert response.mimetype == "application/sparql-results+json"


def test_body_over_the_limit_is_413(client: FlaskClient) -> None:
    padding = "#" + "x" * 5000 + "\n"
    assert_error(via_body(client, padding + ASK), 413)
    assert_error(via_form(client, padding + ASK), 413)


@pytest.mark.parametrize(
    ("data", "content_type", "status"),
    [
        (b"ASK {}", "text/plain", 415),
        (b"ASK {}", None, 415),
        ("ASK {}".encode("utf-16"), "application/sparql-query; charset=UTF-16", 415),
        (b"ASK { FILTER(\xff) }", "application/sparql-query", 400),
        (b"", "application/sparql-query", 400),
        (b"format=json", "application/x-www-form-urlencoded", 400),
        (b"query=ASK%7B%7D&query=ASK%7B%7D", "application/x-www-form-urlencoded", 400),
    ],
)
def test_bad_post_bodies(
    client: FlaskClient, data: bytes, content_type: str | None, status: int
) -> None:
    assert_error(client.post("/sparql", data=data, content_type=content_type), status)


def test_query_in_body_and_url_is_400(client: FlaskClient) -> None:
    response = client.post(
        "/sparql",
        data=ASK,
        content_type="application/sparql-query",
        query_string={"query": ASK},
    )
    assert_error(response, 400)


@pytest.mark.parametrize(
    "send",
    [
        lambda c: c.get("/sparql", query_string={"update": "CLEAR ALL"}),
        lambda c: c.post("/sparql", data={"update": "CLEAR ALL"}),
        lambda c: c.post("/sparql", data="CLEAR ALL", content_type="application/sparql-update"),
        lambda c: c.get("/sparql", query_string={"query": "CLEAR ALL"}),
        lambda c: c.post("/sparql", data="DROP ALL", content_type="application/sparql-query"),
    ],
    ids=["GET update=", "form update=", "sparql-update body", "update as query", "direct"],
)
def test_updates_at_the_query_endpoint_are_403(
    client: FlaskClient, send: Callable[[FlaskClient], TestResponse]
) -> None:
    body = assert_error(send(client), 403)
    assert "/update" in body["error"]
    assert count(client, COUNT_ALL) == ALL_TRIPLES


def test_html_errors_outside_the_api(client: FlaskClient) -> None:
    response = client.get("/no/such/page", headers={"Accept": "text/html"})
    assert response.status_code == 404 and response.mimetype == "text/html"
    assert_error(client.get("/no/such/page.json"), 404)
    assert_error(client.get("/api/no-such-thing"), 404)


# -- updates -------------------------------------------------------------------------------------

INSERT = (
    "INSERT DATA { GRAPH <http://example.org/new> "
    "{ <http://example.org/s> <http://example.org/p> 1 } }"
)


def update(client: FlaskClient, text: str, token: str | None = TOKEN, **kw: object) -> TestResponse:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return client.post(
        "/update", data=text, content_type="application/sparql-update", headers=headers, **kw
    )


def test_update_with_the_token(writable: FlaskClient) -> None:
    response = update(writable, INSERT)
    assert response.status_code == 200 and response.get_json()["ok"] is True
    assert count(writable, COUNT_ALL) == ALL_TRIPLES + 1
    form = writable.post(
        "/update",
        data={"update": "DROP GRAPH <http://example.org/new>"},
        headers={"Authorization": f"Bearer {TOKEN}"},
    )
    assert form.status_code == 200
    assert count(writable, COUNT_ALL) == ALL_TRIPLES


@pytest.mark.parametrize("token", [None, "wrong", TOKEN + "x", ""])
def test_update_without_the_right_token_is_403(writable: FlaskClient, token: str | None) -> None:
    assert_error(update(writable, INSERT, token=token), 403)
    assert count(writable, COUNT_ALL) == ALL_TRIPLES


def test_basic_auth_is_not_a_token(writable: FlaskClient) -> None:
    response = writable.post(
        "/update",
        data=INSERT,
        content_type="application/sparql-update",
        headers={"Authorization": "Basic dXNlcjpzM2NyZXQ="},
    )
    assert_error(response, 403)


def test_updates_are_off_without_a_configured_token(client: FlaskClient) -> None:
    body = assert_error(update(client, INSERT, token="anything"), 403)
    assert "disabled" in body["error"]


def test_update_refused_on_a_read_only_store(tmp_path: Path) -> None:
    store = OxigraphStore.open_read_only(disk_store(tmp_path / "store"))
    application = create_app({"STORE": store, "TESTING": True, "UPDATE_TOKEN": TOKEN})
    try:
        assert_error(update(application.test_client(), INSERT), 403)
    finally:
        application.extensions["copkg"].close()


@pytest.mark.parametrize(
    ("text", "status"),
    [
        ("CLEAR XYZ", 400),
        ("SELECT * {}", 400),
        ("LOAD <http://example.org/data.ttl>", 400),
    ],
)
def test_bad_updates(writable: FlaskClient, text: str, status: int) -> None:
    assert_error(update(writable, text), status)


def test_query_sent_to_update_is_400(writable: FlaskClient) -> None:
    response = writable.post(
        "/update", data={"query": ASK}, headers={"Authorization": f"Bearer {TOKEN}"}
    )
    assert_error(response, 400)


def test_using_graph_uri(writable: FlaskClient) -> None:
    text = "INSERT { GRAPH <http://example.org/copy> { ?s ?p ?o } } WHERE { ?s ?p ?o }"
    response = update(writable, text, query_string={"using-graph-uri": str(ONTOLOGY_GRAPH)})
    assert response.status_code == 200, response.get_data(as_text=True)
    assert count(writable, COUNT_ALL, **{"default-graph-uri": "http://example.org/copy"}) == 2


def test_using_graph_uri_conflicts_with_with(writable: FlaskClient) -> None:
    text = "WITH <http://example.org/g> INSERT { ?s ?p ?o } WHERE { ?s ?p ?o }"
    response = update(writable, text, query_string={"using-graph-uri": str(ONTOLOGY_GRAPH)})
    assert_error(response, 400)


# -- VoID ----------------------------------------------------------------------------------------

VOIDNS = Namespace("http://rdfs.org/ns/void#")


@pytest.mark.parametrize(
    ("accept", "fmt"), [(None, "turtle"), ("application/ld+json; charset=utf-8", "json-ld")]
)
def test_void_describes_the_dataset(client: FlaskClient, accept: str | None, fmt: str) -> None:
    response = client.get("/.well-known/void", headers={"Accept": accept} if accept else {})
    assert response.status_code == 200
    graph = Graph().parse(data=response.get_data(), format=fmt)
    dataset = URIRef("http://localhost/.well-known/void#copkg")

    def count(query: str) -> int:
        answer = client.get("/sparql", query_string={"query": query}).get_json()
        return int(answer["results"]["bindings"][0]["n"]["value"])

    assert int(graph.value(dataset, VOIDNS.triples)) == count(
        "SELECT (COUNT(*) AS ?n) { GRAPH ?g { ?s ?p ?o } }"
    )
    assert graph.value(dataset, VOIDNS.sparqlEndpoint) == URIRef("http://localhost/sparql")
    assert (dataset, URIRef("http://purl.org/dc/terms/license"), None) in graph
    subsets = set(graph.objects(dataset, VOIDNS.subset))
    assert len(subsets) == count("SELECT (COUNT(DISTINCT ?g) AS ?n) { GRAPH ?g { ?s ?p ?o } }")
    partitions = list(graph.objects(dataset, VOIDNS.classPartition))
    assert len(partitions) == int(graph.value(dataset, VOIDNS.classes)) > 0
