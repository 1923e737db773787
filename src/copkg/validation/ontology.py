"""Quality checks of the ontology in the spirit of ROBOT report and the OOPS! pitfalls."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeGuard

from rdflib import BNode, Graph, Literal, URIRef
from rdflib.collection import Collection
from rdflib.namespace import DCTERMS, OWL, RDF, RDFS, SKOS, XSD
from rdflib.term import Node

from copkg.namespaces import COPKG, prefixed
from copkg.rdf_io import sorted_terms

OWL_NS, RDF_NS, RDFS_NS, XSD_NS = str(OWL), str(RDF), str(RDFS), str(XSD)

# Properties used on several unrelated classes (a union domain would add nothing a reader or a
# reasoner could use) or whose values are open by design. Every entry says why.
DOMAIN_RANGE_ALLOW_LIST: dict[URIRef, str] = {
    COPKG.citedPages: "no domain: quotes and findings both give the cited pages",
    COPKG.citedWork: "no domain: quotes and findings both report a cited work",
    COPKG.voice: "no domain: quotes and findings both have a voice",
    COPKG.inCase: "no domain: findings, enactments and interview sets are in a case",
    COPKG.inContext: "no domain: enactments and risk assessments are in a context",
    COPKG.ofCase: "no domain: attributions and contexts are of a case",
    COPKG.ofContext: "no domain: control-mode attributions and unknown modes are of a context",
    COPKG.weakestVoice: "no domain: any derived statement has a weakest voice",
    COPKG.restsOnStudy: "no domain: any derived statement rests on some studies",
    COPKG.viaMode: "no domain: a derived statement about a broader mode names the narrower",
    COPKG.startDate: "no domain: stages, contexts and collectives have start dates",
    COPKG.endDate: "no domain: stages, contexts and collectives have end dates",
    COPKG.localName: "no domain: organisations and collectives have local names",
    COPKG.derivedBy: "no domain: any derived statement (assessment, reified triple) has a rule",
    COPKG.usedFact: "no domain or range: any derived statement rests on any fact",
    COPKG.relationType: "no range: the value is a CiTO property, used as an individual",
}

# The datatypes of the OWL 2 datatype map (OWL 2 Structural Specification, section 4).
OWL2_DATATYPES = frozenset(
    [
        RDFS.Literal,
        RDF.PlainLiteral,
        RDF.XMLLiteral,
        OWL.real,
        OWL.rational,
        XSD.decimal,
        XSD.integer,
        XSD.nonNegativeInteger,
        XSD.nonPositiveInteger,
        XSD.positiveInteger,
        XSD.negativeInteger,
        XSD.long,
        XSD.int,
        XSD.short,
        XSD.byte,
        XSD.unsignedLong,
        XSD.unsignedInt,
        XSD.unsignedShort,
        XSD.unsignedByte,
        XSD.double,
        XSD.float,
        XSD.string,
        XSD.normalizedString,
        XSD.token,
        XSD.language,
        XSD.Name,
        XSD.NCName,
        XSD.NMTOKEN,
        XSD.boolean,
        XSD.hexBinary,
        XSD.base64Binary,
        XSD.anyURI,
        XSD.dateTime,
        XSD.dateTimeStamp,
    ]
)

# Terms OWL 2 and RDF(S) give for free: they need no declaration.
BUILTIN_PROPERTIES = frozenset(
    [RDFS.label, RDFS.comment, RDFS.seeAlso, RDFS.isDefinedBy, OWL.versionInfo, OWL.deprecated]
)
BUILTIN_CLASSES = frozenset([OWL.Thing, OWL.Nothing, RDFS.Literal])

PROPERTY_KINDS = (OWL.ObjectProperty, OWL.DatatypeProperty, OWL.AnnotationProperty)
CLASS_POSITIONS = (
    RDFS.subClassOf,
    OWL.equivalentClass,
    OWL.disjointWith,
    OWL.onClass,
    OWL.complementOf,
)
CLASS_LIST_POSITIONS = (OWL.intersectionOf, OWL.unionOf, OWL.members)
HEADER_PROPERTIES = (DCTERMS.title, DCTERMS.description, DCTERMS.license, OWL.versionIRI)


@dataclass(frozen=True, order=True)
class OntologyProblem:
    """One quality problem: a ROBOT-like code, the term it is about, and what to do."""

    code: str
    term: str
    message: str

    def __str__(self) -> str:
        return f"{self.code:<24} {self.term:<36} {self.message}"


def load_ontology(paths: Sequence[Path]) -> Graph:
    """Parse the ontology files into one graph."""
    graph = Graph()
    for path in paths:
        graph.parse(path, format="turtle")
    return graph


def _is_copkg(node: Node) -> TypeGuard[URIRef]:
    return isinstance(node, URIRef) and str(node).startswith(str(COPKG))


def _is_builtin(node: Node) -> bool:
    return isinstance(node, URIRef) and str(node).startswith((OWL_NS, RDF_NS, RDFS_NS, XSD_NS))


def _kinds(graph: Graph, term: Node) -> set[Node]:
    return set(graph.objects(term, RDF.type))


def copkg_terms(graph: Graph) -> list[URIRef]:
    """The copkg IRIs the ontology files declare (classes, properties, concepts, schemes)."""
    return sorted({s for s in graph.subjects(RDF.type, None) if _is_copkg(s)})


def _class_expressions(graph: Graph) -> Iterator[Node]:
    """Every node the graph uses in a class position."""
    for position in CLASS_POSITIONS:
        for s, o in graph.subject_objects(position):
            yield o
            if position in (RDFS.subClassOf, OWL.equivalentClass, OWL.disjointWith):
                yield s
    for position in CLASS_LIST_POSITIONS:
        for head in graph.objects(None, position):
            yield from Collection(graph, head)
    for restriction_value in (OWL.someValuesFrom, OWL.allValuesFrom):
        for restriction, filler in graph.subject_objects(restriction_value):
            prop = graph.value(restriction, OWL.onProperty)
            if prop is None or (prop, RDF.type, OWL.DatatypeProperty) not in graph:
                yield filler
    yield from graph.objects(None, RDFS.domain)
    for prop, target in graph.subject_objects(RDFS.range):
        if (prop, RDF.type, OWL.DatatypeProperty) not in graph:
            yield target
    meta = {OWL.Class, OWL.Restriction, OWL.Ontology, OWL.NamedIndividual, OWL.AllDisjointClasses}
    meta.update(PROPERTY_KINDS)
    meta.update({OWL.FunctionalProperty, OWL.InverseFunctionalProperty, OWL.TransitiveProperty})
    meta.update({OWL.SymmetricProperty, OWL.AsymmetricProperty, OWL.ReflexiveProperty})
    meta.update({OWL.IrreflexiveProperty, OWL.AllDifferent, RDFS.Datatype})
    for cls in graph.objects(None, RDF.type):
        if cls not in meta:
            yield cls


def _property_uses(graph: Graph) -> Iterator[Node]:
    """Every node the graph uses in a property position."""
    structural = {RDF.type, RDF.first, RDF.rest, RDFS.subClassOf, RDFS.subPropertyOf}
    structural.update({RDFS.domain, RDFS.range})
    for predicate in set(graph.predicates()):
        if predicate not in structural and not str(predicate).startswith(OWL_NS):
            yield predicate
    yield from graph.objects(None, OWL.onProperty)
    for s, o in graph.subject_objects(RDFS.subPropertyOf):
        yield s
        yield o
    yield from graph.subjects(RDFS.domain, None)
    yield from graph.subjects(RDFS.range, None)


def check_header(graph: Graph) -> Iterator[OntologyProblem]:
    """Each owl:Ontology has a title, a description, a license and a version IRI; no imports."""
    ontologies = sorted_terms(graph.subjects(RDF.type, OWL.Ontology))
    if not ontologies:
        yield OntologyProblem("missing_ontology_header", "-", "no owl:Ontology header")
    for onto in ontologies:
        for prop in HEADER_PROPERTIES:
            if graph.value(onto, prop) is None:
                yield OntologyProblem(
                    "missing_ontology_" + prefixed(prop).split(":")[1].lower(),
                    prefixed(onto),
                    f"add {prefixed(prop)} to the ontology header",
                )
        for imported in graph.objects(onto, OWL.imports):
            yield OntologyProblem(
                "import",
                prefixed(onto),
                f"owl:imports {prefixed(imported)} makes reasoners fetch it: declare the "
                "terms you use instead",
            )


def _literals_by_language(graph: Graph, term: Node, prop: URIRef) -> dict[str, list[Literal]]:
    by_lang: dict[str, list[Literal]] = defaultdict(list)
    for value in graph.objects(term, prop):
        if isinstance(value, Literal):
            by_lang[value.language or ""].append(value)
    return by_lang


def check_labels(graph: Graph) -> Iterator[OntologyProblem]:
    """Every copkg term has one English label per language, unique among the terms."""
    seen: dict[tuple[str, str], list[URIRef]] = defaultdict(list)
    for term in copkg_terms(graph):
        labels = _literals_by_language(graph, term, RDFS.label)
        if not labels.get("en"):
            yield OntologyProblem("missing_label", prefixed(term), 'add rdfs:label "..."@en')
        for lang, values in sorted(labels.items()):
            if len(values) > 1:
                yield OntologyProblem(
                    "multiple_labels",
                    prefixed(term),
                    f"{len(values)} rdfs:label in language {lang or 'none'!r}: keep one, "
                    "move the others to skos:altLabel",
                )
            for value in values:
                text = str(value)
                if text != text.strip() or "  " in text or not text:
                    yield OntologyProblem(
                        "label_whitespace", prefixed(term), f"label {text!r} has stray spaces"
                    )
                seen[(" ".join(text.lower().split()), lang)].append(term)
    for (text, lang), terms in sorted(seen.items()):
        if len(terms) > 1:
            names = ", ".join(prefixed(t) for t in terms)
            for term in terms:
                yield OntologyProblem(
                    "duplicate_label",
                    prefixed(term),
                    f"label {text!r}@{lang} is shared by {names}: make each label unique",
                )


def check_definitions(graph: Graph) -> Iterator[OntologyProblem]:
    """Every copkg term has one English skos:definition, unique among the terms."""
    seen: dict[str, list[URIRef]] = defaultdict(list)
    for term in copkg_terms(graph):
        definitions = _literals_by_language(graph, term, SKOS.definition)
        if not definitions.get("en"):
            yield OntologyProblem(
                "missing_definition", prefixed(term), 'add skos:definition "..."@en'
            )
        for lang, values in sorted(definitions.items()):
            if len(values) > 1:
                yield OntologyProblem(
                    "multiple_definitions",
                    prefixed(term),
                    f"{len(values)} skos:definition in language {lang or 'none'!r}: keep one",
                )
            for value in values:
                seen[" ".join(str(value).split())].append(term)
    for text, terms in sorted(seen.items()):
        if len(terms) > 1:
            names = ", ".join(prefixed(t) for t in terms)
            for term in terms:
                yield OntologyProblem(
                    "duplicate_definition",
                    prefixed(term),
                    f"definition {text[:60]!r} is shared by {names}: say how they differ",
                )


def check_declarations(graph: Graph) -> Iterator[OntologyProblem]:
    """Every class and property used is declared, with one kind (OWL 2 DL, OOPS! P34/P35)."""
    classes = set(graph.subjects(RDF.type, OWL.Class))
    for node in sorted({n for n in _class_expressions(graph) if isinstance(n, URIRef)}):
        if node not in classes and node not in BUILTIN_CLASSES:
            yield OntologyProblem(
                "undeclared_class", prefixed(node), "used as a class: declare it a owl:Class"
            )
    for node in sorted({n for n in _property_uses(graph) if isinstance(n, URIRef)}):
        kinds = _kinds(graph, node) & set(PROPERTY_KINDS)
        if node in BUILTIN_PROPERTIES or (not kinds and _is_builtin(node)):
            continue
        if not kinds:
            yield OntologyProblem(
                "undeclared_property",
                prefixed(node),
                "used as a property: declare it an owl:ObjectProperty, owl:DatatypeProperty "
                "or owl:AnnotationProperty",
            )
        elif len(kinds) > 1:
            names = " and ".join(prefixed(k) for k in sorted_terms(kinds))
            yield OntologyProblem(
                "property_kind_punning", prefixed(node), f"declared {names}: keep one kind"
            )


def _cycles(graph: Graph, prop: URIRef) -> list[list[URIRef]]:
    """The cycles of named nodes along `prop`, each once (smallest member first)."""
    edges: dict[URIRef, set[URIRef]] = defaultdict(set)
    for s, o in graph.subject_objects(prop):
        if isinstance(s, URIRef) and isinstance(o, URIRef) and s != o:
            edges[s].add(o)
    cycles: set[tuple[URIRef, ...]] = set()
    for start in sorted(edges):
        stack: list[tuple[URIRef, list[URIRef]]] = [(start, [start])]
        while stack:
            node, path = stack.pop()
            for nxt in sorted(edges.get(node, ())):
                if nxt == start:
                    i = path.index(min(path))
                    cycles.add(tuple(path[i:] + path[:i]))
                elif nxt not in path and nxt > start:
                    stack.append((nxt, [*path, nxt]))
    loops = [[s] for s, o in graph.subject_objects(prop) if s == o and isinstance(s, URIRef)]
    return sorted([list(c) for c in cycles] + loops)


def check_cycles(graph: Graph) -> Iterator[OntologyProblem]:
    """No subclass or subproperty cycles (OOPS! P06)."""
    for prop, code in ((RDFS.subClassOf, "class_cycle"), (RDFS.subPropertyOf, "property_cycle")):
        for cycle in _cycles(graph, prop):
            chain = " < ".join(prefixed(t) for t in [*cycle, cycle[0]])
            yield OntologyProblem(
                code, prefixed(cycle[0]), f"{chain}: use owl:equivalentClass or break it"
            )


def check_unconnected_classes(graph: Graph) -> Iterator[OntologyProblem]:
    """Every copkg class has a named superclass or is a domain or range (OOPS! P04)."""
    used = set(graph.objects(None, RDFS.domain)) | set(graph.objects(None, RDFS.range))
    used |= set(graph.objects(None, OWL.onClass))
    for cls in sorted(c for c in graph.subjects(RDF.type, OWL.Class) if _is_copkg(c)):
        supers = [s for s in graph.objects(cls, RDFS.subClassOf) if isinstance(s, URIRef)]
        if not supers and cls not in used:
            yield OntologyProblem(
                "unconnected_class",
                prefixed(cls),
                "has no named superclass and is no domain or range: connect it",
            )


def check_domains_and_ranges(
    graph: Graph, allow_list: Mapping[URIRef, str] = DOMAIN_RANGE_ALLOW_LIST
) -> Iterator[OntologyProblem]:
    """Object and datatype properties declare one domain and one range (OOPS! P11, P19)."""
    props: set[URIRef] = set()
    for kind in (OWL.ObjectProperty, OWL.DatatypeProperty):
        props |= {p for p in graph.subjects(RDF.type, kind) if _is_copkg(p)}
    for prop in sorted(props):
        allowed = prop in allow_list
        domains = list(graph.objects(prop, RDFS.domain))
        ranges = list(graph.objects(prop, RDFS.range))
        for values, what in ((domains, "domain"), (ranges, "range")):
            if len(values) > 1:
                yield OntologyProblem(
                    f"multiple_{what}s",
                    prefixed(prop),
                    f"{len(values)} rdfs:{what} axioms mean their intersection: keep one",
                )
        missing = [w for w, v in (("domain", domains), ("range", ranges)) if not v]
        if missing and not allowed:
            yield OntologyProblem(
                "missing_" + "_and_".join(missing),
                prefixed(prop),
                f"add rdfs:{' and rdfs:'.join(missing)}, or list the property with a reason in "
                "DOMAIN_RANGE_ALLOW_LIST",
            )
        if allowed and not missing:
            yield OntologyProblem(
                "stale_allow_list",
                prefixed(prop),
                "has a domain and a range: remove it from DOMAIN_RANGE_ALLOW_LIST",
            )
        if (prop, RDF.type, OWL.DatatypeProperty) in graph:
            for datatype in ranges:
                if datatype not in OWL2_DATATYPES:
                    yield OntologyProblem(
                        "non_owl2_datatype",
                        prefixed(prop),
                        f"range {prefixed(datatype)} is not in the OWL 2 datatype map: use "
                        "rdfs:Literal and check the datatype with a SHACL shape",
                    )
    for entry in sorted(allow_list):
        if entry not in props:
            yield OntologyProblem(
                "stale_allow_list",
                prefixed(entry),
                "is no object or datatype property: remove it from DOMAIN_RANGE_ALLOW_LIST",
            )


def check_property_values(graph: Graph) -> Iterator[OntologyProblem]:
    """Object properties take resources, datatype properties take literals."""
    object_props = set(graph.subjects(RDF.type, OWL.ObjectProperty))
    data_props = set(graph.subjects(RDF.type, OWL.DatatypeProperty))
    for s, p, o in sorted(graph):
        if p in object_props and isinstance(o, Literal):
            yield OntologyProblem(
                "literal_object_property",
                prefixed(s),
                f"{prefixed(p)} is an object property but has the literal {o.n3()}",
            )
        elif p in data_props and isinstance(o, URIRef | BNode):
            yield OntologyProblem(
                "resource_datatype_property",
                prefixed(s),
                f"{prefixed(p)} is a datatype property but has the resource {prefixed(o)}",
            )


CHECKS: tuple[Callable[[Graph], Iterable[OntologyProblem]], ...] = (
    check_header,
    check_labels,
    check_definitions,
    check_declarations,
    check_cycles,
    check_unconnected_classes,
    check_property_values,
)


def check_ontology(
    graph: Graph, allow_list: Mapping[URIRef, str] = DOMAIN_RANGE_ALLOW_LIST
) -> list[OntologyProblem]:
    """Run every check; an empty list means the ontology passes."""
    problems = [p for check in CHECKS for p in check(graph)]
    problems += check_domains_and_ranges(graph, allow_list)
    return sorted(problems)


def report(problems: Sequence[OntologyProblem]) -> str:
    """The problems one a line, or a line saying there are none."""
    if not problems:
        return "no ontology quality problems"
    return "\n".join([f"{len(problems)} ontology quality problems:", *map(str, problems)])
