"""Add one study's named graph to the build without rebuilding the rest (`copkg add`).

The new build is made next to build/ from a snapshot of its store (a RocksDB checkpoint: hard
links, cheap at any size), the new graph loaded, the rules run again from scratch, the exports
written again; then the study is placed into data/studies/ and the new build swapped in. The
result is the build `copkg build` would make of the corpus with the study in it (the tests
compare the N-Quads byte for byte).
"""

from __future__ import annotations

import gc
import hashlib
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyoxigraph as ox

from copkg.config import Settings
from copkg.errors import CopkgError
from copkg.namespaces import INFERENCE_GRAPH
from copkg.pipeline import steps
from copkg.pipeline.build import (
    _TMP_PREFIX,
    MANIFEST,
    STORE_DIR,
    Manifest,
    _build_locked,
    _recover,
    _swap_in,
)
from copkg.rdf_io import atomic_write
from copkg.store.embedded import OxigraphStore

#: Puts the study into the corpus and returns what takes it out again.
Place = Callable[[], Callable[[], None]]


def extend_build(
    settings: Settings,
    graph: str,
    quads: list[ox.Quad],
    hashes: dict[str, str],
    place: Place,
    *,
    incremental: bool = True,
) -> Manifest:
    """Make the build hold `graph` (the quads of a checked study, `hashes` its files by path
    relative to the project) and put the study into the corpus with `place`.

    `incremental=False` (no build yet, a stale one, or asked for) places the study and runs
    the whole build instead. On any failure the study is taken out again and build/ is left as
    it was. The caller holds the build lock (pipeline.locked).
    """
    if not incremental:
        undo = place()
        try:
            return _build_locked(settings)
        except BaseException:
            undo()
            raise
    work = Path(
        tempfile.mkdtemp(
            prefix=f"{_TMP_PREFIX}{settings.build_dir.name}-", dir=settings.build_dir.parent
        )
    )
    work.chmod(0o755)
    try:
        manifest = _extend_into(settings, work, graph, quads, hashes)
        undo = place()
        try:
            _swap_in(work, settings.build_dir)
        except BaseException:
            undo()
            _recover(settings)
            raise
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    return manifest


def _extend_into(
    settings: Settings, work: Path, graph: str, quads: list[ox.Quad], hashes: dict[str, str]
) -> Manifest:
    old = Manifest.read(settings.build_dir)
    if graph in old.graphs:
        raise CopkgError(f"the build already holds the graph {graph}", status=409)
    timings: dict[str, float] = {}

    def timed(name: str, step: Callable[..., Any], *args: Any) -> Any:
        start = time.perf_counter()
        result = step(*args)
        timings[name] = round(time.perf_counter() - start, 4)
        return result

    timed("snapshot", snapshot, settings.build_dir / STORE_DIR, work / STORE_DIR)
    store = OxigraphStore(work / STORE_DIR)
    try:
        timed("load", store.native.extend, quads)
        inferred = timed("infer", infer_again, settings, store)
        sources = timed("sources", written_sources, settings.build_dir, old, quads)
        files = timed("export", steps.export, sources, inferred, work)
        graphs = steps.graph_counts(store)
        count = store.quad_count()
        store.flush()
    finally:
        del store
        gc.collect()  # close RocksDB before the folder is renamed and reopened read-only
    manifest = Manifest(
        sources={**old.sources, **hashes},
        graphs=graphs,
        quads=count,
        files=files,
        timings=timings,
        created=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        validated=old.validated,
        extra={"added": graph},
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


def infer_again(settings: Settings, store: OxigraphStore) -> Any:
    """Run the rules from scratch: the old inferences are removed first, so the result is what
    a full build derives (a rule with NOT EXISTS may retract what it derived before)."""
    store.replace_graph(str(INFERENCE_GRAPH), [])
    return steps.infer(settings, store)


def written_sources(build_dir: Path, manifest: Manifest, quads: list[ox.Quad]) -> steps.Sources:
    """The sources as written (build/copkg.nq without the inferences) plus the new quads."""
    path = build_dir / "copkg.nq"
    data = path.read_bytes()
    if hashlib.sha256(data).hexdigest() != manifest.files.get("copkg.nq"):
        raise CopkgError(
            f"{path} is not the file its manifest names: run `copkg build` again", status=500
        )
    inference = ox.NamedNode(str(INFERENCE_GRAPH))
    written = [q for q in ox.parse(data, format=ox.RdfFormat.N_QUADS) if q.graph_name != inference]
    return steps.Sources(quads=written + list(quads))
