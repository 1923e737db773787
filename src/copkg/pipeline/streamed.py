"""The build's steps on its on-disk store, a graph at a time: what a build holds in memory grows
with one study bundle (and the working sets of the rules' and shapes' queries), not the corpus.

The sources are parsed into the store in one bulk load; each later step reads the store, or
parses a graph's files again when it needs the quads as written (the store keeps some literals
in another form: "07"^^xsd:positiveInteger as "7"^^xsd:integer). The corpus checks read one study
at a time, SHACL validates the union of the store's graphs where they are (before the rules
add their graph), and the exports are written graph by graph, the inferences a few subjects
at a time.
"""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyoxigraph as ox
from rdflib import Graph

from copkg.config import Settings
from copkg.errors import CopkgError, Problem
from copkg.namespaces import INFERENCE_GRAPH, ONTOLOGY_GRAPH
from copkg.pipeline import exports, segments
from copkg.pipeline.corpus_checks import corpus_problems
from copkg.pipeline.steps import (
    ValidationOutcome,
    source_files,
    verified_quads,
)
from copkg.rdf_io import parse_graph, read_quads
from copkg.store.embedded import OxigraphStore
from copkg.store.terms import quads_to_graph
from copkg.validation.report import validate_store
from copkg.validation.shacl import Batch, Originals

#: How many subjects of the inference graph the export sorts and writes at a time.
EXPORT_SUBJECTS = 20_000
#: How many studies SHACL validates at a time in memory (the shapes that allow it).
SHACL_BATCH = 250


@dataclass
class Loaded:
    """The sources as the build loaded them into its store: which files went into which named
    graph, the literals as written where the store changed them (when asked for), and the
    `copkg:quotesVerified` statements the checks added."""

    store: OxigraphStore
    graphs: dict[str, list[Path]]
    originals: Originals | None = None
    verified: list[ox.Quad] = field(default_factory=list)
    #: The study graphs' triples as loaded, SHACL_BATCH studies a file (for SHACL), if asked.
    spool: list[Path] = field(default_factory=list)

    def studies(self) -> list[str]:
        """The study graphs (every graph but the ontology's), in the order they were loaded."""
        return [g for g in self.graphs if g != str(ONTOLOGY_GRAPH)]

    def shacl_batches(self) -> list[Batch]:
        """The study graphs SHACL_BATCH at a time, with their spooled triples if any."""
        studies = [ox.NamedNode(g) for g in self.studies()]
        found = []
        for number, start in enumerate(range(0, len(studies), SHACL_BATCH)):
            graphs = studies[start : start + SHACL_BATCH]
            names = {g.value for g in graphs}
            extra = [q for q in self.verified if q.graph_name.value in names]  # type: ignore[union-attr]
            spooled = self.spool[number] if number < len(self.spool) else None
            found.append(Batch(graphs, spooled, extra) if spooled else Batch(graphs))
        return found

    def drop_spool(self) -> None:
        """Delete the spooled triples (and their folder, if that leaves it empty)."""
        for path in self.spool:
            path.unlink(missing_ok=True)
        if self.spool:
            with contextlib.suppress(OSError):
                self.spool[0].parent.rmdir()
        self.spool = []

    def read(self, graph: str) -> list[ox.Quad]:
        """A graph's quads as written (its files parsed again; they parsed at load)."""
        return [q for path in self.graphs[graph] for q in read_quads(path, graph)]

    def subject_graphs(self, iri: str) -> set[str]:
        """The graphs that hold statements about `iri`."""
        found = self.store.native.quads_for_pattern(ox.NamedNode(iri), None, None, None)
        return {q.graph_name.value for q in found if isinstance(q.graph_name, ox.NamedNode)}

    def graph(self) -> Graph:
        """Every source graph merged into one rdflib Graph, as written (for HermiT, which takes
        the whole corpus: a memory of the corpus's size)."""
        return quads_to_graph(
            itertools.chain(*(self.read(g) for g in self.graphs), iter(self.verified))
        )

    def add_verified(self, quads: list[ox.Quad]) -> None:
        """Add `copkg:quotesVerified` statements to the store and to what is exported."""
        self.verified += quads
        self.store.native.extend(quads)


