"""The exports' layout (pipeline.exports), their segments (pipeline.segments) and the splice
`copkg add` writes them with (pipeline.splice): the old segments with a graph inserted and some
inferences changed must join, byte for byte, into the files a full write of the new dataset
gives, wherever the new graph goes; blank nodes are labelled per graph; an abandoned splice
leaves nothing behind; a segment that is not what its manifest names is refused."""

from __future__ import annotations

import hashlib
import os
import random
from pathlib import Path

import pyoxigraph as ox
import pytest

from copkg.errors import CopkgError
from copkg.namespaces import INFERENCE_GRAPH, ONTOLOGY_GRAPH, study_graph
from copkg.pipeline import exports, segments
from copkg.pipeline.build import Manifest
from copkg.pipeline.splice import GraphChange, Splice

INFERENCES = ox.NamedNode(str(INFERENCE_GRAPH))
ONTOLOGY = ox.NamedNode(str(ONTOLOGY_GRAPH))
J04 = "https://w3id.org/copkg/id/josserand2004/"
COPKG = "https://w3id.org/copkg/ontology#"


def iri(text: str) -> ox.NamedNode:
    return ox.NamedNode(text)


def study(name: str, size: int) -> list[ox.Quad]:
    graph = iri(study_graph(name))
    base = f"https://w3id.org/copkg/id/{name}/"
    quads = []
    for i in range(size):
        node = iri(f"{base}finding-{i}")
        quads += [
            ox.Quad(node, iri(f"{COPKG}page"), ox.Literal(str(i + 1)), graph),
            ox.Quad(node, iri(f"{COPKG}about"), iri(f"{J04}role-{i % 3}"), graph),
            ox.Quad(node, iri(f"{COPKG}quote"), ox.Literal(f'a "quote"\nover\tlines {i}'), graph),
        ]
    evidence = ox.BlankNode()  # a blank node in a study graph
    quads.append(ox.Quad(iri(f"{base}finding-0"), iri(f"{COPKG}evidence"), evidence, graph))
    quads.append(ox.Quad(evidence, iri(f"{COPKG}page"), ox.Literal("3"), graph))
    return quads


def ontology() -> list[ox.Quad]:
    quads = []
    for i in range(5):
        restriction = ox.BlankNode()
        cls = iri(f"{COPKG}Class{i}")
        quads += [
            ox.Quad(cls, iri(f"{COPKG}subClassOf"), restriction, ONTOLOGY),
            ox.Quad(restriction, iri(f"{COPKG}onProperty"), iri(f"{COPKG}p{i % 2}"), ONTOLOGY),
        ]
    return quads


def inference(subjects: list[str]) -> list[ox.Quad]:
    quads = []
    for n, subject in enumerate(subjects):
        for k in range(1 + n % 4):
            quads.append(
                ox.Quad(iri(subject), iri(f"{COPKG}derived"), ox.Literal(f"{k}"), INFERENCES)
            )
    return quads


def inference_subjects(count: int) -> list[str]:
    subjects = [f"https://w3id.org/copkg/id/inferred/node-{i:03d}" for i in range(count)]
    # subjects TriG writes as prefixed names (j04:), some with characters it may escape
    subjects += [f"{J04}role-{i}" for i in range(3)] + [f"{J04}role-x.y", f"{J04}role_(z)"]
    return subjects


def full_dataset(new: str) -> tuple[list[ox.Quad], list[ox.Quad]]:
    """The dataset with study `new` and its inferences, and the study's quads."""
    quads = ontology()
    added = []
    for name in ("alpha2001", "beta2002", "gamma2003", new):
        graph = study(name, 12)
        quads += graph
        if name == new:
            added = graph
    return quads + inference(inference_subjects(40)), added


@pytest.fixture(autouse=True)
def small_segments(monkeypatch: pytest.MonkeyPatch) -> None:
    """Inference segments of a few quads, so that the tests' inferences span many."""
    monkeypatch.setattr(segments, "SEGMENT_QUADS", 7)


