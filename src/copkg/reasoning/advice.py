"""The contingency advisor: which roles are risky in a context a user describes, and why.

Nothing here decides risk. The user's context becomes hypothetical facts (an
copkg:OrganisationalContext with copkg:ContingencyAssessment levels), the rules of rules/*.rq
run over the store's facts plus those (copkg.reasoning.rules.apply_rules), and the answer is read
from what they derive. Control modes select the studied contexts of the cases whose
attributions match every mode the user gives, at a degree ranked at least as high; what the
rules derived for those contexts is the answer for the modes.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rdflib import Graph, Literal, URIRef
from rdflib.namespace import RDF, RDFS
from rdflib.term import Node

from copkg.config import Settings
from copkg.errors import CopkgError, Problem
from copkg.namespaces import COPKG, PREFIXES
from copkg.reasoning.rules import apply_rules
from copkg.store import Store

HYPOTHETICAL = "https://w3id.org/copkg/id/hypothetical/"
HYPOTHETICAL_CONTEXT = URIRef(HYPOTHETICAL + "context")

_VOCABULARY = """
SELECT ?term ?kind ?label ?rank WHERE {
  VALUES ?kind { copkg:ControlMode copkg:Degree copkg:Level copkg:ContingencyFactor }
  ?term a ?kind .
  OPTIONAL { ?term rdfs:label|skos:prefLabel ?label FILTER (LANGMATCHES(LANG(?label), "en")) }
  OPTIONAL { ?term copkg:rank ?rank }
}
"""

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
SELECT ?label ?statement ?type ?quote ?text ?page ?study ?studyLabel WHERE {
  { ?fact rdfs:label|skos:prefLabel ?label }
  UNION { ?fact copkg:statement ?statement }
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


# -- what the user says ----------------------------------------------------------------------


@dataclass(frozen=True)
class Term:
    """An IRI with a label for people."""

    iri: URIRef
    label: str

    def as_json(self) -> dict[str, str]:
        return {"iri": str(self.iri), "label": self.label}


@dataclass(frozen=True)
class ModeChoice:
    """A control mode the user's organisation uses, and to what degree."""

    mode: Term
    degree: Term
    rank: int


@dataclass(frozen=True)
class LevelChoice:
    """Where the user's organisation stands on one contingency factor."""

    factor: Term
    level: Term


@dataclass(frozen=True)
class AdviceContext:
    """A user's organisational context: control modes with degrees and factor levels."""

    modes: tuple[ModeChoice, ...] = ()
    levels: tuple[LevelChoice, ...] = ()

    def as_json(self) -> dict[str, Any]:
        return {
            "modes": [{"mode": m.mode.as_json(), "degree": m.degree.as_json()} for m in self.modes],
            "levels": [
                {"factor": lv.factor.as_json(), "level": lv.level.as_json()} for lv in self.levels
            ],
        }


@dataclass
class Vocabulary:
    """The terms a user may name, read from the graph: modes, degrees, levels, factors."""

    terms: dict[str, dict[URIRef, Term]]
    ranks: dict[URIRef, int]

    @classmethod
    def read(cls, store: Store) -> Vocabulary:
        terms: dict[str, dict[URIRef, Term]] = {
            "ControlMode": {},
            "Degree": {},
            "Level": {},
            "ContingencyFactor": {},
        }
        ranks: dict[URIRef, int] = {}
        for row in store.query(_VOCABULARY).rows:
            kind = str(row["kind"]).removeprefix(str(COPKG))
            iri = row["term"]
            label = str(row.get("label") or local_name(iri))
            terms[kind].setdefault(iri, Term(iri, label))
            if "rank" in row:
                with contextlib.suppress(ValueError):
                    ranks[iri] = int(str(row["rank"]))
        return cls(terms, ranks)

    def choices(self, kind: str) -> list[Term]:
        """The terms of one kind, ordered by rank (highest first) then label."""
        return sorted(self.terms[kind].values(), key=lambda t: (-self.ranks.get(t.iri, 0), t.label))

    def resolve(self, kind: str, raw: str, what: str) -> Term:
        """A term of `kind` named by IRI, CURIE, local name or label (any case); else a 400."""
        text = raw.strip()
        candidates = self.terms[kind]
        if not text:
            raise _bad(what, f"{what} is empty", self.choices(kind))
        iri = expand(text)
        if iri is not None and iri in candidates:
            return candidates[iri]
        folded = _fold(text)
        found = [
            t for t in candidates.values() if folded in (_fold(local_name(t.iri)), _fold(t.label))
        ]
        if len(found) == 1:
            return found[0]
        if len(found) > 1:
            raise _bad(what, f"{what} {raw!r} is ambiguous: give its IRI", found)
        raise _bad(what, f"{what} {raw!r} is not a {kind} of the graph", self.choices(kind))


