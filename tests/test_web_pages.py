"""Linked-data pages: landing page, resource pages and their twins, ontology, SVG pictures."""

from __future__ import annotations

import json
import os
import re
import shutil
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from conftest import built_once
from flask import Flask
from flask.testing import FlaskClient
from markupsafe import escape
from rdflib import Graph, URIRef
from rdflib.namespace import DCTERMS, OWL

from copkg.config import Settings
from copkg.namespaces import COPKG, PREFIXES
from copkg.store import QueryResult
from copkg.store.embedded import OxigraphStore
from copkg.web.pages.links import local_path

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


def make_web_project(root: Path, run_folder: Path | None = None) -> Settings:
    """A project folder with the real sources (or the web fixture as data) and its build; with
    the real sources and the run's folder, a copy of the run's one build (conftest.built_once:
    the same sources, built the same way)."""
    from copkg.pipeline import build

    if run_folder is not None and real_data_ready():
        shutil.copytree(built_once(run_folder), root, symlinks=True)
        return Settings.load(root, environ={})
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
def web_settings(tmp_path_factory: pytest.TempPathFactory, run_folder: Path) -> Settings:
    return make_web_project(tmp_path_factory.mktemp("web") / "project", run_folder)


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


def test_home_says_what_it_is_and_leads_in(client: FlaskClient) -> None:
    """One sentence on what this is, the three ways in before anything else, each study once
    with its case count, the counts at the end, and a favicon."""
    html = client.get("/").get_data(as_text=True)
    data = client.get("/index.json").get_json()
    main = html[html.index('<main id="main"') :]
    lead = main.index('class="lead"')
    ways = [main.index(f'<li><a href="{path}">') for path in ("/advisor", "/matrix", "/query")]
    assert lead < min(ways) and max(ways) < main.index('id="studies"') < main.index('id="counts"')
    assert main.index('id="counts"') > main.index('id="queries"')  # counts come last
    sentence = re.search(r'<p class="lead">(.*?)</p>', main, re.S)
    assert sentence and "knowledge graph" in sentence.group(1)
    for role in data["roles"]:
        assert role["label"] in sentence.group(1)
    studies = re.search(r'<ul class="studies">(.*?)</ul>', main, re.S)
    assert studies
    items = re.findall(r"<li>(.*?)</li>", studies.group(1), re.S)
    assert len(items) == len(data["studies"])
    for study, item in zip(data["studies"], items, strict=True):
        text = re.sub(r"<[^>]+>", "", item)
        if study["title"]:
            assert text.count(study["title"]) == 1, text  # the title once, not label: title
        cases = study["cases"]
        expected = f"{cases} case" + ("" if cases == 1 else "s") if cases else "no case"
        assert re.search(rf"{expected}\b", text), (expected, text)
        assert " 1 cases" not in text
    assert '<link rel="icon" href="/static/favicon.svg" type="image/svg+xml">' in html
    icon = client.get("/static/favicon.svg")
    assert icon.status_code == 200 and icon.mimetype == "image/svg+xml"
    ET.fromstring(icon.data)


def test_base_template_has_a_skip_link_and_marks_the_current_page(client: FlaskClient) -> None:
    for path in ("/", "/matrix", "/advisor", "/query", "/rules", "/ontology"):
        html = client.get(path).get_data(as_text=True)
        assert html.index('class="skip-link" href="#main"') < html.index("<header")
        assert '<main id="main"' in html
        current = re.findall(r'<a href="([^"]+)" aria-current="page">', html)
        assert current == [path], (path, current)
    page = client.get("/id/josserand2004/facilitation").get_data(as_text=True)
    assert 'aria-current="page"' not in page


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


