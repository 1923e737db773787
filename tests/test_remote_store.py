"""The remote SPARQL store: push the build into a live Oxigraph server (`oxigraph serve`, the
reference SPARQL server of the test extras) and get from it the answers the embedded store
gives; pushes that can be re-run, and clean errors from servers that are down, slow or fail."""

from __future__ import annotations

import dataclasses
import http.server
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from rdflib import BNode, URIRef
from rdflib.term import Node
from watchers import SlowListener

from copkg.cli import main
from copkg.config import Settings
from copkg.errors import CopkgError
from copkg.pipeline import Manifest, load_build
from copkg.pipeline.open import open_store
from copkg.pipeline.push import push
from copkg.querying.named_queries import parse_named_query, run_page
from copkg.store import QueryResult
from copkg.store.http import timeout_parameter
from copkg.store.remote import SparqlEndpointStore, with_prefixes

pytestmark = pytest.mark.server

ROOT = Path(__file__).resolve().parents[1]
QUERIES = sorted((ROOT / "queries").glob("*.rq"))
OXIGRAPH = shutil.which("oxigraph") or str(Path(sys.executable).parent / "oxigraph")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclasses.dataclass
class Oxigraph:
    """A running `oxigraph serve` and its three URLs."""

    base: str

    @property
    def query(self) -> str:
        return self.base + "/query"

    @property
    def update(self) -> str:
        return self.base + "/update"

    @property
    def store(self) -> str:
        return self.base + "/store"


