"""`copkg export jsonld`: a study's named graph as JSON-LD compacted with copkg's published
`@context` (shipped as copkg/scholarly/context.jsonld, served at /ns/context.jsonld).

The context is generated from the ontology (`build_context`): the prefixes, one term a copkg
class and property (object properties typed `@id`, datatype properties with their datatype)
and short names for the DCTERMS, CiTO, PROV and RDFS terms the data uses. A test keeps the
shipped file equal to what the ontology gives.
"""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

from rdflib import Graph, URIRef
from rdflib.namespace import OWL, RDF, RDFS, XSD

from copkg.config import Settings
from copkg.namespaces import BASE, COPKG, PREFIXES, study_graph
from copkg.rdf_io import parse_graph
from copkg.scholarly.corpus import PRISM, load_study

CONTEXT_URL = BASE + "ns/context.jsonld"
CONTEXT_FILE = "context.jsonld"
#: Short names of the shared terms the data uses (term -> (compact IRI, is an IRI value)).
SHARED_TERMS: dict[str, tuple[str, bool]] = {
    "label": ("rdfs:label", False),
    "comment": ("rdfs:comment", False),
    "seeAlso": ("rdfs:seeAlso", True),
    "title": ("dcterms:title", False),
    "creator": ("dcterms:creator", False),
    "issued": ("dcterms:issued", False),
    "identifier": ("dcterms:identifier", False),
    "isPartOf": ("dcterms:isPartOf", False),
    "description": ("dcterms:description", False),
    "bibliographicCitation": ("dcterms:bibliographicCitation", False),
    "cites": ("cito:cites", True),
    "hasCitedEntity": ("cito:hasCitedEntity", True),
    "hasCitingEntity": ("cito:hasCitingEntity", True),
    "hasCitationCharacterization": ("cito:hasCitationCharacterization", True),
    "wasDerivedFrom": ("prov:wasDerivedFrom", True),
    "broadMatch": ("skos:broadMatch", True),
    "exactMatch": ("skos:exactMatch", True),
}


def build_context(ontology: Graph) -> dict[str, Any]:
    """The `@context` for copkg data, from the ontology's classes and properties."""
    context: dict[str, Any] = {"@version": 1.1}
    prefixes = dict(PREFIXES)
    prefixes.pop("j04", None)  # a study's namespace, not a vocabulary
    prefixes["prism"] = PRISM
    context.update(dict(sorted(prefixes.items())))
    terms: dict[str, Any] = {}
    for term, (iri, is_iri) in SHARED_TERMS.items():
        terms[term] = {"@id": iri, "@type": "@id"} if is_iri else iri
    ns = str(COPKG)
    for kind in (OWL.Class, OWL.ObjectProperty, OWL.DatatypeProperty, OWL.AnnotationProperty):
        for subject in ontology.subjects(RDF.type, kind):
            if not isinstance(subject, URIRef) or not str(subject).startswith(ns):
                continue
            name = str(subject)[len(ns) :]
            compact = f"copkg:{name}"
            if kind == OWL.ObjectProperty:
                terms[name] = {"@id": compact, "@type": "@id"}
            elif kind == OWL.DatatypeProperty:
                ranges = [r for r in ontology.objects(subject, RDFS.range) if isinstance(r, URIRef)]
                typed = ranges[0] if len(ranges) == 1 and ranges[0] != XSD.string else None
                if typed is not None and str(typed).startswith(str(XSD)):
                    terms[name] = {"@id": compact, "@type": f"xsd:{str(typed)[len(str(XSD)) :]}"}
                else:
                    terms[name] = compact
            else:
                terms[name] = compact
    context.update(dict(sorted(terms.items())))
    return {"@context": context}


def shipped_context() -> dict[str, Any]:
    """The context file shipped with the package."""
    text = resources.files("copkg.scholarly").joinpath(CONTEXT_FILE).read_text("utf-8")
    context: dict[str, Any] = json.loads(text)
    return context


def context_text(context: dict[str, Any]) -> str:
    """The context as the shipped file writes it."""
    return json.dumps(context, indent=2, ensure_ascii=False) + "\n"


def ontology_graph(settings: Settings) -> Graph:
    """The ontology and the shared vocabularies as one graph."""
    graph = Graph()
    for path in settings.ontology_files():
        graph += parse_graph(path)
    return graph


def export_jsonld(settings: Settings, study_id: str, inline_context: bool = False) -> str:
    """The study's named graph as compacted JSON-LD: `@id` the graph, `@graph` its nodes,
    `@context` the published context's URL (or the context itself, inline)."""
    graph = load_study(settings, study_id)
    context = shipped_context()["@context"]
    compacted = json.loads(graph.serialize(format="json-ld", context=context, auto_compact=True))
    nodes = compacted.get("@graph", [])
    if not nodes and isinstance(compacted, dict):
        nodes = [{k: v for k, v in compacted.items() if k != "@context"}]
    nodes.sort(key=lambda n: str(n.get("@id", "")))
    document = {
        "@context": context if inline_context else CONTEXT_URL,
        "@id": study_graph(study_id),
        "@graph": nodes,
    }
    return json.dumps(document, indent=2, ensure_ascii=False, sort_keys=False) + "\n"
