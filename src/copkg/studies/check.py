"""Checking a bundle against the corpus before it is added: identity, IRIs, SHACL and OWL."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import pyoxigraph as ox
from rdflib import Graph, Literal, URIRef
from rdflib.namespace import RDF

from copkg.config import Settings
from copkg.errors import CopkgError, Problem
from copkg.namespaces import BASE, COPKG, prefixed
from copkg.pipeline.steps import DRAFT_MARKER
from copkg.reasoning.owl import JAVA_HINT, JavaMissingError, check_consistency
from copkg.studies.bundle import STUDY_GRAPHS, Bundle, Corpus, study_of
from copkg.studies.scaffold import is_draft, studies_dir
from copkg.validation import report as validation

_PLACEHOLDER = re.compile(r"\bTODO\b")


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
    subjects = bundle.subjects()

    def refuse(node: Any, why: str, *, described: bool = False) -> None:
        key = (str(node), why)
        if key not in problems:
            file, line = bundle.locate(node, subject=described)
            problems[key] = Problem(f"{bundle.show(node)}: {why}", file=file, line=line)

    for subject in subjects:
        if isinstance(subject, URIRef):
            why = _subject_problem(subject, bundle, corpus)
            if why is not None:
                refuse(subject, why, described=True)
    for triple in bundle.graph:
        for term in triple:
            is_typed = isinstance(term, Literal) and term.datatype is not None
            node = URIRef(term.datatype) if is_typed else term
            if isinstance(node, URIRef) and node not in subjects:
                why = _object_problem(node, bundle, corpus)
                if why is not None:
                    refuse(node, why)
    for file in bundle.files:
        for number, line in enumerate(file.text.splitlines(), 1):
            if not line.lstrip().startswith("#") and _PLACEHOLDER.search(line):
                problems[(str(file.path), str(number))] = Problem(
                    "a TODO placeholder is left: fill in the value (or delete the statement)",
                    file=str(file.path),
                    line=number,
                )
    return sorted(problems.values(), key=lambda p: (p.file or "", p.line or 0, p.message))


def _subject_problem(subject: URIRef, bundle: Bundle, corpus: Corpus) -> str | None:
    """Why the bundle may not describe `subject` (None: it may)."""
    own = bundle.namespace
    text = str(subject)
    other = study_of(subject)
    if text.startswith("file:"):
        return "a relative IRI: write the full IRI or a prefixed name"
    if other is not None and other != bundle.study_id:
        return (
            f"this resource belongs to study {other} (another study's namespace): a bundle "
            f"only describes its own resources ({own}...); point at it as an object instead"
        )
    if text.startswith(BASE) and not text.startswith(own):
        return (
            "a bundle cannot describe the ontology or other copkg resources: propose "
            "changes to ontology/copkg.ttl instead"
        )
    if other is None and corpus.describers(text):
        studies = ", ".join(sorted(g[len(STUDY_GRAPHS) :] for g in corpus.describers(text)))
        return (
            f"already described by study {studies}: adding triples here would mix with that "
            f"study's facts; mint an IRI in {own} and link it with skos:exactMatch"
        )
    return None


def _object_problem(node: URIRef, bundle: Bundle, corpus: Corpus) -> str | None:
    """Why the bundle may not use `node` (an IRI it does not describe; None: it may)."""
    text = str(node)
    other = study_of(node)
    if text.startswith("file:"):
        return "a relative IRI: write the full IRI or a prefixed name"
    if text.startswith(str(COPKG)):
        if node not in corpus.declared:
            return (
                "not a term of the copkg ontology: check its spelling against "
                "ontology/copkg.ttl and ontology/vocabularies.ttl"
            )
        return None
    if other == bundle.study_id:
        return (
            "used but not described in the bundle (a misspelt name?): describe it, or "
            "correct the name"
        )
    if other is not None:
        if not corpus.describers(text):
            where = (
                f"study {other} has no such resource"
                if other in corpus.studies
                else f"there is no study {other} in the corpus"
            )
            return f"no study bundle describes it ({where})"
        return None
    if text.startswith(BASE) and not _known(corpus, text):
        return "not a copkg resource the corpus knows"
    return None


def _known(corpus: Corpus, iri: str) -> bool:
    return any(True for _ in corpus.subject_quads(ox.NamedNode(iri)))


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
