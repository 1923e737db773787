"""SHACL validation of study bundles, and a report a researcher can act on.

Two engines give the same report: "sparql" (the default, `copkg.validation.shacl`: the shapes
compiled to SPARQL and run by pyoxigraph, fast at a million triples) and "pyshacl" (the reference).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from importlib.metadata import version
from pathlib import Path
from typing import Any, Protocol

import pyoxigraph as ox
from rdflib import BNode, Graph, Literal, URIRef
from rdflib.namespace import RDF, RDFS
from rdflib.term import Node

from copkg.errors import CopkgError
from copkg.namespaces import PREFIXES, SH, prefixed
from copkg.store.terms import quads_to_graph
from copkg.validation import shacl
from copkg.validation.shacl import RawResult

ENGINES = ("sparql", "pyshacl")
DEFAULT_ENGINE = "sparql"
SEVERITIES = {SH.Violation: "Violation", SH.Warning: "Warning", SH.Info: "Info"}
_IRI = re.compile(r"<?(https?://[^\s<>\"{}|\\^`]+?)>?(?=[.,;:)]?(?:\s|$))")


@dataclass(frozen=True)
class ValidationResult:
    """One SHACL result, with its terms as prefixed names."""

    severity: str
    shape: str
    focus: str
    focus_label: str | None
    path: str | None
    message: str
    value: str | None

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class ValidationReport:
    """Whether the data conforms, and every result sorted by severity, shape and focus."""

    conforms: bool
    results: list[ValidationResult] = field(default_factory=list)

    @property
    def violations(self) -> list[ValidationResult]:
        return [r for r in self.results if r.severity == "Violation"]

    @property
    def warnings(self) -> list[ValidationResult]:
        return [r for r in self.results if r.severity == "Warning"]

    def shapes(self) -> set[str]:
        """The shapes with at least one result."""
        return {r.shape for r in self.results}

    def text(self) -> str:
        """The results grouped by severity and shape, one block a result."""
        if not self.results:
            return "Conforms: no SHACL results."
        head = "Conforms" if self.conforms else "Does not conform"
        lines = [
            f"{head}: {len(self.violations)} violations, {len(self.warnings)} warnings, "
            f"{len(self.results) - len(self.violations) - len(self.warnings)} other results."
        ]
        current: tuple[str, str] | None = None
        for result in self.results:
            if (result.severity, result.shape) != current:
                current = (result.severity, result.shape)
                lines.append("")
                lines.append(f"{result.severity:<10} {result.shape}")
            label = f' ("{result.focus_label}")' if result.focus_label else ""
            lines.append(f"  focus {result.focus}{label}")
            if result.path:
                lines.append(f"  path {result.path}")
            if result.value:
                lines.append(f"  value {result.value}")
            lines.append(f"  message {result.message}")
        return "\n".join(lines)

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready form of the report."""
        return {
            "conforms": self.conforms,
            "violations": len(self.violations),
            "warnings": len(self.warnings),
            "results": [r.as_dict() for r in self.results],
        }


def load_shapes(path: str | Path) -> Graph:
    """Parse a SHACL shapes file."""
    return Graph().parse(Path(path), format="turtle")


def merge(graphs: Iterable[Graph]) -> Graph:
    """One graph holding the triples of all `graphs`."""
    merged = Graph()
    for prefix, namespace in PREFIXES.items():
        merged.bind(prefix, namespace)
    for graph in graphs:
        for triple in graph:
            merged.add(triple)
    return merged


class Lookup(Protocol):
    """Labels and types of the validated data, for the report."""

    def labels(self, node: Node) -> list[Literal]: ...

    def types(self, node: Node) -> list[Node]: ...


class GraphLookup:
    """Labels and types from an rdflib graph."""

    def __init__(self, graph: Graph) -> None:
        self.graph = graph

    def labels(self, node: Node) -> list[Literal]:
        return list(self.graph.objects(node, RDFS.label))  # type: ignore[arg-type]

    def types(self, node: Node) -> list[Node]:
        return list(self.graph.objects(node, RDF.type))


def validate(
    data_graph: Graph, shapes_graph: Graph, ont_graph: Graph, engine: str = DEFAULT_ENGINE
) -> ValidationReport:
    """Validate data merged with the ontology against the shapes, without inference.

    The ontology is merged in so that targets reach subclasses and the SPARQL constraints can
    look up declared terms, domains and ranges; no inference runs, so the shapes check what the
    data asserts rather than what an RDFS reasoner would add to make it fit.
    """
    if _engine(engine) == "pyshacl":
        return _pyshacl(merge([data_graph, ont_graph]), shapes_graph)
    raw, lookup = shacl.validate_graphs([data_graph, ont_graph], shapes_graph)
    return report_of(raw, shapes_graph, lookup)


def validate_quads(
    quads: Iterable[ox.Quad], shapes_graph: Graph, engine: str = DEFAULT_ENGINE
) -> ValidationReport:
    """Validate the merge of the quads' graphs (data and ontology), as `validate` does."""
    if _engine(engine) == "pyshacl":
        return _pyshacl(quads_to_graph(quads), shapes_graph)
    raw, lookup = shacl.validate_quads(quads, shapes_graph)
    return report_of(raw, shapes_graph, lookup)


def validate_store(
    store: ox.Store,
    originals: shacl.Originals,
    shapes_graph: Graph,
    batches: Iterable[Sequence[ox.NamedNode] | shacl.Batch] | None = None,
    shared: Sequence[ox.NamedNode] = (),
) -> ValidationReport:
    """Validate the union of a store's graphs where they are (the build's on-disk store, before
    the rules run), as validate_quads validates their merge: the same report. `originals`
    holds the literals as written (Originals.add of every literal, as it was loaded). With
    `batches`, a batch of graphs at a time where the shapes allow (shacl.validate_store)."""
    raw, lookup = shacl.validate_store(store, originals, shapes_graph, batches, shared)
    return report_of(raw, shapes_graph, lookup)


