"""Shared fixtures: a project in a temporary folder, a small store, a CLI runner."""

from __future__ import annotations

import fcntl
import hashlib
import importlib.util
import json
import os
import pickle
import shutil
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import virtuoso_server
from click.testing import CliRunner
from rdflib import BNode, Graph, Literal, URIRef
from rdflib.compare import to_isomorphic
from rdflib.namespace import OWL, RDF, RDFS, XSD
from rdflib.plugins.sparql import evaluate, evalutils, processor
from rdflib.plugins.sparql.sparql import FrozenDict, Query
from virtuoso_server import Virtuoso as VirtuosoServer
from watchers import FifoWatch, Listener

from copkg.config import Settings
from copkg.store.embedded import OxigraphStore

if TYPE_CHECKING:
    from web_helpers import LiveServer

    from copkg.reasoning.owl import ConsistencyResult

ROOT = Path(__file__).resolve().parents[1]
EX = "http://example.org/"
G1 = EX + "graph/one"
G2 = EX + "graph/two"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The test modules that hold a `slow` test run first, in their order, the others after:
    with -n 2 (pytest-xdist, a module whole on one worker, in this order: pyproject.toml) the
    long modules start early, and the short ones even out the end."""
    slow = {item.path for item in items if item.get_closest_marker("slow") is not None}
    items.sort(key=lambda item: item.path not in slow)  # stable: each module's order is kept


def needs_validation() -> None:
    """Fail unless SHACL validation (copkg.validation.report and ontology/shapes.ttl) is there."""
    if importlib.util.find_spec("copkg.validation.report") is None:
        pytest.fail("copkg.validation.report is missing")
    if not (ROOT / "ontology" / "shapes.ttl").is_file():
        pytest.fail("ontology/shapes.ttl is missing")


def needs_study() -> None:
    """Fail unless the Josserand (2004) study bundle has data."""
    if not any((ROOT / "data" / "studies" / "josserand2004").glob("*.ttl")):
        pytest.fail("data/studies/josserand2004 has no data")


def copy_project(parent: Path) -> Path:
    """Copy the project's sources (ontology, rules, queries, the study bundles) under parent."""
    root = parent / "project"
    root.mkdir()
    for name in ("ontology", "rules", "queries", "data"):
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, root / name)
        else:
            (root / name).mkdir()
    (root / "data" / "studies").mkdir(parents=True, exist_ok=True)
    return root


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A copy of the project's sources in a temporary folder."""
    return copy_project(tmp_path)


@pytest.fixture
def settings(project: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """Settings for the temporary project (no COPKG_* variable of the caller leaks in)."""
    for name in list(os.environ):
        if name.startswith("COPKG_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("COPKG_ROOT", str(project))
    return Settings.load(project)


SMALL_TRIPLES = {
    G1: [
        (URIRef(EX + "alice"), RDF.type, URIRef(EX + "Person")),
        (URIRef(EX + "alice"), RDFS.label, Literal("Alice", lang="en")),
        (URIRef(EX + "alice"), URIRef(EX + "age"), Literal("42", datatype=XSD.integer)),
        (URIRef(EX + "alice"), URIRef(EX + "knows"), URIRef(EX + "bob")),
        (URIRef(EX + "alice"), URIRef(EX + "note"), Literal('says "hi" } { ; # and \\ bye')),
        (URIRef(EX + "alice"), URIRef(EX + "address"), BNode("addr")),
        (BNode("addr"), URIRef(EX + "city"), Literal("Lyon")),
    ],
    G2: [
        (URIRef(EX + "bob"), RDF.type, URIRef(EX + "Person")),
        (URIRef(EX + "bob"), RDFS.label, Literal("Bob", lang="en")),
        (URIRef(EX + "bob"), URIRef(EX + "age"), Literal("7", datatype=XSD.integer)),
    ],
}


@pytest.fixture
def small_store() -> OxigraphStore:
    """An in-memory store with two small named graphs (see SMALL_TRIPLES)."""
    store = OxigraphStore()
    for graph, triples in SMALL_TRIPLES.items():
        store.add_graph(graph, triples)
    return store


def built_once(run_folder: Path) -> Path:
    """A copy of the project with build/ made, SHACL left out, built once a test run in the
    run's folder under a lock (a worker that needs it while another builds it waits rather
    than building it again): copy it (copy_built, add_build), never change it. The copies keep
    the files' modification times, so a copy's build is as fresh as the build it copies."""
    from copkg.pipeline import build

    folder = run_folder / "built"
    folder.mkdir(exist_ok=True)
    with (folder / "lock").open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file is closed
        if not (folder / "done").exists():
            shutil.rmtree(folder / "project", ignore_errors=True)
            build(Settings.load(copy_project(folder), environ={}), validate=False)
            (folder / "done").touch()
    return folder / "project"


def copy_built(run_folder: Path, parent: Path) -> Settings:
    """A project of its own under parent, with its build: a copy of built_once's (~0.1 s, a
    build ~1 s)."""
    root = parent / "project"
    shutil.copytree(built_once(run_folder), root, symlinks=True)
    return Settings.load(root, environ={})


def add_build(run_folder: Path, settings: Settings) -> Settings:
    """build(settings, validate=False) for a copy of the project's sources (copy_project):
    built_once's build copied into it."""
    shutil.copytree(built_once(run_folder) / "build", settings.build_dir, symlinks=True)
    return settings


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory, run_folder: Path) -> Settings:
    """A copy of the project with build/ made, SHACL left out: for tests of querying (one a
    test module; do not change it)."""
    return copy_built(run_folder, tmp_path_factory.mktemp("built"))


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


@pytest.fixture(scope="module")
def listener() -> Iterator[Listener]:
    """A TCP listener on 127.0.0.1: its connection count proves no outbound call was made."""
    server = Listener()
    yield server
    server.close()


@pytest.fixture(scope="module")
def fifo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FifoWatch]:
    """A named pipe that records any attempt to read it: proves no file was read."""
    watch = FifoWatch(tmp_path_factory.mktemp("fifo") / "secret.ttl")
    yield watch
    watch.close()


