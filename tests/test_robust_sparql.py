"""Hostile requests against a live `copkg serve`: each gets a 4xx or a 503 within the time
limit, never a 500 or a hang, and the server answers the next request as before.

Syntax errors, unknown prefixes, bodies over the limit, queries nested hundreds of levels deep,
cartesian products, catastrophic regular expressions, property paths over the whole graph,
strings that double until memory runs out; SERVICE to loopback, private and file: addresses
(refused without any connection: a listener on 127.0.0.1 counts them, and in-process the
socket functions fail the test if called); updates without or with a wrong token, or sent as
queries; path traversal in resource and query names (never a file read: a FIFO records any).
"""

from __future__ import annotations

import json
import os
import re
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import requests
from flask.testing import FlaskClient
from watchers import Listener
from web_helpers import LiveServer, disk_store, live_server, memory_store, sample_quads

from copkg.querying.executor import Job
from copkg.querying.workers import ProcessExecutor
from copkg.store.embedded import OxigraphStore
from copkg.web.app import create_app

LIMIT = 0.5
CHEAP = "SELECT (COUNT(*) AS ?n) { ?s ?p ?o }"
QUADS = 92  # the sample dataset of web_helpers
TOKEN = "s3cret-t0ken"
#: Seconds of silence after which the live server drops a client in the middle of a request.
CLIENT_TIMEOUT = 1.0


@pytest.fixture(scope="module")
def listener() -> Iterator[Listener]:
    server = Listener("/sparql")
    yield server
    server.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    env = {
        "COPKG_QUERY_TIMEOUT": str(LIMIT),
        "COPKG_QUERY_WORKERS": "2",
        "COPKG_CLIENT_TIMEOUT": str(CLIENT_TIMEOUT),
    }
    with live_server(tmp_path_factory.mktemp("hostile"), env=env) as running:
        for _ in range(2):  # both query workers up
            assert requests.get(running.endpoint, params={"query": CHEAP}, timeout=30).ok
        yield running
        log = running.log()
    statuses = re.findall(r'HTTP/1\.[01]" (\d{3}) ', log)
    assert statuses, "no access log lines"
    assert not [s for s in statuses if s.startswith("5") and s != "503"], log[-3000:]
    assert "unexpected error" not in log, log[-3000:]  # the app's log line of a 500


def count(server: LiveServer) -> int:
    response = requests.get(server.endpoint, params={"query": CHEAP}, timeout=10)
    assert response.status_code == 200, response.text
    return int(response.json()["results"]["bindings"][0]["n"]["value"])


#: How long a query worker killed by a test may take to be replaced (seconds): a query waits
#: for a worker at most twice the time limit (1 s here), and on a busy machine starting one
#: takes longer, so the server says 503 "busy" meanwhile.
REPLACED = 30.0


def assert_alive(server: LiveServer) -> None:
    """The server answers the next request with the same data, or says it is busy (503) until
    its query workers are replaced, never for longer than REPLACED."""
    deadline = time.monotonic() + REPLACED
    while True:
        response = requests.get(server.endpoint, params={"query": CHEAP}, timeout=10)
        if response.status_code != 503 or time.monotonic() > deadline:
            break
        assert "busy" in response.json()["error"], response.text
        time.sleep(0.2)
    assert response.status_code == 200, response.text
    assert int(response.json()["results"]["bindings"][0]["n"]["value"]) == QUADS


def post(server: LiveServer, query: str, timeout: float = 30) -> requests.Response:
    return requests.post(
        server.endpoint,
        data=query.encode("utf-8"),
        headers={"Content-Type": "application/sparql-query", "Accept": "application/json"},
        timeout=timeout,
    )


def assert_refused(response: requests.Response, *statuses: int) -> dict:
    assert response.status_code in statuses, (response.status_code, response.text[:500])
    body = response.json()
    assert body["ok"] is False and body["status"] == response.status_code
    return body


# -- malformed -------------------------------------------------------------------------------


