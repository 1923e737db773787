"""SHACL a batch of studies at a time (the build's way at scale) gives the store-wide report."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pyoxigraph as ox
import pytest
from rdflib import Graph, URIRef

from copkg.namespaces import ONTOLOGY_GRAPH, study_graph
from copkg.rdf_io import read_quads
from copkg.validation.report import load_shapes, validate_quads, validate_store
from copkg.validation.shacl import Batch, Originals
from copkg.validation.shacl.locality import local_shapes
from copkg.validation.shacl.shapes import ShapesReader

ROOT = Path(__file__).resolve().parents[1]
ONTOLOGY_FILES = [ROOT / "ontology" / "copkg.ttl", ROOT / "ontology" / "vocabularies.ttl"]
sys.path.insert(0, str(ROOT / "benchmarks"))

import synthetic  # noqa: E402

ID = "https://w3id.org/copkg/id/"
PREFIXES = f"""
PREFIX s0: <{ID}synthetic-00000/>
PREFIX s1: <{ID}synthetic-00001/>
PREFIX s2: <{ID}synthetic-00002/>
PREFIX copkg: <https://w3id.org/copkg/ontology#>
PREFIX owl: <http://www.w3.org/2002/07/owl#>
PREFIX rdfs: <http://www.w3.org/2000/01/rdf-schema#>
PREFIX xsd: <http://www.w3.org/2001/XMLSchema#>
"""

#: Faults each study makes in its own resources (every resource described by one study).
LOCAL_FAULTS = """
s0:q-contexts-10 copkg:page "07"^^xsd:positiveInteger .
s0:fault-quote a copkg:Quote ;
    rdfs:label "a fault"@EN-GB, "another"@en-gb ;
    copkg:page "0"^^xsd:positiveInteger ;
    copkg:quoteText "   " ;
    copkg:quotedIn s0:study ;
    copkg:voice copkg:InformantVoice .
s0:fault-event a copkg:Event ;
    rdfs:label "an event"@en ;
    copkg:date "2003-13"^^xsd:gYearMonth ;
    copkg:hasEvidence s0:q-contexts-10 .
s0:SpecialQuote a owl:Class ; rdfs:label "a special quote"@en ;
    rdfs:subClassOf copkg:Quote .
"""

#: Faults that cross studies: a value whose type another study gives, a link reported by a
#: study that does not state it, and an instance of a class another study declares.
CROSSING_FAULTS = """
s1:wrong-link a copkg:CrossStudyRelation ;
    rdfs:label "a link to an event, not a finding"@en ;
    copkg:subjectFinding s1:themes-1 ;
    copkg:objectFinding s0:fault-event ;
    copkg:reportedIn s0:study .
s2:odd-quote a s0:SpecialQuote ;
    copkg:page "5"^^xsd:positiveInteger ;
    copkg:quotedIn s1:study .
