"""The rules in rules/*.rq derive risky roles from facts, and explain what they derive."""

from dataclasses import dataclass
from pathlib import Path

import pyoxigraph as ox
import pytest
from rdflib import Graph, URIRef
from rdflib.namespace import RDF
from rdflib.term import Node

from copkg.errors import CopkgError
from copkg.namespaces import COPKG, INFERENCE_GRAPH, RULES
from copkg.reasoning import rules as reasoning
from copkg.reasoning.rules import (
    _readers,
    apply_rules,
    load_rules,
    materialise,
    materialise_native,
    parse_rule,
)
from copkg.store import Store
from copkg.store.embedded import OxigraphStore

ROOT = Path(__file__).resolve().parents[1]
EX = "https://w3id.org/copkg/id/mini/"


def mini_store(text_changes: tuple[str, str] | None = None) -> OxigraphStore:
    store = OxigraphStore()
    for name in ("copkg.ttl", "vocabularies.ttl"):
        store.add_graph("urn:ontology", Graph().parse(ROOT / "ontology" / name))
    data = (ROOT / "tests/fixtures/rules_mini.ttl").read_text()
    if text_changes:
        data = data.replace(*text_changes)
    store.add_graph("urn:mini", Graph().parse(data=data, format="turtle"))
    return store


def risky(inferred: Graph) -> set[tuple[str, str]]:
    return {
        (str(c).removeprefix(EX), str(r).removeprefix(EX))
        for c, r in inferred.subject_objects(COPKG.riskyRole)
    }


def test_rules_all_have_headers() -> None:
    rules = load_rules(ROOT / "rules")
    names = {r.name for r in rules}
    assert names >= {"context-level-risk", "realised-risk", "risky-under-control-mode"}
    assert all(r.label and r.description for r in rules)


def test_opposite_pole_is_risky_medium_is_not() -> None:
    inferred = materialise(mini_store(), ROOT / "rules")
    assert risky(inferred) == {("context-a", "facilitation"), ("context-b", "stimulation")}


def test_risky_under_comes_from_attributions_not_from_the_cases_modes() -> None:
    """Case A holds input control and facilitation is risky there, but only the attribution ties
    the two; the broader mode (bureaucracy) is reached via input control, in a curators' voice."""
    store = mini_store()
    inferred = materialise(store, ROOT / "rules")
    under = {(str(r).removeprefix(EX), m) for r, m in inferred.subject_objects(COPKG.riskyUnder)}
    assert under == {("facilitation", COPKG.InputControl), ("facilitation", COPKG.Bureaucracy)}
    voices = {
        o: v
        for s, o in inferred.subject_objects(RDF.object)
        if (s, RDF.predicate, COPKG.riskyUnder) in inferred
        for v in inferred.objects(s, COPKG.weakestVoice)
    }
    assert voices == {
        COPKG.InputControl: COPKG.AuthorVoice,
        COPKG.Bureaucracy: COPKG.DerivedFromCuratorReading,
    }


def test_co_occurrence_alone_makes_no_role_risky_under_a_mode() -> None:
    """Without the attribution, facilitation is still risky in case A's context, under no mode."""
    store = mini_store(("copkg:tiedToMode true", "copkg:tiedToMode false"))
    inferred = materialise(store, ROOT / "rules")
    assert (URIRef(EX + "context-a"), COPKG.riskyRole, URIRef(EX + "facilitation")) in inferred
    assert not set(inferred.subject_objects(COPKG.riskyUnder))


def test_a_curators_attribution_gives_a_curators_answer() -> None:
    store = mini_store(
        (
            "copkg:tiedToMode true ; copkg:voice copkg:AuthorVoice",
            "copkg:tiedToMode true ; copkg:voice copkg:CuratorVoice",
        )
    )
    inferred = materialise(store, ROOT / "rules")
    voices = set(inferred.objects(None, COPKG.weakestVoice))
    assert COPKG.AuthorVoice not in {
        v
        for s in inferred.subjects(RDF.predicate, COPKG.riskyUnder)
        for v in inferred.objects(s, COPKG.weakestVoice)
    }
    assert COPKG.DerivedFromCuratorReading in voices


