"""The exports kept as segments, so that `copkg add` writes only what changes.

copkg.nq and copkg.trig hold the graphs one block each, the inferences last (pipeline.exports).
A build keeps those bytes cut into segments under build/exports/: the TriG prefixes, one file
per source graph in each format, and the inference graph cut into runs of whole subjects
(about SEGMENT_QUADS quads each), with the TriG lines that open and close its block. The
manifest lists every segment with its SHA-256 (`files`) and says which is which (`extra`:
`segments`); copkg.nq and copkg.trig are the segments joined in that order. An add links the
old build's segments into the new one, writes the new graph's and the inference segments whose
subjects changed, and joins nothing. `copkg build` writes the joined files beside the segments;
`copkg export dataset` writes them from the segments (each checked against the manifest on the
way); either records their digests in build/joined.json.
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import json
import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyoxigraph as ox

from copkg.errors import CopkgError
from copkg.namespaces import INFERENCE_GRAPH
from copkg.pipeline.exports import FILES, TRIG, Output, block, graph_rank, header, subject_run
from copkg.rdf_io import atomic_write, fsync_dir

#: The folder of a build that holds the segments.
DIR = "exports"
#: The digests of the joined files (copkg.nq, copkg.trig) when they are written.
JOINED = "joined.json"
#: About how many quads an inference segment holds (one is cut in two past twice as many). An
#: add at 1,000 studies changes subjects in 20-30 segments: it wrote 9-10 MB of them at 1,000
#: quads a segment, 28-33 MB at 5,000.
SEGMENT_QUADS = 1_000
_SUFFIX = {name: Path(name).suffix for name in FILES}
_HEAD = f"{DIR}/head.trig"
_OPEN = f"{DIR}/inferences-open.trig"
_CLOSE = f"{DIR}/inferences-close.trig"


def _stem(kind: str, key: str) -> str:
    return f"{kind}-{hashlib.sha256(key.encode('utf-8')).hexdigest()[:24]}"


@dataclass
class Layout:
    """Which segment is which: each source graph's stem (non-empty graphs only), and the
    inference segments in order, each with its first subject (as N-Triples writes it)."""

    graphs: dict[str, str] = field(default_factory=dict)
    inferences: list[tuple[str, str]] = field(default_factory=list)

    def parts(self, name: str) -> list[str]:
        """The segments of file `name` in order (paths relative to the build)."""
        suffix = _SUFFIX[name]
        trig = FILES[name] == ox.RdfFormat.TRIG
        parts = [_HEAD] if trig else []
        ranked = sorted(self.graphs, key=lambda g: graph_rank(f"<{g}>".encode()))
        parts += [f"{DIR}/{self.graphs[g]}{suffix}" for g in ranked]
        if self.inferences:
            parts += [_OPEN] if trig else []
            parts += [f"{DIR}/{stem}{suffix}" for _, stem in self.inferences]
            parts += [_CLOSE] if trig else []
        return parts

    def all_parts(self) -> list[str]:
        return sorted({part for name in FILES for part in self.parts(name)})

    def to_json(self) -> dict[str, Any]:
        return {"graphs": self.graphs, "inferences": [list(i) for i in self.inferences]}

    @classmethod
    def from_json(cls, data: Any) -> Layout:
        if not isinstance(data, dict):
            raise CopkgError(
                "the build's manifest does not list its export segments: run `copkg build` again",
                status=500,
            )
        return cls(dict(data["graphs"]), [(s, stem) for s, stem in data["inferences"]])


def graph_stem(graph: str) -> str:
    """The name of a source graph's segments (without the suffix)."""
    return _stem("g", graph)


def inference_stem(first: str) -> str:
    """The name of the inference segment that starts with subject `first` (N-Triples)."""
    return _stem("i", first)


def split(quads: Sequence[ox.Quad]) -> list[Sequence[ox.Quad]]:
    """Sorted quads cut into runs of whole subjects of about SEGMENT_QUADS quads."""
    pieces: list[Sequence[ox.Quad]] = []
    start = 0
    while len(quads) - start > SEGMENT_QUADS * 3 // 2:
        end = start + SEGMENT_QUADS
        while end < len(quads) and quads[end].subject == quads[end - 1].subject:
            end += 1
        pieces.append(quads[start:end])
        start = end
    if start < len(quads):
        pieces.append(quads[start:])
    return pieces


def inference_open() -> bytes:
    """The TriG line that opens the inference graph's block."""
    probe = ox.NamedNode("urn:copkg:probe")
    data = block(TRIG, [ox.Quad(probe, probe, probe, ox.NamedNode(str(INFERENCE_GRAPH)))])
    return data[: data.index(b" {\n") + 3]


