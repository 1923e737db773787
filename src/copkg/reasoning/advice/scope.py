"""The advisor's inferences about a few contexts, from the part of the store its rules can read
for them (copkg.reasoning.demand) rather than from a copy of every fact.

The answer (copkg.reasoning.advice.answer) reads what the rules derive about the contexts it
considers (the user's hypothetical one and the studied ones their modes match): the risk
assessments in them, their favourability, the recommendations that apply in them. A rule that
derives such a triple is run for those contexts only: its template's variable at the context's
position is its key. Its premises are read from the store by pattern, through lookups kept per
build; the rules then run over that small graph plus the hypothetical facts. Where the bound
cannot be shown (demand.Unsupported: a rule the analysis cannot read, a derivation that may
feed a rule beyond the contexts), or the store cannot be looked up by pattern (a remote one),
the rules run over every fact, as copkg.reasoning.rules.apply_rules does.
"""

from __future__ import annotations

import itertools
import logging
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyoxigraph as ox
from rdflib import RDF, Graph, URIRef, Variable
from rdflib.term import Node

from copkg.namespaces import COPKG, INFERENCE_GRAPH
from copkg.reasoning.demand import Demand, Source, Unsupported
from copkg.reasoning.rule_shapes import analyse
from copkg.reasoning.rules import Rule, apply_rules, fixpoint, load_rules
from copkg.store import Store
from copkg.store.embedded import OxigraphStore
from copkg.store.terms import from_ox, to_ox

log = logging.getLogger(__name__)

#: Where the answer finds a context in what the rules derive: a predicate, and the position
#: (0 subject, 2 object) of the context in its triples.
CONTEXT_SLOTS = (
    (ox.NamedNode(str(COPKG.inContext)), 2),
    (ox.NamedNode(str(COPKG.favourability)), 0),
    (ox.NamedNode(str(COPKG.recommendedIn)), 2),
)

HYPOTHESIS_GRAPH = ox.NamedNode("urn:copkg:hypothesis")

#: Lookups and answers kept per build (a store that cannot change), for the builds seen last.
KEPT_BUILDS = 2
#: Past this many entries kept for a build under one name, they are dropped and kept anew.
KEPT_ENTRIES = 100_000
#: Studied contexts whose derivations are kept for a build (about 100 triples each).
KEPT_CONTEXTS = 5_000

_memos: dict[str, dict[str, dict[Any, Any]]] = {}
_memos_lock = threading.Lock()


class Derived:
    """Derived triples (rdflib terms), looked up as the answer reads them: the few calls of
    rdflib's Graph it makes, without a Graph (whose every add and lookup costs microseconds)."""

    def __init__(self, triples: Iterable[tuple[Node, Node, Node]]) -> None:
        self._by_subject: dict[tuple[Node, Node], list[Node]] = {}
        self._by_object: dict[tuple[Node, Node], list[Node]] = {}
        self._by_predicate: dict[Node, list[tuple[Node, Node]]] = {}
        self._triples: dict[tuple[Node, Node, Node], None] = {}
        self.add(triples)

    def add(self, triples: Iterable[tuple[Node, Node, Node]]) -> None:
        """Add triples (those already here are left as they are)."""
        for s, p, o in triples:
            if (s, p, o) in self._triples:
                continue
            self._triples[(s, p, o)] = None
            self._by_subject.setdefault((s, p), []).append(o)
            self._by_object.setdefault((p, o), []).append(s)
            self._by_predicate.setdefault(p, []).append((s, o))

    @classmethod
    def of_quads(cls, quads: Iterable[ox.Quad], terms: dict[Any, Node] | None = None) -> Derived:
        """From pyoxigraph quads (each term converted once, or found in `terms`)."""
        return cls(_converted(quads, terms))

    def add_quads(self, quads: Iterable[ox.Quad]) -> None:
        """Add pyoxigraph quads' triples."""
        self.add(_converted(quads))

    def __iter__(self) -> Iterator[tuple[Node, Node, Node]]:
        return iter(self._triples)

    def __len__(self) -> int:
        return len(self._triples)

    def value(self, subject: Node, predicate: Node) -> Node | None:
        found = self._by_subject.get((subject, predicate))
        return found[0] if found else None

    def objects(self, subject: Node, predicate: Node) -> Iterator[Node]:
        return iter(self._by_subject.get((subject, predicate), ()))

    def subjects(self, predicate: Node, obj: Node) -> Iterator[Node]:
        return iter(self._by_object.get((predicate, obj), ()))

    def subject_objects(self, predicate: Node) -> Iterator[tuple[Node, Node]]:
        return iter(self._by_predicate.get(predicate, ()))