@pytest.fixture(scope="session")
def virtuoso(tmp_path_factory: pytest.TempPathFactory) -> Iterator[VirtuosoServer]:
    """A Virtuoso server of this test session (Debian's virtuoso-opensource) on 127.0.0.1, with
    its own virtuoso.ini and database in a temporary folder; started once, stopped at the end.
    Skipped only where `virtuoso-t` is not installed, and never in CI (.ci/run installs it)."""
    if virtuoso_server.VIRTUOSO is None or virtuoso_server.ISQL is None:
        reason = "Virtuoso (virtuoso-t and isql-vt, Debian's virtuoso-opensource) is not installed"
        if os.environ.get("CI"):
            pytest.fail(reason + ": .ci/run installs it")
        pytest.skip(reason)
    server = virtuoso_server.start(tmp_path_factory.mktemp("virtuoso"))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def sample_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """`copkg serve` over the sample store with the default settings, one a test worker, for
    the modules that only send it requests (test_clients, test_client_matrix and
    test_robust_params each started one, ~3 s to start and 3 s to stop)."""
    from web_helpers import live_server

    with live_server(tmp_path_factory.mktemp("sample-live")) as running:
        yield running


@pytest.fixture(scope="session")
def slack(tmp_path_factory: pytest.TempPathFactory) -> float:
    """How late past a time limit an answer may come on this machine now: 2 s plus three times
    what starting a query worker and answering a cheap query takes here (a killed worker is
    replaced before the next answer), so timing tests hold on a busy machine and still fail
    when a limit is not enforced at all."""
    import time

    from web_helpers import disk_store

    from copkg.querying.executor import Job
    from copkg.querying.workers import ProcessExecutor

    path = disk_store(tmp_path_factory.mktemp("slack") / "store")
    start = time.monotonic()
    executor = ProcessExecutor(path, timeout=30, workers=1)
    try:
        executor.run(Job("ASK { ?s ?p ?o }", media_types={"ask": "application/json"}))
    finally:
        executor.close()
    return 2.0 + 3 * (time.monotonic() - start)


Reasoner = Callable[..., "ConsistencyResult"]


@pytest.fixture(scope="session")
def run_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder of this test run, shared by its pytest-xdist workers (each worker's own
    temporary folders lie in it); the run's temporary folder without xdist."""
    base = tmp_path_factory.getbasetemp()
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


