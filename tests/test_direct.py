"""The front's direct path (copkg.web.direct): queries to /sparql answered by the front itself
give what Flask's view gives (status, body, headers), the requests it does not take still reach
Flask, and its answers name the build they come from, across a swap."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
import requests
from conftest import add_build
from web_helpers import LiveServer, disk_store, live_server

from copkg.config import Settings
from copkg.pipeline.build import Manifest
from copkg.studies.add import add_study
from copkg.web.app import create_app

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
import synthetic  # noqa: E402

sys.path.remove(str(ROOT / "benchmarks"))

pytestmark = pytest.mark.server

SELECT = "SELECT ?s ?label WHERE { ?s rdfs:label ?label } ORDER BY ?s"
CONSTRUCT = "CONSTRUCT WHERE { ?s a copkg:Finding }"
JSON = "application/sparql-results+json"

#: Seconds within which an added study is served (workers start slowly on a loaded machine).
SWAP_BOUND = 30.0

#: Headers that differ between any two answers, or that only the transport sets.
TRANSPORT = {"date", "server", "connection", "keep-alive", "content-length"}

#: (method, query string, headers, body): what both paths are asked.
REQUESTS: list[tuple[str, str, dict[str, str], bytes]] = [
    ("GET", urlencode({"query": SELECT}), {"Accept": JSON}, b""),
    ("GET", urlencode({"query": SELECT}), {"Accept": "text/csv"}, b""),
    ("GET", urlencode({"query": SELECT, "format": "xml"}), {}, b""),
    ("GET", urlencode({"query": SELECT}), {"Accept": JSON, "Origin": "https://example.org"}, b""),
    ("GET", urlencode({"query": CONSTRUCT}), {"Accept": "text/turtle"}, b""),
    ("GET", urlencode({"query": CONSTRUCT}), {"Accept": "application/sparql-results+xml"}, b""),
    ("GET", urlencode({"query": "ASK { ?s ?p ?o }"}), {"Accept": "text/html"}, b""),
    ("GET", urlencode({"query": "SELEC ?s"}), {}, b""),
    ("GET", urlencode({"query": "SELECT * { ?s ?p ?o }"}), {}, b""),  # over MAX_ROWS
    ("GET", urlencode({"query": "SELECT * { ?s ?p ?o }", "partial": "true"}), {}, b""),
    ("GET", urlencode([("query", "ASK {}"), ("query", "ASK {}")]), {}, b""),
    ("GET", urlencode({"update": "CLEAR ALL"}), {}, b""),
    ("GET", urlencode({"query": "SELECT * FROM <file:///etc/passwd> { ?s ?p ?o }"}), {}, b""),
    (
        "GET",
        urlencode({"query": "SELECT * { SERVICE <http://example.org/> { ?s ?p ?o } }"}),
        {},
        b"",
    ),
    ("GET", urlencode({"query": "SELECT ?x { BIND(<rel> AS ?x) }"}), {"Accept": JSON}, b""),
    (
        "POST",
        "",
        {"Content-Type": "application/x-www-form-urlencoded"},
        urlencode({"query": SELECT}).encode(),
    ),
    (
        "POST",
        "",
        {"Content-Type": "application/sparql-query", "Accept": "text/tab-separated-values"},
        SELECT.encode(),
    ),
    ("POST", "", {"Content-Type": "application/sparql-query; charset=latin-1"}, b"ASK {}"),
    ("POST", "", {"Content-Type": "text/plain"}, b"ASK {}"),
    ("POST", "", {"Content-Type": "application/sparql-update"}, b"CLEAR ALL"),
    (
        "POST",
        urlencode({"default-graph-uri": "not an iri"}),
        {"Content-Type": "application/sparql-query"},
        b"ASK {}",
    ),
]


def comparable(pairs: list[tuple[str, str]]) -> dict[str, str]:
    """Headers by name, a repeated one's values joined (as clients read them)."""
    joined: dict[str, list[str]] = {}
    for name, value in pairs:
        if name.lower() not in TRANSPORT:
            joined.setdefault(name.lower(), []).append(value)
    return {name: ", ".join(values) for name, values in joined.items()}


@pytest.fixture(scope="module")
def both(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LiveServer, object]]:
    """`copkg serve` over the sample store (its front answers /sparql) and Flask's app over the
    same store, with the same limits."""
    tmp = tmp_path_factory.mktemp("direct")
    env = {"COPKG_MAX_ROWS": "50"}
    with live_server(tmp, env=env) as server:
        store_dir = str(tmp / "store")
        app = create_app({"STORE_URL": store_dir, "ROOT": ROOT, "QUERY_WORKERS": 1, "MAX_ROWS": 50})
        try:
            yield server, app
        finally:
            app.extensions["copkg"].close()