def _converted(
    quads: Iterable[ox.Quad], terms: dict[Any, Node] | None = None
) -> Iterator[tuple[Node, Node, Node]]:
    """Quads' triples as rdflib terms, each term converted once (kept in `terms`)."""
    kept: dict[Any, Node] = {} if terms is None else terms

    def term(t: Any) -> Node:
        found = kept.get(t)
        if found is None:
            found = kept[t] = from_ox(t)
        return found

    return ((term(q.subject), term(q.predicate), term(q.object)) for q in quads)


_INFERENCES = ox.NamedNode(str(INFERENCE_GRAPH))
_IN_CONTEXT = ox.NamedNode(str(COPKG.inContext))
_RDF_OBJECT = ox.NamedNode(str(RDF.object))
_RECOMMENDED_IN = ox.NamedNode(str(COPKG.recommendedIn))


def derived_in_build(store: Store, native: ox.Store, contexts: Iterable[URIRef]) -> list[Derived]:
    """What the build's inference graph holds about studied contexts, as the answer reads it,
    one Derived a context: its own derived triples (favourability, risky roles), the risk
    assessments in it and the statements about it (a recommendation's applying there), with
    all their triples. Kept per build (at most KEPT_CONTEXTS contexts), for the next page that
    shows the context: reading and converting them is most of a page's cost."""
    memo = build_memo(store, "derived contexts")
    terms = build_memo(store, "derived terms")  # the rules', roles', voices' IRIs, ...
    found = []
    for context in contexts:
        derived = memo.get(context) if memo is not None else None
        if derived is None:
            derived = Derived.of_quads(_derived_about(native, ox.NamedNode(str(context))), terms)
            if memo is not None:
                if len(memo) >= KEPT_CONTEXTS:
                    memo.clear()
                memo[context] = derived
        found.append(derived)
    return found


def _derived_about(native: ox.Store, node: ox.NamedNode) -> list[ox.Quad]:
    graph = _INFERENCES
    found: list[ox.Quad] = [*native.quads_for_pattern(node, None, None, graph)]
    found += native.quads_for_pattern(None, _RECOMMENDED_IN, node, graph)
    about = {q.subject for q in native.quads_for_pattern(None, _IN_CONTEXT, node, graph)}
    about |= {q.subject for q in native.quads_for_pattern(None, _RDF_OBJECT, node, graph)}
    for subject in about:
        found += native.quads_for_pattern(subject, None, None, graph)
    return found  # repeats are dropped as Derived takes them


class Layered:
    """Derived triples in layers (the first first), looked up as if they were one Derived that
    took each layer's triples in turn: a triple in two layers is found once, where the first
    put it."""

    def __init__(self, layers: Sequence[Any]) -> None:
        self.layers = layers

    def value(self, subject: Node, predicate: Node) -> Node | None:
        for layer in self.layers:
            found: Node | None = layer.value(subject, predicate)
            if found is not None:
                return found
        return None

    def objects(self, subject: Node, predicate: Node) -> Iterator[Node]:
        return _once(layer.objects(subject, predicate) for layer in self.layers)

    def subjects(self, predicate: Node, obj: Node) -> Iterator[Node]:
        return _once(layer.subjects(predicate, obj) for layer in self.layers)

    def subject_objects(self, predicate: Node) -> Iterator[tuple[Node, Node]]:
        return _once(layer.subject_objects(predicate) for layer in self.layers)


def _once(found: Iterable[Iterable[Any]]) -> Iterator[Any]:
    """The items of each layer in turn, each once (a layer gives an item once: each is one
    triple's)."""
    return iter(dict.fromkeys(itertools.chain.from_iterable(found)))


#: What the answer reads derived triples from.
Readable = Derived | Layered


def inferences_for(
    store: Store,
    extra: Graph,
    contexts: Iterable[URIRef],
    rules: Path | Sequence[Rule],
) -> Derived:
    """What the rules derive about the contexts from the store's facts plus `extra` (at
    least every derived triple the answer reads about them; the rules' descriptions too)."""
    rules = _rules_in(rules) if isinstance(rules, Path) else list(rules)
    native = getattr(store, "native", None)
    if isinstance(native, ox.Store):
        try:
            return _bounded(store, native, extra, contexts, rules)
        except Unsupported as exc:
            log.info("the advisor reads every fact: %s", exc)
    return Derived(apply_rules(store, extra, rules))


