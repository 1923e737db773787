"""`copkg validate`: the build's load, infer and validate steps in memory, without export."""

from __future__ import annotations

from pathlib import Path

from copkg.config import Settings
from copkg.pipeline import steps
from copkg.pipeline.steps import ValidationOutcome
from copkg.store.embedded import OxigraphStore

#: The named graph that holds the files given to `copkg validate FILE...`.
FILES_GRAPH = "urn:copkg:validate:files"


def check(
    settings: Settings, files: list[Path] | None = None, engine: str = "sparql"
) -> ValidationOutcome:
    """Validate the sources (or the given files with the ontology) against the shapes, with
    the SHACL `engine` ("sparql" or "pyshacl").

    Syntax errors in a source, a rule or a named query raise CopkgError (400); SHACL
    violations come back in the outcome.
    """
    store = OxigraphStore()
    if files:
        sources = steps.load_files(settings, store, [Path(f) for f in files], FILES_GRAPH)
    else:
        sources = steps.load_sources(settings, store)
    steps.check_queries(settings)
    steps.infer(settings, store)  # the rules must run on the data, though not validated
    return steps.validate(settings, sources, engine)
