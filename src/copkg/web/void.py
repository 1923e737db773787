"""Found by data catalogues: a VoID description of the dataset at /.well-known/void.

Read from the store as it is served: the triples, classes and entities, each named graph as a
subset with its own counts, the SPARQL endpoint and the licence (RFC 5785 well-known URI, as the
VoID guide recommends).
"""

from __future__ import annotations

from flask import Blueprint, Response, request
from rdflib import RDF, Dataset, Graph, Literal, Namespace, URIRef
from rdflib.namespace import DCTERMS, FOAF, XSD

from copkg.errors import CopkgError
from copkg.web import read_page
from copkg.web.negotiation import best_offer

bp = Blueprint("void", __name__)

VOID = Namespace("http://rdfs.org/ns/void#")
#: The data (ontology/, data/) is CC BY 4.0 (LICENSE); the code is MIT.
LICENCE = URIRef("https://creativecommons.org/licenses/by/4.0/")

_RDFLIB = {
    "text/turtle": "turtle",
    "application/n-triples": "nt",
    "application/ld+json": "json-ld",
    "application/rdf+xml": "xml",
    "application/trig": "trig",
    "application/n-quads": "nquads",
}


def _integer(value: object) -> Literal:
    return Literal(int(str(value)), datatype=XSD.integer)


def describe_dataset(root: str) -> Graph:
    """The VoID description of the served dataset, its IRIs under the service's `root` (the
    counts read by a query worker)."""
    counts = read_page("void")
    graph = Graph()
    for prefix, namespace in (("void", VOID), ("dcterms", DCTERMS), ("foaf", FOAF)):
        graph.bind(prefix, namespace)
    dataset = URIRef(f"{root}/.well-known/void#copkg")
    graph.add((dataset, RDF.type, VOID.Dataset))
    graph.add((dataset, DCTERMS.title, Literal("copkg: communities of practice in organisations")))
    graph.add(
        (
            dataset,
            DCTERMS.description,
            Literal(
                "A knowledge graph of research on communities of practice in organisations: "
                "studies, cases, management roles, risks and contingencies, every finding with "
                "its evidence (a quote and its page)."
            ),
        )
    )
    graph.add((dataset, DCTERMS.license, LICENCE))
    graph.add((dataset, VOID.sparqlEndpoint, URIRef(f"{root}/sparql")))
    graph.add((dataset, FOAF.homepage, URIRef(f"{root}/")))
    graph.add((dataset, VOID.vocabulary, URIRef("https://w3id.org/copkg/ontology#")))
    graph.add((dataset, VOID.uriSpace, Literal("https://w3id.org/copkg/id/")))
    for name in ("Turtle", "N-Triples", "RDF_XML", "JSON-LD", "TriG", "N-Quads"):
        graph.add((dataset, VOID.feature, URIRef(f"http://www.w3.org/ns/formats/{name}")))
    total_triples = 0
    for row in counts["graphs"]:
        subset = URIRef(row["graph"] + "#void")
        graph.add((dataset, VOID.subset, subset))
        graph.add((subset, RDF.type, VOID.Dataset))
        graph.add((subset, VOID.triples, _integer(row["triples"])))
        graph.add((subset, VOID.distinctSubjects, _integer(row["subjects"])))
        graph.add((subset, VOID.distinctObjects, _integer(row["objects"])))
        graph.add((subset, VOID.properties, _integer(row["properties"])))
        graph.add((subset, DCTERMS.source, URIRef(row["graph"])))
        total_triples += row["triples"]
    graph.add((dataset, VOID.triples, _integer(total_triples)))
    classes = counts["classes"]
    graph.add((dataset, VOID.classes, _integer(len(classes))))
    for index, row in enumerate(sorted(classes, key=lambda r: r["class"])):
        partition = URIRef(f"{root}/.well-known/void#class-{index}")
        graph.add((dataset, VOID.classPartition, partition))
        graph.add((partition, VOID["class"], URIRef(row["class"])))
        graph.add((partition, VOID.entities, _integer(row["entities"])))
    totals = counts["total"]
    graph.add((dataset, VOID.distinctSubjects, _integer(totals["subjects"])))
    graph.add((dataset, VOID.distinctObjects, _integer(totals["objects"])))
    graph.add((dataset, VOID.properties, _integer(totals["properties"])))
    return graph


@bp.route("/.well-known/void")
def void() -> Response:
    """The VoID description, in any RDF format of Accept (Turtle by default)."""
    media_type = best_offer(list(_RDFLIB))
    if media_type is None:
        raise CopkgError(f"VoID comes as {', '.join(_RDFLIB)}", status=406)
    graph = describe_dataset(request.url_root.rstrip("/"))
    if media_type in ("application/trig", "application/n-quads"):
        dataset = Dataset()
        named = dataset.graph(URIRef(request.base_url))
        for triple in graph:
            named.add(triple)
        body = dataset.serialize(format=_RDFLIB[media_type], encoding="utf-8")
    else:
        body = graph.serialize(format=_RDFLIB[media_type], encoding="utf-8")
    content_type = media_type + ("; charset=utf-8" if media_type.startswith("text/") else "")
    response = Response(body, content_type=content_type)
    response.vary.add("Accept")
    return response
