"""Study bundles: scaffold a draft (`copkg new-study`), check a bundle against the rest of the
corpus and add it to the corpus and the build (`copkg add`).

A bundle is checked where it links, not as a whole corpus: its triples, merged with the
ontology and with what the other studies say of the resources it points at (as their sources
write it), go through the SHACL shapes and HermiT; the IRIs it uses must be declared (copkg:)
or described by some bundle (other studies' resources), and it may only describe resources of
its own namespace https://w3id.org/copkg/id/ID/.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import re
import shutil
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import pyoxigraph as ox
from rdflib import Graph, Literal, URIRef
from rdflib.namespace import RDF

from copkg.config import Settings
from copkg.errors import CopkgError, Problem
from copkg.namespaces import BASE, COPKG, ID, ONTOLOGY_GRAPH, prefixed, study_base, study_graph
from copkg.pipeline import Manifest, build_state, extend_build, locked, steps
from copkg.pipeline.build import STORE_DIR
from copkg.pipeline.extend import Extension, can_extend
from copkg.pipeline.steps import DRAFT_MARKER
from copkg.rdf_io import FORMATS, atomic_write, read_quads
from copkg.reasoning.owl import JAVA_HINT, JavaMissingError, check_consistency
from copkg.store.embedded import OxigraphStore
from copkg.store.terms import quads_to_graph
from copkg.validation import report as validation

#: A study ID: lower-case letters and digits in words joined by single hyphens.
STUDY_ID = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")
MAX_ID_LENGTH = 64
#: Segments of https://w3id.org/copkg/id/ that are not studies: the rules mint IRIs in
#: id/inferred/, the advisor in id/hypothetical/.
RESERVED_IDS = frozenset({"inferred", "hypothetical"})
BUNDLE_SUFFIX = ".ttl"
#: Files of a bundle folder copied along with the Turtle, though the build does not read them.
NOTE_SUFFIXES = (".md", ".txt")

_PLACEHOLDER = re.compile(r"\bTODO\b")
_PREFIX_DECL = re.compile(r"^\s*(?:@prefix|PREFIX)\s+([A-Za-z][\w.-]*)?:\s*<([^>]*)>", re.I | re.M)
_STUDY_GRAPHS = study_graph("")
_PARSED_GRAPH = "urn:copkg:add:bundle"


# -- IDs and scaffolds -----------------------------------------------------------------------


def check_study_id(study_id: str) -> str:
    """The ID if it is a safe folder name and namespace segment; 400 saying why otherwise."""
    why = None
    if not study_id:
        why = "it is empty"
    elif any(c in study_id for c in "/\\") or ".." in study_id:
        why = "it is a path: an ID is one folder name, with no '/', '\\' or '..'"
    elif study_id != study_id.lower():
        why = "it has upper-case letters: use lower case"
    elif len(study_id) > MAX_ID_LENGTH:
        why = f"it is longer than {MAX_ID_LENGTH} characters"
    elif not STUDY_ID.fullmatch(study_id):
        why = "use lower-case letters, digits and single hyphens only"
    elif study_id in RESERVED_IDS:
        why = f"id/{study_id}/ is reserved for IRIs copkg mints itself"
    if why:
        raise CopkgError(
            f"{study_id!r} is not a valid study ID: {why} (e.g. smith2010 or smith2010-retail)",
            status=400,
        )
    return study_id


def studies_dir(settings: Settings) -> Path:
    return settings.data_dir / "studies"


def new_study(settings: Settings, study_id: str) -> Path:
    """Make data/studies/ID/ from the template: a commented study.ttl and a DRAFT marker that
    keeps `copkg build` off the folder until `copkg add` takes the study in."""
    check_study_id(study_id)
    parent = studies_dir(settings)
    parent.mkdir(parents=True, exist_ok=True)
    target = parent / study_id
    if target.exists():
        raise CopkgError(
            f"study {study_id} exists already ({target}): choose another ID", status=409
        )
    work = Path(tempfile.mkdtemp(prefix=f".new-{study_id}-", dir=parent))
    try:
        for template in sorted(_templates(), key=lambda t: t.name):
            text = template.read_text(encoding="utf-8").replace("{{ID}}", study_id)
            _write(work / template.name, text.encode("utf-8"))
        work.chmod(0o755)
        _fsync_dir(work)
        os.rename(work, target)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    _fsync_dir(parent)
    return target


def _templates() -> list[Any]:
    folder = resources.files("copkg").joinpath("templates", "study")
    return [t for t in folder.iterdir() if t.is_file() and not t.name.startswith(("_", "."))]


def is_draft(folder: Path) -> bool:
    return (folder / DRAFT_MARKER).exists()


# -- reading a bundle ------------------------------------------------------------------------


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

    @property
    def namespace(self) -> str:
        return str(study_base(self.study_id))

    @property
    def graph_name(self) -> str:
        return study_graph(self.study_id)

    def subjects(self) -> set[Any]:
        return set(self.graph.subjects())

    def hashes(self, settings: Settings) -> dict[str, str]:
        """SHA-256 of each Turtle file by its path in the corpus (as the build's manifest)."""
        folder = studies_dir(settings) / self.study_id
        return {
            (folder / f.name).relative_to(settings.root).as_posix(): hashlib.sha256(
                f.data
            ).hexdigest()
            for f in self.files
        }

    def show(self, node: Any) -> str:
        """An IRI as the bundle writes it: with a prefix its files declare, else prefixed()."""
        if isinstance(node, URIRef):
            iri = str(node)
            for file in self.files:
                for prefix, namespace in _PREFIX_DECL.findall(file.text):
                    local = iri[len(namespace) :]
                    if namespace and iri.startswith(namespace) and re.fullmatch(r"[\w-]+", local):
                        return f"{prefix}:{local}"
        return prefixed(node)

    def locate(self, node: Any, *, subject: bool = False) -> tuple[str | None, int | None]:
        """The file and line where an IRI is first written (prefixed or in full); with
        `subject`, first where a line starts with it (a description), if anywhere."""
        if not isinstance(node, URIRef):
            return (str(self.files[0].path), None) if len(self.files) == 1 else (None, None)
        iri = str(node)
        found: tuple[str | None, int | None] = (None, None)
        for file in self.files:
            patterns = [re.escape(f"<{iri}>")]
            for prefix, namespace in _PREFIX_DECL.findall(file.text):
                local = iri[len(namespace) :]
                if namespace and iri.startswith(namespace) and re.fullmatch(r"[\w.-]*", local):
                    patterns.append(
                        r"(?<![\w:.-])" + re.escape(f"{prefix}:{local}") + r"(?![\w:%-]|\.\w)"
                    )
            anywhere = re.compile("|".join(patterns))
            starting = re.compile(r"^\s*(?:" + "|".join(patterns) + ")")
            for number, line in enumerate(file.text.splitlines(), 1):
                if line.lstrip().startswith("#"):
                    continue
                if subject and starting.search(line):
                    return str(file.path), number
                if found == (None, None) and anywhere.search(line):
                    found = (str(file.path), number)
                    if not subject:
                        return found
        return found


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
    if path.is_dir():
        entries = sorted(p for p in path.iterdir() if not p.name.startswith("."))
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
                ],  # fmt: skip
            )
        for p in entries:
            if p in turtle or p.name == DRAFT_MARKER:
                continue
            if p.is_file() and p.suffix.lower() in NOTE_SUFFIXES:
                notes.append(BundleFile(p.name, p, p.read_bytes()))
            else:
                ignored.append(p.name)
    elif path.suffix == BUNDLE_SUFFIX:
        turtle = [path]
    else:
        raise CopkgError(f"{path}: a bundle is a folder of .ttl files or one .ttl file")
    if not turtle:
        raise CopkgError(f"{path}: no .ttl file in this folder")
    files = [BundleFile(p.name, p, p.read_bytes()) for p in turtle]
    quads: list[ox.Quad] = []
    problems: list[Problem] = []
    for file in files:
        try:
            quads.extend(read_quads(file.path, _PARSED_GRAPH))
        except CopkgError as exc:
            problems.extend(exc.problems or [Problem(exc.message, file=str(file.path))])
    if problems:
        raise CopkgError(f"{path}: the bundle is not valid Turtle", status=400, problems=problems)
    with _quiet_literals():
        graph = quads_to_graph(quads)
    chosen = _choose_id(path, graph, study_id, in_place)
    name = ox.NamedNode(study_graph(chosen))
    quads = [ox.Quad(q.subject, q.predicate, q.object, name) for q in quads]
    return Bundle(chosen, path, files, quads, graph, in_place, notes, ignored)


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


