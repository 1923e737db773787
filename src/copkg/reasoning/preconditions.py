"""The preconditions of the incremental scheme (see copkg.reasoning.incremental), checked before
and during a run: a failed one raises Fallback and the caller materialises from scratch."""

from __future__ import annotations

from typing import Any

import pyoxigraph as ox
from rdflib import Variable

from copkg.reasoning.rule_shapes import RDF_TYPE, Pattern, RuleShape, Term


class Fallback(Exception):  # noqa: N818 (a signal to fall back, not an error)
    """A precondition of the incremental scheme does not hold."""


class Preconditions:
    """The checks of an Increment (a mixin: it reads the run's rules, shapes and store)."""

    native: ox.Store
    rules: list[Any]
    graph: ox.NamedNode
    inference: ox.NamedNode
    shapes: list[RuleShape]
    by_name: dict[str, RuleShape]

    def _descriptions(self) -> list[ox.Triple]:
        raise NotImplementedError

    def _quad(self, triple: ox.Triple) -> ox.Quad:
        raise NotImplementedError

    # -- the checks ---------------------------------------------------------------------

    def check_rules(self) -> None:
        for shape in self.shapes:
            if shape.unsupported:
                raise Fallback(f"rule {shape.name}: {shape.unsupported}")
        for triple in self._descriptions():
            if self._quad(triple) not in self.native:
                raise Fallback(
                    "the inference graph does not describe the current rules "
                    "(never materialised, or a rule changed since)"
                )

    def check_graph(self, quads: list[ox.Quad]) -> None:
        prefixes = tuple({p for shape in self.shapes for p in shape.minted.values()})
        for quad in quads:
            for term in (quad.subject, quad.object):
                if isinstance(term, ox.NamedNode) and term.value.startswith(prefixes):
                    raise Fallback(f"the new graph mentions {term}, an IRI the rules mint")

    def check_strata(self) -> None:
        """Fall back unless no derivable triple can match a non-monotone pattern."""
        produced = self._produced()
        bound = self._source_bound(produced)
        for shape in self.shapes:
            safe = bound[shape.name]
            for pattern in shape.patterns:
                if not pattern.negated:
                    continue
                for rule, item, predicates in produced:
                    if may_meet(pattern, item, predicates) and not (
                        isinstance(item[0], Variable)
                        and item[0] in self.by_name[rule].minted
                        and pattern.subject in safe
                    ):
                        raise Fallback(
                            f"rules {rule} and {shape.name} are not stratified: a derived "
                            f"triple may meet a pattern under OPTIONAL/MINUS/EXISTS"
                        )

    def _produced(self) -> list[tuple[str, tuple[Any, Any, Any], set[Any] | None]]:
        """Each template triple with the predicates it can have (None: a constant one)."""
        out = []
        for shape in self.shapes:
            for item in shape.template:
                predicates = None
                if isinstance(item[1], Variable):
                    predicates = self._values_of(shape, item[1])
                out.append((shape.name, item, predicates))
        return out

    def _values_of(self, shape: RuleShape, var: Variable) -> set[Any]:
        """What a template's predicate variable can be: what a mandatory pattern binds it to."""
        for pattern in shape.patterns:
            if pattern.mandatory and pattern.predicate is not None and var == pattern.object:
                s = "?s" if isinstance(pattern.subject, Variable) else str(pattern.subject)
                p = "?p" if isinstance(pattern.predicate, Variable) else str(pattern.predicate)
                query = f"SELECT DISTINCT ?v WHERE {{ {s} {p} ?v }}"
                return {row["v"] for row in self.native.query(query)}  # type: ignore[union-attr]
        raise Fallback(f"rule {shape.name}: its template's predicate ?{var} is unconstrained")

    def _source_bound(self, produced: list[Any]) -> dict[str, set[Variable]]:
        """For each rule, the variables every solution binds to a term some source graph
        mentions (never a minted node): the ends of a pattern only source triples can match,
        or whose derived matches carry source-bound terms there. A fixpoint over all rules."""

        def makers(predicate: Any, obj: Any) -> list[tuple[str, Any]]:
            found = []
            for rule, item, predicates in produced:
                if predicates is None and item[1] != predicate:
                    continue
                if predicates is not None and predicate not in predicates:
                    continue
                if (
                    predicate == RDF_TYPE
                    and not isinstance(obj, Variable)
                    and not isinstance(item[2], Variable)
                    and obj != item[2]
                ):
                    continue
                found.append((rule, item))
            return found

        safe: dict[str, set[Variable]] = {shape.name: set() for shape in self.shapes}

        def bound(rule: str, term: Any) -> bool:
            if isinstance(term, Variable):
                return term in safe[rule] and term not in self.by_name[rule].minted
            return not isinstance(term, ox.BlankNode)

        changed = True
        while changed:
            changed = False
            for shape in self.shapes:
                mine = safe[shape.name]
                for pattern in shape.patterns:
                    if not pattern.mandatory or isinstance(pattern.predicate, Variable):
                        continue
                    ends = [pattern.subject, pattern.object]
                    if pattern.predicate is None:
                        if not any(
                            makers(ox.NamedNode(i), Variable("x")) for i in pattern.path_iris
                        ) and any(bound(shape.name, t) for t in ends):
                            new = {t for t in ends if isinstance(t, Variable)}
                        else:
                            new = set()
                    else:
                        found = makers(pattern.predicate, pattern.object)
                        ends_bound: set[Term] = set()
                        for index, term in ((0, pattern.subject), (2, pattern.object)):
                            if all(bound(rule, item[index]) for rule, item in found):
                                ends_bound.add(term)
                        if (
                            found
                            and bound(shape.name, pattern.subject)
                            and all(
                                isinstance(item[0], Variable)
                                and item[0] in self.by_name[rule].minted
                                for rule, item in found
                            )
                        ):
                            ends_bound.add(pattern.object)
                        new = {t for t in ends_bound if isinstance(t, Variable)}
                    if new - mine:
                        mine |= new
                        changed = True
        return safe


def may_meet(pattern: Pattern, item: tuple[Any, Any, Any], predicates: set[Any] | None) -> bool:
    """Whether a triple made by a template triple could match the pattern."""
    if pattern.predicate is None:
        made = predicates if predicates is not None else {item[1]}
        return any(isinstance(p, ox.NamedNode) and p.value in pattern.path_iris for p in made) or (
            predicates is None and isinstance(item[1], Variable)
        )
    if isinstance(pattern.predicate, Variable):
        return True
    if predicates is not None:
        if pattern.predicate not in predicates:
            return False
    elif not isinstance(item[1], Variable) and item[1] != pattern.predicate:
        return False
    for want, made in ((pattern.subject, item[0]), (pattern.object, item[2])):
        if isinstance(want, Variable | ox.BlankNode) or isinstance(made, Variable):
            continue
        if want != made:
            return False
    return True
