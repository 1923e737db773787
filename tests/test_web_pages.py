"""Linked-data pages: landing page, resource pages and their twins, ontology, SVG pictures."""

from __future__ import annotations

import json
import os
import shutil
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from markupsafe import escape
from rdflib import Graph, URIRef

from copkg.config import Settings
from copkg.namespaces import COPKG
from copkg.store import QueryResult
from copkg.store.embedded import OxigraphStore

ROOT = Path(__file__).resolve().parents[1]
STUDY_DIR = ROOT / "data" / "studies" / "josserand2004"
#: The files of the real bundle the advisor and the matrix need; until they are all there the
#: web tests run on tests/fixtures/web_josserand.ttl.
NEEDED = ("roles.ttl", "contexts.ttl", "enactments.ttl", "conclusion.ttl")
J04 = "https://w3id.org/copkg/id/josserand2004/"


def real_data_ready() -> bool:
    """Whether the real bundle is complete (WEB_TESTS_DATA=real|fixture forces a choice)."""
    forced = os.environ.get("WEB_TESTS_DATA")
    if forced in ("real", "fixture"):
        return forced == "real"
    return all((STUDY_DIR / name).is_file() for name in NEEDED)


def make_web_project(root: Path) -> Settings:
    """A project folder with the real sources (or the web fixture as data) and its build."""
    from copkg.pipeline import build

    root.mkdir(parents=True, exist_ok=True)
    for name in ("ontology", "rules", "queries"):
        shutil.copytree(ROOT / name, root / name)
    study = root / "data" / "studies" / "josserand2004"
    if real_data_ready():
        shutil.copytree(ROOT / "data", root / "data")
    else:
        study.mkdir(parents=True)
        shutil.copy(ROOT / "tests" / "fixtures" / "web_josserand.ttl", study / "web.ttl")
    settings = Settings.load(root, environ={})
    build(settings, validate=False)
    return settings


@pytest.fixture(scope="session")
def web_settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return make_web_project(tmp_path_factory.mktemp("web") / "project")


@pytest.fixture(scope="module")
def app(web_settings: Settings) -> Iterator[Flask]:
    from copkg.web.app import create_app

    application = create_app({"SETTINGS": web_settings, "TESTING": True, "QUERY_WORKERS": 1})
    yield application
    application.extensions["copkg"].close()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


def store_of(app: Flask):  # noqa: ANN201 - the app's Store
    return app.extensions["copkg"].store


# -- landing ---------------------------------------------------------------------------------


def test_landing_page_shows_what_the_graph_holds(app: Flask, client: FlaskClient) -> None:
    response = client.get("/")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    data = client.get("/index.json").get_json()
    store = store_of(app)
    roles = store.query("SELECT DISTINCT ?r WHERE { ?r a copkg:ManagementRole }").rows
    assert {r["iri"] for r in data["roles"]} == {str(r["r"]) for r in roles}
    assert len(data["roles"]) == 5
    for role in data["roles"]:
        assert role["href"] in html
    total = store.query("SELECT (COUNT(*) AS ?n) WHERE { GRAPH ?g { ?s ?p ?o } }").rows[0]["n"]
    assert data["statements"] == int(total)
    cases = store.query("SELECT (COUNT(DISTINCT ?c) AS ?n) WHERE { ?c a copkg:Case }").rows
    counts = {c["class"]: c["count"] for c in data["classes"]}
    assert counts[str(COPKG.Case)] == int(cases[0]["n"])
    assert {g["graph"] for g in data["graphs"]} == set(store.graphs())
    assert "/id/josserand2004/study" in {s["href"] for s in data["studies"]}
    assert "/query?name=role-framework" in html
    assert f'<td class="num">{counts[str(COPKG.Case)]}</td>' in html


def test_landing_json_by_accept(client: FlaskClient) -> None:
    response = client.get("/", headers={"Accept": "application/json"})
    assert response.status_code == 200
    assert response.get_json()["ok"] is True


# -- resource pages --------------------------------------------------------------------------