def study_of(node: Any) -> str | None:
    """The study whose namespace holds an IRI (https://w3id.org/copkg/id/ID/...), if any."""
    text = str(node)
    if not isinstance(node, URIRef) or not text.startswith(str(ID)):
        return None
    head, slash, _ = text[len(ID) :].partition("/")
    return head if slash else None


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


# -- the corpus a bundle is checked against --------------------------------------------------


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
        self.files = files
        self.studies = {g[len(_STUDY_GRAPHS) :] for g in files}
        self._store: OxigraphStore | None = None
        self._datasets: dict[str, ox.Dataset] = {}
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

    def _subject_quads(self, node: ox.NamedNode) -> Iterable[ox.Quad]:
        if isinstance(self._index, ox.Store):
            return self._index.quads_for_pattern(node, None, None)
        return self._index.quads_for_subject(node)

    def describers(self, iri: str) -> set[str]:
        """The study graphs that describe `iri` (have it as a subject)."""
        return {
            q.graph_name.value
            for q in self._subject_quads(ox.NamedNode(iri))
            if isinstance(q.graph_name, ox.NamedNode) and q.graph_name.value in self.files
        }

    def describe(self, iris: Iterable[str]) -> Graph:
        """What the studies write of each IRI (its own triples), with the types of the
        resources those triples point at."""
        found: list[ox.Quad] = []
        pointed: set[str] = set()
        wanted = set(iris)
        for iri in sorted(wanted):
            found += self._own(iri)
            pointed |= {q.object.value for q in found if isinstance(q.object, ox.NamedNode)}
        for iri in sorted(pointed - wanted):
            found += [q for q in self._own(iri) if q.predicate.value == str(RDF.type)]
        return quads_to_graph(found)

    def _own(self, iri: str) -> list[ox.Quad]:
        node = ox.NamedNode(iri)
        return [
            q
            for graph in sorted(self.describers(iri))
            for q in self._written(graph).quads_for_subject(node)
            if q.graph_name == ox.NamedNode(graph)
        ]