def load(
    settings: Settings,
    store: OxigraphStore,
    *,
    originals: bool = False,
    spool: Path | None = None,
) -> Loaded:
    """Parse the ontology and every study bundle, each into its named graph of `store`, in one
    bulk load (a graph's quads at a time in memory); every syntax problem reported at once
    (400). With `originals`, the written form of each literal the store changes is kept (for
    SHACL). With `spool` (a folder), the study graphs' triples are also written there as
    N-Triples, SHACL_BATCH studies a file: SHACL reads its batches from them, not the store."""
    graphs = source_files(settings)
    loaded = Loaded(store, graphs)
    loaded.originals = Originals() if originals else None
    problems: list[Problem] = []
    rank = {g: i // SHACL_BATCH for i, g in enumerate(loaded.studies())}
    if spool is not None:
        spool.mkdir(parents=True, exist_ok=True)
        loaded.spool = [spool / f"batch-{n:05d}.nt" for n in range(len(set(rank.values())))]

    def quads() -> Iterator[ox.Quad]:
        out, current = None, -1
        try:
            for graph, files in graphs.items():
                if loaded.spool and graph in rank and rank[graph] != current:
                    if out is not None:
                        out.close()
                    current = rank[graph]
                    out = loaded.spool[current].open("wb")
                for path in files:
                    try:
                        found = read_quads(path, graph)
                    except CopkgError as exc:
                        problems.extend(exc.problems or [Problem(exc.message, file=str(path))])
                        continue
                    if loaded.originals is not None:
                        for quad in found:
                            if isinstance(quad.object, ox.Literal):
                                loaded.originals.add(quad.subject, quad.predicate, quad.object)
                    if out is not None and graph in rank:
                        triples = [ox.Triple(q.subject, q.predicate, q.object) for q in found]
                        ox.serialize(triples, out, format=ox.RdfFormat.N_TRIPLES)
                    yield from found
        finally:
            if out is not None:
                out.close()

    store.native.bulk_extend(quads())
    if problems:
        raise CopkgError("some sources are not valid RDF", status=400, problems=problems)
    return loaded


def check_studies(settings: Settings, loaded: Loaded) -> dict[str, str]:
    """Each study against the others, as `copkg add` checks a bundle against the corpus, and
    every quote against its study's source text (pipeline.corpus_checks, a study at a time):
    422 with file:line for every problem. A study whose quotes were all verified gets
    `copkg:quotesVerified true` in its graph (in the store and the exports); what was verified,
    study by study, is returned for the manifest."""
    problems, fidelity = corpus_problems(
        loaded.graphs, loaded.store.native, loaded.read, settings.source_text_dirs
    )
    if problems:
        count = len(problems)
        raise CopkgError(
            f"{count} statement{'s' if count != 1 else ''} of the studies cannot be built "
            "(build/ left as it was)",
            status=422,
            problems=problems,
        )
    loaded.add_verified(verified_quads(fidelity.verified))
    return fidelity.summary()


def validate(settings: Settings, loaded: Loaded) -> ValidationOutcome:
    """SHACL-validate the union of the store's graphs (the sources, as validate() validates
    their merge) against ontology/shapes.ttl: run it before the rules add the inferences,
    and after the corpus checks (each resource described by one study: the shapes that
    allow it then run SHACL_BATCH studies at a time in memory, with the same report)."""
    if not settings.shapes_file.is_file():
        raise CopkgError(
            f"no shapes to validate against: {settings.shapes_file} is missing", status=500
        )
    if loaded.originals is None:
        raise CopkgError("the sources were loaded without their literals as written", 500)
    shared = [ox.NamedNode(str(ONTOLOGY_GRAPH))]
    try:
        report = validate_store(
            loaded.store.native,
            loaded.originals,
            parse_graph(settings.shapes_file),
            loaded.shacl_batches(),
            [g for g in shared if g.value in loaded.graphs],
        )
    finally:
        loaded.drop_spool()
    return ValidationOutcome(bool(report.conforms), report.text(), report)


def export(loaded: Loaded, out_dir: Path) -> tuple[dict[str, str], dict[str, Any]]:
    """Write the export segments, and copkg.trig and copkg.nq joined, as steps.export() writes
    them (the sources as written, then the inferences) from the sources' files and the store,
    a graph at a time, and the inference graph a few subjects at a time; return the segments'
    SHA-256 and the manifest's `extra` for them (pipeline.segments)."""
    verified: dict[str, list[ox.Quad]] = {}
    for quad in loaded.verified:
        verified.setdefault(quad.graph_name.value, []).append(quad)  # type: ignore[union-attr]
    names = sorted(
        (ox.NamedNode(g) for g in loaded.graphs),
        key=lambda g: exports.graph_rank(str(g).encode("utf-8")),
    )

    def graphs() -> Iterator[Iterator[Sequence[ox.Quad]]]:
        for name in names:
            quads = loaded.read(name.value) + verified.get(name.value, [])
            yield iter([exports.canonical_graph(quads)] if quads else [])
        yield inference_chunks(loaded.store.native)

    return segments.write(graphs(), out_dir)


def inference_chunks(store: ox.Store) -> Iterator[Sequence[ox.Quad]]:
    """The inference graph in export order, EXPORT_SUBJECTS subjects at a time (the whole graph
    at once where it holds blank nodes: their labels depend on all of it)."""
    graph = ox.NamedNode(str(INFERENCE_GRAPH))
    subjects: set[ox.NamedNode | ox.BlankNode] = set()
    for quad in store.quads_for_pattern(None, None, None, graph):
        if isinstance(quad.subject, ox.BlankNode) or isinstance(quad.object, ox.BlankNode):
            whole = list(store.quads_for_pattern(None, None, None, graph))
            _refuse_shared_blank_nodes(store, whole)
            yield exports.canonical_graph(whole)
            return
        if not isinstance(quad.subject, ox.Triple):
            subjects.add(quad.subject)
    ordered = sorted(subjects, key=str)
    del subjects
    for start in range(0, len(ordered), EXPORT_SUBJECTS):
        chunk = ordered[start : start + EXPORT_SUBJECTS]
        yield exports.sorted_quads(
            q for s in chunk for q in store.quads_for_pattern(s, None, None, graph)
        )


def _refuse_shared_blank_nodes(store: ox.Store, quads: list[ox.Quad]) -> None:
    """A blank node of the inferences that a source graph holds too (exports.canonical_graphs
    refuses it: the exports label blank nodes per graph, which would make it two)."""
    inferences = ox.NamedNode(str(INFERENCE_GRAPH))
    nodes = {t for q in quads for t in (q.subject, q.object) if isinstance(t, ox.BlankNode)}
    for node in sorted(nodes, key=str):
        found = itertools.chain(
            store.quads_for_pattern(node, None, None, None),
            store.quads_for_pattern(None, None, node, None),
        )
        for quad in found:
            if quad.graph_name != inferences:
                raise exports.shared_blank_node(node, quad.graph_name, inferences)