def test_every_derived_statement_has_a_voice() -> None:
    inferred = materialise(mini_store(), ROOT / "rules")
    statements = set(inferred.subjects(RDF.type, RDF.Statement))
    assert statements
    assert all(len(set(inferred.objects(s, COPKG.weakestVoice))) == 1 for s in statements)


def test_a_curators_assessment_weakens_what_rests_on_it() -> None:
    """context-a's assessments have no voice: what rests on them is not the author's."""
    inferred = materialise(mini_store(), ROOT / "rules")
    for s in inferred.subjects(RDF.subject, URIRef(EX + "context-a")):
        assert (s, COPKG.weakestVoice, COPKG.DerivedFromCuratorReading) in inferred


def test_every_derivation_is_explained() -> None:
    store = mini_store()
    materialise(store, ROOT / "rules")
    found = explain(store, URIRef(EX + "context-a"), COPKG.riskyRole, URIRef(EX + "facilitation"))
    assert [e.rule for e in found] == [RULES["context-level-risk"]]
    assert URIRef(EX + "a-decentralization") in found[0].facts
    under = explain(store, URIRef(EX + "facilitation"), COPKG.riskyUnder, COPKG.InputControl)
    assert under and under[0].rule == RULES["risky-under-control-mode"]
    assert under[0].facts == (URIRef(EX + "facilitation-input"),)


def test_favourability_and_applicable_advice() -> None:
    inferred = materialise(mini_store(), ROOT / "rules")
    context_a = URIRef(EX + "context-a")
    assert (context_a, COPKG.favourability, COPKG.UnfavourableContext) in inferred
    assert (URIRef(EX + "advice-unfavourable"), COPKG.recommendedIn, context_a) in inferred


def test_apply_rules_to_a_hypothetical_context_leaves_the_store_alone() -> None:
    store = mini_store()
    before = store.quad_count()
    hypothesis = Graph().parse(
        data=f"""PREFIX copkg: <https://w3id.org/copkg/ontology#>
        <urn:h> a copkg:OrganisationalContext .
        <urn:h-i> a copkg:ContingencyAssessment ; copkg:assessedContext <urn:h> ;
          copkg:onFactor <{EX}institutionalization> ; copkg:level copkg:Low .""",
        format="turtle",
    )
    inferred = apply_rules(store, hypothesis, ROOT / "rules")
    assert (URIRef("urn:h"), COPKG.riskyRole, URIRef(EX + "stimulation")) in inferred
    assert store.quad_count() == before


def test_a_rule_without_header_is_refused(tmp_path: Path) -> None:
    bad = tmp_path / "bad.rq"
    bad.write_text("CONSTRUCT { ?s ?p ?o } WHERE { ?s ?p ?o }")
    with pytest.raises(CopkgError, match="label"):
        parse_rule(bad)


def test_rule_descriptions_are_data() -> None:
    inferred = materialise(mini_store(), ROOT / "rules")
    assert (RULES["realised-risk"], RDF.type, COPKG.InferenceRule) in inferred


CHAIN = {  # in name order, each rule reads what the next one derives: one new step a round
    "a-s-from-r": "?x ex:r ?y } WHERE { ?x ex:r ?y",
    "b-r-from-q": "?x ex:r ?y } WHERE { ?x ex:q ?y",
    "c-q-from-p": "?x ex:q ?y } WHERE { ?x ex:p ?y",
}


def chain_rules(folder: Path, extra: dict[str, str] | None = None) -> list:
    folder.mkdir()
    for name, body in {**CHAIN, **(extra or {})}.items():
        head = (
            body.replace("?x ex:r ?y } WHERE", "?x ex:s ?y } WHERE", 1) if name[0] == "a" else body
        )
        text = f"#+ label: {name}\nPREFIX ex: <urn:ex:>\nCONSTRUCT {{ {head} }}\n"
        (folder / f"{name}.rq").write_text(text)
    return load_rules(folder)


def naive_fixpoint(store: OxigraphStore, rules: list) -> set:
    """Every rule every round, as the rules were run before rules were skipped."""
    found: set = set()
    while True:
        fresh = {
            t
            for rule in rules
            for t in store.native.query(rule.text, use_default_graph_as_union=True)
            if t not in found
        }
        if not fresh:
            return found
        found |= fresh
        store.native.extend(ox.Quad(t.subject, t.predicate, t.object, INFERENCE) for t in fresh)