def _fold(text: str) -> str:
    return re.sub(r"[\s_\-]+", "", text).casefold()


def _bad(parameter: str, message: str, allowed: Iterable[Term]) -> CopkgError:
    names = ", ".join(local_name(t.iri) for t in allowed)
    return CopkgError(
        message,
        status=400,
        problems=[Problem(f"{message}; allowed: {names}", path=parameter)],
    )


def local_name(iri: Node) -> str:
    """The part of an IRI after its last '#' or '/'."""
    text = str(iri)
    return re.split(r"[#/]", text)[-1] or text


def expand(text: str) -> URIRef | None:
    """An absolute IRI, or a CURIE with a known prefix, as a URIRef (None otherwise)."""
    if text.startswith("<") and text.endswith(">"):
        text = text[1:-1]
    if re.match(r"^https?://", text):
        return URIRef(text)
    prefix, sep, rest = text.partition(":")
    if sep and prefix in PREFIXES and re.fullmatch(r"[\w.\-]*", rest):
        return URIRef(PREFIXES[prefix] + rest)
    return None


def parse_context(
    store: Store,
    modes: Iterable[str | tuple[str, str | None]] = (),
    levels: Mapping[str, str] | Iterable[tuple[str, str]] = (),
    *,
    vocabulary: Vocabulary | None = None,
) -> AdviceContext:
    """Validate what a user typed against the graph's vocabularies.

    A mode is "Mode", "Mode@Degree" or a (mode, degree) pair (degree defaults to the
    highest-ranked degree, the unqualified main mode); levels map a factor to a level."""
    vocab = vocabulary or Vocabulary.read(store)
    chosen_modes: list[ModeChoice] = []
    for item in modes:
        if isinstance(item, tuple):
            mode_text, degree_text = item
        else:
            mode_text, _, degree_text = item.partition("@")
        if not mode_text.strip():
            continue
        mode = vocab.resolve("ControlMode", mode_text, "mode")
        degrees = vocab.choices("Degree")
        if degree_text:
            degree = vocab.resolve("Degree", degree_text, "degree")
        elif degrees:
            degree = degrees[0]
        else:
            raise CopkgError("the graph has no copkg:Degree to qualify a mode", status=500)
        if degree.iri not in vocab.ranks:
            raise _bad("degree", f"degree {local_name(degree.iri)} has no copkg:rank", degrees)
        chosen_modes.append(ModeChoice(mode, degree, vocab.ranks[degree.iri]))
    pairs = levels.items() if isinstance(levels, Mapping) else levels
    chosen_levels: dict[URIRef, LevelChoice] = {}
    for factor_text, level_text in pairs:
        if not str(level_text).strip():
            continue
        factor = vocab.resolve("ContingencyFactor", factor_text, "factor")
        level = vocab.resolve("Level", str(level_text), f"level of {local_name(factor.iri)}")
        if factor.iri in chosen_levels and chosen_levels[factor.iri].level != level:
            raise CopkgError(
                f"two levels for {factor.label}",
                status=400,
                problems=[Problem("give one level a factor", path=local_name(factor.iri))],
            )
        chosen_levels[factor.iri] = LevelChoice(factor, level)
    if not chosen_modes and not chosen_levels:
        raise CopkgError(
            "describe a context: give at least one control mode or one factor level",
            status=400,
            problems=[Problem("no mode and no level given", path="mode")],
        )
    unique_modes = tuple(dict.fromkeys(chosen_modes))
    return AdviceContext(unique_modes, tuple(chosen_levels.values()))


# -- what the graph answers ------------------------------------------------------------------


@dataclass(frozen=True)
class Evidence:
    """A verbatim quote, its page and the study it is quoted in."""

    quote: URIRef
    text: str
    page: int | None
    study: URIRef | None
    study_label: str | None

    def as_json(self) -> dict[str, Any]:
        return {
            "quote": str(self.quote),
            "text": self.text,
            "page": self.page,
            "study": str(self.study) if self.study else None,
            "studyLabel": self.study_label,
        }


@dataclass(frozen=True)
class Fact:
    """A resource an inference used: hypothetical (the user's) or in the graph."""

    iri: URIRef
    label: str
    types: tuple[URIRef, ...] = ()
    statement: str | None = None
    evidence: tuple[Evidence, ...] = ()
    hypothetical: bool = False

    def as_json(self) -> dict[str, Any]:
        return {
            "iri": str(self.iri),
            "label": self.label,
            "types": [str(t) for t in self.types],
            "statement": self.statement,
            "hypothetical": self.hypothetical,
            "evidence": [e.as_json() for e in self.evidence],
        }


