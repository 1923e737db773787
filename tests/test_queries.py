"""The competency queries of queries/*.rq answer the paper's questions, from facts and rules."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from rdflib import Graph, Literal, URIRef

from copkg.namespaces import COPKG, ONTOLOGY_GRAPH, study_base, study_graph
from copkg.querying.named_queries import load_named_queries, run_page
from copkg.reasoning.rules import materialise
from copkg.store.embedded import OxigraphStore

ROOT = Path(__file__).resolve().parents[1]
J04 = study_base("josserand2004")
QUERIES = load_named_queries(ROOT / "queries")
TABLES = next((p for p in (ROOT.parent / "shared/paper/tables.md",
                           Path("/work/shared/paper/tables.md")) if p.exists()), None)


def corpus(edit: Callable[[Graph], None] | None = None) -> OxigraphStore:
    """The shipped sources in a fresh store, rules materialised; `edit` changes the data first."""
    if not any((ROOT / "data/studies/josserand2004").glob("*.ttl")):
        pytest.fail("data/studies/josserand2004 has no data")
    store = OxigraphStore()
    for path in sorted((ROOT / "ontology").glob("*.ttl")):
        if path.name != "shapes.ttl":
            store.add_graph(str(ONTOLOGY_GRAPH), Graph().parse(path))
    for folder in sorted(p for p in (ROOT / "data/studies").iterdir() if p.is_dir()):
        graph = Graph()
        for path in sorted(folder.glob("*.ttl")):
            graph.parse(path)
        if edit:
            edit(graph)
        store.add_graph(study_graph(folder.name), graph)
    materialise(store, ROOT / "rules")
    return store


@pytest.fixture(scope="module")
def store() -> Iterator[OxigraphStore]:
    yield corpus()


def ask(store: OxigraphStore, name: str, **params: str) -> list[dict]:
    return run_page(store, QUERIES[name], params)[0].rows


def local(node: object) -> str:
    return str(node).removeprefix(str(J04))


def risky_roles(store: OxigraphStore, mode: str) -> dict[str, list[dict]]:
    by_role: dict[str, list[dict]] = {}
    for row in ask(store, "risky-roles", controlMode=mode):
        by_role.setdefault(local(row["role"]), []).append(row)
    return by_role


def test_risky_under_input_control(store: OxigraphStore) -> None:
    answer = risky_roles(store, "copkg:InputControl")
    assert set(answer) == {"facilitation", "support", "control", "recognition"}
    for role, rows in answer.items():
        role_iri = J04[role]
        risks = {r["risk"] for r in rows}
        contingencies = {r["contingency"] for r in rows}
        assert risks == set(store.graph().objects(role_iri, COPKG.hasRisk)), role
        assert contingencies == set(store.graph().objects(role_iri, COPKG.hasContingency)), role
        pages = {int(r["page"]) for r in rows}
        assert pages and all(307 <= p <= 339 for p in pages), role
        assert all(r["quote"].strip() for r in rows)


def test_stimulation_is_risky_at_gas_but_not_under_input_control(store: OxigraphStore) -> None:
    """Gas holds input control only 'to a lesser degree': its risks do not count for the mode."""
    gas_late = J04["context-gas-2001-2004"]
    assert (gas_late, COPKG.riskyRole, J04.stimulation) in store.graph()
    assert "stimulation" not in risky_roles(store, "copkg:InputControl")


def test_the_degree_is_a_fact_not_code() -> None:
    """Make Gas's input control a main mode in a copy of the data: stimulation joins the answer."""

    def gas_input_control_as_main_mode(graph: Graph) -> None:
        for attribution in list(graph.subjects(COPKG.ofCase, J04["case-gas"])):
            if (attribution, COPKG.controlMode, COPKG.InputControl) in graph:
                graph.set((attribution, COPKG.degree, COPKG.MainMode))

    changed = corpus(gas_input_control_as_main_mode)
    assert "stimulation" in risky_roles(changed, "copkg:InputControl")


def test_context_levels_and_observations_are_facts_not_code() -> None:
    """Support is risky at Comp by two rules; remove the grounds of both and it goes."""
    assessment = J04["contexts-comp-consultants-resource-decentralization"]
    enactment = J04["enactments-support-comp"]

    def raise_resources(graph: Graph) -> None:
        if (assessment, COPKG.level, None) in graph:
            graph.set((assessment, COPKG.level, COPKG.High))

    def not_realised(graph: Graph) -> None:
        if (enactment, COPKG.riskRealised, None) in graph:
            graph.set((enactment, COPKG.riskRealised, Literal(False)))
            graph.remove((enactment, COPKG.realisedRisk, None))

    def both(graph: Graph) -> None:
        raise_resources(graph)
        not_realised(graph)

    assert "support" in risky_roles(corpus(raise_resources), "copkg:InputControl")
    assert "support" in risky_roles(corpus(not_realised), "copkg:InputControl")
    answer = risky_roles(corpus(both), "copkg:InputControl")
    assert "support" not in answer
    assert {"facilitation", "control", "recognition"} <= set(answer)


