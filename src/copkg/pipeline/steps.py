"""The build steps, one function each: load sources, infer, validate, export."""

from __future__ import annotations

import hashlib
import importlib
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import pyoxigraph as ox
from rdflib import Graph

from copkg.config import Settings
from copkg.errors import CopkgError, Problem
from copkg.namespaces import INFERENCE_GRAPH, ONTOLOGY_GRAPH, PREFIXES, study_graph
from copkg.rdf_io import atomic_write, load_into, parse_graph
from copkg.store.embedded import OxigraphStore

DATA_SUFFIXES = (".ttl",)


@dataclass
class Sources:
    """Which file went into which named graph, and each file's SHA-256."""

    graphs: dict[str, list[Path]] = field(default_factory=dict)
    hashes: dict[str, str] = field(default_factory=dict)


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def source_files(settings: Settings) -> dict[str, list[Path]]:
    """The named graphs of the build and the source files of each."""
    missing = [p for p in settings.ontology_files() if not p.is_file()]
    if missing:
        raise CopkgError(
            "the ontology sources are missing",
            status=500,
            problems=[Problem("missing file", file=str(p)) for p in missing],
        )
    graphs = {str(ONTOLOGY_GRAPH): settings.ontology_files()}
    for folder in settings.study_dirs():
        files = sorted(p for p in folder.iterdir() if p.suffix in DATA_SUFFIXES)
        if files:
            graphs[study_graph(folder.name)] = files
    return graphs


def source_hashes(settings: Settings) -> dict[str, str]:
    """SHA-256 of every file a build reads: sources, rules, shapes and queries."""
    files = [f for fs in source_files(settings).values() for f in fs]
    files += sorted(settings.rules_dir.glob("*.rq")) if settings.rules_dir.is_dir() else []
    files += sorted(settings.queries_dir.glob("*.rq")) if settings.queries_dir.is_dir() else []
    if settings.shapes_file.is_file():
        files.append(settings.shapes_file)
    return {f.relative_to(settings.root).as_posix(): sha256(f) for f in files}


def load_sources(settings: Settings, store: OxigraphStore) -> Sources:
    """Load the ontology and every study bundle, each into its named graph."""
    graphs = source_files(settings)
    problems: list[Problem] = []
    for graph, files in graphs.items():
        for path in files:
            try:
                load_into(store.native, path, graph)
            except CopkgError as exc:
                problems.extend(exc.problems or [Problem(exc.message, file=str(path))])
    if problems:
        raise CopkgError("some sources are not valid RDF", status=400, problems=problems)
    return Sources(graphs=graphs, hashes=source_hashes(settings))


def load_files(settings: Settings, store: OxigraphStore, files: list[Path], graph: str) -> None:
    """Load the ontology and some given files (in one graph): what `copkg validate FILE` checks."""
    for path in settings.ontology_files():
        load_into(store.native, path, str(ONTOLOGY_GRAPH))
    problems: list[Problem] = []
    for path in files:
        try:
            load_into(store.native, path, graph)
        except CopkgError as exc:
            problems.extend(exc.problems or [Problem(exc.message, file=str(path))])
    if problems:
        raise CopkgError("some files are not valid RDF", status=400, problems=problems)


def _module(name: str, needed_for: str) -> ModuleType:
    """Import a module another part of copkg provides, failing clearly if it is not there."""
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name != name:
            raise
        raise CopkgError(
            f"{needed_for} needs {name}, which is not installed yet", status=500
        ) from exc


def infer(settings: Settings, store: OxigraphStore) -> int:
    """Materialise the rules into the inference graph; return how many triples it holds."""
    reasoning = _module("copkg.reasoning", "inference")
    inferred: Graph = reasoning.materialise(store, settings.rules_dir)
    store.replace_graph(str(INFERENCE_GRAPH), inferred)
    return len(inferred)


@dataclass
class ValidationOutcome:
    """A SHACL report and whether the data conforms."""

    conforms: bool
    text: str
    report: Any = None


def validate(settings: Settings, store: OxigraphStore) -> ValidationOutcome:
    """SHACL-validate every graph but the ontology's against ontology/shapes.ttl."""
    validation = _module("copkg.validation", "validation")
    if not settings.shapes_file.is_file():
        raise CopkgError(
            f"no shapes to validate against: {settings.shapes_file} is missing", status=500
        )
    shapes = parse_graph(settings.shapes_file)
    ontology = store.graph(str(ONTOLOGY_GRAPH))
    data = store.graph(*(g for g in store.graphs() if g != str(ONTOLOGY_GRAPH)))
    report = validation.validate(data, shapes, ontology)
    return ValidationOutcome(bool(report.conforms), report.text(), report)


def check_queries(settings: Settings) -> int:
    """Parse every named query header (fails on the first bad file); return how many."""
    from copkg.named_queries import load_named_queries

    if not settings.queries_dir.is_dir():
        return 0
    return len(load_named_queries(settings.queries_dir))


def _sorted_canonical_quads(store: OxigraphStore) -> list[ox.Quad]:
    """Every quad with canonical blank node labels, sorted: the same sources give the same
    order."""
    dataset = ox.Dataset(store.native)
    dataset.canonicalize(ox.CanonicalizationAlgorithm.RDFC_1_0)
    return sorted(
        dataset, key=lambda q: (str(q.graph_name), str(q.subject), str(q.predicate), str(q.object))
    )


def export(store: OxigraphStore, out_dir: Path) -> dict[str, str]:
    """Write copkg.trig and copkg.nq (sorted) into out_dir; return their SHA-256."""
    quads = _sorted_canonical_quads(store)
    files = {
        "copkg.nq": ox.serialize(quads, format=ox.RdfFormat.N_QUADS),
        "copkg.trig": ox.serialize(quads, format=ox.RdfFormat.TRIG, prefixes=PREFIXES),
    }
    hashes = {}
    for name, data in files.items():
        atomic_write(out_dir / name, data)
        hashes[name] = hashlib.sha256(data).hexdigest()
    return hashes


def graph_counts(store: OxigraphStore) -> dict[str, int]:
    """How many triples each named graph holds."""
    return {graph: store.quad_count(graph) for graph in store.graphs()}