#: (path, query string, headers): named queries, asked of both paths by GET.
NAMED: list[tuple[str, str, dict[str, str]]] = [
    ("/api/queries/role-framework", "", {}),
    ("/api/queries/role-framework.csv", "", {}),
    ("/api/queries/role-framework", "", {"Accept": "text/csv"}),
    ("/api/queries/role-framework", "", {"Accept": JSON, "Origin": "https://example.org"}),
    ("/api/queries/role-framework", "", {"Accept": "text/html"}),
    ("/api/queries/evidence-for", urlencode({"about": "j04:facilitation"}), {}),
    ("/api/queries/evidence-for", urlencode({"about": "not an iri"}), {}),
    ("/api/queries/evidence-for", urlencode([("voice", "a"), ("voice", "b")]), {}),
    ("/api/queries/risky-roles", urlencode({"page": "2"}), {}),
    ("/api/queries/risky-roles", urlencode({"page": "0"}), {}),
    ("/api/queries/timeline", urlencode({"page": "1", "extra": "x"}), {}),
    ("/api/queries/no-such-query", "", {}),
    ("/api/queries/a/b", "", {}),
]


def ask_both(
    both: tuple[LiveServer, object],
    method: str,
    path: str,
    query: str,
    headers: dict[str, str],
    body: bytes = b"",
) -> tuple[requests.Response, Any]:
    """The same request to the front and to Flask's app."""
    server, app = both
    url = f"{server.url}{path}?{query}" if query else f"{server.url}{path}"
    front = requests.request(method, url, headers=headers, data=body or None, timeout=30)
    flask = app.test_client().open(  # type: ignore[attr-defined]
        path, method=method, query_string=query, headers=headers, data=body, base_url=server.url
    )
    return front, flask


def assert_same(front: requests.Response, flask: Any) -> None:
    assert "Server" not in front.headers, "answered by gunicorn, not by the front"
    assert front.status_code == flask.status_code, front.text
    assert front.content == flask.data
    assert comparable(list(front.headers.items())) == comparable(flask.headers.to_wsgi_list())


@pytest.mark.parametrize(("method", "query", "headers", "body"), REQUESTS)
def test_the_front_answers_as_flask_does(
    both: tuple[LiveServer, object],
    method: str,
    query: str,
    headers: dict[str, str],
    body: bytes,
) -> None:
    assert_same(*ask_both(both, method, "/sparql", query, headers, body))


@pytest.mark.parametrize(("path", "query", "headers"), NAMED)
def test_the_front_runs_named_queries_as_flask_does(
    both: tuple[LiveServer, object], path: str, query: str, headers: dict[str, str]
) -> None:
    assert_same(*ask_both(both, "GET", path, query, headers))


#: (path, query string, headers): resources' JSON pages, asked of both paths by GET.
PAGES: list[tuple[str, str, dict[str, str]]] = [
    ("/id/sample/finding-1.json", "", {}),
    ("/id/sample/finding-2.json", "", {"Accept": "text/html", "Origin": "https://example.org"}),
    ("/id/sample/finding-3.json", "incoming=1", {}),
    ("/id/sample/finding-3.json", "incoming=2", {}),
    ("/id/sample/finding-3.json", "incoming=0", {}),
    ("/id/sample/no-such-thing.json", "", {}),
]


@pytest.mark.parametrize(("path", "query", "headers"), PAGES)
def test_the_front_serves_json_pages_as_flask_does(
    both: tuple[LiveServer, object], path: str, query: str, headers: dict[str, str]
) -> None:
    assert_same(*ask_both(both, "GET", path, query, headers))


def test_html_pages_and_other_twins_reach_flask(both: tuple[LiveServer, object]) -> None:
    for path, query in (("/id/sample/finding-1", ""), ("/id/sample/finding-1.ttl", ""),
                        ("/id/sample/finding-1.json", "incoming=x")):  # fmt: skip
        front, flask = ask_both(both, "GET", path, query, {})
        assert front.headers["Server"] == "gunicorn"
        assert front.status_code == flask.status_code and front.content == flask.data


def test_what_the_front_does_not_take_reaches_flask(both: tuple[LiveServer, object]) -> None:
    server, _ = both
    described = requests.get(server.endpoint, headers={"Accept": "text/turtle"}, timeout=30)
    assert described.status_code == 200 and "sd:Service" in described.text
    assert described.headers["Server"] == "gunicorn"
    head = requests.head(server.endpoint, params={"query": "ASK {}"}, timeout=30)
    assert head.status_code == 200 and head.headers["Server"] == "gunicorn"
    update = requests.post(
        f"{server.url}/update", data="CLEAR ALL",
        headers={"Content-Type": "application/sparql-update"}, timeout=30,
    )  # fmt: skip
    assert update.status_code == 403 and update.headers["Server"] == "gunicorn"


def test_the_front_logs_its_answers(both: tuple[LiveServer, object]) -> None:
    server, _ = both
    agent = "direct-path-log-test"
    requests.get(
        server.endpoint, params={"query": "ASK {}"}, headers={"User-Agent": agent}, timeout=30
    )
    time.sleep(0.3)
    lines = [line for line in server.log().splitlines() if agent in line]
    assert lines and lines[-1].startswith("127.0.0.1 ") and '" 200 ' in lines[-1], lines