class _TreeParents(HTMLParser):
    """Each link of the class tree, and the link of the <li> it is nested in (None at the top)."""

    def __init__(self) -> None:
        super().__init__()
        self.inside = False
        self.stack: list[str | None] = []
        self.parents: dict[str, set[str | None]] = {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "nav" and ("class", "class-tree") in attrs:
            self.inside = True
        elif self.inside and tag == "li":
            self.stack.append(None)
        elif self.inside and tag == "a" and self.stack:
            target = (dict(attrs).get("href") or "").lstrip("#")
            self.stack[-1] = target
            outer = self.stack[-2] if len(self.stack) > 1 else None
            self.parents.setdefault(target, set()).add(outer)

    def handle_endtag(self, tag: str) -> None:
        if self.inside and tag == "li":
            self.stack.pop()
        elif tag == "nav":
            self.inside = False


def _ontology_rows(app: Flask, query: str) -> list[dict]:
    from copkg.web import get_store

    with app.app_context():
        return list(get_store().query(query).rows)


def test_ontology_class_tree_follows_subclass_of(app: Flask, client: FlaskClient) -> None:
    html = client.get("/ontology").get_data(as_text=True)
    tree = _TreeParents()
    tree.feed(html)
    rows = _ontology_rows(
        app,
        """SELECT ?c ?p WHERE {
        ?c a owl:Class . FILTER (STRSTARTS(STR(?c), STR(copkg:)))
        OPTIONAL { ?c rdfs:subClassOf ?p . ?p a owl:Class FILTER (STRSTARTS(STR(?p), STR(copkg:))
                   && ?p != ?c) } }""",
    )
    expected: dict[str, set[str | None]] = {}
    for row in rows:
        parent = str(row["p"]).removeprefix(str(COPKG)) if "p" in row else None
        expected.setdefault(str(row["c"]).removeprefix(str(COPKG)), set()).add(parent)
    assert len(expected) > 20
    assert tree.parents == expected
    for name in expected:
        assert f'<section class="term" id="{name}">' in html, name


def test_ontology_lists_each_class_instances(app: Flask, client: FlaskClient) -> None:
    from copkg.web.pages.ontology_guide import MAX_INSTANCES

    html = client.get("/ontology").get_data(as_text=True)
    section = html[html.index('<section class="term" id="ManagementRole">') :]
    section = section[: section.index("</section>")]
    roles = _ontology_rows(app, "SELECT ?r WHERE { ?r a copkg:ManagementRole }")
    assert len(roles) == 5
    for row in roles:
        assert f'<a href="{local_path(row["r"])}">' in section, row["r"]
    assert "(5; " in section
    quotes = _ontology_rows(app, "SELECT (COUNT(DISTINCT ?q) AS ?n) WHERE { ?q a copkg:Quote }")
    count = int(quotes[0]["n"])
    assert count > MAX_INSTANCES
    section = html[html.index('<section class="term" id="Quote">') :]
    row = section[section.index("instances in the data") :]
    row = row[: row.index("</tr>")]
    assert row.count('<a href="/id/') == MAX_INSTANCES
    assert f"all {count}</a>" in row


def test_ontology_search_namespaces_and_citation(client: FlaskClient) -> None:
    html = client.get("/ontology").get_data(as_text=True)
    assert '<input type="search" id="term-filter"' in html
    assert '<label for="term-filter">' in html
    assert '<script src="/static/ontology.js"' in html and "<script>" not in html
    assert client.get("/static/ontology.js").status_code == 200
    table = html[html.index('id="namespaces"') :]
    table = table[: table.index("</table>")]
    for prefix, iri in PREFIXES.items():
        assert f"<td><code>{prefix}:</code></td><td><code>{iri}</code></td>" in table
    turtle = Graph().parse(data=client.get("/ontology.ttl").get_data(as_text=True), format="turtle")
    ontology = URIRef(str(COPKG).rstrip("#"))
    cite = html[html.index('id="cite"') :]
    cite = cite[: cite.index("</section>")]
    for predicate in (DCTERMS.title, DCTERMS.creator, OWL.versionInfo, DCTERMS.license):
        value = turtle.value(ontology, predicate)
        assert value is not None, predicate
        assert cite.count(escape(str(value))) >= 2, predicate  # in the APA text and the BibTeX
    assert "@misc{" in cite and "[Ontology]" in cite


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
    response = client.get("/timeline/josserand2004/gas.svg")
    assert response.status_code == 200
    assert response.mimetype == "image/svg+xml"
    root = _svg(response.get_data(as_text=True))
    texts = " ".join("".join(t.itertext()) for t in root.iter("{http://www.w3.org/2000/svg}text"))
    assert "1992" in texts
    events = client.get("/timeline/josserand2004/gas.json").get_json()["events"]
    assert events and all(e["date"] for e in events)
    page = client.get("/timeline/josserand2004/gas")
    assert page.status_code == 200 and "<svg" in page.get_data(as_text=True)
    resource = client.get("/id/josserand2004/gas").get_data(as_text=True)
    assert "<svg" in resource and 'href="/timeline/josserand2004/gas"' in resource
    # the slugs before they named the study lead to the same timelines
    for old in ("/timeline/gas", "/timeline/gas.svg", "/timeline/gas.json"):
        moved = client.get(old)
        assert moved.status_code == 301, old
        assert moved.headers["Location"] == old.replace("/gas", "/josserand2004/gas")


def test_a_new_study_cannot_take_over_a_timeline(app: Flask, web_settings: Settings) -> None:
    """A study whose organisation is also called `gas` (an ID sorting before josserand2004)
    took over /timeline/gas; each study's organisation has its own timeline."""
    from copkg.web.app import create_app

    store = OxigraphStore()
    store.native.extend(store_of(app).native.quads_for_pattern(None, None, None, None))
    other = "https://w3id.org/copkg/id/aaa2020/"
    store.update(f"""PREFIX copkg: <{COPKG}> PREFIX rdfs: <http://www.w3.org/2000/01/rdf-schema#>
    INSERT DATA {{ GRAPH <https://w3id.org/copkg/graph/study/aaa2020> {{
      <{other}gas> a copkg:Organisation ; rdfs:label "Another gas company"@en .
      <{other}founding> copkg:eventOf <{other}gas> ; rdfs:label "founded"@en ;
        copkg:date "1850"^^<http://www.w3.org/2001/XMLSchema#gYear> .
    }} }}""")
    taken = create_app({"STORE": store, "ROOT": web_settings.root, "TESTING": True})
    try:
        client = taken.test_client()
        ours = client.get("/timeline/josserand2004/gas.json").get_json()
        theirs = client.get("/timeline/aaa2020/gas.json").get_json()
        assert ours["organisation"].endswith("/josserand2004/gas")
        assert theirs["organisation"] == f"{other}gas"
        assert [e["label"] for e in theirs["events"]] == ["founded"]
        assert client.get("/timeline/gas").headers["Location"] == "/timeline/josserand2004/gas"
        links = {o["timeline"] for o in client.get("/index.json").get_json()["organisations"]}
        assert {"/timeline/josserand2004/gas", "/timeline/aaa2020/gas"} <= links
    finally:
        taken.extensions["copkg"].close()


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
    assert '<option value="role-framework" selected>' in html
    assert 'data-autorun="true"' in html
    # no link out of the service (the namespaces of the predeclared prefixes are data)
    shown = re.sub(r"data-prefixes='[^']*'", "", html)
    assert "http://" not in shown.replace("http://www.w3.org", "")


def test_query_page_carries_the_editor_and_its_licences(client: FlaskClient) -> None:
    html = client.get("/query").get_data(as_text=True)
    assert '<script src="/static/vendor/copkg-editor.js"></script>' in html
    assert '<link rel="stylesheet" href="/static/vendor/copkg-editor.css">' in html
    assert 'data-autorun="false"' in html
    editor = client.get("/static/vendor/copkg-editor.js")
    assert editor.status_code == 200 and b"CopkgEditor" in editor.data
    assert client.get("/static/vendor/copkg-editor.css").status_code == 200
    licences = client.get("/static/vendor/copkg-editor.LICENSES.txt").get_data(as_text=True)
    for package in ("@codemirror/view", "@codemirror/legacy-modes", "@lezer/highlight"):
        assert f"==== {package} " in licences
    assert "Permission is hereby granted" in licences
    # the predeclared prefixes reach the page's script (completion, prefixed names)
    start = html.index("data-prefixes='") + len("data-prefixes='")
    prefixes = json.loads(html[start : html.index("'", start)])
    assert prefixes["copkg"] == "https://w3id.org/copkg/ontology#"


def test_query_page_has_no_inline_script(client: FlaskClient) -> None:
    """A Content-Security-Policy without 'unsafe-inline' must not break the page."""
    html = client.get("/query?query=ASK%20%7B%7D").get_data(as_text=True)
    scripts = re.findall(r"<script\b[^>]*>", html)
    assert scripts and all("src=" in tag for tag in scripts), scripts
    assert not re.search(r"\son[a-z]+\s*=", html), "inline event handler"
    assert "javascript:" not in html


def test_query_permalink_prefills_the_editor(client: FlaskClient) -> None:
    query = 'SELECT ?r WHERE { ?r a copkg:ManagementRole } # "<&>"'
    html = client.get("/query", query_string={"query": query}).get_data(as_text=True)
    assert f'aria-describedby="editor-help">{escape(query)}</textarea>' in html
    assert 'data-autorun="true"' in html
    blank = client.get("/query?query=").get_data(as_text=True)
    assert 'data-autorun="false"' in blank and "GROUP BY ?class" in blank
    unknown = client.get("/query?name=no-such-query").get_data(as_text=True)
    assert 'data-initial=""' in unknown and 'data-autorun="false"' in unknown


def test_query_page_lists_the_named_queries(client: FlaskClient) -> None:
    html = client.get("/query").get_data(as_text=True)
    for path in sorted((ROOT / "queries").glob("*.rq")):
        assert f'<option value="{path.stem}">' in html, path.stem


def test_risky_roles_offers_its_voices(client: FlaskClient) -> None:
    """The API lists an enumerated parameter's values (the page's form shows a select box)."""
    queries = {q["name"]: q for q in client.get("/api/queries").get_json()["queries"]}
    voice = next(p for p in queries["risky-roles"]["parameters"] if p["name"] == "voice")
    assert voice["enum"] == ["author", "curator", "derived-from-curator"]
    bureaucracy = "/api/queries/risky-roles?controlMode=copkg:Bureaucracy"
    author = client.get(bureaucracy + "&voice=author").get_json()
    everyone = client.get(bureaucracy).get_json()
    assert everyone["rows"] and author["count"] < everyone["count"]
    refused = client.get("/api/queries/risky-roles?voice=nobody")
    assert refused.status_code == 400 and "voice" in refused.get_json()["error"]


def test_static_files_are_shipped_with_the_package() -> None:
    """pyproject's package-data covers every file the pages load from /static."""
    import fnmatch
    import tomllib

    data = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    patterns = data["tool"]["setuptools"]["package-data"]["copkg"]
    package = ROOT / "src" / "copkg"
    static = [p for p in (package / "web" / "static").rglob("*") if p.is_file()]
    assert any(p.parent.name == "vendor" for p in static)
    for path in static:
        relative = path.relative_to(package).as_posix()
        assert any(
            fnmatch.fnmatch(relative, pattern) and pattern.count("/") == relative.count("/")
            for pattern in patterns
        ), relative


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


def test_incoming_links_come_a_page_at_a_time(web_settings: Settings) -> None:
    """(In the test's process: a store handed in, its page reads run by threads.)"""
    from copkg.pipeline.open import open_store
    from copkg.querying.pages import reading as pages
    from copkg.web.app import create_app

    app = create_app({"STORE": open_store(web_settings), "TESTING": True, "QUERY_WORKERS": 0,
                      "RESPONSE_CACHE_BYTES": 0})  # fmt: skip
    client = app.test_client()
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
    from copkg.querying.pages import reading as pages

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
        assert (total, store.counts) == (7, 1) and len(incoming[ex + "p"]) == 3
        assert pages.read_incoming(store, hub)[1] == 7 and store.counts == 1  # kept
        last, total = pages.read_incoming(store, hub, 3)
        assert (total, len(last[ex + "p"]), store.counts) == (7, 1, 1)
        assert pages.read_incoming(store, hub, 4) == ({}, 7)
        store.build_identity = "build-2"  # a new build counts again
        assert pages.read_incoming(store, hub)[1] == 7 and store.counts == 2
        store.build_identity = None  # a store that may change is counted each time
        pages.read_incoming(store, hub)
        pages.read_incoming(store, hub)
        assert store.counts == 4


def _contrast(one: str, two: str) -> float:
    def luminance(colour: str) -> float:
        channels = [int(colour[i : i + 2], 16) / 255 for i in (1, 3, 5)]
        linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
        return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]

    high, low = sorted((luminance(one), luminance(two)), reverse=True)
    return (high + 0.05) / (low + 0.05)