def test_role_page_html(client: FlaskClient) -> None:
    response = client.get("/id/josserand2004/facilitation")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert "<h1>facilitation</h1>" in html.lower()
    assert 'href="/id/josserand2004/imposed-topic"' in html  # has risk, linked
    assert 'href="/ontology#ManagementRole"' in html  # ontology terms link to /ontology#Foo
    assert "p. 3" in html  # an evidence quote with its page
    assert 'href="/id/josserand2004/study"' in html  # the source study
    link = response.headers["Link"]
    for suffix in (".ttl", ".jsonld", ".nt", ".json"):
        assert f"</id/josserand2004/facilitation{suffix}>" in link
    assert 'rel="alternate"' in link


@pytest.mark.parametrize(
    ("accept", "media_type", "fmt"),
    [
        ("text/turtle", "text/turtle", "turtle"),
        ("application/ld+json", "application/ld+json", "json-ld"),
        ("application/n-triples", "application/n-triples", "nt"),
        ("application/rdf+xml", "application/rdf+xml", "xml"),
    ],
)
def test_rdf_twins_by_accept(client: FlaskClient, accept: str, media_type: str, fmt: str) -> None:
    response = client.get("/id/josserand2004/facilitation", headers={"Accept": accept})
    assert response.status_code == 200
    assert response.mimetype == media_type
    graph = Graph().parse(data=response.get_data(as_text=True), format=fmt)
    assert (None, COPKG.hasRisk, None) in graph
    assert any(graph.objects(None, COPKG.quoteText))  # the evidence travels with it


@pytest.mark.parametrize(
    ("suffix", "media_type", "fmt"),
    [
        (".ttl", "text/turtle", "turtle"),
        (".jsonld", "application/ld+json", "json-ld"),
        (".nt", "application/n-triples", "nt"),
    ],
)
def test_rdf_twins_by_suffix(client: FlaskClient, suffix: str, media_type: str, fmt: str) -> None:
    response = client.get(f"/id/josserand2004/facilitation{suffix}")
    assert response.status_code == 200
    assert response.mimetype == media_type
    graph = Graph().parse(data=response.get_data(as_text=True), format=fmt)
    assert len(graph) > 3


def test_json_twin(client: FlaskClient) -> None:
    for response in (
        client.get("/id/josserand2004/facilitation.json"),
        client.get("/id/josserand2004/facilitation", headers={"Accept": "application/json"}),
    ):
        assert response.status_code == 200
        data = response.get_json()
        assert data["iri"] == J04 + "facilitation"
        assert data["label"].lower() == "facilitation"
        assert any(t["value"] == str(COPKG.ManagementRole) for t in data["types"])
        assert data["evidence"] and all(q["page"] for q in data["evidence"])
        assert data["links"]["ttl"] == "/id/josserand2004/facilitation.ttl"


def test_unknown_resource_is_404(client: FlaskClient) -> None:
    response = client.get("/id/josserand2004/no-such-thing")
    assert response.status_code == 404
    assert response.mimetype == "text/html"
    response = client.get("/id/josserand2004/no-such-thing.json")
    assert response.status_code == 404
    body = response.get_json()
    assert body["ok"] is False and body["status"] == 404 and "no-such-thing" in body["error"]


def test_unacceptable_accept_is_406(client: FlaskClient) -> None:
    response = client.get("/id/josserand2004/facilitation", headers={"Accept": "image/png"})
    assert response.status_code == 406


def test_incoming_links_are_shown(client: FlaskClient) -> None:
    html = client.get("/id/josserand2004/imposed-topic").get_data(as_text=True)
    assert "Referred to by" in html
    assert 'href="/id/josserand2004/facilitation"' in html


def test_graph_and_rules_pages(client: FlaskClient) -> None:
    response = client.get("/graph/study/josserand2004.json")
    assert response.status_code == 200
    assert response.get_json()["statements"] > 0
    html = client.get("/rules").get_data(as_text=True)
    assert 'id="context-level-risk"' in html


# -- ontology --------------------------------------------------------------------------------


def test_ontology_documentation(client: FlaskClient) -> None:
    response = client.get("/ontology")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    for term in ("ManagementRole", "RiskAssessment", "hasRisk", "riskyRole", "High", "MainMode"):
        assert f'id="{term}"' in html, term
    assert '<script src="http' not in html and '<link rel="stylesheet" href="http' not in html


