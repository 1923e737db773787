"""What a rule reads and writes, read off its SPARQL algebra: for incremental inference.

For each triple pattern of a rule's WHERE clause: whether it sits in a non-monotone position
(OPTIONAL, MINUS, EXISTS / NOT EXISTS), and its *anchor*, the top-level variable through which
a change to a matching triple reaches the rule's solutions (a variable of the pattern that every
solution binds to the same term: it occurs in a mandatory top-level pattern and no sub-select
hides it). Also the CONSTRUCT template, the variables a BIND mints as IRIs (with the fixed prefix
they start with) and where a VALUES block can go. Nothing here names a rule.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from typing import Any

import pyoxigraph as ox
from rdflib import BNode, Literal, URIRef, Variable
from rdflib.namespace import RDF
from rdflib.paths import Path as RdfPath
from rdflib.plugins.sparql.algebra import translateQuery
from rdflib.plugins.sparql.parserutils import CompValue

from copkg.rdf_io import SPARQL_PARSER_LOCK, parse_sparql_query
from copkg.store.terms import to_ox, to_ox_iri

#: Algebra nodes the analysis understands; anything else makes the rule unsupported.
_PASS = {"Project", "Distinct", "Reduced", "ToMultiSet", "Filter", "Extend", "Join", "OrderBy"}

Term = Variable | ox.NamedNode | ox.BlankNode | ox.Literal


@dataclass(frozen=True)
class Pattern:
    """One triple pattern of a rule body (constants as pyoxigraph terms)."""

    subject: Term
    predicate: Term | None  # None: a property path
    object: Term
    negated: bool
    mandatory: bool
    anchor: Variable | None
    path_iris: frozenset[str] = frozenset()
    #: when no variable of the pattern is an anchor: (its variable, a predicate, whether that
    #: variable is the subject) of a sibling pattern in the same basic graph pattern whose other
    #: end is the anchor; the anchor's values are looked up in the store.
    bridge: tuple[Variable, ox.NamedNode, bool] | None = None

    def matches(self, triple: ox.Triple) -> bool:
        """Whether the triple could match this pattern (constants equal; paths never)."""
        if self.predicate is None:
            return False
        return all(
            isinstance(want, Variable | ox.BlankNode) or want == got
            for want, got in (
                (self.subject, triple.subject),
                (self.predicate, triple.predicate),
                (self.object, triple.object),
            )
        )

    def binding(self, triple: ox.Triple) -> Any:
        """The anchor's value when the triple matches this pattern."""
        return self.value_of(self.anchor, triple)

    def value_of(self, var: Variable | None, triple: ox.Triple) -> Any:
        """The value of one of the pattern's variables when the triple matches it."""
        for want, got in (
            (self.subject, triple.subject),
            (self.predicate, triple.predicate),
            (self.object, triple.object),
        ):
            if want == var:
                return got
        return None


@dataclass
class RuleShape:
    """The parts of one rule that incremental inference needs."""

    name: str
    text: str
    patterns: list[Pattern] = field(default_factory=list)
    template: list[tuple[Term, Term, Term]] = field(default_factory=list)
    certain: set[Variable] = field(default_factory=set)
    minted: dict[Variable, str] = field(default_factory=dict)
    bound: set[Variable] = field(default_factory=set)
    unsupported: str | None = None
    values_at: int = -1

    def with_values(self, var: Variable, values: list[Any]) -> str:
        """The rule's text with `VALUES ?var { ... }` opening its WHERE clause and every
        sub-select that passes ?var up to it (the same answers: the top-level VALUES restricts
        ?var anyway; but the engine need not compute a sub-select for every other value)."""
        block = f" VALUES ?{var} {{ {' '.join(str(v) for v in values)} }} "
        text = self.text
        groups = [offset for offset, _kind in restrictable_groups(text, str(var))]
        for offset in sorted((self.values_at, *groups), reverse=True):
            text = text[:offset] + block + text[offset:]
        return text