def test_matrix_svg_names_risks_with_a_full_legend(client: FlaskClient) -> None:
    svg = _svg(client.get("/matrix.svg").get_data(as_text=True))
    ns = {"s": "http://www.w3.org/2000/svg"}
    data = client.get("/matrix.json").get_json()
    risky = [g for g in svg.iter("{http://www.w3.org/2000/svg}g") if g.get("class") == "cell risky"]
    assert len(risky) == len(data["cells"])
    for cell in risky:
        text = " ".join(t.text or "" for t in cell.iterfind(".//s:tspan", ns))
        assert text and text != "risky"
        rect = cell.find(".//s:rect", ns)
        assert rect is not None and _contrast(rect.get("fill"), "#ffffff") >= 4.5
    fills = {r.get("fill") for r in svg.iterfind(".//s:g[@class='legend']/s:rect", ns)}
    cells = {r.get("fill") for r in svg.iterfind(".//s:g/s:a/s:rect", ns)}
    cells |= {r.get("fill") for r in svg.iterfind(".//s:g/s:rect", ns)}
    assert cells and cells <= fills  # every kind of cell has its legend entry


def test_timeline_svg_labels_fit_and_list_their_event_types() -> None:
    from copkg.web.pages.svg import TimelineEvent, text_width, timeline_svg

    long = "a very long label " * 8
    events = [
        TimelineEvent("1990", long, kind="start"),
        TimelineEvent("2004-12", long),
        TimelineEvent("1997-06", "middle", kind="reorganisation"),
    ]
    svg = _svg(timeline_svg(events, "Timeline"))
    width = float(svg.get("width"))
    ns = {"s": "http://www.w3.org/2000/svg"}
    for text in svg.iterfind(".//s:text", ns):
        for span in text.iterfind("s:tspan", ns):
            x, size = float(span.get("x")), float(text.get("font-size") or 12)
            w = text_width(span.text or "", size)
            left, right = {"end": (x - w, x), "middle": (x - w / 2, x + w / 2)}.get(
                text.get("text-anchor") or "start", (x, x + w)
            )
            assert left >= 0 and right <= width, (span.text, left, right)
    legend = [t.text for t in svg.iterfind(".//s:g[@class='legend']/s:text", ns)]
    assert legend == ["Event types", "start", "reorganisation", "other event"]  # by first date


