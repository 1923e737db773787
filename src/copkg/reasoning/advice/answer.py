"""The contingency advisor: which roles are risky in a context a user describes, and why.

Nothing here decides risk. The user's context becomes hypothetical facts (an
copkg:OrganisationalContext with copkg:ContingencyAssessment levels), the rules of rules/*.rq
run over the store's facts plus those (for the contexts the answer is about, over the facts they
can read for those: copkg.reasoning.advice.scope), and the answer is read from what they
derive. Control modes select the studied contexts of the cases whose
attributions match every mode the user gives, at a degree ranked at least as high; what the
rules derived for those contexts is the answer for the modes: counted across all of them
(copkg.reasoning.advice.studied), and shown in full for one page of them at a time.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import pyoxigraph as ox
from rdflib import Graph, Literal, URIRef
from rdflib.namespace import RDF, RDFS
from rdflib.term import Node

from copkg.config import Settings
from copkg.namespaces import COPKG
from copkg.rdf_io import sorted_terms
from copkg.reasoning.advice.context import AdviceContext, LevelChoice, Term, local_name
from copkg.reasoning.advice.describe import Describer
from copkg.reasoning.advice.findings import (
    STRENGTH,
    YOUR_INPUT,
    Across,
    Advice,
    Evidence,
    Fact,
    MatchedContext,
    MatchedPage,
    Reason,
    RecommendationAdvice,
    RiskFinding,
    RoleAdvice,
    RuleRef,
    VoiceCount,
)
from copkg.reasoning.advice.scope import (
    Layered,
    Readable,
    RememberedQueries,
    build_memo,
    derived_in_build,
    inferences_for,
)
from copkg.reasoning.advice.studied import ORDER, Counts, Paging, counts_of, studied
from copkg.store import Store
from copkg.store.terms import as_iri, as_optional_iri

HYPOTHETICAL = "https://w3id.org/copkg/id/hypothetical/"

HYPOTHETICAL_CONTEXT = URIRef(HYPOTHETICAL + "context")

_ROLES = """
SELECT ?role ?roleLabel ?objective ?objectiveLabel ?risk ?riskLabel ?factor ?factorLabel
       ?favourable WHERE {
  ?role a copkg:ManagementRole ;
    copkg:hasObjective ?objective ; copkg:hasRisk ?risk ; copkg:hasContingency ?factor .
  OPTIONAL { ?role rdfs:label ?roleLabel FILTER (LANGMATCHES(LANG(?roleLabel), "en")) }
  OPTIONAL { ?objective rdfs:label|skos:prefLabel ?objectiveLabel }
  OPTIONAL { ?risk rdfs:label|skos:prefLabel ?riskLabel }
  OPTIONAL { ?factor rdfs:label|skos:prefLabel ?factorLabel }
  OPTIONAL { ?factor copkg:favourableLevel ?favourable }
}
"""


def hypothetical_facts(context: AdviceContext) -> Graph:
    """The user's context as RDF: one copkg:OrganisationalContext and its assessments."""
    graph = Graph()
    graph.add((HYPOTHETICAL_CONTEXT, RDF.type, COPKG.OrganisationalContext))
    graph.add((HYPOTHETICAL_CONTEXT, RDFS.label, Literal("your context", lang="en")))
    for choice in context.levels:
        node = _assessment_iri(choice.factor.iri)
        graph.add((node, RDF.type, COPKG.ContingencyAssessment))
        graph.add((node, RDFS.label, Literal(_level_label(choice), lang="en")))
        graph.add((node, COPKG.assessedContext, HYPOTHETICAL_CONTEXT))
        graph.add((node, COPKG.onFactor, choice.factor.iri))
        graph.add((node, COPKG.level, choice.level.iri))
    return graph


def _assessment_iri(factor: URIRef) -> URIRef:
    slug = re.sub(r"[^A-Za-z0-9\-]+", "-", local_name(factor)).strip("-") or "factor"
    return URIRef(f"{HYPOTHETICAL}assessment-{slug}")


def _level_label(choice: LevelChoice) -> str:
    return f"your context: {choice.factor.label} {choice.level.label}"


