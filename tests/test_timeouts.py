"""Time limits: a runaway query gets 503 with Retry-After at the limit, its worker is replaced,
and other clients are answered meanwhile (worker processes, threads, and a live server)."""

from __future__ import annotations

import json
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from web_helpers import LiveServer, disk_store, live_server, sample_quads

from copkg.errors import CopkgError
from copkg.querying.executor import Answer, Job, ThreadExecutor
from copkg.querying.workers import ProcessExecutor
from copkg.store.embedded import OxigraphStore

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import load

LIMIT = 1.0

#: A cartesian product of five patterns over 92 triples: 6.6e9 rows to count, minutes of work.
EXPENSIVE_COUNT = (
    "SELECT (COUNT(*) AS ?n) { ?a ?b ?c . ?d ?e ?f . ?g ?h ?i . ?j ?k ?l . ?m ?n1 ?o }"
)
#: The same shape, but giving rows: the store's own deadline stops it between rows.
EXPENSIVE_ROWS = "SELECT * { ?a ?b ?c . ?d ?e ?f . ?g ?h ?i . ?j ?k ?l }"
CHEAP = "SELECT (COUNT(*) AS ?n) { ?s ?p ?o }"
JSON_TYPES = {"select": "application/sparql-results+json", "ask": "application/sparql-results+json"}


def job(query: str) -> Job:
    return Job(query, media_types=JSON_TYPES)


def count_of(answer: Answer) -> int:
    return int(json.loads(answer.body)["results"]["bindings"][0]["n"]["value"])


class Background:
    """Run a call in a thread; keep its result or error and when it ended."""

    def __init__(self, call: Callable[..., Any], *args: Any) -> None:
        self.result = self.error = None
        self.started = time.monotonic()
        self.ended: float | None = None
        self._thread = threading.Thread(target=self._run, args=(call, *args), daemon=True)
        self._thread.start()

    def _run(self, call: Callable[..., Any], *args: Any) -> None:
        try:
            self.result = call(*args)
        except Exception as exc:  # noqa: BLE001 (kept for the test to inspect)
            self.error = exc
        self.ended = time.monotonic()

    def join(self, timeout: float) -> Background:
        self._thread.join(timeout)
        assert self.ended is not None, "the call did not return"
        return self

    @property
    def elapsed(self) -> float:
        assert self.ended is not None
        return self.ended - self.started


def assert_timed_out(error: object) -> None:
    assert isinstance(error, CopkgError), error
    assert error.status == 503
    assert int(error.headers["Retry-After"]) >= 1
    assert "limit" in error.message


# -- worker processes --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def processes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ProcessExecutor]:
    path = disk_store(tmp_path_factory.mktemp("timeouts") / "store")
    executor = ProcessExecutor(path, timeout=LIMIT, workers=2, max_rows=1000)
    assert count_of(executor.run(job(CHEAP))) == 92  # both workers up before timing anything
    assert count_of(executor.run(job(CHEAP))) == 92
    yield executor
    executor.close()


def test_a_runaway_query_is_killed_at_the_limit(processes: ProcessExecutor, slack: float) -> None:
    pids = set(processes.pids())
    slow = Background(processes.run, job(EXPENSIVE_COUNT))
    cheap = [processes.run(job(CHEAP)) for _ in range(5)]  # answered while the slow one runs
    assert all(count_of(a) == 92 for a in cheap)
    assert slow.ended is None, "the expensive query should still be running"
    slow.join(LIMIT + slack + 5)
    assert_timed_out(slow.error)
    assert LIMIT <= slow.elapsed < LIMIT + slack
    # the killed worker was replaced and the pool answers as before
    assert len(set(processes.pids()) - pids) == 1
    assert len(processes.pids()) == 2
    assert count_of(processes.run(job(CHEAP))) == 92


def test_errors_come_back_from_the_workers(processes: ProcessExecutor) -> None:
    with pytest.raises(CopkgError) as error:
        processes.run(job("SELECT * {"))
    assert error.value.status == 400 and error.value.problems[0].line == 1
    with pytest.raises(CopkgError) as error:
        processes.run(Job("ASK {}", media_types={"graph": "text/turtle"}))
    assert error.value.status == 406


def test_the_row_limit_holds_in_the_workers(processes: ProcessExecutor) -> None:
    answer = processes.run(job("SELECT * { ?a ?b ?c . ?d ?e ?f }"))
    assert answer.truncated and answer.count == 1000


def test_a_worker_that_cannot_open_the_store_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "not-a-store").mkdir()
    executor = ProcessExecutor(tmp_path / "not-a-store", timeout=LIMIT, workers=1)
    try:
        with pytest.raises(CopkgError) as error:
            executor.run(job(CHEAP))
        assert error.value.status == 500
    finally:
        executor.close()


# -- threads -----------------------------------------------------------------------------------


def test_threads_answer_503_at_the_limit_and_others_meanwhile(slack: float) -> None:
    store = OxigraphStore(timeout=LIMIT)  # the store stops between rows at its deadline
    store.native.extend(sample_quads())
    executor = ThreadExecutor(store, timeout=LIMIT, workers=2)
    slow = Background(executor.run, job(EXPENSIVE_ROWS))
    time.sleep(0.1)
    assert count_of(executor.run(job(CHEAP))) == 92
    slow.join(LIMIT + slack + 5)
    assert_timed_out(slow.error)
    assert slow.elapsed < LIMIT + slack
    # the thread ended at the store's deadline: its slot is free again
    time.sleep(0.5)
    assert count_of(executor.run(job(CHEAP))) == 92


