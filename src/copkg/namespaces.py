"""IRIs and prefixes shared by the ontology, the data, the shapes and the code."""

import re

from rdflib import Namespace, URIRef
from rdflib.namespace import DCTERMS, OWL, PROV, RDF, RDFS, SKOS, XSD
from rdflib.term import Node

BASE = "https://w3id.org/copkg/"

COPKG = Namespace(BASE + "ontology#")
SHAPES = Namespace(BASE + "shapes#")
RULES = Namespace(BASE + "rules#")
ID = Namespace(BASE + "id/")
GRAPH = Namespace(BASE + "graph/")

ORG = Namespace("http://www.w3.org/ns/org#")
CITO = Namespace("http://purl.org/spar/cito/")
FABIO = Namespace("http://purl.org/spar/fabio/")
FOAF = Namespace("http://xmlns.com/foaf/0.1/")
SH = Namespace("http://www.w3.org/ns/shacl#")

ONTOLOGY_GRAPH = GRAPH["ontology"]
INFERENCE_GRAPH = GRAPH["inferences"]
#: On a store `copkg push` fills: the pushed build's id and each graph's triple count, and the
#: prefix of the temporary graphs a push writes before moving each into place.
PUSH_MANIFEST_GRAPH = GRAPH["push-manifest"]
PUSH_TMP_PREFIX = f"{GRAPH}push-tmp/"
#: The one temporary graph a push writes each graph into before moving it into place: a name
#: known before any listing of the store's graphs, so that a query can always leave it out.
PUSH_TMP_GRAPH = f"{PUSH_TMP_PREFIX}current"


def study_graph(study_id: str) -> str:
    """The named graph that holds one study bundle."""
    return f"{GRAPH}study/{study_id}"


def study_base(study_id: str) -> Namespace:
    """The namespace of one study's resources."""
    return Namespace(f"{ID}{study_id}/")


PREFIXES: dict[str, str] = {
    "copkg": str(COPKG),
    "copsh": str(SHAPES),
    "rule": str(RULES),
    "j04": str(study_base("josserand2004")),
    "org": str(ORG),
    "prov": str(PROV),
    "skos": str(SKOS),
    "dcterms": str(DCTERMS),
    "cito": str(CITO),
    "fabio": str(FABIO),
    "foaf": str(FOAF),
    "owl": str(OWL),
    "rdf": str(RDF),
    "rdfs": str(RDFS),
    "xsd": str(XSD),
    "sh": str(SH),
}


_LOCAL = re.compile(r"[\w\-.]*")


def shorten(iri: str) -> str | None:
    """An IRI as a prefixed name with the copkg prefixes (the longest namespace that fits),
    or None when none fits or the rest is not a plain local name: the one IRI shortener."""
    best = max((ns for ns in PREFIXES.values() if iri.startswith(ns)), key=len, default=None)
    if best is None or not _LOCAL.fullmatch(iri[len(best) :]):
        return None
    prefix = next(p for p, ns in PREFIXES.items() if ns == best)
    return f"{prefix}:{iri[len(best) :]}"


def prefixed(node: Node) -> str:
    """A term as a prefixed name when one of PREFIXES fits, else as N-Triples."""
    if isinstance(node, URIRef):
        return shorten(str(node)) or f"<{node}>"
    return node.n3()
