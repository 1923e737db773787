"""Helpers for the web tests: a small sample dataset, stores holding it, and a live server
(`copkg serve`, i.e. gunicorn) started in a subprocess on a free 127.0.0.1 port."""

from __future__ import annotations

import gc
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

import pyoxigraph as ox
import requests
from flask import Flask

from copkg.namespaces import COPKG, ID, ONTOLOGY_GRAPH, study_graph
from copkg.store.embedded import OxigraphStore
from copkg.web.app import create_app

REPO = Path(__file__).resolve().parents[1]

SAMPLE_STUDY = "sample"
SAMPLE_GRAPH = study_graph(SAMPLE_STUDY)
SAMPLE_FINDINGS = 30
RDFS_LABEL = "http://www.w3.org/2000/01/rdf-schema#label"
RDF_TYPE = "http://www.w3.org/1999/02/22-rdf-syntax-ns#type"
XSD_INTEGER = "http://www.w3.org/2001/XMLSchema#integer"


def sample_quads() -> list[ox.Quad]:
    """A small dataset: a few ontology triples and SAMPLE_FINDINGS findings of one study.

    Big enough for a cartesian product of a few triple patterns to run for minutes.
    """
    onto = ox.NamedNode(str(ONTOLOGY_GRAPH))
    study = ox.NamedNode(SAMPLE_GRAPH)
    finding_class = ox.NamedNode(str(COPKG.Finding))
    label, rdf_type = ox.NamedNode(RDFS_LABEL), ox.NamedNode(RDF_TYPE)
    quads = [
        ox.Quad(finding_class, rdf_type, ox.NamedNode("http://www.w3.org/2002/07/owl#Class"), onto),
        ox.Quad(finding_class, label, ox.Literal("Finding", language="en"), onto),
    ]
    for i in range(SAMPLE_FINDINGS):
        finding = ox.NamedNode(f"{ID}{SAMPLE_STUDY}/finding-{i}")
        quads += [
            ox.Quad(finding, rdf_type, finding_class, study),
            ox.Quad(finding, label, ox.Literal(f"Finding {i}", language="en"), study),
            ox.Quad(
                finding,
                ox.NamedNode(str(COPKG.page)),
                ox.Literal(str(100 + i), datatype=ox.NamedNode(XSD_INTEGER)),
                study,
            ),
        ]
    return quads


def memory_store() -> OxigraphStore:
    """A writable in-memory store holding the sample dataset."""
    store = OxigraphStore()
    store.native.extend(sample_quads())
    return store


def disk_store(path: Path) -> Path:
    """Write the sample dataset to an on-disk store at `path`, closed so others can open it."""
    store = ox.Store(str(path))
    store.extend(sample_quads())
    store.flush()
    del store
    gc.collect()
    return path


@contextmanager
def sample_app(executor: str, folder: Path) -> Iterator[Flask]:
    """The sample dataset served by an app whose queries run in "threads" (a store in memory)
    or in worker "processes" (an on-disk store under `folder`, opened read-only)."""
    if executor == "threads":
        store = memory_store()
    else:
        store = OxigraphStore.open_read_only(disk_store(folder / "store"))
    application = create_app({"STORE": store, "TESTING": True, "QUERY_WORKERS": 1})
    try:
        yield application
    finally:
        application.extensions["copkg"].close()


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class LiveServer:
    """`copkg serve` (gunicorn) in a subprocess on 127.0.0.1; stop() ends it by its pid."""

    def __init__(
        self,
        *,
        root: Path,
        env: Mapping[str, str] | None = None,
        workers: int = 1,
        argv: Sequence[str] | None = None,
        startup_timeout: float = 60.0,
    ) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.root = root
        self.argv = list(argv) if argv is not None else [
            sys.executable, "-m", "copkg.cli", "serve", "--root", str(root),
            "--host", "127.0.0.1", "--port", str(self.port), "--workers", str(workers),
        ]  # fmt: skip
        # no warm-up (the named queries run once at start: CPU the tests do not need); the
        # warm-up itself is tested in test_cache and test_direct
        self.env = {**os.environ, "COPKG_WARM_UP": "false", **(env or {})}
        self.startup_timeout = startup_timeout
        self.process: subprocess.Popen[bytes] | None = None
        # kept open while the server runs, closed by __exit__
        self._log = tempfile.TemporaryFile(prefix="copkg-serve-", suffix=".log")  # noqa: SIM115
        self._final_log: str | None = None

    @property
    def endpoint(self) -> str:
        return f"{self.url}/sparql"

    def log(self) -> str:
        """What the server printed so far."""
        if self._final_log is not None:
            return self._final_log
        self._log.seek(0)
        return self._log.read().decode(errors="replace")

    def start(self) -> LiveServer:
        self.process = subprocess.Popen(
            self.argv, env=self.env, stdout=self._log, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"copkg serve exited with {self.process.returncode}:\n"
                                   f"{self.log()}")  # fmt: skip
            try:
                response = requests.get(self.endpoint, headers={"Accept": "text/turtle"},
                                        timeout=5)  # fmt: skip
                if response.status_code == 200:
                    return self
            except (requests.ConnectionError, requests.Timeout):  # the port is bound first
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"copkg serve did not answer within {self.startup_timeout}s:\n"
                           f"{self.log()}")  # fmt: skip

    def stop(self) -> None:
        """SIGTERM the gunicorn master (it stops its workers, they their query workers)."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)

    def __enter__(self) -> LiveServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
        self._final_log = self.log()
        self._log.close()


@contextmanager
def live_server(
    tmp: Path, *, env: Mapping[str, str] | None = None, workers: int = 1
) -> Iterator[LiveServer]:
    """A live server over an on-disk store of the sample dataset under `tmp`."""
    store_dir = disk_store(tmp / "store")
    with LiveServer(
        root=REPO, env={"COPKG_STORE_URL": str(store_dir), **(env or {})}, workers=workers
    ) as server:
        yield server
