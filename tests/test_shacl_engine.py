"""The SPARQL SHACL engine (copkg.validation.shacl) reports what pyshacl reports, result for result.

tests/test_shapes.py compares the engines on every example of tests/shapes and on the shipped
studies; here: a synthetic corpus with faults injected, shapes using the features shapes.ttl
does not, and the refusal of features the engine lacks.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pyoxigraph as ox
import pytest
from rdflib import Graph

from copkg.errors import CopkgError
from copkg.namespaces import ONTOLOGY_GRAPH, study_graph
from copkg.rdf_io import read_quads
from copkg.validation.ontology import load_ontology
from copkg.validation.report import (
    ValidationReport,
    load_shapes,
    validate,
    validate_quads,
    validate_store,
)
from copkg.validation.shacl import Originals
from copkg.validation.shacl import engine as shacl_engine

ROOT = Path(__file__).resolve().parents[1]
ONTOLOGY_FILES = [ROOT / "ontology" / "copkg.ttl", ROOT / "ontology" / "vocabularies.ttl"]
sys.path.insert(0, str(ROOT / "benchmarks"))

import synthetic  # noqa: E402

#: pyshacl runs on rdflib's SPARQL, without the costs that are rdflib's (see conftest)
pytestmark = pytest.mark.usefixtures("rdflib_sparql_fast")

PREFIXES = """
PREFIX s: <https://w3id.org/copkg/id/synthetic-00000/>
PREFIX copkg: <https://w3id.org/copkg/ontology#>
PREFIX rdfs: <http://www.w3.org/2000/01/rdf-schema#>
PREFIX xsd: <http://www.w3.org/2001/XMLSchema#>
PREFIX sh: <http://www.w3.org/ns/shacl#>
PREFIX ex: <https://example.org/>
"""

#: Faults in a synthetic study, several of them in literals a store writes differently.
FAULTS = (
    PREFIXES
    + """
s:q-contexts-10 copkg:page "07"^^xsd:positiveInteger .
s:study copkg:lastPage "1"^^xsd:positiveInteger .
s:fault-quote a copkg:Quote ;
    rdfs:label "a fault"@EN-GB, "another"@en-gb, "un défaut"@fr ;
    copkg:page "0"^^xsd:positiveInteger ;
    copkg:quoteText "   " ;
    copkg:quotedIn s:study ;
    copkg:voice copkg:InformantVoice .
s:fault-finding a copkg:Finding ;
    rdfs:label "one"@en, "two"@en ;
    copkg:statement "A statement"^^xsd:string, "Une phrase"@FR ;
    copkg:voice copkg:AuthorVoce ;
    copkg:riskyUnder copkg:InputControl ;
    copkg:hasEvidence s:fault-quote ;
    copkg:reportedIn s:study .
s:fault-event a copkg:Event ;
    rdfs:label "an event"@en ;
    copkg:date "2003-13"^^xsd:gYearMonth, "1"^^xsd:boolean ;
    copkg:rank "1.50"^^xsd:decimal ;
    copkg:hasEvidence s:q-contexts-10 .
"""
)


@pytest.fixture(scope="module")
def shapes() -> Graph:
    return load_shapes(ROOT / "ontology" / "shapes.ttl")


@pytest.fixture(scope="module")
def ontology() -> Graph:
    return load_ontology(ONTOLOGY_FILES)


def assert_same(reference: ValidationReport, report: ValidationReport) -> None:
    """Same conformance and the same results (severity, shape, focus, path, value, message)."""
    expected = [r.as_dict() for r in reference.results]
    found = [r.as_dict() for r in report.results]
    assert report.conforms == reference.conforms
    assert found == expected, (
        f"only pyshacl: {[r for r in expected if r not in found]}\n"
        f"only sparql: {[r for r in found if r not in expected]}"
    )


@pytest.fixture(scope="module")
def faulty_corpus(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    folder = tmp_path_factory.mktemp("corpus")
    studies = synthetic.write_corpus(folder, 3)
    (studies[0] / "faults.ttl").write_text(FAULTS, encoding="utf-8")
    # the same statements in a second graph: the shapes see the merge, each triple once
    (studies[1] / "faults.ttl").write_text(FAULTS, encoding="utf-8")
    return studies


def _corpus_quads(studies: list[Path]) -> list[ox.Quad]:
    quads = [q for f in ONTOLOGY_FILES for q in read_quads(f, str(ONTOLOGY_GRAPH))]
    for study in studies:
        for path in sorted(study.glob("*.ttl")):
            quads += read_quads(path, study_graph(study.name))
    return quads


@pytest.mark.slow
def test_synthetic_corpus_with_faults_as_quads(faulty_corpus: list[Path], shapes: Graph) -> None:
    quads = _corpus_quads(faulty_corpus)
    report = validate_quads(quads, shapes)
    assert_same(validate_quads(quads, shapes, engine="pyshacl"), report)
    found = {r.shape for r in report.results}
    for shape in ("DatatypeRangeShape", "QuotePageShape", "StudyPageOrderShape", "LabelShape"):
        assert f"copsh:{shape}" in found, report.text()
    assert not report.conforms and len(report.results) >= 15
    values = {r.value for r in report.results}
    assert '"07"^^<http://www.w3.org/2001/XMLSchema#positiveInteger>' in values, report.text()


def test_a_store_validated_where_it_is_reports_as_the_merge(
    faulty_corpus: list[Path], shapes: Graph, tmp_path: Path
) -> None:
    """The build validates its on-disk store, the union of its graphs (a triple in two graphs
    counts twice there), and gets the report of the merge: the same results, none twice."""
    quads = _corpus_quads(faulty_corpus)
    store, originals = ox.Store(str(tmp_path / "store")), Originals()
    store.bulk_extend(quads)
    for quad in quads:
        if isinstance(quad.object, ox.Literal):
            originals.add(quad.subject, quad.predicate, quad.object)
    report = validate_store(store, originals, shapes)
    assert_same(validate_quads(quads, shapes), report)
    assert len({tuple(r.as_dict().items()) for r in report.results}) == len(report.results)
    assert not report.conforms


def test_synthetic_corpus_with_faults_as_graphs(
    faulty_corpus: list[Path], shapes: Graph, ontology: Graph
) -> None:
    data = Graph()  # the faulty study only: rdflib terms, as copkg add gives them
    for path in sorted(faulty_corpus[0].glob("*.ttl")):
        data.parse(path, format="turtle")
    report = validate(data, shapes, ontology)
    assert_same(validate(data, shapes, ontology, engine="pyshacl"), report)
    assert '"Une phrase"@FR' in {r.value for r in report.results}, report.text()


#: Shapes using what shapes.ttl does not: other targets, counts, node kinds, $PATH, templates
#: with other variables, a constraint's own message, a deactivated shape.
OTHER_SHAPES = (
    PREFIXES
    + """
