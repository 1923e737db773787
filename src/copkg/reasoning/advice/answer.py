"""The contingency advisor: which roles are risky in a context a user describes, and why.

Nothing here decides risk. The user's context becomes hypothetical facts (an
copkg:OrganisationalContext with copkg:ContingencyAssessment levels), the rules of rules/*.rq
run over the store's facts plus those (for the contexts the answer is about, over the facts they
can read for those: copkg.reasoning.advice.scope), and the answer is read from what they
derive. Control modes select the studied contexts of the cases whose
attributions match every mode the user gives, at a degree ranked at least as high; what the
rules derived for those contexts is the answer for the modes.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from rdflib import Graph, Literal, URIRef
from rdflib.namespace import RDF, RDFS
from rdflib.term import Node

from copkg.config import Settings
from copkg.namespaces import COPKG
from copkg.rdf_io import sorted_terms
from copkg.reasoning.advice.context import AdviceContext, LevelChoice, Term, local_name
from copkg.reasoning.advice.findings import (
    Advice,
    Evidence,
    Fact,
    MatchedContext,
    Reason,
    RecommendationAdvice,
    RiskFinding,
    RoleAdvice,
    RuleRef,
)
from copkg.reasoning.advice.scope import Derived, RememberedQueries, inferences_for
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

_MATCHING_CONTEXTS = """
SELECT DISTINCT ?context ?case ?attribution WHERE {
  ?userDegree copkg:rank ?userRank .
  ?attribution a copkg:ControlModeAttribution ;
    copkg:ofCase ?case ; copkg:controlMode ?attributed ; copkg:degree ?degree .
  ?degree copkg:rank ?rank .
  FILTER (?rank >= ?userRank)
  ?attributed skos:broader* ?mode .
  ?context a copkg:OrganisationalContext ; copkg:ofCase ?case .
}
"""

_DESCRIBE = """
SELECT ?label ?statement ?type ?voice ?quote ?text ?page ?study ?studyLabel WHERE {
  { ?fact rdfs:label|skos:prefLabel ?label }
  UNION { ?fact copkg:statement ?statement }
  UNION { ?fact copkg:voice ?voice }
  UNION { ?fact a ?type }
  UNION {
    ?fact copkg:hasEvidence ?quote .
    ?quote copkg:quoteText ?text .
    OPTIONAL { ?quote copkg:page ?page }
    OPTIONAL { ?quote copkg:quotedIn ?study .
               OPTIONAL { ?study rdfs:label ?studyLabel } }
  }
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
) -> Advice:
    """Apply the rules to the store plus the user's hypothetical context and read the answer.

    The rules run for the contexts the answer is about (the user's and those their modes
    match), over the facts they can read for those (copkg.reasoning.advice.scope)."""
    if rules is None:
        rules = Settings.load().rules_dir
    reads: Any = RememberedQueries(store)
    matched = _matching_contexts(reads, context)
    inferred = inferences_for(
        store, hypothetical_facts(context), [HYPOTHETICAL_CONTEXT, *matched], rules
    )
    considered: dict[URIRef, bool] = dict.fromkeys(matched, False)
    if context.levels:
        considered[HYPOTHETICAL_CONTEXT] = True
    labels = _Labels(reads, inferred)
    facts = _FactReader(reads, context, labels)

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

    favourability = tuple(
        labels.term(c)
        for c in sorted_terms(inferred.objects(HYPOTHETICAL_CONTEXT, COPKG.favourability))
    )
    matched_contexts = [
        MatchedContext(
            context=labels.term(ctx),
            case=labels.term(case),
            attributions=tuple(facts.read(a) for a in sorted(attributions)),
            favourability=tuple(
                labels.term(c) for c in sorted_terms(inferred.objects(ctx, COPKG.favourability))
            ),
        )
        for ctx, (case, attributions) in sorted(matched.items())
    ]
    recommendations = _recommendations(reads, inferred, considered, labels, facts)
    return Advice(context, favourability, matched_contexts, roles, recommendations)


