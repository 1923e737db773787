"""SERVICE, LOAD and FROM cannot be hidden from the check: it reads the text as the engine does.

The queries below hide a remote call behind escapes, comments, long strings, brackets, white
space and prefixed names. Each is given to the check and, when the check lets it through, to
the engine itself (pyoxigraph, in this process, with no sandbox): a TCP listener on 127.0.0.1
proves that nothing the check accepted reached the network.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pyoxigraph as ox
import pytest
from flask import Flask
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from watchers import Listener
from web_helpers import sample_app

from copkg.errors import CopkgError
from copkg.querying.safety import analyse_query
from copkg.store.embedded import OxigraphStore
from copkg.store.lexer import LexError, tokens
from copkg.store.scan import check_remote_calls

#: The query of the report: rdflib read `"\u0022"` as `"""` (a long string hiding what
#: follows) and the old scanner read `owl:Ontology]SERVICE` as one prefixed name.
REPORTED = (
    'SELECT * WHERE {{ BIND("\\u0022" AS ?a) [a owl:Ontology]SERVICE <{url}> {{ ?x ?y ?z }} '
    'BIND("\\u0022" AS ?b) }}'
)


@pytest.fixture(scope="module")
def listener() -> Iterator[Listener]:
    watcher = Listener("/sparql")
    yield watcher
    watcher.close()


@pytest.fixture(scope="module")
def engine() -> ox.Store:
    """A store where `?s ?p ?o` and `[a owl:Ontology]` match, so a SERVICE after them runs."""
    store = ox.Store()
    store.add(
        ox.Quad(
            ox.NamedNode("http://example.org/o"),
            ox.NamedNode("http://www.w3.org/1999/02/22-rdf-syntax-ns#type"),
            ox.NamedNode("http://www.w3.org/2002/07/owl#Ontology"),
        )
    )
    return store


PREFIXES = "PREFIX owl: <http://www.w3.org/2002/07/owl#>\n"


def reaches_network(engine: ox.Store, listener: Listener, query: str) -> bool:
    """Run `query` on the engine without any check; say whether the listener saw a connection."""
    before = listener.connections
    try:
        answer = engine.query(query)
        if isinstance(answer, ox.QuerySolutions | ox.QueryTriples):
            list(answer)
    except (SyntaxError, OSError, RuntimeError, ValueError):
        pass
    deadline = time.monotonic() + 0.05  # the engine connects before it answers
    while listener.connections == before and time.monotonic() < deadline:
        time.sleep(0.005)
    return listener.connections > before


def accepted(query: str) -> bool:
    try:
        analyse_query(query, graphs=())
        check_remote_calls(query)
    except CopkgError as error:
        assert error.status == 400, error
        return False
    return True


def test_the_engine_does_call_out_without_the_check(engine: ox.Store, listener: Listener) -> None:
    """Positive control: the reported query does reach a listener when nothing checks it."""
    assert reaches_network(engine, listener, PREFIXES + REPORTED.format(url=listener.url))


def test_the_reported_query_is_refused(listener: Listener) -> None:
    query = REPORTED.format(url=listener.url)
    with pytest.raises(CopkgError, match="SERVICE") as error:
        analyse_query(query, graphs=())
    assert error.value.status == 400
    with pytest.raises(CopkgError, match="SERVICE"):
        check_remote_calls(query)


@pytest.fixture(scope="module", params=["threads", "processes"])
def app(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Flask]:
    with sample_app(request.param, tmp_path_factory.mktemp("s")) as application:
        yield application


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_the_reported_query_is_refused_over_http(
    app: Flask, listener: Listener, method: str
) -> None:
    query = REPORTED.format(url=listener.url)
    before = listener.connections
    client = app.test_client()
    if method == "GET":
        response = client.get("/sparql", query_string={"query": query})
    else:
        response = client.post("/sparql", data={"query": query})
    assert response.status_code == 400, response.get_data(as_text=True)
    assert "SERVICE" in response.get_json()["error"]
    time.sleep(0.05)
    assert listener.connections == before


# -- property tests ---------------------------------------------------------------------------

#: Text that may stand before the call: strings with escaped quotes, long strings, comments,
#: IRIs and local names holding `#`, brackets that end a pattern with no space after them.
NOISE = st.sampled_from(
    [
        "",
        'BIND("\\u0022" AS ?n1)',
        "BIND('\\u0027' AS ?n1)",
        'BIND("""a"b""" AS ?n1)',
        "BIND('''a'b''' AS ?n1)",
        'BIND("\\"" AS ?n1)',
        "# a comment \\u000A\n",
        "# a comment\r",
        "BIND(<http://example.org/#x> AS ?n1)",
        "BIND(owl:a\\#b AS ?n1)",
        "BIND(owl:a\\'b AS ?n1)",
        "[a owl:Ontology]",
        "?s ?p ?o .",
        "?s ?p ?o",
        "FILTER(?o<?s)",
        "{ ?s ?p ?o }",
    ]
)
SPACE = st.sampled_from(["", " ", "\n", "\t", "\r\n", " # note\n", "#\r"])
KEYWORD = st.sampled_from(["SERVICE", "service", "SeRvIcE", "SERV\\u0049CE", "S\\u0045RVICE"])
SILENT = st.sampled_from(["", "SILENT ", "silent\n"])
WRAP = st.sampled_from(["{}", "OPTIONAL {{ {} }}", "FILTER EXISTS {{ {} }}", "{{ {} }} UNION {{}}"])