def start_oxigraph(location: Path) -> tuple[subprocess.Popen[bytes], Oxigraph]:
    if not Path(OXIGRAPH).is_file():
        pytest.skip("the oxigraph server (pip install oxigraph, a test extra) is not installed")
    port = free_port()
    process = subprocess.Popen(
        [OXIGRAPH, "serve", "--location", str(location), "--bind", f"127.0.0.1:{port}"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    server = Oxigraph(f"http://127.0.0.1:{port}")
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"oxigraph serve stopped: {process.stderr.read().decode()}")
        try:
            with urllib.request.urlopen(server.query + "?query=ASK%7B%7D", timeout=1):
                return process, server
        except OSError:
            time.sleep(0.1)
    process.kill()
    raise RuntimeError("oxigraph serve did not start in 20 s")


def stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@pytest.fixture(scope="module")
def oxigraph(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Oxigraph]:
    process, server = start_oxigraph(tmp_path_factory.mktemp("oxigraph"))
    try:
        yield server
    finally:
        stop(process)


@pytest.fixture(scope="module")
def pushed(built: Settings, oxigraph: Oxigraph) -> Result:
    """The build pushed once through the command line (Graph Store Protocol)."""
    return copkg(
        built,
        "push",
        "--store", oxigraph.query,
        "--update-url", oxigraph.update,
        "--graph-store-url", oxigraph.store,
    )  # fmt: skip


def copkg(settings: Settings, *args: str) -> Result:
    return CliRunner().invoke(main, [*args, "--root", str(settings.root)], catch_exceptions=False)


def comparable(result: QueryResult) -> object:
    """A result with rows (or triples) sorted and blank nodes made anonymous."""

    def term(value: Node | None) -> str:
        if value is None:
            return ""
        return "_:" if isinstance(value, BNode) else value.n3()

    if result.kind == "ask":
        return result.boolean
    if result.kind == "graph":
        return sorted(tuple(term(t) for t in triple) for triple in result.triples)
    return (
        sorted(result.variables),
        sorted(tuple(term(row.get(v)) for v in sorted(result.variables)) for row in result.rows),
    )


# -- push ------------------------------------------------------------------------------------


def test_push_loads_every_named_graph_and_checks_the_counts(
    built: Settings, oxigraph: Oxigraph, pushed: Result
) -> None:
    assert pushed.exit_code == 0, pushed.output
    manifest = Manifest.read(built.build_dir)
    for graph, count in manifest.graphs.items():
        assert f"{count:>8}  {graph}" in pushed.output
    assert "the counts on the server match the build" in pushed.output
    remote = SparqlEndpointStore(oxigraph.query)
    assert remote.graph_counts() == manifest.graphs
    assert sorted(remote.graphs()) == sorted(manifest.graphs)


def test_push_again_gives_the_same_store(
    built: Settings, oxigraph: Oxigraph, pushed: Result
) -> None:
    again = copkg(built, "push", "--store", oxigraph.query, "--graph-store-url", oxigraph.store)
    assert again.exit_code == 0, again.output
    assert (
        SparqlEndpointStore(oxigraph.query).graph_counts() == Manifest.read(built.build_dir).graphs
    )


def test_push_through_sparql_update_in_small_chunks_gives_the_same_store(
    built: Settings, oxigraph: Oxigraph, pushed: Result
) -> None:
    target = SparqlEndpointStore(oxigraph.query, oxigraph.update, chunk_bytes=20_000)
    report = push(built, target)
    assert report.method == "SPARQL Update"
    assert target.graph_counts() == Manifest.read(built.build_dir).graphs


def test_prune_drops_graphs_the_build_does_not_have(
    built: Settings, oxigraph: Oxigraph, pushed: Result
) -> None:
    extra = "http://example.org/graph/left-over"
    target = SparqlEndpointStore(oxigraph.query, oxigraph.update, oxigraph.store)
    target.replace_graph(extra, [(URIRef("http://example.org/a"), URIRef("http://example.org/b"),
                                  URIRef("http://example.org/c"))])  # fmt: skip
    kept = copkg(built, "push", "--store", oxigraph.query, "--graph-store-url", oxigraph.store)
    assert kept.exit_code == 0 and extra in kept.output  # reported, not dropped
    pruned = copkg(
        built, "push", "--store", oxigraph.query, "--update-url", oxigraph.update, "--prune"
    )
    assert pruned.exit_code == 0, pruned.output
    assert f"dropped {extra}" in pruned.output
    assert extra not in SparqlEndpointStore(oxigraph.query).graphs()


def test_push_without_a_way_to_write_says_what_to_give(built: Settings, oxigraph: Oxigraph) -> None:
    result = copkg(built, "push", "--store", oxigraph.query)
    assert result.exit_code == 2
    assert "--graph-store-url" in result.output and "--update-url" in result.output


# -- the same answers ------------------------------------------------------------------------


@pytest.mark.parametrize("path", QUERIES, ids=[p.stem for p in QUERIES])
def test_competency_queries_give_the_same_answers(
    built: Settings, oxigraph: Oxigraph, pushed: Result, path: Path
) -> None:
    named = parse_named_query(path)
    embedded = load_build(built)
    remote = open_store(dataclasses.replace(built, store_url=oxigraph.query))
    assert isinstance(remote, SparqlEndpointStore)
    try:
        expected = run_page(embedded, named, {})[0]
    except CopkgError as exc:  # a required parameter without a default: the same refusal
        with pytest.raises(CopkgError) as refused:
            run_page(remote, named, {})[0]
        assert refused.value.message == exc.message
        return
    answer = run_page(remote, named, {})[0]
    assert answer.kind == expected.kind
    assert comparable(answer) == comparable(expected)
    assert len(answer) > 0 or len(expected) == 0


def test_bindings_are_terms_not_text(built: Settings, oxigraph: Oxigraph, pushed: Result) -> None:
    remote = SparqlEndpointStore(oxigraph.query)
    hostile = 'x" } } ; DROP ALL ; SELECT * { ?s ?p "'
    text = "SELECT ?s WHERE { ?s rdfs:label ?label }"
    from rdflib import Literal

    assert remote.query(text, bindings={"label": Literal(hostile)}).rows == []
    label = Literal("Facilitation", lang="en")
    rows = remote.query(text, bindings={"label": label}).rows
    assert rows == load_build(built).query(text, bindings={"label": label}).rows
    assert remote.graph_counts() == Manifest.read(built.build_dir).graphs


def test_query_and_graph_forms_and_datasets(
    built: Settings, oxigraph: Oxigraph, pushed: Result
) -> None:
    remote = SparqlEndpointStore(oxigraph.query, max_rows=5)
    embedded = load_build(built, max_rows=5)
    for text in (
        "ASK { ?role a copkg:ManagementRole }",
        "CONSTRUCT { ?r rdfs:label ?l } WHERE { ?r a copkg:ManagementRole ; rdfs:label ?l }",
        "SELECT ?g (COUNT(*) AS ?n) WHERE { GRAPH ?g { ?s ?p ?o } } GROUP BY ?g",
    ):
        assert comparable(remote.query(text)) == comparable(embedded.query(text))
    big = remote.query("SELECT * WHERE { ?s ?p ?o }")
    assert big.truncated and len(big.rows) == 5
    ontology = "https://w3id.org/copkg/graph/ontology"
    count = "SELECT (COUNT(*) AS ?n) WHERE { ?s ?p ?o }"
    only = remote.query(count, default_graphs=[ontology])
    assert comparable(only) == comparable(embedded.query(count, default_graphs=[ontology]))


def test_copkg_query_with_store(built: Settings, oxigraph: Oxigraph, pushed: Result) -> None:
    args = ("query", str(ROOT / "queries/risky-roles.rq"), "--format", "csv")
    here = copkg(built, *args)
    there = copkg(built, *args, "--store", oxigraph.query)
    assert there.exit_code == 0, there.output
    assert sorted(there.output.splitlines()) == sorted(here.output.splitlines())


def test_the_web_service_answers_from_the_remote_store(
    built: Settings, oxigraph: Oxigraph, pushed: Result
) -> None:
    from copkg.pipeline.open import check_store
    from copkg.web.app import create_app

    settings = dataclasses.replace(built, store_url=oxigraph.query)
    manifest = Manifest.read(built.build_dir)
    assert check_store(settings) == (len(manifest.graphs), manifest.quads)
    app = create_app({"SETTINGS": settings})
    response = app.test_client().get(
        "/sparql",
        query_string={"query": "SELECT (COUNT(*) AS ?n) WHERE { ?s a copkg:ManagementRole }"},
        headers={"Accept": "application/sparql-results+json"},
    )
    assert response.status_code == 200, response.data
    assert response.json["results"]["bindings"][0]["n"]["value"] == "5"


def test_undeclared_prefixes_are_declared_and_declared_ones_kept() -> None:
    text = with_prefixes("PREFIX copkg: <http://example.org/mine#>\nSELECT * { ?s a copkg:X }")
    assert text.count("PREFIX copkg:") == 1 and "PREFIX rdfs:" in text


# -- servers that are down, slow or fail -------------------------------------------------------


def test_a_server_that_is_down_gives_a_clean_error(built: Settings) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    pushed = copkg(built, "push", "--store", url + "/query", "--graph-store-url", url + "/store")
    assert pushed.exit_code == 1
    assert f"cannot reach the SPARQL endpoint {url}/store: connection refused" in pushed.output
    assert "stopped at graph" in pushed.output and "match the build" not in pushed.output
    queried = copkg(built, "query", "-e", "ASK {}", "--store", url + "/query")
    assert queried.exit_code == 1
    assert f"cannot reach the SPARQL endpoint {url}/query" in queried.output


@pytest.fixture
def silent_server() -> Iterator[str]:
    """A server that accepts connections and never answers."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(16)
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"


def test_a_slow_server_gives_a_timeout_naming_the_url(built: Settings, silent_server: str) -> None:
    started = time.monotonic()
    result = copkg(
        built, "push", "--store", silent_server + "/query",
        "--graph-store-url", silent_server + "/store", "--timeout", "1",
    )  # fmt: skip
    assert result.exit_code == 1
    assert f"the SPARQL endpoint {silent_server}/store did not answer within 1 s" in result.output
    assert time.monotonic() - started < 30
    with pytest.raises(CopkgError, match="did not answer within 1 s"):
        SparqlEndpointStore(silent_server + "/query", timeout=1).query("ASK {}")


# -- the time limit reaches the server (issue 11, item 4b) -------------------------------------

LIMIT = 1.0
#: Joins every triple with every other three times over: hours of work on any store.
RUNAWAY_COUNT = "SELECT (COUNT(*) AS ?n) { ?a ?b ?c . ?d ?e ?f . ?g ?h ?i . ?j ?k ?l }"


@pytest.fixture
def slow_listener() -> Iterator[SlowListener]:
    listener = SlowListener()
    yield listener
    listener.close()


def test_at_the_limit_the_connection_closes_and_the_slot_is_free(
    slow_listener: SlowListener, slack: float
) -> None:
    """At the time limit the client got its 503 but the request went on (the remote server
    kept working) until the socket's own timeout, 30 s, and kept its thread and slot. Now the
    connection is closed at the limit, and the server was sent its own time limit."""
    from copkg.querying.executor import Job, ThreadExecutor

    remote = SparqlEndpointStore(slow_listener.url, timeout=30, timeout_param="virtuoso")
    remote.server_timeout = LIMIT
    executor = ThreadExecutor(remote, timeout=LIMIT, workers=1)
    job = Job(RUNAWAY_COUNT, media_types={"select": "application/sparql-results+json"})
    for _ in range(2):  # the second finds the one slot free again: it is not "busy"
        started = time.monotonic()
        with pytest.raises(CopkgError) as error:
            executor.run(job)
        assert error.value.status == 503
        assert "longer than the limit of 1 s" in error.value.message
        assert LIMIT <= time.monotonic() - started < LIMIT + slack
        open_for = slow_listener.closed_after(-1, LIMIT + slack)
        assert open_for is not None and open_for < LIMIT + slack, "still open"
        assert b"timeout=1000" in slow_listener.connections[-1][0]  # Virtuoso's, milliseconds
    deadline = time.monotonic() + slack
    while any(t.name == "copkg-query" for t in threading.enumerate()):
        assert time.monotonic() < deadline, "the query's thread goes on"
        time.sleep(0.05)


def test_the_web_service_closes_a_remote_query_at_the_limit(
    slow_listener: SlowListener, slack: float
) -> None:
    from copkg.web.app import create_app

    remote = SparqlEndpointStore(slow_listener.url, timeout=LIMIT, timeout_param="fuseki")
    app = create_app({"STORE": remote, "TESTING": True, "QUERY_TIMEOUT": LIMIT, "ROOT": ROOT})
    try:
        started = time.monotonic()
        response = app.test_client().get("/sparql", query_string={"query": RUNAWAY_COUNT})
        assert response.status_code == 503
        assert int(response.headers["Retry-After"]) >= 1
        assert time.monotonic() - started < LIMIT + slack
        open_for = slow_listener.closed_after(-1, LIMIT + slack)
        assert open_for is not None and open_for < LIMIT + slack, "still open"
        sent = slow_listener.connections[-1][0]
        assert b"timeout=1&" in sent or sent.endswith(b"timeout=1")  # Fuseki's, in seconds
    finally:
        app.extensions["copkg"].close()


@pytest.mark.parametrize(
    ("spec", "parameter"),
    [
        (None, None),
        ("", None),
        ("none", None),
        ("Virtuoso", ("timeout", "ms")),
        ("fuseki", ("timeout", "s")),
        ("maxTime:ms", ("maxTime", "ms")),
        ("t:s", ("t", "s")),
    ],
)
def test_the_servers_time_limit_parameter(spec: str | None, parameter: object) -> None:
    assert timeout_parameter(spec) == parameter


@pytest.mark.parametrize("spec", ["timeout", "timeout:min", ":ms", "oxigraph"])
def test_a_time_limit_parameter_that_cannot_be_read_says_what_to_give(spec: str) -> None:
    with pytest.raises(CopkgError, match="NAME:ms or NAME:s"):
        timeout_parameter(spec)


def test_oxigraph_ignores_the_parameter(
    built: Settings, oxigraph: Oxigraph, pushed: Result
) -> None:
    """`oxigraph serve` has no time limit a request can set (its --timeout-s is the server's
    own): the parameter is harmless there."""
    settings = dataclasses.replace(built, store_url=oxigraph.query, remote_timeout_param="fuseki")
    remote = open_store(settings)
    assert isinstance(remote, SparqlEndpointStore)
    assert remote.timeout_param == ("timeout", "s")
    assert remote.query("ASK { ?s ?p ?o }").boolean is True


class _CancelledLikeOxigraph(http.server.BaseHTTPRequestHandler):
    """Answers as `oxigraph serve --timeout-s` does at its limit: the answer has begun (200)
    when the query is cancelled, and the message ends it."""

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.send_response(200)
        self.send_header("Content-Type", "application/sparql-results+json")
        self.end_headers()
        self.wfile.write(b'{"head":{"vars":["n"]},"results":{"bindings":[')
        self.wfile.write(b"The SPARQL operation has been cancelled")

    def log_message(self, *args: object) -> None:
        pass


def test_an_answer_the_server_cut_at_its_own_limit_is_a_503() -> None:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _CancelledLikeOxigraph)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        remote = SparqlEndpointStore(f"http://127.0.0.1:{server.server_address[1]}/query")
        with pytest.raises(CopkgError, match="stopped the query at its time limit") as error:
            remote.query(RUNAWAY_COUNT, default_graphs=[])
        assert error.value.status == 503
    finally:
        server.shutdown()
        server.server_close()


class _FailingAfterOne(http.server.BaseHTTPRequestHandler):
    """Takes the first PUT, fails every later one."""

    puts = 0

    def do_PUT(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        type(self).puts += 1
        self.send_response(204 if type(self).puts == 1 else 500)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


def test_a_push_cut_short_is_never_reported_as_done(built: Settings) -> None:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _FailingAfterOne)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        result = copkg(
            built, "push", "--store", url + "/query", "--graph-store-url", url + "/store"
        )
    finally:
        server.shutdown()
        server.server_close()
    assert result.exit_code == 1
    # the one PUT that succeeds writes the push record (a push began), then the first graph fails
    assert "the push stopped at graph" in result.output and "(0 of " in result.output
    assert "run `copkg push` again" in result.output
    assert "match the build" not in result.output
    assert not any(line.startswith("pushed ") for line in result.output.splitlines())


class _NeedsBasicAuth(http.server.BaseHTTPRequestHandler):
    """Answers queries and graph PUTs only with the user `copkg`, password `secret`."""

    expected = "Basic Y29wa2c6c2VjcmV0"  # base64 of copkg:secret

    def _allowed(self) -> bool:
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        if self.headers.get("Authorization") == self.expected:
            return True
        self.send_response(401)
        self.send_header("WWW-Authenticate", 'Basic realm="copkg"')
        self.end_headers()
        return False

    def do_PUT(self) -> None:
        if self._allowed():
            self.send_response(204)
            self.end_headers()

    def do_POST(self) -> None:
        if self._allowed():
            body = b'{"head": {}, "boolean": true}'
            self.send_response(200)
            self.send_header("Content-Type", "application/sparql-results+json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


def test_http_basic_authentication_is_sent_when_given() -> None:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _NeedsBasicAuth)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}"
    triple = [(URIRef("http://example.org/a"), URIRef("http://example.org/b"),
               URIRef("http://example.org/c"))]  # fmt: skip
    try:
        anonymous = SparqlEndpointStore(url + "/query", graph_store_url=url + "/store")
        with pytest.raises(CopkgError, match=r"refused access \(HTTP 401\)"):
            anonymous.query("ASK {}", default_graphs=[])
        with pytest.raises(CopkgError, match=r"refused access \(HTTP 401\)"):
            anonymous.replace_graph("http://example.org/g", triple)
        known = SparqlEndpointStore(
            url + "/query", graph_store_url=url + "/store", auth=("copkg", "secret")
        )
        assert known.query("ASK {}", default_graphs=[]).boolean is True
        known.replace_graph("http://example.org/g", triple)
    finally:
        server.shutdown()
        server.server_close()