ex:shapes sh:declare [ sh:prefix "ex" ; sh:namespace "https://example.org/"^^xsd:anyURI ] .
ex:Labels a sh:NodeShape ;
    sh:targetNode ex:a, ex:b ;
    sh:message "labels"@en ;
    sh:property [ sh:path rdfs:label ; sh:minCount 2 ; sh:maxCount 2 ; sh:uniqueLang true ;
                  sh:minLength 3 ; sh:nodeKind sh:Literal ] .
ex:Links a sh:PropertyShape ;
    sh:targetSubjectsOf ex:link ;
    sh:path ex:link ;
    sh:message "links"@en ;
    sh:nodeKind sh:IRI ;
    sh:or ( ex:Named [ sh:nodeKind sh:BlankNode ] ) ;
    sh:sparql [
        sh:prefixes ex:shapes ;
        sh:select '''SELECT $this ?value ?other
                     WHERE { $this $PATH ?value . ?value ex:link ?other }''' ;
        sh:message "{$this} links {?value}, which links {?other}"@en ] .
ex:Named a sh:NodeShape ; sh:message "named"@en ;
    sh:property [ sh:path rdfs:label ; sh:minCount 1 ] .
ex:Counted a sh:NodeShape ;
    sh:targetObjectsOf ex:link ;
    sh:message "at most one link in: {$this}"@en ;
    sh:sparql [
        sh:prefixes ex:shapes ;
        sh:select '''SELECT $this (COUNT(?s) AS ?n) WHERE { ?s ex:link $this }
                     GROUP BY $this HAVING (COUNT(?s) > 1)''' ] ;
    sh:not [ sh:in ( ex:c ) ] .
ex:Off a sh:NodeShape ; sh:targetNode ex:a ; sh:deactivated true ; sh:message "off"@en ;
    sh:class ex:Nothing .