def written(quads: list[ox.Quad], folder: Path) -> Manifest:
    """The segments and joined files of a dataset written as a build writes them, and a
    manifest with their part of it."""
    folder.mkdir()
    graphs = exports.canonical_graphs(quads)
    files, extra = segments.write(([q] for q in graphs.values()), folder)
    return Manifest(
        sources={}, graphs={}, quads=0, files=files, timings={}, created="", extra=extra
    )


def old_and_full(
    before: list[ox.Quad], everything: list[ox.Quad], tmp_path: Path
) -> tuple[Manifest, Path]:
    """The exports before (tmp/old) and of a full write (tmp/full), the old manifest, and the
    empty folder for the splice (tmp/spliced)."""
    old = written(before, tmp_path / "old")
    written(everything, tmp_path / "full")
    out = tmp_path / "spliced"
    out.mkdir()
    return old, out


def same_as_full(tmp_path: Path, files: dict[str, str], extra: dict) -> None:
    """The spliced segments join into the full write's files; the digests and stats given for
    the manifest are those of the segments in the folder, and no other file is there."""
    out = tmp_path / "spliced"
    joined = tmp_path / "joined"
    joined.mkdir()
    segments.join(out, files, segments.Layout.from_json(extra["segments"]), joined)
    for name in exports.FILES:
        assert (joined / name).read_bytes() == (tmp_path / "full" / name).read_bytes(), name
    for rel, digest in files.items():
        assert hashlib.sha256((out / rel).read_bytes()).hexdigest() == digest, rel
    on_disk = {f"{segments.DIR}/{p.name}" for p in (out / segments.DIR).iterdir()}
    assert on_disk == set(files) == set(extra["segment_stats"])
    assert sorted(p.name for p in out.iterdir()) == [segments.DIR]


@pytest.mark.parametrize("new", ["aardvark1999", "beta2002b", "zeta2010"])
def test_a_splice_gives_the_bytes_of_a_full_write(tmp_path: Path, new: str) -> None:
    """The new graph first, in the middle or last among the sources; inferences added to
    existing subjects, new subjects (before the first segment's, between, after the last's),
    subjects that lose some or all of theirs. The unchanged segments are the old files."""
    everything, study_quads = full_dataset(new)
    rng = random.Random(new)
    inferred = [q for q in everything if q.graph_name == INFERENCES]
    dropped = set(rng.sample(inferred, 25))
    gone = {q for q in inferred if q.subject.value.endswith(("node-007", "role-x.y"))}
    early = iri("https://w3id.org/copkg/id/aaa")
    first = ox.Quad(early, iri(f"{COPKG}d"), ox.Literal("1"), INFERENCES)
    everything.append(first)
    stale = [
        ox.Quad(iri(f"{J04}role-1"), iri(f"{COPKG}stale"), ox.Literal("old"), INFERENCES),
        ox.Quad(iri(f"{J04}zz-gone"), iri(f"{COPKG}stale"), ox.Literal("old"), INFERENCES),
    ]
    before = [q for q in everything if q not in {*study_quads, *dropped, *gone, first}]
    before += stale
    old, out = old_and_full(before, everything, tmp_path)
    graph = study_graph(new)
    added = sorted(dropped | gone | {first}, key=str)
    with Splice(tmp_path / "old", out, old, graph) as splice:
        splice.insert(GraphChange(iri(graph), whole=exports.canonical_graph(study_quads)))
        files, extra = splice.finish([GraphChange(INFERENCES, added=added, removed=stale)])
    same_as_full(tmp_path, files, extra)
    kept = [rel for rel in files if old.files.get(rel) == files[rel] and "/g-" in rel]
    assert len(kept) == 8  # the ontology's and the three other studies', in both formats
    for rel in kept:
        assert os.stat(out / rel).st_ino == os.stat(tmp_path / "old" / rel).st_ino