class Writer:
    """Segments written into a build folder (`joined`: copkg.nq and copkg.trig too, from the
    same bytes), in export order: graph() for each source graph, then inferences()."""

    def __init__(self, out_dir: Path, *, joined: bool = False) -> None:
        self.out_dir = out_dir
        (out_dir / DIR).mkdir(parents=True, exist_ok=True)
        self.files: dict[str, str] = {}
        self.layout = Layout()
        self.joined = {n: Output(out_dir / n) for n in FILES} if joined else {}
        self._write(_HEAD, header(TRIG), TRIG)
        self._opened = False

    def _write(self, rel: str, data: bytes, name: str) -> None:
        with Output(self.out_dir / rel) as out:
            out.write(data)
        self.files[rel] = out.sha256
        if name in self.joined:
            self.joined[name].write(data)

    def graph(self, graph: str, chunks: Iterable[Sequence[ox.Quad]]) -> None:
        """A source graph's block, given as chunks of its quads in export order."""
        stem = graph_stem(graph)
        opened = False
        with contextlib.ExitStack() as stack:
            outs: dict[str, Output] = {}
            for quads in chunks:
                if not quads:
                    continue
                if not outs:
                    outs = {n: stack.enter_context(Output(self._path(stem, n))) for n in FILES}
                for name, out in outs.items():
                    data = block(name, quads)
                    if FILES[name] == ox.RdfFormat.TRIG:  # one `<g> {` ... `}` for all chunks
                        data = data[data.index(b" {\n") + 3 if opened else 0 : -2]
                    out.write(data)
                    if name in self.joined:
                        self.joined[name].write(data)
                opened = True
            if opened:
                for target in (outs[TRIG], self.joined.get(TRIG)):
                    if target is not None:
                        target.write(b"}\n")
        for name, out in outs.items():
            self.files[self._rel(stem, name)] = out.sha256
        if opened:
            self.layout.graphs[graph] = stem

    def inferences(self, chunks: Iterable[Sequence[ox.Quad]]) -> None:
        """The inference graph, as chunks of its quads in export order."""
        pending: list[ox.Quad] = []
        for quad in itertools.chain.from_iterable(chunks):
            if len(pending) >= SEGMENT_QUADS and quad.subject != pending[-1].subject:
                self.inference_segment(pending)  # a subject's statements in one segment
                pending = []
            pending.append(quad)
        if pending:
            self.inference_segment(pending)
        self.close_inferences()

    def inference_segment(self, quads: Sequence[ox.Quad]) -> None:
        """One inference segment (whole subjects, sorted, after those written before)."""
        if not self._opened:
            self._write(_OPEN, inference_open(), TRIG)
            self._opened = True
        first = str(quads[0].subject)
        stem = self.inference_data(first, {name: subject_run(name, quads) for name in FILES})
        self.layout.inferences.append((first, stem))

    def inference_data(self, first: str, data: dict[str, bytes]) -> str:
        """Write an inference segment's bytes (by file) that start with subject `first`;
        its stem."""
        stem = inference_stem(first)
        for name in FILES:
            self._write(self._rel(stem, name), data[name], name)
        return stem

    def wrap_inferences(self) -> None:
        """Write the TriG lines around the inference segments (if not there: an add's first
        inferences)."""
        for rel, data in ((_OPEN, inference_open()), (_CLOSE, b"}\n")):
            if not (self.out_dir / rel).exists():
                self._write(rel, data, TRIG)

    def close_inferences(self) -> None:
        if self._opened:
            self._write(_CLOSE, b"}\n", TRIG)
            self._opened = False

    def _rel(self, stem: str, name: str) -> str:
        return f"{DIR}/{stem}{_SUFFIX[name]}"

    def _path(self, stem: str, name: str) -> Path:
        return self.out_dir / self._rel(stem, name)

    def finish(self) -> dict[str, str]:
        """Close the files (the folder synced); the segments' SHA-256 by path. The joined
        files' digests go to joined.json."""
        for out in self.joined.values():
            out.close(keep=True)
        fsync_dir(self.out_dir / DIR)
        if self.joined:
            digests = {name: out.sha256 for name, out in self.joined.items()}
            atomic_write(self.out_dir / JOINED, _joined_json(digests))
        return self.files

    def abandon(self) -> None:
        """Remove the joined files begun (the segments go with the folder)."""
        for out in self.joined.values():
            with contextlib.suppress(OSError, ValueError):
                out.close(keep=False)
        self.joined = {}


