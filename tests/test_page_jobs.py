"""A page's data is one job for the query executor, as a SPARQL query is: read in a worker
process (its time limit, its kill, its sandbox), or by a thread for a store that is not on
disk; the web renders what the job returns and never reads the store itself."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from test_web_pages import web_settings  # noqa: F401 - the session's built project

from copkg.config import Settings
from copkg.errors import CopkgError
from copkg.namespaces import COPKG
from copkg.querying.executor import Job, ThreadExecutor
from copkg.querying.messages import loads_plain
from copkg.querying.named_queries import parse_named_query, values_fact
from copkg.querying.pages import reads
from copkg.querying.workers import ProcessExecutor
from copkg.store.embedded import OxigraphStore
from copkg.web.app import create_app

ROLE = "/id/josserand2004/facilitation"


def _executor(app: Flask) -> Any:
    return app.extensions["copkg"].current.executor


@pytest.fixture
def tight(web_settings: Settings) -> Iterator[Flask]:  # noqa: F811
    """The build served by two worker processes under a limit of 5 ms, for queries and for
    reads of the whole graph alike (no answer kept)."""
    app = create_app({"SETTINGS": web_settings, "TESTING": True, "QUERY_WORKERS": 2,
                      "QUERY_TIMEOUT": 0.005, "OVERVIEW_TIMEOUT": 0.005,
                      "RESPONSE_CACHE_BYTES": 0})  # fmt: skip
    yield app
    app.extensions["copkg"].close()


def test_a_page_read_past_the_limit_is_503_and_its_worker_replaced(tight: Flask) -> None:
    """The VoID counts of the test build (three aggregates over every statement) take tens of
    ms at least: past a limit of 5 ms the worker reading them is killed (and replaced), the
    client gets 503 with Retry-After."""
    executor = _executor(tight)
    assert isinstance(executor, ProcessExecutor)
    executor.start()
    before = set(executor.pids())
    started = time.monotonic()
    response = tight.test_client().get("/.well-known/void")
    assert response.status_code == 503, response.get_data(as_text=True)
    assert int(response.headers["Retry-After"]) >= 1
    assert "limit" in response.get_data(as_text=True)
    assert time.monotonic() - started < 5
    killed = before - set(executor.pids())
    assert len(killed) == 1
    gone = Path(f"/proc/{killed.pop()}")
    waited = time.monotonic() + 10  # reaped, and its place taken, in threads of the pool
    while (gone.exists() or len(set(executor.pids()) - before) < 1) and time.monotonic() < waited:
        time.sleep(0.05)
    assert not gone.exists()  # its CPU is free
    assert len(executor.pids()) == 2 and len(set(executor.pids()) - before) == 1


def test_reads_of_the_whole_graph_have_a_limit_of_their_own(
    web_settings: Settings,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The VoID counts (a read of every statement, once a build) run under OVERVIEW_TIMEOUT
    (COPKG_OVERVIEW_TIMEOUT), not under the queries' limit; a resource's page under the
    queries' limit."""
    monkeypatch.setenv("COPKG_OVERVIEW_TIMEOUT", "60")
    app = create_app({"SETTINGS": web_settings, "TESTING": True, "QUERY_WORKERS": 1,
                      "QUERY_TIMEOUT": 0.05, "RESPONSE_CACHE_BYTES": 0})  # fmt: skip
    assert app.config["OVERVIEW_TIMEOUT"] == 60.0
    try:
        _executor(app).start()
        assert app.test_client().get("/.well-known/void").status_code == 200
    finally:
        app.extensions["copkg"].close()


def test_pages_are_read_in_the_worker_processes(web_settings: Settings) -> None:  # noqa: F811
    """A page read is a job of the pool (a read the workers do not know is their error)."""
    executor = ProcessExecutor(web_settings.build_dir / "oxigraph", timeout=30, workers=1)
    try:
        answer = executor.run(Job.page_read("resource", ROLE, 1, "text/html"))
        form, path, page = loads_plain(answer.body)  # plain data only, as the service reads it
        assert (form, path) == ("html", ROLE)
        assert reads.ResourceHtml.from_plain(page).resource.label
        assert answer.media_type == reads.READ_MEDIA
        with pytest.raises(CopkgError) as error:
            executor.run(Job.page_read("no-such-read"))
        assert error.value.status == 500 and "no-such-read" in error.value.message
    finally:
        executor.close()