def test_inferences_with_blank_nodes_are_written_whole(tmp_path: Path) -> None:
    everything, study_quads = full_dataset("zeta2010")
    node = ox.BlankNode()
    more = [
        ox.Quad(iri(f"{J04}role-1"), iri(f"{COPKG}via"), node, INFERENCES),
        ox.Quad(node, iri(f"{COPKG}page"), ox.Literal("4"), INFERENCES),
    ]
    everything += more
    before = [q for q in everything if q not in {*study_quads, *more}]
    old, out = old_and_full(before, everything, tmp_path)
    graph = study_graph("zeta2010")
    whole = exports.canonical_graph(q for q in everything if q.graph_name == INFERENCES)
    with Splice(tmp_path / "old", out, old, graph) as splice:
        splice.insert(GraphChange(iri(graph), whole=exports.canonical_graph(study_quads)))
        files, extra = splice.finish([GraphChange(INFERENCES, whole=whole)])
    same_as_full(tmp_path, files, extra)


def test_the_first_inferences_open_their_block(tmp_path: Path) -> None:
    """A build without inferences, then an add that brings the first ones."""
    everything, study_quads = full_dataset("zeta2010")
    inferred = [q for q in everything if q.graph_name == INFERENCES]
    before = [q for q in everything if q not in {*study_quads, *inferred}]
    old, out = old_and_full(before, everything, tmp_path)
    graph = study_graph("zeta2010")
    with Splice(tmp_path / "old", out, old, graph) as splice:
        splice.insert(GraphChange(iri(graph), whole=exports.canonical_graph(study_quads)))
        files, extra = splice.finish([GraphChange(INFERENCES, added=inferred)])
    same_as_full(tmp_path, files, extra)


def test_the_inferences_come_last_and_each_graph_is_one_block(tmp_path: Path) -> None:
    everything, _ = full_dataset("zeta2010")
    made = written(everything, tmp_path / "out")
    assert len(segments.Layout.from_json(made.extra["segments"]).inferences) > 3
    lines = (tmp_path / "out" / exports.NQUADS).read_text(encoding="utf-8").splitlines()
    order = [line.rsplit(" ", 2)[1] for line in lines]
    blocks = [g for i, g in enumerate(order) if i == 0 or order[i - 1] != g]
    assert len(blocks) == len(set(blocks)) == 6
    assert blocks[-1] == str(INFERENCES) and blocks[0] == str(ONTOLOGY)
    reread = ox.Dataset(ox.parse(path=str(tmp_path / "out" / exports.TRIG)))
    assert len(reread) == len(lines)


def test_blank_nodes_are_labelled_per_graph(tmp_path: Path) -> None:
    """Two graphs with the same shape of blank nodes get labels of their own; adding a graph
    does not relabel the others'."""
    one, two = study("one2001", 2), study("two2002", 2)
    graphs = exports.canonical_graphs(one + two)
    labels = {
        graph: {
            t.value for q in quads for t in (q.subject, q.object) if isinstance(t, ox.BlankNode)
        }
        for graph, quads in graphs.items()
    }
    first, second = labels.values()
    assert len(first) == len(second) == 1 and not first & second
    alone = exports.canonical_graphs(one)
    assert alone[iri(study_graph("one2001"))] == graphs[iri(study_graph("one2001"))]


def test_a_blank_node_in_two_graphs_is_refused() -> None:
    shared = ox.BlankNode()
    quads = [
        ox.Quad(shared, iri(f"{COPKG}p"), ox.Literal("a"), iri(study_graph("one2001"))),
        ox.Quad(iri(f"{J04}x"), iri(f"{COPKG}p"), shared, INFERENCES),
    ]
    with pytest.raises(CopkgError, match=r"blank node .* is in the graphs"):
        exports.canonical_graphs(quads)


def test_an_abandoned_splice_leaves_no_joined_or_temporary_file(tmp_path: Path) -> None:
    everything, _ = full_dataset("zeta2010")
    old = written(everything, tmp_path / "old")
    out = tmp_path / "new"
    out.mkdir()
    with Splice(tmp_path / "old", out, old, study_graph("omega2020")):
        pass  # never finished: a check failed, or the rules did (the folder goes with it)
    assert not [p for p in out.rglob("*") if p.name.startswith(("copkg", "."))]


