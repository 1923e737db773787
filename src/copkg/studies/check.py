"""Checking a bundle against the corpus before it is added: identity, IRIs, SHACL and OWL."""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rdflib import Graph, URIRef
from rdflib.namespace import RDF

from copkg.config import Settings
from copkg.errors import CopkgError, Problem
from copkg.namespaces import COPKG, prefixed
from copkg.pipeline.build import MANIFEST
from copkg.pipeline.build_cache import CACHE_DIR
from copkg.pipeline.corpus_checks import statement_problems
from copkg.pipeline.quote_checks import Fidelity, source_digests, verify_quotes
from copkg.pipeline.steps import DRAFT_MARKER
from copkg.pipeline.study_view import study_of
from copkg.reasoning.owl import JAVA_HINT, JavaMissingError, check_consistency
from copkg.studies.bundle import Bundle, Corpus
from copkg.studies.scaffold import is_draft, studies_dir
from copkg.validation import report as validation
from copkg.validation.fidelity import SOURCE_FOLDER


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
    fidelity: Fidelity = field(default_factory=Fidelity)

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
    """Every check of `copkg add` but the syntax (read_bundle did it): the study ID, what the
    bundle states (pipeline.corpus_checks, which `copkg build` applies too), the SHACL shapes
    and (with `owl`) HermiT consistency. Nothing is changed.

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
    report.errors += timed("iris", statement_problems, bundle, corpus, corpus.known_papers())
    report.fidelity = timed("fidelity", _verify, settings, bundle, corpus)
    report.errors += report.fidelity.problems
    report.steps["fidelity"] = (
        "; ".join(f"{prefixed(URIRef(s))}: {what}" for s, what in report.fidelity.summary().items())
        or "no source text declared: the quotes are unverified"
    )
    refs = {
        str(node)
        for node in {*bundle.graph.subjects(), *bundle.graph.objects()}
        if isinstance(node, URIRef) and not str(node).startswith((bundle.namespace, str(COPKG)))
    }
    neighbourhood = timed("neighbourhood", corpus.describe, refs)
    if owl and not report.errors:
        report.pending = _start_owl(bundle, corpus, neighbourhood, _class_cache(settings))
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


def _verify(settings: Settings, bundle: Bundle, corpus: Corpus) -> Fidelity:
    """The bundle's quotes against the source text of the study each is taken from (its own,
    in its source/ folder or COPKG_SOURCE_TEXTS, or one the corpus declares)."""
    digests = corpus.source_digests() | source_digests(bundle.graph)

    def folders(study_id: str) -> list[Path]:
        own = [bundle.source / SOURCE_FOLDER] if study_id == bundle.study_id else []
        return own + settings.source_text_dirs(study_id)

    return verify_quotes([bundle], digests, folders)


def _class_cache(settings: Settings) -> Path | None:
    """Where HermiT's JVM keeps its classes between adds: with the build, if there is one
    (build_cache; an add carries them into the new build)."""
    if not (settings.build_dir / MANIFEST).is_file():
        return None
    return settings.build_dir / CACHE_DIR


def _start_owl(
    bundle: Bundle, corpus: Corpus, neighbourhood: Graph, classes: Path | None = None
) -> Future[tuple[Problem | None, float]]:
    """owl_problem() in a thread of its own (HermiT runs in Java: the wait overlaps)."""

    def run() -> tuple[Problem | None, float]:
        start = time.perf_counter()
        problem = owl_problem(bundle, corpus, neighbourhood, classes)
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


def owl_problem(
    bundle: Bundle, corpus: Corpus, neighbourhood: Graph, classes: Path | None = None
) -> Problem | None:
    """HermiT over the ontology, the bundle and what it links to; a Problem if inconsistent
    (`classes`: where the JVM keeps HermiT's classes between runs)."""
    try:
        graphs = [corpus.ontology, bundle.graph, neighbourhood]
        result = check_consistency(graphs, classify=False, classes=classes)
    except JavaMissingError as exc:
        raise CopkgError(
            f"{exc.message}: the OWL consistency check needs it ({JAVA_HINT}), or pass "
            "--skip-owl to add the study without that check",
            status=500,
        ) from exc
    except Exception as exc:  # noqa: BLE001 - owlready2 raises many kinds on what OWL 2 DL forbids (punned built-ins)
        return Problem(f"OWL (HermiT): the bundle cannot be read as OWL 2 DL: {exc}")
    if result.consistent:
        return None
    return Problem(f"OWL (HermiT): the bundle makes the ontology {result.message}")