# -- checking ----------------------------------------------------------------------------------


@dataclass
class CheckReport:
    """What the checks found: errors refuse the bundle, warnings do not.

    HermiT may still be running (`pending`, from check_bundle with `wait=False`): settle()
    waits for it and adds what it found.
    """

    bundle: Bundle
    errors: list[Problem] = field(default_factory=list)
    warnings: list[Problem] = field(default_factory=list)
    steps: dict[str, str] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    pending: Future[tuple[Problem | None, float]] | None = field(default=None, repr=False)

    @property
    def ok(self) -> bool:
        return not self.errors

    def settle(self, *, discard: bool = False) -> None:
        """Wait for HermiT if it is running; its verdict counts unless other checks failed
        (then it is reported as not run, as when it is not started) or `discard` is given
        (something else failed)."""
        if self.pending is None:
            return
        future, self.pending = self.pending, None
        start = time.perf_counter()
        try:
            problem, seconds = future.result()
        except BaseException:
            if not (self.errors or discard):
                raise
            problem, seconds = None, 0.0
        self.timings["owl"] = seconds
        self.timings["owl_wait"] = round(time.perf_counter() - start, 4)
        if self.errors or discard:
            self.steps["owl"] = _OWL_NOT_RUN
            return
        self.steps["owl"] = "consistent" if problem is None else "inconsistent"
        if problem is not None:
            self.errors.append(problem)


_OWL_NOT_RUN = "not run (fix the problems above first)"


