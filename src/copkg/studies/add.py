"""`copkg add`: check a bundle, place it under data/studies and extend the build with it."""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from copkg.config import Settings
from copkg.errors import CopkgError
from copkg.pipeline import Manifest, build_state, extend_build, locked, steps
from copkg.pipeline.extend import Extension, can_extend
from copkg.pipeline.steps import DRAFT_MARKER
from copkg.pipeline.study_view import study_of
from copkg.rdf_io import atomic_write, fsync_dir, write_synced
from copkg.studies.bundle import Bundle, Corpus, read_bundle
from copkg.studies.check import CheckReport, check_bundle
from copkg.studies.scaffold import studies_dir
from copkg.validation.fidelity import SOURCE_FOLDER


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
        extension = (
            Extension(settings, bundle.graph_name, old) if incremental and not dry_run else None
        )
        report = None
        try:
            corpus = Corpus(settings, fresh=fresh, sources=sources)
            try:
                report = check_bundle(settings, bundle, corpus, owl=not skip_owl, wait=dry_run)
                if extension is not None:
                    extension.papers = corpus.paper_index()
            finally:
                corpus.close()
            _refuse_if_problems(report)
            if dry_run:
                return AddOutcome(report, how="dry run: nothing changed")
            target = studies_dir(settings) / bundle.study_id
            checked = report
            own = [s for s in report.fidelity.verified if study_of(s) == bundle.study_id]
            bundle.quads += steps.verified_quads(own)

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
        fsync_dir(target)
        return lambda: atomic_write(marker, saved)
    parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".add-{bundle.study_id}-", dir=parent))
    try:
        for file in [*bundle.files, *bundle.notes]:
            write_synced(work / file.name, file.data)
        if bundle.texts:
            (work / SOURCE_FOLDER).mkdir()
            for file in bundle.texts:
                write_synced(work / SOURCE_FOLDER / file.name, file.data)
            fsync_dir(work / SOURCE_FOLDER)
        work.chmod(0o755)
        fsync_dir(work)
        if target.exists():
            raise CopkgError(f"study {bundle.study_id} appeared meanwhile: {target}", status=409)
        os.rename(work, target)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    fsync_dir(parent)

    def undo() -> None:
        trash = parent / f".remove-{bundle.study_id}-{time.time_ns()}"
        os.rename(target, trash)
        fsync_dir(parent)
        shutil.rmtree(trash, ignore_errors=True)

    return undo