@dataclass(frozen=True)
class RuleRef:
    iri: URIRef
    label: str
    definition: str

    def as_json(self) -> dict[str, str]:
        return {"iri": str(self.iri), "label": self.label, "definition": self.definition}


@dataclass(frozen=True)
class RiskFinding:
    """One derivation that a role is risky in a context (a copkg:RiskAssessment)."""

    assessment: URIRef
    label: str
    context: Term
    hypothetical: bool
    risk: Term | None
    factor: Term | None
    rule: RuleRef
    facts: tuple[Fact, ...]

    def as_json(self) -> dict[str, Any]:
        return {
            "assessment": str(self.assessment),
            "label": self.label,
            "context": self.context.as_json(),
            "hypothetical": self.hypothetical,
            "risk": self.risk.as_json() if self.risk else None,
            "throughFactor": self.factor.as_json() if self.factor else None,
            "rule": self.rule.as_json(),
            "facts": [f.as_json() for f in self.facts],
        }


@dataclass
class RoleAdvice:
    """One management role of the graph and whether the context makes it risky."""

    role: Term
    objective: Term
    risk: Term
    contingency: Term
    favourable_level: Term | None
    findings: list[RiskFinding] = field(default_factory=list)
    evidence: tuple[Evidence, ...] = ()

    @property
    def risky(self) -> bool:
        return bool(self.findings)

    def as_json(self) -> dict[str, Any]:
        return {
            "role": self.role.as_json(),
            "objective": self.objective.as_json(),
            "risk": self.risk.as_json(),
            "contingency": self.contingency.as_json(),
            "favourableLevel": self.favourable_level.as_json() if self.favourable_level else None,
            "risky": self.risky,
            "findings": [f.as_json() for f in self.findings],
            "evidence": [e.as_json() for e in self.evidence],
        }


@dataclass(frozen=True)
class MatchedContext:
    """A studied context whose case matches the user's control modes."""

    context: Term
    case: Term
    attributions: tuple[Fact, ...]
    favourability: tuple[Term, ...]

    def as_json(self) -> dict[str, Any]:
        return {
            "context": self.context.as_json(),
            "case": self.case.as_json(),
            "attributions": [a.as_json() for a in self.attributions],
            "favourability": [c.as_json() for c in self.favourability],
        }


@dataclass(frozen=True)
class RecommendationAdvice:
    """Advice of a study that the rules find applicable to one of the considered contexts."""

    iri: URIRef
    label: str
    advice: str | None
    mitigation: str | None
    conditions: tuple[Term, ...]
    roles: tuple[Term, ...]
    contexts: tuple[Term, ...]
    evidence: tuple[Evidence, ...]

    def as_json(self) -> dict[str, Any]:
        return {
            "iri": str(self.iri),
            "label": self.label,
            "advice": self.advice,
            "mitigation": self.mitigation,
            "applicableWhen": [c.as_json() for c in self.conditions],
            "concernsRoles": [r.as_json() for r in self.roles],
            "appliesTo": [c.as_json() for c in self.contexts],
            "evidence": [e.as_json() for e in self.evidence],
        }


