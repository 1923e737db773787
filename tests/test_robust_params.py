"""Named-query parameters that try to inject SPARQL (quotes, braces, `} UNION {`, `#`,
newlines, `>` in IRIs, ...) are bound as RDF terms: the answer is the one a neutral value gets,
or a 400, never that of a changed query. Property tests with hypothesis over the values."""

from __future__ import annotations

import re
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from web_helpers import SAMPLE_FINDINGS, SAMPLE_STUDY, LiveServer, memory_store
from werkzeug.test import TestResponse

from copkg.config import Settings
from copkg.namespaces import COPKG, ID
from copkg.querying.named_queries.binding import expand_iri
from copkg.web.app import create_app

QUERIES = {
    # gives back the value it was given: one row, the value exactly
    "echo": "SELECT ?value WHERE { BIND(?_text AS ?value) }",
    # a value nobody has: no rows, whatever the text
    "labelled": "SELECT ?s WHERE { ?s rdfs:label ?_label_en }",
    "count": "SELECT (COUNT(*) AS ?n) WHERE { ?s ?p ?o FILTER(STR(?o) = ?_text) }",
    "about": "SELECT ?p ?o WHERE { ?_about_iri ?p ?o }",
    "year": "SELECT ?s WHERE { ?s copkg:page ?_page_integer }",
    "optional": "SELECT ?s WHERE { ?s a copkg:Finding OPTIONAL { ?s rdfs:label ?__label_en } }",
}

#: Pieces of SPARQL an attacker would try, mixed with arbitrary text.
PIECES = [
    '"', "'", '"""', "'''", "\\", "\\u0022", "\\'", "{", "}", "} UNION {", "}} UNION {{",
    "#", "\n", "\r", "\r\n", "\t", " . ", ";", ",", ">", "<", "<http://e/x>", "?s ?p ?o",
    "?s", "$s", "?_text", "VALUES ?s { <http://e/x> }", "(", ")", "FILTER(true)", "\x00",
    "^^<http://www.w3.org/2001/XMLSchema#integer>", "@en", "\u2028", "\u0085",
    "SERVICE <http://127.0.0.1:9/> { }", "LIMIT 1", "OFFSET 0", "BIND(1 AS ?x)",
    "DROP ALL", "INSERT DATA { <a> <b> <c> }", "copkg:", "rdfs:label", "*/", "--",
]  # fmt: skip
HOSTILE = st.lists(
    st.one_of(st.sampled_from(PIECES), st.text(max_size=6)), min_size=1, max_size=8
).map("".join)
IRI_PIECES = [">", "<", "> } UNION { ?s ?p ?o } #", "{", "}", " ", "\n", '"', "#", "%3E", "\\"]
HOSTILE_IRI = st.builds(
    lambda base, tail: base + tail,
    st.sampled_from(
        ["http://e/a", f"{ID}{SAMPLE_STUDY}/finding-1", "copkg:Finding", "urn:x:y", "j04:"]
    ),
    st.lists(st.one_of(st.sampled_from(IRI_PIECES), st.text(max_size=4)), max_size=5).map("".join),
)

PROPERTY = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Flask]:
    root = tmp_path_factory.mktemp("params")
    (root / "queries").mkdir()
    for name, text in QUERIES.items():
        (root / "queries" / f"{name}.rq").write_text(f"#+ summary: {name}\n{text}\n")
    application = create_app(
        {"STORE": memory_store(), "TESTING": True, "ROOT": root, "QUERY_TIMEOUT": 5}
    )
    yield application
    application.extensions["copkg"].close()


@pytest.fixture(scope="module")
def client(app: Flask) -> FlaskClient:
    return app.test_client()


def ask(client: FlaskClient, name: str, method: str, **params: str) -> TestResponse:
    if method == "GET":
        return client.get(f"/api/queries/{name}", query_string=params)
    return client.post(f"/api/queries/{name}", data=params)


def rows(client: FlaskClient, name: str, method: str, **params: str) -> list[dict] | int:
    """The rows of a named query, or the status when it is not 200."""
    response = ask(client, name, method, **params)
    if response.status_code != 200:
        assert response.status_code == 400, response.get_data(as_text=True)
        assert response.get_json()["ok"] is False
        return 400
    return response.get_json()["rows"]


