"""Reading a study bundle (its Turtle files and notes) and the corpus it joins."""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyoxigraph as ox
from rdflib import Graph, URIRef
from rdflib.namespace import DCTERMS, RDF

from copkg.config import Settings
from copkg.errors import CopkgError, Problem
from copkg.namespaces import COPKG, ONTOLOGY_GRAPH, study_base, study_graph
from copkg.pipeline import steps, study_view
from copkg.pipeline.build import STORE_DIR
from copkg.pipeline.build_cache import PaperIndex
from copkg.pipeline.corpus_checks import KnownPapers, study_records
from copkg.pipeline.steps import DRAFT_MARKER
from copkg.pipeline.study_view import STUDY_GRAPHS, study_of
from copkg.rdf_io import FORMATS, read_quads
from copkg.store.embedded import OxigraphStore
from copkg.store.terms import quads_to_graph
from copkg.studies.scaffold import check_study_id, studies_dir
from copkg.validation.fidelity import SOURCE_FOLDER

BUNDLE_SUFFIX = ".ttl"

#: Files of a bundle folder copied along with the Turtle, though the build does not read them.
NOTE_SUFFIXES = (".md", ".txt")


_PARSED_GRAPH = "urn:copkg:add:bundle"


@dataclass
class BundleFile:
    """One file of a bundle: where it was read from and its bytes."""

    name: str
    path: Path
    data: bytes

    @property
    def text(self) -> str:
        return self.data.decode("utf-8", "replace")


@dataclass
class Bundle:
    """A study bundle as read: its ID, files, quads (in the study's graph) and rdflib graph."""

    study_id: str
    source: Path
    files: list[BundleFile]
    quads: list[ox.Quad]
    graph: Graph
    in_place: bool = False
    notes: list[BundleFile] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)
    texts: list[BundleFile] = field(default_factory=list)

    @property
    def namespace(self) -> str:
        return str(study_base(self.study_id))

    @property
    def graph_name(self) -> str:
        return study_graph(self.study_id)

    def subjects(self) -> set[Any]:
        return set(self.graph.subjects())

    def iris(self) -> list[URIRef]:
        return study_view.used_iris(self.graph)

    def hashes(self, settings: Settings) -> dict[str, str]:
        """SHA-256 of each Turtle file by its path in the corpus (as the build's manifest)."""
        folder = studies_dir(settings) / self.study_id
        named = [(f.name, f) for f in self.files]
        named += [(f"{SOURCE_FOLDER}/{f.name}", f) for f in self.texts]
        return {
            (folder / name).relative_to(settings.root).as_posix(): hashlib.sha256(
                f.data
            ).hexdigest()
            for name, f in named
        }

    def show(self, node: Any) -> str:
        """An IRI as the bundle writes it: with a prefix its files declare, else prefixed()."""
        return study_view.show(self.files, node)

    def locate(self, node: Any, *, subject: bool = False) -> tuple[str | None, int | None]:
        """The file and line where an IRI is first written (prefixed or in full); with
        `subject`, first where a line starts with it (a description), if anywhere."""
        return study_view.locate(self.files, node, subject=subject)


def read_bundle(
    settings: Settings, path: str | os.PathLike[str], study_id: str | None = None
) -> Bundle:
    """Read a bundle folder (its *.ttl files) or one .ttl file; syntax errors raise 400 with
    file:line, all of them at once.

    The study ID is `study_id` if given; for a folder in data/studies/, its name; otherwise
    the namespace of the bundle's copkg:Study record.
    """
    path = Path(path)
    if study_id is not None:
        check_study_id(study_id)
    if not path.exists():
        raise CopkgError(f"no such bundle: {path} (give a folder of .ttl files or a .ttl file)")
    in_place = path.is_dir() and path.resolve().parent == studies_dir(settings).resolve()
    notes: list[BundleFile] = []
    ignored: list[str] = []
    texts: list[BundleFile] = []
    if path.is_dir():
        turtle, notes, ignored, texts = _folder_files(path)
    elif path.suffix == BUNDLE_SUFFIX:
        turtle = [path]
    else:
        raise CopkgError(f"{path}: a bundle is a folder of .ttl files or one .ttl file")
    if not turtle:
        raise CopkgError(f"{path}: no .ttl file in this folder")
    _refuse_large_files(settings, path, turtle)
    files = [BundleFile(p.name, p, p.read_bytes()) for p in turtle]
    quads = _read_turtle(settings, path, files)
    with _quiet_literals():
        graph = quads_to_graph(quads)
    chosen = _choose_id(path, graph, study_id, in_place)
    name = ox.NamedNode(study_graph(chosen))
    quads = [ox.Quad(q.subject, q.predicate, q.object, name) for q in quads]
    return Bundle(chosen, path, files, quads, graph, in_place, notes, ignored, texts)