INFERENCE = ox.NamedNode(str(INFERENCE_GRAPH))


def test_a_chain_of_rules_runs_to_its_end_though_idle_rules_are_skipped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(reasoning, "SCHEDULE_FROM", 0)  # skip rules however few derivations
    rules = chain_rules(tmp_path / "rules")
    store = OxigraphStore()
    ex = "urn:ex:"
    store.native.add(ox.Quad(*(ox.NamedNode(ex + n) for n in ("a", "p", "b", "g"))))
    count = materialise_native(store, rules)
    derived = {
        q.predicate.value.removeprefix(ex)
        for q in store.native.quads_for_pattern(ox.NamedNode(ex + "a"), None, None, INFERENCE)
    }
    assert derived == {"q", "r", "s"}
    assert count == len(list(store.native.quads_for_pattern(None, None, None, INFERENCE)))


def test_skipped_rules_give_the_inferences_of_every_rule_every_round(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(reasoning, "SCHEDULE_FROM", 0)
    rules = load_rules(ROOT / "rules")
    store, reference = mini_store(), mini_store()
    materialise_native(store, rules)
    expected = naive_fixpoint(reference, rules)
    got = {
        ox.Triple(q.subject, q.predicate, q.object)
        for q in store.native.quads_for_pattern(None, None, None, INFERENCE)
        if not q.subject.value.startswith(str(RULES))  # the rules' descriptions
    }
    assert got == expected and len(expected) > 20


def test_rules_the_analysis_may_misread_are_read_by_every_rule(tmp_path: Path) -> None:
    odd = {
        "d-negated-path": "?x ex:t ?y } WHERE { ?x !ex:zz ?y",
        "e-exists-in-bind": "?x ex:u ?b } WHERE { ?x ex:zz ?y BIND (EXISTS { ?x ex:zz ?x } AS ?b)",
    }
    rules = chain_rules(tmp_path / "rules", odd)
    readers = _readers(rules)
    everyone = set(range(len(rules)))
    names = [r.name for r in rules]
    assert readers[names.index("c-q-from-p")] == {names.index("b-r-from-q"), 3, 4}
    assert readers[names.index("a-s-from-r")] == {3, 4}  # nothing reads ex:s but the odd ones
    assert readers[3] == readers[4] == everyone


# -- the explanation nodes the rules write, read back by SPARQL --------------------------------


@dataclass(frozen=True)
class Explanation:
    """Why the graph holds one derived statement: the rule and the facts it used."""

    statement: URIRef
    rule: URIRef
    rule_label: str
    facts: tuple[URIRef, ...]


EXPLAIN = """
PREFIX copkg: <https://w3id.org/copkg/ontology#>
PREFIX rdf: <http://www.w3.org/1999/02/22-rdf-syntax-ns#>
PREFIX rdfs: <http://www.w3.org/2000/01/rdf-schema#>
SELECT ?statement ?rule ?ruleLabel ?fact WHERE {
  ?statement rdf:subject ?s ; rdf:predicate ?p ; rdf:object ?o ; copkg:derivedBy ?rule .
  OPTIONAL { ?rule rdfs:label ?ruleLabel }
  OPTIONAL { ?statement copkg:usedFact ?fact }
}
ORDER BY ?statement ?fact
"""


def explain(store: Store, subject: Node, predicate: Node, obj: Node) -> list[Explanation]:
    """Every derivation of (subject, predicate, obj), grouped by the statement node."""
    result = store.query(EXPLAIN, bindings={"s": subject, "p": predicate, "o": obj})
    grouped: dict[URIRef, tuple[URIRef, str, list[URIRef]]] = {}
    for row in result.rows:
        statement = row["statement"]
        _rule, _label, facts = grouped.setdefault(
            statement, (row["rule"], str(row.get("ruleLabel", row["rule"])), [])
        )
        if "fact" in row:
            facts.append(row["fact"])
    return [
        Explanation(statement, rule, label, tuple(facts))
        for statement, (rule, label, facts) in grouped.items()
    ]