def test_a_missing_segment_is_reported_as_a_build_to_make_again(tmp_path: Path) -> None:
    everything, _ = full_dataset("zeta2010")
    old = written(everything, tmp_path / "old")
    rel = next(r for r in sorted(old.files) if "/g-" in r)
    (tmp_path / "old" / rel).unlink()
    (tmp_path / "new").mkdir()
    splice = Splice(tmp_path / "old", tmp_path / "new", old, study_graph("omega2020"))
    with splice, pytest.raises(CopkgError, match=r"is missing .*copkg build"):
        splice.finish([])


def test_a_change_that_does_not_fit_the_old_segments_is_refused(tmp_path: Path) -> None:
    """Removing inferences the segments do not hold means they are not what the build wrote."""
    everything, _ = full_dataset("zeta2010")
    old = written(everything, tmp_path / "old")
    (tmp_path / "new").mkdir()
    missing = ox.Quad(iri(f"{J04}role-1"), iri(f"{COPKG}never"), ox.Literal("x"), INFERENCES)
    splice = Splice(tmp_path / "old", tmp_path / "new", old, study_graph("omega2020"))
    with splice, pytest.raises(CopkgError, match="copkg build"):
        splice.finish([GraphChange(INFERENCES, removed=[missing])])


def test_segments_untouched_since_their_build_are_linked_without_hashing(tmp_path: Path) -> None:
    """A segment with the recorded size and time is linked as it is; one touched since is
    hashed, and refused if its bytes are not those its manifest names."""
    everything, _ = full_dataset("zeta2010")
    old = written(everything, tmp_path / "old")
    rel = next(r for r in sorted(old.files) if "/g-" in r)
    path = tmp_path / "old" / rel
    os.utime(path, ns=(0, old.extra["segment_stats"][rel][1] + 1))  # touched, same bytes
    (tmp_path / "new").mkdir()
    with Splice(tmp_path / "old", tmp_path / "new", old, study_graph("omega2020")) as splice:
        files, _ = splice.finish([])
    assert files[rel] == old.files[rel]
    data = bytearray(path.read_bytes())
    data[0:1] = b"X"  # a byte changed, same size
    path.write_bytes(bytes(data))
    (tmp_path / "again").mkdir()
    splice = Splice(tmp_path / "old", tmp_path / "again", old, study_graph("omega2020"))
    with splice, pytest.raises(CopkgError, match="is not the file its manifest names"):
        splice.finish([])


def test_segments_join_into_the_whole_files_however_the_inferences_come(tmp_path: Path) -> None:
    """The inference graph given in chunks that cut a subject's statements (the build gives
    whole subjects; the cut must not depend on it): each subject stays in one segment, and
    the segments join into the files exports.write() gives."""
    everything, _ = full_dataset("zeta2010")
    graphs = exports.canonical_graphs(everything)
    (tmp_path / "whole").mkdir()
    exports.write(graphs, tmp_path / "whole")
    chunked = [
        [quads] if graph != INFERENCES else [quads[i : i + 3] for i in range(0, len(quads), 3)]
        for graph, quads in graphs.items()
    ]
    _, extra = segments.write(chunked, tmp_path / "segmented")
    layout = segments.Layout.from_json(extra["segments"])
    firsts = [first for first, _ in layout.inferences]
    assert len(firsts) > 3 and len(set(firsts)) == len(firsts)
    for name in exports.FILES:
        whole = (tmp_path / "whole" / name).read_bytes()
        assert (tmp_path / "segmented" / name).read_bytes() == whole
        parts = b"".join((tmp_path / "segmented" / rel).read_bytes() for rel in layout.parts(name))
        assert parts == whole
    nquads = [(tmp_path / "segmented" / f"{segments.DIR}/{s}.nq") for _, s in layout.inferences]
    subjects = [{line.split(b" ")[0] for line in p.read_bytes().splitlines()} for p in nquads]
    assert sum(len(s) for s in subjects) == len(set().union(*subjects))