"""
)

OTHER_DATA = """
PREFIX ex: <https://example.org/>
PREFIX rdfs: <http://www.w3.org/2000/01/rdf-schema#>
ex:a rdfs:label "aa"@en, "aaa"@EN, "a3"@de ; ex:link ex:b, ex:c, "x" .
ex:b rdfs:label "bbb" ; ex:link ex:c, _:n .
ex:d ex:link ex:b .
"""


@pytest.mark.parametrize("per_node", [500, 0], ids=["node-by-node", "joined"])
def test_other_features_as_pyshacl(monkeypatch: pytest.MonkeyPatch, per_node: int) -> None:
    monkeypatch.setattr(shacl_engine, "_PER_NODE", per_node)
    shapes = Graph().parse(data=OTHER_SHAPES, format="turtle")
    data = Graph().parse(data=OTHER_DATA, format="turtle")
    report = validate(data, shapes, Graph())
    assert_same(validate(data, shapes, Graph(), engine="pyshacl"), report)
    names = {r.shape.rsplit("/", 1)[-1] for r in report.results}
    assert names == {"Labels>", "Links>", "Counted>"}, report.text()
    filled = "<https://example.org/a> links <https://example.org/b>, which links <https://example"
    assert any(r.message.startswith(filled) for r in report.results), report.text()


@pytest.mark.parametrize(
    ("shape", "feature"),
    [
        ("sh:xone ( [ sh:class ex:A ] )", "sh:xone"),
        ("sh:closed true", "sh:closed"),
        ("sh:node ex:Other", "sh:node"),
        ("sh:path ( ex:p ex:q ) ; sh:minCount 1", "paths other than a predicate"),
        ("sh:path ex:p ; sh:equals ex:q", "sh:equals"),
        ("sh:property [ sh:path ex:p ; sh:hasValue ex:v ]", "sh:hasValue"),
    ],
)
def test_a_feature_the_engine_lacks_is_refused_by_name(shape: str, feature: str) -> None:
    shapes = Graph().parse(
        data=f"{PREFIXES}\nex:Shape a sh:NodeShape ; sh:targetNode ex:a ; {shape} .",
        format="turtle",
    )
    with pytest.raises(CopkgError) as caught:
        validate(Graph(), shapes, Graph())
    assert feature in caught.value.message and "--engine pyshacl" in caught.value.message
    if "hasValue" not in feature:
        assert "ex:Shape" in caught.value.message or "example.org/Shape" in caught.value.message


def test_an_unknown_engine_is_refused(shapes: Graph) -> None:
    with pytest.raises(CopkgError, match="no SHACL engine 'fast'"):
        validate(Graph(), shapes, Graph(), engine="fast")


def test_copkg_validate_engine_option_gives_the_same_report() -> None:
    from click.testing import CliRunner

    from copkg.cli import main

    example = ROOT / "tests" / "shapes" / "invalid" / "RangeShape-misspelt-concept.ttl"
    outputs = {}
    for engine in ("sparql", "pyshacl"):
        args = ["validate", str(example), "--engine", engine, "--root", str(ROOT)]
        result = CliRunner().invoke(main, args, catch_exceptions=False)
        assert result.exit_code == 1, result.output
        outputs[engine] = result.output
    assert "copsh:RangeShape" in outputs["sparql"]
    assert outputs["sparql"] == outputs["pyshacl"]


def test_the_validation_key_names_the_engine(monkeypatch: pytest.MonkeyPatch) -> None:
    from copkg.config import Settings
    from copkg.pipeline.build import validation_key

    build = sys.modules[validation_key.__module__]  # copkg.pipeline exports a function `build`

    settings = Settings.load(ROOT, environ={})
    hashes = {"ontology/shapes.ttl": "0" * 64}
    key = validation_key(settings, hashes)
    assert validation_key(settings, hashes) == key
    monkeypatch.setattr(build, "engine_version", lambda engine="sparql": "another 2")
    assert validation_key(settings, hashes) != key


@pytest.mark.parametrize(
    "name", ["DomainShape", "RangeShape", "QuotePageRangeShape", "EnactmentRealisedRiskShape"]
)
def test_sparql_constraints_joined_or_node_by_node_agree(
    monkeypatch: pytest.MonkeyPatch, name: str, shapes: Graph, ontology: Graph
) -> None:
    """With many focus nodes a SPARQL constraint runs once, joined with its targets: the
    results are those of $this pre-bound node by node (what pyshacl does)."""
    for path in sorted((ROOT / "tests" / "shapes" / "invalid").glob(f"{name}-*.ttl")):
        data = Graph().parse(path, format="turtle")
        by_node = validate(data, shapes, ontology)
        monkeypatch.setattr(shacl_engine, "_PER_NODE", 0)
        joined = validate(data, shapes, ontology)
        monkeypatch.undo()
        assert f"copsh:{name}" in by_node.shapes()
        assert_same(by_node, joined)


def test_a_backslash_in_a_reported_value_is_shown_as_written(
    shapes: Graph, ontology: Graph
) -> None:
    """A message template takes the value as text: pyshacl's re.sub reads "\\d" as an escape
    (and fails), so only the SPARQL engine is asked here."""
    data = Graph().parse(
        data=PREFIXES + 's:f a copkg:Finding ; copkg:reportedIn "C:\\\\docs\\\\new" .',
        format="turtle",
    )
    report = validate(data, shapes, ontology)
    messages = [r.message for r in report.results if r.shape == "copsh:RangeShape"]
    assert messages and messages[0].startswith("C:\\docs\\new is not typed"), report.text()


def test_less_or_equal_on_a_blank_node_names_the_shape_and_the_node() -> None:
    shapes = Graph().parse(
        data=PREFIXES + "ex:Pages a sh:NodeShape ; sh:targetNode ex:a ; sh:property "
        "[ sh:path ex:first ; sh:lessThanOrEquals ex:last ] .",
        format="turtle",
    )
    data = Graph().parse(data=PREFIXES + "ex:a ex:first [] ; ex:last 3 .", format="turtle")
    with pytest.raises(CopkgError) as caught:
        validate(data, shapes, Graph())
    assert (
        "blank node" in caught.value.message and "<https://example.org/a>" in caught.value.message
    )