@dataclass
class Advice:
    """The advisor's answer for one context."""

    context: AdviceContext
    favourability: tuple[Term, ...]
    matched_contexts: list[MatchedContext]
    roles: list[RoleAdvice]
    recommendations: list[RecommendationAdvice]

    @property
    def risky_roles(self) -> list[RoleAdvice]:
        return [r for r in self.roles if r.risky]

    def as_json(self) -> dict[str, Any]:
        return {
            "context": self.context.as_json(),
            "favourability": [c.as_json() for c in self.favourability],
            "matchedContexts": [m.as_json() for m in self.matched_contexts],
            "roles": [r.as_json() for r in self.roles],
            "riskyRoles": [str(r.role.iri) for r in self.risky_roles],
            "recommendations": [r.as_json() for r in self.recommendations],
        }


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
    """Apply the rules to the store plus the user's hypothetical context and read the answer."""
    if rules is None:
        rules = Settings.load().rules_dir
    inferred = apply_rules(store, hypothetical_facts(context), rules)
    matched = _matching_contexts(store, context)
    considered: dict[URIRef, bool] = {c: False for c in matched}
    if context.levels:
        considered[HYPOTHETICAL_CONTEXT] = True
    labels = _Labels(store, inferred)
    facts = _FactReader(store, context)

    roles = _read_roles(store, labels, facts)
    by_role = {r.role.iri: r for r in roles}
    for node in inferred.subjects(RDF.type, COPKG.RiskAssessment):
        ctx = inferred.value(node, COPKG.inContext)
        role = inferred.value(node, COPKG.assessedRole)
        if ctx not in considered or role not in by_role:
            continue
        by_role[role].findings.append(_finding(node, ctx, considered[ctx], inferred, labels, facts))
    for role in roles:
        role.findings.sort(key=lambda f: (not f.hypothetical, f.context.label, f.rule.label))

    favourability = tuple(
        labels.term(c) for c in sorted(inferred.objects(HYPOTHETICAL_CONTEXT, COPKG.favourability))
    )
    matched_contexts = [
        MatchedContext(
            context=labels.term(ctx),
            case=labels.term(case),
            attributions=tuple(facts.read(a) for a in sorted(attributions)),
            favourability=tuple(
                labels.term(c) for c in sorted(inferred.objects(ctx, COPKG.favourability))
            ),
        )
        for ctx, (case, attributions) in sorted(matched.items())
    ]
    recommendations = _recommendations(store, inferred, considered, labels, facts)
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
            case, attributions = found.setdefault(row["context"], (row["case"], set()))
            attributions.add(row["attribution"])
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

    def __init__(self, store: Store, inferred: Graph) -> None:
        self.store = store
        self.inferred = inferred
        self.cache: dict[URIRef, Term] = {}

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

    def __init__(self, store: Store, context: AdviceContext) -> None:
        self.store = store
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
        quotes: dict[URIRef, Evidence] = {}
        for row in self.store.query(_DESCRIBE, bindings={"fact": iri}).rows:
            if "label" in row and (
                label is None or getattr(row["label"], "language", None) == "en"
            ):
                label = str(row["label"])
            if "statement" in row:
                statement = str(row["statement"])
            if "type" in row and row["type"] not in types:
                types.append(row["type"])
            if "quote" in row:
                page = row.get("page")
                previous = quotes.get(row["quote"])
                quotes[row["quote"]] = Evidence(
                    quote=row["quote"],
                    text=str(row["text"]),
                    page=int(str(page)) if page is not None and str(page).isdigit() else None,
                    study=row.get("study") or (previous.study if previous else None),
                    study_label=str(row["studyLabel"])
                    if "studyLabel" in row
                    else (previous.study_label if previous else None),
                )
        evidence = tuple(sorted(quotes.values(), key=lambda e: (e.page or 0, str(e.quote))))
        return Fact(iri, label or local_name(iri), tuple(sorted(types)), statement, evidence)


def _read_roles(store: Store, labels: _Labels, facts: _FactReader) -> list[RoleAdvice]:
    roles: dict[URIRef, RoleAdvice] = {}
    for row in store.query(_ROLES).rows:
        role = row["role"]
        if role in roles:
            continue

        def term(key: str, row: Mapping[str, Node] = row) -> Term:
            label = row.get(key + "Label")
            return Term(row[key], str(label) if label is not None else local_name(row[key]))

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
    inferred: Graph,
    labels: _Labels,
    facts: _FactReader,
) -> RiskFinding:
    rule = inferred.value(node, COPKG.derivedBy)
    risk = inferred.value(node, COPKG.assessedRisk)
    factor = inferred.value(node, COPKG.throughFactor)
    from rdflib.namespace import SKOS

    rule_ref = RuleRef(
        URIRef(str(rule)),
        str(inferred.value(rule, RDFS.label) or local_name(rule)),
        str(inferred.value(rule, SKOS.definition) or ""),
    )
    used = sorted(inferred.objects(node, COPKG.usedFact), key=str)
    return RiskFinding(
        assessment=URIRef(str(node)),
        label=str(inferred.value(node, RDFS.label) or local_name(node)),
        context=labels.term(ctx),
        hypothetical=hypothetical,
        risk=labels.term(risk) if risk is not None else None,
        factor=labels.term(factor) if factor is not None else None,
        rule=rule_ref,
        facts=tuple(facts.read(f) for f in used),
    )


_RECOMMENDATION = """
SELECT ?label ?advice ?mitigation ?condition ?role WHERE {
  { ?rec rdfs:label ?label } UNION { ?rec copkg:advice ?advice }
  UNION { ?rec copkg:mitigation ?mitigation } UNION { ?rec copkg:applicableWhen ?condition }
  UNION { ?rec copkg:concernsRole ?role }
}
"""


def _recommendations(
    store: Store,
    inferred: Graph,
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
        conditions: set[URIRef] = set()
        roles: set[URIRef] = set()
        for row in store.query(_RECOMMENDATION, bindings={"rec": rec}).rows:
            label = str(row["label"]) if "label" in row else label
            advice = str(row["advice"]) if "advice" in row else advice
            mitigation = str(row["mitigation"]) if "mitigation" in row else mitigation
            if "condition" in row:
                conditions.add(row["condition"])
            if "role" in row:
                roles.add(row["role"])
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
            )
        )
    return sorted(result, key=lambda r: r.label)
