"""Read a SHACL shapes graph into plain dataclasses, refusing features the engine lacks."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from rdflib import BNode, Graph, Literal, URIRef
from rdflib.collection import Collection
from rdflib.namespace import OWL, RDF, RDFS
from rdflib.term import Node

from copkg.errors import CopkgError
from copkg.namespaces import SH, prefixed

_TARGETS = (SH.targetClass, SH.targetNode, SH.targetSubjectsOf, SH.targetObjectsOf, SH.target)
_VALUE_KEYS = (
    SH.datatype,
    SH["class"],
    SH.nodeKind,
    SH.pattern,
    SH["in"],
    SH.maxLength,
    SH.minLength,
    SH.languageIn,
    SH["or"],
    SH["and"],
    SH["not"],
)
#: Predicates of the sh: namespace a shape may use, with what the engine does with them.
SUPPORTED = {
    *_TARGETS,
    *_VALUE_KEYS,
    SH.path,
    SH.property,
    SH.minCount,
    SH.maxCount,
    SH.uniqueLang,
    SH.lessThanOrEquals,
    SH.qualifiedValueShape,
    SH.qualifiedMinCount,
    SH.qualifiedMaxCount,
    SH.sparql,
    SH.severity,
    SH.message,
    SH.deactivated,
    SH.flags,
    SH.name,
    SH.description,
    SH.order,
    SH.group,
    SH.defaultValue,
    SH.declare,
    SH.prefixes,
}
_UNBINDABLE = re.compile(r"\$(shapesGraph|currentShape)\b")


@dataclass(frozen=True)
class Query:
    """A SPARQL SELECT of the shapes (target or constraint), with its PREFIX prologue."""

    node: Node
    select: str
    prologue: str
    messages: tuple[Literal, ...] = ()
    deactivated: bool = False


@dataclass(frozen=True)
class Path:
    """A path the engine supports: a predicate, or its inverse."""

    node: Node
    predicate: URIRef
    inverse: bool = False

    def sparql(self) -> str:
        return ("^" if self.inverse else "") + self.predicate.n3()

    def pattern(self, subject: str, obj: str) -> str:
        """The triple pattern from `subject` along the path to `obj`."""
        if self.inverse:
            return f"{obj} {self.predicate.n3()} {subject} ."
        return f"{subject} {self.predicate.n3()} {obj} ."


@dataclass
class Shape:
    """One node or property shape and the constraints it carries."""

    node: Node
    path: Path | None = None
    severity: Node = SH.Violation
    messages: tuple[Literal, ...] = ()
    deactivated: bool = False
    classes: list[URIRef] = field(default_factory=list)
    nodes: list[Node] = field(default_factory=list)
    subjects_of: list[URIRef] = field(default_factory=list)
    objects_of: list[URIRef] = field(default_factory=list)
    target_queries: list[Query] = field(default_factory=list)
    values: list[tuple[URIRef, object]] = field(default_factory=list)
    min_count: int | None = None
    max_count: int | None = None
    unique_lang: bool = False
    less_or_equal: list[URIRef] = field(default_factory=list)
    qualified: Shape | None = None
    qualified_min: int | None = None
    qualified_max: int | None = None
    properties: list[Shape] = field(default_factory=list)
    sparql: list[Query] = field(default_factory=list)

    @property
    def name(self) -> str:
        return prefixed(self.node) if isinstance(self.node, URIRef) else "an anonymous shape"


def unsupported(feature: str, shape: Node) -> CopkgError:
    """The error for a shape using what the engine does not implement."""
    where = prefixed(shape) if isinstance(shape, URIRef) else "an anonymous shape"
    return CopkgError(
        f"the SPARQL SHACL engine does not implement {feature} (used by {where}): "
        "validate with --engine pyshacl, or change the shape",
        status=500,
    )


class ShapesReader:
    """Parse the shapes of a shapes graph, each once."""

    def __init__(self, graph: Graph) -> None:
        self.graph = graph
        self._done: dict[Node, Shape] = {}

    def top_level(self) -> list[Shape]:
        """The shapes with targets, sorted so that the results come out in a stable order."""
        found = {s for p in _TARGETS for s in self.graph.subjects(p, None)}
        for kind in (RDFS.Class, OWL.Class):
            for shape in self.graph.subjects(RDF.type, kind):
                if (shape, RDF.type, SH.NodeShape) in self.graph:
                    raise unsupported("implicit class targets", shape)
        return [self.shape(s) for s in sorted(found, key=str)]

    def shape(self, node: Node) -> Shape:
        if node not in self._done:
            self._done[node] = shape = Shape(node)
            self._fill(shape)
        return self._done[node]

    def _fill(self, shape: Shape) -> None:
        g, node = self.graph, shape.node
        for predicate in set(g.predicates(node, None)):
            if str(predicate).startswith(str(SH)) and predicate not in SUPPORTED:
                raise unsupported(f"sh:{str(predicate)[len(str(SH)) :]}", node)
        path = g.value(node, SH.path)
        shape.path = self._path(path, node) if path is not None else None
        shape.severity = g.value(node, SH.severity) or SH.Violation
        shape.messages = tuple(m for m in g.objects(node, SH.message) if isinstance(m, Literal))
        shape.deactivated = _true(g.value(node, SH.deactivated))
        shape.classes = sorted(g.objects(node, SH.targetClass), key=str)  # type: ignore[arg-type]
        shape.nodes = sorted(g.objects(node, SH.targetNode), key=str)
        shape.subjects_of = sorted(g.objects(node, SH.targetSubjectsOf), key=str)  # type: ignore[arg-type]
        shape.objects_of = sorted(g.objects(node, SH.targetObjectsOf), key=str)  # type: ignore[arg-type]
        for target in sorted(g.objects(node, SH.target), key=str):
            shape.target_queries.append(self._query(target, node, "sh:target"))
        for key in _VALUE_KEYS:
            for value in sorted(g.objects(node, key), key=str):
                shape.values.append((key, self._value(key, value, node)))
        shape.min_count = _integer(g.value(node, SH.minCount))
        shape.max_count = _integer(g.value(node, SH.maxCount))
        shape.unique_lang = _true(g.value(node, SH.uniqueLang))
        shape.less_or_equal = sorted(g.objects(node, SH.lessThanOrEquals), key=str)  # type: ignore[arg-type]
        qualified = g.value(node, SH.qualifiedValueShape)
        if qualified is not None:
            shape.qualified = self.shape(qualified)
            shape.qualified_min = _integer(g.value(node, SH.qualifiedMinCount))
            shape.qualified_max = _integer(g.value(node, SH.qualifiedMaxCount))
        if shape.path is None and (
            shape.min_count is not None
            or shape.max_count is not None
            or shape.unique_lang
            or shape.less_or_equal
            or qualified is not None
        ):
            raise unsupported("a cardinality or property-pair constraint without sh:path", node)
        for prop in sorted(g.objects(node, SH.property), key=str):
            if shape.path is not None:
                raise unsupported("sh:property in a property shape", node)
            shape.properties.append(self.shape(prop))
        for constraint in sorted(g.objects(node, SH.sparql), key=str):
            shape.sparql.append(self._query(constraint, node, "sh:sparql"))

    def _path(self, path: Node, shape: Node) -> Path:
        if isinstance(path, URIRef):
            return Path(path, path)
        inverse = self.graph.value(path, SH.inversePath)
        single = len(set(self.graph.predicate_objects(path))) == 1
        if isinstance(path, BNode) and isinstance(inverse, URIRef) and single:
            return Path(path, inverse, inverse=True)
        raise unsupported("paths other than a predicate or sh:inversePath of one", shape)

    def _value(self, key: URIRef, value: Node, shape: Node) -> object:
        g = self.graph
        if key in (SH["or"], SH["and"]):
            return [self.shape(member) for member in Collection(g, value)]
        if key == SH["not"]:
            return self.shape(value)
        if key == SH["in"]:
            members = list(Collection(g, value))
            if any(isinstance(m, BNode) for m in members):
                raise unsupported("blank nodes in sh:in", shape)
            return members
        if key == SH.languageIn:
            return [str(lang).lower() for lang in Collection(g, value)]
        if key == SH.pattern:
            flags = g.value(shape, SH.flags)
            return (str(value), str(flags) if flags is not None else "")
        if key in (SH.maxLength, SH.minLength):
            return _integer(value)
        return value

    def _query(self, node: Node, shape: Node, what: str) -> Query:
        g = self.graph
        if isinstance(node, BNode) or (node, SH.select, None) in g:
            select = g.value(node, SH.select)
        else:
            select = None
        if select is None:
            raise unsupported(f"{what} other than a SPARQL SELECT (sh:select)", shape)
        if (node, SH.ask, None) in g or (node, SH.filterShape, None) in g:
            raise unsupported(f"{what} with sh:ask or sh:filterShape", shape)
        text = str(select)
        if _UNBINDABLE.search(text):
            raise unsupported("$shapesGraph or $currentShape in a SPARQL query", shape)
        messages = tuple(m for m in g.objects(node, SH.message) if isinstance(m, Literal))
        deactivated = _true(g.value(node, SH.deactivated))
        return Query(node, text, self._prologue(node), messages, deactivated)

    def _prologue(self, node: Node) -> str:
        """PREFIX declarations from sh:prefixes -> sh:declare."""
        lines = []
        for source in self.graph.objects(node, SH.prefixes):
            for declaration in self.graph.objects(source, SH.declare):
                prefix = self.graph.value(declaration, SH.prefix)
                namespace = self.graph.value(declaration, SH.namespace)
                if prefix is not None and namespace is not None:
                    lines.append(f"PREFIX {prefix}: <{namespace}>")
        return "\n".join(sorted(set(lines)))


def _true(value: Node | None) -> bool:
    return isinstance(value, Literal) and value.value is True


def _integer(value: Node | None) -> int | None:
    if value is None:
        return None
    if isinstance(value, Literal) and isinstance(value.value, int):
        return int(value.value)
    raise CopkgError(f"a SHACL count or length must be an integer, not {value}", status=500)
