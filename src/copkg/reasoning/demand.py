"""What rules can read when one variable of each is bound to given values: the bounded part
of a store they need, so that they run over that small graph instead of a copy of the store.

Each rule's WHERE clause is read as a tree of groups (the top group; OPTIONAL, MINUS, EXISTS
and UNION groups; sub-selects with the variables they pass up). In a group, a variable bound
by one of the group's own triple patterns (a *certain* variable) takes, in every solution that
matters, a value that the group's other patterns allow; starting from the given values of the
rule's key variable, each pattern narrows the variables at its ends by looking up the store
(a semi-join). What is kept is every triple that some pattern matches with its ends among the
values allowed: a superset of what any solution for the given values uses, or tests in its
OPTIONAL, MINUS and EXISTS groups. A group passes down only its own certain variables, and a
group narrows only variables it binds itself: removed triples then remove whole rows of a group,
rows no solution for the given values is compatible with, and never turn a row into another.

Triples the rules derive are not read from the store: the caller runs the rules over what is
kept, and their derivations for the given values are complete there when every pattern a
template may feed is fed at the position of the producing rule's key variable, from that key
(`Demand` checks it, with the data's values for a template's variable predicate, and raises
Unsupported otherwise). Like the incremental scheme (docs/reasoning.md), it takes it that no
source graph mentions an IRI the rules mint; it raises Unsupported when a kept triple does.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import pyoxigraph as ox
from rdflib import BNode, Variable
from rdflib.paths import Path as RdfPath
from rdflib.plugins.sparql.algebra import translateQuery
from rdflib.plugins.sparql.parserutils import CompValue

from copkg.namespaces import INFERENCE_GRAPH
from copkg.rdf_io import SPARQL_PARSER_LOCK, parse_sparql_query
from copkg.reasoning.rule_shapes import analyse
from copkg.store.terms import to_ox

#: Algebra nodes passed through as they are; anything not handled below is unsupported.
_PASS = {"Distinct", "Reduced", "ToMultiSet", "OrderBy"}

#: Positions in a triple.
SUBJECT, OBJECT = 0, 2

#: A value standing for any IRI a rule mints (such nodes have no source triples).
MINTED = "minted"

Values = set[Any]  # terms (and MINTED)


class Unsupported(Exception):  # noqa: N818 (a signal to fall back, not an error)
    """The rules cannot be bounded this way: run them over every fact instead."""


@dataclass
class Group:
    """One group of a rule's WHERE clause: its own triple patterns and its inner groups."""

    kind: str  # top, optional, minus, exists, select, union (of two branches), branch
    triples: list[tuple[Any, Any, Any]] = field(default_factory=list)
    paths: list[tuple[Any, frozenset[str], Any]] = field(default_factory=list)
    children: list[Group] = field(default_factory=list)
    projected: frozenset[Variable] | None = None  # a sub-select's variables

    @property
    def certain(self) -> set[Variable]:
        """The variables every row of the group binds: the ends of its own patterns, those a
        sub-select joined to it passes up, and those both branches of a UNION bind."""
        ends = [t for s, _p, o in self.triples for t in (s, o)]
        ends += [t for s, _i, o in self.paths for t in (s, o)]
        found = {t for t in ends if isinstance(t, Variable)}
        for child in self.children:
            if child.kind == "select":
                found |= child.certain & (child.projected or frozenset())
            elif child.kind == "union":
                found |= set.intersection(*(branch.certain for branch in child.children))
        return found

    def walk(self) -> Iterable[Group]:
        yield self
        for child in self.children:
            yield from child.walk()


@dataclass(frozen=True)
class Producer:
    """One triple of a rule's CONSTRUCT template, as the rule makes it."""

    rule: str
    triple: tuple[Any, Any, Any]
    minted: dict[Variable, str]
    predicates: frozenset[Any] | None  # the values a variable predicate takes; None: constant