@functools.lru_cache(maxsize=128)
def analyse(name: str, text: str) -> RuleShape:
    """The shape of one rule (`unsupported` says why the incremental scheme cannot use it).

    Cached: rdflib's SPARQL parser takes ~60 ms a rule; the shape is not to be changed."""
    shape = RuleShape(name=name, text=text)
    try:
        with SPARQL_PARSER_LOCK:  # rdflib's parser and algebra: one thread at a time
            query = translateQuery(parse_sparql_query(text))
    except Exception as exc:  # noqa: BLE001 - rdflib raises many kinds on unusual syntax
        shape.unsupported = f"rdflib cannot read it ({type(exc).__name__})"
        return shape
    algebra = query.algebra
    shape.values_at = _where_brace(text)
    if shape.values_at < 0:
        shape.unsupported = "no WHERE clause found"
        return shape
    raw: list[tuple[Any, Any, Any, bool, bool, tuple[frozenset[Variable], ...], int]] = []
    try:
        _walk(algebra.p, shape, raw, negated=False, mandatory=True, scopes=(), top=True)
    except _UnsupportedError as exc:
        shape.unsupported = str(exc)
        return shape
    for s, p, o, _negated, mandatory, _scopes, _group in raw:
        if mandatory:
            shape.certain |= {t for t in (s, p, o) if isinstance(t, Variable)}
    shape.certain -= shape.bound
    for s, p, o, negated, mandatory, scopes, group in raw:
        pattern = _pattern(s, p, o, negated, mandatory, scopes, shape.certain)
        if pattern.anchor is None and pattern.predicate is not None:
            siblings = [r for r in raw if r[6] == group]
            pattern = _bridged(pattern, siblings, scopes, shape.certain)
        shape.patterns.append(pattern)
    template = algebra.get("template") or []
    for triple in template:
        if any(isinstance(t, BNode) for t in triple):
            shape.unsupported = "its template makes blank nodes (fresh on every run)"
        shape.template.append(tuple(_term(t) for t in triple))  # type: ignore[arg-type]
    return shape


class _UnsupportedError(Exception):
    pass


def _walk(
    node: Any,
    shape: RuleShape,
    raw: list[Any],
    *,
    negated: bool,
    mandatory: bool,
    scopes: tuple[frozenset[Variable], ...],
    top: bool = False,
) -> None:
    if not isinstance(node, CompValue):
        raise _UnsupportedError(f"unexpected algebra node {type(node).__name__}")
    name = node.name
    if name == "BGP":
        group = len(raw)
        for s, p, o in node.triples:
            raw.append((s, p, o, negated, mandatory, scopes, group))
        return
    if name == "values":
        return
    if name in {"Group", "AggregateJoin", "Graph", "Slice", "ServiceGraphPattern"}:
        raise _UnsupportedError(f"{name} is not supported incrementally")
    if name == "Union":
        _walk(node.p1, shape, raw, negated=negated, mandatory=False, scopes=scopes)
        _walk(node.p2, shape, raw, negated=negated, mandatory=False, scopes=scopes)
        return
    if name == "LeftJoin":
        _walk(node.p1, shape, raw, negated=negated, mandatory=mandatory, scopes=scopes)
        _walk(node.p2, shape, raw, negated=True, mandatory=False, scopes=scopes)
        _exists(node.get("expr"), shape, raw, scopes)
        return
    if name == "Minus":
        _walk(node.p1, shape, raw, negated=negated, mandatory=mandatory, scopes=scopes)
        _walk(node.p2, shape, raw, negated=True, mandatory=False, scopes=scopes)
        return
    if name not in _PASS:
        raise _UnsupportedError(f"{name} is not supported incrementally")
    if name == "Project":
        if not top:
            scopes = (*scopes, frozenset(node.PV))
            mandatory = False
        top = False
    if name == "Extend":
        shape.bound.add(node.var)
        prefix = _minted_prefix(node.expr)
        if prefix and not scopes:
            shape.minted[node.var] = prefix
    if name == "Filter":
        _exists(node.expr, shape, raw, scopes)
    if name == "Join":
        _walk(node.p1, shape, raw, negated=negated, mandatory=mandatory, scopes=scopes)
        _walk(node.p2, shape, raw, negated=negated, mandatory=mandatory, scopes=scopes)
        return
    _walk(node.p, shape, raw, negated=negated, mandatory=mandatory, scopes=scopes, top=top)


def _exists(expr: Any, shape: RuleShape, raw: list[Any], scopes: Any) -> None:
    """Patterns inside EXISTS / NOT EXISTS of an expression: non-monotone."""
    for sub in _expressions(expr):
        if sub.name in {"Builtin_EXISTS", "Builtin_NOTEXISTS"}:
            _walk(sub.graph, shape, raw, negated=True, mandatory=False, scopes=scopes)


def _expressions(expr: Any) -> Iterator[CompValue]:
    if isinstance(expr, CompValue):
        yield expr
        for value in expr.values():
            yield from _expressions(value)
    elif isinstance(expr, list | tuple):
        for value in expr:
            yield from _expressions(value)


def _minted_prefix(expr: Any) -> str | None:
    """The fixed start of the IRIs `IRI(CONCAT("prefix", ...))` mints, if the BIND is that."""
    if not (isinstance(expr, CompValue) and expr.name in {"Builtin_IRI", "Builtin_URI"}):
        return None
    arg = expr.arg
    if isinstance(arg, CompValue) and arg.name == "Builtin_CONCAT":
        first = arg.arg[0] if arg.arg else None
        if isinstance(first, Literal) and str(first):
            return str(first)
    return None