def advise(
    store: Store,
    context: AdviceContext,
    *,
    rules: Path | Sequence[Any] | None = None,
    paging: Paging | None = None,
) -> Advice:
    """Apply the rules to the store plus the user's hypothetical context and read the answer.

    The rules run for the user's context, over the facts they can read for it
    (copkg.reasoning.advice.scope). The studied contexts the modes match are shown a page at a
    time (`paging`, the first PAGE_SIZE by default): on a build, what the rules derived for them
    is read from the build's derivations, counted across all and shown for the page
    (copkg.reasoning.advice.studied); on another store the rules run for every one of them too.
    The advice is the same whatever the page."""
    if rules is None:
        rules = Settings.load().rules_dir
    paging = paging or Paging()
    reads: Any = RememberedQueries(store)
    index = studied(store) if context.modes else None
    total, page = index.page(context, paging) if index is not None else (0, list(paging.cut([])))
    # On a build, when the page leaves some matched context out, what the rules derived for
    # the studied contexts is the build's (counted across all, read for the page), and they
    # run for the user's context only; otherwise they run for every matched context too (the
    # page is then every one).
    native = getattr(store, "native", None)
    counts = index.counts(context) if index is not None and len(page) < total else None
    shown = [] if counts is not None else page
    derived = inferences_for(
        store,
        hypothetical_facts(context),
        [HYPOTHETICAL_CONTEXT, *(c.context for c in shown)],
        rules,
    )
    inferred: Readable = derived
    if counts is None:
        counts = counts_of(derived, (c.context for c in page))
    elif isinstance(native, ox.Store):
        inferred = Layered([derived, *derived_in_build(store, native, (c.context for c in page))])
    considered: dict[URIRef, bool] = dict.fromkeys((c.context for c in page), False)
    if context.levels:
        considered[HYPOTHETICAL_CONTEXT] = True
    describer = Describer(
        reads, native if isinstance(native, ox.Store) else None, build_memo(store, "described")
    )
    labels = _Labels(describer, inferred)
    facts = _FactReader(describer, context, labels)
    matched_total = total if context.modes else None

    roles = _read_roles(reads, labels, facts)
    by_role = {r.role.iri: r for r in roles}
    for node in inferred.subjects(RDF.type, COPKG.RiskAssessment):
        ctx = inferred.value(node, COPKG.inContext)
        role = inferred.value(node, COPKG.assessedRole)
        if not isinstance(ctx, URIRef) or ctx not in considered:
            continue
        if not isinstance(role, URIRef) or role not in by_role:
            continue
        by_role[role].findings.append(_finding(node, ctx, considered[ctx], inferred, labels, facts))
    for role_advice in roles:
        # the assessment's IRI last: findings alike in all else (two enactments in one
        # context) come in one order, not in the order the rules happened to derive them
        role_advice.findings.sort(
            key=lambda f: (not f.hypothetical, f.context.label, f.rule.label, str(f.assessment))
        )
        if matched_total is not None:
            role_advice.studied = _across(
                counts.roles.get(role_advice.role.iri, {}), matched_total, labels
            )

    favourability = tuple(
        labels.term(c)
        for c in sorted_terms(inferred.objects(HYPOTHETICAL_CONTEXT, COPKG.favourability))
    )
    matched_contexts = [
        MatchedContext(
            context=labels.term(c.context),
            case=labels.term(c.case),
            attributions=tuple(facts.read(a) for a in sorted(c.attributions)),
            favourability=tuple(
                labels.term(f)
                for f in sorted_terms(inferred.objects(c.context, COPKG.favourability))
            ),
            study=labels.term(c.study) if c.study is not None else None,
            shared=c.shared,
        )
        for c in page
    ]
    recommendations = _recommendations(
        reads, inferred, considered, labels, facts, counts, matched_total
    )
    matched = None
    if matched_total is not None:
        matched = MatchedPage(
            total,
            paging.page,
            paging.size,
            paging.last(total),
            ORDER,
            tuple(
                (labels.term(c), n)
                for c, n in sorted(counts.favourability.items(), key=lambda item: str(item[0]))
            ),
        )
    return Advice(context, favourability, matched_contexts, roles, recommendations, matched)


def _across(by_rank: Mapping[int, int], total: int, labels: _Labels) -> Across:
    """Counts by voice rank as an Across, the strongest voice first."""
    return Across(
        sum(by_rank.values()),
        total,
        tuple(
            VoiceCount(labels.term(COPKG[STRENGTH[r]]) if r < len(STRENGTH) else None, n)
            for r, n in sorted(by_rank.items())
        ),
    )


class _Labels:
    """Labels of IRIs, from the inferred graph first, then the store."""

    def __init__(self, store: Describer, inferred: Readable) -> None:
        self.store = store
        self.inferred = inferred
        self.cache: dict[URIRef, Term] = {
            HYPOTHETICAL_CONTEXT: Term(HYPOTHETICAL_CONTEXT, "your context")
        }

    def term(self, iri: Node) -> Term:
        iri = URIRef(str(iri))
        if iri not in self.cache:
            label = self.inferred.value(iri, RDFS.label)
            if label is None:
                label = self.store.label(iri)
            self.cache[iri] = Term(iri, str(label) if label is not None else local_name(iri))
        return self.cache[iri]


