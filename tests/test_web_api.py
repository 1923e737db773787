"""The named-query API: list, run with parameters bound as terms, CSV, errors, OpenAPI."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from test_web_pages import J04, make_web_project

from copkg.config import Settings
from copkg.querying.executor import Answer, Job

ROOT = Path(__file__).resolve().parents[1]
QUERY_NAMES = sorted(p.stem for p in (ROOT / "queries").glob("*.rq"))


@pytest.fixture(scope="module")
def api_settings(tmp_path_factory: pytest.TempPathFactory, run_folder: Path) -> Settings:
    return make_web_project(tmp_path_factory.mktemp("api") / "project", run_folder)


@pytest.fixture(scope="module")
def app(api_settings: Settings) -> Iterator[Flask]:
    from copkg.web.app import create_app

    application = create_app({"SETTINGS": api_settings, "TESTING": True, "QUERY_WORKERS": 1})
    yield application
    application.extensions["copkg"].close()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


def test_list_names_every_query(client: FlaskClient) -> None:
    response = client.get("/api/queries")
    assert response.status_code == 200
    data = response.get_json()
    assert [q["name"] for q in data["queries"]] == QUERY_NAMES
    for query in data["queries"]:
        assert query["summary"] and query["sparql"]
        assert query["links"]["json"] == f"/api/queries/{query['name']}"
        assert query["links"]["csv"].endswith(".csv")
        for param in query["parameters"]:
            assert {"name", "required", "type"} <= set(param)


def test_parameters_come_from_the_query(client: FlaskClient) -> None:
    queries = {q["name"]: q for q in client.get("/api/queries").get_json()["queries"]}
    about = queries["evidence-for"]["parameters"]
    # `study` keeps one study's quotes (and is what the pages run over)
    assert [p["name"] for p in about] == ["about", "study", "voice"]
    assert about[0]["type"] == "IRI" and about[0]["default"] == J04 + "imposed-topic"


@pytest.mark.parametrize("name", QUERY_NAMES)
def test_every_query_runs(client: FlaskClient, name: str) -> None:
    response = client.get(f"/api/queries/{name}")
    assert response.status_code == 200, response.get_data(as_text=True)
    data = response.get_json()
    assert data["ok"] is True and data["query"] == name
    assert isinstance(data["rows"], list) and data["count"] == len(data["rows"])


def test_role_framework_has_the_five_roles(client: FlaskClient) -> None:
    data = client.get("/api/queries/role-framework").get_json()
    roles = {row.get("role") for row in data["rows"]}
    assert {
        J04 + r for r in ("stimulation", "facilitation", "support", "control", "recognition")
    } <= roles


def test_run_with_an_iri_parameter(client: FlaskClient) -> None:
    by_iri = client.get("/api/queries/evidence-for", query_string={"about": J04 + "facilitation"})
    by_curie = client.get("/api/queries/evidence-for", query_string={"about": "j04:facilitation"})
    assert by_iri.status_code == by_curie.status_code == 200
    rows = by_iri.get_json()["rows"]
    assert rows and rows == by_curie.get_json()["rows"]
    assert by_iri.get_json()["parameters"] == {"about": J04 + "facilitation"}
    assert all(isinstance(r["page"], int) for r in rows)
    other = client.get("/api/queries/evidence-for", query_string={"about": J04 + "support"})
    assert other.get_json()["rows"] != rows


@pytest.mark.parametrize("how", ["suffix", "accept"])
def test_csv(client: FlaskClient, how: str) -> None:
    if how == "suffix":
        response = client.get("/api/queries/role-framework.csv")
    else:
        response = client.get("/api/queries/role-framework", headers={"Accept": "text/csv"})
    assert response.status_code == 200
    assert response.mimetype == "text/csv"
    table = list(csv.reader(io.StringIO(response.get_data(as_text=True))))
    json_rows = client.get("/api/queries/role-framework").get_json()
    assert table[0] == json_rows["variables"]
    assert len(table) - 1 == json_rows["count"]


def test_unknown_query_is_404_in_the_error_shape(client: FlaskClient) -> None:
    response = client.get("/api/queries/no-such-query")
    assert response.status_code == 404
    body = response.get_json()
    assert body["ok"] is False and body["status"] == 404 and body["error"]
    assert isinstance(body["errors"], list)


@pytest.mark.parametrize(
    ("params", "which"),
    [
        ({"about": "not an iri"}, "about"),
        ({"about": "javascript:alert(1)"}, "about"),
        ({"about": J04 + "x", "colour": "red"}, "colour"),
    ],
)
def test_bad_parameter_is_400_saying_which(client: FlaskClient, params: dict, which: str) -> None:
    response = client.get("/api/queries/evidence-for", query_string=params)
    assert response.status_code == 400
    body = response.get_json()
    assert body["ok"] is False and body["status"] == 400
    text = body["error"] + " ".join(str(e) for e in body["errors"])
    assert which in text


def test_repeated_parameter_is_400(client: FlaskClient) -> None:
    response = client.get("/api/queries/evidence-for?about=j04:support&about=j04:control")
    assert response.status_code == 400


@pytest.mark.parametrize(
    "value",
    [
        J04 + "facilitation> } UNION { ?finding ?p ?o } #",
        J04 + 'facilitation" . ?s ?p ?o',
        "j04:facilitation } ; DROP ALL ; #",
        J04 + "facilitation%3E%20%7D%20UNION%20%7B%20?a%20?b%20?c",
    ],
)
def test_injection_attempts_are_bound_as_terms(client: FlaskClient, value: str) -> None:
    clean = client.get("/api/queries/evidence-for", query_string={"about": J04 + "facilitation"})
    response = client.get("/api/queries/evidence-for", query_string={"about": value})
    assert response.status_code in (200, 400)
    if response.status_code == 200:
        # a term that names nothing: no rows, certainly not the whole graph
        assert response.get_json()["rows"] == []
    assert client.get("/api/queries/role-framework").status_code == 200  # nothing dropped
    assert clean.get_json()["rows"]


@pytest.mark.parametrize(
    "path",
    [
        "/api/queries/../pyproject.toml",
        "/api/queries/..%2F..%2Fpyproject.toml",
        "/api/queries/%2e%2e/%2e%2e/pyproject",
        "/api/queries/%2e%2e%2fqueries%2frisky-roles",
        "/api/queries/%2Fetc%2Fpasswd",
        "/api/queries//etc/passwd",
        "/api/queries/queries/risky-roles",
        "/api/queries/risky-roles.rq",
        "/api/queries/C:%5Cwindows",
    ],
)
def test_path_traversal_is_404(client: FlaskClient, path: str) -> None:
    response = client.get(path, follow_redirects=True)
    assert response.status_code == 404
    assert b"[build-system]" not in response.data and b"root:" not in response.data


def test_openapi_is_valid_and_documents_every_query(client: FlaskClient) -> None:
    validator = pytest.importorskip("openapi_spec_validator")
    response = client.get("/api/openapi.json")
    assert response.status_code == 200
    document = response.get_json()
    validator.validate(document)
    for name in QUERY_NAMES:
        assert f"/api/queries/{name}" in document["paths"]
    evidence = document["paths"]["/api/queries/evidence-for"]["get"]
    assert [p["name"] for p in evidence["parameters"]] == ["about", "study", "voice", "page"]
    assert evidence["parameters"][0]["schema"]["format"] == "uri"
    # pages of a page_over query hold the rows of N values of its parameter, not N rows
    assert "values of `study`" in evidence["parameters"][3]["description"]
    assert "/api/advice" in document["paths"]


def test_a_listing_serves_its_first_page_with_links(client: FlaskClient) -> None:
    response = client.get("/api/queries/role-study-comparison")
    data = response.get_json()
    assert data["page"] == 1 and data["pageOver"] == "study" and data["lastPage"] == 1
    assert data["hasNext"] is False and "next" not in data["links"]
    assert data["links"]["first"].endswith("page=1")
    assert 'rel="first"' in response.headers["Link"]
    studies = {row["study"] for row in data["rows"]}
    assert studies == set(data["pageValues"]) and J04 + "study" in studies
    past = client.get("/api/queries/role-study-comparison?page=2")
    assert past.status_code == 400 and "past the end" in past.get_json()["error"]


def test_the_study_parameter_keeps_one_study(client: FlaskClient) -> None:
    data = client.get(
        "/api/queries/role-study-comparison", query_string={"study": "j04:study"}
    ).get_json()
    assert {row["study"] for row in data["rows"]} == {J04 + "study"}
    assert len(data["rows"]) == 5  # one cell a role


@pytest.mark.parametrize(
    "params",
    [
        {"controlMode": "copkg:Bureaucracy"},
        {"controlMode": "copkg:InputControl", "voice": "author"},
        {"controlMode": "copkg:Bureaucracy", "page": "1"},
    ],
)
def test_every_link_of_an_answer_keeps_its_parameters(
    client: FlaskClient, params: dict[str, str]
) -> None:
    """The CSV link and the page links give the same answer as the JSON they came with
    (the CSV link dropped the parameters: risky-roles for Clan had 8 rows, its CSV 34)."""
    body = client.get("/api/queries/risky-roles", query_string=params).get_json()
    links = body["links"]
    csv_rows = client.get(links["csv"]).get_data(as_text=True).strip().splitlines()
    assert len(csv_rows) - 1 == body["count"], links["csv"]
    for rel in ("first", "last"):
        if rel in links:
            again = client.get(links[rel]).get_json()
            assert again["parameters"] == body["parameters"], links[rel]
    for name in params:
        if name != "page":
            assert f"{name}=" in links["csv"]


@pytest.mark.parametrize("name", QUERY_NAMES)
def test_rows_written_by_the_worker_are_those_read_back(app: Flask, name: str) -> None:
    """The rows a query worker writes for the API (ROWS_JSON) are those read back from its
    SPARQL JSON answer, as the API made them before; the answer is what jsonify writes."""
    from flask import json as flask_json

    from copkg.querying.executor import Job
    from copkg.querying.named_queries import load_named_queries, prepare
    from copkg.store.results import ROWS_JSON, SPARQL_JSON, QueryResult

    response = app.test_client().get(f"/api/queries/{name}")
    assert response.status_code == 200, response.get_data(as_text=True)
    with app.app_context():
        assert response.data == app.json.response(response.get_json()).get_data()
    switch = app.extensions["copkg"]
    named = load_named_queries(ROOT / "queries")[name]
    prepared = prepare(switch.store, named, {})
    answers = {
        wire: switch.executor.run(
            Job(
                prepared.text,
                bindings=prepared.rest,
                media_types={"select": wire, "ask": wire, "graph": "application/n-triples"},
            )
        )
        for wire in (ROWS_JSON, SPARQL_JSON)
    }
    result = QueryResult.from_sparql_json(flask_json.loads(answers[SPARQL_JSON].body))
    rows, variables = answers[ROWS_JSON].body.split(b"\n", 1)
    expected = result.to_json_rows()
    assert rows == flask_json.dumps(expected, separators=(",", ":"), sort_keys=True).encode()
    assert flask_json.loads(variables) == (result.variables if result.kind == "select" else [])
    assert answers[ROWS_JSON].count == len(expected) == response.get_json()["count"]


KINDS = """#+ summary: What is of a type
#+ enumerate:
#+   - type
PREFIX copkg: <https://w3id.org/copkg/ontology#>
SELECT ?thing WHERE { ?thing a ?_type_iri } ORDER BY ?thing
"""


def test_values_from_the_data_are_read_by_the_workers_once_a_build(tmp_path: Path) -> None:
    """A parameter's values found in the data (`enumerate: [type]`) are listed, checked and
    documented from a page read the query workers run, once a build: the web process never
    queries its store (here it would fail)."""
    from copkg.querying.named_queries import enumerated_values, load_named_queries
    from copkg.web.app import create_app

    settings = make_web_project(tmp_path / "project")
    (settings.queries_dir / "kinds.rq").write_text(KINDS, encoding="utf-8")
    application = create_app({"SETTINGS": settings, "TESTING": True, "QUERY_WORKERS": 1})
    try:
        switch = application.extensions["copkg"]
        query = load_named_queries(settings.queries_dir)["kinds"]
        param = query.parameters[0]
        expected = enumerated_values(switch.store, query, param)
        assert len(expected) > 3

        def refuse(*args: object, **kwargs: object) -> None:
            raise AssertionError("the web process read its store")

        jobs = []
        run = switch.executor.run

        def counting(job: Job) -> Answer:
            jobs.append(job.read)
            return run(job)

        with pytest.MonkeyPatch.context() as patch:
            for read in ("query", "query_serialized", "quad_count"):
                patch.setattr(switch.store, read, refuse)
            patch.setattr(switch.executor, "run", counting)
            client = application.test_client()
            listed = client.get("/api/queries").get_json()["queries"]
            kinds = next(q for q in listed if q["name"] == "kinds")
            assert kinds["parameters"][0]["enum"] == expected
            schema = client.get("/api/openapi.json").get_json()["paths"]["/api/queries/kinds"]
            assert schema["get"]["parameters"][0]["schema"]["enum"] == expected
            answer = client.get("/api/queries/kinds", query_string={"type": expected[0]})
            assert answer.status_code == 200 and answer.get_json()["count"] > 0
            wrong = client.get("/api/queries/kinds", query_string={"type": J04 + "nothing"})
            assert wrong.status_code == 400 and "is not one of" in wrong.get_json()["error"]
        assert jobs.count("named_values") == 1 and jobs.count(None) == 1
    finally:
        application.extensions["copkg"].close()
