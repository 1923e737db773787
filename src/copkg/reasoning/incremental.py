"""Incremental inference: bring the inference graph up to date after one named graph is added.

Delete and rederive (DRed), driven by the rules' own text (copkg.reasoning.rule_shapes): a changed
triple matching a rule's pattern seeds the pattern's anchor variable, and the rule runs for its
seeds only (`VALUES`). Overdelete on the old state (the new graph taken out for the while),
then rederive and insert semi-naively on the new state. docs/reasoning.md says what the scheme
assumes and why it is sound; `Increment.run` checks those assumptions and raises `Fallback`
(the caller then materialises from scratch) when one fails:

- every rule is analysable (no aggregates, GRAPH, SERVICE, blank nodes in templates);
- every pattern a changed triple matches has an anchor (its own variable, or one reached
  through a sibling pattern), and no changed triple feeds a property path;
- seeds are IRIs or literals (VALUES cannot carry blank nodes);
- the inference graph describes the current rules and holds all they derive on the old state;
- the rules are stratified (no derivable triple can match a pattern under OPTIONAL, MINUS or
  EXISTS); triples about minted nodes are exempt where the pattern's subject is bound by source
  triples only, which holds while no source graph mentions a minted IRI (checked for the new
  graph).
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyoxigraph as ox
from rdflib import Variable

from copkg.errors import CopkgError, Problem
from copkg.namespaces import INFERENCE_GRAPH, PREFIXES
from copkg.reasoning.preconditions import Fallback, Preconditions
from copkg.reasoning.rule_shapes import Pattern, RuleShape, analyse, restrictable_groups
from copkg.reasoning.rules import fixpoint, load_rules
from copkg.store.embedded import OxigraphStore
from copkg.store.terms import to_ox

MAX_ROUNDS = 50
CHUNK = 400  # values per VALUES block


@dataclass
class InferenceDelta:
    """What an increment changed in the inference graph, and how it went."""

    added: list[ox.Quad] = field(default_factory=list)
    removed: list[ox.Quad] = field(default_factory=list)
    fallback: str | None = None  # why the full materialise ran instead, if it did
    rounds: int = 0
    queries: int = 0
    timings: dict[str, float] = field(default_factory=dict)


Seeds = dict[str, dict[Variable, set[Any]]]


class Increment(Preconditions):
    """One run of the scheme on a pyoxigraph store (see the module docstring)."""

    def __init__(self, native: ox.Store, rules: Sequence[Any], graph: str) -> None:
        self.native = native
        self.rules = list(rules)
        self.graph = ox.NamedNode(graph)
        self.inference = ox.NamedNode(str(INFERENCE_GRAPH))
        self.shapes = [analyse(rule.name, rule.text) for rule in self.rules]
        self.by_name = {shape.name: shape for shape in self.shapes}
        self.delta = InferenceDelta()
        self._mark = 0.0
        self._index: dict[Any, list[tuple[RuleShape, Pattern]]] = {}
        self._wild: list[tuple[RuleShape, Pattern]] = []
        self._path_iris: dict[str, str] = {}
        for shape in self.shapes:
            for pattern in shape.patterns:
                if pattern.predicate is None:
                    self._path_iris.update(dict.fromkeys(pattern.path_iris, shape.name))
                elif isinstance(pattern.predicate, Variable):
                    self._wild.append((shape, pattern))
                else:
                    self._index.setdefault(pattern.predicate, []).append((shape, pattern))

    # -- the run ---------------------------------------------------------------------------

    def run(self) -> InferenceDelta:
        start = time.perf_counter()
        self.check_rules()
        quads = list(self.native.quads_for_pattern(None, None, None, self.graph))
        self.check_graph(quads)
        self.check_strata()
        change = [q.triple for q in quads if not self._elsewhere(q)]
        # Seeds from the new graph, looked up (bridges) while it is in the store.
        first = self._seeds(change, derived=False)
        positive = self._seeds(change, derived=True)
        self._lap("checks", start)
        self.native.remove_graph(self.graph)
        try:
            seeds, removed = self._overdelete(first)
            rederive = self._rederive_seeds(removed)
        finally:
            self.native.add_graph(self.graph)
            self.native.extend(quads)
        self._lap("overdelete", start)
        described = set(self._descriptions())
        removed = [t for t in removed if t not in described]
        for triple in removed:
            self.native.remove(self._quad(triple))
        inserted: dict[ox.Triple, None] = {}
        try:
            self._insert(_merge(_merge(seeds, positive), rederive), inserted)
        except Fallback:
            # leave the inference graph as it was: the full materialise that follows reports
            # its change against it (and the exports are spliced with that change)
            for triple in inserted:
                self.native.remove(self._quad(triple))
            self.native.extend(self._quad(t) for t in removed)
            raise
        added = list(inserted)
        self._lap("insert", start)
        gone = set(removed)
        self.delta.added = _sorted(self._quad(t) for t in added if t not in gone)
        self.delta.removed = _sorted(
            self._quad(t) for t in removed if self._quad(t) not in self.native
        )
        return self.delta

    def _overdelete(self, first: Seeds) -> tuple[Seeds, list[ox.Triple]]:
        """Remove-candidates: what anchored solutions derive in the old state, transitively.
        Returns the seeds that had solutions there, and the candidates."""
        done: Seeds = {}
        removed: dict[ox.Triple, None] = {}
        fresh = first
        while fresh:
            self._round()
            derived, viable = self._evaluate(fresh)
            done = _merge(done, viable)
            frontier = []
            for triple in derived:
                if triple in removed:
                    continue
                if self._quad(triple) not in self.native:
                    raise Fallback(
                        "the inference graph is not the rules' fixpoint on the old corpus "
                        f"(it lacks {triple})"
                    )
                removed[triple] = None
                frontier.append(triple)
            fresh = _minus(self._seeds(frontier), done)
        return done, list(removed)

    def _rederive_seeds(self, removed: Iterable[ox.Triple]) -> Seeds:
        """Seeds under which every derivation of a removed triple is re-evaluated."""
        seeds: Seeds = {}
        for triple in removed:
            for shape in self.shapes:
                for item in shape.template:
                    if _unifies(item, triple):
                        var, values = self._template_seed(shape, item, triple)
                        seeds.setdefault(shape.name, {}).setdefault(var, set()).update(values)
        return seeds

    def _template_seed(
        self, shape: RuleShape, item: tuple[Any, Any, Any], triple: ox.Triple
    ) -> tuple[Variable, set[Any]]:
        for position, term in enumerate(item):
            if isinstance(term, Variable) and term in shape.certain:
                return term, {_position(triple, position)}
        subject = item[0]
        for other in shape.template:
            if (
                other[0] == subject
                and isinstance(subject, Variable)
                and isinstance(other[1], ox.NamedNode)
                and isinstance(other[2], Variable)
                and other[2] in shape.certain
            ):
                values = {
                    q.object
                    for q in self.native.quads_for_pattern(
                        triple.subject, other[1], None, self.inference
                    )
                }
                return other[2], values
        raise Fallback(
            f"rule {shape.name}: cannot tell which solutions derive {triple} "
            "(no template triple ties it to a variable of the rule's body)"
        )

    def _insert(self, seeds: Seeds, added: dict[ox.Triple, None]) -> None:
        """Run the rules for the seeds on the new state, then semi-naively to a fixpoint;
        what is new goes into the store and into `added` (as it goes: a fallback undoes it)."""
        pending = seeds
        while pending:
            self._round()
            found, _viable = self._evaluate(pending)
            new = [t for t in found if self._quad(t) not in self.native]
            new = list(dict.fromkeys(new))
            self.native.extend(self._quad(t) for t in new)
            added.update(dict.fromkeys(new))
            pending = self._seeds(new)

    # -- seeds and evaluation --------------------------------------------------------------

    def _seeds(self, triples: Iterable[ox.Triple], *, derived: bool = True) -> Seeds:
        """Seeds from changed triples. A derived triple seeds no pattern under OPTIONAL, MINUS
        or EXISTS: the stratification check has shown it cannot match one."""
        seeds: Seeds = {}
        for triple in triples:
            if isinstance(triple.predicate, ox.NamedNode):
                rule = self._path_iris.get(triple.predicate.value)
                if rule is not None:
                    raise Fallback(
                        f"rule {rule}: a changed triple ({triple.predicate}) feeds a property path"
                    )
            for shape, pattern in (*self._index.get(triple.predicate, ()), *self._wild):
                if (derived and pattern.negated) or not pattern.matches(triple):
                    continue
                if pattern.anchor is None:
                    raise Fallback(
                        f"rule {shape.name}: a changed triple ({triple}) matches a pattern "
                        "that no top-level variable anchors"
                    )
                values = self._anchor_values(pattern, triple)
                if any(isinstance(value, ox.BlankNode) for value in values):
                    raise Fallback(f"rule {shape.name}: a seed is a blank node ({triple})")
                seeds.setdefault(shape.name, {}).setdefault(pattern.anchor, set()).update(values)
        return seeds

    def _anchor_values(self, pattern: Pattern, triple: ox.Triple) -> set[Any]:
        """The anchor's values in solutions where the pattern matches the triple."""
        if pattern.bridge is None:
            return {pattern.binding(triple)}
        var, predicate, var_is_subject = pattern.bridge
        node = pattern.value_of(var, triple)
        if var_is_subject:
            return {q.object for q in self.native.quads_for_pattern(node, predicate, None)}
        return {q.subject for q in self.native.quads_for_pattern(None, predicate, node)}

    def _retarget(self, shape: RuleShape, by_var: dict[Variable, set[Any]]) -> dict[Any, set[Any]]:
        """Seeds moved, where they can be, to a variable a sub-select passes up: through a
        mandatory pattern (?seed q ?other), every solution's ?other is one of the seed's q
        values, so those values anchor a superset of the solutions, and the sub-select is
        computed for them only instead of for the whole corpus."""
        out: dict[Any, set[Any]] = {}
        for var, values in by_var.items():
            target = None
            if not _has_subselect(shape.text, var):
                target = next(
                    (
                        (pattern, pattern.predicate, other)
                        for pattern in shape.patterns
                        if pattern.mandatory and isinstance(pattern.predicate, ox.NamedNode)
                        for here, other in (
                            (pattern.subject, pattern.object),
                            (pattern.object, pattern.subject),
                        )
                        if here == var
                        and isinstance(other, Variable)
                        and other in shape.certain
                        and _has_subselect(shape.text, other)
                    ),
                    None,
                )
            if target is None:
                out.setdefault(var, set()).update(values)
                continue
            pattern, predicate, other = target
            for value in values:
                if pattern.subject == var:
                    found = self.native.quads_for_pattern(value, predicate, None)
                    out.setdefault(other, set()).update(q.object for q in found)
                else:
                    found = self.native.quads_for_pattern(None, predicate, value)
                    out.setdefault(other, set()).update(q.subject for q in found)
        return out

    def _viable(self, shape: RuleShape, var: Variable, values: set[Any]) -> list[Any]:
        """The values for which every mandatory pattern on `var` has a match in the store as it
        is: the others give no solution, so leaving them out changes no answer."""
        checks: list[tuple[Any, ...]] = []  # a pattern's terms: var "?", other variables None
        for pattern in shape.patterns:
            if not pattern.mandatory or isinstance(pattern.predicate, Variable | None):
                continue
            if var not in (pattern.subject, pattern.object) or pattern.subject == pattern.object:
                continue
            checks.append(
                tuple(
                    "?" if term == var else None if isinstance(term, Variable) else term
                    for term in (pattern.subject, pattern.predicate, pattern.object)
                )
            )
        kept = []
        for value in values:
            if next(iter(self.native.quads_for_pattern(value, None, None)), None) is None and (
                next(iter(self.native.quads_for_pattern(None, None, value)), None) is None
            ):
                continue  # a solution binds `var` to a term of some triple
            for check in checks:
                s, p, o = (value if term == "?" else term for term in check)
                if next(iter(self.native.quads_for_pattern(s, p, o)), None) is None:
                    break
            else:
                kept.append(value)
        return kept

    def _evaluate(self, seeds: Seeds) -> tuple[list[ox.Triple], Seeds]:
        """What the rules derive for the seeds on the store as it is, and the seeds that can
        have solutions there."""
        out: dict[ox.Triple, None] = {}
        viable: Seeds = {}
        for name, by_var in sorted(seeds.items()):
            shape = self.by_name[name]
            for var, values in sorted(self._retarget(shape, by_var).items()):
                ordered = sorted(self._viable(shape, var, values), key=str)
                if ordered:
                    viable.setdefault(name, {})[var] = set(ordered)
                for i in range(0, len(ordered), CHUNK):
                    text = shape.with_values(var, ordered[i : i + CHUNK])
                    self.delta.queries += 1
                    t0 = time.perf_counter()
                    try:
                        result = self.native.query(
                            text, use_default_graph_as_union=True, prefixes=PREFIXES
                        )
                    except (SyntaxError, OSError, RuntimeError, ValueError) as exc:
                        raise CopkgError(
                            f"rule {name} failed: {exc}",
                            status=500,
                            problems=[Problem(str(exc), file=f"rules/{name}.rq")],
                        ) from exc
                    out.update(dict.fromkeys(result))  # type: ignore[arg-type]
                    key = f"rule {name} ?{var}"
                    self.delta.timings[key] = round(
                        self.delta.timings.get(key, 0) + time.perf_counter() - t0, 4
                    )
        return list(out), viable

    # -- helpers ---------------------------------------------------------------------------

    def _descriptions(self) -> list[ox.Triple]:
        return [
            ox.Triple(*(to_ox(term) for term in triple))  # type: ignore[arg-type]
            for rule in self.rules
            for triple in rule.describe()
        ]

    def _elsewhere(self, quad: ox.Quad) -> bool:
        """Whether another graph (the inferences included) holds the quad's triple."""
        return any(
            q.graph_name != self.graph
            for q in self.native.quads_for_pattern(quad.subject, quad.predicate, quad.object)
        )

    def _quad(self, triple: ox.Triple) -> ox.Quad:
        return ox.Quad(triple.subject, triple.predicate, triple.object, self.inference)

    def _round(self) -> None:
        self.delta.rounds += 1
        if self.delta.rounds > MAX_ROUNDS:
            raise CopkgError(
                f"incremental inference did not reach a fixpoint in {MAX_ROUNDS} rounds",
                status=500,
            )

    def _lap(self, name: str, start: float) -> None:
        now = time.perf_counter()
        self.delta.timings[name] = round(now - max(start, self._mark), 4)
        self._mark = now