class _FactReader:
    """Facts as people read them: label, types, statement and evidence."""

    def __init__(self, store: Describer, context: AdviceContext, labels: _Labels) -> None:
        self.store = store
        self.labels = labels
        self.cache: dict[URIRef, Fact] = {}
        self.hypothetical: dict[URIRef, Fact] = {
            HYPOTHETICAL_CONTEXT: Fact(
                HYPOTHETICAL_CONTEXT,
                "your context",
                (COPKG.OrganisationalContext,),
                hypothetical=True,
                voice=YOUR_INPUT,
            )
        }
        for choice in context.levels:
            iri = _assessment_iri(choice.factor.iri)
            self.hypothetical[iri] = Fact(
                iri,
                _level_label(choice),
                (COPKG.ContingencyAssessment,),
                statement=f"You say your context stands {choice.level.label} on "
                f"{choice.factor.label}.",
                hypothetical=True,
                voice=YOUR_INPUT,
            )

    def read(self, iri: Node) -> Fact:
        iri = URIRef(str(iri))
        if iri in self.hypothetical:
            return self.hypothetical[iri]
        found = self.cache.get(iri)
        if found is None:
            found = self.cache[iri] = self._kept(iri)
        return found

    def _kept(self, iri: URIRef) -> Fact:
        """The fact as an answer on this build read it before (its voice's label may come
        from what the rules derive for this answer: then it is read again), or read now."""
        memo = self.store.memo
        if memo is None:
            return self._read(iri)
        key = ("fact", iri)
        fact: Fact | None = memo.get(key)
        if fact is None or (
            fact.voice is not None and self.labels.term(fact.voice.iri) != fact.voice
        ):
            fact = memo[key] = self._read(iri)
        return fact

    def evidence(self, iri: Node) -> tuple[Evidence, ...]:
        return self.read(iri).evidence

    def _read(self, iri: URIRef) -> Fact:
        label: str | None = None
        statement: str | None = None
        types: list[URIRef] = []
        voice: Term | None = None
        quotes: dict[URIRef, Evidence] = {}
        for row in self.store.rows(iri):
            if "voice" in row:
                voice = self.labels.term(row["voice"])
            if "label" in row and (
                label is None or getattr(row["label"], "language", None) == "en"
            ):
                label = str(row["label"])
            if "statement" in row:
                statement = str(row["statement"])
            if "type" in row and row["type"] not in types:
                types.append(as_iri(row["type"]))
            if "quote" in row:
                page = row.get("page")
                quote = as_iri(row["quote"])
                previous = quotes.get(quote)
                quotes[quote] = Evidence(
                    quote=quote,
                    text=str(row["text"]),
                    page=int(str(page)) if page is not None and str(page).isdigit() else None,
                    study=as_optional_iri(row.get("study"))
                    or (previous.study if previous else None),
                    study_label=str(row["studyLabel"])
                    if "studyLabel" in row
                    else (previous.study_label if previous else None),
                )
        evidence = tuple(sorted(quotes.values(), key=lambda e: (e.page or 0, str(e.quote))))
        return Fact(
            iri, label or local_name(iri), tuple(sorted(types)), statement, evidence, voice=voice
        )


def _read_roles(store: Store, labels: _Labels, facts: _FactReader) -> list[RoleAdvice]:
    roles: dict[URIRef, RoleAdvice] = {}
    for row in store.query(_ROLES).rows:
        role = as_iri(row["role"])
        if role in roles:
            continue

        def term(key: str, row: Mapping[str, Node] = row) -> Term:
            label = row.get(key + "Label")
            iri = as_iri(row[key])
            return Term(iri, str(label) if label is not None else local_name(iri))

        roles[role] = RoleAdvice(
            role=term("role"),
            objective=term("objective"),
            risk=term("risk"),
            contingency=term("factor"),
            favourable_level=labels.term(row["favourable"]) if "favourable" in row else None,
            evidence=facts.evidence(role),
        )
    return sorted(roles.values(), key=lambda r: r.role.label)


def _finding(
    node: Node,
    ctx: Node,
    hypothetical: bool,
    inferred: Readable,
    labels: _Labels,
    facts: _FactReader,
) -> RiskFinding:
    rule = as_iri(inferred.value(node, COPKG.derivedBy))
    risk = inferred.value(node, COPKG.assessedRisk)
    factor = inferred.value(node, COPKG.throughFactor)
    from rdflib.namespace import SKOS

    rule_ref = RuleRef(
        URIRef(str(rule)),
        str(inferred.value(rule, RDFS.label) or local_name(rule)),
        str(inferred.value(rule, SKOS.definition) or ""),
    )
    used = tuple(facts.read(f) for f in sorted(inferred.objects(node, COPKG.usedFact), key=str))
    voice_node = inferred.value(node, COPKG.weakestVoice)
    voice = labels.term(voice_node) if voice_node is not None else None
    if hypothetical:  # the facts of the graph it used that carry a voice of their own
        voice = in_your_voice(voice, [f.voice for f in used if not f.hypothetical and f.voice])
    return RiskFinding(
        assessment=URIRef(str(node)),
        label=str(inferred.value(node, RDFS.label) or local_name(node)),
        context=labels.term(ctx),
        hypothetical=hypothetical,
        risk=labels.term(risk) if risk is not None else None,
        factor=labels.term(factor) if factor is not None else None,
        rule=rule_ref,
        facts=used,
        voice=voice,
    )


