"""The advisor runs its rules over the facts they can read for the contexts it answers about
(copkg.reasoning.advice.scope), not over a copy of the store: the answers are the same as over
every fact, and what is read does not grow with the corpus."""

from __future__ import annotations

import itertools
import logging
import random
import sys
from pathlib import Path

import pyoxigraph as ox
import pytest
from rdflib import Graph, URIRef
from test_web_pages import make_web_project

from copkg.config import Settings
from copkg.namespaces import study_graph
from copkg.pipeline.open import open_store
from copkg.rdf_io import read_quads
from copkg.reasoning.advice import answer, scope
from copkg.reasoning.advice.answer import HYPOTHETICAL_CONTEXT, advise, hypothetical_facts
from copkg.reasoning.advice.context import AdviceContext, Vocabulary, parse_context
from copkg.reasoning.demand import Unsupported
from copkg.reasoning.rules import Rule, apply_rules, load_rules
from copkg.store.embedded import OxigraphStore

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
import synthetic  # noqa: E402

FACTORS = synthetic.FACTORS


@pytest.fixture(scope="module")
def settings(tmp_path_factory: pytest.TempPathFactory, run_folder: Path) -> Settings:
    return make_web_project(tmp_path_factory.mktemp("scope") / "project", run_folder)


@pytest.fixture(scope="module")
def built(settings: Settings) -> OxigraphStore:
    store = open_store(settings)
    assert isinstance(store, OxigraphStore) and store.read_only and store.build_identity
    return store


def over_every_fact(
    store: OxigraphStore, context: AdviceContext, rules: list[Rule], monkeypatch: pytest.MonkeyPatch
) -> dict:
    """The answer as before: the rules over a copy of every fact plus the hypothetical ones."""
    with monkeypatch.context() as patch:
        patch.setattr(answer, "inferences_for", lambda s, extra, _c, r: apply_rules(s, extra, r))
        return advise(store, context, rules=rules).as_json()


def level_contexts(count: int) -> list[list[tuple[str, str]]]:
    combos = [c for c in itertools.product(["", "Low", "Medium", "High"], repeat=5) if any(c)]
    random.Random(13).shuffle(combos)
    picked = [("Low",) * 5, ("High",) * 5, *combos[:count]]
    return [[(f, level) for f, level in zip(FACTORS, c, strict=True) if level] for c in picked]


MODES = [
    ["OutputControl", "InputControl@InMostTeams"],
    ["InputControl@LesserDegree"],
    ["Bureaucracy@LesserDegree"],
    ["Market"],
    ["Clan@LesserDegree"],
]