def test_resource_page_reads_as_a_page_not_as_rdf(client: FlaskClient) -> None:
    """The header shows the types and the title (no table rows repeating them), literals carry
    their datatype as a badge, quotes are block quotes with their page and a citation, and
    links to the page are grouped by property."""
    html = client.get("/id/josserand2004/facilitation").get_data(as_text=True)
    data = client.get("/id/josserand2004/facilitation.json").get_json()
    start = html.index('id="properties"')
    table = html[start : html.index("</table>", start)]
    for hidden in ("rdf-syntax-ns#type", "rdf-schema#label", "skos/core#prefLabel"):
        assert hidden not in table, hidden
    assert data["label"] not in re.sub(r"<[^>]+>", "", table.split("</th>", 1)[0])
    assert '<p class="types"><a class="type" href="/ontology#ManagementRole"' in html
    assert "xsd:" not in html and "copkg:AuthorVoice" not in html
    assert re.search(r'<span class="badge" title="[^"]+XMLSchema#\w+">\w+</span>', html) or (
        "XMLSchema#" not in json.dumps(data["properties"])
    )
    quote = data["evidence"][0]
    assert f"<p>{escape(quote['text'])}</p></blockquote>" in html
    assert f'<span class="page">p. {quote["page"]}</span>' in html
    assert '<details class="cite"><summary>cite</summary>' in html
    assert "(Josserand, 2004, p. " in html
    assert "Josserand, E. (2004). Cooperation within Bureaucracies" in html
    assert "@article{josserand2004," in html and "pages = {307--339}" in html
    groups = re.findall(r'<details class="incoming"[^>]*>\s*<summary>(.*?)</summary>', html, re.S)
    # the links from statement nodes (rdf:subject, rdf:object) read as explanations instead
    explained = ("http://www.w3.org/1999/02/22-rdf-syntax-ns#subject",
                 "http://www.w3.org/1999/02/22-rdf-syntax-ns#object")  # fmt: skip
    incoming = [item for item in data["incoming"] if item["predicate"] not in explained]
    assert len(groups) == len(incoming) > 1
    for group, item in zip(groups, incoming, strict=True):
        assert f'<span class="count">{len(item["subjects"])}</span>' in group