def test_role_framework_is_table_2(store: OxigraphStore) -> None:
    rows = ask(store, "role-framework")
    got = [(str(r["roleLabel"]), str(r["objectiveLabel"]), str(r["riskLabel"]),
            str(r["contingencyLabel"])) for r in rows]
    expected = [
        ("Stimulation", "Connection", "Obligation", "Institutionalization"),
        ("Facilitation", "Purpose", "Imposed topic", "Decentralization"),
        ("Support", "Resources", "Expected return", "Resource decentralization"),
        ("Control", "Deviance", "Threat on affect", "Productivity orientation"),
        ("Recognition", "Reward and appreciation", "Expected deliverables",
         "Degree of short-termism"),
    ]
    if TABLES is not None:
        printed = TABLES.read_text(encoding="utf-8").split("## Table 2")[1]
        cells = [
            tuple(c.strip() for c in line.strip().strip("|").split("|"))
            for line in printed.splitlines()
            if line.startswith("| ") and not line.startswith("| Role")
        ]
        assert cells == expected, "tables.md and this test disagree"
    assert got == expected


def test_case_contexts_is_table_1(store: OxigraphStore) -> None:
    rows = ask(store, "case-contexts")
    modes = {local(r["case"]): str(r["cellText"]) for r in rows
             if str(r.get("rowHeader", "")) == "Mode of control"}
    assert modes == {
        "case-electrical": "Market; Output control",
        "case-gas": "Clan; Input and output control to a lesser degree",
        "case-comp": "Output control; Input control in most teams",
    }
    headers = {str(r["rowHeader"]) for r in rows if "rowHeader" in r}
    assert headers == {"Mode of control", "Structure", "Perspective"}
    comp = next(r for r in rows if local(r["case"]) == "case-comp")
    assert "input control (in most teams)" in str(comp["controlModes"])


def test_comp_centres_and_their_fates(store: OxigraphStore) -> None:
    fates = {local(r["centre"]): local(r["fate"]).rsplit("#", 1)[-1]
             for r in ask(store, "comp-centres")}
    assert fates == {
        "comp-internet-centre": "FellApart",
        "comp-telecom-networks-centre": "FellApart",
        "comp-project-management-centre": "BecameProjectTeam",
        "comp-crm-centre": "StillActive",
        "comp-bank-finance-centre": "FadedAway",
        "comp-insurance-centre": "FadedAway",
    }
    emerged = {local(r["emerged"]) for r in ask(store, "comp-centres") if "emerged" in r}
    assert "comp-bank-finance-community" in emerged


@pytest.mark.parametrize("about", ["imposed-topic", "facilitation", "obligation"])
def test_evidence_for_a_risk_or_role(store: OxigraphStore, about: str) -> None:
    rows = ask(store, "evidence-for", about=f"j04:{about}")
    assert rows, about
    assert all(307 <= int(r["page"]) <= 339 and str(r["quote"]).strip() for r in rows)
    assert any("voice" in r for r in rows)


def test_evidence_for_an_unknown_resource_is_empty(store: OxigraphStore) -> None:
    assert ask(store, "evidence-for", about="https://example.org/nothing") == []


def test_gas_timeline_in_order(store: OxigraphStore) -> None:
    rows = ask(store, "timeline", organisation="j04:gas")
    years = [str(r["date"])[:4] for r in rows]
    assert years == sorted(years)
    assert {"1992", "2001", "2003"} <= set(years)
    labels = " ".join(str(r["eventLabel"]).lower() for r in rows)
    assert "sponsor" in labels and "reorgani" in labels


def test_every_named_query_runs_with_its_defaults(store: OxigraphStore) -> None:
    for query in QUERIES.values():
        defaults = {p.name: p.default for p in query.parameters if p.default is not None}
        run_page(store, query, defaults)  # raises on a broken query or a missing required parameter


def test_unknown_organisation_has_no_timeline(store: OxigraphStore) -> None:
    assert ask(store, "timeline", organisation=str(URIRef("https://example.org/x"))) == []