def _matching_contexts(
    store: Store, context: AdviceContext
) -> dict[URIRef, tuple[URIRef, set[URIRef]]]:
    """Contexts of the cases that match every mode of the user, with the attributions used."""
    if not context.modes:
        return {}
    per_mode: list[dict[URIRef, tuple[URIRef, set[URIRef]]]] = []
    for choice in context.modes:
        found: dict[URIRef, tuple[URIRef, set[URIRef]]] = {}
        rows = store.query(
            _MATCHING_CONTEXTS,
            bindings={"mode": choice.mode.iri, "userDegree": choice.degree.iri},
        ).rows
        for row in rows:
            case, used = found.setdefault(as_iri(row["context"]), (as_iri(row["case"]), set()))
            used.add(as_iri(row["attribution"]))
        per_mode.append(found)
    common = set(per_mode[0])
    for found in per_mode[1:]:
        common &= set(found)
    result: dict[URIRef, tuple[URIRef, set[URIRef]]] = {}
    for ctx in common:
        case = per_mode[0][ctx][0]
        attributions: set[URIRef] = set()
        for found in per_mode:
            attributions |= found[ctx][1]
        result[ctx] = (case, attributions)
    return result


class _Labels:
    """Labels of IRIs, from the inferred graph first, then the store (one query an IRI)."""

    def __init__(self, store: Store, inferred: Derived) -> None:
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
                rows = self.store.query(
                    "SELECT ?l WHERE { ?s rdfs:label|skos:prefLabel|dcterms:title ?l } "
                    "ORDER BY DESC(LANGMATCHES(LANG(?l), 'en')) LIMIT 1",
                    bindings={"s": iri},
                ).rows
                label = rows[0]["l"] if rows else None
            self.cache[iri] = Term(iri, str(label) if label is not None else local_name(iri))
        return self.cache[iri]


class _FactReader:
    """Facts as people read them: label, types, statement and evidence."""

    def __init__(self, store: Store, context: AdviceContext, labels: _Labels) -> None:
        self.store = store
        self.labels = labels
        self.cache: dict[URIRef, Fact] = {}
        self.hypothetical: dict[URIRef, Fact] = {
            HYPOTHETICAL_CONTEXT: Fact(
                HYPOTHETICAL_CONTEXT,
                "your context",
                (COPKG.OrganisationalContext,),
                hypothetical=True,
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
            )

    def read(self, iri: Node) -> Fact:
        iri = URIRef(str(iri))
        if iri in self.hypothetical:
            return self.hypothetical[iri]
        if iri not in self.cache:
            self.cache[iri] = self._read(iri)
        return self.cache[iri]

    def evidence(self, iri: Node) -> tuple[Evidence, ...]:
        return self.read(iri).evidence

    def _read(self, iri: URIRef) -> Fact:
        label: str | None = None
        statement: str | None = None
        types: list[URIRef] = []
        voice: Term | None = None
        quotes: dict[URIRef, Evidence] = {}
        for row in self.store.query(_DESCRIBE, bindings={"fact": iri}).rows:
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
    inferred: Derived,
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
    used = sorted(inferred.objects(node, COPKG.usedFact), key=str)
    voice = inferred.value(node, COPKG.weakestVoice)
    return RiskFinding(
        assessment=URIRef(str(node)),
        label=str(inferred.value(node, RDFS.label) or local_name(node)),
        context=labels.term(ctx),
        hypothetical=hypothetical,
        risk=labels.term(risk) if risk is not None else None,
        factor=labels.term(factor) if factor is not None else None,
        rule=rule_ref,
        facts=tuple(facts.read(f) for f in used),
        voice=labels.term(voice) if voice is not None else None,
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
    inferred: Derived,
    considered: Mapping[URIRef, bool],
    labels: _Labels,
    facts: _FactReader,
) -> list[RecommendationAdvice]:
    applies: dict[URIRef, set[URIRef]] = {}
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
                reasons=_reasons(rec, contexts, inferred, considered, labels),
            )
        )
    return sorted(result, key=lambda r: (r.label, str(r.iri)))


def _reasons(
    rec: URIRef,
    contexts: set[URIRef],
    inferred: Derived,
    considered: Mapping[URIRef, bool],
    labels: _Labels,
) -> tuple[Reason, ...]:
    """The contexts a recommendation applies to, each with the copkg:weakestVoice of the
    statement that it applies there (the user's context first)."""
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
        reasons.append(
            Reason(labels.term(ctx), considered[ctx], labels.term(voice) if voice else None)
        )
    return tuple(
        sorted(reasons, key=lambda r: (not r.hypothetical, r.context.label, str(r.context.iri)))
    )