def check_bundle(
    settings: Settings, bundle: Bundle, corpus: Corpus, *, owl: bool = True, wait: bool = True
) -> CheckReport:
    """Every check of `copkg add` but the syntax (read_bundle did it): the study ID, the IRIs,
    the SHACL shapes and (with `owl`) HermiT consistency. Nothing is changed.

    HermiT (a Java process) runs in a thread while SHACL does, once the IRIs are found good;
    with `wait=False` it is left running: the caller settles the report when it needs it.
    """
    report = CheckReport(bundle)
    report.steps["syntax"] = f"{len(bundle.files)} files, {len(bundle.graph)} triples"

    def timed(name: str, step: Callable[..., Any], *args: Any) -> Any:
        start = time.perf_counter()
        result = step(*args)
        report.timings[name] = round(time.perf_counter() - start, 4)
        return result

    report.errors += timed("identity", _identity_problems, settings, bundle, corpus)
    report.errors += timed("iris", iri_problems, bundle, corpus)
    refs = {
        str(node)
        for node in {*bundle.graph.subjects(), *bundle.graph.objects()}
        if isinstance(node, URIRef) and not str(node).startswith((bundle.namespace, str(COPKG)))
    }
    neighbourhood = timed("neighbourhood", corpus.describe, refs)
    if owl and not report.errors:
        report.pending = _start_owl(bundle, corpus, neighbourhood)
    try:
        violations, warnings = timed(
            "shacl", shacl_problems, settings, bundle, corpus, neighbourhood, refs
        )
    except BaseException:
        report.settle(discard=True)
        raise
    report.errors += violations
    report.warnings += warnings
    report.steps["iris"] = "ok" if not report.errors else "problems"
    report.steps["shacl"] = f"{len(violations)} violations, {len(warnings)} warnings"
    if not owl:
        report.steps["owl"] = "skipped (--skip-owl)"
    elif report.pending is None:
        report.steps["owl"] = _OWL_NOT_RUN
    if wait or report.errors:
        report.settle()
    return report


def _start_owl(
    bundle: Bundle, corpus: Corpus, neighbourhood: Graph
) -> Future[tuple[Problem | None, float]]:
    """owl_problem() in a thread of its own (HermiT runs in Java: the wait overlaps)."""

    def run() -> tuple[Problem | None, float]:
        start = time.perf_counter()
        problem = owl_problem(bundle, corpus, neighbourhood)
        return problem, round(time.perf_counter() - start, 4)

    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="copkg-hermit")
    try:
        return pool.submit(run)
    finally:
        pool.shutdown(wait=False)


def _identity_problems(settings: Settings, bundle: Bundle, corpus: Corpus) -> list[Problem]:
    folder = studies_dir(settings) / bundle.study_id
    if bundle.in_place and not is_draft(folder):
        return [
            Problem(
                f"{folder} is already part of the corpus (it has no {DRAFT_MARKER} file): "
                "there is nothing to add"
            )
        ]
    if (folder.exists() and not bundle.in_place) or bundle.study_id in corpus.studies:
        return [
            Problem(
                f"study {bundle.study_id} exists already ({folder}): its namespace "
                f"{bundle.namespace} is taken; choose another ID with --id and rename the "
                "bundle's IRIs"
            )
        ]
    if not any(
        study_of(s) == bundle.study_id for s in bundle.graph.subjects(RDF.type, COPKG.Study)
    ):
        return [
            Problem(
                f"the bundle has no study record: describe the study as "
                f"<{bundle.namespace}study> a copkg:Study (see `copkg new-study`)",
                file=str(bundle.files[0].path),
            )
        ]
    return []


def iri_problems(bundle: Bundle, corpus: Corpus) -> list[Problem]:
    """IRIs the bundle may not use or describe, and placeholders left in it."""
    problems: dict[tuple[str, str], Problem] = {}
    own = bundle.namespace
    subjects = bundle.subjects()

    def refuse(node: Any, why: str, *, described: bool = False) -> None:
        key = (str(node), why)
        if key not in problems:
            file, line = bundle.locate(node, subject=described)
            problems[key] = Problem(f"{bundle.show(node)}: {why}", file=file, line=line)

    for subject in subjects:
        if not isinstance(subject, URIRef):
            continue
        text = str(subject)
        other = study_of(subject)
        if text.startswith("file:"):
            refuse(subject, "a relative IRI: write the full IRI or a prefixed name", described=True)
        elif other is not None and other != bundle.study_id:
            refuse(
                subject,
                f"this resource belongs to study {other} (another study's namespace): a bundle "
                f"only describes its own resources ({own}...); point at it as an object instead",
                described=True,
            )
        elif text.startswith(BASE) and not text.startswith(own):
            refuse(
                subject,
                "a bundle cannot describe the ontology or other copkg resources: propose "
                "changes to ontology/copkg.ttl instead",
                described=True,
            )
        elif other is None and corpus.describers(text):
            studies = ", ".join(sorted(g[len(_STUDY_GRAPHS) :] for g in corpus.describers(text)))
            refuse(
                subject,
                f"already described by study {studies}: adding triples here would mix with that "
                f"study's facts; mint an IRI in {own} and link it with skos:exactMatch",
                described=True,
            )
    for triple in bundle.graph:
        for node in triple:
            if isinstance(node, Literal):
                if node.datatype is not None:
                    node = URIRef(node.datatype)
                else:
                    continue
            if not isinstance(node, URIRef) or node in subjects:
                continue
            text = str(node)
            other = study_of(node)
            if text.startswith("file:"):
                refuse(node, "a relative IRI: write the full IRI or a prefixed name")
            elif text.startswith(str(COPKG)):
                if node not in corpus.declared:
                    refuse(
                        node,
                        "not a term of the copkg ontology: check its spelling against "
                        "ontology/copkg.ttl and ontology/vocabularies.ttl",
                    )
            elif other == bundle.study_id:
                refuse(
                    node,
                    "used but not described in the bundle (a misspelt name?): describe it, or "
                    "correct the name",
                )
            elif other is not None:
                if not corpus.describers(text):
                    where = (
                        f"study {other} has no such resource"
                        if other in corpus.studies
                        else f"there is no study {other} in the corpus"
                    )
                    refuse(node, f"no study bundle describes it ({where})")
            elif text.startswith(BASE) and not _known(corpus, text):
                refuse(node, "not a copkg resource the corpus knows")
    for file in bundle.files:
        for number, line in enumerate(file.text.splitlines(), 1):
            if not line.lstrip().startswith("#") and _PLACEHOLDER.search(line):
                problems[(str(file.path), str(number))] = Problem(
                    "a TODO placeholder is left: fill in the value (or delete the statement)",
                    file=str(file.path),
                    line=number,
                )
    return sorted(problems.values(), key=lambda p: (p.file or "", p.line or 0, p.message))


