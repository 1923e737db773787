"""A short run of the load test (benchmarks/load.py) against a live `copkg serve` of a build
of the project: a few seconds, a few clients, the full mix (named queries, pages, ad-hoc
SPARQL, malformed queries, queries that run into the time limit). No 5xx but the intended
503s, every request answered, memory steady. The 60 s figures are in benchmarks/RESULTS.md."""

from __future__ import annotations

import sys
import threading
import time
from pathlib import Path

import pytest

from copkg.config import Settings

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import load


@pytest.mark.server
@pytest.mark.slow
def test_a_short_load_run_passes(built: Settings) -> None:
    """The default mix, plus a query that surely runs into the limit while it runs. (The limit
    is 2 s: on a busy machine the slowest named query can take a second.)"""
    with load.started_server(built.root, query_timeout=2.0, workers=1) as (url, pid):
        slow: list[int] = []

        def run_slow() -> None:
            time.sleep(0.5)
            # from an address of its own: the service shares workers out per client
            session = load.session_from(url, "127.0.1.1")
            response = session.post(url + "/sparql", data={"query": load.SLOW[0]}, timeout=60)
            slow.append(response.status_code)

        thread = threading.Thread(target=run_slow)
        thread.start()
        report = load.run(url, duration=3, clients=4, pid=pid, query_timeout=2.0)
        thread.join(60)
    summary = load.markdown(report)
    assert report.passed, summary
    assert slow == [503], slow
    assert report.requests >= 20, summary
    for kind in ("named", "page", "sparql"):
        assert report.statuses[kind] == {"200": report.statuses[kind]["200"]}, summary
    assert set(report.statuses.get("bad", {"400": 1})) == {"400"}, summary
    assert set(report.statuses.get("slow", {"503": 1})) == {"503"}, summary
    assert report.rss_mb["processes_max"] >= 2, summary  # gunicorn and its worker, at least


def test_idle_workers_go_to_the_longest_waiter() -> None:
    """A worker handed back goes to the query that has waited longest, never to one that
    arrives after it (with queue.Queue a newcomer could take it, and an early query then
    waited out its time under load and got 503 'busy')."""
    import queue

    from copkg.querying.scheduling import FairPool

    pool: FairPool[str] = FairPool()
    got: list[tuple[str, str]] = []

    def wait(name: str) -> None:
        got.append((name, pool.get(timeout=5)))

    first = threading.Thread(target=wait, args=("first",))
    first.start()
    time.sleep(0.05)
    second = threading.Thread(target=wait, args=("second",))
    second.start()
    time.sleep(0.05)
    pool.put("a")
    first.join(5)
    with pytest.raises(queue.Empty):  # a newcomer does not jump the queue
        pool.get(timeout=0.05)
    pool.put("b")
    second.join(5)
    assert got == [("first", "a"), ("second", "b")]
    pool.put("c")
    assert pool.get(timeout=0) == "c"
    with pytest.raises(queue.Empty):
        pool.get(timeout=0.01)
