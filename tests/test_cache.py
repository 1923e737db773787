"""Answers cached per build: ETags, 304 on If-None-Match, and a new build invalidating both."""

from __future__ import annotations

import importlib
import sys
import threading
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
from conftest import add_build, copy_built
from flask import Flask

from copkg.config import Settings
from copkg.pipeline import build
from copkg.querying.executor import Answer, Job
from copkg.querying.memo import MemoExecutor
from copkg.store.embedded import OxigraphStore
from copkg.web import get_executor
from copkg.web.app import create_app
from copkg.web.cache import Entry, ResponseCache
from copkg.web.warmup import warm_up

ROOT = Path(__file__).resolve().parents[1]
QUERY = "/api/queries/role-framework"
PAGE = "/id/josserand2004/facilitation.json"
SPARQL = "/sparql?query=ASK%20%7B%20%3Fs%20%3Fp%20%3Fo%20%7D"


def app_for(settings: Settings) -> Flask:
    """The app over the project's build, queries in threads (no worker processes)."""
    return create_app({"SETTINGS": settings, "QUERY_WORKERS": 0, "TESTING": True})


@pytest.fixture
def built(settings: Settings, run_folder: Path) -> Settings:
    """The project built (validate=False): the run's one build, copied (conftest.add_build)."""
    return add_build(run_folder, settings)


@pytest.mark.parametrize("path", [QUERY, PAGE, SPARQL])
def test_an_answer_has_an_etag_and_a_matching_if_none_match_gets_304(
    built: Settings, path: str
) -> None:
    client = app_for(built).test_client()
    first = client.get(path)
    assert first.status_code == 200
    etag = first.headers["ETag"]
    assert first.headers["Cache-Control"] == "no-cache"
    again = client.get(path, headers={"If-None-Match": etag})
    assert again.status_code == 304
    assert again.data == b""
    assert again.headers["ETag"] == etag
    other = client.get(path, headers={"If-None-Match": '"not-this-one"'})
    assert other.status_code == 200
    assert other.data == first.data


def count_runs(app: Flask, monkeypatch: pytest.MonkeyPatch, delay: float = 0.0) -> list[Job]:
    """The jobs the app's executor runs from now on (each taking `delay` s more), behind the
    answers it keeps."""
    with app.app_context():
        executor = get_executor()
    executor = getattr(executor, "inner", executor)
    calls: list[Job] = []
    run = executor.run

    def counting(job: Job) -> Answer:
        calls.append(job)
        time.sleep(delay)
        return run(job)

    monkeypatch.setattr(executor, "run", counting)
    return calls


def test_a_cached_answer_is_not_computed_again(
    built: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = app_for(built)
    client = app.test_client()
    calls = count_runs(app, monkeypatch)
    first = client.get(QUERY)
    second = client.get(QUERY)
    assert len(calls) == 1
    assert second.data == first.data
    assert second.headers["ETag"] == first.headers["ETag"]
    assert second.headers["Content-Type"] == first.headers["Content-Type"]


def test_the_accept_header_and_the_query_string_are_part_of_the_key(built: Settings) -> None:
    client = app_for(built).test_client()
    json_answer = client.get(QUERY, headers={"Accept": "application/json"})
    csv_answer = client.get(QUERY, headers={"Accept": "text/csv"})
    assert csv_answer.headers["Content-Type"].startswith("text/csv")
    assert json_answer.headers["ETag"] != csv_answer.headers["ETag"]
    assert client.get(QUERY + ".csv").data == csv_answer.data
    assert client.get(QUERY, headers={"Accept": "application/json"}).data == json_answer.data


def test_errors_are_not_cached(built: Settings) -> None:
    client = app_for(built).test_client()
    assert client.get("/api/queries/no-such-query").status_code == 404
    answer = client.get("/api/queries/no-such-query")
    assert answer.status_code == 404
    assert "ETag" not in answer.headers


def test_cors_headers_still_follow_the_request(built: Settings) -> None:
    uncached = create_app({"SETTINGS": built, "QUERY_WORKERS": 0, "RESPONSE_CACHE_BYTES": 0})
    client = app_for(built).test_client()
    client.get(QUERY)
    for origin in ("https://example.org", "https://example.com"):
        answer = client.get(QUERY, headers={"Origin": origin})
        expected = uncached.test_client().get(QUERY, headers={"Origin": origin})
        assert (
            answer.headers["Access-Control-Allow-Origin"]
            == expected.headers["Access-Control-Allow-Origin"]
        )


def _change_a_source(settings: Settings) -> None:
    """Append one label to the Josserand bundle: a new source hash, a new build."""
    path = settings.data_dir / "studies" / "josserand2004" / "roles.ttl"
    with path.open("a", encoding="utf-8") as out:
        out.write(
            "\n<https://w3id.org/copkg/id/josserand2004/facilitation> "
            '<http://www.w3.org/2004/02/skos/core#altLabel> "facilitating"@en .\n'
        )


def test_a_rebuild_invalidates_etags_and_cached_answers(built: Settings) -> None:
    old = app_for(built).test_client().get(PAGE)
    _change_a_source(built)
    build(built, validate=False)
    client = app_for(built).test_client()
    answer = client.get(PAGE, headers={"If-None-Match": old.headers["ETag"]})
    assert answer.status_code == 200
    assert answer.headers["ETag"] != old.headers["ETag"]
    assert b"facilitating" in answer.data


def test_the_same_build_gives_the_same_etag_in_another_process(built: Settings) -> None:
    first = app_for(built).test_client().get(QUERY)
    second = (
        app_for(built).test_client().get(QUERY, headers={"If-None-Match": first.headers["ETag"]})
    )
    assert second.status_code == 304


def test_adding_a_study_invalidates_etags(built: Settings) -> None:
    studies = importlib.import_module("copkg.studies.add")
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        import synthetic
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))
    old = app_for(built).test_client().get(QUERY)
    folder = synthetic.write_study(built.root / "incoming", 0)
    studies.add_study(built, folder, skip_owl=True)
    client = app_for(built).test_client()
    answer = client.get(QUERY, headers={"If-None-Match": old.headers["ETag"]})
    assert answer.status_code == 200
    assert answer.headers["ETag"] != old.headers["ETag"]
    assert client.get("/id/synthetic-00000/case-1.json").status_code == 200