def engine_version(engine: str = DEFAULT_ENGINE) -> str:
    """What identifies an engine's results: its name and version."""
    if _engine(engine) == "pyshacl":
        return f"pyshacl {version('pyshacl')}"
    return shacl.ENGINE_VERSION


def _engine(engine: str) -> str:
    if engine not in ENGINES:
        raise CopkgError(f"no SHACL engine {engine!r}: use one of {', '.join(ENGINES)}", 400)
    return engine


def _pyshacl(data: Graph, shapes_graph: Graph) -> ValidationReport:
    import pyshacl

    _conforms, results_graph, text = pyshacl.validate(
        data,
        shacl_graph=shapes_graph,
        inference="none",
        advanced=True,
        allow_warnings=True,
        inplace=True,
    )
    if not isinstance(results_graph, Graph):
        raise CopkgError(f"the SHACL shapes could not be applied: {text}", status=500)
    raw = [
        _raw(results_graph, node) for node in results_graph.subjects(RDF.type, SH.ValidationResult)
    ]
    return report_of(raw, shapes_graph, GraphLookup(data))


def _raw(results: Graph, node: Node) -> RawResult:
    return RawResult(
        severity=results.value(node, SH.resultSeverity),  # type: ignore[arg-type]
        source=results.value(node, SH.sourceShape),  # type: ignore[arg-type]
        focus=results.value(node, SH.focusNode),  # type: ignore[arg-type]
        path=results.value(node, SH.resultPath),
        value=results.value(node, SH.value),
        messages=tuple(str(m) for m in results.objects(node, SH.resultMessage)),
    )


def report_of(raw: Iterable[RawResult], shapes: Graph, lookup: Lookup) -> ValidationReport:
    """The report of raw results, sorted; conforming unless a result is a violation."""
    results = sorted((_result(r, shapes, lookup) for r in raw), key=_sort_key)
    conforms = not any(r.severity == "Violation" for r in results)
    return ValidationReport(conforms=conforms, results=results)


def _sort_key(result: ValidationResult) -> tuple[Any, ...]:
    rank = {"Violation": 0, "Warning": 1}.get(result.severity, 2)
    return (rank, result.shape, result.focus, result.path or "", result.value or "", result.message)


def _result(raw: RawResult, shapes: Graph, lookup: Lookup) -> ValidationResult:
    source = raw.source
    shape = _named_shape(shapes, source)
    messages = list(raw.messages)
    if shape != source and shapes.value(source, SH.message) is None:
        messages = [str(m) for m in shapes.objects(shape, SH.message)] or messages
    focus, value, severity = raw.focus, raw.value, raw.severity
    return ValidationResult(
        severity=SEVERITIES.get(severity, prefixed(severity) if severity else "Violation"),  # type: ignore[call-overload]
        shape=prefixed(shape) if isinstance(shape, URIRef) else "(anonymous shape)",
        focus=_term(focus, lookup),
        focus_label=_label(lookup, focus),
        path=_path(shapes, raw.path) if raw.path is not None else None,
        message=_prefix_iris(" ".join(sorted(set(messages)))),
        value=_term(value, lookup) if value is not None and value != focus else None,
    )


def _named_shape(shapes: Graph, shape: Node | None) -> Node | None:
    """The outermost shape that holds `shape` (itself when no other shape holds it)."""
    seen: set[Node] = set()
    while shape is not None and shape not in seen:
        seen.add(shape)
        parent = next(
            (
                s
                for prop in (SH.property, SH.node, SH["not"], SH.qualifiedValueShape)
                for s in shapes.subjects(prop, shape)
            ),
            None,
        )
        if parent is None:
            parent = _list_owner(shapes, shape)
        if parent is None:
            break
        shape = parent
    return shape


def _list_owner(shapes: Graph, member: Node) -> Node | None:
    """The shape whose sh:or/sh:and/sh:xone list holds `member`."""
    cell = next(shapes.subjects(RDF.first, member), None)
    while cell is not None:
        previous = next(shapes.subjects(RDF.rest, cell), None)
        if previous is None:
            for prop in (SH["or"], SH["and"], SH.xone):
                owner = next(shapes.subjects(prop, cell), None)
                if owner is not None:
                    return owner
            return None
        cell = previous
    return None


def _path(shapes: Graph, path: Node) -> str:
    if isinstance(path, BNode):
        inverse = shapes.value(path, SH.inversePath)
        if inverse is not None:
            return f"^{prefixed(inverse)}"
        return "(complex path)"
    return prefixed(path)


#: The longest literal a report shows whole (longer ones are cut, with "...").
SHOWN_LITERAL = 120


def _term(node: Node | None, lookup: Lookup) -> str:
    if node is None:
        return "-"
    if isinstance(node, Literal):
        text = node.n3()
        return text if len(text) <= SHOWN_LITERAL else text[: SHOWN_LITERAL - 3] + "..."
    if isinstance(node, BNode):
        types = sorted(prefixed(t) for t in lookup.types(node))
        return f"[] a {', '.join(types)}" if types else "[]"
    return prefixed(node)


def _label(lookup: Lookup, node: Node | None) -> str | None:
    """The English rdfs:label of a node, else any label, else None."""
    if node is None or isinstance(node, Literal):
        return None
    labels = sorted(lookup.labels(node), key=lambda lit: (lit.language != "en", lit))
    return str(labels[0]) if labels else None


def _prefix_iris(message: str) -> str:
    """Full IRIs that a SPARQL message template put in, as prefixed names."""
    return _IRI.sub(lambda m: prefixed(URIRef(m.group(1))), message)