def _known(corpus: Corpus, iri: str) -> bool:
    return any(True for _ in corpus._subject_quads(ox.NamedNode(iri)))


def shacl_problems(
    settings: Settings, bundle: Bundle, corpus: Corpus, neighbourhood: Graph, refs: set[str]
) -> tuple[list[Problem], list[Problem]]:
    """SHACL results the bundle causes: on its own resources, and new ones on the resources it
    links to (compared with the same neighbourhood without the bundle)."""
    if not settings.shapes_file.is_file():
        raise CopkgError(f"no shapes to validate against: {settings.shapes_file}", status=500)
    shapes = validation.load_shapes(settings.shapes_file)
    data = validation.merge([bundle.graph, neighbourhood])
    after = validation.validate(data, shapes, corpus.ontology)
    mine = {prefixed(s): s for s in bundle.subjects() if isinstance(s, URIRef)}
    linked = {prefixed(URIRef(r)) for r in refs}
    kept = [r for r in after.results if r.focus in mine or r.focus.startswith("[]")]
    about_links = [r for r in after.results if r.focus in linked and r.focus not in mine]
    if about_links:
        before = set(validation.validate(neighbourhood, shapes, corpus.ontology).results)
        kept += [r for r in about_links if r not in before]
    errors: list[Problem] = []
    warnings: list[Problem] = []
    for result in kept:
        node = mine.get(result.focus)
        file, line = bundle.locate(node) if node is not None else (None, None)
        path = f" {result.path}" if result.path else ""
        value = f" (value {result.value})" if result.value else ""
        focus = bundle.show(node) if node is not None else result.focus
        problem = Problem(
            f"{result.severity} {result.shape}: {focus}{path}{value}: {result.message}",
            file=file,
            line=line,
            focus=result.focus,
            path=result.path,
            shape=result.shape,
        )
        (errors if result.severity == "Violation" else warnings).append(problem)
    return errors, warnings


def owl_problem(bundle: Bundle, corpus: Corpus, neighbourhood: Graph) -> Problem | None:
    """HermiT over the ontology, the bundle and what it links to; a Problem if inconsistent."""
    try:
        result = check_consistency([corpus.ontology, bundle.graph, neighbourhood])
    except JavaMissingError as exc:
        raise CopkgError(
            f"{exc.message}: the OWL consistency check needs it ({JAVA_HINT}), or pass "
            "--skip-owl to add the study without that check",
            status=500,
        ) from exc
    if result.consistent:
        return None
    return Problem(f"OWL (HermiT): the bundle makes the ontology {result.message}")


# -- adding ------------------------------------------------------------------------------------