def shared_hermit(run_folder: Path) -> Reasoner:
    """owl.check_consistency, run once a test run for the same triples: the tests that reason
    over the shipped ontology and studies (test_consistency's, the documented `copkg build`
    and `copkg reason`, test_add_study's built corpus) give HermiT the same triples, seconds
    of Java each time (20 s to classify them). The first call for a set of triples (compared
    as graphs, blank nodes and all; owl:imports left out, as check_consistency leaves them
    out) is HermiT's own run, kept in the run's folder under a lock, so that a test on another
    worker waits for it rather than running it again; a later call gets a copy of its result.
    A call that raises leaves nothing."""
    # here, not at the top: owlready2 is slow to import and few test modules need it
    from copkg.reasoning import owl

    # HermiT's own run, even where another shared_hermit is patched in already (nested, the
    # two would wait for each other's lock)
    real = getattr(owl.check_consistency, "__wrapped__", owl.check_consistency)
    folder = run_folder / "hermit"
    folder.mkdir(exist_ok=True)

    def shared(
        graphs: Iterable[Graph], *, java: str | None = None, classify: bool = True
    ) -> ConsistencyResult:
        graphs = list(graphs)
        java_exe = java or owl.find_java()
        merged = Graph()
        for graph in graphs:
            for triple in graph:
                if triple[1] != OWL.imports:
                    merged.add(triple)
        key = f"{java_exe}\n{classify}\n{to_isomorphic(merged).graph_digest()}"
        kept = folder / (hashlib.sha256(key.encode()).hexdigest() + ".pickle")
        with (folder / "lock").open("a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file is closed
            if not kept.exists():
                result = real(graphs, java=java_exe, classify=classify)
                kept.write_bytes(pickle.dumps(result))
            return pickle.loads(kept.read_bytes())  # written by this run, above

    shared.__wrapped__ = real  # type: ignore[attr-defined]
    return shared


@pytest.fixture
def hermit_once(run_folder: Path, monkeypatch: pytest.MonkeyPatch) -> Reasoner:
    """shared_hermit's owl.check_consistency, patched where the build and the CLI look the
    function up, for the test that asks for it; returned, for direct calls."""
    from copkg.pipeline import steps
    from copkg.reasoning import owl

    shared = shared_hermit(run_folder)
    monkeypatch.setattr(owl, "check_consistency", shared)
    monkeypatch.setattr(steps, "check_consistency", shared)
    return shared


def _minus_by_hash(a: Iterable[FrozenDict], b: Iterable[FrozenDict]) -> Iterator[FrozenDict]:
    """SPARQL MINUS as rdflib's evalutils._minus gives it (each solution of `a`, in order, that
    no solution of `b` sharing a variable with it is compatible with), by a hash join: rdflib
    compares every pair, 4.4 million pairs for one shape's target over the shipped studies.
    The solutions of `b` are grouped by their variables; a solution of `a` is dropped when its
    values of the variables it shares with a group are those of one of the group's solutions.
    rdflib's own loop where a solution of `b` falls back on initial bindings (its lookups do)."""
    b = list(b)
    if any(getattr(getattr(y, "ctx", None), "initBindings", None) for y in b):
        yield from evalutils._minus(a, b)
        return
    groups: dict[frozenset[object], list[FrozenDict]] = {}
    for y in b:
        groups.setdefault(frozenset(y), []).append(y)
    seen: dict[tuple[frozenset[object], tuple[object, ...]], set[tuple[object, ...]]] = {}
    for x in a:
        names = frozenset(x)
        for domain, solutions in groups.items():
            shared = tuple(sorted(domain & names, key=str))
            if not shared:
                continue  # disjoint domains: no solution of this group removes x
            if (domain, shared) not in seen:
                seen[domain, shared] = {tuple(y[v] for v in shared) for y in solutions}
            if tuple(x[v] for v in shared) in seen[domain, shared]:
                break
        else:
            yield x


@pytest.fixture(scope="module")
def rdflib_sparql_fast() -> Iterator[None]:
    """rdflib's SPARQL, as pyshacl (the reference SHACL engine) drives it, without two costs
    that are rdflib's and not the engine's, for the test module that asks for it: each query
    text is parsed and translated once (pyshacl sends the same few for every example, a third
    of its time on them) and evaluated as the prepared query rdflib makes of it, and MINUS is
    a hash join (_minus_by_hash: pyshacl spent minutes on the shipped studies in one MINUS of
    a shape's target). The answers are rdflib's own: the tests comparing the two engines
    compare the same results."""
    original = processor.SPARQLProcessor.query
    parsed: dict[tuple[object, ...], Query] = {}

    def query(
        self: processor.SPARQLProcessor,
        text: str | Query,
        initBindings: Any = None,  # noqa: N803 - rdflib's names
        initNs: Any = None,  # noqa: N803
        base: str | None = None,
        DEBUG: bool = False,  # noqa: N803
    ) -> Any:
        if isinstance(text, str):
            key = (text, base, tuple(sorted((initNs or {}).items())))
            if key not in parsed:
                parsed[key] = processor.translateQuery(processor.parseQuery(text), base, initNs)
            text = parsed[key]
        return original(self, text, initBindings, initNs, base, DEBUG)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(processor.SPARQLProcessor, "query", query)
        patch.setattr(evaluate, "_minus", _minus_by_hash)
        yield


def joined_export(build_dir: Path, name: str) -> bytes:
    """copkg.nq or copkg.trig of a build as `copkg export dataset` joins it from the segments
    (an add leaves the joined files out)."""
    from copkg.pipeline import segments  # start-up cost: only the tests that join exports

    data = json.loads((build_dir / "manifest.json").read_text(encoding="utf-8"))
    layout = segments.Layout.from_json(data["extra"]["segments"])
    return b"".join((build_dir / rel).read_bytes() for rel in layout.parts(name))
