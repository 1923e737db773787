"""materialise_increment leaves the inference graph exactly as a full materialise would."""

from __future__ import annotations

import sys
from pathlib import Path

import pyoxigraph as ox
import pytest

from copkg.config import Settings
from copkg.namespaces import COPKG, INFERENCE_GRAPH, study_graph
from copkg.pipeline import steps
from copkg.rdf_io import read_quads
from copkg.reasoning.incremental import InferenceDelta, materialise_increment
from copkg.reasoning.rules import fixpoint, load_rules
from copkg.store.embedded import OxigraphStore

ROOT = Path(__file__).resolve().parents[1]
RULES = ROOT / "rules"
INFERENCES = ox.NamedNode(str(INFERENCE_GRAPH))
sys.path.insert(0, str(ROOT / "benchmarks"))
import synthetic  # noqa: E402


@pytest.fixture(scope="module")
def shipped() -> list[ox.Quad]:
    graphs = steps.source_files(Settings.load(ROOT, environ={}))
    return steps._read_all(graphs, "sources")


def inferences(store: OxigraphStore) -> set[ox.Quad]:
    return set(store.native.quads_for_pattern(None, None, None, INFERENCES))


def add_and_compare(corpus: list[ox.Quad], graph: str, new: list[ox.Quad]) -> InferenceDelta:
    """Materialise `corpus`, add `new` (graph `graph`), run the increment; assert it equals a
    full materialise of everything and that the delta says what changed."""
    rules = load_rules(RULES)
    store = OxigraphStore()
    store.native.extend(corpus)
    fixpoint(store, rules)
    before = inferences(store)
    store.native.extend(new)
    delta = materialise_increment(store, RULES, graph)
    got = inferences(store)
    full = OxigraphStore()
    full.native.extend([*corpus, *new])
    fixpoint(full, rules)
    assert got == inferences(full)
    assert set(delta.added) == got - before
    assert set(delta.removed) == before - got
    return delta


def synthetic_quads(tmp_path: Path, indexes: range) -> dict[str, list[ox.Quad]]:
    out = {}
    for index in indexes:
        folder = synthetic.write_study(tmp_path, index)
        graph = study_graph(folder.name)
        out[graph] = [q for f in sorted(folder.glob("*.ttl")) for q in read_quads(f, graph)]
    return out


@pytest.mark.parametrize(
    "study",
    [
        "josserand2004",
        "josserand2004-insurance",
        "wenger-mcdermott-snyder2002",
        "wenger-snyder2000",
    ],
)
def test_each_shipped_study_added_to_the_others(shipped: list[ox.Quad], study: str) -> None:
    graph = study_graph(study)
    delta = add_and_compare(
        [q for q in shipped if q.graph_name.value != graph],
        graph,
        [q for q in shipped if q.graph_name.value == graph],
    )
    if study == "josserand2004":
        # it defines the contingency factors' favourable levels, which every context's
        # favourability reads: no variable of the rule anchors that pattern
        assert delta.fallback and "context-favourability" in delta.fallback
    else:
        assert delta.fallback is None


@pytest.mark.parametrize("size", [3, 5])
def test_a_synthetic_study_added_to_a_small_corpus(
    shipped: list[ox.Quad], tmp_path: Path, size: int
) -> None:
    studies = synthetic_quads(tmp_path, range(size + 1))
    new_graph = study_graph(synthetic.study_id(size))
    corpus = [q for g, qs in studies.items() if g != new_graph for q in qs]
    delta = add_and_compare([*shipped, *corpus], new_graph, studies[new_graph])
    assert delta.fallback is None
    assert delta.added and delta.queries > 0


def _favourable_levels(shipped: list[ox.Quad]) -> dict[str, str]:
    store = OxigraphStore()
    store.native.extend(shipped)
    rows = store.native.query(
        "SELECT ?f ?l WHERE { ?f <https://w3id.org/copkg/ontology#favourableLevel> ?l }",
        use_default_graph_as_union=True,
    )
    return {row["f"].value: row["l"].value for row in rows}  # type: ignore[index]