def test_a_store_that_can_change_is_not_cached() -> None:
    app = create_app({"STORE": OxigraphStore(), "QUERY_WORKERS": 0, "TESTING": True})
    answer = app.test_client().get(SPARQL)
    assert answer.status_code == 200
    assert "ETag" not in answer.headers
    with app.app_context():
        assert not isinstance(get_executor(), MemoExecutor)


def test_the_cache_can_be_turned_off(built: Settings) -> None:
    app = create_app({"SETTINGS": built, "QUERY_WORKERS": 0, "RESPONSE_CACHE_BYTES": 0})
    assert "ETag" not in app.test_client().get(QUERY).headers


def test_the_cache_keeps_at_most_its_bound() -> None:
    cache = ResponseCache("build", max_bytes=1000)
    for i in range(20):
        cache.put(f"k{i}", Entry(200, (), b"x" * 100, f"e{i}"))
    assert len(cache) < 10
    assert cache.get("k19") is not None
    assert cache.get("k0") is None
    cache.put("big", Entry(200, (), b"x" * 5000, "big"))
    assert cache.get("big") is None


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory, run_folder: Path) -> Settings:
    """A build the tests below only read (one a module)."""
    return copy_built(run_folder, tmp_path_factory.mktemp("cache"))


def _without_date(headers: list[tuple[str, str]]) -> list[tuple[str, str]]:
    return [(name, value) for name, value in headers if name != "Date"]


@pytest.mark.parametrize(
    ("method", "path", "headers"),
    [
        ("GET", QUERY, {}),
        ("GET", QUERY + ".csv", {"Origin": "https://example.org"}),
        ("GET", PAGE, {"Accept": "text/turtle"}),
        ("GET", SPARQL, {"Accept": "text/csv", "Origin": "https://example.org"}),
        ("HEAD", SPARQL, {"Accept": "application/sparql-results+json"}),
        ("GET", "/sparql", {"Accept": "text/turtle"}),  # the service description
    ],
)
def test_a_hit_gives_the_bytes_and_headers_of_the_miss(
    shared: Settings, method: str, path: str, headers: dict[str, str]
) -> None:
    client = app_for(shared).test_client()
    miss = client.open(path, method=method, headers=headers)
    hit = client.open(path, method=method, headers=headers)
    assert miss.status_code == hit.status_code == 200
    assert hit.data == miss.data
    assert (method == "HEAD") == (hit.data == b"")
    assert _without_date(hit.headers.to_wsgi_list()) == _without_date(miss.headers.to_wsgi_list())
    assert "Date" in hit.headers and "ETag" in hit.headers
    if "Origin" in headers:
        assert hit.headers["Access-Control-Allow-Origin"]


@pytest.mark.parametrize(
    "conditions",
    [
        {"If-None-Match": "match"},
        {"If-None-Match": '"other", match'},
        {"If-None-Match": "*"},
        {"If-None-Match": '"other"'},
        {"If-Match": '"other"'},
        {"If-Match": "match"},
        {"Range": "bytes=0-10"},
    ],
)
def test_a_conditional_hit_is_answered_as_flask_answers_the_miss(
    shared: Settings, conditions: dict[str, str]
) -> None:
    """304, 412 or 200 with the same headers whether the answer was cached or not."""
    etag = app_for(shared).test_client().get(QUERY).headers["ETag"]
    headers = {name: value.replace("match", etag) for name, value in conditions.items()}
    cached = app_for(shared).test_client()
    cached.get(QUERY)  # now in the cache
    hit = cached.get(QUERY, headers=headers)
    miss = app_for(shared).test_client().get(QUERY, headers=headers)
    assert hit.status_code == miss.status_code
    assert hit.data == miss.data
    assert _without_date(hit.headers.to_wsgi_list()) == _without_date(miss.headers.to_wsgi_list())