@pytest.mark.parametrize(
    ("path", "accept", "media_type", "fmt"),
    [
        ("/ontology.ttl", None, "text/turtle", "turtle"),
        ("/ontology.owl", None, "application/rdf+xml", "xml"),
        ("/ontology", "text/turtle", "text/turtle", "turtle"),
        ("/ontology", "application/rdf+xml", "application/rdf+xml", "xml"),
    ],
)
def test_ontology_for_tools(
    client: FlaskClient, path: str, accept: str | None, media_type: str, fmt: str
) -> None:
    headers = {"Accept": accept} if accept else {}
    response = client.get(path, headers=headers)
    assert response.status_code == 200
    assert response.mimetype == media_type
    graph = Graph().parse(data=response.get_data(as_text=True), format=fmt)
    assert (COPKG.ManagementRole, None, None) in graph


# -- pictures --------------------------------------------------------------------------------


def _svg(text: str) -> ET.Element:
    root = ET.fromstring(text)
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    return root


def test_timeline_svg(client: FlaskClient) -> None:
    response = client.get("/timeline/gas.svg")
    assert response.status_code == 200
    assert response.mimetype == "image/svg+xml"
    root = _svg(response.get_data(as_text=True))
    texts = " ".join("".join(t.itertext()) for t in root.iter("{http://www.w3.org/2000/svg}text"))
    assert "1992" in texts
    events = client.get("/timeline/gas.json").get_json()["events"]
    assert events and all(e["date"] for e in events)
    page = client.get("/timeline/gas")
    assert page.status_code == 200 and "<svg" in page.get_data(as_text=True)
    assert "<svg" in client.get("/id/josserand2004/gas").get_data(as_text=True)


def test_unknown_timeline_is_404(client: FlaskClient) -> None:
    assert client.get("/timeline/nowhere").status_code == 404
    assert client.get("/timeline/..%2F..%2Fetc").status_code == 404


def test_matrix(app: Flask, client: FlaskClient) -> None:
    response = client.get("/matrix.svg")
    assert response.status_code == 200
    root = _svg(response.get_data(as_text=True))
    risky = [
        g for g in root.iter("{http://www.w3.org/2000/svg}g") if "risky" in (g.get("class") or "")
    ]
    pairs = store_of(app).query("SELECT DISTINCT ?c ?r WHERE { ?c copkg:riskyRole ?r }").rows
    assert len(risky) == len(pairs) > 0
    data = client.get("/matrix.json").get_json()
    assert len(data["roles"]) == 5
    assert all(cell["assessments"] for cell in data["cells"])
    html = client.get("/matrix").get_data(as_text=True)
    first = data["cells"][0]["assessments"][0]["href"]
    assert first in html
    rules = {a["rule"] for cell in data["cells"] for a in cell["assessments"]}
    assert None not in rules and all(f"({escape(rule)})" in html for rule in rules)
    explanation = client.get(first)
    assert explanation.status_code == 200
    assert "derived by" in explanation.get_data(as_text=True).lower()


def test_svg_escapes_labels() -> None:
    from copkg.web.pages.svg import Axis, MatrixCell, TimelineEvent, matrix_svg, timeline_svg

    evil = 'a <b> & "c"'
    _svg(timeline_svg([TimelineEvent("2001-03", evil, "/x?a=1&b=2")], evil))
    _svg(matrix_svg([Axis("r", evil)], [Axis("c", evil)], [MatrixCell("r", "c", evil, "/y")], evil))
    _svg(timeline_svg([], "empty"))


def test_static_assets_are_served(client: FlaskClient) -> None:
    assert client.get("/static/style.css").status_code == 200
    js = client.get("/static/query.js")
    assert js.status_code == 200 and b"/api/queries" in js.data


def test_query_page(client: FlaskClient) -> None:
    html = client.get("/query?name=role-framework").get_data(as_text=True)
    assert '<textarea id="sparql"' in html and "/static/query.js" in html
    assert 'data-initial="role-framework"' in html
    assert "http://" not in html.replace("http://www.w3.org", "")


def test_every_page_has_no_external_assets(client: FlaskClient) -> None:
    for path in ("/", "/advisor", "/matrix", "/query", "/ontology", "/id/josserand2004/study"):
        html = client.get(path).get_data(as_text=True)
        for marker in ('src="http', "src='http", 'stylesheet" href="http'):
            assert marker not in html, (path, marker)


