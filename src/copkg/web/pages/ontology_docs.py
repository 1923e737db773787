"""Documentation of the ontology for people, written from the ontology graph itself.

Why not pyLODE: 3.3.4 runs here, but its anchors come from labels (`#citationfinding`) while
its own links and copkg's use local names (`#CitationFinding`), and it leaves out the SKOS
concepts of the shared vocabularies; pyLODE 3.6 (and every release since 3.4.2) requires
Python 3.12, so it does not install on the service's Python 3.11, and would add no class
instances from the data anyway. So the page is written here, one section a term, each anchored
by its local name, so that copkg:Foo is always /ontology#Foo; the class tree, search box,
instances, namespaces and citation come from copkg.web.pages.ontology_guide.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from html import escape

from rdflib import BNode, Graph, Literal, URIRef
from rdflib.collection import Collection
from rdflib.namespace import DCTERMS, OWL, RDF, RDFS, SKOS
from rdflib.term import Node

from copkg.namespaces import COPKG, shorten
from copkg.web.pages.ontology_guide import (
    Instances,
    cite_section,
    class_tree,
    instances_row,
    namespace_table,
    search_box,
)

ONTOLOGY_IRI = URIRef(str(COPKG).rstrip("#"))
_NS = str(COPKG)


def _curie(iri: Node) -> str:
    return shorten(str(iri)) or str(iri)


def _local(iri: Node) -> str:
    return str(iri)[len(_NS) :]


def _label(graph: Graph, iri: Node) -> str:
    for predicate in (RDFS.label, SKOS.prefLabel):
        values = list(graph.objects(iri, predicate))
        english = [v for v in values if getattr(v, "language", None) in ("en", None)]
        if english or values:
            return str((english or values)[0])
    return _curie(iri)


def _ref(graph: Graph, node: Node) -> str:
    """A link to a term: in-page for copkg terms, out for the others; restrictions spelled out."""
    if isinstance(node, BNode):
        return _expression(graph, node)
    if isinstance(node, Literal):
        return escape(str(node))
    if str(node).startswith(_NS):
        return f'<a href="#{escape(_local(node))}"><code>{escape(_curie(node))}</code></a>'
    return f'<a href="{escape(str(node))}"><code>{escape(_curie(node))}</code></a>'


def _expression(graph: Graph, node: BNode) -> str:
    """A class expression (restriction, intersection, union) in Manchester-like words."""
    on = graph.value(node, OWL.onProperty)
    if on is not None:
        for predicate, word in (
            (OWL.hasValue, "value"),
            (OWL.someValuesFrom, "some"),
            (OWL.allValuesFrom, "only"),
        ):
            value = graph.value(node, predicate)
            if value is not None:
                return f"{_ref(graph, on)} {word} {_ref(graph, value)}"
        for predicate, word in (
            (OWL.qualifiedCardinality, "exactly"),
            (OWL.cardinality, "exactly"),
            (OWL.minQualifiedCardinality, "min"),
            (OWL.maxQualifiedCardinality, "max"),
            (OWL.minCardinality, "min"),
            (OWL.maxCardinality, "max"),
        ):
            value = graph.value(node, predicate)
            if value is not None:
                target = graph.value(node, OWL.onClass)
                tail = f" {_ref(graph, target)}" if target is not None else ""
                return f"{_ref(graph, on)} {word} {escape(str(value))}{tail}"
    for predicate, word in ((OWL.intersectionOf, " and "), (OWL.unionOf, " or ")):
        members = graph.value(node, predicate)
        if members is not None:
            return "(" + word.join(_ref(graph, m) for m in Collection(graph, members)) + ")"
    return "<em>an anonymous class</em>"


def _terms(graph: Graph, kind: Node) -> list[URIRef]:
    found = {s for s in graph.subjects(RDF.type, kind) if isinstance(s, URIRef)}
    return sorted((s for s in found if str(s).startswith(_NS)), key=lambda s: _local(s).lower())


def _row(name: str, cells: Iterable[str]) -> str:
    items = [c for c in cells if c]
    if not items:
        return ""
    return f"<tr><th>{escape(name)}</th><td>{', '.join(items)}</td></tr>"


def _section(graph: Graph, term: URIRef, badge: str, rows: list[str]) -> str:
    definition = graph.value(term, SKOS.definition) or graph.value(term, RDFS.comment)
    body = "".join(r for r in rows if r)
    return (
        f'<section class="term" id="{escape(_local(term))}">'
        f'<h3>{escape(_label(graph, term))} <span class="badge">{badge}</span></h3>'
        f'<p class="iri"><code>{escape(str(term))}</code></p>'
        + (f'<p class="definition">{escape(str(definition))}</p>' if definition else "")
        + (f'<table class="props">{body}</table>' if body else "")
        + "</section>"
    )


def ontology_html(
    triples: Iterable[tuple[Node, Node, Node]],
    instances: Mapping[URIRef, Instances] | None = None,
) -> str:
    """The documentation body (HTML) for the ontology and its vocabularies, with the
    instances each class has in the data when given."""
    graph = Graph()
    for triple in triples:
        graph.add(triple)
    parts: list[str] = []
    title = graph.value(ONTOLOGY_IRI, DCTERMS.title) or "copkg ontology"
    parts.append(f"<h1>{escape(str(title))}</h1>")
    meta = []
    for predicate, name in (
        (OWL.versionInfo, "version"),
        (OWL.versionIRI, "version IRI"),
        (DCTERMS.creator, "creator"),
        (DCTERMS.created, "created"),
        (DCTERMS.license, "license"),
        (RDFS.seeAlso, "see also"),
    ):
        meta.append(_row(name, (_ref(graph, v) for v in graph.objects(ONTOLOGY_IRI, predicate))))
    description = graph.value(ONTOLOGY_IRI, DCTERMS.description)
    parts.append(f'<p class="iri"><code>{escape(str(ONTOLOGY_IRI))}</code></p>')
    if description:
        parts.append(f"<p>{escape(str(description))}</p>")
    parts.append(f'<table class="props">{"".join(meta)}</table>')
    parts.append(
        '<p>Also as <a href="/ontology.ttl">Turtle</a>, <a href="/ontology.owl">RDF/XML</a>, '
        '<a href="/ontology.nt">N-Triples</a> and <a href="/ontology.jsonld">JSON-LD</a>.</p>'
    )
    parts.append(
        '<p class="jump">On this page: <a href="#cite">cite this</a> · '
        '<a href="#namespaces">namespaces</a> · <a href="#class-tree-heading">class tree</a> · '
        '<a href="#contents">contents</a></p>'
    )
    parts.append(search_box())
    parts.append(cite_section(graph, ONTOLOGY_IRI))
    parts.append(namespace_table())

    classes = _terms(graph, OWL.Class)
    object_properties = _terms(graph, OWL.ObjectProperty)
    datatype_properties = _terms(graph, OWL.DatatypeProperty)
    annotation_properties = _terms(graph, OWL.AnnotationProperty)
    schemes = _terms(graph, SKOS.ConceptScheme)
    documented = set(classes) | set(object_properties) | set(datatype_properties)
    documented |= set(annotation_properties) | set(schemes)
    concepts = [c for c in _terms(graph, SKOS.Concept) if c not in documented]

    toc = [
        ("classes", "Classes", classes),
        ("object-properties", "Object properties", object_properties),
        ("datatype-properties", "Datatype properties", datatype_properties),
        ("annotation-properties", "Annotation properties", annotation_properties),
        ("vocabularies", "Vocabularies (SKOS)", schemes + concepts),
    ]
    parts.append(class_tree(graph, classes))
    parts.append('<nav class="toc" aria-labelledby="contents"><h2 id="contents">Contents</h2>')
    for anchor, name, terms in toc:
        if not terms:
            continue
        links = " ".join(f'<a href="#{escape(_local(t))}">{escape(_local(t))}</a>' for t in terms)
        parts.append(
            f'<p><a href="#{anchor}"><strong>{name}</strong></a> ({len(terms)}): {links}</p>'
        )
    parts.append("</nav>")

    parts.append('<h2 id="classes">Classes</h2>')
    for cls in classes:
        parts.append(
            _section(
                graph,
                cls,
                "class",
                [
                    _row(
                        "subclass of", (_ref(graph, o) for o in graph.objects(cls, RDFS.subClassOf))
                    ),
                    _row(
                        "equivalent to",
                        (_ref(graph, o) for o in graph.objects(cls, OWL.equivalentClass)),
                    ),
                    _row(
                        "superclass of",
                        (
                            _ref(graph, s)
                            for s in sorted(graph.subjects(RDFS.subClassOf, cls), key=str)
                            if isinstance(s, URIRef)
                        ),
                    ),
                    _row(
                        "in the domain of",
                        (_ref(graph, s) for s in sorted(graph.subjects(RDFS.domain, cls), key=str)),
                    ),
                    _row(
                        "in the range of",
                        (_ref(graph, s) for s in sorted(graph.subjects(RDFS.range, cls), key=str)),
                    ),
                    _row(
                        "members",
                        (
                            _ref(graph, s)
                            for s in sorted(graph.subjects(RDF.type, cls), key=str)
                            if str(s).startswith(_NS)
                        ),
                    ),
                    _row(
                        "close match", (_ref(graph, o) for o in graph.objects(cls, SKOS.closeMatch))
                    ),
                    instances_row(cls, instances),
                ],
            )
        )

    for anchor, name, terms, badge in (
        ("object-properties", "Object properties", object_properties, "object property"),
        ("datatype-properties", "Datatype properties", datatype_properties, "datatype property"),
        (
            "annotation-properties",
            "Annotation properties",
            annotation_properties,
            "annotation property",
        ),
    ):
        if not terms:
            continue
        parts.append(f'<h2 id="{anchor}">{name}</h2>')
        for prop in terms:
            characteristics = [
                escape(_curie(t))
                for t in graph.objects(prop, RDF.type)
                if t not in (OWL.ObjectProperty, OWL.DatatypeProperty, OWL.AnnotationProperty)
            ]
            parts.append(
                _section(
                    graph,
                    prop,
                    badge,
                    [
                        _row("domain", (_ref(graph, o) for o in graph.objects(prop, RDFS.domain))),
                        _row("range", (_ref(graph, o) for o in graph.objects(prop, RDFS.range))),
                        _row(
                            "subproperty of",
                            (_ref(graph, o) for o in graph.objects(prop, RDFS.subPropertyOf)),
                        ),
                        _row(
                            "inverse of",
                            (_ref(graph, o) for o in graph.objects(prop, OWL.inverseOf)),
                        ),
                        _row("characteristics", characteristics),
                    ],
                )
            )

    if schemes or concepts:
        parts.append('<h2 id="vocabularies">Vocabularies (SKOS)</h2>')
        for scheme in schemes:
            members = sorted(
                (c for c in graph.subjects(SKOS.inScheme, scheme) if isinstance(c, URIRef)),
                key=lambda c: (_rank(graph, c), _label(graph, c)),
            )
            parts.append(
                _section(
                    graph,
                    scheme,
                    "concept scheme",
                    [
                        _row("concepts", (_ref(graph, c) for c in members)),
                    ],
                )
            )
        for concept in concepts:
            parts.append(
                _section(
                    graph,
                    concept,
                    "concept",
                    [
                        _row(
                            "type",
                            (
                                _ref(graph, t)
                                for t in graph.objects(concept, RDF.type)
                                if t not in (OWL.NamedIndividual, SKOS.Concept)
                            ),
                        ),
                        _row(
                            "in scheme",
                            (_ref(graph, s) for s in graph.objects(concept, SKOS.inScheme)),
                        ),
                        _row(
                            "broader",
                            (_ref(graph, s) for s in graph.objects(concept, SKOS.broader)),
                        ),
                        _row("rank", (escape(str(r)) for r in graph.objects(concept, COPKG.rank))),
                    ],
                )
            )
    return "\n".join(parts)


def _rank(graph: Graph, concept: Node) -> int:
    value = graph.value(concept, COPKG.rank)
    try:
        return int(str(value)) if value is not None else 0
    except ValueError:
        return 0