def _folder_files(
    path: Path,
) -> tuple[list[Path], list[BundleFile], list[str], list[BundleFile]]:
    """A bundle folder's Turtle files, notes, names ignored and source texts (links and RDF
    in other syntaxes refused)."""
    notes: list[BundleFile] = []
    ignored: list[str] = []
    texts: list[BundleFile] = []
    entries = sorted(p for p in path.iterdir() if not p.name.startswith("."))
    _refuse_links(path, entries)
    turtle = [p for p in entries if p.is_file() and p.suffix == BUNDLE_SUFFIX]
    other_rdf = [
        p for p in entries if p.is_file() and p.suffix.lower() in FORMATS and p not in turtle
    ]
    if other_rdf:
        raise CopkgError(
            f"{path}: a bundle is made of Turtle files only",
            status=400,
            problems=[
                Problem(
                    "only .ttl files are read by the build: write this file as Turtle",
                    file=str(p),
                )
                for p in other_rdf
            ],
        )
    for p in entries:
        if p in turtle or p.name == DRAFT_MARKER:
            continue
        if p.is_dir() and p.name == SOURCE_FOLDER:
            texts = [BundleFile(t.name, t, t.read_bytes()) for t in sorted(p.glob("*.txt"))]
            continue
        if p.is_file() and p.suffix.lower() in NOTE_SUFFIXES:
            notes.append(BundleFile(p.name, p, p.read_bytes()))
        else:
            ignored.append(p.name)
    return turtle, notes, ignored, texts


def _read_turtle(settings: Settings, path: Path, files: list[BundleFile]) -> list[ox.Quad]:
    """The quads of a bundle's Turtle files: every syntax error at once (400), literals over
    the limit (413), or more triples than a bundle may hold (413)."""
    quads: list[ox.Quad] = []
    problems: list[Problem] = []
    too_long: list[Problem] = []
    for file in files:
        try:
            read = read_quads(file.path, _PARSED_GRAPH)
        except CopkgError as exc:
            problems.extend(exc.problems or [Problem(exc.message, file=str(file.path))])
            continue
        too_long += _long_literals(settings, file, read)
        quads.extend(read)
    if problems:
        raise CopkgError(f"{path}: the bundle is not valid Turtle", status=400, problems=problems)
    if too_long:
        raise CopkgError(f"{path}: literals over the limit", status=413, problems=too_long)
    if len(quads) > settings.max_bundle_triples:
        raise CopkgError(
            f"{path}: {len(quads)} triples, more than the limit of {settings.max_bundle_triples} "
            "a bundle (COPKG_MAX_BUNDLE_TRIPLES): split the study or raise the limit",
            status=413,
        )
    return quads


def _refuse_links(folder: Path, entries: list[Path]) -> None:
    """Refuse a bundle folder holding symbolic or hard links: `copkg add` would copy what they
    point at (a file anywhere on the machine) into the corpus."""
    problems = []
    for entry in entries:
        if entry.is_symlink():
            problems.append(Problem("a symbolic link: copy the file itself into the bundle",
                                    file=str(entry)))  # fmt: skip
        elif entry.is_file() and entry.stat().st_nlink > 1:
            problems.append(Problem("a hard link to a file elsewhere: copy the file itself "
                                    "into the bundle", file=str(entry)))  # fmt: skip
    if problems:
        raise CopkgError(f"{folder}: a bundle holds its own files, not links", status=400,
                         problems=problems)  # fmt: skip