@pytest.mark.server
@pytest.mark.parametrize(
    ("query", "words"),
    [
        ("SELECT * WHERE {", "syntax error"),
        ("SELEKT * { ?s ?p ?o }", "syntax error"),
        ("SELECT * { ?s ?p ?o } LIMIT -1", "syntax error"),
        ("SELECT * { ?s nope:p ?o }", "unknown prefix nope:"),
        ("SELECT * { ?s ?p ?o FILTER(nope:f(?o)) }", "unknown prefix nope:"),
        ("\x00SELECT * {}", ""),
        ("SELECT * { ?s ?p '\ud7ff\x7f' }", ""),
    ],
)
def test_malformed_queries_are_400(server: LiveServer, query: str, words: str) -> None:
    response = requests.get(server.endpoint, params={"query": query}, timeout=30)
    if response.status_code != 200:  # a NUL or odd characters may still be a valid query
        body = assert_refused(response, 400)
        assert words in body["error"]
    assert_alive(server)


@pytest.mark.server
@pytest.mark.parametrize("form", ["direct", "form"])
def test_a_body_over_the_limit_is_413(server: LiveServer, form: str) -> None:
    filler = "#" + "x" * (1024 * 1024 + 10) + "\n"
    query = filler + "ASK {}"
    if form == "direct":
        response = post(server, query)
    else:
        response = requests.post(server.endpoint, data={"query": query}, timeout=30)
    assert_refused(response, 413)
    assert_alive(server)


def chunked(body: bytes, size: int = 65536) -> bytes:
    pieces = [body[i : i + size] for i in range(0, len(body), size)]
    return b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in pieces) + b"0\r\n\r\n"


