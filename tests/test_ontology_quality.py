"""The ontology passes the ROBOT-report-like checks and its files are stable longturtle."""

from __future__ import annotations

from pathlib import Path

import pytest
from rdflib import Graph

from copkg.validation.ontology import check_ontology, load_ontology, report

ROOT = Path(__file__).resolve().parents[1]
ONTOLOGY_FILES = [ROOT / "ontology" / "copkg.ttl", ROOT / "ontology" / "vocabularies.ttl"]

HEADER = """
@prefix copkg: <https://w3id.org/copkg/ontology#> .
@prefix dcterms: <http://purl.org/dc/terms/> .
@prefix owl: <http://www.w3.org/2002/07/owl#> .
@prefix rdfs: <http://www.w3.org/2000/01/rdf-schema#> .
@prefix skos: <http://www.w3.org/2004/02/skos/core#> .
@prefix xsd: <http://www.w3.org/2001/XMLSchema#> .
<https://w3id.org/copkg/ontology> a owl:Ontology ;
    dcterms:title "t"@en ; dcterms:description "d"@en ;
    dcterms:license <https://creativecommons.org/licenses/by/4.0/> ;
    owl:versionIRI <https://w3id.org/copkg/ontology/0> .
dcterms:title a owl:AnnotationProperty . dcterms:description a owl:AnnotationProperty .
dcterms:license a owl:AnnotationProperty . skos:definition a owl:AnnotationProperty .
@prefix prov: <http://www.w3.org/ns/prov#> .
prov:Entity a owl:Class .
copkg:Thing a owl:Class ; rdfs:subClassOf prov:Entity ;
    rdfs:label "thing"@en ; skos:definition "A thing."@en .
copkg:Other a owl:Class ; rdfs:subClassOf copkg:Thing ;
    rdfs:label "other"@en ; skos:definition "Another thing."@en .
"""


def _problems(extra: str) -> list[tuple[str, str]]:
    graph = Graph().parse(data=HEADER + extra, format="turtle")
    return [(p.code, p.term) for p in check_ontology(graph, allow_list={})]


def test_ontology_has_no_quality_problems() -> None:
    problems = check_ontology(load_ontology(ONTOLOGY_FILES))
    assert not problems, report(problems)


@pytest.mark.parametrize("path", sorted((ROOT / "ontology").glob("*.ttl")), ids=lambda p: p.name)
def test_file_is_its_longturtle_serialisation(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    again = Graph().parse(data=text, format="turtle").serialize(format="longturtle")
    assert text == again, (
        f"{path.name} is not rdflib's longturtle: re-serialise it with "
        "Graph().parse(path).serialize(path, format='longturtle')"
    )


def test_the_minimal_fixture_passes() -> None:
    assert _problems("") == []


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        (
            'copkg:Bare a owl:Class ; rdfs:subClassOf copkg:Thing ; skos:definition "B."@en .',
            ("missing_label", "copkg:Bare"),
        ),
        (
            'copkg:Bare a owl:Class ; rdfs:subClassOf copkg:Thing ; rdfs:label "bare"@en .',
            ("missing_definition", "copkg:Bare"),
        ),
        (
            'copkg:Twin a owl:Class ; rdfs:subClassOf copkg:Thing ; rdfs:label "Thing"@en ;'
            ' skos:definition "A twin."@en .',
            ("duplicate_label", "copkg:Twin"),
        ),
        (
            'copkg:Twin a owl:Class ; rdfs:subClassOf copkg:Thing ; rdfs:label "twin"@en ;'
            ' skos:definition "A thing."@en .',
            ("duplicate_definition", "copkg:Twin"),
        ),
        ('copkg:Thing rdfs:label "entity"@en .', ("multiple_labels", "copkg:Thing")),
        ("copkg:Thing rdfs:subClassOf copkg:Other .", ("class_cycle", "copkg:Other")),
        (
            'copkg:Lone a owl:Class ; rdfs:label "lone"@en ; skos:definition "L."@en .',
            ("unconnected_class", "copkg:Lone"),
        ),
        (
            'copkg:p a owl:ObjectProperty ; rdfs:label "p"@en ; skos:definition "P."@en ;'
            " rdfs:domain copkg:Thing .",
            ("missing_range", "copkg:p"),
        ),
        (
            'copkg:p a owl:ObjectProperty, owl:DatatypeProperty ; rdfs:label "p"@en ;'
            ' skos:definition "P."@en ; rdfs:domain copkg:Thing ; rdfs:range copkg:Other .',
            ("property_kind_punning", "copkg:p"),
        ),
        (
            'copkg:p a owl:ObjectProperty ; rdfs:label "p"@en ; skos:definition "P."@en ;'
            ' rdfs:domain copkg:Thing ; rdfs:range copkg:Other . copkg:Thing copkg:p "x" .',
            ("literal_object_property", "copkg:Thing"),
        ),
        (
            'copkg:d a owl:DatatypeProperty ; rdfs:label "d"@en ; skos:definition "D."@en ;'
            " rdfs:domain copkg:Thing ; rdfs:range xsd:gYear .",
            ("non_owl2_datatype", "copkg:d"),
        ),
        (
            "copkg:Other rdfs:subClassOf copkg:Undeclared .",
            ("undeclared_class", "copkg:Undeclared"),
        ),
        ("copkg:Thing copkg:undeclared copkg:Other .", ("undeclared_property", "copkg:undeclared")),
        (
            "<https://w3id.org/copkg/ontology> owl:imports <http://example.org/o> .",
            ("import", "<https://w3id.org/copkg/ontology>"),
        ),
    ],
)
def test_each_check_fires(extra: str, expected: tuple[str, str]) -> None:
    assert expected in _problems(extra)
