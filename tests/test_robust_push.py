"""`copkg push` when the remote store fails part-way: a clear error, never a partial push
reported as done, and a push run again (after a failure or a SIGKILL) gives exactly the build,
as does a third. The store is a live `oxigraph serve` on 127.0.0.1 behind a proxy (in this
process) that drops, stalls or slows requests after a number of them.
(A store that is down, or never answers, from the start: tests/test_remote_store.py.)"""

from __future__ import annotations

import http.server
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from copkg.cli import main
from copkg.config import Settings
from copkg.pipeline import Manifest
from copkg.store.remote import server_graph

pytestmark = pytest.mark.server

OXIGRAPH = shutil.which("oxigraph") or str(Path(sys.executable).parent / "oxigraph")
COUNTS = "SELECT ?g (COUNT(*) AS ?n) WHERE { GRAPH ?g { ?s ?p ?o } } GROUP BY ?g"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def oxigraph(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`oxigraph serve` on a free 127.0.0.1 port: its base URL."""
    if not Path(OXIGRAPH).is_file():
        pytest.skip("the oxigraph server (a test extra) is not installed")
    port = free_port()
    location = tmp_path_factory.mktemp("oxigraph")
    process = subprocess.Popen(
        [OXIGRAPH, "serve", "--location", str(location), "--bind", f"127.0.0.1:{port}"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                with urllib.request.urlopen(base + "/query?query=ASK%7B%7D", timeout=1):
                    break
            except OSError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise RuntimeError("oxigraph serve did not start") from None
                time.sleep(0.1)
        yield base
    finally:
        process.terminate()
        process.wait(timeout=10)


def held(base: str) -> dict[str, int]:
    """The triples of each named graph of data the store holds (not the push's record or
    temporary graphs)."""
    url = base + "/query?" + urllib.parse.urlencode({"query": COUNTS})
    request = urllib.request.Request(url, headers={"Accept": "application/sparql-results+json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        rows = json.load(response)["results"]["bindings"]
    return {
        row["g"]["value"]: int(row["n"]["value"])
        for row in rows
        if not server_graph(row["g"]["value"])
    }


def clear(base: str) -> None:
    request = urllib.request.Request(
        base + "/update", data=b"update=DROP%20ALL", method="POST",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )  # fmt: skip
    urllib.request.urlopen(request, timeout=30).close()


class Proxy:
    """An HTTP proxy to `target` that, after `after` graph PUTs, drops the connection
    ("drop"), never answers ("stall"), or forwards every request `delay` s late ("slow")."""

    def __init__(self, target: str, mode: str, after: int = 0, delay: float = 0.0) -> None:
        self.target, self.mode, self.after, self.delay = target, mode, after, delay
        self.puts = 0
        self.stop = threading.Event()
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def _forward(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0) or 0))
                if self.command == "PUT":
                    proxy.puts += 1
                    if proxy.puts > proxy.after and proxy.mode == "drop":
                        self.close_connection = True
                        return  # no answer at all: the connection is closed
                    if proxy.puts > proxy.after and proxy.mode == "stall":
                        proxy.stop.wait(60)
                        return
                if proxy.mode == "slow":
                    time.sleep(proxy.delay)
                headers = {k: v for k, v in self.headers.items()
                           if k.lower() in ("content-type", "accept", "authorization")}  # fmt: skip
                request = urllib.request.Request(
                    proxy.target + self.path, data=body if body else None,
                    method=self.command, headers=headers,
                )  # fmt: skip
                try:
                    with urllib.request.urlopen(request, timeout=60) as answer:
                        status, data, kind = answer.status, answer.read(), answer.headers
                except urllib.error.HTTPError as error:
                    status, data, kind = error.code, error.read(), error.headers
                self.send_response(status)
                if kind.get("Content-Type"):
                    self.send_header("Content-Type", kind["Content-Type"])
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_DELETE = _forward  # noqa: N815

            def log_message(self, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.stop.set()
        self.server.shutdown()
        self.server.server_close()


def push(settings: Settings, base: str, *extra: str) -> Result:
    return CliRunner().invoke(
        main,
        ["push", "--store", base + "/query", "--graph-store-url", base + "/store", *extra,
         "--root", str(settings.root)],
    )  # fmt: skip


def assert_holds_the_build(settings: Settings, base: str) -> None:
    expected = Manifest.read(settings.build_dir).graphs
    assert held(base) == expected


@pytest.mark.parametrize("mode", ["drop", "stall"])
def test_a_push_cut_short_is_an_error_and_pushing_again_gives_the_build(
    built: Settings, oxigraph: str, mode: str
) -> None:
    clear(oxigraph)
    graphs = Manifest.read(built.build_dir).graphs
    # an earlier, different push left a graph of the build with other triples in it
    stale = sorted(graphs)[-1]
    request = urllib.request.Request(
        oxigraph + "/store?" + urllib.parse.urlencode({"graph": stale}),
        data=b"<http://e/s> <http://e/p> <http://e/o> .\n", method="PUT",
        headers={"Content-Type": "application/n-triples"},
    )  # fmt: skip
    urllib.request.urlopen(request, timeout=30).close()
    proxy = Proxy(oxigraph, mode, after=2)
    try:
        start = time.monotonic()
        result = push(built, proxy.url, "--timeout", "1")
        assert time.monotonic() - start < 30
    finally:
        proxy.close()
    assert result.exit_code == 1, result.output
    done = re.search(r"stopped at graph \S+ \((\d+) of \d+ graphs pushed\)", result.output)
    assert done and int(done.group(1)) <= 2, result.output  # 2, unless a PUT was slow itself
    assert "run `copkg push` again" in result.output
    assert not any(line.startswith("pushed ") for line in result.output.splitlines())
    assert held(oxigraph) != graphs  # the store is incomplete, and was said to be
    # pushing again gives the build, and a third push gives the same
    for _ in range(2):
        again = push(built, oxigraph)
        assert again.exit_code == 0, again.output
        assert "the counts on the server match the build" in again.output
        assert_holds_the_build(built, oxigraph)


def test_a_push_killed_part_way_is_completed_by_pushing_again(
    built: Settings, oxigraph: str
) -> None:
    clear(oxigraph)
    proxy = Proxy(oxigraph, "slow", delay=0.4)
    env = {k: v for k, v in os.environ.items() if not k.startswith("COPKG_")}
    command = [sys.executable, "-m", "copkg.cli", "push", "--store", proxy.url + "/query",
               "--graph-store-url", proxy.url + "/store", "--root", str(built.root)]  # fmt: skip
    try:
        process = subprocess.Popen(
            command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        deadline = time.monotonic() + 60
        while proxy.puts < 2 and time.monotonic() < deadline and process.poll() is None:
            time.sleep(0.05)
        process.kill()
        output, _ = process.communicate(timeout=30)
    finally:
        proxy.close()
    assert process.returncode == -9, output
    assert "pushed " not in output
    assert held(oxigraph) != Manifest.read(built.build_dir).graphs
    again = push(built, oxigraph)
    assert again.exit_code == 0, again.output
    assert_holds_the_build(built, oxigraph)


def store_command(settings: Settings, base: str, *command: str) -> subprocess.CompletedProcess[str]:
    """A copkg command on the store at base (in a fresh process, at most 60 s)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("COPKG_")}
    return subprocess.run(
        [sys.executable, "-m", "copkg.cli", *command, "--store", base + "/query",
         "--root", str(settings.root)],
        env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip


def refused(settings: Settings, base: str) -> list[str]:
    """What `query --store` and `serve --store` say of the store at base (both must refuse)."""
    said = []
    for command in (["query", "-e", "ASK {}"], ["serve", "--port", str(free_port())]):
        done = store_command(settings, base, *command)
        assert done.returncode != 0, (command, done.stdout, done.stderr)
        said.append(done.stderr + done.stdout)
    return said


@pytest.mark.slow
def test_a_push_killed_part_way_is_refused_by_serve_and_query_until_pushed_again(
    built: Settings, oxigraph: str
) -> None:
    clear(oxigraph)
    assert push(built, oxigraph).exit_code == 0  # a complete push of the build first
    assert store_command(built, oxigraph, "query", "-e", "ASK {}").returncode == 0
    proxy = Proxy(oxigraph, "slow", delay=0.3)
    env = {k: v for k, v in os.environ.items() if not k.startswith("COPKG_")}
    command = [sys.executable, "-m", "copkg.cli", "push", "--store", proxy.url + "/query",
               "--update-url", proxy.url + "/update", "--graph-store-url", proxy.url + "/store",
               "--root", str(built.root)]  # fmt: skip
    try:
        process = subprocess.Popen(
            command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        deadline = time.monotonic() + 60
        while proxy.puts < 3 and time.monotonic() < deadline and process.poll() is None:
            time.sleep(0.05)
        process.kill()
        output, _ = process.communicate(timeout=30)
    finally:
        proxy.close()
    assert process.returncode == -9, output
    expected = Manifest.read(built.build_dir).graphs
    # each graph of data is whole: moved into place in one request, or not touched
    assert all(held(oxigraph)[graph] == count for graph, count in expected.items())
    for said in refused(built, oxigraph):
        assert "incomplete" in said and "did not finish" in said, said
        assert "run `copkg push` again" in said and "Traceback" not in said
    again = push(built, oxigraph, "--update-url", oxigraph + "/update")
    assert again.exit_code == 0, again.output
    assert_holds_the_build(built, oxigraph)
    ok = store_command(built, oxigraph, "query", "-e", "SELECT (COUNT(*) AS ?n) { ?s ?p ?o }")
    assert ok.returncode == 0, ok.stderr
    assert str(sum(expected.values())) in ok.stdout


def test_a_store_changed_since_its_push_is_refused_saying_which_graph(
    built: Settings, oxigraph: str
) -> None:
    clear(oxigraph)
    assert push(built, oxigraph).exit_code == 0
    graph = sorted(Manifest.read(built.build_dir).graphs)[0]
    request = urllib.request.Request(
        oxigraph + "/store?" + urllib.parse.urlencode({"graph": graph}),
        data=b"<http://e/s> <http://e/p> <http://e/o> .\n", method="POST",
        headers={"Content-Type": "application/n-triples"},
    )  # fmt: skip
    urllib.request.urlopen(request, timeout=30).close()
    for said in refused(built, oxigraph):
        assert "does not hold what the `copkg push`" in said and graph in said, said
