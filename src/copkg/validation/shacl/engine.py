"""Run SHACL shapes as SPARQL over a pyoxigraph Store: one query a constraint, all focus
nodes at once.

The data is in the store's default graph. Values the store may keep in another form than
written (XSD-typed literals) come back to Python and are judged in their written form
(`copkg.validation.shacl.literals`); everything else is judged by the query.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, cast

import pyoxigraph as ox
from rdflib import BNode, Graph, Literal, URIRef
from rdflib.namespace import RDFS
from rdflib.term import Node

from copkg.errors import CopkgError
from copkg.namespaces import SH
from copkg.store.terms import from_ox
from copkg.validation.shacl.compile import Compiler, merge_prologues
from copkg.validation.shacl.literals import NEEDS_PYTHON, Originals, value_fails
from copkg.validation.shacl.shapes import Query, Shape, ShapesReader, unsupported

_NOT_JOINABLE = re.compile(
    r"\b(GROUP\s+BY|LIMIT|OFFSET|MINUS|VALUES|COUNT|SUM|MIN|MAX|AVG|SAMPLE|GROUP_CONCAT)\b",
    re.IGNORECASE,
)
_THIS = ox.Variable("this")
#: Up to this many focus nodes, a SPARQL constraint runs once a node with $this pre-bound
#: (each run is then a few index look-ups); beyond, once for all, joined with the targets.
_PER_NODE = 500
_UNKNOWN = object()


@dataclass(frozen=True)
class RawResult:
    """One SHACL validation result, its terms as written in the data and the shapes."""

    severity: Node
    source: Node
    focus: Node
    path: Node | None
    value: Node | None
    messages: tuple[str, ...]


class Engine:
    """Validate the data of `store` (its default graph, or with `union` the union of its
    graphs) against a shapes graph (or its shapes as read already: `top`). `subclasses`
    gives a class and its subclasses where another store holds the class hierarchy (a batch
    of the corpus validated on its own, copkg.validation.shacl.batched)."""

    def __init__(
        self,
        store: ox.Store,
        originals: Originals,
        shapes: Graph | None = None,
        *,
        union: bool = False,
        top: list[Shape] | None = None,
        subclasses: Callable[[Node], list[Node]] | None = None,
    ) -> None:
        self.store = store
        self.options: dict[str, object] = {"use_default_graph_as_union": True} if union else {}
        self.originals = originals
        self.subclasses = subclasses or self._subclasses
        self.compiler = Compiler(self.subclasses)
        self._classes: dict[Node, list[Node]] = {}
        if top is None:
            if shapes is None:
                raise CopkgError("no shapes to validate against", 500)
            top = ShapesReader(shapes).top_level()  # unsupported features fail here, first
        self.top = top

    def _subclasses(self, cls: Node) -> list[Node]:
        if cls not in self._classes:
            found = self.store.query(
                f"SELECT DISTINCT ?c WHERE {{ ?c {RDFS.subClassOf.n3()}* {cls.n3()} }}",
                **self.options,  # type: ignore[arg-type]
            )
            self._classes[cls] = sorted({from_ox(r["c"]) for r in found} | {cls}, key=str)  # type: ignore[union-attr]
        return self._classes[cls]

    def run(self, shapes: Iterable[Shape] | None = None) -> list[RawResult]:
        """The results of every top-level shape, or of `shapes` (some of them)."""
        results: list[RawResult] = []
        for shape in self.top if shapes is None else shapes:
            if shape.deactivated:
                continue
            focus = self.compiler.focus(shape)
            results += self._shape(shape, focus)
            for prop in shape.properties:
                if not prop.deactivated:
                    results += self._shape(prop, _focus_along(shape, prop, focus))
        return results

    def _shape(self, shape: Shape, focus: tuple[str, str | None, str]) -> list[RawResult]:
        results = []
        for key, rule in shape.values:
            results += self._values(shape, focus, key, rule)
        if shape.path is not None:
            results += self._counts(shape, focus)
            for other in shape.less_or_equal:
                results += self._less_or_equal(shape, focus, other)
        for query in shape.sparql:
            if not query.deactivated:
                results += self._sparql(shape, focus, query)
        return results

    def _select(self, sparql: str, **options: Any) -> Iterator[ox.QuerySolution]:
        try:
            solutions = self.store.query(sparql, **self.options, **options)  # type: ignore[arg-type]
            if not isinstance(solutions, ox.QuerySolutions):
                raise CopkgError(f"a SHACL query is not a SELECT:\n{sparql}", 500)
            yield from solutions
        except SyntaxError as exc:
            raise CopkgError(f"a SHACL query is not valid SPARQL: {exc}\n{sparql}", 500) from exc

    def _result(
        self, shape: Shape, focus: Node, value: Node | None = None, **extra: object
    ) -> RawResult:
        messages = extra.get("messages") or tuple(str(m) for m in shape.messages)
        path = extra.get("path", shape.path.node if shape.path else None)
        generic = f"{extra.get('component', 'a constraint')} of {shape.name} not met"
        return RawResult(shape.severity, shape.node, focus, path, value, messages or (generic,))  # type: ignore[arg-type]

    def _values(
        self, shape: Shape, focus: tuple[str, str | None, str], key: URIRef, rule: object
    ) -> list[RawResult]:
        enum, test, prologue = focus
        component = f"sh:{key[len(str(SH)) :]}"
        check = self.compiler.value(key, rule, "?v")
        python = NEEDS_PYTHON.format(v="?v")
        if shape.path is None:
            where = f"{enum} BIND (?this AS ?v)"
        elif test is None:
            where = f"{enum} {shape.path.pattern('?this', '?v')}"
        else:
            where = f"{shape.path.pattern('?this', '?v')} {test}"
        sparql = (
            f"{prologue}\nSELECT DISTINCT ?this ?v (({check}) AS ?fails) WHERE {{ {where} "
            f"FILTER ({python} || {check}) }}"
        )
        predicate = self._predicate(shape)
        results = []
        verdicts: dict[Node, object] = {}  # written value -> python_fails (values repeat)
        for row in self._select(sparql):
            this, stored = row["this"], row["v"]
            verdict = row["fails"]
            store_says = verdict is not None and verdict.value == "true"
            if not isinstance(stored, ox.Literal):
                if store_says:
                    results.append(
                        self._result(shape, from_ox(this), from_ox(stored), component=component)
                    )
                continue
            subject = this if shape.path is not None else None
            for written in self._written(subject, predicate, stored):
                fails = verdicts.get(written, _UNKNOWN)
                if fails is _UNKNOWN:
                    fails = verdicts[written] = python_fails(key, rule, written)
                if fails if fails is not None else store_says:
                    results.append(
                        self._result(
                            shape,
                            from_ox(this) if subject else written,
                            written,
                            component=component,
                        )
                    )
        return results

    def _predicate(self, shape: Shape) -> ox.NamedNode | None:
        if shape.path is None or shape.path.inverse:
            return None
        return ox.NamedNode(str(shape.path.predicate))

    def _written(
        self, subject: object, predicate: ox.NamedNode | None, stored: ox.Literal
    ) -> list[Node]:
        if subject is None:
            return [self.originals.anywhere(stored)]
        return self.originals.written(subject, predicate, stored)

    def _counts(self, shape: Shape, focus: tuple[str, str | None, str]) -> list[RawResult]:
        enum, test, prologue = focus
        path = shape.path
        assert path is not None
        found: list[RawResult] = []
        v = "?v"
        if shape.min_count:
            if shape.min_count == 1:
                where = f"{enum} FILTER NOT EXISTS {{ {path.pattern('?this', v)} }}"
                sparql = f"{prologue}\nSELECT ?this WHERE {{ {where} }}"
            else:
                sparql = (
                    f"{prologue}\nSELECT ?this WHERE {{ {enum} OPTIONAL {{ "
                    f"{path.pattern('?this', v)} }} }} GROUP BY ?this "
                    f"HAVING (COUNT(DISTINCT {v}) < {shape.min_count})"
                )
            found += self._focus_results(shape, sparql, "sh:minCount")
        if shape.max_count is not None:
            where = (
                f"{path.pattern('?this', v)} {test}"
                if test
                else f"{enum} {path.pattern('?this', v)}"
            )
            sparql = (
                f"{prologue}\nSELECT ?this WHERE {{ {where} }} GROUP BY ?this "
                f"HAVING (COUNT(DISTINCT {v}) > {shape.max_count})"
            )
            found += self._focus_results(shape, sparql, "sh:maxCount")
        if shape.unique_lang:
            a, b = "?a", "?b"
            where = (
                f"{path.pattern('?this', a)} {path.pattern('?this', b)} FILTER (!sameTerm({a}, {b})"
                f' && LANG({a}) != "" && LCASE(LANG({a})) = LCASE(LANG({b})))'
            )
            where = f"{where} {test}" if test else f"{enum} {where}"
            sparql = (
                f"{prologue}\nSELECT DISTINCT ?this (LCASE(LANG({a})) AS ?lang) WHERE {{ {where} }}"
            )
            found += self._focus_results(shape, sparql, "sh:uniqueLang")
        if shape.qualified is not None:
            conforms = f"!({self.compiler.fails(shape.qualified, v)})"
            matching = f"{path.pattern('?this', v)} FILTER ({conforms})"
            for bound, op, component in (
                (shape.qualified_min, "<", "sh:qualifiedMinCount"),
                (shape.qualified_max, ">", "sh:qualifiedMaxCount"),
            ):
                if bound is None or (bound == 0 and op == "<"):
                    continue
                sparql = (
                    f"{prologue}\nSELECT ?this WHERE {{ {enum} OPTIONAL {{ {matching} }} }} "
                    f"GROUP BY ?this HAVING (COUNT(DISTINCT {v}) {op} {bound})"
                )
                found += self._focus_results(shape, sparql, component)
        return found

    def _focus_results(self, shape: Shape, sparql: str, component: str) -> list[RawResult]:
        return [
            self._result(shape, from_ox(row["this"]), component=component)
            for row in self._select(sparql)
        ]

    def _less_or_equal(
        self, shape: Shape, focus: tuple[str, str | None, str], other: URIRef
    ) -> list[RawResult]:
        enum, test, prologue = focus
        path = shape.path
        assert path is not None
        where = f"{path.pattern('?this', '?v')} ?this {other.n3()} ?o ."
        where = f"{where} {test}" if test else f"{enum} {where}"
        sparql = f"{prologue}\nSELECT DISTINCT ?this ?v ?o WHERE {{ {where} }}"
        pairs: dict[tuple[Node, Node], None] = {}
        predicate, compared = self._predicate(shape), ox.NamedNode(str(other))
        for row in self._select(sparql):
            this = row["this"]
            for value in self._term_written(this, predicate, row["v"]):
                for bound in self._term_written(this, compared, row["o"]):
                    if isinstance(value, BNode) or isinstance(bound, BNode):
                        raise CopkgError(
                            f"{shape.name} (sh:lessThanOrEquals) cannot compare a blank node: "
                            f"{from_ox(this).n3()} has a blank node as {path.sparql()} or "
                            f"{other.n3()}; give it an IRI or a literal",
                            status=422,
                        )
                    if not _less_or_equal(value, bound):
                        pairs[(from_ox(this), value)] = None
        return [self._result(shape, f, v, component="sh:lessThanOrEquals") for f, v in pairs]

    def _term_written(
        self, subject: object, predicate: ox.NamedNode | None, term: object
    ) -> list[Node]:
        if isinstance(term, ox.Literal):
            return self.originals.written(subject, predicate, term)
        return [from_ox(term)]  # type: ignore[arg-type]

    def _sparql(
        self, shape: Shape, focus: tuple[str, str | None, str], query: Query
    ) -> list[RawResult]:
        enum, _test, focus_prologue = focus
        text = query.select
        if "$PATH" in text:
            if shape.path is None:
                raise unsupported("$PATH in the SPARQL constraint of a node shape", shape.node)
            text = text.replace("$PATH", shape.path.sparql())
        prologue = merge_prologues(focus_prologue, query.prologue, shape=shape.node)
        probe = f"{prologue}\nSELECT * WHERE {{ {{ {text} }} }} LIMIT 0"
        try:
            answer = self.store.query(probe, **self.options)  # type: ignore[arg-type]
            names = {v.value for v in answer.variables}  # type: ignore[union-attr]
        except SyntaxError as exc:
            raise CopkgError(
                f"the SPARQL constraint of {shape.name} is not valid: {exc}", 500
            ) from exc
        nodes = [r["this"] for r in self._select(f"{prologue}\nSELECT ?this WHERE {enum}")]
        if len(nodes) > _PER_NODE and "this" in names and not _NOT_JOINABLE.search(text):
            rows = self._select(f"{prologue}\nSELECT * WHERE {{ {enum} {{ {text} }} }}")
            solutions = [(row["this"], row) for row in rows]
        else:  # few focus nodes (or a query a join would change): $this pre-bound, node by node
            solutions = [
                (node, row)
                for node in nodes
                for row in self._select(f"{prologue}\n{text}", substitutions={_THIS: node})
            ]
        return self._sparql_results(shape, query, sorted(names), solutions)

    def _sparql_results(
        self,
        shape: Shape,
        query: Any,
        names: list[str],
        solutions: list[tuple[Any, Any]],
    ) -> list[RawResult]:
        results = []
        seen: set[tuple[Any, ...]] = set()
        failed: set[Any] = set()
        shape_messages = set(shape.messages)
        for focus, row in solutions:
            bound = {n: row[n] for n in names if row[n] is not None}
            if "failure" in bound:
                if focus in failed:
                    continue
                failed.add(focus)
                this_term, path, value, others = focus, None, None, {}
            else:
                this_term = bound.pop("this", None)
                path, value = bound.pop("path", None), bound.pop("value", None)
                others = bound
                if path is None and value is None and this_term is None:
                    continue
                key = (focus, this_term, path, value, tuple(sorted(others.items(), key=str)))
                if key in seen:
                    continue
                seen.add(key)
            this = from_ox(this_term or focus)
            predicate = path if isinstance(path, ox.NamedNode) else self._predicate(shape)
            value_term: Node | None = None
            if value is not None:
                value_term = self._term_written(this_term or focus, predicate, value)[0]
            elif shape.path is None:
                value_term = this
            path_term = from_ox(path) if path is not None else None
            variables = {n: self._anywhere(t) for n, t in others.items()}
            variables["this"] = this
            if path_term is not None:
                variables["path"] = path_term
            if value_term is not None:
                variables["value"] = value_term
            messages = [
                _format(str(m), variables) for m in query.messages if m not in shape_messages
            ] + [_format(str(m), variables) for m in shape.messages]
            extra: dict[str, object] = {"messages": tuple(messages), "component": "sh:sparql"}
            if path_term is not None:
                extra["path"] = path_term
            results.append(self._result(shape, this, value_term, **extra))
        return results

    def _anywhere(self, term: object) -> Node:
        if isinstance(term, ox.Literal):
            return self.originals.anywhere(term)
        return from_ox(term)  # type: ignore[arg-type]


def _focus_along(
    shape: Shape, prop: Shape, focus: tuple[str, str | None, str]
) -> tuple[str, str | None, str]:
    """The focus of a property shape of `shape`: without the test that a node is a focus node
    where every node its path starts from is one (its predicate is one whose subjects `shape`
    targets, or, for an inverse path, whose objects). The same results; the test is a union of
    all the targets, run once a value otherwise (one look-up a target on disk)."""
    enum, test, prologue = focus
    path = prop.path
    if test is None or path is None:
        return focus
    targeted = shape.objects_of if path.inverse else shape.subjects_of
    return (enum, "", prologue) if path.predicate in targeted else focus


def python_fails(key: URIRef, rule: object, value: Node) -> bool | None:
    """Whether the written `value` fails a value constraint; None when only the store can say."""
    if key in (SH["or"], SH["and"], SH["not"]):
        shapes = cast(list[Shape], rule if isinstance(rule, list) else [rule])
        verdicts = [_shape_fails(s, value) for s in shapes]
        if key == SH["or"]:
            return False if False in verdicts else (True if None not in verdicts else None)
        if key == SH["and"]:
            return True if True in verdicts else (False if None not in verdicts else None)
        return None if verdicts[0] is None else not verdicts[0]  # sh:not
    return value_fails(key, rule, value)


def _shape_fails(shape: Shape, value: Node) -> bool | None:
    if shape.deactivated:
        return False
    if shape.path is not None or shape.properties or shape.sparql:
        return None
    verdicts = [python_fails(key, rule, value) for key, rule in shape.values]
    return True if True in verdicts else (False if None not in verdicts else None)


def _less_or_equal(value: Node, bound: Node) -> bool:
    """sh:lessThanOrEquals on one pair (neither a blank node), as pyshacl compares."""

    def plain(term: Node) -> tuple[object, bool]:
        if isinstance(term, URIRef):
            return str(term), True
        if isinstance(term, Literal) and isinstance(term.value, str):
            return term.value, True
        return term, False

    (a, a_text), (b, b_text) = plain(value), plain(bound)
    if a_text != b_text:
        return False
    try:
        return bool(a <= b)  # type: ignore[operator]
    except TypeError:
        return False


def _format(message: str, variables: dict[str, Node]) -> str:
    """A message template with {$var} and {?var} filled in, as pyshacl fills them, but the
    value as plain text: pyshacl's re.sub reads a backslash in it (a literal "C:\\docs") as
    an escape, and fails or garbles the message."""
    for name, value in variables.items():
        message = re.sub(f"{{[?$]{re.escape(name)}}}", str(value).replace("\\", "\\\\"), message)
    return message