def test_threads_refuse_when_every_slot_is_taken() -> None:
    store = OxigraphStore(timeout=LIMIT)  # outlives two waits of the executor's limit
    store.native.extend(sample_quads())
    executor = ThreadExecutor(store, timeout=LIMIT / 3, workers=1)
    with pytest.raises(CopkgError):
        executor.run(job(EXPENSIVE_ROWS))  # still running in its thread after the 503
    with pytest.raises(CopkgError) as error:
        executor.run(job(CHEAP))
    assert error.value.status == 503 and "busy" in error.value.message


# -- `--store memory:` --------------------------------------------------------------------------


def _dead(pid: int, within: float = 2.0) -> bool:
    """Whether a process ends within `within` seconds (SIGKILL was sent: the kernel ends it
    when next scheduled): gone, or a zombie its parent reaps in a thread."""
    until = time.monotonic() + within
    while True:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except FileNotFoundError:
            return True
        if state in ("Z", "X"):
            return True
        if time.monotonic() > until:
            return False
        time.sleep(0.01)


def test_memory_store_runaway_query_is_killed_and_nothing_is_lost(slack: float) -> None:
    """`--store memory:` ran queries in threads of the web process: past the limit the client
    got its 503 and the thread went on, at full CPU. Now the store's worker processes read
    snapshots of it: the runaway's worker is killed at the limit, the store loses nothing, and
    queries and updates go on, with the workers' sandbox as for the build."""
    from copkg.config import Settings
    from copkg.web.app import create_app

    settings = Settings.load(Path(__file__).resolve().parents[1], environ={}, store_url="memory:")
    app = create_app({"SETTINGS": settings, "TESTING": True, "UPDATE_TOKEN": "t",
                      "QUERY_TIMEOUT": LIMIT, "QUERY_WORKERS": 2})  # fmt: skip
    client = app.test_client()

    def update(triples: str) -> None:
        response = client.post(
            "/update",
            data=f"INSERT DATA {{ GRAPH <http://example.org/g> {{ {triples} }} }}",
            content_type="application/sparql-update",
            headers={"Authorization": "Bearer t"},
        )
        assert response.status_code == 200, response.get_data(as_text=True)

    def count(query: str = CHEAP) -> Any:
        return client.get("/sparql", query_string={"query": query},
                          headers={"Accept": "application/sparql-results+json"})  # fmt: skip

    try:
        update(
            " ".join(f"<http://example.org/s{i}> <http://example.org/p> {i} ." for i in range(40))
        )
        assert count().get_json()["results"]["bindings"][0]["n"]["value"] == "40"
        executor = app.extensions["copkg"].current.executor
        executor.start()  # every worker has opened its snapshot (and confined itself)
        before = set(executor.pids())
        for pid in before:  # confined as the build's workers are
            assert "Seccomp:\t2" in Path(f"/proc/{pid}/status").read_text()
        started = time.monotonic()
        runaway = count(EXPENSIVE_COUNT)
        assert runaway.status_code == 503 and "limit" in runaway.get_json()["error"]
        assert LIMIT <= time.monotonic() - started < LIMIT + slack
        killed = before - set(executor.pids())
        assert len(killed) == 1
        assert all(_dead(pid) for pid in killed)  # its CPU is free (reaped in a thread)
        assert count().get_json()["results"]["bindings"][0]["n"]["value"] == "40"
        update("<http://example.org/s40> <http://example.org/p> 40 .")
        for _ in range(4):  # every worker, the new one too, reads every update
            assert count().get_json()["results"]["bindings"][0]["n"]["value"] == "41"
    finally:
        app.extensions["copkg"].close()


# -- a live server -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    env = {"COPKG_QUERY_TIMEOUT": str(LIMIT), "COPKG_QUERY_WORKERS": "2"}
    with live_server(tmp_path_factory.mktemp("live"), env=env) as running:
        for _ in range(2):  # both query workers started
            assert requests.get(running.endpoint, params={"query": CHEAP}, timeout=30).ok
        yield running


@pytest.mark.server
def test_live_runaway_query_gets_503_while_others_are_served(
    server: LiveServer, slack: float
) -> None:
    # the runaway comes from another client (address) than the cheap queries: the service
    # shares its workers out per client, and keeps one for others' short queries
    runaway = load.session_from(server.endpoint, "127.0.1.1")
    slow = Background(runaway.get, server.endpoint, {"query": EXPENSIVE_COUNT})
    answered = []
    while slow.ended is None and time.monotonic() - slow.started < LIMIT + slack + 5:
        response = requests.get(server.endpoint, params={"query": CHEAP}, timeout=10)
        assert response.status_code == 200
        answered.append(time.monotonic())
        time.sleep(0.05)
    slow.join(5)
    response = slow.result
    assert response is not None and response.status_code == 503, response
    assert int(response.headers["Retry-After"]) >= 1
    assert response.json()["ok"] is False and "limit" in response.json()["error"]
    assert LIMIT <= slow.elapsed < LIMIT + slack
    assert len([t for t in answered if t < slow.ended]) >= 3
    # and the service goes on
    after = requests.get(server.endpoint, params={"query": CHEAP}, timeout=10)
    assert after.status_code == 200
