"""Quotes verified against the source texts of their studies: each study's declared text found
by its SHA-256, and every quote checked to stand on the page it claims."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rdflib import Graph, URIRef

from copkg.errors import Problem
from copkg.namespaces import COPKG, prefixed
from copkg.pipeline.study_view import Described, study_of
from copkg.validation.fidelity import check_quotes, find_source


def source_digests(graph: Graph | Any) -> dict[URIRef, str]:
    """The SHA-256 of each study's source text, as the study's record declares it."""
    return {
        study: str(digest)
        for study, text in graph.subject_objects(COPKG.sourceText)
        for digest in graph.objects(text, COPKG.sha256)
        if isinstance(study, URIRef)
    }


@dataclass
class Fidelity:
    """Whose quotes were verified against which text, whose text was not found, and every
    quote that is not on the page it claims."""

    verified: dict[URIRef, Path] = field(default_factory=dict)
    missing: dict[URIRef, str] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)

    def summary(self) -> dict[str, str]:
        """What the manifest and `copkg add` say of each study with a declared source text."""
        out = {str(s): f"quotes verified against {p.name}" for s, p in self.verified.items()}
        out |= {
            str(s): f"unverified: no text with SHA-256 {d} in its source/ folder or "
            "COPKG_SOURCE_TEXTS"
            for s, d in self.missing.items()
        }
        return dict(sorted(out.items()))


def verify_quotes(
    views: Sequence[Described], digests: dict[URIRef, str], folders: Callable[[str], list[Path]]
) -> Fidelity:
    """Every quote the `views` take from a study with a source text (`digests`, found in
    `folders(study_id)`) checked against the page it claims, as the tests check the Josserand
    bundle: a quote not on its page is a problem at its file and line."""
    outcome = find_sources(digests, folders)
    for study in outcome.verified:
        for view in views:
            outcome.problems += quote_problems(view, {study: outcome.verified[study]})
    return outcome


def find_sources(digests: dict[URIRef, str], folders: Callable[[str], list[Path]]) -> Fidelity:
    """Which studies' texts (`digests`) are found in `folders(study_id)` and which are not;
    no quote checked yet (quote_problems does, view by view)."""
    outcome = Fidelity()
    for study, digest in sorted(digests.items()):
        path = find_source(digest, folders(study_of(study) or ""))
        if path is None:
            outcome.missing[study] = digest
        else:
            outcome.verified[study] = path
    return outcome


def quote_problems(view: Described, texts: dict[URIRef, Path]) -> list[Problem]:
    """The quotes `view` takes from the studies of `texts` (in their order) that are not on the
    page of the study's text they claim, at their file and line."""
    problems = []
    for study, path in texts.items():
        if (None, COPKG.quotedIn, study) not in view.graph:
            continue  # no quote of that study: its text is not even read
        _checked, mismatches = check_quotes(view.graph, study, path)
        for mismatch in mismatches:
            file, line = view.locate(mismatch.quote, subject=True)
            where = (
                f"it stands on page {', '.join(map(str, mismatch.found_on))}"
                if mismatch.found_on
                else "it is nowhere in the text (a paraphrase? make it a copkg:Paraphrase "
                "with copkg:evidenceText)"
            )
            problems.append(
                Problem(
                    f"{view.show(mismatch.quote)}: not on page {mismatch.page} of the source "
                    f"text of {prefixed(study)} ({path.name}): {where}",
                    file=file,
                    line=line,
                )
            )
    return problems
