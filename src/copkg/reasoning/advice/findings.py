"""The advisor's answer, as it is shown and serialised: findings per role, with the evidence,
facts and rules each rests on, the studied contexts that matched, and recommendations."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from rdflib import URIRef

from copkg.namespaces import COPKG
from copkg.reasoning.advice.context import AdviceContext, Term

#: The voice of what the advice reasons from the user's own input (their context's levels):
#: neither the author's claim nor a curators' reading, but what the user said.
YOUR_INPUT = Term(URIRef(str(COPKG.UserInputVoice)), "your input")


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
    voice: Term | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "iri": str(self.iri),
            "label": self.label,
            "types": [str(t) for t in self.types],
            "statement": self.statement,
            "hypothetical": self.hypothetical,
            "voice": self.voice.as_json() if self.voice else None,
            "evidence": [e.as_json() for e in self.evidence],
        }


def because(context: Term, hypothetical: bool) -> str:
    """Why a derivation concerns the user: their own input, or a studied context (named) that
    matched their control modes."""
    return "your input" if hypothetical else f"matched context {context.label}"


@dataclass(frozen=True)
class Reason:
    """A context a derivation was made for, and the voice of the derived statement."""

    context: Term
    hypothetical: bool
    voice: Term | None

    @property
    def because(self) -> str:
        return because(self.context, self.hypothetical)

    def as_json(self) -> dict[str, Any]:
        return {
            "because": self.because,
            "context": self.context.as_json(),
            "voice": self.voice.as_json() if self.voice else None,
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
    voice: Term | None = None  # the explanation's copkg:weakestVoice

    @property
    def because(self) -> str:
        return because(self.context, self.hypothetical)

    def as_json(self) -> dict[str, Any]:
        return {
            "assessment": str(self.assessment),
            "label": self.label,
            "context": self.context.as_json(),
            "hypothetical": self.hypothetical,
            "because": self.because,
            "voice": self.voice.as_json() if self.voice else None,
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
    studied: Across | None = None  # across every matched studied context (with modes)

    @property
    def risky(self) -> bool:
        """Risky in the user's context, or in some studied context their modes match (on
        any page: the findings list those of the page shown only)."""
        return any(f.hypothetical for f in self.findings) or bool(
            self.studied.contexts if self.studied is not None else self.findings
        )

    @property
    def reasons(self) -> list[Reason]:
        """The contexts the role is found risky in (the user's first), once each, with the
        weakest voice among the derivations for each."""
        found: dict[Any, Reason] = {}
        for f in self.findings:
            key = f.context.iri
            previous = found.get(key)
            voice = f.voice if previous is None else _weaker(previous.voice, f.voice)
            found[key] = Reason(f.context, f.hypothetical, voice)
        return sorted(
            found.values(), key=lambda r: (not r.hypothetical, r.context.label, str(r.context.iri))
        )

    def as_json(self) -> dict[str, Any]:
        return {
            "role": self.role.as_json(),
            "objective": self.objective.as_json(),
            "risk": self.risk.as_json(),
            "contingency": self.contingency.as_json(),
            "favourableLevel": self.favourable_level.as_json() if self.favourable_level else None,
            "risky": self.risky,
            "because": [r.because for r in self.reasons],
            "reasons": [r.as_json() for r in self.reasons],
            "findings": [f.as_json() for f in self.findings],
            "evidence": [e.as_json() for e in self.evidence],
            "inMatchedContexts": self.studied.as_json() if self.studied else None,
        }


#: Voices from the strongest to the weakest, for the weakest of several derivations.
STRENGTH = (
    "AuthorVoice",
    "InformantVoice",
    "CitedVoice",
    "CuratorVoice",
    "DerivedFromCuratorReading",
)


def _weaker(a: Term | None, b: Term | None) -> Term | None:
    if a is None or b is None:
        return a or b

    def rank(t: Term) -> int:
        name = str(t.iri).rsplit("#", 1)[-1]
        return STRENGTH.index(name) if name in STRENGTH else len(STRENGTH)

    return a if rank(a) >= rank(b) else b


@dataclass(frozen=True)
class VoiceCount:
    """How many studied contexts a derivation holds in, whose weakest voice there is `voice`
    (None: a voice the advisor does not rank)."""

    voice: Term | None
    contexts: int

    def as_json(self) -> dict[str, Any]:
        return {"voice": self.voice.as_json() if self.voice else None, "contexts": self.contexts}


@dataclass(frozen=True)
class Across:
    """What the rules derived across every studied context the user's modes match, not only
    those on the page shown: in how many of `of` it holds, by the weakest voice in each."""

    contexts: int
    of: int
    by_voice: tuple[VoiceCount, ...] = ()

    def as_json(self) -> dict[str, Any]:
        return {
            "contexts": self.contexts,
            "of": self.of,
            "byVoice": [v.as_json() for v in self.by_voice],
        }


@dataclass(frozen=True)
class MatchedContext:
    """A studied context whose case matches the user's control modes."""

    context: Term
    case: Term
    attributions: tuple[Fact, ...]
    favourability: tuple[Term, ...]
    study: Term | None = None  # the study that reports it
    shared: int = 0  # the user's levels and modes (at their degree) it shares: the order

    def as_json(self) -> dict[str, Any]:
        return {
            "context": self.context.as_json(),
            "case": self.case.as_json(),
            "study": self.study.as_json() if self.study else None,
            "shared": self.shared,
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
    voice: Term | None = None  # the recommendation's own copkg:voice
    reasons: tuple[Reason, ...] = ()  # the considered contexts it applies to, user's first
    studied: Across | None = None  # across every matched studied context (with modes)

    def as_json(self) -> dict[str, Any]:
        return {
            "iri": str(self.iri),
            "label": self.label,
            "advice": self.advice,
            "mitigation": self.mitigation,
            "voice": self.voice.as_json() if self.voice else None,
            "because": [r.because for r in self.reasons],
            "reasons": [r.as_json() for r in self.reasons],
            "applicableWhen": [c.as_json() for c in self.conditions],
            "concernsRoles": [r.as_json() for r in self.roles],
            "appliesTo": [c.as_json() for c in self.contexts],
            "evidence": [e.as_json() for e in self.evidence],
            "inMatchedContexts": self.studied.as_json() if self.studied else None,
        }


@dataclass(frozen=True)
class MatchedPage:
    """Which page of the matched studied contexts an answer shows, of how many, in what order,
    and how many of them all the rules find favourable or not."""

    total: int
    page: int
    size: int | None  # None: every one on this page
    last: int
    order: str
    favourability: tuple[tuple[Term, int], ...] = ()

    def as_json(self) -> dict[str, Any]:
        return {
            "total": self.total,
            "page": self.page,
            "pageSize": self.size,
            "lastPage": self.last,
            "hasNext": self.page < self.last,
            "order": self.order,
            "favourability": [
                {"condition": c.as_json(), "contexts": n} for c, n in self.favourability
            ],
        }


@dataclass
class Advice:
    """The advisor's answer for one context: the advice (complete) and one page of the studied
    contexts it compares with."""

    context: AdviceContext
    favourability: tuple[Term, ...]
    matched_contexts: list[MatchedContext]  # the page shown
    roles: list[RoleAdvice]
    recommendations: list[RecommendationAdvice]
    matched: MatchedPage | None = None  # None when the user gives no control mode

    @property
    def risky_roles(self) -> list[RoleAdvice]:
        return [r for r in self.roles if r.risky]

    def as_json(self) -> dict[str, Any]:
        return {
            "context": self.context.as_json(),
            "favourability": [c.as_json() for c in self.favourability],
            "matchedContexts": [m.as_json() for m in self.matched_contexts],
            "matched": self.matched.as_json() if self.matched else None,
            "roles": [r.as_json() for r in self.roles],
            "riskyRoles": [str(r.role.iri) for r in self.risky_roles],
            "recommendations": [r.as_json() for r in self.recommendations],
        }
