"""What the user says: control modes and contingency levels, read from text and checked against
the vocabulary the ontology offers."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from rdflib import URIRef
from rdflib.term import Node

from copkg.errors import CopkgError, Problem
from copkg.namespaces import COPKG, PREFIXES
from copkg.querying.pages.vocabulary import VocabularyRow, vocabulary_rows
from copkg.store import Store


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
    definitions: dict[URIRef, str] = field(default_factory=dict)  # skos:definition, for help

    @classmethod
    def read(cls, store: Store) -> Vocabulary:
        return cls.from_rows(vocabulary_rows(store))

    @classmethod
    def from_rows(cls, rows: Iterable[VocabularyRow]) -> Vocabulary:
        """The vocabulary of the rows `vocabulary_rows` read (a page read of the workers)."""
        terms: dict[str, dict[URIRef, Term]] = {
            "ControlMode": {},
            "Degree": {},
            "Level": {},
            "ContingencyFactor": {},
        }
        ranks: dict[URIRef, int] = {}
        definitions: dict[URIRef, str] = {}
        for kind_iri, term, label, rank, definition in rows:
            kind = kind_iri.removeprefix(str(COPKG))
            iri = URIRef(term)
            terms[kind].setdefault(iri, Term(iri, label or local_name(iri)))
            if definition is not None:
                definitions.setdefault(iri, definition)
            if rank is not None:
                with contextlib.suppress(ValueError):
                    ranks[iri] = int(rank)
        return cls(terms, ranks, definitions)

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
    """Validate what a user typed against the graph's vocabularies (read from the store
    unless given): see `read_context`."""
    return read_context(vocabulary or Vocabulary.read(store), modes, levels)


def read_context(
    vocab: Vocabulary,
    modes: Iterable[str | tuple[str, str | None]] = (),
    levels: Mapping[str, str] | Iterable[tuple[str, str]] = (),
) -> AdviceContext:
    """Validate what a user typed against the vocabulary.

    A mode is "Mode", "Mode@Degree" or a (mode, degree) pair (degree defaults to the
    highest-ranked degree, the unqualified main mode); levels map a factor to a level."""
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
