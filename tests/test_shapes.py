"""The SHACL shapes: valid examples conform, each invalid example fails with its shape.

tests/shapes/invalid/<ShapeLocalName>-<what>.ttl must be reported by copsh:<ShapeLocalName>;
any other shape it trips is named in a "# Also reported by: copsh:..." line of the file.
Every example and the shipped studies are validated by both engines (the SPARQL one, the
default, and pyshacl, the reference), which must report the same results.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from rdflib import Graph, URIRef
from rdflib.collection import Collection
from rdflib.namespace import OWL, RDF, RDFS, SKOS

from copkg.namespaces import COPKG, SH, SHAPES, prefixed
from copkg.validation.ontology import load_ontology
from copkg.validation.report import ValidationReport, load_shapes, validate

ROOT = Path(__file__).resolve().parents[1]
SHAPES_FILE = ROOT / "ontology" / "shapes.ttl"
ONTOLOGY_FILES = [ROOT / "ontology" / "copkg.ttl", ROOT / "ontology" / "vocabularies.ttl"]
EXAMPLES = Path(__file__).resolve().parent / "shapes"
VALID = sorted((EXAMPLES / "valid").glob("*.ttl"))
INVALID = sorted((EXAMPLES / "invalid").glob("*.ttl"))
STUDIES = ROOT / "data" / "studies"
ALSO = re.compile(r"^# Also reported by: (copsh:\w+)", re.MULTILINE)

#: pyshacl runs on rdflib's SPARQL, without the costs that are rdflib's (see conftest)
pytestmark = pytest.mark.usefixtures("rdflib_sparql_fast")


@pytest.fixture(scope="module")
def ontology() -> Graph:
    return load_ontology(ONTOLOGY_FILES)


@pytest.fixture(scope="module")
def shapes() -> Graph:
    return load_shapes(SHAPES_FILE)


def _named_shapes(shapes: Graph) -> list[URIRef]:
    found = set(shapes.subjects(RDF.type, SH.NodeShape)) | set(
        shapes.subjects(RDF.type, SH.PropertyShape)
    )
    return sorted(s for s in found if isinstance(s, URIRef))


def _both_engines(data: Graph, shapes: Graph, ontology: Graph) -> ValidationReport:
    """The SPARQL engine's report, once it is checked to be pyshacl's, result for result."""
    report = validate(data, shapes, ontology)
    reference = validate(data, shapes, ontology, engine="pyshacl")
    assert report.conforms == reference.conforms
    assert [r.as_dict() for r in report.results] == [r.as_dict() for r in reference.results], (
        f"sparql:\n{report.text()}\npyshacl:\n{reference.text()}"
    )
    return report


def _validate_file(path: Path, shapes: Graph, ontology: Graph) -> ValidationReport:
    return _both_engines(Graph().parse(path, format="turtle"), shapes, ontology)


def test_every_shape_is_named_labelled_and_explained(shapes: Graph) -> None:
    named = _named_shapes(shapes)
    assert len(named) >= 30
    for shape in named:
        assert str(shape).startswith(str(SHAPES)), f"{shape} is not in the copsh: namespace"
        labels = [lbl for lbl in shapes.objects(shape, RDFS.label) if lbl.language == "en"]
        assert len(labels) == 1, f"{prefixed(shape)} needs one English rdfs:label"
        messages = [m for m in shapes.objects(shape, SH.message) if m.language == "en"]
        assert messages, f"{prefixed(shape)} needs an English sh:message"
        assert shapes.value(shape, SH.severity) in (SH.Violation, SH.Warning), prefixed(shape)


def test_every_shape_with_targets_carries_a_message(shapes: Graph) -> None:
    """The engines word a result without sh:message differently: every shape with targets
    carries one, and the shapes it holds report with it (validation._result)."""
    targets = (SH.targetClass, SH.targetNode, SH.targetSubjectsOf, SH.targetObjectsOf, SH.target)
    top = {s for p in targets for s in shapes.subjects(p, None)}
    silent = sorted(prefixed(s) for s in top if (s, SH.message, None) not in shapes)
    assert not silent, f"give these shapes an sh:message: {silent}"


def test_shapes_only_use_terms_of_the_ontology(shapes: Graph, ontology: Graph) -> None:
    used = {t for triple in shapes for t in triple if isinstance(t, URIRef)}
    unknown = sorted(
        prefixed(t)
        for t in used
        if str(t).startswith(str(COPKG)) and (t, SKOS.definition, None) not in ontology
    )
    assert not unknown, f"shapes.ttl uses copkg terms the ontology lacks: {unknown}"


def test_every_shape_has_an_invalid_example(shapes: Graph) -> None:
    examples = {p.name.split("-")[0] for p in INVALID}
    missing = [prefixed(s) for s in _named_shapes(shapes) if s.split("#")[1] not in examples]
    assert not missing, f"add tests/shapes/invalid/<Shape>-<what>.ttl for {missing}"


def test_every_invalid_example_names_a_shape(shapes: Graph) -> None:
    names = {s.split("#")[1] for s in _named_shapes(shapes)}
    stray = [p.name for p in INVALID if p.name.split("-")[0] not in names]
    assert not stray, f"these examples name no shape of shapes.ttl: {stray}"


def _datatypes_by_path(shapes: Graph, shape: URIRef) -> dict[URIRef, set[URIRef]]:
    """The datatypes each property shape of `shape` accepts (sh:datatype, or in sh:or)."""
    found: dict[URIRef, set[URIRef]] = {}
    for prop_shape in shapes.objects(shape, SH.property):
        accepted = set(shapes.objects(prop_shape, SH.datatype))
        for alternatives in shapes.objects(prop_shape, SH["or"]):
            for alternative in Collection(shapes, alternatives):
                accepted |= set(shapes.objects(alternative, SH.datatype))
        found.setdefault(shapes.value(prop_shape, SH.path), set()).update(accepted)
    return found


def test_datatype_shape_covers_every_datatype_property(shapes: Graph, ontology: Graph) -> None:
    accepted = _datatypes_by_path(shapes, SHAPES.DatatypeRangeShape)
    targets = set(shapes.objects(SHAPES.DatatypeRangeShape, SH.targetSubjectsOf))
    missing = []
    for prop in sorted(ontology.subjects(RDF.type, OWL.DatatypeProperty)):
        datatype = ontology.value(prop, RDFS.range)
        if not str(prop).startswith(str(COPKG)) or datatype in (None, RDFS.Literal):
            continue
        if datatype not in accepted.get(prop, set()) or prop not in targets:
            missing.append(f"{prefixed(prop)} {prefixed(datatype)}")
    assert not missing, f"copsh:DatatypeRangeShape should check {missing}"


def test_derived_shape_refuses_every_derived_property(shapes: Graph, ontology: Graph) -> None:
    refused = set(shapes.objects(SHAPES.DerivedStatementShape, SH.targetSubjectsOf))
    derived = {
        p
        for p, definition in ontology.subject_objects(SKOS.definition)
        if str(definition).startswith("Derived:")
    }
    missing = sorted(prefixed(p) for p in derived - refused)
    assert not missing, f"copsh:DerivedStatementShape should refuse {missing} in data"


@pytest.mark.parametrize("path", VALID, ids=lambda p: p.name)
def test_valid_example_conforms(path: Path, shapes: Graph, ontology: Graph) -> None:
    report = _validate_file(path, shapes, ontology)
    assert report.conforms and not report.results, report.text()


@pytest.mark.parametrize("path", INVALID, ids=lambda p: p.stem)
def test_invalid_example_fails_with_its_shape(path: Path, shapes: Graph, ontology: Graph) -> None:
    expected = "copsh:" + path.name.split("-")[0]
    report = _validate_file(path, shapes, ontology)
    assert expected in report.shapes(), f"{expected} did not report {path.name}:\n{report.text()}"
    if shapes.value(URIRef(str(SHAPES) + expected[6:]), SH.severity) == SH.Violation:
        assert not report.conforms, report.text()
    allowed = {expected, *ALSO.findall(path.read_text(encoding="utf-8"))}
    others = {r.shape for r in report.violations} - allowed
    assert not others, f"{path.name} also trips {sorted(others)}:\n{report.text()}"


def test_report_text_and_json(shapes: Graph, ontology: Graph) -> None:
    report = _validate_file(
        EXAMPLES / "invalid" / "FindingEvidenceShape-finding-without-evidence.ttl", shapes, ontology
    )
    text = report.text()
    assert text.startswith("Does not conform: 1 violations")
    assert "Violation  copsh:FindingEvidenceShape\n" in text
    assert '  focus j04:links-between-entities ("communities link dispersed entities")\n' in text
    assert "  path copkg:hasEvidence\n" in text
    assert "  message Add copkg:hasEvidence" in text
    data = json.loads(json.dumps(report.as_dict()))
    assert data["conforms"] is False and data["violations"] == 1
    assert data["results"][0]["shape"] == "copsh:FindingEvidenceShape"


def test_sparql_messages_use_prefixed_names(shapes: Graph, ontology: Graph) -> None:
    report = _validate_file(
        EXAMPLES / "invalid" / "RangeShape-untyped-speaker-position.ttl", shapes, ontology
    )
    (result,) = report.violations
    assert result.message.startswith("j04:region-manger is not typed copkg:Position, the range")
    assert "https://" not in result.message


def _study_files() -> list[Path]:
    return sorted(STUDIES.glob("*/*.ttl"))


@pytest.mark.slow
def test_shipped_data_conforms(shapes: Graph, ontology: Graph) -> None:
    if not list((STUDIES / "josserand2004").glob("*.ttl")):
        pytest.fail("data/studies/josserand2004 has no .ttl: nothing shipped to validate")
    data = Graph()
    for path in _study_files():
        data.parse(path, format="turtle")
    report = _both_engines(data, shapes, ontology)
    assert report.conforms, report.text()