def test_twin_json_is_valid_json(client: FlaskClient) -> None:
    body = client.get("/id/josserand2004/study.jsonld").get_data(as_text=True)
    assert json.loads(body)


def test_local_paths_round_trip() -> None:
    from urllib.parse import unquote

    from hypothesis import given
    from hypothesis import strategies as st

    from copkg.web.pages.links import iri_of_path, local_path

    segment = st.text(
        alphabet=st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters="/#?%"),
        min_size=1,
        max_size=20,
    )

    @given(st.lists(segment, min_size=1, max_size=3))
    def round_trip(parts: list[str]) -> None:
        iri = "https://w3id.org/copkg/id/" + "/".join(parts)
        path = local_path(iri)
        assert path is not None and path.startswith("/id/")
        assert str(iri_of_path(unquote(path))) == iri

    round_trip()
    assert (
        local_path("https://w3id.org/copkg/ontology#ManagementRole") == "/ontology#ManagementRole"
    )
    assert local_path("http://example.org/x") is None


def test_incoming_links_come_a_page_at_a_time(app: Flask, client: FlaskClient) -> None:
    from copkg.web.pages import resource_data as pages

    role = "/id/josserand2004/facilitation.json"
    whole = client.get(role).get_json()
    total = whole["incomingTotal"]
    assert total == sum(len(p["subjects"]) for p in whole["incoming"]) or total > 1
    small = 3
    original = pages.INCOMING_PAGE
    pages.INCOMING_PAGE = small
    try:
        # ?incoming=1: a URL of its own, not the answer cached above with 100 a page
        first = client.get(f"{role}?incoming=1").get_json()
        shown = sum(len(p["subjects"]) for p in first["incoming"])
        assert shown <= small and first["incomingPages"] == -(-total // small)
        assert first["links"]["incomingNext"].endswith("?incoming=2")
        last = client.get(f"{role}?incoming={first['incomingPages']}").get_json()
        assert "incomingNext" not in last["links"] and "incomingPrev" in last["links"]
        html = client.get("/id/josserand2004/facilitation?incoming=1").get_data(as_text=True)
        assert 'rel="next" href="/id/josserand2004/facilitation?incoming=2"' in html
        assert client.get(f"{role}?incoming={first['incomingPages'] + 1}").status_code == 400
    finally:
        pages.INCOMING_PAGE = original


class _CountingStore:
    """A store that says it cannot change (of build `identity`) and counts the COUNT queries."""

    read_only = True

    def __init__(self, store: OxigraphStore, identity: str | None) -> None:
        self.store, self.build_identity, self.counts = store, identity, 0

    def query(self, sparql: str, **options: Any) -> QueryResult:
        self.counts += "COUNT(" in sparql
        return self.store.query(sparql, **options)


def test_incoming_links_are_counted_only_for_hubs_once_a_build(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from copkg.web.pages import resource_data as pages

    monkeypatch.setattr(pages, "INCOMING_PAGE", 3)
    ex = "https://example.org/"
    hub, leaf = URIRef(ex + "hub"), URIRef(ex + "leaf")
    links = [(URIRef(f"{ex}s{i}"), URIRef(ex + "p"), hub) for i in range(7)]
    memory = OxigraphStore()
    memory.add_graph(ex + "g", [*links, (URIRef(ex + "s0"), URIRef(ex + "q"), leaf)])
    store = _CountingStore(memory, "build-1")
    with Flask(__name__).app_context():
        incoming, total = pages.read_incoming(store, leaf)
        assert (total, store.counts) == (1, 0)  # one page: no count
        incoming, total = pages.read_incoming(store, hub)
        assert (total, store.counts) == (7, 1) and len(incoming[URIRef(ex + "p")]) == 3
        assert pages.read_incoming(store, hub)[1] == 7 and store.counts == 1  # kept
        last, total = pages.read_incoming(store, hub, 3)
        assert (total, len(last[URIRef(ex + "p")]), store.counts) == (7, 1, 1)
        assert pages.read_incoming(store, hub, 4) == ({}, 7)
        store.build_identity = "build-2"  # a new build counts again
        assert pages.read_incoming(store, hub)[1] == 7 and store.counts == 2
        store.build_identity = None  # a store that may change is counted each time
        pages.read_incoming(store, hub)
        pages.read_incoming(store, hub)
        assert store.counts == 4
