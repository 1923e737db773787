"""The build steps, one function each: load sources, infer, validate, export."""

from __future__ import annotations

import hashlib
import itertools
import os
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import pyoxigraph as ox
from rdflib import Graph, URIRef
from rdflib.namespace import XSD

from copkg.config import Settings
from copkg.errors import CopkgError, Problem
from copkg.namespaces import COPKG, INFERENCE_GRAPH, ONTOLOGY_GRAPH, PREFIXES, study_graph
from copkg.pipeline import exports
from copkg.pipeline.study_view import FileOnDisk, locate, show, study_of
from copkg.querying.named_queries import load_named_queries
from copkg.rdf_io import parse_graph, read_quads
from copkg.reasoning.owl import JavaMissingError, check_consistency
from copkg.reasoning.rules import materialise_native
from copkg.store.embedded import OxigraphStore
from copkg.store.terms import graph_of, quads_to_graph, triples_to_quads
from copkg.validation.fidelity import SOURCE_FOLDER
from copkg.validation.report import validate_quads

DATA_SUFFIXES = (".ttl",)

#: Files changed this recently (ns) are not trusted by their size and time: see source_hashes.
RACY_NS = 2_000_000_000

#: A study folder holding this file is a draft (`copkg new-study`): builds skip it until
#: `copkg add` checks it and removes the marker.
DRAFT_MARKER = "DRAFT"


@dataclass
class Sources:
    """Which file went into which named graph, each file's SHA-256, and the quads as written.

    The store normalises some literals ("07"^^xsd:positiveInteger becomes "7"^^xsd:integer);
    validation and the exports use these quads instead, so they see the sources as they are.
    """

    graphs: dict[str, list[Path]] = field(default_factory=dict)
    hashes: dict[str, str] = field(default_factory=dict)
    quads: list[ox.Quad] = field(default_factory=list)

    def subject_graphs(self, iri: str) -> set[str]:
        """The graphs that hold statements about `iri`."""
        node = ox.NamedNode(iri)
        return {q.graph_name.value for q in self.quads if q.subject == node}  # type: ignore[union-attr]

    def graph(self, *names: str, exclude: tuple[str, ...] = ()) -> Graph:
        """Some named graphs (all if none named, less `exclude`) as one rdflib Graph."""
        wanted = set(names)
        return quads_to_graph(
            q
            for q in self.quads
            if (not wanted or graph_of(q) in wanted) and graph_of(q) not in exclude
        )


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def source_files(settings: Settings) -> dict[str, list[Path]]:
    """The named graphs of the build and the source files of each (draft studies left out)."""
    missing = [p for p in settings.ontology_files() if not p.is_file()]
    if missing:
        raise CopkgError(
            "the ontology sources are missing",
            status=500,
            problems=[Problem("missing file", file=str(p)) for p in missing],
        )
    graphs = {str(ONTOLOGY_GRAPH): settings.ontology_files()}
    for folder in settings.study_dirs():
        if (folder / DRAFT_MARKER).exists():
            continue
        files = sorted(p for p in folder.iterdir() if p.suffix in DATA_SUFFIXES)
        if files:
            graphs[study_graph(folder.name)] = files
    return graphs


def source_hashes(
    settings: Settings,
    sources: dict[str, list[Path]] | None = None,
    *,
    known: tuple[dict[str, str], dict[str, list[int]]] | None = None,
    stats: dict[str, list[int]] | None = None,
) -> dict[str, str]:
    """SHA-256 of every file a build reads: sources (`sources` if source_files() gave them
    already), rules, shapes and queries.

    `known` is what a build recorded (its hashes, and each file's size and modification time
    when it was hashed): a file whose size and time are still those is not read again. `stats`,
    if given, receives each file's size and time, taken before the file is read, but for a
    file changed in the last RACY_NS: the clock that stamps files is coarse, and a change
    within one tick of the one recorded would keep its time (it is read each time instead)."""
    files = [f for fs in (sources or source_files(settings)).values() for f in fs]
    files += [
        text
        for folder in settings.study_dirs()
        if not (folder / DRAFT_MARKER).exists()
        for text in sorted((folder / SOURCE_FOLDER).glob("*.txt"))
    ]
    files += sorted(settings.rules_dir.glob("*.rq")) if settings.rules_dir.is_dir() else []
    files += sorted(settings.queries_dir.glob("*.rq")) if settings.queries_dir.is_dir() else []
    if settings.shapes_file.is_file():
        files.append(settings.shapes_file)
    hashes, recorded = known or ({}, {})
    found = {}
    for file in files:
        name = file.relative_to(settings.root).as_posix()
        info = os.stat(file)
        stat = [info.st_size, info.st_mtime_ns]
        if stats is not None and time.time_ns() - info.st_mtime_ns > RACY_NS:
            stats[name] = stat
        same = name in hashes and recorded.get(name) == stat
        found[name] = hashes[name] if same else sha256(file)
    return found


def _read_all(files_by_graph: dict[str, list[Path]], what: str) -> list[ox.Quad]:
    """Parse every file into its graph; all syntax problems reported at once (400)."""
    quads: list[ox.Quad] = []
    problems: list[Problem] = []
    for graph, files in files_by_graph.items():
        for path in files:
            try:
                quads.extend(read_quads(path, graph))
            except CopkgError as exc:
                problems.extend(exc.problems or [Problem(exc.message, file=str(path))])
    if problems:
        raise CopkgError(f"some {what} are not valid RDF", status=400, problems=problems)
    return quads


def load_sources(settings: Settings, store: OxigraphStore) -> Sources:
    """Load the ontology and every study bundle, each into its named graph."""
    graphs = source_files(settings)
    quads = _read_all(graphs, "sources")
    store.native.extend(quads)
    return Sources(graphs=graphs, hashes=source_hashes(settings), quads=quads)


