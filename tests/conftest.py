"""Shared fixtures: a project in a temporary folder, a small store, a CLI runner."""

from __future__ import annotations

import importlib.util
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from rdflib import BNode, Literal, URIRef
from rdflib.namespace import RDF, RDFS, XSD
from watchers import FifoWatch, Listener

from copkg.config import Settings
from copkg.store.embedded import OxigraphStore

ROOT = Path(__file__).resolve().parents[1]
EX = "http://example.org/"
G1 = EX + "graph/one"
G2 = EX + "graph/two"


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


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """A copy of the project with build/ made, SHACL left out: for tests of querying (one a
    test module; do not change it)."""
    from copkg.pipeline import build

    settings = Settings.load(copy_project(tmp_path_factory.mktemp("built")), environ={})
    build(settings, validate=False)
    return settings


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
