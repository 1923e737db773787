"""The query workers' sandbox: even a query that passes every check cannot connect or read.

Each confinement is tried in a child process (it cannot be undone), which reports what it could
and could not do; a TCP listener on 127.0.0.1 counts any connection that got out.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from watchers import Listener
from web_helpers import disk_store

from copkg.querying.executor import Job
from copkg.querying.sandbox import landlock_abi
from copkg.querying.workers import ProcessExecutor

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="Landlock and seccomp are Linux's")

CHILD = textwrap.dedent(
    """
    import json, socket, sys
    from pathlib import Path
    import pyoxigraph as ox
    from copkg.querying.sandbox import confine

    allowed, ports, url, port, inside, outside = json.loads(sys.argv[1])
    store = ox.Store()
    store.add(ox.Quad(ox.NamedNode("http://e/s"), ox.NamedNode("http://e/p"), ox.NamedNode("http://e/o")))
    state = confine([Path(p) for p in allowed], ports)
    seen = {"describe": state.describe(), "complete": state.complete}

    def attempt(name, action):
        try:
            action()
            seen[name] = "done"
        except Exception as exc:
            seen[name] = f"refused: {type(exc).__name__}"

    attempt("connect", lambda: socket.create_connection(("127.0.0.1", port), timeout=2).close())
    attempt("udp", lambda: socket.socket(socket.AF_INET, socket.SOCK_DGRAM).close())
    attempt("service", lambda: list(store.query(
        "SELECT * { ?s ?p ?o SERVICE <" + url + "> { ?a ?b ?c } }")))
    attempt("read inside", lambda: Path(inside).read_text())
    attempt("read outside", lambda: Path(outside).read_text())
    attempt("write inside", lambda: (Path(inside).parent / "new").write_text("x"))
    print(json.dumps(seen))
    """
)


@pytest.fixture
def listener() -> Iterator[Listener]:
    watcher = Listener("/sparql")
    yield watcher
    watcher.close()


def run_confined(
    tmp_path: Path, listener: Listener, ports: list[int] | None = None
) -> dict[str, object]:
    allowed = tmp_path / "build"
    allowed.mkdir()
    (allowed / "inside.txt").write_text("in")
    (tmp_path / "outside.txt").write_text("out")
    args = [
        [str(allowed)],
        ports or [],
        listener.url,
        listener.port,
        str(allowed / "inside.txt"),
        str(tmp_path / "outside.txt"),
    ]
    done = subprocess.run(
        [sys.executable, "-c", CHILD, json.dumps(args)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_a_confined_process_cannot_connect_even_for_an_unchecked_service(
    tmp_path: Path, listener: Listener
) -> None:
    seen = run_confined(tmp_path, listener)
    time.sleep(0.05)
    assert listener.connections == 0, seen
    assert seen["connect"].startswith("refused"), seen
    assert seen["udp"].startswith("refused"), seen  # no DNS either
    assert seen["service"].startswith("refused"), seen  # the engine's own HTTP client
    assert seen["read inside"] == "done", seen


@pytest.mark.skipif(landlock_abi() == 0, reason="the kernel offers no Landlock")
def test_a_confined_process_reads_only_its_paths_and_writes_nothing(
    tmp_path: Path, listener: Listener
) -> None:
    seen = run_confined(tmp_path, listener)
    assert seen["complete"] is True, seen
    assert seen["read outside"].startswith("refused"), seen
    assert seen["write inside"].startswith("refused"), seen


@pytest.mark.skipif(landlock_abi() < 4, reason="Landlock ABI 4 (TCP rules) needs Linux 6.7")
def test_allowed_endpoints_are_reached_only_through_their_ports(
    tmp_path: Path, listener: Listener
) -> None:
    other = Listener()
    try:
        seen = run_confined(tmp_path, other, ports=[listener.port])
        assert seen["connect"].startswith("refused"), seen  # another port
        assert other.connections == 0
    finally:
        other.close()


def test_the_query_workers_are_confined(tmp_path: Path) -> None:
    executor = ProcessExecutor(disk_store(tmp_path / "store"), timeout=10, workers=1)
    try:
        answer = executor.run(Job("ASK { ?s ?p ?o }", media_types={"ask": "application/json"}))
        assert answer.body
        (pid,) = executor.pids()
        status = Path(f"/proc/{pid}/status").read_text()
        assert "NoNewPrivs:\t1" in status
        assert "Seccomp:\t2" in status  # a filter is installed
    finally:
        executor.close()
