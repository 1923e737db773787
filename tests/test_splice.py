"""The exports' layout (pipeline.exports) and the splice `copkg add` writes them with
(pipeline.splice): the old files with a graph inserted and some inferences changed must be,
byte for byte, the files a full write of the new dataset gives, wherever the new graph goes;
blank nodes are labelled per graph; an abandoned splice leaves nothing behind."""

from __future__ import annotations

import hashlib
import os
import random
from pathlib import Path

import pyoxigraph as ox
import pytest

from copkg.errors import CopkgError
from copkg.namespaces import INFERENCE_GRAPH, ONTOLOGY_GRAPH, study_graph
from copkg.pipeline import exports
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


def written(quads: list[ox.Quad], folder: Path) -> dict[str, str]:
    folder.mkdir()
    return exports.write(exports.canonical_graphs(quads), folder)


def old_and_full(
    before: list[ox.Quad], everything: list[ox.Quad], tmp_path: Path
) -> tuple[dict[str, str], dict[str, str], list[str], Path]:
    """The exports before (tmp/old) and of a full write (tmp/full), with their hashes, the
    graphs before and the empty folder for the splice (tmp/spliced)."""
    old_hashes = written(before, tmp_path / "old")
    new_hashes = written(everything, tmp_path / "full")
    out = tmp_path / "spliced"
    out.mkdir()
    return old_hashes, new_hashes, sorted({q.graph_name.value for q in before}), out


@pytest.mark.parametrize("new", ["aardvark1999", "beta2002b", "zeta2010"])
def test_a_splice_gives_the_bytes_of_a_full_write(tmp_path: Path, new: str) -> None:
    """The new graph first, in the middle or last among the sources; inferences added to
    existing subjects, new subjects, subjects that lose some or all of theirs; a statement
    added beside blank nodes."""
    everything, study_quads = full_dataset(new)
    rng = random.Random(new)
    inferred = [q for q in everything if q.graph_name == INFERENCES]
    dropped = set(rng.sample(inferred, 25))
    gone = {q for q in inferred if q.subject.value.endswith(("node-007", "role-x.y"))}
    stale = [
        ox.Quad(iri(f"{J04}role-1"), iri(f"{COPKG}stale"), ox.Literal("old"), INFERENCES),
        ox.Quad(iri(f"{J04}zz-gone"), iri(f"{COPKG}stale"), ox.Literal("old"), INFERENCES),
    ]
    # a statement more about a class whose run holds a blank node (labels must not change)
    labelled = ox.Quad(iri(f"{COPKG}Class0"), iri(f"{COPKG}label"), ox.Literal("c"), ONTOLOGY)
    everything.append(labelled)
    before = [q for q in everything if q not in {*study_quads, *dropped, *gone, labelled}]
    before += stale
    old_hashes, new_hashes, graphs, out = old_and_full(before, everything, tmp_path)
    graph = study_graph(new)
    with Splice(tmp_path / "old", out, graphs, graph) as splice:
        changes = [
            GraphChange(iri(graph), whole=exports.canonical_graph(study_quads)),
            GraphChange(INFERENCES, added=sorted(dropped | gone, key=str), removed=stale),
            GraphChange(ONTOLOGY, added=[labelled]),
        ]
        found, made = splice.finish(changes)
    assert found == old_hashes
    assert made == new_hashes
    for name in exports.FILES:
        assert (out / name).read_bytes() == (tmp_path / "full" / name).read_bytes(), name
    assert sorted(p.name for p in out.iterdir()) == sorted(exports.FILES)


