"""The advisor's studied contexts a page at a time: every page is the unpaged answer cut to it
(the advice itself, with its counts across all matched contexts, the same on every page), on the
shipped data and on a build with synthetic studies; the counts read from the build's
derivations are those of the rules run for every matched context."""

from __future__ import annotations

import dataclasses
import shutil
import sys
from pathlib import Path

import pytest
from rdflib import RDFS, Literal, URIRef
from test_web_pages import make_web_project

from copkg.config import Settings
from copkg.errors import CopkgError
from copkg.pipeline import build
from copkg.pipeline.advice_runs import prime_advice
from copkg.pipeline.open import open_store
from copkg.reasoning.advice import answer, scope
from copkg.reasoning.advice.answer import HYPOTHETICAL_CONTEXT, advise
from copkg.reasoning.advice.context import AdviceContext, Vocabulary, parse_context
from copkg.reasoning.advice.describe import Describer
from copkg.reasoning.advice.findings import Advice
from copkg.reasoning.advice.studied import Paging, studied
from copkg.store.embedded import OxigraphStore

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
import synthetic  # noqa: E402

#: The old matching, as a query: the oracle for the index's.
MATCHING = """
SELECT DISTINCT ?context WHERE {
  ?userDegree copkg:rank ?userRank .
  ?attribution a copkg:ControlModeAttribution ;
    copkg:ofCase ?case ; copkg:controlMode ?attributed ; copkg:degree ?degree .
  ?degree copkg:rank ?rank .
  FILTER (?rank >= ?userRank)
  ?attributed skos:broader* ?mode .
  ?context a copkg:OrganisationalContext ; copkg:ofCase ?case .
}
"""

SHIPPED = [
    (["OutputControl", "InputControl@InMostTeams"], []),
    (["InputControl@LesserDegree"], []),
    (["Bureaucracy@LesserDegree"], [("short-termism", "High")]),
    (["InputControl@InMostTeams"], [("short-termism", "High"), ("decentralization", "Low")]),
    (["Clan@LesserDegree"], []),
]
SYNTHETIC = [
    (["Market@LesserDegree"], []),
    (["Clan@LesserDegree"], [("decentralization", "Low")]),
    (["OutputControl@LesserDegree", "Bureaucracy@LesserDegree"], [("short-termism", "High")]),
    (["Bureaucracy@InMostTeams"], [("institutionalization", "Low"), ("short-termism", "Low")]),
]


@pytest.fixture(scope="module")
def shipped(
    tmp_path_factory: pytest.TempPathFactory, run_folder: Path
) -> tuple[Settings, OxigraphStore]:
    settings = make_web_project(tmp_path_factory.mktemp("paging") / "project", run_folder)
    store = open_store(settings)
    assert isinstance(store, OxigraphStore) and store.build_identity
    return settings, store


@pytest.fixture(scope="module")
def synthetic_build(
    shipped: tuple[Settings, OxigraphStore], tmp_path_factory: pytest.TempPathFactory
) -> tuple[Settings, OxigraphStore]:
    """The shipped project plus twelve synthetic studies, built."""
    root = tmp_path_factory.mktemp("paging-synthetic") / "project"
    shutil.copytree(shipped[0].root, root, ignore=shutil.ignore_patterns("build"))
    synthetic.write_corpus(root / "data" / "studies", 12)
    settings = Settings.load(root, environ={})
    build(settings, validate=False)
    store = open_store(settings)
    assert isinstance(store, OxigraphStore) and store.build_identity
    return settings, store