def load_files(settings: Settings, store: OxigraphStore, files: list[Path], graph: str) -> Sources:
    """Load the ontology and some given files (in one graph): what `copkg validate FILE` checks."""
    graphs = {str(ONTOLOGY_GRAPH): settings.ontology_files(), graph: list(files)}
    quads = _read_all(graphs, "files")
    store.native.extend(quads)
    return Sources(graphs=graphs, quads=quads)


def infer(settings: Settings, store: OxigraphStore) -> int:
    """Materialise the rules into the store's inference graph (where the derivations stay:
    read them from there); return how many triples it holds."""
    count: int = materialise_native(store, settings.rules_dir)
    return count


@dataclass
class ValidationOutcome:
    """A SHACL report and whether the data conforms."""

    conforms: bool
    text: str
    report: Any = None


def validate(settings: Settings, sources: Sources, engine: str = "sparql") -> ValidationOutcome:
    """SHACL-validate the data as written (every source graph but the ontology's) against
    ontology/shapes.ttl, with the ontology alongside, with `engine` ("sparql" or "pyshacl").

    The inferences are not validated as data: the shapes refuse derived statements in data.
    The sources' quads go to the engine as written, merged: no rdflib graph of the corpus.
    """
    if not settings.shapes_file.is_file():
        raise CopkgError(
            f"no shapes to validate against: {settings.shapes_file} is missing", status=500
        )
    shapes = parse_graph(settings.shapes_file)
    report = validate_quads(sources.quads, shapes, engine=engine)
    return ValidationOutcome(bool(report.conforms), report.text(), report)


def verified_quads(studies: Iterable[URIRef]) -> list[ox.Quad]:
    """`STUDY copkg:quotesVerified true`, in the graph of each study."""
    return [
        ox.Quad(
            ox.NamedNode(str(study)),
            ox.NamedNode(str(COPKG.quotesVerified)),
            ox.Literal("true", datatype=ox.NamedNode(str(XSD.boolean))),
            ox.NamedNode(study_graph(study_of(study) or "")),
        )
        for study in sorted(studies)
        if study_of(study) is not None
    ]


class Located(Protocol):
    """Sources that say which files went into which graph, and which graphs describe an IRI."""

    graphs: dict[str, list[Path]]

    def subject_graphs(self, iri: str) -> set[str]: ...


def shacl_problems(outcome: ValidationOutcome, sources: Located) -> list[Problem]:
    """The violations of a SHACL outcome, each at the file and line that describes its focus."""
    problems = []
    for result in outcome.report.violations if outcome.report is not None else []:
        iri = _expand(result.focus)
        where: tuple[str | None, int | None] = (None, None)
        focus = result.focus
        for graph in sorted(g for g in sources.subject_graphs(iri) if g in sources.graphs):
            files = [FileOnDisk(p) for p in sources.graphs[graph]]
            where = locate(files, URIRef(iri), subject=True)
            if where[0] is not None:
                focus = show(files, URIRef(iri))
                break
        path = f" {result.path}" if result.path else ""
        value = f" (value {result.value})" if result.value else ""
        problems.append(
            Problem(
                f"{result.severity} {result.shape}: {focus}{path}{value}: {result.message}",
                file=where[0],
                line=where[1],
                focus=result.focus,
                path=result.path,
                shape=result.shape,
            )
        )
    return problems


def _expand(name: str) -> str:
    """A prefixed name (as SHACL reports give a focus) back to its IRI."""
    if name.startswith("<") and name.endswith(">"):
        return name[1:-1]
    prefix, colon, local = name.partition(":")
    return PREFIXES[prefix] + local if colon and prefix in PREFIXES else name


class Merged(Protocol):
    """Sources that give every graph merged into one rdflib Graph."""

    def graph(self) -> Graph: ...


def owl_problems(sources: Merged) -> tuple[str, list[Problem]]:
    """HermiT over the ontology and every study, as `copkg add` runs it over a bundle and what
    it links to; the step's outcome, and a problem if inconsistent. Without Java: not run."""
    try:
        result = check_consistency([sources.graph()], classify=False)
    except JavaMissingError as exc:
        return f"not run ({exc.message})", []
    if result.consistent:
        return "consistent", []
    return "inconsistent", [
        Problem(f"OWL (HermiT): the studies make the ontology {result.message}")
    ]


def check_queries(settings: Settings) -> int:
    """Parse every named query header (fails on the first bad file); return how many."""
    if not settings.queries_dir.is_dir():
        return 0
    return len(load_named_queries(settings.queries_dir))


def export(sources: Sources, inferred: Graph | Iterable[ox.Quad], out_dir: Path) -> dict[str, str]:
    """Write copkg.trig and copkg.nq (the sources as written and the inferences, graph by
    graph, each graph sorted: see pipeline.exports) into out_dir; return their SHA-256."""
    if isinstance(inferred, Graph):
        inferred = triples_to_quads(inferred, str(INFERENCE_GRAPH))
    graphs = exports.canonical_graphs(itertools.chain(sources.quads, inferred))
    return exports.write(graphs, out_dir)


_GRAPH_COUNTS = "SELECT ?g (COUNT(*) AS ?n) WHERE { GRAPH ?g { ?s ?p ?o } } GROUP BY ?g"


def graph_counts(store: OxigraphStore) -> dict[str, int]:
    """How many triples each named graph holds."""
    solutions = store.native.query(_GRAPH_COUNTS)
    assert isinstance(solutions, ox.QuerySolutions)  # a SELECT
    counts = {
        row["g"].value: int(row["n"].value)
        for row in solutions
        if isinstance(row["g"], ox.NamedNode)
    }
    return {graph: counts.get(graph, 0) for graph in store.graphs()}