_read_rules: dict[Path, tuple[tuple[tuple[str, int, int], ...], list[Rule]]] = {}


def _rules_in(folder: Path) -> list[Rule]:
    """The rules of a folder, read again only when one of its files changed (by name, time
    and size): a request no longer parses every rule's header."""
    files = sorted(Path(folder).glob("*.rq"))
    stamp = tuple((p.name, p.stat().st_mtime_ns, p.stat().st_size) for p in files)
    found = _read_rules.get(folder)
    if found is None or found[0] != stamp:
        found = _read_rules[folder] = (stamp, load_rules(folder))
    return list(found[1])


def _bounded(
    store: Store,
    native: ox.Store,
    extra: Graph,
    contexts: Iterable[URIRef],
    rules: list[Rule],
) -> Derived:
    keyed = context_keys(rules)
    scratch = OxigraphStore()
    scratch.native.extend(neighbourhood(store, native, extra, contexts, rules))
    fixpoint(scratch, [rule for rule in rules if rule.name in keyed])
    graph = ox.NamedNode(str(INFERENCE_GRAPH))
    return Derived.of_quads(scratch.native.quads_for_pattern(None, None, None, graph))


def neighbourhood(
    store: Store,
    native: ox.Store,
    extra: Graph,
    contexts: Iterable[URIRef],
    rules: Sequence[Rule],
) -> list[ox.Quad]:
    """The facts the rules that derive about contexts can read for these contexts, with the
    `extra` facts (in their own graph); Unsupported when the bound cannot be shown."""
    hypothesis = [
        ox.Quad(to_ox(s), to_ox(p), to_ox(o), HYPOTHESIS_GRAPH)  # type: ignore[arg-type]
        for s, p, o in extra
    ]
    demand = Demand(
        rules, context_keys(rules), Source(native, hypothesis, build_memo(store, "lookups"))
    )
    slots = {predicate for predicate, _at in CONTEXT_SLOTS}
    for producer in demand.producers:
        if producer.predicates is not None and producer.predicates & slots:
            raise Unsupported(f"rule {producer.rule} may derive a context's triple by its data")
    return [*demand.read({to_ox(c) for c in contexts}), *hypothesis]


def context_keys(rules: Sequence[Rule]) -> dict[str, Variable]:
    """The rules that derive a triple the answer reads about a context, each with the
    variable its template puts at the context's position."""
    keyed: dict[str, Variable] = {}
    for rule in rules:
        shape = analyse(rule.name, rule.text)
        for triple in shape.template:
            for predicate, at in CONTEXT_SLOTS:
                if triple[1] != predicate:
                    continue
                key = triple[at]
                if not isinstance(key, Variable) or keyed.get(rule.name, key) != key:
                    raise Unsupported(f"rule {rule.name}: no one variable for the context")
                keyed[rule.name] = key
    return keyed


def build_memo(store: Store, name: str) -> dict[Any, Any] | None:
    """A dict kept for the store's build under `name` (None for a store that can change):
    what is read from a build is the same until the next build."""
    identity = getattr(store, "build_identity", None)
    if not getattr(store, "read_only", False) or not identity:
        return None
    with _memos_lock:
        memos = _memos.pop(identity, None) or {}
        _memos[identity] = memos  # the latest build last
        for old in list(_memos)[:-KEPT_BUILDS]:
            del _memos[old]
        memo = memos.get(name)
        if memo is None or len(memo) > KEPT_ENTRIES:
            memo = memos[name] = {}
        return memo


@dataclass(frozen=True)
class Rows:
    """Solutions as QueryResult gives them (variable -> rdflib term)."""

    rows: list[dict[str, Any]]


class RememberedQueries:
    """The store's query answers (their rows), kept per build: the answer's descriptions of
    roles, facts and recommendations are read once a build, not once a request."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.memo = build_memo(store, "rows")

    def query(self, sparql: str, *, bindings: Mapping[str, Any] | None = None) -> Rows:
        if self.memo is None:
            return Rows(self.store.query(sparql, bindings=bindings).rows)
        key = (sparql, tuple(sorted(bindings.items())) if bindings else ())
        found = self.memo.get(key)
        if found is None:
            found = self.memo[key] = Rows(self.store.query(sparql, bindings=bindings).rows)
        return found
