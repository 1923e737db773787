"""Write a build's exports again with one graph more (`copkg add`), a segment at a time.

The exports are kept as segments (pipeline.segments): a file per source graph and runs of the
inference graph's subjects. `Splice` links the old build's segments into the new build at
once (hard links: nothing is read or written again; a segment whose size or time is not the
one recorded is hashed and refused if it is not what the manifest names), `insert` writes the
new graph's segments as soon as the checks are done, and `finish` writes again only the
inference segments whose subjects changed (parsed, changed and cut again where they grew).
"""

from __future__ import annotations

import bisect
import contextlib
import os
import threading
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyoxigraph as ox

from copkg.errors import CopkgError
from copkg.namespaces import INFERENCE_GRAPH
from copkg.pipeline import runs, segments
from copkg.pipeline.build import Manifest
from copkg.pipeline.exports import FILES, NQUADS, TRIG, Subject, sorted_quads, subject_run
from copkg.pipeline.segments import Layout, Writer


@dataclass(frozen=True)
class GraphChange:
    """What changes in one graph: its quads whole (`whole`, as canonical_graph() gives them: a
    graph new to the files, or one written again), or some quads added and some removed
    (without blank nodes: the runs of their subjects are written again)."""

    graph: ox.NamedNode
    whole: list[ox.Quad] | None = None
    added: Sequence[ox.Quad] = ()
    removed: Sequence[ox.Quad] = ()