METHOD = st.sampled_from(["GET", "POST"])
KNOWN_SUBJECTS = {f"{ID}{SAMPLE_STUDY}/finding-1", str(COPKG.Finding)}
#: What the OPTIONAL query gives for a label nobody has: every finding, no label bound.
OPTIONAL_NEUTRAL = sorted(
    [{"s": f"{ID}{SAMPLE_STUDY}/finding-{i}"} for i in range(SAMPLE_FINDINGS)],
    key=lambda r: r["s"],
)


def test_the_neutral_answers(client: FlaskClient) -> None:
    """What a neutral value gets: the baseline the properties compare against."""
    assert rows(client, "labelled", "GET", label="no such label") == []
    assert rows(client, "count", "GET", text="no such text") == [{"n": 0}]
    assert sorted(rows(client, "optional", "GET", label="nothing"), key=lambda r: r["s"]) == (
        OPTIONAL_NEUTRAL
    )
    assert rows(client, "labelled", "GET", label="Finding 3") == [
        {"s": f"{ID}{SAMPLE_STUDY}/finding-3"}
    ]


@PROPERTY
@given(value=HOSTILE, method=METHOD)
def test_a_text_value_comes_back_unchanged(client: FlaskClient, value: str, method: str) -> None:
    """The strongest check: the query returns the value itself, as one literal, one row."""
    result = rows(client, "echo", method, text=value)
    if value == "":  # a missing required parameter
        assert result == 400
        return
    assert result == [{"value": value}]


@PROPERTY
@given(value=HOSTILE, method=METHOD)
def test_text_values_get_the_answer_of_a_neutral_value(
    client: FlaskClient, value: str, method: str
) -> None:
    neutral_labels, neutral_count = [], [{"n": 0}]
    if value.startswith("Finding "):  # a real label: not what this test is about
        return
    assert rows(client, "labelled", method, label=value) in (neutral_labels, 400)
    assert rows(client, "count", method, text=value) in (neutral_count, 400)
    optional = rows(client, "optional", method, label=value)
    if optional != 400:
        assert sorted(optional, key=lambda r: r["s"]) == OPTIONAL_NEUTRAL


@PROPERTY
@given(value=HOSTILE_IRI, method=METHOD)
def test_iri_values_are_an_iri_or_400(client: FlaskClient, value: str, method: str) -> None:
    """200 only with the rows of the very IRI the value names (none for an unknown one)."""
    result = rows(client, "about", method, about=value)
    if result == 400:
        return
    iri = expand_iri(value)
    assert iri is not None, value
    assert not any(c in iri for c in '<>{}"\\ \n'), iri
    expected = rows(client, "about", "GET", about=f"<{iri}>")
    assert result == expected
    if iri not in KNOWN_SUBJECTS:
        assert result == [], (value, result)


@PROPERTY
@given(value=HOSTILE, method=METHOD)
def test_typed_values_are_checked(client: FlaskClient, value: str, method: str) -> None:
    result = rows(client, "year", method, page=value)
    if value.strip().lstrip("+-").isdigit() and value.strip().isascii():
        assert isinstance(result, list)
    else:
        assert result == 400


def test_injection_by_parameter_name_is_refused(client: FlaskClient) -> None:
    for name in ["text} UNION {", "_text", "?text", "text\n", "page", "x"]:
        response = client.get("/api/queries/echo", query_string={"text": "a", name: "b"})
        assert response.status_code == 400, name
    response = client.get("/api/queries/echo", query_string=[("text", "a"), ("text", "b")])
    assert response.status_code == 400


# -- the project's own named queries -----------------------------------------------------------


@pytest.fixture(scope="module")
def project_client(built: Settings) -> Iterator[FlaskClient]:
    """The project's named queries over a build of the project (queries run in threads)."""
    application = create_app({"SETTINGS": built, "TESTING": True, "QUERY_WORKERS": 0})
    yield application.test_client()
    application.extensions["copkg"].close()


def _iri_parameters(root: Path) -> list[tuple[str, str]]:
    found = []
    for path in sorted((root / "queries").glob("*.rq")):
        text = path.read_text()
        for name in sorted(set(re.findall(r"\?__?([A-Za-z]+)_iri\b", text))):
            found.append((path.stem, name))
    return found