@pytest.mark.server
@pytest.mark.parametrize(
    ("content_type", "body", "status"),
    [
        ("application/sparql-query", b"ASK {}", 200),
        ("application/sparql-query", b"ASK {} " + b"#" * (2 << 20), 413),
        ("application/sparql-query", b"SELECT * {?s ?p ?o}" + b" " * (1 << 20) + b"LIMIT 0", 413),
        ("application/x-www-form-urlencoded", b"query=ASK%20%7B%7D%20" + b"%23" * (1 << 20), 413),
    ],
    ids=["small", "over the limit", "cut would change the query", "form over the limit"],
)
def test_a_chunked_body_over_the_limit_is_413_not_cut(
    server: LiveServer, content_type: str, body: bytes, status: int
) -> None:
    """Without Content-Length (chunked), werkzeug would cut the body at the limit and run
    what is left: a different query. Over the limit it is 413, as with Content-Length."""
    head = (
        f"POST /sparql HTTP/1.1\r\nHost: x\r\nContent-Type: {content_type}\r\n"
        "Accept: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    ).encode()
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as sock:
        sock.sendall(head + chunked(body))
        data = b""
        while piece := sock.recv(65536):
            data += piece
    assert data.startswith(b"HTTP/1.1 %d " % status), data[:300]
    assert_alive(server)


@pytest.mark.server
def test_a_url_over_the_request_line_limit_is_refused(server: LiveServer) -> None:
    query = "ASK { FILTER(" + " || ".join(["true"] * 3000) + ") }"
    response = requests.get(server.endpoint, params={"query": query}, timeout=30)
    assert response.status_code in (400, 414), response.status_code
    assert_alive(server)


@pytest.mark.server
def test_many_form_fields_and_long_headers(server: LiveServer) -> None:
    body = "&".join(["x=1"] * 20000) + "&query=" + "ASK%20%7B%7D"
    response = requests.post(
        server.endpoint,
        data=body,
        headers={"Content-Type": "application/x-www-form-urlencoded"},
        timeout=30,
    )
    assert response.status_code in (200, 400, 413), response.status_code
    accept = ", ".join(f"application/x-{i}+json;q=0.{i % 9 + 1}" for i in range(250))
    response = requests.get(
        server.endpoint, params={"query": "ASK {}"}, headers={"Accept": accept}, timeout=30
    )
    assert response.status_code in (400, 406, 431), response.status_code
    response = requests.get(
        server.endpoint, params={"query": "ASK {}"}, headers={"X-Big": "y" * 20000}, timeout=30
    )
    assert response.status_code in (200, 400, 431), response.status_code
    assert_alive(server)


@pytest.mark.server
@pytest.mark.parametrize("parameter", ["default-graph-uri", "named-graph-uri"])
@pytest.mark.parametrize("value", [" ><", "relative/graph", "http://a b/", "http://e/<g>", "\x00"])
def test_protocol_graphs_that_are_not_iris_are_400(
    server: LiveServer, parameter: str, value: str
) -> None:
    response = requests.get(
        server.endpoint, params={"query": "ASK {}", parameter: value}, timeout=10
    )
    body = assert_refused(response, 400)
    assert "IRI" in body["error"]
    assert_alive(server)


@pytest.mark.server
def test_head_is_answered_like_get(server: LiveServer) -> None:
    response = requests.head(server.endpoint, params={"query": CHEAP}, timeout=10)
    assert response.status_code == 200 and response.content == b""
    assert_alive(server)


# -- deep nesting ----------------------------------------------------------------------------

NESTINGS: dict[str, Callable[[int], str]] = {
    "optional": lambda n: "SELECT * { " + "?s ?p ?o OPTIONAL { " * n + "?a ?b ?c" + " }" * n + " }",
    "union": lambda n: "SELECT * " + "{ { ?s ?p ?o } UNION " * n + "{ ?a ?b ?c }" + " }" * n,
    "groups": lambda n: "SELECT * " + "{ " * n + "?s ?p ?o" + " }" * n,
    "minus": lambda n: "SELECT * { " + "?s ?p ?o MINUS { " * n + "?s ?p ?o" + " }" * n + " }",
    "exists": lambda n: "ASK { " + "FILTER EXISTS { " * n + " }" * n + " }",
    "subselect": lambda n: "SELECT * " + "{ SELECT * WHERE " * n + "{ ?s ?p ?o }" + " }" * n,
    "parentheses": lambda n: "ASK { FILTER(" + "(" * n + "true" + ")" * n + ") }",
    "functions": lambda n: "SELECT * { BIND(" + "STR(" * n + "1" + ")" * n + " AS ?x) }",
    "arithmetic": lambda n: "SELECT * { BIND(" + "(1 + " * n + "1" + ")" * n + " AS ?x) }",
    "negation": lambda n: "ASK { FILTER(" + "!" * n + "true) }",
    "path": lambda n: "SELECT * { ?s " + "(" * n + "<http://e/p>" + ")" * n + " ?o }",
    "inverse": lambda n: "SELECT * { ?s " + "^" * n + "<http://e/p> ?o }",
    "collection": lambda n: "SELECT * { ?s ?p " + "(" * n + "1" + ")" * n + " }",
    "blank nodes": lambda n: "SELECT * { ?s ?p " + "[ ?p " * n + "1" + " ]" * n + " }",
}


@pytest.mark.server
@pytest.mark.parametrize("depth", [500, 20_000])
@pytest.mark.parametrize("kind", list(NESTINGS))
def test_deep_nesting_is_400_or_503_never_500(
    server: LiveServer, kind: str, depth: int, slack: float
) -> None:
    start = time.monotonic()
    response = post(server, NESTINGS[kind](depth))
    elapsed = time.monotonic() - start
    assert elapsed < LIMIT + slack, f"{kind}×{depth} took {elapsed:.1f}s"
    body = assert_refused(response, 400, 503)
    if response.status_code == 400:
        assert "nested too deeply" in body["error"] or "syntax error" in body["error"], body
    assert_alive(server)


# -- expensive queries ------------------------------------------------------------------------

#: (query, statuses it may get): each must end within the time limit.
EXPENSIVE = {
    "cartesian count": (
        "SELECT (COUNT(*) AS ?n) { ?a ?b ?c . ?d ?e ?f . ?g ?h ?i . ?j ?k ?l . ?m ?n1 ?o }",
        (503,),
    ),
    "path over all": ("SELECT * { ?s (<http://e/p>|!<http://e/p>)* ?o }", (200, 503)),
    "path count": (
        "SELECT (COUNT(*) AS ?n) { ?s (<http://e/p>|!<http://e/p>)* ?o . "
        "?a (<http://e/p>|!<http://e/p>)* ?b . ?c (!<http://e/q>)+ ?d }",
        (200, 503),
    ),
    "catastrophic regex": (
        'SELECT * { ?s ?p ?o . ?a ?b ?c BIND(CONCAT(STR(?o), STR(?c), "'
        + "a" * 5000
        + '!") AS ?t) FILTER(REGEX(?t, "^(a+)+$") || REGEX(?t, "^(a|aa)+$") '
        '|| REGEX(?t, "(.*a){20}")) }',
        (200, 503),
    ),
    "huge regex": ('ASK { FILTER(REGEX("a", "' + "(a{1000}){1000}" + '")) }', (200, 400)),
    "doubling strings": (
        'SELECT (STRLEN(?v40) AS ?n) { BIND("ab" AS ?v0) '
        + " ".join(f"BIND(CONCAT(?v{i}, ?v{i}) AS ?v{i + 1})" for i in range(40))
        + " }",
        (503,),
    ),
}


@pytest.mark.server
@pytest.mark.parametrize("name", list(EXPENSIVE))
def test_expensive_queries_end_within_the_limit(
    server: LiveServer, name: str, slack: float
) -> None:
    query, statuses = EXPENSIVE[name]
    start = time.monotonic()
    response = post(server, query)
    elapsed = time.monotonic() - start
    assert response.status_code in statuses, (response.status_code, response.text[:300])
    assert elapsed < LIMIT + slack, f"{name} took {elapsed:.1f}s"
    if response.status_code == 503:
        assert int(response.headers["Retry-After"]) >= 1
        assert response.json()["ok"] is False
    assert_alive(server)


def test_a_query_past_the_memory_limit_is_stopped(tmp_path: Path) -> None:
    """Strings that double at each step reach gigabytes faster than a generous time limit:
    the worker's memory limit stops them, and the next query is answered."""
    import psutil

    executor = ProcessExecutor(
        disk_store(tmp_path / "store"), timeout=20, workers=1, memory_limit=256 << 20
    )
    media = {"select": "application/sparql-results+json"}
    try:
        executor.run(Job(CHEAP, media_types=media))
        (pid,) = executor.pids()
        start = time.monotonic()
        with pytest.raises(Exception) as error:
            executor.run(Job(EXPENSIVE["doubling strings"][0], media_types=media))
        assert time.monotonic() - start < 10
        assert error.value.status == 503 and "memory" in error.value.message
        answer = executor.run(Job(CHEAP, media_types=media))
        assert json.loads(answer.body)["results"]["bindings"][0]["n"]["value"] == str(QUADS)
        assert not psutil.pid_exists(pid) or pid not in executor.pids()
    finally:
        executor.close()


# -- SERVICE: no outbound connection ------------------------------------------------------------

SERVICE_TARGETS = [
    "{listener}",
    "http://127.0.0.1:9/sparql",
    "http://localhost:9/sparql",
    "http://10.0.0.1/sparql",
    "http://192.168.1.1/sparql",
    "http://172.16.0.1/sparql",
    "http://169.254.169.254/latest/meta-data/",
    "http://[::1]:9/sparql",
    "http://0.0.0.0:9/",
    "http://2130706433/",
    "file:///etc/passwd",
    "file:///dev/zero",
]


def service_queries(target: str) -> list[str]:
    return [
        f"SELECT * {{ SERVICE <{target}> {{ ?s ?p ?o }} }}",
        f"SELECT * {{ SERVICE SILENT <{target}> {{ ?s ?p ?o }} }}",
        f"PREFIX r: <{target}> SELECT * {{ ?s ?p ?o OPTIONAL {{ SERVICE r: {{ ?s ?p ?x }} }} }}",
    ]


@pytest.mark.server
@pytest.mark.parametrize("target", SERVICE_TARGETS)
def test_service_is_refused_without_a_connection(
    server: LiveServer, listener: Listener, target: str
) -> None:
    target = target.format(listener=listener.url)
    before = listener.connections
    for query in service_queries(target):
        body = assert_refused(post(server, query), 400)
        assert "SERVICE" in body["error"]
    time.sleep(0.05)
    assert listener.connections == before
    assert_alive(server)


@pytest.fixture
def no_sockets(monkeypatch: pytest.MonkeyPatch) -> list[object]:
    """Fail on any attempt to open a connection from Python code in this process (rdflib,
    urllib, SPARQLWrapper...). pyoxigraph connects from Rust, past these functions: the
    listener on 127.0.0.1 is what sees its calls."""
    attempts: list[object] = []

    def refuse(*args: object, **kwargs: object) -> None:
        attempts.append(args)
        raise AssertionError(f"an outbound connection was attempted: {args}")

    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    return attempts


@pytest.fixture
def in_process(listener: Listener) -> Iterator[FlaskClient]:
    """An app whose queries run in this process (threads), so the socket patches cover them;
    the listener's own URL + "allowed" is an allowed endpoint (the positive control)."""
    allowed = [listener.url + "/allowed"]
    store = OxigraphStore(allowed_service_endpoints=allowed)  # the store checks too
    store.native.extend(sample_quads())
    app = create_app(
        {"STORE": store, "TESTING": True, "QUERY_TIMEOUT": 5, "ALLOWED_SERVICE_ENDPOINTS": allowed}
    )
    yield app.test_client()
    app.extensions["copkg"].close()


@pytest.mark.parametrize("target", SERVICE_TARGETS)
def test_service_makes_no_connection_in_process(
    in_process: FlaskClient, listener: Listener, no_sockets: list[object], target: str
) -> None:
    before = listener.connections
    for query in service_queries(target.format(listener=listener.url)):
        response = in_process.post("/sparql", data={"query": query})
        assert response.status_code == 400, response.get_data(as_text=True)
    time.sleep(0.05)
    assert no_sockets == [] and listener.connections == before


def test_the_listener_sees_an_allowed_call(in_process: FlaskClient, listener: Listener) -> None:
    """Positive control: an allowed endpoint is called, and the listener sees the call."""
    before = listener.connections
    query = f"SELECT * {{ SERVICE SILENT <{listener.url}/allowed> {{ ?s ?p ?o }} }}"
    in_process.post("/sparql", data={"query": query})
    deadline = time.monotonic() + 5
    while listener.connections == before and time.monotonic() < deadline:
        time.sleep(0.01)
    assert listener.connections > before


# -- updates ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def writable() -> Iterator[FlaskClient]:
    """An app over a writable in-memory store with an update token (in this process)."""
    app = create_app({"STORE": memory_store(), "TESTING": True, "UPDATE_TOKEN": TOKEN})
    yield app.test_client()
    app.extensions["copkg"].close()


INSERT = "INSERT DATA { GRAPH <http://e/g> { <http://e/s> <http://e/p> <http://e/o> } }"
UPDATE = "application/sparql-update"


def stored(client: FlaskClient) -> int:
    response = client.get("/sparql", query_string={"query": CHEAP})
    assert response.status_code == 200
    return int(response.get_json()["results"]["bindings"][0]["n"]["value"])


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


#: name -> (method, path, keyword arguments of the test client)
UPDATE_ATTEMPTS: dict[str, tuple[str, str, dict]] = {
    "no token": ("POST", "/update", {"data": INSERT, "content_type": UPDATE}),
    "wrong token": ("POST", "/update", {"data": INSERT, "content_type": UPDATE,
                                        "headers": bearer("nope")}),
    "token prefix": ("POST", "/update", {"data": INSERT, "content_type": UPDATE,
                                         "headers": bearer(TOKEN[:-1])}),
    "token and more": ("POST", "/update", {"data": INSERT, "content_type": UPDATE,
                                           "headers": bearer(TOKEN + "x")}),
    "basic auth": ("POST", "/update", {"data": INSERT, "content_type": UPDATE,
                                       "headers": {"Authorization": "Basic dXNlcjpzM2NyZXQ="}}),
    "token in the query string": ("POST", "/update", {
        "data": {"update": INSERT}, "query_string": {"access_token": TOKEN, "token": TOKEN}}),
    "update as a GET query": ("GET", "/sparql", {"query_string": {"query": INSERT}}),
    "update= on GET": ("GET", "/sparql", {"query_string": {"update": INSERT}}),
    "update= in a form": ("POST", "/sparql", {"data": {"update": INSERT},
                                              "headers": bearer(TOKEN)}),
    "update in a query body": ("POST", "/sparql", {"data": INSERT, "headers": bearer(TOKEN),
                                                   "content_type": "application/sparql-query"}),
    "update body at /sparql": ("POST", "/sparql", {"data": INSERT, "content_type": UPDATE,
                                                   "headers": bearer(TOKEN)}),
    "GET /update": ("GET", "/update", {"query_string": {"update": INSERT},
                                       "headers": bearer(TOKEN)}),
}  # fmt: skip


@pytest.mark.parametrize("attempt", list(UPDATE_ATTEMPTS))
def test_refused_updates_change_nothing(writable: FlaskClient, attempt: str) -> None:
    before = stored(writable)
    method, path, options = UPDATE_ATTEMPTS[attempt]
    response = writable.open(path, method=method, **options)
    assert response.status_code in (400, 403, 405), response.get_data(as_text=True)
    assert stored(writable) == before


def test_an_update_with_the_token_is_applied(writable: FlaskClient) -> None:
    """Positive control: the same update with the token does change the store."""
    before = stored(writable)
    text = f"INSERT DATA {{ GRAPH <http://e/g> {{ <http://e/s{before}> <http://e/p> 1 }} }}"
    response = writable.post("/update", data=text, content_type=UPDATE, headers=bearer(TOKEN))
    assert response.status_code == 200, response.get_data(as_text=True)
    assert stored(writable) == before + 1


@pytest.mark.server
def test_the_live_server_refuses_updates(server: LiveServer) -> None:
    """The live server has no token: every update is refused, and it answers on."""
    for name in ("no token", "wrong token", "update as a GET query", "update= in a form"):
        method, path, options = UPDATE_ATTEMPTS[name]
        headers = options.get("headers", {})
        if "content_type" in options:
            headers = {**headers, "Content-Type": options["content_type"]}
        response = requests.request(
            method, server.url + path, params=options.get("query_string"),
            data=options.get("data"), headers=headers, timeout=10,
        )  # fmt: skip
        assert response.status_code in (400, 403), (name, response.status_code)
    assert_alive(server)


# -- path traversal -----------------------------------------------------------------------------


def raw_get(server: LiveServer, path: bytes) -> tuple[int, bytes]:
    """Send a request line as given (no client-side normalisation); the status and body."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(b"GET " + path + b" HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), body


@pytest.fixture(scope="module")
def secret_fifo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A FIFO; opening it for reading (from any process) is recorded."""
    path = tmp_path_factory.mktemp("secret") / "secret.ttl"
    os.mkfifo(path)
    opened = threading.Event()
    stop = threading.Event()

    def watch() -> None:
        while not stop.is_set():
            try:
                fd = os.open(path, os.O_WRONLY | os.O_NONBLOCK)
            except OSError:
                time.sleep(0.001)
                continue
            opened.set()
            os.close(fd)

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    yield path
    stop.set()
    thread.join()
    assert not opened.is_set(), "a request made the server open a file outside its data"


def traversals(secret: Path) -> list[bytes]:
    up = "../" * 12
    enc = "%2e%2e%2f" * 12
    s = str(secret).lstrip("/")
    paths = [
        f"/id/{up}etc/passwd",
        f"/id/{up}{s}",
        f"/id/{enc}{s}",
        f"/id/..%2f..%2f..%2f..%2f..%2f..%2f..%2f..%2f..%2f..%2f{s}",
        f"/id/%2e%2e/%2e%2e/%2e%2e/%2e%2e/%2e%2e/%2e%2e/%2e%2e/%2e%2e/{s}",
        f"/id//{s}",
        f"/id/{s}%00.ttl",
        f"/graph/{enc}{s}",
        f"/static/{up}etc/passwd",
        f"/static/{enc}{s}",
        f"/static/..%5c..%5c..%5c{s}",
        f"/static//{s}",
        "/static/%2fetc%2fpasswd",
        f"/api/queries/..%2f..%2f..%2f{s}",
        f"/api/queries/{enc}{s}",
        "/api/queries/..%2fsecret",
        "/api/queries/%2fetc%2fpasswd",
        f"/api/queries//{s}",
        "/api/queries/risky-roles%00.rq",
        "/api/queries/risky-roles.rq",
        "/api/queries/..",
        f"/ontology/{up}etc/passwd",
        f"/timeline/{enc}{s}",
        f"/{up}etc/passwd",
        f"/{enc}{s}",
    ]
    return [p.encode() for p in paths] + [b"/id/a\x00b", b"/api/queries/x\x00/../../etc/passwd"]


@pytest.mark.server
def test_path_traversal_never_reads_a_file(server: LiveServer, secret_fifo: Path) -> None:
    passwd = Path("/etc/passwd").read_bytes()[:20] if Path("/etc/passwd").exists() else b"root:x"
    for path in traversals(secret_fifo):
        status, body = raw_get(server, path)
        if status == 308:  # werkzeug merges slashes: follow the redirect on this server
            location = re.search(rb'href="http://localhost(/[^"]*)"', body)
            assert location, body[:300]
            status, body = raw_get(server, location.group(1))
        assert status in (400, 404), (path, status, body[:200])
        assert passwd not in body, path
    assert_alive(server)


# -- slow clients ------------------------------------------------------------------------------

SLOW_STARTS = [
    # headers never finished
    b"GET /sparql?query=ASK%7B%7D HTTP/1.1\r\nHost: x\r\nX-Half: ",
    # a body announced longer than sent, as a query and as a form
    b"POST /sparql HTTP/1.1\r\nHost: x\r\nContent-Type: application/sparql-query\r\n"
    b"Content-Length: 100\r\n\r\nASK {}",
    b"POST /sparql HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\n"
    b"Content-Length: 100\r\n\r\nquery=ASK",
    b"POST /api/queries/timeline HTTP/1.1\r\nHost: x\r\n"
    b"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 100\r\n\r\na=",
]


@pytest.mark.server
def test_clients_that_stop_mid_request_do_not_stop_the_service(
    server: LiveServer, slack: float
) -> None:
    """Twice as many half-sent requests as the server has request threads (slowloris): each
    is dropped after CLIENT_TIMEOUT s of silence (408 when its body stopped), and the others
    are answered meanwhile."""
    stuck = []
    for i in range(16):
        sock = socket.create_connection(("127.0.0.1", server.port), timeout=30)
        sock.sendall(SLOW_STARTS[i % len(SLOW_STARTS)])
        stuck.append(sock)
    try:
        time.sleep(0.2)
        start = time.monotonic()
        answered = []
        while time.monotonic() - start < 4 * CLIENT_TIMEOUT + slack:
            try:
                response = requests.get(server.endpoint, params={"query": CHEAP}, timeout=2)
                answered.append(response.status_code)
            except requests.Timeout:
                answered.append(0)
            if time.monotonic() - start > 2 * CLIENT_TIMEOUT and answered[-5:] == [200] * 5:
                break
            time.sleep(0.1)
        assert answered.count(200) >= len(answered) - 3, answered  # at most a brief wait
        assert answered[-5:] == [200] * 5, answered
        firsts = []
        for sock in stuck:
            data = sock.recv(200)
            firsts.append(data.split(b"\r\n", 1)[0])
        assert all(f in (b"", b"HTTP/1.1 408 REQUEST TIMEOUT") for f in firsts), firsts
        assert firsts.count(b"HTTP/1.1 408 REQUEST TIMEOUT") >= 8, firsts
    finally:
        for sock in stuck:
            sock.close()
    assert_alive(server)