@functools.lru_cache(maxsize=128)
def rule_groups(name: str, text: str) -> Group:
    """The group tree of one rule's WHERE clause (Unsupported: what the reading cannot follow).

    Cached: rdflib's SPARQL parser takes ~60 ms a rule."""
    try:
        with SPARQL_PARSER_LOCK:
            algebra = translateQuery(parse_sparql_query(text)).algebra
    except Exception as exc:  # rdflib raises many kinds on unusual syntax
        raise Unsupported(f"rule {name}: rdflib cannot read it ({type(exc).__name__})") from exc
    top = Group("top")
    node = algebra.p
    if isinstance(node, CompValue) and node.name == "Project":
        node = node.p
    _walk(node, top, name)
    return top


def _walk(node: Any, group: Group, rule: str) -> None:
    if not isinstance(node, CompValue):
        raise Unsupported(f"rule {rule}: unexpected algebra node {type(node).__name__}")
    name = node.name
    if name == "BGP":
        for s, p, o in node.triples:
            if isinstance(p, RdfPath):
                group.paths.append((_term(s), frozenset(_path_iris(p)), _term(o)))
            elif isinstance(p, Variable):
                raise Unsupported(f"rule {rule}: a pattern with a variable predicate")
            else:
                group.triples.append((_term(s), _term(p), _term(o)))
    elif name == "Join":
        _walk(node.p1, group, rule)
        _walk(node.p2, group, rule)
    elif name in ("LeftJoin", "Minus"):
        _walk(node.p1, group, rule)
        child = Group("optional" if name == "LeftJoin" else "minus")
        _walk(node.p2, child, rule)
        _exists(node.get("expr"), child, rule)
        group.children.append(child)
    elif name in ("Filter", "Extend"):
        _walk(node.p, group, rule)
        _exists(node.expr, group, rule)
    elif name == "Union":
        union = Group("union")
        for side in (node.p1, node.p2):
            branch = Group("branch")
            _walk(side, branch, rule)
            union.children.append(branch)
        group.children.append(union)
    elif name == "Project":
        child = Group("select", projected=frozenset(node.PV))
        _walk(node.p, child, rule)
        group.children.append(child)
    elif name in _PASS:
        _walk(node.p, group, rule)
    elif name != "values":  # a VALUES block only narrows: leaving it out keeps a superset
        raise Unsupported(f"rule {rule}: {name} is not supported")


def _exists(expr: Any, group: Group, rule: str) -> None:
    """EXISTS / NOT EXISTS groups of an expression, as inner groups."""
    if isinstance(expr, CompValue):
        if expr.name in ("Builtin_EXISTS", "Builtin_NOTEXISTS"):
            child = Group("exists")
            _walk(expr.graph, child, rule)
            group.children.append(child)
            return
        for value in expr.values():
            _exists(value, group, rule)
    elif isinstance(expr, list | tuple):
        for value in expr:
            _exists(value, group, rule)


def _path_iris(path: Any) -> Iterable[str]:
    if isinstance(path, RdfPath):
        for attr in ("args", "path"):
            sub = getattr(path, attr, None)
            for item in sub if isinstance(sub, list) else [sub] if sub is not None else []:
                yield from _path_iris(item)
    elif path is not None:
        yield str(path)


def _term(term: Any) -> Any:
    if isinstance(term, Variable):
        return term
    if isinstance(term, BNode):  # a blank node in a pattern is a variable
        return Variable("_bnode_" + str(term))
    return to_ox(term)