def cut(full: Advice, page: int, size: int) -> Advice:
    """The unpaged answer as page `page` of `size` shows it: its studied contexts, and the
    derivations about the user's context and those."""
    shown = full.matched_contexts[(page - 1) * size : page * size]
    keep = {m.context.iri for m in shown} | {HYPOTHETICAL_CONTEXT}
    assert full.matched is not None
    return dataclasses.replace(
        full,
        matched_contexts=shown,
        roles=[
            dataclasses.replace(r, findings=[f for f in r.findings if f.context.iri in keep])
            for r in full.roles
        ],
        recommendations=[
            dataclasses.replace(
                rec,
                contexts=tuple(c for c in rec.contexts if c.iri in keep),
                reasons=tuple(x for x in rec.reasons if x.context.iri in keep),
            )
            for rec in full.recommendations
        ],
        matched=dataclasses.replace(
            full.matched, page=page, size=size, last=max(1, -(-full.matched.total // size))
        ),
    )


def check_pages(store: OxigraphStore, rules: Path, asked: list) -> tuple[int, int]:
    """Every page of each context, at two sizes, equals the unpaged answer cut to it. The
    largest number of studied contexts matched, and of findings about them."""
    vocabulary = Vocabulary.read(store)
    most = findings = 0
    for modes, levels in asked:
        context = parse_context(store, modes, levels, vocabulary=vocabulary)
        full = advise(store, context, rules=rules, paging=Paging(1, None))
        assert full.matched is not None
        total = full.matched.total
        assert len(full.matched_contexts) == total
        most = max(most, total)
        findings += sum(1 for r in full.roles for f in r.findings if not f.hypothetical)
        for size in (1, 3):
            for page in range(1, max(1, -(-total // size)) + 1):
                got = advise(store, context, rules=rules, paging=Paging(page, size))
                assert got.as_json() == cut(full, page, size).as_json(), (modes, levels, page)
        assert [m.context.iri for m in full.matched_contexts] == sorted_as_stated(full)
        assert oracle(store, context) == {m.context.iri for m in full.matched_contexts}
    return most, findings


def sorted_as_stated(advice: Advice) -> list[URIRef]:
    """The stated order: most shared first, then the study's IRI, then the context's."""
    rows = advice.matched_contexts
    return [
        m.context.iri
        for m in sorted(
            rows, key=lambda m: (-m.shared, str(m.study.iri if m.study else ""), str(m.context.iri))
        )
    ]


def oracle(store: OxigraphStore, context: AdviceContext) -> set[URIRef]:
    """The contexts the old matching query finds for every mode of the context."""
    found: set[URIRef] | None = None
    for choice in context.modes:
        rows = store.query(
            MATCHING, bindings={"mode": choice.mode.iri, "userDegree": choice.degree.iri}
        ).rows
        these = {row["context"] for row in rows}
        found = these if found is None else found & these
    return found or set()


def test_pages_of_the_shipped_data_are_the_unpaged_answer_cut(
    shipped: tuple[Settings, OxigraphStore],
) -> None:
    settings, store = shipped
    most, findings = check_pages(store, settings.rules_dir, SHIPPED)
    assert most >= 4 and findings, "too few studied contexts for pages to prove much"


def test_pages_of_synthetic_studies_are_the_unpaged_answer_cut(
    synthetic_build: tuple[Settings, OxigraphStore],
) -> None:
    settings, store = synthetic_build
    assert studied(store).derived, "the counts would not come from the build's derivations"
    most, findings = check_pages(store, settings.rules_dir, SYNTHETIC)
    assert most >= 10 and findings >= 10


def test_how_much_a_studied_context_shares_with_yours(
    synthetic_build: tuple[Settings, OxigraphStore],
) -> None:
    """`shared` counts the user's levels the context is assessed at and the user's modes its
    case has at the user's very degree; the most shared come first."""
    settings, store = synthetic_build
    levels = [("decentralization", "Low"), ("short-termism", "High")]
    context = parse_context(store, ["Clan@LesserDegree"], levels)
    answer = advise(store, context, rules=settings.rules_dir, paging=Paging(1, None))
    assert len({m.shared for m in answer.matched_contexts}) > 1
    for m in answer.matched_contexts:
        rows = store.query(
            "SELECT ?f ?l WHERE { ?a copkg:assessedContext ?c ; copkg:onFactor ?f ; "
            "copkg:level ?l }",
            bindings={"c": m.context.iri},
        ).rows
        assessed = {(row["f"], row["l"]) for row in rows}
        wanted = {(lv.factor.iri, lv.level.iri) for lv in context.levels}
        degree = store.query(
            "ASK { ?a copkg:ofCase ?case ; copkg:controlMode ?m ; copkg:degree ?d . "
            "?m skos:broader* copkg:Clan }",
            bindings={"case": m.case.iri, "d": context.modes[0].degree.iri},
        ).boolean
        assert m.shared == len(assessed & wanted) + int(bool(degree))


def test_paging_is_checked(shipped: tuple[Settings, OxigraphStore]) -> None:
    settings, store = shipped
    for page, size, word in [(0, 10, "page"), (1, 0, "page_size"), (1, 51, "page_size")]:
        with pytest.raises(CopkgError, match=word) as caught:
            Paging(page, size)
        assert caught.value.status == 400
    context = parse_context(store, ["InputControl@LesserDegree"], [])
    with pytest.raises(CopkgError, match="past the last page") as caught:
        advise(store, context, rules=settings.rules_dir, paging=Paging(99, 10))
    assert caught.value.status == 400


def test_descriptions_off_the_indexes_are_those_of_the_queries(
    synthetic_build: tuple[Settings, OxigraphStore], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Labels, facts and their evidence read by index lookups are what the queries read."""
    settings, store = synthetic_build
    for modes, levels in SYNTHETIC:
        context = parse_context(store, modes, levels)
        native = advise(store, context, rules=settings.rules_dir, paging=Paging(1, 20)).as_json()
        with monkeypatch.context() as patch:
            patch.setattr(answer, "Describer", lambda reads, _n, _m: Describer(reads, None))
            queried = advise(store, context, rules=settings.rules_dir, paging=Paging(1, 20))
        assert native == queried.as_json(), (modes, levels)
        facts = [f for r in native["roles"] for f in r["findings"] for f in f["facts"]]
        assert any(f["evidence"] for f in facts) and any(f["voice"] for f in facts)


def test_page_derivations_and_facts_are_kept_per_build(
    synthetic_build: tuple[Settings, OxigraphStore],
) -> None:
    """What a page reads of the build (its contexts' derivations, the facts they use) is kept
    for the build it was read from: another build reads its own; the answers are the same."""
    settings, store = synthetic_build
    context = parse_context(store, ["Market@LesserDegree"], [("decentralization", "Low")])
    first = advise(store, context, rules=settings.rules_dir, paging=Paging(2, 3))
    shown = {m.context.iri for m in first.matched_contexts}
    kept = scope.build_memo(store, "derived contexts")
    assert kept is not None and shown and shown <= set(kept)
    facts = scope.build_memo(store, "described")
    assert facts is not None and any(key[0] == "fact" for key in facts)
    again = advise(store, context, rules=settings.rules_dir, paging=Paging(2, 3))
    assert again.as_json() == first.as_json()
    # the same store as another build: nothing kept for it yet, then its own
    other = OxigraphStore(store.path, _store=store.native, _read_only=True)
    other.build_identity = "another build"
    assert not scope.build_memo(other, "derived contexts")
    elsewhere = advise(other, context, rules=settings.rules_dir, paging=Paging(2, 3))
    assert elsewhere.as_json() == first.as_json()
    assert shown <= set(scope.build_memo(other, "derived contexts") or {})
    # a store that can change keeps nothing
    other.build_identity = None
    assert scope.build_memo(other, "derived contexts") is None


def test_a_kept_fact_takes_its_voice_label_from_what_the_rules_derive(
    synthetic_build: tuple[Settings, OxigraphStore], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Labels come from what the rules derive for the answer first: a fact kept from an
    earlier answer is read again when its voice is labelled otherwise there."""
    settings, store = synthetic_build
    context = parse_context(store, ["Clan@LesserDegree"], [("decentralization", "Low")])
    before = advise(store, context, rules=settings.rules_dir, paging=Paging(1, 3)).as_json()
    voices = {
        f["voice"]["iri"]
        for r in before["roles"]
        for finding in r["findings"]
        for f in finding["facts"]
        if f["voice"] and not f["hypothetical"]
    }
    assert voices, "no fact with a voice: the test would prove nothing"
    voice = URIRef(sorted(voices)[0])
    inferences_for = answer.inferences_for

    def relabelled(*args: object) -> scope.Derived:
        derived = inferences_for(*args)  # type: ignore[arg-type]
        derived.add([(voice, RDFS.label, Literal("relabelled by a rule"))])
        return derived

    monkeypatch.setattr(answer, "inferences_for", relabelled)
    after = advise(store, context, rules=settings.rules_dir, paging=Paging(1, 3)).as_json()
    labels = {
        f["voice"]["label"]
        for r in after["roles"]
        for finding in r["findings"]
        for f in finding["facts"]
        if f["voice"] and f["voice"]["iri"] == str(voice)
    }
    assert labels == {"relabelled by a rule"}


def test_the_advisors_process_primes_what_each_mode_matches(
    synthetic_build: tuple[Settings, OxigraphStore],
) -> None:
    """Primed, the index keeps the matches and counts of each mode at each degree, as the
    first answer with that mode would have read them."""
    settings, store = synthetic_build
    index = studied(store)
    index.kept.clear()
    prime_advice(settings.rules_dir)(store)
    vocabulary = Vocabulary.read(store)
    modes = vocabulary.choices("ControlMode")
    degrees = [d for d in vocabulary.choices("Degree") if d.iri in vocabulary.ranks]
    assert modes and degrees
    assert set(index.kept) == {frozenset({(m.iri, d.iri)}) for m in modes for d in degrees}
    context = parse_context(store, ["Clan@LesserDegree"], [("decentralization", "Low")])
    kept = index.kept[frozenset({(context.modes[0].mode.iri, context.modes[0].degree.iri)})]
    index.kept.clear()
    assert index.counts(context) == kept[1]