def test_a_study_that_makes_an_existing_context_favourable(
    shipped: list[ox.Quad], tmp_path: Path
) -> None:
    """Assessments reaching another study's context at the favourable level of every factor:
    that context's favourability (Unfavourable, with its explanation and advice) goes stale."""
    studies = synthetic_quads(tmp_path, range(3))
    corpus = [*shipped, *(q for qs in studies.values() for q in qs)]
    store = OxigraphStore()
    store.native.extend(corpus)
    fixpoint(store, load_rules(RULES))
    unfavourable = sorted(
        q.subject.value
        for q in store.native.quads_for_pattern(
            None,
            ox.NamedNode(str(COPKG.favourability)),
            ox.NamedNode(str(COPKG.UnfavourableContext)),
            INFERENCES,
        )
        if "/synthetic-" in q.subject.value
    )
    assert unfavourable
    target = unfavourable[0]
    levels = _favourable_levels(shipped)
    assert len(levels) >= 5
    ns = "https://w3id.org/copkg/id/reach/"
    lines = [
        "@prefix copkg: <https://w3id.org/copkg/ontology#> .",
        f"<{ns}study> a copkg:Study .",
    ]
    for i, (factor, level) in enumerate(sorted(levels.items())):
        lines.append(
            f"<{ns}a{i}> a copkg:ContingencyAssessment ; copkg:assessedContext <{target}> ; "
            f"copkg:onFactor <{factor}> ; copkg:level <{level}> ."
        )
    graph = study_graph("reach")
    new = [
        ox.Quad(t.subject, t.predicate, t.object, ox.NamedNode(graph))
        for t in ox.parse("\n".join(lines), format=ox.RdfFormat.TURTLE)
    ]
    delta = add_and_compare(corpus, graph, new)
    assert delta.fallback is None
    stale = ox.Triple(
        ox.NamedNode(target),
        ox.NamedNode(str(COPKG.favourability)),
        ox.NamedNode(str(COPKG.UnfavourableContext)),
    )
    assert stale in {q.triple for q in delta.removed}


def test_a_study_that_derives_nothing(shipped: list[ox.Quad]) -> None:
    graph = study_graph("quiet")
    new = [
        ox.Quad(t.subject, t.predicate, t.object, ox.NamedNode(graph))
        for t in ox.parse(
            "<https://w3id.org/copkg/id/quiet/study> a <https://w3id.org/copkg/ontology#Study> ; "
            '<http://www.w3.org/2000/01/rdf-schema#label> "quiet"@en .',
            format=ox.RdfFormat.TURTLE,
        )
    ]
    delta = add_and_compare(shipped, graph, new)
    assert delta.fallback is None
    assert delta.added == [] and delta.removed == []


def test_a_stale_inference_graph_falls_back(shipped: list[ox.Quad]) -> None:
    """Without the rules' descriptions the graph is no materialisation of these rules."""
    graph = study_graph("wenger-snyder2000")
    store = OxigraphStore()
    store.native.extend(shipped)
    delta = materialise_increment(store, RULES, graph)
    assert delta.fallback and "does not describe the current rules" in delta.fallback
    full = OxigraphStore()
    full.native.extend(shipped)
    fixpoint(full, load_rules(RULES))
    assert inferences(store) == inferences(full)


def test_a_fallback_after_the_increment_changed_the_store_reports_the_whole_change(
    shipped: list[ox.Quad], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A precondition found to fail while inserting (the store already changed): the full
    materialise's delta is still against the old inference graph, as the splice needs."""
    from copkg.reasoning.incremental import Fallback, Increment

    insert = Increment._insert

    def insert_then_fail(self: Increment, seeds: object, added: dict) -> None:
        insert(self, seeds, added)  # type: ignore[arg-type]
        assert added  # the store has changed
        raise Fallback("found late")

    monkeypatch.setattr(Increment, "_insert", insert_then_fail)
    graph = study_graph("josserand2004-insurance")
    delta = add_and_compare(
        [q for q in shipped if q.graph_name.value != graph],
        graph,
        [q for q in shipped if q.graph_name.value == graph],
    )
    assert delta.fallback == "found late"
    assert delta.added