@pytest.mark.parametrize("new", ["aardvark1999", "beta2002b", "zeta2010"])
@pytest.mark.parametrize("before_it", [False, True], ids=["after it", "one before it too"])
def test_a_block_inserted_ahead_gives_the_same_bytes(
    tmp_path: Path, new: str, before_it: bool
) -> None:
    """`copkg add` gives the splice the new graph's block before the rules run (its thread
    writes it and copies on to the inferences); the files are those of a full write, also
    when a later change falls before the block (everything is written again)."""
    everything, study_quads = full_dataset(new)
    inferred = [q for q in everything if q.graph_name == INFERENCES]
    dropped = set(random.Random(new).sample(inferred, 25))
    labelled = ox.Quad(iri(f"{COPKG}Class0"), iri(f"{COPKG}label"), ox.Literal("c"), ONTOLOGY)
    if before_it:
        everything.append(labelled)
    before = [q for q in everything if q not in {*study_quads, *dropped, labelled}]
    old_hashes, new_hashes, graphs, out = old_and_full(before, everything, tmp_path)
    graph = study_graph(new)
    with Splice(tmp_path / "old", out, graphs, graph) as splice:
        splice.insert(GraphChange(iri(graph), whole=exports.canonical_graph(study_quads)))
        changes = [GraphChange(INFERENCES, added=sorted(dropped, key=str))]
        changes += [GraphChange(ONTOLOGY, added=[labelled])] if before_it else []
        found, made = splice.finish(changes)
    assert found == old_hashes
    assert made == new_hashes
    for name in exports.FILES:
        assert (out / name).read_bytes() == (tmp_path / "full" / name).read_bytes(), name


def test_the_inferences_come_last_and_each_graph_is_one_block(tmp_path: Path) -> None:
    everything, _ = full_dataset("zeta2010")
    written(everything, tmp_path / "out")
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


def test_an_abandoned_splice_leaves_nothing(tmp_path: Path) -> None:
    everything, _ = full_dataset("zeta2010")
    written(everything, tmp_path / "old")
    out = tmp_path / "new"
    out.mkdir()
    graphs = sorted({q.graph_name.value for q in everything})
    with Splice(tmp_path / "old", out, graphs, study_graph("omega2020")):
        pass  # never finished: a check failed, or the rules did
    assert list(out.iterdir()) == []


@pytest.mark.parametrize("name", [exports.NQUADS, exports.TRIG])
def test_a_missing_export_is_reported_as_a_build_to_make_again(tmp_path: Path, name: str) -> None:
    everything, _ = full_dataset("zeta2010")
    written(everything, tmp_path / "old")
    (tmp_path / "old" / name).unlink()
    (tmp_path / "new").mkdir()
    graphs = sorted({q.graph_name.value for q in everything})
    with pytest.raises(CopkgError, match=f"{name} is missing .*copkg build"):
        Splice(tmp_path / "old", tmp_path / "new", graphs, study_graph("omega2020"))
    assert list((tmp_path / "new").iterdir()) == []


def test_a_change_that_does_not_fit_the_old_file_is_refused(tmp_path: Path) -> None:
    """Removing inferences the file does not hold means it is not the file the build wrote."""
    everything, _ = full_dataset("zeta2010")
    written(everything, tmp_path / "old")
    (tmp_path / "new").mkdir()
    graphs = sorted({q.graph_name.value for q in everything})
    missing = ox.Quad(iri(f"{J04}role-1"), iri(f"{COPKG}never"), ox.Literal("x"), INFERENCES)
    splice = Splice(tmp_path / "old", tmp_path / "new", graphs, study_graph("omega2020"))
    with splice, pytest.raises(CopkgError, match="copkg build"):
        splice.finish([GraphChange(INFERENCES, removed=[missing])])
    assert list((tmp_path / "new").iterdir()) == []
    digest = hashlib.sha256((tmp_path / "old" / exports.NQUADS).read_bytes()).hexdigest()
    assert digest == written(everything, tmp_path / "again")[exports.NQUADS]


def test_files_untouched_since_their_build_are_trusted_without_hashing(tmp_path: Path) -> None:
    everything, _ = full_dataset("zeta2010")
    written(everything, tmp_path / "old")
    recorded = exports.stats(tmp_path / "old")
    assert exports.unchanged(tmp_path / "old", recorded) == set(exports.FILES)
    nquads = tmp_path / "old" / exports.NQUADS
    os.utime(nquads, ns=(0, recorded[exports.NQUADS][1] + 1))  # touched: hashed again
    assert exports.unchanged(tmp_path / "old", recorded) == {exports.TRIG}
    (tmp_path / "new").mkdir()
    graphs = sorted({q.graph_name.value for q in everything})
    trusted = exports.unchanged(tmp_path / "old", recorded)
    with Splice(tmp_path / "old", tmp_path / "new", graphs, study_graph("omega2020"), trusted) as s:
        found, _ = s.finish([])
    assert found == {exports.NQUADS: hashlib.sha256(nquads.read_bytes()).hexdigest()}