def _pattern(
    s: Any,
    p: Any,
    o: Any,
    negated: bool,
    mandatory: bool,
    scopes: tuple[frozenset[Variable], ...],
    certain: set[Variable],
) -> Pattern:
    def eligible(term: Any) -> bool:
        return isinstance(term, Variable) and term in certain and all(term in pv for pv in scopes)

    if isinstance(p, RdfPath):
        iris = frozenset(str(i) for i in _path_iris(p))
        return Pattern(_term(s), None, _term(o), negated, mandatory, None, iris)
    anchor = next((t for t in (s, o, p) if eligible(t)), None)
    return Pattern(_term(s), _term(p), _term(o), negated, mandatory, anchor)


def _bridged(
    pattern: Pattern,
    siblings: list[Any],
    scopes: tuple[frozenset[Variable], ...],
    certain: set[Variable],
) -> Pattern:
    """The pattern anchored through a sibling (?v q ?anchor) or (?anchor q ?v), if it has one."""
    own = {
        t for t in (pattern.subject, pattern.predicate, pattern.object) if isinstance(t, Variable)
    }
    for s, p, o, *_rest in siblings:
        if not isinstance(p, URIRef):
            continue
        for here, there, here_is_subject in ((s, o, True), (o, s, False)):
            if (
                here in own
                and isinstance(there, Variable)
                and there in certain
                and all(there in pv for pv in scopes)
            ):
                return replace(pattern, anchor=there, bridge=(here, to_ox_iri(p), here_is_subject))
    return pattern


def _path_iris(path: Any) -> Iterator[URIRef]:
    if isinstance(path, URIRef):
        yield path
        return
    for attr in ("args", "path"):
        sub = getattr(path, attr, None)
        if isinstance(sub, list):
            for item in sub:
                yield from _path_iris(item)
        elif sub is not None:
            yield from _path_iris(sub)


def _term(term: Any) -> Term:
    if isinstance(term, Variable):
        return term
    if isinstance(term, BNode):
        return ox.BlankNode(str(term))
    return to_ox(term)  # type: ignore[return-value]


_TOKEN = re.compile(
    r'<[^<>"{}|^`\\\s]*>|"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|#[^\n]*|[{}()*]|[?$]\w+|\w+'
)


def _where_brace(text: str) -> int:
    """The offset just after the `{` that opens the top-level WHERE clause, or -1."""
    depth = 0
    seen_where = False
    for match in _TOKEN.finditer(text):
        token = match.group()
        if token == "{":
            if depth == 0 and seen_where:
                return match.end()
            depth += 1
        elif token == "}":
            depth -= 1
        elif depth == 0 and token.upper() == "WHERE":
            seen_where = True
    return -1


RDF_TYPE = ox.NamedNode(str(RDF.type))


def restrictable_groups(text: str, var: str) -> list[tuple[int, str]]:
    """Offsets just after the `{` (with the group's kind: select, OPTIONAL, MINUS) of each
    group inside the WHERE clause where a VALUES block on
    ?var can go without changing the answers: a sub-select's WHERE, an OPTIONAL or a MINUS
    group that mentions ?var, directly inside the top-level group or another such group (so
    every row it is joined with, or subtracted from, already has ?var from that VALUES), with
    every enclosing sub-select passing ?var up."""
    start = _where_brace(text)
    # each open group: [offset after "{", kind, restricted (gets VALUES), mentions var, scope ok]
    stack: list[list[Any]] = [[start, "top", True, False, True]]
    found: list[tuple[int, str]] = []
    projection: list[str] | None = None
    parens = 0
    previous = ""
    for match in _TOKEN.finditer(text, start):
        token = match.group()
        if token.startswith("#"):
            continue
        if projection is not None:
            if token == "(":
                parens += 1
            elif token == ")":
                parens -= 1
            elif token == "{" and parens == 0:
                passes = ("*" in projection or var in projection) and stack[-1][4]
                stack.append([match.end(), "select", stack[-1][2] and passes, False, passes])
                projection = None
            elif parens == 0 and token[0] in "?$*":
                projection.append(token.lstrip("?$"))
            continue
        upper = token.upper()
        if upper == "SELECT":
            projection, parens = [], 0
            if previous == "{":
                stack[-1][1] = "wrapper"  # `{ SELECT ... }` holds nothing but the sub-select
        elif token == "{":
            kind = previous if previous in {"MINUS", "OPTIONAL"} else "group"
            parent = stack[-1]
            stack.append([match.end(), kind, parent[2] and kind != "group", False, parent[4]])
        elif token == "}":
            offset, kind, restricted, mentions, scope = stack.pop()
            if not stack:
                break
            if restricted and mentions and kind in {"select", "MINUS", "OPTIONAL"}:
                found.append((offset, kind))
            if mentions and (kind != "select" or scope):
                stack[-1][3] = True
        elif token[0] in "?$" and token[1:] == var and stack[-1][4]:
            stack[-1][3] = True
        previous = upper
    return found