def test_organisation_page_links_its_timeline(client: FlaskClient) -> None:
    html = client.get("/id/josserand2004/gas").get_data(as_text=True)
    assert '<a href="/timeline/josserand2004/gas">The timeline of' in html
    assert client.get("/timeline/josserand2004/gas").status_code == 200


def test_unsafe_iris_are_not_links(app: Flask) -> None:
    """A javascript: (or data:) IRI in the data is shown as text, never as an href."""
    from copkg.querying.pages.resource import Term, Value
    from copkg.web.pages.links import linkable

    assert linkable("https://example.org/x") and linkable("mailto:a@b.org")
    assert linkable("https://w3id.org/copkg/id/x")
    assert not linkable("javascript:alert(1)") and not linkable(" JavaScript:alert(1)")
    assert not linkable("data:text/html,<b>x</b>")
    with app.test_request_context("/"):
        template = app.jinja_env.get_template("_value.html")
        evil = template.render(v=Value(Term("iri", "javascript:alert(1)"), None))
        good = template.render(v=Value(Term("iri", "https://example.org/page"), "a page"))
        integer = "http://www.w3.org/2001/XMLSchema#integer"
        literal = template.render(v=Value(Term("literal", "3", None, integer), None))
    assert "<a " not in evil and "javascript:alert(1)" in evil
    assert '<a href="https://example.org/page"' in good
    assert '<span class="badge"' in literal and ">integer</span>" in literal