@pytest.mark.slow
def test_answers_name_their_build_across_a_swap(settings: Settings, run_folder: Path) -> None:
    """The front pins each query to one build: Copkg-Build and the ETag name it, a repeated
    GET is the same answer (from the answer cache), a conditional one goes to Flask (304), and
    a study added is served by the front once its query workers have opened it (within 2 s on
    a quiet machine, as test_build_swap measures for Flask; here the bound allows for load)."""
    add_build(run_folder, settings)
    count = "SELECT (COUNT(*) AS ?n) WHERE { GRAPH ?g { ?s ?p ?o } }"
    with LiveServer(root=settings.root) as server:
        first = Manifest.read(settings.build_dir)
        answer = requests.get(
            server.endpoint, params={"query": count}, headers={"Accept": JSON}, timeout=30
        )
        assert answer.status_code == 200 and "Server" not in answer.headers
        assert answer.headers["Copkg-Build"] == first.build_id
        etag = answer.headers["ETag"]
        assert etag.startswith(f'"{first.build_id}-') and answer.headers["Cache-Control"]
        n = int(json.loads(answer.content)["results"]["bindings"][0]["n"]["value"])
        assert n == first.quads
        again = requests.get(
            server.endpoint, params={"query": count}, headers={"Accept": JSON}, timeout=30
        )
        assert again.content == answer.content and again.headers["ETag"] == etag
        unchanged = requests.get(
            server.endpoint, params={"query": count},
            headers={"Accept": JSON, "If-None-Match": etag}, timeout=30,
        )  # fmt: skip
        assert unchanged.status_code == 304 and unchanged.headers["Server"] == "gunicorn"

        add_study(settings, synthetic.write_study(settings.root / "incoming", 0), skip_owl=True)
        added = time.monotonic()
        second = Manifest.read(settings.build_dir)
        while True:
            answer = requests.get(
                server.endpoint, params={"query": count}, headers={"Accept": JSON}, timeout=30
            )
            if answer.headers["Copkg-Build"] == second.build_id:
                break
            assert answer.headers["Copkg-Build"] == first.build_id
            assert time.monotonic() - added < SWAP_BOUND, "the old build is still served"
            time.sleep(0.05)
        n = int(json.loads(answer.content)["results"]["bindings"][0]["n"]["value"])
        assert n == second.quads
        assert answer.headers["ETag"].startswith(f'"{second.build_id}-')


def test_a_store_that_is_not_on_disk_is_not_taken(tmp_path: Path) -> None:
    """With the store in memory, queries stay with Flask (beside the updates that change it)."""
    disk_store(tmp_path / "unused")
    with LiveServer(root=ROOT, env={"COPKG_STORE_URL": "memory:"}) as server:
        answer = requests.get(server.endpoint, params={"query": "ASK {}"}, timeout=30)
        assert answer.status_code == 200 and answer.headers["Server"] == "gunicorn"


def test_the_fronts_warm_up_answers_every_named_query(tmp_path: Path) -> None:
    """The front's warm-up runs each named query as a request would, the facts it reads of the
    build (the keys of pages) read by the workers and kept with the build."""
    import asyncio

    from test_web_pages import make_web_project

    from copkg.namespaces import COPKG
    from copkg.web.app import app_config
    from copkg.web.direct import DirectQueries, direct_config

    settings = make_web_project(tmp_path / "project")
    config = direct_config(app_config({"SETTINGS": settings, "QUERY_WORKERS": 1}), settings)
    assert config is not None
    lines: list[str] = []
    direct = DirectQueries(json.loads(json.dumps(config)), log_line=lines.append)
    try:
        services = direct.switch.current
        answered = asyncio.run(direct.warm_up(services))
        assert answered == len(direct.queries), lines
        assert services.facts[("page_keys", str(COPKG.Study))]
    finally:
        direct.close()


def test_the_warm_up_runs_where_and_when_asked(tmp_path: Path) -> None:
    """COPKG_WARM_UP (the app's WARM_UP): the front's workers run the named queries at start
    only when it is true, and gunicorn's app, whose named queries the front answers, never
    runs them a second time."""
    import asyncio

    from test_web_pages import make_web_project

    from copkg.web.app import app_config
    from copkg.web.direct import DirectQueries, direct_config
    from copkg.web.server import CopkgApplication

    settings = make_web_project(tmp_path / "project")
    for wanted in (False, True):
        config = direct_config(
            app_config({"SETTINGS": settings, "QUERY_WORKERS": 1, "WARM_UP": wanted}), settings
        )
        assert config is not None
        lines: list[str] = []
        direct = DirectQueries(json.loads(json.dumps(config)), log_line=lines.append)

        async def started(
            direct: DirectQueries = direct, lines: list[str] = lines, wait: float = 1.5
        ) -> None:
            direct.start()
            deadline = time.monotonic() + wait
            while not lines and time.monotonic() < deadline:
                await asyncio.sleep(0.05)

        try:
            asyncio.run(started(wait=60 if wanted else 1.5))
        finally:
            direct.close()
        assert [line for line in lines if "warm-up:" in line] == (lines if wanted else []), lines
        assert bool(lines) is wanted, lines
    gunicorns = CopkgApplication(settings, {}, warm_up=False).load()
    try:
        assert gunicorns.config["WARM_UP"] is False
    finally:
        gunicorns.extensions["copkg"].close()