def test_the_host_is_part_of_the_key(shared: Settings) -> None:
    """The service description and base IRIs name the host the client used."""
    client = app_for(shared).test_client()
    turtle = {"Accept": "text/turtle"}
    first = client.get("/sparql", headers=turtle, base_url="http://one.example")
    second = client.get("/sparql", headers=turtle, base_url="http://two.example")
    assert b"http://one.example/sparql" in first.data
    assert b"http://two.example/sparql" in second.data
    assert b"one.example" not in second.data


@pytest.mark.parametrize(
    ("path", "status"),
    [(SPARQL, 200), ("/sparql?query=SELECT%20*%20%7B", 400), ("/api/queries/nope", 404)],
)
def test_requests_for_an_answer_being_computed_wait_for_it(
    shared: Settings, monkeypatch: pytest.MonkeyPatch, path: str, status: int
) -> None:
    """Concurrent misses of one answer run its query once; the others get its bytes, an
    error included (errors are not kept: the next request runs the query again)."""
    app = app_for(shared)
    calls = count_runs(app, monkeypatch, delay=0.3)
    answers: list[tuple[int, bytes]] = []

    def ask() -> None:
        answer = app.test_client().get(path)
        answers.append((answer.status_code, answer.data))

    threads = [threading.Thread(target=ask) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert len(calls) == (1 if status != 404 else 0)
    assert len(answers) == 4 and len(set(answers)) == 1
    assert answers[0][0] == status
    app.test_client().get(path)
    assert len(calls) == (1 if status == 200 else 2 if status == 400 else 0)


def test_a_job_runs_once_whatever_the_request_around_it(
    shared: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Requests that differ in host or origin share the executor's answer; the API's two JSON
    flavours are a job each (the worker writes the rows of application/json itself)."""
    app = app_for(shared)
    calls = count_runs(app, monkeypatch)
    client = app.test_client()
    first = client.get(QUERY, headers={"Accept": "application/sparql-results+json"})
    again = client.get(
        QUERY,
        headers={"Accept": "application/sparql-results+json", "Origin": "https://example.org"},
        base_url="http://other.example",
    )
    assert again.data == first.data
    assert len(calls) == 1
    rows = client.get(QUERY, headers={"Accept": "application/json"})
    elsewhere = client.get(
        QUERY, headers={"Accept": "application/json"}, base_url="http://o.example"
    )
    assert rows.status_code == 200 and elsewhere.data == rows.data
    assert len(calls) == 2


def test_the_warm_up_runs_each_named_query_once(
    shared: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = create_app({"SETTINGS": shared, "QUERY_WORKERS": 0, "WARM_UP": False})
    calls = count_runs(app, monkeypatch)
    statuses = warm_up(app)
    names = {path.stem for path in shared.queries_dir.glob("*.rq")}
    assert set(statuses) == names and set(statuses.values()) == {200}
    queries = [job for job in calls if job.read is None]
    # besides, the facts the queries read of the build (the keys of pages), each read once
    facts = [(job.read, job.args) for job in calls if job.read is not None]
    assert len(queries) == len(names) and len(set(facts)) == len(facts)
    answer = app.test_client().get(QUERY)  # another host and Accept than the warm-up's
    assert answer.status_code == 200
    assert len(calls) == len(names) + len(facts)


ASK = "ASK { ?s ?p ?o }"
SELECT = "SELECT ?p WHERE { ?s ?p ?o } ORDER BY ?p LIMIT 3"


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        ("application/x-www-form-urlencoded", lambda q: urlencode({"query": q})),
        ("application/sparql-query", lambda q: q),
        ("application/sparql-query; charset=utf-8", lambda q: q),
    ],
)
def test_a_query_posted_is_kept_by_its_body(
    shared: Settings, monkeypatch: pytest.MonkeyPatch, content_type: str, body: Any
) -> None:
    app = app_for(shared)
    calls = count_runs(app, monkeypatch)
    client = app.test_client()

    def post(query: str, **headers: str) -> Any:
        return client.post(
            "/sparql", data=body(query), headers={"Content-Type": content_type, **headers}
        )

    miss = post(ASK, Origin="https://example.org")
    hit = post(ASK, Origin="https://example.org")
    assert miss.status_code == hit.status_code == 200
    assert hit.data == miss.data
    assert hit.headers.to_wsgi_list() == miss.headers.to_wsgi_list()
    assert "ETag" not in hit.headers and hit.headers["Access-Control-Allow-Origin"]
    other = post(SELECT)
    assert other.status_code == 200 and other.data != miss.data
    assert len(calls) == 2
    assert post(SELECT).data == other.data
    assert len(calls) == 2


def test_posts_other_than_queries_are_not_kept(shared: Settings) -> None:
    client = app_for(shared).test_client()
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    for _ in range(2):
        update = client.post("/sparql", data=urlencode({"update": "CLEAR ALL"}), headers=form)
        assert update.status_code == 403
    too_large = create_app(
        {"SETTINGS": shared, "QUERY_WORKERS": 0, "MAX_CONTENT_LENGTH": 100}
    ).test_client()
    for _ in range(2):
        answer = too_large.post("/sparql", data=urlencode({"query": ASK + " " * 200}), headers=form)
        assert answer.status_code == 413