class Source:
    """The store's facts (its inference graph left out) plus extra quads, looked up by pattern.

    `memo` (a dict kept per build by the caller) keeps the lookups of a store that cannot
    change; None looks the store up every time."""

    def __init__(
        self, native: ox.Store, extra: Sequence[ox.Quad], memo: dict[Any, Any] | None = None
    ) -> None:
        self.native = native
        self.extra = list(extra)
        self._extra_terms = {t for q in self.extra for t in (q.subject, q.object)}
        self.memo = memo
        self.lookups = 0
        self._inference = ox.NamedNode(str(INFERENCE_GRAPH))

    def match(self, s: Any, p: Any, o: Any) -> list[ox.Quad]:
        """The quads (s p o), None a wildcard."""
        extra = self._extra(s, p, o)
        return self._base(s, p, o) + extra if extra else self._base(s, p, o)

    def objects(self, s: Any, p: Any) -> set[Any]:
        """The distinct objects of (s p ?o), None a wildcard (kept as the lookups are)."""
        key = ("objects", s, p)
        found = self.memo.get(key) if self.memo is not None else None
        if found is None:
            found = frozenset(q.object for q in self._base(s, p, None))
            if self.memo is not None:
                self.memo[key] = found
        return set(found) | {q.object for q in self._extra(s, p, None)}

    def _base(self, s: Any, p: Any, o: Any) -> list[ox.Quad]:
        key = (s, p, o)
        found = self.memo.get(key) if self.memo is not None else None
        if found is None:
            self.lookups += 1
            found = [
                q for q in self.native.quads_for_pattern(s, p, o) if q.graph_name != self._inference
            ]
            if self.memo is not None:
                self.memo[key] = found
        return found

    def _extra(self, s: Any, p: Any, o: Any) -> list[ox.Quad]:
        if (s is not None and s not in self._extra_terms) or (
            o is not None and o not in self._extra_terms
        ):
            return []
        return [
            q
            for q in self.extra
            if (s is None or q.subject == s)
            and (p is None or q.predicate == p)
            and (o is None or q.object == o)
        ]