def _refuse_large_files(settings: Settings, path: Path, files: list[Path]) -> None:
    """Refuse Turtle over COPKG_MAX_BUNDLE_BYTES before reading it."""
    sizes = {p: p.stat().st_size for p in files}
    if sum(sizes.values()) <= settings.max_bundle_bytes:
        return
    largest = max(sizes, key=lambda p: sizes[p])
    raise CopkgError(
        f"{path}: {sum(sizes.values())} bytes of Turtle, more than the limit of "
        f"{settings.max_bundle_bytes} a bundle (COPKG_MAX_BUNDLE_BYTES)",
        status=413,
        problems=[Problem(f"the largest file, {sizes[largest]} bytes", file=str(largest))],
    )


def _long_literals(settings: Settings, file: BundleFile, quads: list[ox.Quad]) -> list[Problem]:
    """A problem (file:line) for each literal over COPKG_MAX_LITERAL characters."""
    limit = settings.max_literal
    problems = []
    text = file.text
    for quad in quads:
        value = quad.object.value if isinstance(quad.object, ox.Literal) else ""
        if len(value) <= limit:
            continue
        at = text.find(value[:64])
        line = text.count("\n", 0, at) + 1 if at >= 0 else None
        problems.append(
            Problem(
                f"a literal of {len(value)} characters, more than the limit of {limit} "
                "(COPKG_MAX_LITERAL): quote less, or link to the full text",
                file=str(file.path),
                line=line,
            )
        )
    return problems


@contextlib.contextmanager
def _quiet_literals() -> Iterator[None]:
    """Keep rdflib from logging a traceback for each ill-typed literal ("33O" as a page): the
    SHACL shapes report those, with file and line."""
    log = logging.getLogger("rdflib.term")
    level = log.level
    log.setLevel(logging.ERROR)
    try:
        yield
    finally:
        log.setLevel(level)


def _choose_id(path: Path, graph: Graph, given: str | None, in_place: bool) -> str:
    declared = sorted(
        {s for s in map(study_of, graph.subjects(RDF.type, COPKG.Study)) if s is not None}
    )
    if in_place:
        if given is not None and given != path.name:
            raise CopkgError(
                f"{path} is the folder of study {path.name}, not {given}: leave out --id",
                status=400,
            )
        return check_study_id(path.name)
    if given is not None:
        return given
    if len(declared) == 1:
        return check_study_id(declared[0])
    found = ", ".join(declared) or "none"
    raise CopkgError(
        f"{path}: cannot tell which study this is (copkg:Study records in study namespaces: "
        f"{found}): give --id ID",
        status=400,
    )