class Splice:
    """The exports of the build in old_dir (manifest `old`) being made in new_dir with the
    graph `graph` added: begun at once, finished by finish(), or abandoned by close()."""

    def __init__(self, old_dir: Path, new_dir: Path, old: Manifest, graph: str) -> None:
        self.old_dir, self.new_dir, self.old = old_dir, new_dir, old
        self.graph = graph
        self.layout = Layout.from_json(old.extra.get("segments"))
        self.layout = Layout(dict(self.layout.graphs), list(self.layout.inferences))
        self.recorded: dict[str, list[int]] = old.extra.get("segment_stats", {})
        self.writer = Writer(new_dir)  # writes the TriG prefixes: the same bytes as the old
        self._failure: BaseException | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._link, name="copkg-splice", daemon=True)
        self._thread.start()

    def _link(self) -> None:
        try:
            for rel in self.layout.all_parts():
                if self._stop.is_set():
                    return
                source, target = self.old_dir / rel, self.new_dir / rel
                if target.exists():  # written by the Writer already (the TriG prefixes)
                    continue
                if not segments.stat_matches(source, self.recorded.get(rel)):
                    segments.read_verified(self.old_dir, rel, self.old.files.get(rel))
                os.link(source, target)
        except FileNotFoundError as exc:
            self._failure = CopkgError(
                f"{exc.filename} is missing from the build: run `copkg build` again", status=500
            )
        except BaseException as exc:  # noqa: BLE001 - handed to finish()
            self._failure = exc

    def insert(self, change: GraphChange) -> None:
        """Write the new graph's segments (a whole change), before the others are known."""
        if change.whole is None or change.graph.value != self.graph:
            raise CopkgError("only the new graph, whole, is inserted ahead", status=500)
        self.writer.graph(self.graph, [change.whole])

    def wait(self) -> None:
        """Wait until the old segments are linked."""
        self._thread.join()
        if self._failure is not None:
            raise self._failure

    def finish(self, changes: Sequence[GraphChange]) -> tuple[dict[str, str], dict[str, Any]]:
        """Write the inference segments that change; the segments' SHA-256 by path and the
        manifest's `extra` for them."""
        self.wait()
        inferences = ox.NamedNode(str(INFERENCE_GRAPH))
        for change in changes:
            if change.graph != inferences:
                raise CopkgError(f"cannot change the graph <{change.graph.value}> in place", 500)
            if change.whole is not None:
                self._replace(range(len(self.layout.inferences)), [change.whole])
            else:
                self._change(change)
        if self.layout.inferences:
            self.writer.wrap_inferences()
        known = {rel: self.recorded[rel] for rel in self.recorded if rel not in self.writer.files}
        layout = self.writer.layout
        layout.inferences = self.layout.inferences
        layout.graphs = {**self.layout.graphs, **layout.graphs}
        parts = layout.all_parts()
        files = {rel: self.writer.files.get(rel) or self.old.files[rel] for rel in parts}
        self.writer.finish()
        return files, segments.extra(layout, self.new_dir, known)

    def _change(self, change: GraphChange) -> None:
        """Some inferences added and removed: their subjects' segments written again."""
        moved = [*change.added, *change.removed]
        if any(isinstance(t, ox.BlankNode) for q in moved for t in (q.subject, q.object)):
            raise CopkgError("blank nodes cannot be spliced: write the graph whole", status=500)
        firsts = [first for first, _ in self.layout.inferences]
        touched: dict[int, tuple[list[ox.Quad], list[ox.Quad]]] = defaultdict(lambda: ([], []))
        for kind, quads in ((0, change.added), (1, change.removed)):
            for quad in quads:
                at = max(bisect.bisect_right(firsts, str(quad.subject)) - 1, 0)
                touched[at][kind].append(quad)
        if not firsts:
            if change.removed:
                raise _damaged("the inference graph has nothing to remove")
            self._replace(range(0), [sorted_quads(change.added)])
            return
        for at in sorted(touched, reverse=True):  # from the end: the indices before stay
            self._edit(at, *touched[at])

    def _edit(self, at: int, added: list[ox.Quad], removed: list[ox.Quad]) -> None:
        """One inference segment with the runs of the subjects that change written again (the
        rest of its bytes as they were: nothing else is parsed or sorted)."""
        _, stem = self.layout.inferences[at]
        old = {
            name: segments.read_verified(self.old_dir, rel, self.old.files.get(rel))
            for name in FILES
            for rel in [f"{segments.DIR}/{stem}{Path(name).suffix}"]
        }
        nquads = runs.Lines(old[NQUADS], 0, len(old[NQUADS]), runs.nquads_subject)
        trig = b"\n" + old[TRIG]  # a run starts after a line break
        groups = runs.TrigRuns(trig, 1, len(trig), runs.trig_subject)
        by_subject: dict[Subject, tuple[set[ox.Quad], set[ox.Quad]]] = defaultdict(
            lambda: (set(), set())
        )
        for quad in added:
            by_subject[quad.subject][0].add(quad)  # type: ignore[index]
        for quad in removed:
            by_subject[quad.subject][1].add(quad)  # type: ignore[index]
        edits: dict[str, list[tuple[int, int, bytes]]] = {NQUADS: [], TRIG: []}
        for subject, (more, fewer) in by_subject.items():
            key = str(subject).encode("utf-8")
            first, last = nquads.run(key)
            before = set(ox.parse(old[NQUADS][first:last], format=ox.RdfFormat.N_QUADS))
            if not fewer <= before:
                raise _damaged(f"inferences of {subject} to remove are not in its segment")
            now = sorted_quads((before - fewer) | more)
            edits[NQUADS].append((first, last, subject_run(NQUADS, now) if now else b""))
            start, end = groups.run(key)
            edits[TRIG].append((start - 1, end - 1, subject_run(TRIG, now) if now else b""))
        made = {name: _apply(old[name], edits[name]) for name in FILES}
        if made[NQUADS].count(b"\n") > 2 * segments.SEGMENT_QUADS:  # cut in two or more
            quads = list(ox.parse(made[NQUADS], format=ox.RdfFormat.N_QUADS))
            self._replace(range(at, at + 1), [quads])
        elif not made[NQUADS]:
            self._replace(range(at, at + 1), [])
        else:
            self._unlink(stem)
            head = made[NQUADS][: made[NQUADS].index(b" ")].decode("utf-8")
            self.layout.inferences[at] = (head, self.writer.inference_data(head, made))

    def _replace(self, spans: range, quads: list[list[ox.Quad]]) -> None:
        """Put the segments cut from `quads` (lists of sorted quads) in place of those at
        `spans`."""
        pieces = [p for run in quads for p in segments.split(run) if p]
        for _, stem in (self.layout.inferences[i] for i in spans):
            self._unlink(stem)
        before = len(self.writer.layout.inferences)
        for piece in pieces:
            self.writer.inference_segment(piece)
        written = self.writer.layout.inferences[before:]
        self.layout.inferences[spans.start : spans.stop] = written
        if not self.layout.inferences:
            self._drop_wrapper()

    def _unlink(self, stem: str) -> None:
        """Take an inference segment linked from the old build out of the new."""
        for name in FILES:
            with contextlib.suppress(FileNotFoundError):
                (self.new_dir / segments.DIR / f"{stem}{Path(name).suffix}").unlink()

    def _drop_wrapper(self) -> None:
        for rel in ("inferences-open.trig", "inferences-close.trig"):
            with contextlib.suppress(FileNotFoundError):
                (self.new_dir / segments.DIR / rel).unlink()

    def close(self) -> None:
        """Stop linking (if not finished); the new folder goes with the extension."""
        self._stop.set()
        self._thread.join()
        self.writer.abandon()

    def __enter__(self) -> Splice:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


def _apply(data: bytes, edits: list[tuple[int, int, bytes]]) -> bytes:
    """`data` with each span start:end replaced (the spans apart)."""
    parts, at = [], 0
    for start, end, new in sorted(edits):
        parts += [data[at:start], new]
        at = end
    return b"".join([*parts, data[at:]])


def _damaged(why: str) -> CopkgError:
    return CopkgError(
        f"the build's export segments are not as a build writes them ({why}): run `copkg "
        "build` again",
        status=500,
    )
