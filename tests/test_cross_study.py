"""The studies Josserand (2004) reports on, the links between them, and the cross-study queries.

The store is built like the pipeline builds it: the ontology in its graph, each study bundle
data/studies/<ID>/*.ttl in https://w3id.org/copkg/graph/study/<ID>, then the rules materialised.
Answers that need the Josserand bundle (its roles, for the rules) skip, saying so, when it is
not there.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from rdflib import Graph, Literal, URIRef
from rdflib.namespace import DCTERMS, RDF, RDFS, SKOS

from copkg.namespaces import CITO, COPKG, ONTOLOGY_GRAPH, RULES, study_base, study_graph
from copkg.rdf_io import read_quads
from copkg.reasoning.rules import materialise
from copkg.store.embedded import OxigraphStore
from copkg.validation.fidelity import check_quotes, normalise, pages

ROOT = Path(__file__).resolve().parents[1]
STUDIES = ROOT / "data/studies"
CANDIDATES = [
    ROOT.parent / "shared/paper/josserand-2004.txt",
    ROOT.parent.parent / "shared/paper/josserand-2004.txt",
    Path("/work/shared/paper/josserand-2004.txt"),
]
PAPER = next((p for p in CANDIDATES if p.exists()), None)

J04 = study_base("josserand2004")
INS = study_base("josserand2004-insurance")
WS = study_base("wenger-snyder2000")
WMS = study_base("wenger-mcdermott-snyder2002")
MINE = ("josserand2004-insurance", "wenger-snyder2000", "wenger-mcdermott-snyder2002")
XSD_GYEAR = URIRef("http://www.w3.org/2001/XMLSchema#gYear")

needs_roles = pytest.mark.skipif(
    not (STUDIES / "josserand2004/roles.ttl").exists(),
    reason="the roles of the Josserand bundle (data/studies/josserand2004/roles.ttl) are not "
    "there yet: without their risks and contingencies the rules derive nothing",
)
needs_paper = pytest.mark.skipif(
    PAPER is None, reason="the paper's text (../shared/paper/josserand-2004.txt) is absent"
)


@pytest.fixture(scope="module")
def store() -> OxigraphStore:
    built = OxigraphStore()
    for path in sorted((ROOT / "ontology").glob("*.ttl")):
        if path.name != "shapes.ttl":
            built.native.extend(read_quads(path, str(ONTOLOGY_GRAPH)))
    for folder in sorted(p for p in STUDIES.iterdir() if p.is_dir()):
        for path in sorted(folder.glob("*.ttl")):
            built.native.extend(read_quads(path, study_graph(folder.name)))
    materialise(built, ROOT / "rules")
    return built


def bundle(*names: str) -> Graph:
    graph = Graph()
    for name in names:
        for path in sorted((STUDIES / name).glob("*.ttl")):
            graph.parse(path)
    return graph


@pytest.fixture(scope="module")
def mine() -> Graph:
    """The three bundles and the links Josserand (2004) makes to them (in its own bundle: the
    study that states a link reports it)."""
    graph = bundle(*MINE)
    graph.parse(STUDIES / "josserand2004/links.ttl")
    return graph


def run(store: OxigraphStore, name: str, **bindings: URIRef) -> list[dict]:
    text = (ROOT / "queries" / f"{name}.rq").read_text(encoding="utf-8")
    return store.query(text, bindings=bindings).rows


def has_j04(store: OxigraphStore, iri: URIRef) -> bool:
    answer = store.query(
        "ASK { GRAPH ?g { ?s ?p ?o } }",
        bindings={"s": iri, "g": URIRef(study_graph("josserand2004"))},
    )
    return bool(answer.boolean)


# -- the bundles ------------------------------------------------------------------------------


def test_each_bundle_is_a_study_linked_to_its_reference(mine: Graph) -> None:
    expected = {
        INS.study: (J04["ref-josserand-2004"], "The Network Organization", "2004"),
        WS.study: (
            J04["ref-wenger-snyder-2000"],
            "Communities of Practice: The Organizational Frontier",
            "2000",
        ),
        WMS.study: (
            J04["ref-wenger-mcdermott-snyder-2002"],
            "Cultivating Communities of Practice",
            "2002",
        ),
    }
    for study, (reference, title, year) in expected.items():
        assert (study, RDF.type, COPKG.Study) in mine
        assert (study, SKOS.exactMatch, reference) in mine
        assert str(mine.value(study, DCTERMS.title)) == title
        assert mine.value(study, DCTERMS.issued) == Literal(year, datatype=XSD_GYEAR)
        assert list(mine.objects(study, DCTERMS.creator))
    assert (INS.study, DCTERMS.creator, J04["emmanuel-josserand"]) in mine
    # the only study whose pages the paper gives (reference list, page 339)
    assert int(mine.value(WS.study, COPKG.firstPage)) == 139
    assert int(mine.value(WS.study, COPKG.lastPage)) == 145


@needs_paper
def test_citations_are_those_of_the_reference_list(mine: Graph) -> None:
    assert PAPER is not None
    text = pages(PAPER.read_text(encoding="utf-8"))
    references = text[338] + " " + text[339]
    for study in (INS.study, WS.study, WMS.study):
        citation = normalise(str(mine.value(study, DCTERMS.bibliographicCitation)))
        assert citation in references, citation


@needs_paper
def test_every_quote_of_these_bundles_is_on_its_page(mine: Graph) -> None:
    assert PAPER is not None
    checked, mismatches = check_quotes(mine, J04.study, PAPER)
    quotes = set(mine.subjects(RDF.type, COPKG.Quote))
    assert checked == len(quotes) > 50, "every quote must be quoted in j04:study"
    assert not mismatches, "\n".join(map(str, mismatches))


def test_findings_have_voice_label_statement_study_and_evidence(mine: Graph) -> None:
    kinds = (COPKG.Finding, COPKG.RoleEnactment, COPKG.CrossStudyRelation)
    findings = {f for kind in kinds for f in mine.subjects(RDF.type, kind)}
    assert len(findings) > 30
    for finding in findings:
        for prop in (COPKG.voice, RDFS.label, COPKG.statement, COPKG.reportedIn, COPKG.hasEvidence):
            assert mine.value(finding, prop) is not None, f"{finding} lacks {prop}"
        if mine.value(finding, COPKG.voice) == COPKG.CitedVoice:
            assert mine.value(finding, COPKG.citedWork) is not None, finding


def test_cited_quotes_name_their_work_and_pages(mine: Graph) -> None:
    cited = set(mine.subjects(COPKG.voice, COPKG.CitedVoice)) & set(
        mine.subjects(RDF.type, COPKG.Quote)
    )
    assert len(cited) >= 8
    for quote in cited:
        assert mine.value(quote, COPKG.citedWork) in (
            J04["ref-wenger-snyder-2000"],
            J04["ref-wenger-mcdermott-snyder-2002"],
        )
        assert mine.value(quote, COPKG.citedPages) is not None, quote


def test_nothing_the_rules_derive_is_stated(mine: Graph) -> None:
    for prop in (COPKG.riskyRole, COPKG.riskyUnder, COPKG.favourability, COPKG.recommendedIn):
        assert not list(mine.triples((None, prop, None))), prop
    assert not list(mine.subjects(RDF.type, COPKG.RiskAssessment))


def test_the_local_risk_is_mapped_to_obligation(mine: Graph) -> None:
    local = INS["risk-of-systematization"]
    assert (local, SKOS.closeMatch, J04.obligation) in mine
    assert str(mine.value(local, SKOS.prefLabel)) == "risk of systematization"


def test_every_link_joins_two_findings_of_different_studies(
    store: OxigraphStore, mine: Graph
) -> None:
    is_finding = """PREFIX copkg: <https://w3id.org/copkg/ontology#>
        PREFIX rdfs: <http://www.w3.org/2000/01/rdf-schema#>
        ASK { ?f a ?type . ?type rdfs:subClassOf* copkg:Finding
              FILTER NOT EXISTS { ?f a copkg:Event } }"""
    links = list(mine.subjects(RDF.type, COPKG.CrossStudyRelation))
    assert len(links) >= 15
    for link in links:
        ends = [mine.value(link, COPKG.subjectFinding), mine.value(link, COPKG.objectFinding)]
        assert str(mine.value(link, COPKG.relationType)).startswith(str(CITO))
        for end in ends:
            if str(end).startswith(str(J04)) and not has_j04(store, end):
                pytest.fail(f"{end} of the Josserand bundle is missing")
            assert store.query(is_finding, bindings={"f": end}).boolean, f"{link}: {end}"
        studies = [
            store.query(
                f"SELECT ?s WHERE {{ ?f <{COPKG.reportedIn}> ?s }}", bindings={"f": end}
            ).rows
            for end in ends
        ]
        assert studies[0] and studies[1] and studies[0] != studies[1], link


# -- risk-observations.rq ---------------------------------------------------------------------


def test_obligation_was_realised_at_the_insurance_company(store: OxigraphStore) -> None:
    rows = run(store, "risk-observations", _risk_iri=J04.obligation)
    enacted = [
        r
        for r in rows
        if r.get("study") == INS.study and str(r["kind"]) == "risk realised in a role enactment"
    ]
    assert enacted, rows
    assert {r["observation"] for r in enacted} == {INS["enactments-stimulation-think-groups"]}
    assert {r["role"] for r in enacted} == {J04.stimulation}
    assert {r["case"] for r in enacted} == {INS["case-insurance"]}
    assert {r["context"] for r in enacted} == {INS["context-insurance"]}
    assert {int(r["page"]) for r in enacted} == {330}
    assert any("think-groups" in str(r["quote"]) for r in enacted)
    # the paper only calls the company "collegial": clan control is our reading, and says so
    assert {str(r["controlModes"]) for r in enacted} == {"clan (main mode)"}


@needs_roles
def test_the_rules_derive_stimulation_risky_at_the_insurance_company(
    store: OxigraphStore,
) -> None:
    rows = run(store, "risk-observations", _risk_iri=J04.obligation)
    derived = [
        r
        for r in rows
        if r.get("study") == INS.study and str(r["kind"]) == "risky role derived by a rule"
    ]
    assert derived
    assert {r["rule"] for r in derived} == {RULES["realised-risk"]}
    assert {r["context"] for r in derived} == {INS["context-insurance"]}


def test_a_local_risk_finds_the_risk_it_maps_to(store: OxigraphStore) -> None:
    rows = run(store, "risk-observations", _risk_iri=INS["risk-of-systematization"])
    observations = {(r["observation"], r["risk"]) for r in rows}
    assert (INS["enactments-stimulation-think-groups"], J04.obligation) in observations
    assert (INS["findings-systematization-fails"], INS["risk-of-systematization"]) in observations


def test_risk_observations_report_the_control_modes_of_the_case(store: OxigraphStore) -> None:
    modes = """PREFIX copkg: <https://w3id.org/copkg/ontology#>
      PREFIX rdfs: <http://www.w3.org/2000/01/rdf-schema#>
      SELECT ?label WHERE { ?a a copkg:ControlModeAttribution ; copkg:ofCase ?case ;
        copkg:controlMode/rdfs:label ?label }"""
    seen = 0
    for risk in (
        "obligation",
        "imposed-topic",
        "expected-return",
        "threat-on-affect",
        "expected-deliverables",
    ):
        for row in run(store, "risk-observations", _risk_iri=J04[risk]):
            expected = (
                {str(r["label"]) for r in store.query(modes, bindings={"case": row["case"]}).rows}
                if "case" in row
                else set()
            )
            got = str(row.get("controlModes", ""))
            assert all(label in got for label in expected), (row, expected)
            assert bool(got) == bool(expected), row
            seen += 1
    assert seen > 0


def test_expected_deliverables_reported_by_wenger_mcdermott_snyder(store: OxigraphStore) -> None:
    rows = run(store, "risk-observations", _risk_iri=J04["expected-deliverables"])
    reported = [r for r in rows if r.get("study") == WMS.study]
    assert {r["observation"] for r in reported} == {
        WMS["findings-lacking-vision-forces-deliverables"]
    }
    assert {str(r["kind"]) for r in reported} == {"finding about the risk"}
    assert {int(r["page"]) for r in reported} == {334}


# -- role-study-comparison.rq -----------------------------------------------------------------


@needs_roles
def test_the_comparison_is_a_full_roles_by_studies_table(store: OxigraphStore) -> None:
    rows = run(store, "role-study-comparison")
    cells = {(r["role"], r["study"]): r for r in rows}
    roles = {r["role"] for r in rows}
    studies = {r["study"] for r in rows}
    assert roles == {
        J04[n] for n in ("stimulation", "facilitation", "support", "control", "recognition")
    }
    assert {INS.study, WS.study, WMS.study} <= studies
    assert len(rows) == len(cells) == len(roles) * len(studies)

    insurance = cells[(J04.stimulation, INS.study)]
    assert str(insurance["cell"]) == "risk realised"
    assert int(insurance["realised"]) == 1 and int(insurance["reported"]) == 1
    assert "p. 330: " in str(insurance["evidence"])
    assert "think-groups" in str(insurance["evidence"])

    vision = cells[(J04.recognition, WMS.study)]
    assert str(vision["cell"]) == "risk reported"
    assert "p. 334: " in str(vision["evidence"])

    identifying = cells[(J04.stimulation, WS.study)]
    assert str(identifying["cell"]) == "role discussed"
    assert int(identifying["reported"]) == 0

    assert str(cells[(J04.control, INS.study)]["cell"]) == "not reported"
    assert "evidence" not in cells[(J04.control, INS.study)]


# -- cross-study-links.rq ---------------------------------------------------------------------


def links(rows: list[dict]) -> dict[URIRef, dict]:
    return {r["relation"]: r for r in rows}


def test_the_insurance_finding_qualifies_wenger_and_snyder(store: OxigraphStore) -> None:
    rows = run(store, "cross-study-links", __study_iri=INS.study)
    found = links(rows)
    qualifies = J04["links-systematization-qualifies-identifying"]
    confirms = J04["links-freedom-confirms-systematization"]
    assert set(found) == {qualifies, confirms}
    row = found[qualifies]
    assert row["relationType"] == CITO.qualifies
    assert row["subjectStudy"] == INS.study and row["objectStudy"] == WS.study
    assert row["objectFinding"] == WS["findings-managers-identify-communities"]
    assert row["reporter"] == J04.study
    assert found[confirms]["relationType"] == CITO.confirms
    assert found[confirms]["objectFinding"] == INS["findings-systematization-fails"]
    quotes = {str(r["quote"]) for r in rows if r["relation"] == qualifies}
    assert any("do not underline the corresponding risks" in q for q in quotes)
    assert any("risk of systematization" in str(r["quote"]) for r in rows)
    assert {int(r["page"]) for r in rows} == {330}
    assert {r["quoteVoice"] for r in rows} == {COPKG.AuthorVoice}
    assert {str(r["voice"]) for r in rows} == {"author"}


def test_a_link_is_reported_by_the_study_that_states_it(store: OxigraphStore) -> None:
    """Josserand (2004) makes every shipped link (pp. 309-335): each is in the 2004 bundle's
    graph and reported by it, none in the graph of the earlier work it cites, and no link is
    reported by a study published before a study it links."""
    rows = run(store, "cross-study-links")
    assert rows and {r["reporter"] for r in rows} == {J04.study}
    assert all(str(r["reporterLabel"]).startswith("Josserand (2004)") for r in rows)
    in_graphs = store.query(
        """PREFIX copkg: <https://w3id.org/copkg/ontology#>
        SELECT DISTINCT ?g ?reporter WHERE {
          GRAPH ?g { ?relation a copkg:CrossStudyRelation ; copkg:reportedIn ?reporter } }"""
    ).rows
    assert {(str(r["g"]), r["reporter"]) for r in in_graphs} == {
        (study_graph("josserand2004"), J04.study)
    }
    issued = """PREFIX copkg: <https://w3id.org/copkg/ontology#>
        PREFIX dcterms: <http://purl.org/dc/terms/>
        SELECT ?relation WHERE {
          ?relation a copkg:CrossStudyRelation ; copkg:reportedIn/dcterms:issued ?reported ;
            copkg:subjectFinding|copkg:objectFinding ?finding .
          ?finding copkg:reportedIn/dcterms:issued ?issued .
          FILTER (SUBSTR(STR(?reported), 1, 4) < SUBSTR(STR(?issued), 1, 4)) }"""
    assert store.query(issued).rows == []


def test_a_link_written_in_the_cited_works_bundle_is_refused() -> None:
    """The old encoding (Josserand's links in the Wenger and Snyder bundle) and a 1991 study
    reporting a link to the 2004 paper both fail copsh:CrossStudyReporterShape."""
    from copkg.validation.ontology import load_ontology
    from copkg.validation.report import load_shapes, validate

    shapes = load_shapes(ROOT / "ontology/shapes.ttl")
    ontology = load_ontology([ROOT / "ontology/copkg.ttl", ROOT / "ontology/vocabularies.ttl"])
    for name in ("link-in-the-cited-bundle", "earlier-reporter"):
        path = ROOT / f"tests/shapes/invalid/CrossStudyReporterShape-{name}.ttl"
        report = validate(Graph().parse(path), shapes, ontology)
        assert "copsh:CrossStudyReporterShape" in report.shapes(), name
    valid = Graph().parse(ROOT / "tests/shapes/valid/cross-study-link.ttl")
    assert validate(valid, shapes, ontology).conforms


def test_links_can_be_kept_by_kind(store: OxigraphStore) -> None:
    disputes = links(run(store, "cross-study-links", __relationType_iri=CITO.disputes))
    assert set(disputes) == {
        J04["links-working-groups-dispute-transformation"],
        J04["links-resurgence-disputes-life-cycle"],
    }
    assert {r["objectStudy"] for r in disputes.values()} == {WMS.study}
    everything = links(run(store, "cross-study-links"))
    assert set(disputes) < set(everything)
    kinds = {r["relationType"] for r in everything.values()}
    assert {
        CITO.qualifies,
        CITO.agreesWith,
        CITO.confirms,
        CITO.supports,
        CITO.extends,
        CITO.disputes,
    } <= kinds


def test_josserand_findings_that_answer_wenger_and_snyder(store: OxigraphStore) -> None:
    if not has_j04(store, J04["conclusion-caution"]):
        pytest.fail("the Josserand bundle's conclusion (conclusion.ttl) is missing")
    rows = run(store, "cross-study-links", __study_iri=WS.study)
    found = links(rows)
    agree = found[J04["links-caution-agrees-hard-to-build"]]
    assert agree["relationType"] == CITO.agreesWith
    assert agree["subjectStudy"] == J04.study and agree["objectStudy"] == WS.study
    assert agree["subjectFinding"] == J04["conclusion-caution"]
    assert {int(r["page"]) for r in rows if r["relation"] == agree["relation"]} == {310, 335}
    from_josserand = {r["subjectStudy"] for r in found.values()}
    assert from_josserand == {J04.study, INS.study}


def test_claims_map_to_those_the_josserand_bundle_reports(
    store: OxigraphStore, mine: Graph
) -> None:
    """Where the Josserand bundle encodes the same cited claim, the SKOS mapping points to a
    cited-voice finding of that bundle about the same work."""
    mappings = [
        (finding, target)
        for prop in (SKOS.exactMatch, SKOS.broadMatch)
        for finding, target in mine.subject_objects(prop)
        if (finding, RDF.type, COPKG.Finding) in mine
    ]
    assert len(mappings) >= 14
    works = """PREFIX copkg: <https://w3id.org/copkg/ontology#>
        SELECT ?work WHERE { ?f copkg:voice copkg:CitedVoice ; copkg:citedWork ?work }"""
    for finding, target in mappings:
        if not has_j04(store, target):
            pytest.fail(f"{target} of the Josserand bundle is missing")
        cited = {r["work"] for r in store.query(works, bindings={"f": target}).rows}
        assert mine.value(finding, COPKG.citedWork) in cited, (finding, target)


def namespaces_used(graph: Graph) -> Iterator[str]:
    for s, _, o in graph:
        for term in (s, o):
            if isinstance(term, URIRef) and str(term).startswith("https://w3id.org/copkg/id/"):
                yield str(term).split("/")[5]


def test_bundles_keep_to_their_own_namespaces() -> None:
    for name in MINE:
        used = set(namespaces_used(bundle(name)))
        assert used <= {name, "josserand2004", "wenger-snyder2000"}, (name, used)
        strangers = {
            s
            for s in bundle(name).subjects()
            if isinstance(s, URIRef) and not str(s).startswith(str(study_base(name)))
        }
        assert not strangers, (name, strangers)


# -- a study's own terms and readings stay its own ---------------------------------------------

LOCAL_STUDY = """
PREFIX copkg: <https://w3id.org/copkg/ontology#>
PREFIX j04: <https://w3id.org/copkg/id/josserand2004/>
PREFIX loc: <https://w3id.org/copkg/id/local-role-test/>
PREFIX rdfs: <http://www.w3.org/2000/01/rdf-schema#>
loc:study a copkg:Study ; rdfs:label "A study with a local role"@en .
loc:legitimation a copkg:ManagementRole ; rdfs:label "Legitimation"@en ;
  copkg:hasContingency j04:institutionalization ; copkg:hasRisk loc:co-optation ;
  copkg:reportedIn loc:study .
loc:co-optation a copkg:Risk ; rdfs:label "Co-optation"@en ; copkg:reportedIn loc:study .
loc:legitimation-clan a copkg:RiskModeAttribution ;
  rdfs:label "our reading: legitimation is risky under clan"@en ;
  copkg:concernsRole loc:legitimation ; copkg:attributedMode copkg:Clan ;
  copkg:tiedToMode true ; copkg:attributionGround copkg:DrawnByContrast ;
  copkg:voice copkg:CuratorVoice ; copkg:reportedIn loc:study .
"""


def test_a_local_role_and_a_curators_reading_never_reach_josserands_answers() -> None:
    """A new bundle defines a role on one of Josserand's factors and reads it as risky under
    clan. The rules join its role with Josserand's Gas assessment (institutionalization low
    after 2001), but that derivation rests on both studies: no "Josserand (2004) | Legitimation
    | risky in context" cell, and the clan answer is the new study's, as a curators' reading."""
    built = OxigraphStore()
    for path in sorted((ROOT / "ontology").glob("*.ttl")):
        if path.name != "shapes.ttl":
            built.native.extend(read_quads(path, str(ONTOLOGY_GRAPH)))
    for folder in sorted(p for p in STUDIES.iterdir() if p.is_dir()):
        for path in sorted(folder.glob("*.ttl")):
            built.native.extend(read_quads(path, study_graph(folder.name)))
    built.add_graph(
        study_graph("local-role-test"), Graph().parse(data=LOCAL_STUDY, format="turtle")
    )
    materialise(built, ROOT / "rules")
    local = study_base("local-role-test")
    gas_late = J04["context-gas-2001-2004"]
    assert (gas_late, COPKG.riskyRole, local.legitimation) in built.graph()  # the join is made

    cells = {(r["study"], r["role"]): str(r["cell"]) for r in run(built, "role-study-comparison")}
    assert cells.get((J04.study, local.legitimation)) in (None, "not reported")
    assert cells[(J04.study, J04.stimulation)] == "risky in context"

    from copkg.querying.named_queries import load_named_queries, run_page

    def run_named(store, query, params):  # noqa: ANN001, ANN202
        return run_page(store, query, params, whole=True)[0]

    risky = load_named_queries(ROOT / "queries")["risky-roles"]
    clan = run_named(built, risky, {"controlMode": "copkg:Clan"}).rows
    assert {(r["role"], str(r["voice"]), r["study"]) for r in clan} == {
        (local.legitimation, "derived-from-curator", local.study)
    }
    assert not run_named(built, risky, {"controlMode": "copkg:Clan", "voice": "author"}).rows
    josserand = run_named(built, risky, {"controlMode": "copkg:InputControl", "study": "j04:study"})
    assert {r["role"] for r in josserand.rows} == {J04.facilitation}