def test_the_same_answers_as_over_every_fact(
    built: OxigraphStore, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    rules = load_rules(settings.rules_dir)
    vocabulary = Vocabulary.read(built)
    asked = [([], levels) for levels in level_contexts(8)]
    asked += [(modes, []) for modes in MODES]
    asked += [(["InputControl@InMostTeams"], [("short-termism", "High")])]
    risky = 0
    for modes, levels in asked:
        context = parse_context(built, modes, levels, vocabulary=vocabulary)
        got = advise(built, context, rules=rules).as_json()
        assert got == over_every_fact(built, context, rules, monkeypatch), (modes, levels)
        risky += len(got["riskyRoles"])
    assert risky, "no context made a role risky: the comparison would prove little"


@pytest.fixture(scope="module")
def corpus(built: OxigraphStore, tmp_path_factory: pytest.TempPathFactory) -> OxigraphStore:
    """The build plus three synthetic studies, in a store that can change (no lookups kept)."""
    store = OxigraphStore()
    store.native.extend(built.native.quads_for_pattern(None, None, None))
    folder = tmp_path_factory.mktemp("synthetic")
    for index in range(3):
        study = synthetic.write_study(folder, index)
        graph = study_graph(study.name)
        store.native.extend(q for f in sorted(study.glob("*.ttl")) for q in read_quads(f, graph))
    return store


def test_the_same_answers_on_studied_contexts_that_realised_risks(
    corpus: OxigraphStore, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Synthetic cases: realised risks in many contexts that the modes match."""
    rules = load_rules(settings.rules_dir)
    vocabulary = Vocabulary.read(corpus)
    matched = 0
    for modes, levels in [
        (["Market@LesserDegree"], []),
        (["Clan@LesserDegree"], [("decentralization", "Low")]),
        (["OutputControl@LesserDegree"], []),
        ([], [("institutionalization", "Low"), ("short-termism", "Medium")]),
    ]:
        context = parse_context(corpus, modes, levels, vocabulary=vocabulary)
        got = advise(corpus, context, rules=rules).as_json()
        assert got == over_every_fact(corpus, context, rules, monkeypatch), (modes, levels)
        matched += len(got["matchedContexts"])
    assert matched >= 3


def kept(store: OxigraphStore, context: AdviceContext, rules: list[Rule]) -> set[ox.Quad]:
    return set(
        scope.neighbourhood(
            store, store.native, hypothetical_facts(context), [HYPOTHETICAL_CONTEXT], rules
        )
    )


def test_what_is_read_for_your_context_does_not_grow_with_the_corpus(
    built: OxigraphStore, corpus: OxigraphStore, settings: Settings
) -> None:
    rules = load_rules(settings.rules_dir)
    context = parse_context(built, [], {"decentralization": "Low", "short-termism": "High"})
    small, large = kept(built, context, rules), kept(corpus, context, rules)
    assert small == large
    assert 0 < len(small) < 200 < len(list(built.native.quads_for_pattern(None, None, None)))
    # the roles, their contingencies and the recommendations the rules join with are there
    predicates = {q.predicate.value.rsplit("#", 1)[-1] for q in small}
    assert {"hasContingency", "favourableLevel", "applicableWhen", "rank"} <= predicates


def test_a_rule_that_feeds_them_beyond_the_contexts_falls_back_to_every_fact(
    built: OxigraphStore,
    settings: Settings,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A rule deriving the voice of every assessment: the context rules read those voices,
    but it is not run for the contexts asked about, so the bound cannot be shown."""
    rules_dir = tmp_path / "rules"
    rules_dir.mkdir()
    for path in settings.rules_dir.glob("*.rq"):
        (rules_dir / path.name).write_text(path.read_text())
    (rules_dir / "voice-of-assessments.rq").write_text(
        "#+ label: Assessments in a curator's voice\n"
        "PREFIX copkg: <https://w3id.org/copkg/ontology#>\n"
        "CONSTRUCT { ?a copkg:voice copkg:CuratorVoice }\n"
        "WHERE { ?a a copkg:ContingencyAssessment . FILTER NOT EXISTS { ?a copkg:voice ?v } }\n"
    )
    rules = load_rules(rules_dir)
    context = parse_context(built, [], {"decentralization": "Low"})
    with pytest.raises(Unsupported, match="voice-of-assessments"):
        kept(built, context, rules)
    with caplog.at_level(logging.INFO, logger=scope.__name__):
        got = advise(built, context, rules=rules).as_json()
    assert "reads every fact" in caplog.text
    assert got == over_every_fact(built, context, rules, monkeypatch)


def test_the_inferences_about_the_contexts_are_those_over_every_fact(
    corpus: OxigraphStore, settings: Settings
) -> None:
    """Not only the answer: every derived triple about the contexts asked about."""
    rules = load_rules(settings.rules_dir)
    context = parse_context(corpus, [], {"productivity-orientation": "High"})
    contexts = [HYPOTHETICAL_CONTEXT, *sorted(about_contexts(corpus))]
    extra = hypothetical_facts(context)
    bounded = scope.inferences_for(corpus, extra, contexts, rules)
    full = apply_rules(corpus, extra, rules)
    assert slice_about(bounded, contexts) == slice_about(full, contexts)
    assert len(slice_about(full, contexts)) > 50


def about_contexts(store: OxigraphStore) -> set[URIRef]:
    rows = store.query("SELECT ?c WHERE { ?c a copkg:OrganisationalContext }").rows
    return {row["c"] for row in rows}


def slice_about(graph: Graph, contexts: list[URIRef]) -> set[tuple]:
    """The derived triples about the contexts, with the explanation nodes made for them."""
    wanted = set(contexts)
    nodes = {s for s, _p, o in graph if o in wanted} | wanted
    return {(s, p, o) for s, p, o in graph if s in nodes or o in wanted}


def test_layers_read_as_one_graph_that_took_them_in_turn() -> None:
    """Layered (a page's contexts' derivations over the user's) finds what one Derived given
    every layer's triples in turn finds, in the same order, each triple once."""
    ex = "https://example.org/"
    s, t, p, q, a, b, c = (URIRef(ex + name) for name in "stpqabc")
    layers = [
        [(s, p, a), (s, p, b), (t, q, a)],
        [(s, p, b), (s, p, c), (t, p, a)],
        [],
        [(t, q, a), (s, q, c), (s, p, a)],
    ]
    layered = scope.Layered([scope.Derived(layer) for layer in layers])
    merged = scope.Derived([])
    for layer in layers:
        merged.add(layer)
    for subject, predicate in itertools.product([s, t, a], [p, q]):
        assert layered.value(subject, predicate) == merged.value(subject, predicate)
        assert list(layered.objects(subject, predicate)) == list(merged.objects(subject, predicate))
    for predicate, obj in itertools.product([p, q], [a, b, c, s]):
        assert list(layered.subjects(predicate, obj)) == list(merged.subjects(predicate, obj))
    for predicate in (p, q):
        assert list(layered.subject_objects(predicate)) == list(merged.subject_objects(predicate))
    assert list(layered.objects(s, p)) == [a, b, c]