class Demand:
    """The quads some rules can read when each rule's key variable takes one of `seeds`.

    `keyed` maps each rule run to its key variable; `rules` are all the rules there are (their
    templates may feed the keyed ones). Raises Unsupported when the bound cannot be shown."""

    def __init__(self, rules: Sequence[Any], keyed: dict[str, Variable], source: Source) -> None:
        self.source = source
        self.keyed = keyed
        self.rules = {rule.name: rule for rule in rules}
        self.producers: list[Producer] = []
        for rule in rules:
            shape = analyse(rule.name, rule.text)
            if shape.unsupported:
                raise Unsupported(f"rule {rule.name}: {shape.unsupported}")
            for triple in shape.template:
                predicates = None
                if isinstance(triple[1], Variable):
                    predicates = frozenset(self._values_of(rule, triple[1]))
                self.producers.append(Producer(rule.name, triple, shape.minted, predicates))
        self.prefixes = tuple({p for producer in self.producers for p in producer.minted.values()})
        self._by_predicate: dict[Any, list[Producer]] = {}
        for producer in self.producers:
            for predicate in producer.predicates or (producer.triple[1],):
                self._by_predicate.setdefault(predicate, []).append(producer)
        self.kept: dict[ox.Quad, None] = {}

    def read(self, seeds: Values) -> list[ox.Quad]:
        """What the keyed rules can read for their key among the seeds (in a stable order)."""
        for seed in seeds:
            if isinstance(seed, ox.NamedNode) and seed.value.startswith(self.prefixes):
                raise Unsupported(f"{seed} is an IRI the rules mint")
        for name, key in sorted(self.keyed.items()):
            rule = self.rules[name]
            top = rule_groups(rule.name, rule.text)
            if key not in top.certain:
                raise Unsupported(f"rule {name}: ?{key} is not bound by its top-level patterns")
            self._group(name, top, {key: set(seeds)}, seeds)
        for quad in self.kept:
            for term in (quad.subject, quad.object):
                if isinstance(term, ox.NamedNode) and term.value.startswith(self.prefixes):
                    raise Unsupported(f"a source graph mentions {term}, an IRI the rules mint")
        return list(self.kept)

    # -- one group --------------------------------------------------------------------------

    def _group(self, rule: str, group: Group, env: dict[Variable, Values], seeds: Values) -> None:
        certain = group.certain
        allowed: dict[Variable, Values] = {
            v: set(values)
            for v, values in env.items()
            if v in certain and (group.projected is None or v in group.projected)
        }
        self._narrow(group, allowed)
        for s, p, o in group.triples:
            self._keep(s, p, o, allowed)
            self._check_fed(rule, (s, p, o), allowed, seeds)
        for _s, iris, _o in group.paths:
            for iri in sorted(iris):
                predicate = ox.NamedNode(iri)
                if self._by_predicate.get(predicate):
                    raise Unsupported(f"rule {rule}: a derived triple may feed a property path")
                self.kept.update(dict.fromkeys(self.source.match(None, predicate, None)))
        for child in group.children:
            self._group(rule, child, allowed, seeds)

    def _narrow(self, group: Group, allowed: dict[Variable, Values]) -> None:
        """Narrow the group's variables through its own patterns to a fixpoint. A pattern with
        no known subject and an open or constant object is read whole (a constant object
        first, `?x a copkg:Recommendation`) once the others are done, and narrows in turn."""
        read_whole: set[int] = set()
        while True:
            changed = True
            while changed:
                changed = False
                for pattern in group.triples:
                    if self._values(pattern[SUBJECT], allowed) is None and (
                        not isinstance(pattern[OBJECT], Variable) or pattern[OBJECT] not in allowed
                    ):
                        continue
                    if self._join(pattern, allowed, whole=False):
                        changed = True
            open_ = [
                (i, pattern)
                for i, pattern in enumerate(group.triples)
                if i not in read_whole
                and isinstance(pattern[SUBJECT], Variable)
                and pattern[SUBJECT] not in allowed
                and not (isinstance(pattern[OBJECT], Variable) and pattern[OBJECT] in allowed)
            ]
            if not open_:
                return
            i, pattern = min(open_, key=lambda item: isinstance(item[1][OBJECT], Variable))
            read_whole.add(i)
            self._join(pattern, allowed, whole=True)

    @staticmethod
    def _values(term: Any, allowed: dict[Variable, Values]) -> Values | None:
        return allowed.get(term) if isinstance(term, Variable) else {term}

    def _join(
        self, pattern: tuple[Any, ...], allowed: dict[Variable, Values], *, whole: bool
    ) -> bool:
        """Narrow the pattern's variable ends to the pairs it matches (a semi-join both
        ways): looked up from the subject's values when known (a node's own triples), else
        from the object's, else (`whole`) read whole; with what a template may make there.
        Whether a variable changed."""
        s, p, o = pattern
        subjects, objects = self._values(s, allowed), self._values(o, allowed)
        pairs: list[tuple[Any, Any]] = []
        if subjects is not None:
            obj = None if isinstance(o, Variable) else o
            for value in subjects:
                if value != MINTED:
                    pairs.extend((value, q.object) for q in self.source.match(value, p, obj))
        elif objects is not None and not whole:
            for value in objects:
                if value != MINTED:
                    pairs.extend((q.subject, value) for q in self.source.match(None, p, value))
        else:
            obj = None if isinstance(o, Variable) else o
            pairs.extend((q.subject, q.object) for q in self.source.match(None, p, obj))
        ends = {at: v for at, v in ((SUBJECT, subjects), (OBJECT, objects)) if v is not None}
        changed = False
        for at, term, known in ((SUBJECT, s, subjects), (OBJECT, o, objects)):
            if not isinstance(term, Variable):
                continue
            made = self._made_at(pattern, at, ends)
            if made is None:
                continue  # a template may make any value there: no narrowing
            if at == SUBJECT:
                found = {a for a, b in pairs if objects is None or b in objects}
            else:
                found = {b for a, b in pairs if subjects is None or a in subjects}
            found |= made
            after = found if known is None else known & found
            if after != known:
                allowed[term] = after
                changed = True
        return changed

    def _made_at(self, pattern: tuple[Any, ...], at: int, ends: dict[int, Values]) -> Values | None:
        """What templates that may feed the pattern make at position `at`: constants, MINTED
        for a node the rule mints; None when one makes an unbounded value there."""
        made: Values = set()
        for producer in self._by_predicate.get(pattern[1], ()):
            if not self._may_feed(producer, pattern, ends):
                continue
            term = producer.triple[at]
            if not isinstance(term, Variable):
                made.add(term)
            elif term in producer.minted:
                made.add(MINTED)
            else:
                return None
        return made

    def _keep(self, s: Any, p: Any, o: Any, allowed: dict[Variable, Values]) -> None:
        subjects = allowed.get(s) if isinstance(s, Variable) else {s}
        objects = allowed.get(o) if isinstance(o, Variable) else {o}
        if subjects is not None:  # a node's own triples: looked up from the subject
            for value in subjects:
                if value == MINTED:
                    continue
                obj = None if isinstance(o, Variable) else o
                for quad in self.source.match(value, p, obj):
                    if objects is None or quad.object in objects:
                        self.kept[quad] = None
        elif objects is not None:
            for value in objects:
                if value == MINTED:
                    continue
                for quad in self.source.match(None, p, value):
                    if subjects is None or quad.subject in subjects:
                        self.kept[quad] = None
        else:
            self.kept.update(dict.fromkeys(self.source.match(None, p, None)))

    # -- what the templates may feed ----------------------------------------------------------

    def _may_feed(
        self, producer: Producer, pattern: tuple[Any, ...], ends: dict[int, Values]
    ) -> bool:
        """Whether the producer may make a triple that matches the pattern, its ends taking
        the values in `ends` (position: values) where given."""
        made = producer.triple
        if producer.predicates is not None:
            if pattern[1] is not None and pattern[1] not in producer.predicates:
                return False
        elif pattern[1] is not None and made[1] != pattern[1]:
            return False
        for at in (SUBJECT, OBJECT):
            want, got = pattern[at], made[at]
            values = ends.get(at)
            if values is None and want is not None and not isinstance(want, Variable):
                values = {want}
            if values is None:
                continue
            if not isinstance(got, Variable):
                if got not in values:
                    return False
            elif got in producer.minted and MINTED not in values:
                return False  # a minted node, where no value is one (no source mentions one)
        return True

    def _check_fed(
        self, rule: str, pattern: tuple[Any, ...], allowed: dict[Variable, Values], seeds: Values
    ) -> None:
        """Unsupported unless every derived triple the pattern may meet is made complete: by a
        keyed rule, at its key's position, where the pattern holds a variable among the seeds."""
        ends = {
            at: allowed[t]
            for at, t in ((SUBJECT, pattern[0]), (OBJECT, pattern[2]))
            if isinstance(t, Variable) and t in allowed
        }
        for producer in self._by_predicate.get(pattern[1], ()):
            if not self._may_feed(producer, pattern, ends):
                continue
            key = self.keyed.get(producer.rule)
            if key is not None and any(
                producer.triple[at] == key and at in ends and ends[at] <= seeds
                for at in (SUBJECT, OBJECT)
            ):
                continue
            raise Unsupported(
                f"rule {producer.rule} may derive what rule {rule} reads beyond the values asked"
            )

    def _values_of(self, rule: Any, var: Variable) -> set[Any]:
        """What a template's variable predicate can be: the objects of a top-level pattern
        (?s <p> ?var) in the source."""
        for s, p, o in rule_groups(rule.name, rule.text).triples:
            if o == var and not isinstance(p, Variable):
                return self.source.objects(None if isinstance(s, Variable) else s, p)
        raise Unsupported(f"rule {rule.name}: its template's predicate ?{var} is unconstrained")