def write(
    graphs: Iterable[Iterable[Sequence[ox.Quad]]], out_dir: Path
) -> tuple[dict[str, str], dict[str, Any]]:
    """Write the segments and the joined files of graphs given in export order, each as
    chunks of its quads (as exports.write_chunked takes them). Returns the segments' SHA-256
    by path and the manifest's `extra` for them."""
    writer = Writer(out_dir, joined=True)
    try:
        inferences = str(ox.NamedNode(str(INFERENCE_GRAPH)))
        for given in graphs:
            chunks = iter(given)
            first = next((c for c in chunks if c), None)
            if first is None:
                continue
            graph = first[0].graph_name
            rest = itertools.chain([first], chunks)
            if str(graph) == inferences:
                writer.inferences(rest)
            else:
                writer.graph(graph.value, rest)  # type: ignore[union-attr]
        files = writer.finish()
    except BaseException:
        writer.abandon()
        raise
    return files, extra(writer.layout, out_dir)


def extra(
    layout: Layout, folder: Path, known: dict[str, list[int]] | None = None
) -> dict[str, Any]:
    """What a manifest's `extra` says of the segments: the layout, and each segment's size
    and modification time (`known` for those linked unchanged), so that an add can trust
    files not touched since without reading them."""
    known = known or {}
    stats = {rel: known.get(rel) or _stat(folder / rel) for rel in layout.all_parts()}
    return {"segments": layout.to_json(), "segment_stats": stats}


def _stat(path: Path) -> list[int]:
    info = os.stat(path)
    return [info.st_size, info.st_mtime_ns]


def stat_matches(path: Path, recorded: list[int] | None) -> bool:
    """Whether a file still has the size and modification time recorded."""
    try:
        return recorded is not None and _stat(path) == list(recorded)
    except OSError:
        return False


def _joined_json(digests: dict[str, str]) -> bytes:
    return json.dumps({"files": digests}, indent=2, sort_keys=True).encode("utf-8") + b"\n"


def joined_digests(build_dir: Path) -> dict[str, str]:
    """The joined files of a build and their SHA-256 (none before `copkg export`)."""
    try:
        data = json.loads((build_dir / JOINED).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise CopkgError(
            f"{build_dir / JOINED} is unreadable ({exc}): run `copkg export`", status=500
        ) from exc
    return {name: digest for name, digest in data["files"].items() if name in FILES}


def read_verified(build_dir: Path, rel: str, digest: str | None) -> bytes:
    """A segment's bytes, refused unless they have the SHA-256 its manifest names."""
    path = build_dir / rel
    try:
        data = path.read_bytes()
    except FileNotFoundError as exc:
        raise CopkgError(
            f"{path} is missing from the build: run `copkg build` again", status=500
        ) from exc
    if hashlib.sha256(data).hexdigest() != digest:
        raise not_in_manifest(path)
    return data


def not_in_manifest(path: Path) -> CopkgError:
    return CopkgError(
        f"{path} is not the file its manifest names: run `copkg build` again", status=500
    )


def join(build_dir: Path, files: dict[str, str], layout: Layout, out_dir: Path) -> dict[str, str]:
    """Write copkg.nq and copkg.trig into out_dir from the segments of the build in build_dir
    (each checked against `files`, its manifest's digests, on the way); their SHA-256."""
    digests = {}
    for name in FILES:
        with Output(out_dir / name) as out:
            for rel in layout.parts(name):
                for data in _verified_chunks(build_dir / rel, files.get(rel)):
                    out.write(data)
        digests[name] = out.sha256
    return digests


def _verified_chunks(path: Path, digest: str | None) -> Iterator[bytes]:
    check = hashlib.sha256()
    try:
        with path.open("rb") as handle:
            for data in iter(lambda: handle.read(1 << 20), b""):
                check.update(data)
                yield data
    except FileNotFoundError as exc:
        raise CopkgError(
            f"{path} is missing from the build: run `copkg build` again", status=500
        ) from exc
    if check.hexdigest() != digest:
        raise not_in_manifest(path)


def write_joined(build_dir: Path, files: dict[str, str], layout: Layout) -> dict[str, str]:
    """`copkg export`: the joined files written into the build itself, and their digests
    recorded in joined.json (the build's manifest, and so its identity, unchanged)."""
    digests = join(build_dir, files, layout, build_dir)
    atomic_write(build_dir / JOINED, _joined_json(digests))
    return digests