def endpoints(url: str) -> st.SearchStrategy[tuple[str, str]]:
    """(prologue, endpoint) pairs: the listener as an IRI, escaped, relative, or a prefix."""
    escaped = url.replace("1", "\\u0031", 1)
    return st.sampled_from(
        [
            ("", f"<{url}>"),
            ("", f"<{escaped}>"),
            (f"PREFIX e: <{url.rsplit('/', 1)[0]}/>\n", "e:sparql"),
            (f"PREFIX : <{url}>\n", ":"),
            (f"BASE <{url}>\n", "<sparql>"),
            (f"BASE <{url}>\n", "<>"),
        ]
    )


#: The generated queries that the engine, unchecked, did send to the listener.
CALLED: list[str] = []


@st.composite
def hidden_services(draw: st.DrawFn, url: str) -> str:
    prologue, endpoint = draw(endpoints(url))
    keyword, silent = draw(KEYWORD), draw(SILENT)
    before, after = draw(NOISE), draw(NOISE)
    gap1, gap2 = draw(SPACE), draw(SPACE)
    glue = draw(st.booleans()) and endpoint.startswith(("e:", ":"))
    call = (
        f"{keyword}{endpoint}" if glue else f"{keyword} {silent}{gap2}{endpoint}"
    ) + " { ?x ?y ?z }"
    body = draw(WRAP).format(call)
    return f"{PREFIXES}{prologue}SELECT * WHERE {{ {before}{gap1}{body} {after} }}"


@settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(data=st.data())
def test_no_hidden_service_reaches_the_network(
    engine: ox.Store, listener: Listener, data: st.DataObject
) -> None:
    """Whatever the engine, run unchecked, sends to the network, the check refuses."""
    query = data.draw(hidden_services(listener.url))
    if reaches_network(engine, listener, query):
        CALLED.append(query)
        assert not accepted(query), query


def test_the_generator_hides_calls_the_engine_makes() -> None:
    """Else the property above would prove nothing (runs after it, in file order)."""
    assert len(CALLED) >= 10, CALLED


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    keyword=st.sampled_from(["LOAD", "load", "LO\\u0041D", "LOAD SILENT"]),
    gap=SPACE,
    target=st.sampled_from(["<{url}>", "e:x", "<x>"]),
    glue=st.booleans(),
)
def test_no_hidden_load_runs(
    listener: Listener, keyword: str, gap: str, target: str, glue: bool
) -> None:
    store = OxigraphStore()
    text = target.format(url=listener.url)
    sep = "" if glue and not text.startswith("<") else f" {gap}"
    update = f"PREFIX e: <{listener.url}>\nBASE <{listener.url}>\n{keyword}{sep}{text}"
    before = listener.connections
    with pytest.raises(CopkgError) as error:
        store.update(update)
    assert error.value.status == 400
    time.sleep(0.02)
    assert listener.connections == before


@pytest.mark.parametrize(
    "query",
    [
        "SELECT * FROMe:g WHERE { ?s ?p ?o }",
        "PREFIX e: <http://example.org/> SELECT * FROM NAMEDe:g WHERE { ?s ?p ?o }",
        "SELECT * FROM<http://example.org/g> WHERE { ?s ?p ?o }",
        "SELECT * FROM <http://exam\\u0070le.org/g> WHERE { ?s ?p ?o }",
        "SELECT * # x\rFROM <http://example.org/g> WHERE { ?s ?p ?o }",
        "SELECT * FROM NAMED <file:///etc/passwd> WHERE { ?s ?p ?o }",
    ],
)
def test_from_in_any_spelling_names_a_graph_of_the_store(query: str) -> None:
    with pytest.raises(CopkgError) as error:
        analyse_query(query, graphs={"http://example.org/other"})
    assert error.value.status == 400


@pytest.mark.parametrize(
    ("text", "where"),
    [
        ("SELECT * { ?s ?p ?o }\u00a0", "line 1, column 22"),
        ("SELECT * {\n ?s ?p 'a\\qb' }", "line 2, column 8"),
        ('SELECT * { BIND("\\U00110000" AS ?x) }', "line 1, column 18"),
        ('SELECT * { BIND("\\uD800" AS ?x) }', "line 1, column 18"),
    ],
)
def test_text_the_lexer_cannot_read_is_refused_with_its_place(text: str, where: str) -> None:
    with pytest.raises(LexError, match=where) as error:
        tokens(text)
    assert error.value.status == 400


def test_keywords_in_strings_comments_and_iris_are_not_calls() -> None:
    query = (
        'SELECT * { ?s ?p "SERVICE <http://x/> {}" . ?s ?p """\nLOAD <http://y/>\n""" '
        "# SERVICE <http://z/> {}\n ?s <http://e/SERVICE> ?o }"
    )
    check_remote_calls(query)
    assert analyse_query(query, graphs=()).kind == "select"