PROJECT_PARAMS = _iri_parameters(Path(__file__).resolve().parents[1])


#: Values a client could send for an IRI parameter: some are legal IRIs (run, and answer like
#: any unknown IRI), the others are refused (400) before any query runs.
PROJECT_VALUES = [
    "http://e/a?x=1;y='2'#frag",
    "http://e/a%3E%20%7D%20UNION%20%7B",
    "urn:x:y",
    "http://e/a> } UNION { ?s ?p ?o } #",
    "<http://e/a>} UNION {?s ?p ?o}",
    'http://e/a" . ?s ?p ?o',
    "http://e/a\n#",
    "j04:x> ?p ?o } #",
    "file:///etc/passwd",
]


@pytest.mark.parametrize(("query", "param"), PROJECT_PARAMS)
def test_project_queries_answer_hostile_iris_like_an_unknown_iri(
    project_client: FlaskClient, query: str, param: str
) -> None:
    neutral = rows(project_client, query, "GET", **{param: f"{ID}nobody/nothing"})
    for value in PROJECT_VALUES:
        result = rows(project_client, query, "GET", **{param: value})
        assert result in (neutral, 400), (value, result)
        if any(c in value for c in ' <>{}"\\') or value.startswith("file:"):
            assert result == 400, value


# -- on a live server: headers and bodies a client should not be able to use (issue 11) ----------


@pytest.fixture(scope="module")
def server(sample_server: LiveServer) -> LiveServer:
    """The worker's server over the sample store with the default settings (conftest)."""
    return sample_server


@pytest.mark.server
@pytest.mark.parametrize("script_name", ["/evil", "/sparql", "/x/../sparql", "/sparq"])
def test_a_client_sent_script_name_changes_nothing(server: LiveServer, script_name: str) -> None:
    """gunicorn trusts SCRIPT_NAME from 127.0.0.1 (a front proxy's): a client sending it
    moved the app's routes and URLs, or got a 500 when the path did not start with it."""
    headers = {"SCRIPT_NAME": script_name, "Accept": "application/sparql-results+json"}
    answer = requests.get(server.endpoint, params={"query": "ASK {}"}, headers=headers, timeout=30)
    assert answer.status_code == 200, answer.text[:300]
    assert answer.json()["boolean"] is True
    page = requests.get(server.url + "/", headers={"SCRIPT_NAME": script_name}, timeout=30)
    assert page.status_code == 200
    assert f'href="{script_name}/' not in page.text


@pytest.mark.server
def test_a_query_with_an_escape_past_unicode_is_400_on_the_wire(server: LiveServer) -> None:
    query = 'SELECT * { BIND("\\U00110000" AS ?x) }'
    for answer in (
        requests.get(server.endpoint, params={"query": query}, timeout=30),
        requests.post(server.endpoint, data={"query": query}, timeout=30),
    ):
        assert answer.status_code == 400, answer.text[:300]
        assert "Traceback" not in answer.text


@pytest.mark.server
@pytest.mark.parametrize("chunked", [False, True])
def test_a_body_over_the_limit_gets_its_413_not_a_broken_pipe(
    server: LiveServer, chunked: bool
) -> None:
    """Python clients send the whole body before reading: answered at once (unread), a 16 MiB
    POST got ConnectionResetError/BrokenPipeError instead of the 413."""
    body = b"query=" + b"x" * (16 << 20)
    pieces = [body[i : i + (1 << 20)] for i in range(0, len(body), 1 << 20)]
    data = iter(pieces) if chunked else body
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    answer = requests.post(server.endpoint, data=data, timeout=60, headers=form)
    assert answer.status_code == 413, answer.text[:300]
    assert answer.json()["ok"] is False
    if not chunked:  # urllib sends it all, then reads
        request = urllib.request.Request(server.endpoint, data=body, headers=form)
        with pytest.raises(urllib.error.HTTPError) as caught:
            urllib.request.urlopen(request, timeout=60)
        assert caught.value.code == 413
    assert requests.get(server.endpoint, params={"query": "ASK {}"}, timeout=30).ok
