"""Add one study's named graph to the build without rebuilding the rest (`copkg add`).

The new build is made next to build/: its store is a snapshot of the old one (a RocksDB
checkpoint: hard links, cheap at any size) with the new graph loaded and the rules run
incrementally over it; its exports are the old files with the new graph's block and the
changed runs of the inference graph spliced in (see pipeline.exports: nothing else is parsed,
sorted or written again); its manifest is the old one with the new graph's counts. Then the
study is placed into data/studies/ and the new build swapped in. The result is the build
`copkg build` would make of the corpus with the study in it (the tests compare the exports
byte for byte).
"""

from __future__ import annotations

import gc
import shutil
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyoxigraph as ox

from copkg.config import Settings
from copkg.errors import CopkgError
from copkg.namespaces import INFERENCE_GRAPH
from copkg.pipeline import build_cache, exports
from copkg.pipeline.build import (
    MANIFEST,
    STORE_DIR,
    TMP_PREFIX,
    Manifest,
    build_locked,
    recover,
    swap_in,
)
from copkg.pipeline.build_cache import PaperIndex
from copkg.pipeline.splice import GraphChange, Splice
from copkg.rdf_io import atomic_write
from copkg.reasoning import hermit_classes
from copkg.reasoning.incremental import InferenceDelta, materialise_increment
from copkg.reasoning.rule_shapes import analyse
from copkg.reasoning.rules import load_rules
from copkg.store.embedded import OxigraphStore

#: Puts the study into the corpus and returns what takes it out again.
Place = Callable[[], Callable[[], None]]


class Extension:
    """A new build with one graph more, made in a folder next to build/: begun before the
    checks of the study (the exports start copying at once, pipeline.splice), finished by
    extend_build, or discarded."""

    def __init__(self, settings: Settings, graph: str, old: Manifest | None = None) -> None:
        """`old`: the build's manifest, if the caller has read it (under the build lock)."""
        self.settings = settings
        self.graph = graph
        self.old = old or Manifest.read(settings.build_dir)
        self.work = Path(
            tempfile.mkdtemp(
                prefix=f"{TMP_PREFIX}{settings.build_dir.name}-", dir=settings.build_dir.parent
            )
        )
        #: the old build's paper index (build_cache), if the caller has it: kept extended
        self.papers: PaperIndex | None = None
        self._rules = threading.Thread(
            target=_read_rules,
            args=(settings.rules_dir,),
            name="copkg-rules",
            daemon=True,
        )
        self._rules.start()
        try:
            self.work.chmod(0o755)
            self.splice = Splice(settings.build_dir, self.work, self.old, graph)
        except BaseException:
            self._rules.join()
            shutil.rmtree(self.work, ignore_errors=True)
            raise

    def rules_read(self) -> None:
        """Wait for the rules to be read (begun with the extension)."""
        self._rules.join()

    def discard(self) -> None:
        """Stop and remove what is not swapped in (nothing once it is); no thread is left."""
        self.splice.close()
        self._rules.join()
        shutil.rmtree(self.work, ignore_errors=True)


def extend_build(
    settings: Settings,
    graph: str,
    quads: list[ox.Quad],
    hashes: dict[str, str],
    place: Place,
    *,
    incremental: bool = True,
    ready: Callable[[], None] = lambda: None,
    extension: Extension | None = None,
) -> Manifest:
    """Make the build hold `graph` (the quads of a checked study, `hashes` its files by path
    relative to the project) and put the study into the corpus with `place`.

    `extension` is the new build begun for it (else it is begun now). `ready` is called once
    the new build is made, before anything changes: the last checks (HermiT, run meanwhile)
    raise there to stop the add. `incremental=False` (no build yet, a stale one, or asked for)
    places the study and runs the whole build instead. On any failure the study is taken out
    again and build/ is left as it was. The caller holds the build lock (pipeline.locked).
    """
    if not incremental:
        ready()
        undo = place()
        try:
            return build_locked(settings)
        except BaseException:
            undo()
            raise
    extension = extension or Extension(settings, graph)
    try:
        manifest = _extend_into(extension, quads, hashes)
        ready()
        build_cache.carry(settings.build_dir, extension.work, hermit_classes.PREFIX)
        undo = place()
        try:
            swap_in(extension.work, settings.build_dir)
        except BaseException:
            undo()
            recover(settings)
            raise
    finally:
        extension.discard()
    return manifest


def can_extend(manifest: Manifest) -> bool:
    """Whether a build's exports can be spliced (an older layout needs a full build)."""
    return manifest.extra.get("exports") == exports.LAYOUT