"""


@pytest.fixture(scope="module")
def shapes() -> Graph:
    return load_shapes(ROOT / "ontology" / "shapes.ttl")


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> list[ox.Quad]:
    folder = tmp_path_factory.mktemp("corpus")
    studies = synthetic.write_corpus(folder, 4)
    (studies[0] / "faults.ttl").write_text(PREFIXES + LOCAL_FAULTS, encoding="utf-8")
    crossing = PREFIXES + CROSSING_FAULTS
    (studies[1] / "faults.ttl").write_text(crossing.split("s2:odd-quote")[0], encoding="utf-8")
    (studies[2] / "faults.ttl").write_text(
        PREFIXES + "s2:odd-quote" + crossing.split("s2:odd-quote")[1], encoding="utf-8"
    )
    quads = [q for f in ONTOLOGY_FILES for q in read_quads(f, str(ONTOLOGY_GRAPH))]
    for study in studies:
        for path in sorted(study.glob("*.ttl")):
            quads += read_quads(path, study_graph(study.name))
    return quads


@pytest.mark.parametrize(("size", "spooled"), [(1, False), (3, False), (2, True)])
def test_batches_report_as_the_whole_store(
    corpus: list[ox.Quad], shapes: Graph, tmp_path: Path, size: int, spooled: bool
) -> None:
    store, originals = ox.Store(str(tmp_path / "store")), Originals()
    store.bulk_extend(corpus)
    for quad in corpus:
        if isinstance(quad.object, ox.Literal):
            originals.add(quad.subject, quad.predicate, quad.object)
    ontology = ox.NamedNode(str(ONTOLOGY_GRAPH))
    studies = sorted({q.graph_name for q in corpus if q.graph_name != ontology}, key=str)
    batches: list[Any] = [studies[i : i + size] for i in range(0, len(studies), size)]
    if spooled:  # each batch's triples read from a file, as the build writes them at load
        for number, graphs in enumerate(batches):
            path = tmp_path / f"batch-{number}.nt"
            triples = [ox.Triple(q.subject, q.predicate, q.object) for q in corpus]
            ox.serialize(
                [t for t, q in zip(triples, corpus, strict=True) if q.graph_name in graphs],
                path,
                format=ox.RdfFormat.N_TRIPLES,
            )
            batches[number] = Batch(graphs, path)

    whole = validate_store(store, originals, shapes)
    batched = validate_store(store, originals, shapes, batches, [ontology])

    assert batched.text() == whole.text()
    assert [r.as_dict() for r in batched.results] == [r.as_dict() for r in whole.results]
    assert whole.text() == validate_quads(corpus, shapes).text()

    def found(shape: str, focus: str, value: str = "") -> bool:
        return any(
            r.shape == f"copsh:{shape}" and focus in r.focus and value in (r.value or "")
            for r in whole.results
        )

    # the crossing faults, each seen only with what another study's batch holds
    assert found("CrossStudyReporterShape", "wrong-link", "synthetic-00000"), whole.text()
    assert found("RangeShape", "wrong-link", "fault-event"), whole.text()
    assert found("QuoteTextShape", "odd-quote"), whole.text()
    assert found("QuotePageShape", "q-contexts-10"), whole.text()
    assert not whole.conforms


def test_the_shapes_that_cross_studies_run_on_the_whole_store(shapes: Graph) -> None:
    """Read from the shapes: the ones that follow a link backwards, find focus nodes as
    objects, or read two hops from the focus node are not local; the usual ones are."""
    top = ShapesReader(shapes).top_level()
    local = {str(n).rsplit("#", 1)[-1] for n in local_shapes(top)}
    for shape in (
        "CrossStudyReporterShape",  # reads a linked finding's study's date: two hops
        "DeclaredTermShape",  # focus nodes are predicates, found as used
        "QuoteUsedShape",  # an inverse path
        "BundleAttributionShape",  # the bundle points at the study
        "AgentShape",  # sh:targetObjectsOf
    ):
        assert shape not in local
    for shape in (
        "LabelShape",
        "DomainShape",
        "RangeShape",
        "QuotePageRangeShape",
        "TermLabelShape",
    ):
        assert shape in local
    assert len(local) > len(top) * 3 // 4


def test_a_sparql_constraint_reading_a_graph_or_an_inverse_link_is_not_local() -> None:
    p, q, r = (f"<https://example.org/{name}>" for name in "pqr")
    queries = {
        "Direct": f"$this {p} ?v . ?v {q} ?w",
        "TwoHops": f"$this {p} ?v . ?v {q} ?w . ?w {r} ?x",
        "Inverse": f"$this ^{p} ?v",
        "Named": f"GRAPH ?g {{ $this {p} ?v }}",
        "Incoming": f"FILTER NOT EXISTS {{ ?s {p} $this }}",
    }
    turtle = "@prefix sh: <http://www.w3.org/ns/shacl#> .\n@prefix ex: <https://example.org/> .\n"
    for name, where in queries.items():
        select = f"SELECT $this WHERE {{ {where} }}"
        turtle += f'ex:{name} sh:targetClass ex:A ; sh:sparql [ sh:select "{select}" ] .\n'
    shapes = Graph().parse(data=turtle, format="turtle")
    local = local_shapes(ShapesReader(shapes).top_level())
    assert local == {URIRef("https://example.org/Direct")}