def test_a_store_handed_in_reads_pages_in_threads_under_the_limit(
    web_settings: Settings,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A store handed in (not on disk) has its page reads run by the ThreadExecutor: at the
    limit the client gets its 503 (a read registered by the test stands for a slow one)."""

    def slow(store: Any) -> dict[str, Any]:
        time.sleep(2)
        return reads.void_counts(store)

    monkeypatch.setitem(reads.READS, "void", slow)
    store = OxigraphStore()  # in memory, handed in
    store.load_dataset(web_settings.build_dir / "copkg.nq")
    app = create_app({"STORE": store, "TESTING": True, "QUERY_TIMEOUT": 0.3,
                      "OVERVIEW_TIMEOUT": 0.3})  # fmt: skip
    executor = _executor(app)
    assert isinstance(executor, ThreadExecutor)
    client = app.test_client()
    started = time.monotonic()
    assert client.get("/.well-known/void").status_code == 503
    assert time.monotonic() - started < 1.5
    assert client.get(ROLE + ".json").get_json()["iri"].endswith("/facilitation")


def test_pages_of_a_memory_store_follow_its_updates() -> None:
    """`--store memory:`: the workers read snapshots, a newer one after each update (pages
    too)."""
    settings = Settings.load(Path(__file__).resolve().parents[1], environ={}, store_url="memory:")
    app = create_app({"SETTINGS": settings, "TESTING": True, "UPDATE_TOKEN": "t",
                      "QUERY_WORKERS": 2})  # fmt: skip
    client = app.test_client()
    thing = "https://w3id.org/copkg/id/demo/thing"
    try:
        for label in ("first", "second", "third"):
            response = client.post(
                "/update",
                data=f"DELETE WHERE {{ GRAPH <http://example.org/g> {{ <{thing}> ?p ?o }} }} ; "
                f"INSERT DATA {{ GRAPH <http://example.org/g> {{ <{thing}> "
                f'<http://www.w3.org/2000/01/rdf-schema#label> "{label}" }} }}',
                content_type="application/sparql-update",
                headers={"Authorization": "Bearer t"},
            )
            assert response.status_code == 200, response.get_data(as_text=True)
            for _ in range(2):  # both workers
                assert client.get("/id/demo/thing.json").get_json()["label"] == label
    finally:
        app.extensions["copkg"].close()


def test_every_page_read_answers_plain_data(web_settings: Settings) -> None:  # noqa: F811
    """The service reads a worker's replies as plain data only (no class named, so no code a
    worker taken over could make it run): every page read's result passes that reading."""
    from copkg.querying.messages import loads_plain
    from copkg.store.embedded import OxigraphStore as Embedded

    store = Embedded.open_read_only(web_settings.build_dir / "oxigraph")
    kinds = parse_named_query(
        Path("kinds.rq"), "#+ enumerate:\n#+   - type\nSELECT ?s WHERE { ?s a ?_type_iri }\n"
    )
    enumerated = [values_fact(kinds, kinds.parameters[0])[1:]]
    calls = {
        "resource": [(ROLE, 1, "text/html"), (ROLE + ".json", 1, None), (ROLE + ".ttl", 1, None)],
        "landing": [()],
        "graph": [("https://w3id.org/copkg/graph/inferences", True)],
        "graph_counts": [()],
        "rules": [()],
        "matrix": [()],
        "timeline": [("josserand2004/gas",)],
        "void": [()],
        "ontology": [()],
        "ontology_twin": [("text/turtle",)],
        "named_values": enumerated,
        "page_keys": [(str(COPKG.Study),)],
        "vocabulary": [()],
    }
    assert set(calls) == set(reads.READS)
    for name, argument_lists in calls.items():
        for args in argument_lists:
            assert loads_plain(reads.run_read(store, name, args)) is not None, name