class Corpus:
    """The corpus without the bundle: who describes which resource (the build's store when the
    build is up to date, else the sources read now) and what the sources say of it, as written.
    """

    def __init__(
        self, settings: Settings, fresh: bool, sources: dict[str, list[Path]] | None = None
    ) -> None:
        self.settings = settings
        files = dict(sources or steps.source_files(settings))
        ontology = [
            q for p in files.pop(str(ONTOLOGY_GRAPH)) for q in read_quads(p, str(ONTOLOGY_GRAPH))
        ]
        self.ontology = quads_to_graph(ontology)
        self.declared = {s for s in self.ontology.subjects(RDF.type, None) if isinstance(s, URIRef)}
        self.vocabulary = {s for s in self.ontology.subjects() if isinstance(s, URIRef)}
        self.files = files
        self.studies = {g[len(STUDY_GRAPHS) :] for g in files}
        self._store: OxigraphStore | None = None
        self._datasets: dict[str, ox.Dataset] = {}
        self._records: list[ox.Quad] | None = None
        self._paper_index: PaperIndex | None = None
        self._papers: KnownPapers | None = None
        if fresh:
            self._store = OxigraphStore.open_read_only(settings.build_dir / STORE_DIR)
            self._index: ox.Store | ox.Dataset = self._store.native
        else:
            everything = ox.Dataset(self._read(list(files)))
            self._index = everything
            self._datasets = dict.fromkeys(files, everything)

    def close(self) -> None:
        """Let go of the build's store (before the build is swapped)."""
        self._index = ox.Dataset()
        self._store = None

    def _read(self, graphs: list[str]) -> list[ox.Quad]:
        quads: list[ox.Quad] = []
        problems: list[Problem] = []
        for graph in graphs:
            for path in self.files[graph]:
                try:
                    quads.extend(read_quads(path, graph))
                except CopkgError as exc:
                    problems.extend(exc.problems or [Problem(exc.message, file=str(path))])
        if problems:
            raise CopkgError(
                "the corpus itself has files that are not valid RDF: fix them first",
                status=400,
                problems=problems,
            )
        return quads

    def _written(self, graph: str) -> ox.Dataset:
        if graph not in self._datasets:
            self._datasets[graph] = ox.Dataset(self._read([graph]))
        return self._datasets[graph]

    def subject_quads(self, node: ox.NamedNode) -> Iterable[ox.Quad]:
        if isinstance(self._index, ox.Store):
            return self._index.quads_for_pattern(node, None, None)
        return self._index.quads_for_subject(node)

    def describers(self, iri: str) -> set[str]:
        """The study graphs that describe `iri` (have it as a subject)."""
        return {
            q.graph_name.value
            for q in self.subject_quads(ox.NamedNode(iri))
            if isinstance(q.graph_name, ox.NamedNode) and q.graph_name.value in self.files
        }

    def known(self, iri: str) -> bool:
        """Whether any graph (the ontology's, a study's, the inferences) describes `iri`."""
        return any(True for _ in self.subject_quads(ox.NamedNode(iri)))

    def known_papers(self) -> KnownPapers:
        """The papers of the corpus's study records, indexed (read once)."""
        if self._papers is None:
            self._papers = self.paper_index().known()
        return self._papers

    def paper_index(self) -> PaperIndex:
        """The corpus's papers, their creators' names and source text digests: kept with an up
        to date build (build_cache), else read from the records (once)."""
        if self._paper_index is None:
            if self._store is not None:
                self._paper_index = PaperIndex.read(self.settings.build_dir)
            if self._paper_index is None:
                self._paper_index = PaperIndex.of_records(self.records())
        return self._paper_index

    def source_digests(self) -> dict[URIRef, str]:
        """The SHA-256 of each study's source text, as the corpus's study records declare it."""
        return self.paper_index().source_digests()

    def records(self) -> list[ox.Quad]:
        """What the studies write of their copkg:Study records, their creators and source
        texts (from the build's store when it is up to date: no study is read)."""
        if self._records is None:
            if isinstance(self._index, ox.Store):
                self._records = study_records(self._index)
            else:
                self._records = self._records_written()
        return self._records

    def _records_written(self) -> list[ox.Quad]:
        assert isinstance(self._index, ox.Dataset)
        typed = self._index.quads_for_object(ox.NamedNode(str(COPKG.Study)))
        studies = {
            q.subject.value
            for q in typed
            if isinstance(q.subject, ox.NamedNode)
            and q.predicate.value == str(RDF.type)
            and isinstance(q.graph_name, ox.NamedNode)
            and q.graph_name.value in self.files
        }
        records = self._describe(studies)
        linked = {
            q.object.value
            for q in records
            if q.predicate.value in (str(DCTERMS.creator), str(COPKG.sourceText))
            and isinstance(q.object, ox.NamedNode)
        }
        return records + self._describe(linked)

    def describe(self, iris: Iterable[str]) -> Graph:
        """What the studies write of each IRI (its own triples), with the types of the
        resources those triples point at."""
        return quads_to_graph(self._describe(iris))

    def _describe(self, iris: Iterable[str]) -> list[ox.Quad]:
        found: list[ox.Quad] = []
        pointed: set[str] = set()
        wanted = set(iris)
        for iri in sorted(wanted):
            own = self._own(iri)
            found += own
            pointed |= {q.object.value for q in own if isinstance(q.object, ox.NamedNode)}
        for iri in sorted(pointed - wanted):
            found += [q for q in self._own(iri) if q.predicate.value == str(RDF.type)]
        return found

    def _own(self, iri: str) -> list[ox.Quad]:
        node = ox.NamedNode(iri)
        return [
            q
            for graph in sorted(self.describers(iri))
            for q in self._written(graph).quads_for_subject(node)
            if q.graph_name == ox.NamedNode(graph)
        ]
