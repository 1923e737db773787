"""The W3C SPARQL 1.1 Protocol test suite (shared/w3c/sparql11-protocol) against the app.

Each test of the manifest is one or more HTTP requests (vocabulary ht:) with the expected status
class, result format and boolean. The runner replaces the `/sparql/` path prefix with the query
endpoint, or with the update endpoint (and the bearer token) for the requests of update tests
that are not queries, and loads the graphs of `ut:graphData` into a fresh throwaway store under
the names the queries use, so that nothing is ever fetched.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from xml.etree import ElementTree

import pytest
from flask import Flask
from rdflib import Graph, Namespace
from rdflib.collection import Collection
from rdflib.namespace import RDFS

from copkg.store.embedded import OxigraphStore
from copkg.web.app import create_app

REPO = Path(__file__).resolve().parents[1]
SUITE_DIRS = [
    Path(os.environ["COPKG_W3C_DIR"]) if os.environ.get("COPKG_W3C_DIR") else None,
    REPO.parent / "shared" / "w3c" / "sparql11-protocol",
    Path("/work/shared/w3c/sparql11-protocol"),
]
SUITE = next((d for d in SUITE_DIRS if d is not None and (d / "manifest.ttl").is_file()), None)
TOKEN = "w3c-test-token"

MF = Namespace("http://www.w3.org/2001/sw/DataAccess/tests/test-manifest#")
HT = Namespace("http://www.w3.org/2011/http#")
HTS = Namespace("http://www.w3.org/2011/http-statusCodes#")
CNT = Namespace("http://www.w3.org/2011/content#")
UT = Namespace("http://www.w3.org/2009/sparql/tests/test-update#")

BOOLEAN_TYPES = {"application/sparql-results+json", "application/sparql-results+xml"}
TABULAR_TYPES = BOOLEAN_TYPES | {"text/csv", "text/tab-separated-values"}
RDF_TYPES = {
    "text/turtle": "turtle",
    "application/n-triples": "nt",
    "application/rdf+xml": "xml",
    "application/ld+json": "json-ld",
    "application/trig": "trig",
    "application/n-quads": "nquads",
}


@dataclass
class HttpRequest:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes | None
    expected_status: set[str]
    expected_format: str | None
    expected_boolean: bool | None


@dataclass
class ProtocolTest:
    name: str
    title: str
    graphs: dict[str, Path] = field(default_factory=dict)
    requests: list[HttpRequest] = field(default_factory=list)


def _load_manifest(suite: Path) -> list[ProtocolTest]:
    graph = Graph().parse(suite / "manifest.ttl", format="turtle", publicID=suite.as_uri() + "/")
    manifest = next(graph.subjects(MF.entries, None))
    tests = []
    for entry in Collection(graph, graph.value(manifest, MF.entries)):
        test = ProtocolTest(str(entry).rsplit("#", 1)[-1], str(graph.value(entry, MF.name)))
        for data in graph.objects(entry, UT.graphData):
            file = Path(str(graph.value(data, UT.graph)).removeprefix("file://"))
            test.graphs[str(graph.value(data, RDFS.label))] = suite / file.name
        action = graph.value(entry, MF.action)
        for node in Collection(graph, graph.value(action, HT.requests)):
            header_list = graph.value(node, HT.headers)
            headers = {
                str(graph.value(h, HT.fieldName)): str(graph.value(h, HT.fieldValue))
                for h in (Collection(graph, header_list) if header_list is not None else ())
            }
            body = None
            if (content := graph.value(node, HT.body)) is not None:
                encoding = str(graph.value(content, CNT.characterEncoding) or "UTF-8")
                body = str(graph.value(content, CNT.chars)).encode(encoding)
            response = graph.value(node, HT.resp)
            boolean = graph.value(response, MF.expectedBoolean)
            test.requests.append(
                HttpRequest(
                    method=str(graph.value(node, HT.methodName)),
                    path=str(graph.value(node, HT.absolutePath)),
                    headers=headers,
                    body=body,
                    expected_status={
                        str(s).removeprefix(str(HTS))
                        for s in graph.objects(response, MF.expectedStatus)
                    },
                    expected_format=(
                        str(f) if (f := graph.value(response, MF.expectedFormat)) else None
                    ),
                    expected_boolean=None if boolean is None else boolean.toPython(),
                )
            )
        tests.append(test)
    return tests


TESTS = _load_manifest(SUITE) if SUITE else []


def test_the_suite_is_there() -> None:
    if SUITE is None:
        pytest.skip(
            "the W3C SPARQL 1.1 Protocol suite is not here: put shared/w3c/sparql11-protocol/ "
            "beside the clone (../shared/w3c) or set COPKG_W3C_DIR"
        )
    assert len(TESTS) == 34


@pytest.fixture
def app_for() -> Iterator[dict[str, Flask]]:
    apps: dict[str, Flask] = {}
    yield apps
    for app in apps.values():
        app.extensions["copkg"].close()


def _app(test: ProtocolTest) -> Flask:
    store = OxigraphStore()
    for name, file in test.graphs.items():
        store.add_graph(name, Graph().parse(file, format="nt"))
    return create_app({"STORE": store, "TESTING": True, "UPDATE_TOKEN": TOKEN})


def _is_update(test: ProtocolTest, req: HttpRequest) -> bool:
    """Requests of update tests go to /update, except the queries that check their effect."""
    content_type = req.headers.get("content-type", "")
    return "update" in test.name and not content_type.startswith("application/sparql-query")


def _check_format(req: HttpRequest, content_type: str, body: bytes) -> None:
    media_type = content_type.split(";", maxsplit=1)[0].strip()
    if req.expected_format == "boolean":
        assert media_type in BOOLEAN_TYPES, content_type
        if media_type.endswith("json"):
            value = json.loads(body)["boolean"]
        else:
            element = ElementTree.fromstring(body).find(
                "{http://www.w3.org/2005/sparql-results#}boolean"
            )
            assert element is not None
            value = element.text == "true"
        if req.expected_boolean is not None:
            assert value is req.expected_boolean
    elif req.expected_format == "tabular":
        assert media_type in TABULAR_TYPES, content_type
    elif req.expected_format == "RDF":
        assert media_type in RDF_TYPES, content_type
        Graph().parse(data=body, format=RDF_TYPES[media_type])


@pytest.mark.parametrize("test", TESTS, ids=[t.name for t in TESTS])
def test_w3c_protocol(test: ProtocolTest, app_for: dict[str, Flask]) -> None:
    app = app_for.setdefault(test.name, _app(test))
    client = app.test_client()
    for number, req in enumerate(test.requests, 1):
        update = _is_update(test, req)
        path = req.path.replace("/sparql/", "/update" if update else "/sparql", 1)
        headers = {k: v for k, v in req.headers.items() if k.lower() != "content-type"}
        if update:
            headers["Authorization"] = f"Bearer {TOKEN}"
        response = client.open(
            path,
            method=req.method,
            headers=headers,
            data=req.body,
            content_type=req.headers.get("content-type"),
        )
        status_class = f"StatusCode{response.status_code // 100}xx"
        assert status_class in req.expected_status, (
            f"{test.title}, request {number} ({req.method} {path}): "
            f"{response.status_code} {response.get_data(as_text=True)[:300]}"
        )
        if response.status_code < 300 and req.expected_format:
            _check_format(req, response.content_type, response.get_data())
