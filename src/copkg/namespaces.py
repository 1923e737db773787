"""IRIs and prefixes shared by the ontology, the data, the shapes and the code."""

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


def prefixed(node: Node) -> str:
    """A term as a prefixed name when one of PREFIXES fits, else as N-Triples."""
    if isinstance(node, URIRef):
        text = str(node)
        best = max((ns for ns in PREFIXES.values() if text.startswith(ns)), key=len, default=None)
        if best is not None:
            prefix = next(p for p, ns in PREFIXES.items() if ns == best)
            local = text[len(best) :]
            if local and all(c.isalnum() or c in "-_." for c in local):
                return f"{prefix}:{local}"
        return f"<{text}>"
    return node.n3()
