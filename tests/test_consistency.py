"""HermiT (through owlready2) finds the ontology and the data consistent, and classifies."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import Reasoner
from rdflib import Graph
from rdflib.namespace import RDF

from copkg.namespaces import COPKG, study_base
from copkg.reasoning.owl import (
    JAVA_HINT,
    ConsistencyResult,
    JavaMissingError,
    check_consistency,
    find_java,
)
from copkg.validation.ontology import load_ontology

ROOT = Path(__file__).resolve().parents[1]
ONTOLOGY_FILES = [ROOT / "ontology" / "copkg.ttl", ROOT / "ontology" / "vocabularies.ttl"]
STUDIES = ROOT / "data" / "studies"
J04 = study_base("josserand2004")

PREFIXES = """
@prefix copkg: <https://w3id.org/copkg/ontology#> .
@prefix j04: <https://w3id.org/copkg/id/josserand2004/> .
@prefix owl: <http://www.w3.org/2002/07/owl#> .
@prefix xsd: <http://www.w3.org/2001/XMLSchema#> .
"""

# A quote given evidence of its own is a copkg:Documented (the domain of copkg:hasEvidence),
# and quotes and documented things are disjoint.
INCONSISTENT = (
    PREFIXES
    + """
j04:q-1 a copkg:Quote ; copkg:page "320"^^xsd:positiveInteger ; copkg:hasEvidence j04:q-2 .
j04:q-2 a copkg:Quote .
"""
)

# The owl:imports must be dropped, never fetched (example.invalid does not resolve).
CLASSIFIABLE = (
    PREFIXES
    + """
<https://w3id.org/copkg/id/josserand2004/> owl:imports <https://example.invalid/nothing.owl> .
j04:clubs a copkg:Collective ;
    copkg:hasForm copkg:CommunityOfPracticeForm ;
    copkg:status copkg:Clandestine ;
    copkg:startDate "1996"^^xsd:gYear .
j04:team a copkg:Collective ; copkg:hasForm copkg:ProjectTeamForm .
"""
)


@pytest.fixture(scope="module")
def java() -> str:
    try:
        return find_java()
    except JavaMissingError as exc:
        pytest.skip(str(exc))


@pytest.fixture(scope="module")
def ontology() -> Graph:
    return load_ontology(ONTOLOGY_FILES)


@pytest.fixture(scope="module")
def ontology_result(java: str, ontology: Graph) -> ConsistencyResult:
    return check_consistency([ontology], java=java)


@pytest.fixture(scope="module")
def inconsistent_result(java: str, ontology: Graph) -> ConsistencyResult:
    snippet = Graph().parse(data=INCONSISTENT, format="turtle")
    return check_consistency([ontology, snippet], java=java)


@pytest.fixture(scope="module")
def classified_result(java: str, ontology: Graph) -> ConsistencyResult:
    snippet = Graph().parse(data=CLASSIFIABLE, format="turtle")
    return check_consistency([ontology, snippet], java=java)


def test_missing_java_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(JavaMissingError) as info:
        find_java({"PATH": str(tmp_path), "JAVA_HOME": str(tmp_path)})
    assert JAVA_HINT in str(info.value)


def test_java_from_the_environment(tmp_path: Path) -> None:
    fake = tmp_path / "java"
    fake.write_text("#!/bin/sh\n")
    fake.chmod(0o755)
    assert find_java({"JAVA": str(fake), "PATH": ""}) == str(fake)
    assert find_java({"JAVA_HOME": str(tmp_path.parent), "PATH": str(tmp_path)}) == str(fake)


@pytest.mark.java
def test_ontology_and_vocabularies_are_consistent(ontology_result: ConsistencyResult) -> None:
    assert ontology_result.consistent, ontology_result.message


@pytest.mark.java
def test_disjoint_classes_make_an_inconsistency_with_a_reason(
    inconsistent_result: ConsistencyResult,
) -> None:
    assert not inconsistent_result.consistent
    assert inconsistent_result.message.startswith(
        "inconsistent: j04:q-1 is both copkg:Evidence (asserted, a copkg:Quote)"
    )
    assert "copkg:Documented (it has copkg:hasEvidence (domain))" in inconsistent_result.message
    assert inconsistent_result.inferred == []


@pytest.mark.java
def test_defined_classes_are_classified(classified_result: ConsistencyResult) -> None:
    assert classified_result.consistent, classified_result.message
    inferred = set(classified_result.inferred)
    assert (J04.clubs, COPKG.CommunityOfPractice) in inferred
    assert (J04.clubs, COPKG.ClandestineCollective) in inferred
    assert (J04.team, COPKG.ProjectTeam) in inferred
    assert (J04.team, COPKG.CommunityOfPractice) not in inferred
    assert "j04:clubs a copkg:CommunityOfPractice" in classified_result.text()


@pytest.mark.java
@pytest.mark.slow
def test_shipped_data_is_consistent(java: str, ontology: Graph, hermit_once: Reasoner) -> None:
    """HermiT's run over the shipped data is shared with the documented `copkg build` and
    `copkg reason` (tests/test_docs_examples.py), which give it the same triples."""
    files = sorted(STUDIES.glob("*/*.ttl"))
    if not list((STUDIES / "josserand2004").glob("*.ttl")):
        pytest.fail("data/studies/josserand2004 has no .ttl: nothing shipped to reason over")
    data = Graph()
    for path in files:
        data.parse(path, format="turtle")
    result = hermit_once([ontology, data], java=java)
    assert result.consistent, result.message
    formed = {
        s
        for s in data.subjects(COPKG.hasForm, COPKG.CommunityOfPracticeForm)
        if (s, RDF.type, COPKG.CommunityOfPractice) not in data
    }
    inferred = {i for i, c in result.inferred if c == COPKG.CommunityOfPractice}
    assert formed <= inferred, f"not classified: {sorted(formed - inferred)}"