HTML_PAGES = (
    "/",
    "/advisor",
    "/matrix",
    "/query",
    "/ontology",
    "/rules",
    "/timeline/josserand2004/gas",
    "/id/josserand2004/facilitation",
    "/id/josserand2004/gas",
    "/graph/inferences",
    "/no-such-page",
)


@pytest.mark.parametrize("path", HTML_PAGES)
def test_every_html_page_is_sent_under_a_content_security_policy(
    client: FlaskClient, path: str
) -> None:
    """No inline script or handler anywhere, so that the policy can forbid them; no frame."""
    response = client.get(path)
    assert response.mimetype == "text/html"
    policy = response.headers["Content-Security-Policy"]
    assert "default-src 'self'" in policy and "frame-ancestors 'none'" in policy
    assert "unsafe-inline" not in policy
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    html = response.get_data(as_text=True)
    # every script is a file of the service's own; a JSON-LD data block is data, not script
    scripts = [t for t in re.findall(r"<script\b[^>]*>", html) if "application/ld+json" not in t]
    assert all(re.search(r'\ssrc="/static/', tag) for tag in scripts), scripts
    assert not re.search(r"<[^>]+\son[a-z]+\s*=", html), "inline event handler"
    assert not re.search(r"<[^>]+\sstyle\s*=", html), "inline style"
    assert "<style" not in html
    assert 'href="javascript:' not in html.lower()


def test_pictures_and_answers_carry_the_headers_too(client: FlaskClient) -> None:
    for path in ("/matrix.svg", "/index.json", "/static/style.css"):
        response = client.get(path)
        assert response.headers["X-Content-Type-Options"] == "nosniff", path
        assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"], path


