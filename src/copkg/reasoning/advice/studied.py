"""The studied contexts an answer compares the user's with: those whose cases match every
control mode the user gives, in a stated order, a page at a time; and what the rules derived
in all of them, counted.

On a build, what the rules derived for the studied contexts is the build's own: its inference
graph holds what the same rules derive from its facts, and the user's hypothetical context
changes nothing they derive for a studied one (no rule reads one context's facts for another's;
tests/test_advisor_paging.py compares every page with the rules run for every matched context
beside the hypothetical one). What the advice says across every matched context (in how many a
role is risky, a recommendation applies, by the weakest voice in each) is counted from there,
and the page's derivations are read from there (copkg.reasoning.advice.answer), so that the
rules run for the user's context only. `Studied` reads, once a build, in a few queries over the
whole store, what matching, ordering and counting need (the attributions of control modes, the
contexts with their cases, studies and levels, and the build's derivations about contexts), so
that an answer does these in memory. Where the store is not a build (it may have changed since
its derivations or be changed next), the index is read for the answer and the rules run for
every matched context, their counts taken from what they derive (`counts_of`), as every answer
did before.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pyoxigraph as ox
from rdflib import URIRef
from rdflib.namespace import RDF
from rdflib.term import Node

from copkg.errors import CopkgError, Problem
from copkg.namespaces import COPKG, INFERENCE_GRAPH
from copkg.reasoning.advice.context import AdviceContext
from copkg.reasoning.advice.findings import STRENGTH
from copkg.reasoning.advice.scope import Derived, build_memo
from copkg.store import Store
from copkg.store.terms import as_iri

#: Studied contexts a page, unless asked otherwise; the most a page may hold.
PAGE_SIZE = 10
MAX_PAGE_SIZE = 50
#: Combinations of modes whose matches an index keeps (past this, it forgets them all).
KEPT_MODES = 256

#: The order of the studied contexts, as answers state it.
ORDER = (
    "most shared first: the number of your levels the context is assessed at, plus the number "
    "of your modes its case has at your very degree; then the IRI of the study that reports "
    "it, then the context's IRI"
)


@dataclass(frozen=True)
class Paging:
    """Which studied contexts to show: page `page` (from 1) of `size` each; `size` None for
    every one on a single page (a library's choice: at scale that is the slow answer)."""

    page: int = 1
    size: int | None = PAGE_SIZE

    def __post_init__(self) -> None:
        if self.page < 1:
            raise bad_paging("page", f"page must be a whole number from 1, not {self.page}")
        if self.size is not None and not 1 <= self.size <= MAX_PAGE_SIZE:
            raise bad_paging(
                "page_size",
                f"page_size must be a whole number from 1 to {MAX_PAGE_SIZE}, not {self.size}",
            )

    def last(self, total: int) -> int:
        """The number of the last page (1 when there is nothing to show)."""
        if self.size is None or total == 0:
            return 1
        return -(-total // self.size)

    def cut(self, items: Sequence[Any]) -> Sequence[Any]:
        """This page of `items`; 400 past the last page."""
        last = self.last(len(items))
        if self.page > last:
            raise bad_paging(
                "page",
                f"page {self.page} is past the last page ({last}) of the {len(items)} studied "
                "contexts with these modes of control",
            )
        if self.size is None:
            return items
        start = (self.page - 1) * self.size
        return items[start : start + self.size]


def bad_paging(parameter: str, message: str) -> CopkgError:
    return CopkgError(message, status=400, problems=[Problem(message, path=parameter)])


@dataclass(frozen=True)
class Candidate:
    """A studied context the user's modes match, with what it shares with the user's."""

    context: URIRef
    case: URIRef
    attributions: frozenset[URIRef]
    study: URIRef | None
    shared: int

    @property
    def order(self) -> tuple[int, str, str]:
        return (-self.shared, str(self.study or ""), str(self.context))


_ATTRIBUTIONS = """
SELECT ?attribution ?case ?attributed ?degree ?rank WHERE {
  ?attribution a copkg:ControlModeAttribution ;
    copkg:ofCase ?case ; copkg:controlMode ?attributed ; copkg:degree ?degree .
  ?degree copkg:rank ?rank .
}
"""

_BROADER = """
SELECT DISTINCT ?attributed ?mode WHERE {
  ?attribution a copkg:ControlModeAttribution ; copkg:controlMode ?attributed .
  ?attributed skos:broader* ?mode .
}
"""

_CONTEXTS = """
SELECT ?context ?case ?study WHERE {
  ?context a copkg:OrganisationalContext ; copkg:ofCase ?case .
  OPTIONAL { ?context copkg:reportedIn ?study }
}
"""

_LEVELS = """
SELECT ?context ?factor ?level WHERE {
  ?assessment a copkg:ContingencyAssessment ; copkg:assessedContext ?context ;
    copkg:onFactor ?factor ; copkg:level ?level .
}
"""

_DERIVED_RISKS = """
SELECT ?context ?subject ?voice WHERE {
  GRAPH %s {
    ?derivation a copkg:RiskAssessment ; copkg:inContext ?context ; copkg:assessedRole ?subject .
    OPTIONAL { ?derivation copkg:weakestVoice ?voice }
  }
}
"""

_DERIVED_RECOMMENDATIONS = """
SELECT ?context ?subject ?voice WHERE {
  GRAPH %s {
    ?derivation rdf:predicate copkg:recommendedIn ; rdf:object ?context ; rdf:subject ?subject .
    OPTIONAL { ?derivation copkg:weakestVoice ?voice }
  }
}
"""

_DERIVED_FAVOURABILITY = """
SELECT ?context ?subject WHERE { GRAPH %s { ?context copkg:favourability ?subject } }
"""

#: What a studied context's derivations are, for counting: subject -> weakest voice's rank.
Ranked = dict[URIRef, int]


def _strength(voice: Node | None) -> int:
    """The rank of a voice in STRENGTH (the weakest last), len(STRENGTH) for another."""
    name = str(voice or "").removeprefix(str(COPKG))
    return STRENGTH.index(name) if name in STRENGTH else len(STRENGTH)


@dataclass
class Studied:
    """The studied contexts as an answer matches, orders and counts them."""

    #: attributed mode -> (attribution, case, degree, degree's rank)
    attributions: dict[URIRef, list[tuple[URIRef, URIRef, URIRef, int]]]
    broader: dict[URIRef, set[URIRef]]  # attributed mode -> itself and every broader mode
    contexts: dict[URIRef, list[URIRef]]  # case -> its contexts
    studies: dict[URIRef, URIRef]  # context -> the study that reports it (the least IRI)
    levels: dict[URIRef, set[tuple[URIRef, URIRef]]]  # context -> (factor, level)
    #: the build's derivations (None when the store is not a build): context -> kind -> Ranked
    derived: dict[URIRef, dict[str, Ranked]] | None = None
    #: what the modes (at their degrees) match, and its counts, kept for the next answer
    kept: dict[frozenset[tuple[URIRef, URIRef]], tuple[list[Any], Counts | None]] = field(
        default_factory=dict
    )

    @classmethod
    def read(cls, store: Store, *, derivations: bool) -> Studied:
        attributions: dict[URIRef, list[tuple[URIRef, URIRef, URIRef, int]]] = {}
        for row in store.query(_ATTRIBUTIONS).rows:
            try:
                rank = int(str(row["rank"]))
            except ValueError:
                continue
            attributions.setdefault(as_iri(row["attributed"]), []).append(
                (as_iri(row["attribution"]), as_iri(row["case"]), as_iri(row["degree"]), rank)
            )
        broader: dict[URIRef, set[URIRef]] = {}
        for row in store.query(_BROADER).rows:
            broader.setdefault(as_iri(row["attributed"]), set()).add(as_iri(row["mode"]))
        contexts: dict[URIRef, list[URIRef]] = {}
        studies: dict[URIRef, URIRef] = {}
        for row in store.query(_CONTEXTS).rows:
            ctx = as_iri(row["context"])
            contexts.setdefault(as_iri(row["case"]), []).append(ctx)
            study = row.get("study")
            if study is not None and (ctx not in studies or str(study) < str(studies[ctx])):
                studies[ctx] = as_iri(study)
        levels: dict[URIRef, set[tuple[URIRef, URIRef]]] = {}
        for row in store.query(_LEVELS).rows:
            levels.setdefault(as_iri(row["context"]), set()).add(
                (as_iri(row["factor"]), as_iri(row["level"]))
            )
        index = cls(attributions, broader, contexts, studies, levels)
        if derivations:
            index.derived = {}
            graph = f"<{INFERENCE_GRAPH}>"
            for kind, sparql in (
                ("roles", _DERIVED_RISKS),
                ("recommendations", _DERIVED_RECOMMENDATIONS),
                ("favourability", _DERIVED_FAVOURABILITY),
            ):
                for row in store.query(sparql % graph).rows:
                    kinds = index.derived.setdefault(as_iri(row["context"]), {})
                    ranked = kinds.setdefault(kind, {})
                    subject, rank = as_iri(row["subject"]), _strength(row.get("voice"))
                    ranked[subject] = max(rank, ranked.get(subject, -1))
        return index

    def matching(self, context: AdviceContext) -> list[Candidate]:
        """The studied contexts of the cases that match every mode of the user (at a degree
        ranked at least as high), in the stated ORDER."""
        if not context.modes:
            return []
        return self.page(context, Paging(1, None))[1]

    def page(self, context: AdviceContext, paging: Paging) -> tuple[int, list[Candidate]]:
        """How many studied contexts the user's modes match, and those of the page `paging`
        asks for, in the stated ORDER (400 past the last page). Only the page's are made
        Candidates: the others are ordered by how much they share with the user's context."""
        if not context.modes:
            return 0, list(paging.cut([]))
        rows = self._matched(context)[0]  # in the order of the study's IRI, then the context's
        wanted = {(str(lv.factor.iri), str(lv.level.iri)) for lv in context.levels}
        shared = [row[5] + len(wanted & row[6]) for row in rows]
        # a stable sort: the most shared first, then as the rows come (ORDER)
        order = sorted(range(len(rows)), key=shared.__getitem__, reverse=True)
        return len(rows), [
            Candidate(rows[i][0], rows[i][1], rows[i][2], rows[i][3], shared[i])
            for i in paging.cut(order)
        ]

    def counts(self, context: AdviceContext) -> Counts | None:
        """The counts across the contexts the user's modes match, from the build's
        derivations (None: the store is not a build)."""
        return self._matched(context)[1] if context.modes else None

    def _matched(self, context: AdviceContext) -> tuple[list[Any], Counts | None]:
        """The contexts the modes match, with what ordering needs besides the user's levels
        (ordered by study and context), and their counts: kept for the modes (at their
        degrees), which alone decide them."""
        key = frozenset((m.mode.iri, m.degree.iri) for m in context.modes)
        kept = self.kept.get(key)
        if kept is not None:
            return kept
        per_mode: list[dict[URIRef, tuple[set[URIRef], bool]]] = []  # case -> used, same degree
        for choice in context.modes:
            found: dict[URIRef, tuple[set[URIRef], bool]] = {}
            for attributed, rows in self.attributions.items():
                if choice.mode.iri not in self.broader.get(attributed, {attributed}):
                    continue
                for attribution, case, degree, rank in rows:
                    if rank < choice.rank:
                        continue
                    used, same = found.get(case, (set(), False))
                    used.add(attribution)
                    found[case] = (used, same or degree == choice.degree.iri)
            per_mode.append(found)
        matched = []
        for case in set(per_mode[0]).intersection(*per_mode[1:]):
            attributions = frozenset().union(*(found[case][0] for found in per_mode))
            shared = sum(found[case][1] for found in per_mode)
            for ctx in self.contexts.get(case, ()):
                study = self.studies.get(ctx)
                # as plain strings, compared in C when the user's levels are counted
                levels = {(str(f), str(lv)) for f, lv in self.levels.get(ctx, ())}
                matched.append((ctx, case, attributions, study, str(study or ""), shared, levels))
        matched.sort(key=lambda row: (row[4], str(row[0])))  # ORDER, but for what is shared
        kept = (matched, self._count(row[0] for row in matched))
        if len(self.kept) >= KEPT_MODES:
            self.kept.clear()
        self.kept[key] = kept
        return kept

    def _count(self, contexts: Iterable[URIRef]) -> Counts | None:
        if self.derived is None:
            return None
        roles: dict[URIRef, dict[int, int]] = {}
        recommendations: dict[URIRef, dict[int, int]] = {}
        favourability: dict[URIRef, int] = {}
        for ctx in contexts:
            derived = self.derived.get(ctx, {})
            for table, kind in ((roles, "roles"), (recommendations, "recommendations")):
                for subject, rank in derived.get(kind, {}).items():
                    by_rank = table.setdefault(subject, {})
                    by_rank[rank] = by_rank.get(rank, 0) + 1
            for condition in derived.get("favourability", {}):
                favourability[condition] = favourability.get(condition, 0) + 1
        return Counts(roles, recommendations, favourability)


_lock = threading.Lock()


def studied(store: Store) -> Studied:
    """The index of the store's studied contexts: kept per build (read once, under a lock,
    by the first answer that needs it), read anew for a store that can change."""
    memo = build_memo(store, "studied")
    if memo is None:
        return Studied.read(store, derivations=False)
    with _lock:
        found = memo.get("index")
        if found is None:
            native = getattr(store, "native", None)
            found = memo["index"] = Studied.read(store, derivations=isinstance(native, ox.Store))
        index: Studied = found
        return index


# -- counts across every matched context ------------------------------------------------------


@dataclass(frozen=True)
class Counts:
    """In how many matched contexts each role is risky and each recommendation applies (by the
    weakest voice of what the rules derived for it there: an index of STRENGTH, or len(STRENGTH)
    for another voice), and how many are favourable or not."""

    roles: Mapping[URIRef, Mapping[int, int]]
    recommendations: Mapping[URIRef, Mapping[int, int]]
    favourability: Mapping[URIRef, int]


def counts_of(derived: Derived, contexts: Iterable[URIRef]) -> Counts:
    """The counts, from what the rules derived for the contexts (every one of them)."""
    wanted = set(contexts)
    assessed = derived.subjects(RDF.type, COPKG.RiskAssessment)
    roles = _weakest(_what_where_voice(derived, assessed, COPKG.assessedRole, COPKG.inContext),
                     wanted)  # fmt: skip
    recommended = derived.subjects(RDF.predicate, COPKG.recommendedIn)
    recommendations = _weakest(_what_where_voice(derived, recommended, RDF.subject, RDF.object),
                               wanted)  # fmt: skip
    favourability: dict[URIRef, int] = {}
    for ctx, condition in derived.subject_objects(COPKG.favourability):
        if ctx in wanted and isinstance(condition, URIRef):
            favourability[condition] = favourability.get(condition, 0) + 1
    return Counts(_tally(roles), _tally(recommendations), favourability)


def _what_where_voice(
    derived: Derived, nodes: Iterable[Node], what: URIRef, where: URIRef
) -> list[tuple[Node | None, Node | None, Node | None]]:
    """(what, in which context, the weakest voice) of each derived node."""
    return [(derived.value(n, what), derived.value(n, where),
             derived.value(n, COPKG.weakestVoice)) for n in nodes]  # fmt: skip


def _weakest(
    found: Iterable[tuple[Node | None, Node | None, Node | None]], wanted: set[URIRef]
) -> dict[tuple[URIRef, URIRef], int]:
    """(subject, context, weakest voice) of the wanted contexts as {(subject, context): the
    largest rank found}."""
    ranks: dict[tuple[URIRef, URIRef], int] = {}
    for subject, ctx, voice in found:
        if ctx in wanted and isinstance(subject, URIRef) and isinstance(ctx, URIRef):
            ranks[(subject, ctx)] = max(_strength(voice), ranks.get((subject, ctx), -1))
    return ranks


def _tally(ranks: Mapping[tuple[URIRef, URIRef], int]) -> dict[URIRef, dict[int, int]]:
    tally: dict[URIRef, dict[int, int]] = {}
    for (subject, _ctx), rank in ranks.items():
        by_rank = tally.setdefault(subject, {})
        by_rank[rank] = by_rank.get(rank, 0) + 1
    return tally