def _has_subselect(text: str, var: Variable) -> bool:
    return any(kind == "select" for _offset, kind in restrictable_groups(text, str(var)))


def _unifies(item: tuple[Any, Any, Any], triple: ox.Triple) -> bool:
    return all(
        isinstance(want, Variable) or want == got
        for want, got in zip(item, (triple.subject, triple.predicate, triple.object), strict=True)
    )


def _position(triple: ox.Triple, index: int) -> Any:
    return (triple.subject, triple.predicate, triple.object)[index]


def _merge(a: Seeds, b: Seeds) -> Seeds:
    out: Seeds = {name: {var: set(values) for var, values in by.items()} for name, by in a.items()}
    for name, by_var in b.items():
        for var, values in by_var.items():
            out.setdefault(name, {}).setdefault(var, set()).update(values)
    return out


def _minus(a: Seeds, b: Seeds) -> Seeds:
    out: Seeds = {}
    for name, by_var in a.items():
        for var, values in by_var.items():
            rest = values - b.get(name, {}).get(var, set())
            if rest:
                out.setdefault(name, {})[var] = rest
    return out


def _sorted(quads: Iterable[ox.Quad]) -> list[ox.Quad]:
    return sorted(quads, key=lambda q: (str(q.subject), str(q.predicate), str(q.object)))


def materialise_increment(store: OxigraphStore, rules_dir: Path, graph: str) -> InferenceDelta:
    """Bring the inference graph up to date after the named graph `graph` was added to a store
    whose inference graph is the last full materialisation of the rest; return what changed.

    The result is the inference graph `materialise` would build from scratch (same triples,
    same explanation nodes). The incremental scheme (copkg.reasoning.incremental: delete and
    rederive, seeded by the change through each rule's anchor variables) runs when its preconditions
    hold; otherwise the inference graph is materialised again from scratch and
    `delta.fallback` says why. See docs/reasoning.md.
    """
    rules = load_rules(rules_dir)
    start = time.perf_counter()
    try:
        return Increment(store.native, rules, graph).run()
    except Fallback as exc:
        reason = str(exc)
    native = store.native
    inference = ox.NamedNode(str(INFERENCE_GRAPH))
    before = set(native.quads_for_pattern(None, None, None, inference))
    native.remove_graph(inference)
    fixpoint(store, rules)
    after = set(native.quads_for_pattern(None, None, None, inference))
    return InferenceDelta(
        added=_sorted(after - before),
        removed=_sorted(before - after),
        fallback=reason,
        timings={"full": round(time.perf_counter() - start, 4)},
    )