def test_long_values_are_cut_with_a_link_to_all_of_them(app: Flask, web_settings: Settings) -> None:
    """A 12 MB literal became a 25 MB page: pages show the first LONG_VALUE characters of a
    value or quote, and link to the Turtle twin, which has all of it."""
    from copkg.web.app import create_app
    from copkg.web.pages.links import LONG_VALUE

    store = OxigraphStore()
    store.native.extend(store_of(app).native.quads_for_pattern(None, None, None, None))
    long = "word " * 100_000
    quote = "https://w3id.org/copkg/id/josserand2004/long-quote"
    store.update(f"""PREFIX copkg: <{COPKG}> PREFIX rdfs: <http://www.w3.org/2000/01/rdf-schema#>
    INSERT DATA {{ GRAPH <https://w3id.org/copkg/graph/study/josserand2004> {{
      <https://w3id.org/copkg/id/josserand2004/gas> rdfs:comment "{long}"@en ;
        copkg:hasEvidence <{quote}> .
      <{quote}> a copkg:Quote ; copkg:quoteText "{long}" ; copkg:page 312 .
    }} }}""")
    application = create_app({"STORE": store, "ROOT": web_settings.root, "TESTING": True})
    try:
        client = application.test_client()
        page = client.get("/id/josserand2004/gas")
        html = page.get_data(as_text=True)
        assert page.status_code == 200
        assert len(html) < 10 * LONG_VALUE + len(client.get("/id/josserand2004/comp").data)
        assert f"show all {len(long)} characters" in html
        assert 'href="/id/josserand2004/gas.ttl"' in html
        assert 'href="/id/josserand2004/long-quote.ttl"' in html
        assert long[: LONG_VALUE - 10] in html and long not in html
        twin = client.get("/id/josserand2004/gas.ttl").get_data(as_text=True)
        assert long.strip() in twin
    finally:
        application.extensions["copkg"].close()


def test_home_describes_the_dataset_for_catalogues(client: FlaskClient) -> None:
    """A schema.org Dataset in JSON-LD on the home page (data blocks are not scripts: the
    Content-Security-Policy has nothing to block)."""
    import json
    import re

    html = client.get("/").get_data(as_text=True)
    (block,) = re.findall(r'<script type="application/ld\+json">(.*?)</script>', html, re.S)
    dataset = json.loads(block)
    assert dataset["@type"] == "Dataset" and dataset["@context"] == "https://schema.org/"
    assert dataset["license"].startswith("https://creativecommons.org/licenses/by/")
    assert {d["contentUrl"] for d in dataset["distribution"]} == {
        "http://localhost/sparql",
        "http://localhost/.well-known/void",
    }
    assert any("Josserand" in c for c in dataset["citation"])


def test_twins_give_the_datatypes_of_the_sources_and_pass_the_shapes(client: FlaskClient) -> None:
    """The store keeps "312"^^xsd:positiveInteger as the integer 312; a resource's twin writes
    it back as the ontology declares it, so the twin passes copsh:DatatypeRangeShape, as its
    source does (a quote: copkg:page is an xsd:positiveInteger)."""
    from rdflib import Graph
    from rdflib.namespace import XSD

    from copkg.namespaces import COPKG

    quote = client.get("/sparql", query_string={
        "query": "SELECT ?q WHERE { ?q a copkg:Quote ; copkg:page ?p } LIMIT 1"
    }).get_json()["results"]["bindings"][0]["q"]["value"]  # fmt: skip
    path = quote.replace("https://w3id.org/copkg", "")
    twin = Graph().parse(data=client.get(path + ".ttl").get_data(as_text=True), format="turtle")
    pages = list(twin.objects(None, COPKG.page))
    assert pages and all(p.datatype == XSD.positiveInteger for p in pages), pages


def test_the_matrix_says_the_voice_of_each_risky_cell(client: FlaskClient) -> None:
    """A risky cell is derived: it carries the voice of its derivation's weakest premise
    (the author's claim, or derived from a curator's reading), in the JSON and on the page."""
    data = client.get("/matrix.json").get_json()
    voices = {cell["voice"] for cell in data["cells"]}
    assert voices <= {"author", "curator", "derived-from-curator"}, voices
    assert "author" in voices
    assert all(cell["voice"] for cell in data["cells"]), data["cells"]
    assert 'class="badge voice"' in client.get("/matrix").get_data(as_text=True)


def test_derived_statements_read_as_explanations(client: FlaskClient) -> None:
    """A role's page says what the rules derived about it as sentences (by which rule, from how
    many facts, in which voice), not as a list of `rdf:object of` links to statement nodes."""
    import re

    html = client.get("/id/josserand2004/facilitation").get_data(as_text=True)
    derived = re.search(r'<section id="derived">(.*?)</section>', html, re.S)
    assert derived, "no derived statements on the role's page"
    assert "from " in derived.group(1) and ">how</a>" in derived.group(1)
    assert 'class="badge voice"' in derived.group(1)
    incoming = re.search(r'<section id="incoming">(.*?)</section>', html, re.S)
    assert incoming is None or "rdf:object" not in incoming.group(1)
    assert incoming is None or "object</span> of" not in incoming.group(1)