_RECOMMENDATION = """
SELECT ?label ?advice ?mitigation ?condition ?role ?voice WHERE {
  { ?rec rdfs:label ?label } UNION { ?rec copkg:advice ?advice } UNION { ?rec copkg:voice ?voice }
  UNION { ?rec copkg:mitigation ?mitigation } UNION { ?rec copkg:applicableWhen ?condition }
  UNION { ?rec copkg:concernsRole ?role }
}
"""


def _recommendations(
    store: Store,
    inferred: Readable,
    considered: Mapping[URIRef, bool],
    labels: _Labels,
    facts: _FactReader,
    counts: Counts,
    total: int | None,
) -> list[RecommendationAdvice]:
    """The recommendations that apply in the user's context or in some matched studied
    context (on any page), with their reasons on this page and their counts across all."""
    applies: dict[URIRef, set[URIRef]] = {rec: set() for rec in counts.recommendations}
    for rec, ctx in inferred.subject_objects(COPKG.recommendedIn):
        if ctx in considered:
            applies.setdefault(URIRef(str(rec)), set()).add(URIRef(str(ctx)))
    result = []
    for rec, contexts in applies.items():
        label = advice = mitigation = None
        voice: Term | None = None
        conditions: set[URIRef] = set()
        roles: set[URIRef] = set()
        for row in store.query(_RECOMMENDATION, bindings={"rec": rec}).rows:
            label = str(row["label"]) if "label" in row else label
            advice = str(row["advice"]) if "advice" in row else advice
            mitigation = str(row["mitigation"]) if "mitigation" in row else mitigation
            voice = labels.term(row["voice"]) if "voice" in row else voice
            if "condition" in row:
                conditions.add(as_iri(row["condition"]))
            if "role" in row:
                roles.add(as_iri(row["role"]))
        result.append(
            RecommendationAdvice(
                iri=rec,
                label=label or local_name(rec),
                advice=advice,
                mitigation=mitigation,
                conditions=tuple(labels.term(c) for c in sorted(conditions)),
                roles=tuple(labels.term(r) for r in sorted(roles)),
                contexts=tuple(labels.term(c) for c in sorted(contexts)),
                evidence=facts.evidence(rec),
                voice=voice,
                reasons=_reasons(rec, contexts, inferred, considered, labels, voice),
                studied=_across(counts.recommendations.get(rec, {}), total, labels)
                if total is not None
                else None,
            )
        )
    return sorted(result, key=lambda r: (r.label, str(r.iri)))


def _reasons(
    rec: URIRef,
    contexts: set[URIRef],
    inferred: Readable,
    considered: Mapping[URIRef, bool],
    labels: _Labels,
    own: Term | None,
) -> tuple[Reason, ...]:
    """The contexts a recommendation applies to, each with the copkg:weakestVoice of the
    statement that it applies there (the user's context first; "your input" there when the
    recommendation itself is the study's own claim, `own` its voice)."""
    voices: dict[Node, Node | None] = {}  # context -> the voice of the last statement on it
    for statement in inferred.subjects(RDF.subject, rec):
        ctx = inferred.value(statement, RDF.object)
        if (
            ctx is not None
            and ctx in contexts
            and inferred.value(statement, RDF.predicate) == COPKG.recommendedIn
        ):
            voices[ctx] = inferred.value(statement, COPKG.weakestVoice)
    reasons = []
    for ctx in contexts:
        voice = voices.get(ctx)
        term = labels.term(voice) if voice else None
        if considered[ctx]:
            term = in_your_voice(term, [own])
        reasons.append(Reason(labels.term(ctx), considered[ctx], term))
    return tuple(
        sorted(reasons, key=lambda r: (not r.hypothetical, r.context.label, str(r.context.iri)))
    )


#: Voices in which a fact is the study's own claim.
STRONG = frozenset(COPKG[name] for name in ("AuthorVoice", "InformantVoice", "CitedVoice"))


def in_your_voice(voice: Term | None, premises: Iterable[Term | None]) -> Term | None:
    """The voice of a derivation about the user's context: "your input" (YOUR_INPUT) where the
    rules call it derived from a curators' reading while every premise of the graph it used is
    the study's own claim; the weak premise is then what the user said. Otherwise `voice`."""
    if voice is None or voice.iri != COPKG.DerivedFromCuratorReading:
        return voice
    if all(p is not None and p.iri in STRONG for p in premises):
        return YOUR_INPUT
    return voice