def _extend_into(extension: Extension, quads: list[ox.Quad], hashes: dict[str, str]) -> Manifest:
    settings, graph, old, work = extension.settings, extension.graph, extension.old, extension.work
    if graph in old.graphs:
        raise CopkgError(f"the build already holds the graph {graph}", status=409)
    timings: dict[str, float] = {}

    def timed(name: str, step: Callable[..., Any], *args: Any) -> Any:
        start = time.perf_counter()
        result = step(*args)
        timings[name] = round(time.perf_counter() - start, 4)
        return result

    # the new graph's block is known now: the splice writes it, and copies on, meanwhile
    block = GraphChange(ox.NamedNode(graph), whole=exports.canonical_graph(quads))
    timed("block", extension.splice.insert, block)
    timed("snapshot", snapshot, settings.build_dir / STORE_DIR, work / STORE_DIR)
    store = OxigraphStore(work / STORE_DIR)
    try:
        timed("load", store.native.extend, quads)
        timed("rules_wait", extension.rules_read)
        delta = timed("infer", infer_increment, settings, store, graph)
        changes = timed("changes", inference_changes, store, delta)
        if extension.papers is not None:
            moved = [*delta.added, *delta.removed]
            index = timed("papers", extension.papers.extended, store.native, graph, moved)
            if index is not None:
                index.write(work)
        added = sum(
            1 for _ in store.native.quads_for_pattern(None, None, None, ox.NamedNode(graph))
        )
        timed("flush", store.flush)
    finally:
        del store
        gc.collect()  # close RocksDB before the folder is renamed and reopened read-only
    timed("export_wait", extension.splice.wait)  # for the old segments linked meanwhile
    files, segmented = timed("export", extension.splice.finish, changes)
    inferences = str(INFERENCE_GRAPH)
    graphs = {**old.graphs, graph: added}
    graphs[inferences] = graphs.get(inferences, 0) + len(delta.added) - len(delta.removed)
    manifest = Manifest(
        sources={**old.sources, **hashes},
        graphs=graphs,
        quads=old.quads + added + len(delta.added) - len(delta.removed),
        files=files,
        timings=timings,
        created=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        validated=old.validated,
        extra={
            "added": graph,
            "exports": exports.LAYOUT,
            **segmented,
            "source_stats": old.extra.get("source_stats", {}),  # the new files are not in it
        }
        | ({"inference": f"from scratch: {delta.fallback}"} if delta.fallback else {}),
    )
    atomic_write(work / MANIFEST, manifest.to_json())
    return manifest


def snapshot(store_dir: Path, target: Path) -> None:
    """A consistent copy of the build's store (a checkpoint: hard links where it can)."""
    source = OxigraphStore.open_read_only(store_dir)
    try:
        source.backup(target)
    finally:
        del source
        gc.collect()


def _read_rules(rules_dir: Path) -> None:
    """Parse and analyse the rules ahead of the incremental inference (which keeps each rule's
    analysis: ~0.1 s a rule with rdflib's SPARQL parser), while the checks run; any problem is
    left for the inference to report. (Not kept with the build: an analysis holds terms that
    only pickle could keep, and a pickle in build/ would run as code whoever wrote it.)"""
    try:
        for rule in load_rules(rules_dir):
            analyse(rule.name, rule.text)
    except Exception:  # noqa: BLE001 - only a head start
        return


def infer_increment(settings: Settings, store: OxigraphStore, graph: str) -> InferenceDelta:
    """Bring the store's inference graph up to date with `graph` (new in the store): what a
    full materialisation gives. Returns how it changed."""
    return materialise_increment(store, settings.rules_dir, graph)


def inference_changes(store: OxigraphStore, delta: InferenceDelta) -> list[GraphChange]:
    """What the exports get of the inferences: those added and removed (or the whole
    inference graph again when blank nodes come or go: canonical labels depend on all the
    quads that mention blank nodes). The new graph's block goes to the splice ahead."""
    inference = ox.NamedNode(str(INFERENCE_GRAPH))
    moved = [*delta.added, *delta.removed]
    if not moved:
        return []
    if any(isinstance(t, ox.BlankNode) for q in moved for t in (q.subject, q.object)):
        whole = store.native.quads_for_pattern(None, None, None, inference)
        return [GraphChange(inference, whole=exports.canonical_graph(whole))]
    return [GraphChange(inference, added=delta.added, removed=delta.removed)]