@dataclass
class AddOutcome:
    """The checks, and where the study went (nothing for a dry run)."""

    report: CheckReport
    target: Path | None = None
    manifest: Manifest | None = None
    how: str = ""

    @property
    def timings(self) -> dict[str, float]:
        """Seconds each step took: the checks (`check.*`), then the build (`build.*`)."""
        steps = {f"check.{name}": t for name, t in self.report.timings.items()}
        if self.manifest is not None:
            steps |= {f"build.{name}": t for name, t in self.manifest.timings.items()}
        return steps


def add_study(
    settings: Settings,
    path: str | os.PathLike[str],
    *,
    study_id: str | None = None,
    skip_owl: bool = False,
    rebuild: bool = False,
    dry_run: bool = False,
) -> AddOutcome:
    """Check a bundle and add it: copy it into data/studies/ID/ (atomically; a draft there
    just loses its DRAFT marker) and bring the build up to date with it.

    The build is extended in place of a rebuild when it is up to date (`rebuild` forces the
    full build). Any problem raises CopkgError and leaves the corpus and the build as they were.
    """
    bundle = read_bundle(settings, path, study_id)
    with locked(settings):
        sources = steps.source_files(settings)
        state, old = build_state(settings, sources)
        fresh = state == "fresh"
        if fresh and old is not None and not can_extend(old):
            state = "exports of an older copkg"
        incremental = state == "fresh" and not rebuild
        # the new build's exports start copying now, while the checks run
        extension = Extension(settings, bundle.graph_name) if incremental and not dry_run else None
        report = None
        try:
            corpus = Corpus(settings, fresh=fresh, sources=sources)
            try:
                report = check_bundle(settings, bundle, corpus, owl=not skip_owl, wait=dry_run)
            finally:
                corpus.close()
            _refuse_if_problems(report)
            if dry_run:
                return AddOutcome(report, how="dry run: nothing changed")
            target = studies_dir(settings) / bundle.study_id
            checked = report

            def ready() -> None:
                checked.settle()
                _refuse_if_problems(checked)

            manifest = extend_build(
                settings,
                bundle.graph_name,
                bundle.quads,
                bundle.hashes(settings),
                lambda: place(settings, bundle),
                incremental=incremental,
                ready=ready,
                extension=extension,
            )
        finally:
            if report is not None:
                report.settle(discard=True)  # HermiT stopped short by a failure: wait for it
            if extension is not None:
                extension.discard()
    how = "build extended" if incremental else f"build rebuilt ({'asked' if rebuild else state})"
    return AddOutcome(report, target, manifest, how)


def _refuse_if_problems(report: CheckReport) -> None:
    if report.errors:
        count = len(report.errors)
        raise CopkgError(
            f"{report.bundle.source}: not added, {count} problem{'s' if count != 1 else ''} "
            "(nothing was changed)",
            status=422,
            problems=report.errors,
        )


#: `copkg add` as one call (the name the benchmarks look for).
add = add_study


def place(settings: Settings, bundle: Bundle) -> Callable[[], None]:
    """Put the bundle into data/studies/ID/ and return what takes it out again.

    A copy is written to a temporary folder beside the studies, synced, and renamed into
    place; a draft already in place only loses its DRAFT marker.
    """
    parent = studies_dir(settings)
    target = parent / bundle.study_id
    if bundle.in_place:
        marker = target / DRAFT_MARKER
        saved = marker.read_bytes() if marker.exists() else b""
        marker.unlink(missing_ok=True)
        _fsync_dir(target)
        return lambda: atomic_write(marker, saved)
    parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".add-{bundle.study_id}-", dir=parent))
    try:
        for file in [*bundle.files, *bundle.notes]:
            _write(work / file.name, file.data)
        work.chmod(0o755)
        _fsync_dir(work)
        if target.exists():
            raise CopkgError(f"study {bundle.study_id} appeared meanwhile: {target}", status=409)
        os.rename(work, target)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    _fsync_dir(parent)

    def undo() -> None:
        trash = parent / f".remove-{bundle.study_id}-{time.time_ns()}"
        os.rename(target, trash)
        _fsync_dir(parent)
        shutil.rmtree(trash, ignore_errors=True)

    return undo


def _write(path: Path, data: bytes) -> None:
    with open(path, "wb") as out:
        out.write(data)
        out.flush()
        os.fsync(out.fileno())
    os.chmod(path, 0o644)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


__all__ = [
    "AddOutcome",
    "Bundle",
    "CheckReport",
    "Corpus",
    "add",
    "add_study",
    "check_bundle",
    "check_study_id",
    "new_study",
    "read_bundle",
]
