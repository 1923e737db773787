"""The contingency advisor: answers come from the rules applied to a hypothetical context."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from markupsafe import escape
from rdflib import Literal, URIRef
from rdflib.namespace import RDF, RDFS
from test_web_pages import J04, make_web_project

from copkg.config import Settings
from copkg.errors import CopkgError
from copkg.namespaces import COPKG
from copkg.pipeline.advice_runs import open_source
from copkg.pipeline.build import STORE_DIR, Manifest
from copkg.reasoning.advice.answer import advise
from copkg.reasoning.advice.context import parse_context
from copkg.reasoning.advice.findings import YOUR_INPUT
from copkg.reasoning.advice.scope import build_memo
from copkg.reasoning.advice.studied import studied
from copkg.store.embedded import OxigraphStore

ROLES = ("stimulation", "facilitation", "support", "control", "recognition")
#: Comp as the paper describes it (p. 331-335): communities institutionalised as centres, but
#: input control in most teams, resources held centrally, productivity and short-term results.
COMP_LIKE = {
    "institutionalization": "High",
    "decentralization": "Low",
    "resource-decentralization": "Low",
    "productivity-orientation": "High",
    "short-termism": "High",
}
#: Electrical: every factor at its favourable level.
ELECTRICAL_LIKE = {
    "institutionalization": "High",
    "decentralization": "High",
    "resource-decentralization": "High",
    "productivity-orientation": "Low",
    "short-termism": "Low",
}


@pytest.fixture(scope="module")
def advisor_settings(tmp_path_factory: pytest.TempPathFactory, run_folder: Path) -> Settings:
    return make_web_project(tmp_path_factory.mktemp("advisor") / "project", run_folder)


@pytest.fixture(scope="module")
def app(advisor_settings: Settings) -> Iterator[Flask]:
    from copkg.web.app import create_app

    application = create_app({"SETTINGS": advisor_settings, "TESTING": True, "QUERY_WORKERS": 1})
    yield application
    application.extensions["copkg"].close()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def scratch(app: Flask) -> OxigraphStore:
    """A writable copy of the built store, to add facts to."""
    copy = OxigraphStore()
    copy.native.extend(app.extensions["copkg"].store.native.quads_for_pattern(None, None, None))
    return copy


def risky_names(answer: dict) -> set[str]:
    return {r["role"]["iri"].removeprefix(J04) for r in answer["roles"] if r["risky"]}


def test_comp_like_context(client: FlaskClient) -> None:
    response = client.get("/api/advice", query_string=COMP_LIKE)
    assert response.status_code == 200, response.get_data(as_text=True)
    answer = response.get_json()
    assert {r["role"]["iri"].removeprefix(J04) for r in answer["roles"]} == set(ROLES)
    assert risky_names(answer) == {"facilitation", "support", "control", "recognition"}
    assert [c["iri"] for c in answer["favourability"]] == [str(COPKG.UnfavourableContext)]
    for role in answer["roles"]:
        for finding in role["findings"]:
            assert finding["rule"]["label"] and finding["rule"]["iri"]
            assert finding["risk"]["iri"] == role["risk"]["iri"]
            assert finding["throughFactor"]["iri"] == role["contingency"]["iri"]
            used = {f["iri"] for f in finding["facts"]}
            assert role["role"]["iri"] in used  # the rule used the role's own definition
            assert any(f["hypothetical"] for f in finding["facts"])  # and what the user said


def test_evidence_has_pages_and_studies(client: FlaskClient) -> None:
    answer = client.get("/api/advice", query_string=COMP_LIKE).get_json()
    quotes = [e for role in answer["roles"] for e in role["evidence"]] + [
        e for rec in answer["recommendations"] for e in rec["evidence"]
    ]
    assert quotes
    for quote in quotes:
        assert isinstance(quote["page"], int) and 307 <= quote["page"] <= 339
        assert quote["study"].startswith("https://w3id.org/copkg/id/") and quote["studyLabel"]
        assert quote["text"]


def test_recommendations_for_an_unfavourable_context(client: FlaskClient) -> None:
    answer = client.get("/api/advice", query_string=COMP_LIKE).get_json()
    recommendations = answer["recommendations"]
    assert recommendations
    for rec in recommendations:
        assert str(COPKG.UnfavourableContext) in {c["iri"] for c in rec["applicableWhen"]}
        assert rec["advice"]
    assert any(rec["mitigation"] for rec in recommendations)


def test_electrical_like_context_has_no_risky_role(client: FlaskClient) -> None:
    answer = client.get("/api/advice", query_string=ELECTRICAL_LIKE).get_json()
    assert risky_names(answer) == set()
    assert [c["iri"] for c in answer["favourability"]] == [str(COPKG.FavourableContext)]
    for rec in answer["recommendations"]:
        assert str(COPKG.FavourableContext) in {c["iri"] for c in rec["applicableWhen"]}


def test_post_json_gives_the_same_answer(client: FlaskClient) -> None:
    by_get = client.get("/api/advice", query_string=COMP_LIKE).get_json()
    by_post = client.post("/api/advice", json={"levels": COMP_LIKE}).get_json()
    assert risky_names(by_post) == risky_names(by_get)
    as_list = client.post(
        "/api/advice", json={"levels": [{"factor": f, "level": v} for f, v in COMP_LIKE.items()]}
    ).get_json()
    assert risky_names(as_list) == risky_names(by_get)


def test_names_iris_and_curies_are_accepted(client: FlaskClient) -> None:
    answer = client.get(
        "/api/advice",
        query_string={
            "level": [f"{J04}decentralization@copkg:Low", "j04:short-termism@high"],
        },
    ).get_json()
    assert {"facilitation", "recognition"} <= risky_names(answer)


def test_control_modes_select_studied_contexts(client: FlaskClient) -> None:
    answer = client.get(
        "/api/advice", query_string={"mode": ["OutputControl", "InputControl@InMostTeams"]}
    ).get_json()
    matched = {m["case"]["iri"] for m in answer["matchedContexts"]}
    assert matched == {J04 + "case-comp"}
    for context in answer["matchedContexts"]:
        assert context["attributions"]
    # what the rules derived for Comp's contexts is the answer
    assert risky_names(answer)
    for role in answer["roles"]:
        for finding in role["findings"]:
            assert not finding["hypothetical"]
            assert finding["context"]["iri"] in {
                m["context"]["iri"] for m in answer["matchedContexts"]
            }


def test_a_lesser_degree_matches_more_cases(client: FlaskClient) -> None:
    main = client.get("/api/advice", query_string={"mode": "InputControl@MainMode"}).get_json()
    lesser = client.get(
        "/api/advice", query_string={"mode": "InputControl@LesserDegree"}
    ).get_json()
    main_cases = {m["case"]["iri"] for m in main["matchedContexts"]}
    lesser_cases = {m["case"]["iri"] for m in lesser["matchedContexts"]}
    assert main_cases < lesser_cases


@pytest.mark.parametrize(
    ("query", "which"),
    [
        ({"decentralization": "Lowish"}, "decentralization"),
        ({"weather": "High"}, "weather"),
        ({"mode": "Anarchy"}, "Anarchy"),
        ({"mode": "OutputControl@Always"}, "Always"),
        ({"level": "decentralization"}, "level"),
        ({}, "mode"),
    ],
)
def test_bad_context_is_400_saying_which(client: FlaskClient, query: dict, which: str) -> None:
    response = client.get("/api/advice", query_string=query)
    assert response.status_code == 400
    body = response.get_json()
    assert body["ok"] is False and body["status"] == 400
    assert which in body["error"] + " ".join(str(e) for e in body["errors"])


def test_bad_post_body_is_400(client: FlaskClient) -> None:
    assert (
        client.post("/api/advice", data="nope", content_type="application/json").status_code == 400
    )
    assert client.post("/api/advice", json=["x"]).status_code == 400
    assert client.post("/api/advice", json={"levels": {"decentralization": 3}}).status_code == 400


def test_advisor_page(client: FlaskClient) -> None:
    form = client.get("/advisor")
    assert form.status_code == 200
    html = form.get_data(as_text=True)
    assert 'name="decentralization"' in html and 'name="mode"' in html
    result = client.get("/advisor", query_string=COMP_LIKE).get_data(as_text=True)
    assert "Why Facilitation is risky" in result
    assert "Not risky here:" in result and ">Stimulation</a>" in result.split("Not risky here:")[1]
    assert "p. 3" in result  # evidence pages
    # the advice first, then the roles at risk, then the context and its form
    order = [
        result.index(s)
        for s in (
            'id="advice-heading"',
            'id="roles-heading"',
            'id="context-heading"',
            '<form method="get"',
        )
    ]
    assert order == sorted(order)
    advice = result[order[0] : order[1]]
    assert "independent sponsoring structure" in advice  # Josserand 2004: 335
    assert "<blockquote" in advice and "p. 335" in advice


def test_advisor_shows_each_quote_once(client: FlaskClient) -> None:
    """A quote several findings rest on is shown once; its later uses link to it."""
    html = client.get("/advisor", query_string=COMP_LIKE).get_data(as_text=True)
    ids = re.findall(r'<blockquote class="quote" id="(q-[^"]+)"', html)
    assert ids and len(ids) == len(set(ids))
    texts = re.findall(r'<blockquote class="quote"[^>]*><p>(.*?)</p>', html)
    assert len(texts) == len(set(texts))
    refs = re.findall(r'class="quote-ref">[^<]*<a href="#(q-[^"]+)"', html)
    assert refs, "no quote is used twice: the page would not test the folding"
    assert set(refs) <= set(ids)
    assert html.count('<details class="why"') == len(
        client.get("/api/advice", query_string=COMP_LIKE).get_json()["riskyRoles"]
    )


def test_advisor_options_carry_their_definitions(app: Flask, client: FlaskClient) -> None:
    """Every mode, degree, factor and level of the form is explained by its skos:definition."""
    from copkg.web import get_store

    with app.app_context():
        rows = get_store().query(DEFINITIONS).rows
    definitions = {str(row["term"]): str(row["definition"]) for row in rows}
    assert len(definitions) >= 12
    html = client.get("/advisor").get_data(as_text=True)
    for term, definition in definitions.items():
        assert escape(definition) in html, term
    assert 'aria-describedby="help-InputControl"' in html


DEFINITIONS = """
PREFIX copkg: <https://w3id.org/copkg/ontology#>
PREFIX skos: <http://www.w3.org/2004/02/skos/core#>
SELECT ?term ?definition WHERE {
  VALUES ?kind { copkg:ControlMode copkg:Degree copkg:Level copkg:ContingencyFactor }
  ?term a ?kind ; skos:definition ?definition .
}"""


def test_roles_say_whether_input_or_matched_context(client: FlaskClient) -> None:
    """Input control in most teams and high short-termism: Control is risky because of Comp's
    matched contexts (named), Recognition also because of the user's own input (the issue's
    example); each derivation carries the voice of its explanation."""
    query = {"mode": "InputControl@InMostTeams", "short-termism": "High"}
    body = client.get("/api/advice", query_string=query).get_json()
    roles = {r["role"]["iri"].removeprefix(J04): r for r in body["roles"]}
    matched = {m["context"]["label"] for m in body["matchedContexts"]}
    assert matched
    control = roles["control"]
    assert control["risky"] and "your input" not in control["because"]
    assert control["because"] == [
        f"matched context {label}"
        for label in sorted({r["context"]["label"] for r in control["reasons"]})
    ]
    assert {r["context"]["label"] for r in control["reasons"]} <= matched
    assert "your input" in roles["recognition"]["because"]
    assert roles["stimulation"]["because"] == []
    voices = {f["voice"]["iri"] for r in body["roles"] for f in r["findings"]}
    assert voices and voices <= {
        COPKG + v
        for v in (
            "AuthorVoice",
            "InformantVoice",
            "CitedVoice",
            "CuratorVoice",
            "DerivedFromCuratorReading",
        )
    } | {str(YOUR_INPUT.iri)}
    for f in (f for r in body["roles"] for f in r["findings"]):
        assert f["because"] == (
            "your input" if f["hypothetical"] else f"matched context {f['context']['label']}"
        )
    for rec in body["recommendations"]:
        assert rec["voice"]["iri"].startswith(COPKG)
        assert len(rec["because"]) == len(rec["appliesTo"]) >= 1
    html = client.get("/advisor", query_string=query).get_data(as_text=True)
    row = html[html.index('id="role-control"') :]
    row = row[: row.index("</li>")]
    assert "matched context <a" in row and "your input" not in row
    assert 'class="badge voice"' in row


@pytest.mark.parametrize(
    ("query", "location"),
    [
        (
            "mode=&mode=InputControl@InMostTeams&decentralization=&short-termism=High",
            "/advisor?mode=InputControl@InMostTeams&short-termism=High",
        ),
        ("mode=&mode=&decentralization=", "/advisor"),
    ],
)
def test_empty_fields_redirect_to_the_shareable_url(
    client: FlaskClient, query: str, location: str
) -> None:
    response = client.get(f"/advisor?{query}")
    assert response.status_code == 303
    assert response.headers["Location"] == location
    assert client.get(location).status_code == 200


def test_a_new_fact_changes_the_answer(
    app: Flask, scratch: OxigraphStore, advisor_settings: Settings
) -> None:
    rules = advisor_settings.rules_dir
    context = parse_context(scratch, ["Market"], {})
    before = advise(scratch, context, rules=rules)
    assert before.matched_contexts
    calm = [r for r in before.roles if not r.risky]
    assert calm, "every role is already risky under the market mode"
    role = calm[0]
    target = before.matched_contexts[0].context.iri
    enactment = URIRef("https://w3id.org/copkg/id/added/enactment")
    quote = URIRef("https://w3id.org/copkg/id/added/quote")
    scratch.add_graph(
        "https://w3id.org/copkg/graph/study/added",
        [
            (enactment, RDF.type, COPKG.RoleEnactment),
            (enactment, RDFS.label, Literal("a later study sees the risk realised", lang="en")),
            (enactment, COPKG.enactedRole, role.role.iri),
            (enactment, COPKG.inContext, target),
            (enactment, COPKG.riskRealised, Literal(True)),
            (enactment, COPKG.hasEvidence, quote),
            (quote, RDF.type, COPKG.Quote),
            (quote, COPKG.quoteText, Literal("It went wrong.")),
            (quote, COPKG.page, Literal(12)),
        ],
    )
    after = advise(scratch, context, rules=rules)
    changed = next(r for r in after.roles if r.role.iri == role.role.iri)
    assert changed.risky
    facts = {f.iri for finding in changed.findings for f in finding.facts}
    assert enactment in facts
    evidence = [e for finding in changed.findings for f in finding.facts for e in f.evidence]
    assert any(e.text == "It went wrong." and e.page == 12 for e in evidence)


def test_a_changed_favourable_level_changes_the_answer(
    scratch: OxigraphStore, advisor_settings: Settings
) -> None:
    rules = advisor_settings.rules_dir
    context = parse_context(scratch, [], {"institutionalization": "Low"})
    assert "stimulation" in {
        str(r.role.iri).removeprefix(J04) for r in advise(scratch, context, rules=rules).risky_roles
    }
    factor = J04 + "institutionalization"
    scratch.update(
        "DELETE { GRAPH ?g { ?f copkg:favourableLevel ?l } } "
        "INSERT { GRAPH ?g { ?f copkg:favourableLevel copkg:Low } } "
        f"WHERE {{ GRAPH ?g {{ ?f copkg:favourableLevel ?l }} FILTER (?f = <{factor}>) }}"
    )
    after = advise(scratch, context, rules=rules)
    assert "stimulation" not in {str(r.role.iri).removeprefix(J04) for r in after.risky_roles}


def test_parse_context_refuses_nothing(scratch: OxigraphStore) -> None:
    with pytest.raises(CopkgError) as caught:
        parse_context(scratch, [], {})
    assert caught.value.status == 400


# -- limits and the answer cache (issue 11) -------------------------------------------------------


def test_json_nested_5000_deep_is_400(client: FlaskClient) -> None:
    deep = "[" * 5000 + "]" * 5000
    response = client.post("/api/advice", data=deep, content_type="application/json")
    assert response.status_code == 400
    assert response.get_json()["ok"] is False


def test_get_and_post_of_one_context_share_one_answer(advisor_settings: Settings) -> None:
    """POSTs were never cached: each ran every rule over the whole store again."""
    from copkg.web.app import create_app

    application = create_app({"SETTINGS": advisor_settings, "TESTING": True, "QUERY_WORKERS": 1})
    try:
        client = application.test_client()
        by_get = client.get("/api/advice", query_string=COMP_LIKE)
        shuffled = dict(reversed(list(COMP_LIKE.items())))
        by_post = [client.post("/api/advice", json={"levels": shuffled}) for _ in range(3)]
        assert by_get.status_code == 200
        assert all(r.get_data() == by_get.get_data() for r in by_post)
        assert client.get("/advisor", query_string=COMP_LIKE).status_code == 200
        runs = application.extensions["copkg"].current.advice
        assert runs.runs == 1
        client.post("/api/advice", json={"levels": ELECTRICAL_LIKE})
        assert runs.runs == 2
    finally:
        application.extensions["copkg"].close()


def test_the_web_process_reads_nothing_of_its_store_for_advice(
    advisor_settings: Settings,
) -> None:
    """The vocabulary a context is checked against is a page read of the query workers (a
    build's once), the advice the advisor's process's: the web process's store is not read."""
    from copkg.web.app import create_app

    application = create_app({"SETTINGS": advisor_settings, "TESTING": True, "QUERY_WORKERS": 1})

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("the web process read its store")

    try:
        store = application.extensions["copkg"].store
        with pytest.MonkeyPatch.context() as patch:
            for read in ("query", "query_serialized", "quad_count"):
                patch.setattr(store, read, refuse)
            client = application.test_client()
            form = client.get("/advisor")
            assert form.status_code == 200 and b"Decentralization" in form.data
            answer = client.get("/api/advice", query_string=COMP_LIKE)
            assert answer.status_code == 200 and answer.get_json()["ok"] is True
            bad = client.post("/api/advice", json={"levels": {"decentralization": "Huge"}})
            assert bad.status_code == 400
    finally:
        application.extensions["copkg"].close()


def test_the_advisors_process_stays_warm_for_the_next_context(advisor_settings: Settings) -> None:
    """Each advice started a Python process of its own (about 0.5 s of CPU before any rule
    ran). The process now opens the store once and answers context after context; it goes
    with the build (its Services) and is reaped."""
    from copkg.web.app import create_app

    application = create_app({"SETTINGS": advisor_settings, "TESTING": True, "QUERY_WORKERS": 1})
    try:
        client = application.test_client()
        pids = []
        for levels in (COMP_LIKE, ELECTRICAL_LIKE):
            assert client.post("/api/advice", json={"levels": levels}).status_code == 200
            runs = application.extensions["copkg"].current.advice
            assert len(runs._idle) == 1
            pids.append(runs._idle[0].process._process.pid)
        assert runs.runs == 2
        assert pids[0] == pids[1]
    finally:
        application.extensions["copkg"].close()
    assert not Path(f"/proc/{pids[0]}").exists()  # stopped and reaped with the build


def test_on_memory_a_change_gives_the_advisor_a_new_process(app: Flask) -> None:
    """`memory:` is read through snapshots: the warm process holds the one it opened, and a
    change to the store makes the next run open the new state in a new process (the old one
    stopped, its snapshot released), so no advice is given from an outdated store."""
    from copkg.pipeline.advice_runs import AdviceRuns
    from copkg.reasoning.advice.context import Vocabulary
    from copkg.store.temporary import TemporaryStore

    store = TemporaryStore()
    store.native.extend(app.extensions["copkg"].store.native.quads_for_pattern(None, None, None))
    store.update("INSERT DATA { <urn:copkg:test:a> <urn:copkg:test:b> <urn:copkg:test:c> }")
    rules = app.extensions["copkg"].settings.rules_dir
    context = parse_context(store, [], COMP_LIKE, vocabulary=Vocabulary.read(store))
    runs = AdviceRuns(None, 60.0)
    try:
        first = runs.answer(store, context, rules)
        (warm,) = runs._idle
        store.update("INSERT DATA { <urn:copkg:test:a> <urn:copkg:test:b> <urn:copkg:test:d> }")
        second = runs.answer(store, context, rules)  # (no answer is kept for memory:)
        (renewed,) = runs._idle
        assert runs.runs == 2 and first.as_json() == second.as_json()
        assert renewed.key != warm.key and not warm.process.alive
    finally:
        runs.close()
        store.close()
    assert not renewed.process.alive


#: A rule that joins every triple with every other twice over (10^12 rows and more) and keeps
#: none: it would derive risk assessments, which the answer reads, so the advice runs it with
#: the others, for hours if nothing stops it.
RUNAWAY_RULE = """\
#+ label: Runaway (a test)
#+ description: Joins every triple with every other twice over and keeps none.
PREFIX copkg: <https://w3id.org/copkg/ontology#>
CONSTRUCT { ?context copkg:riskyRole ?role .
            ?a a copkg:RiskAssessment ; copkg:inContext ?context ; copkg:assessedRole ?role }
WHERE {
  ?assessment a copkg:ContingencyAssessment ; copkg:assessedContext ?context .
  ?role a copkg:ManagementRole .
  ?a ?b ?c . ?d ?e ?f . ?g ?h ?i FILTER (STRLEN(CONCAT(STR(?c), STR(?f), STR(?i))) < 0)
}
"""


def test_advice_past_the_time_limit_is_stopped(advisor_settings: Settings, slack: float) -> None:
    """The advice ran in a thread that nothing could stop: past the limit the client got its
    503 while the rules went on (and filled the cache). Now its process is killed at the
    limit: the CPU is free again, and the advisor answers the next context."""
    import multiprocessing
    import threading
    import time

    from copkg.web.app import create_app

    limit = 4.0  # a new process primes the advisor within it, on a busy machine too
    rule = advisor_settings.rules_dir / "zz-runaway.rq"
    application = create_app({"SETTINGS": advisor_settings, "TESTING": True,
                              "QUERY_WORKERS": 1, "QUERY_TIMEOUT": limit})  # fmt: skip
    children: set[int] = set()
    asked = threading.Event()
    before = {p.pid for p in multiprocessing.active_children()}  # other apps' warm processes

    def watch() -> None:  # the advisor's process, while it runs
        while not asked.is_set():
            children.update(p.pid for p in multiprocessing.active_children() if p.pid)
            time.sleep(0.05)
        children.difference_update(before)

    watcher = threading.Thread(target=watch, daemon=True)
    try:
        rule.write_text(RUNAWAY_RULE, encoding="utf-8")
        client = application.test_client()
        watcher.start()
        started = time.monotonic()
        response = client.post("/api/advice", json={"levels": COMP_LIKE})
        elapsed = time.monotonic() - started
        asked.set()
        watcher.join()
        assert response.status_code == 503, response.get_data(as_text=True)
        assert response.headers["Retry-After"] == "4"
        error = response.get_json()["error"]
        assert "limit of 4 s" in error and "stopped" in error
        assert limit <= elapsed < limit + slack + 10  # (+ starting the process: Python, imports)
        assert children, "the advice did not run in a process of its own"
        assert not {p.pid for p in multiprocessing.active_children()} - before
        for pid in children:  # killed and reaped: its CPU is free again
            assert not Path(f"/proc/{pid}").exists(), pid
        rule.unlink()
        again = client.post("/api/advice", json={"levels": ELECTRICAL_LIKE})
        assert again.status_code == 200, again.get_data(as_text=True)
    finally:
        asked.set()
        rule.unlink(missing_ok=True)
        application.extensions["copkg"].close()


def test_advice_on_a_store_handed_in_runs_in_a_thread(
    advisor_settings: Settings, scratch: OxigraphStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A store handed in as an object (a library caller's) is out of reach of another
    process: its advice runs in a thread, answered 503 at the limit, and cannot be stopped."""
    import threading

    from copkg.pipeline import advice_runs
    from copkg.web.app import create_app

    release = threading.Event()

    def slow(*args: object, **kwargs: object):  # noqa: ANN202 - an Advice
        release.wait(30)
        return advise(*args, **kwargs)

    monkeypatch.setattr(advice_runs, "advise", slow)
    application = create_app({"STORE": scratch, "ROOT": advisor_settings.root, "TESTING": True,
                              "QUERY_WORKERS": 1, "QUERY_TIMEOUT": 0.5})  # fmt: skip
    try:
        client = application.test_client()
        response = client.post("/api/advice", json={"levels": COMP_LIKE})
        assert response.status_code == 503
        assert response.headers["Retry-After"] == "1"
        assert "limit of 0.5 s" in response.get_json()["error"]
        release.set()
        for _ in range(100):  # the run ends: asking again gets the answer
            again = client.post("/api/advice", json={"levels": COMP_LIKE})
            if again.status_code == 200:
                break
        assert again.status_code == 200
    finally:
        release.set()
        application.extensions["copkg"].close()


def test_answers_are_kept_for_one_build_only(
    advisor_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The advisor kept its answers for the app's life: after a new build was swapped in, a
    context asked before got the old build's answer. Now they are kept for one build."""
    from copkg.web import advisor
    from copkg.web.app import create_app

    application = create_app({"SETTINGS": advisor_settings, "TESTING": True, "QUERY_WORKERS": 1})
    try:
        client = application.test_client()
        assert client.get("/api/advice", query_string=COMP_LIKE).status_code == 200
        first = application.extensions["copkg"].current.advice
        assert client.get("/api/advice", query_string=COMP_LIKE).status_code == 200
        assert application.extensions["copkg"].current.advice is first and first.runs == 1
        monkeypatch.setattr(advisor, "store_identity", lambda store: "another build")
        # (a POST: the response cache of the web layer would answer a GET asked before)
        assert client.post("/api/advice", json={"levels": COMP_LIKE}).status_code == 200
        second = application.extensions["copkg"].current.advice
        assert second is not first and second.identity == "another build"
        assert second.runs == 1  # worked out again, for that build
    finally:
        application.extensions["copkg"].close()


def test_the_advisors_process_refuses_a_build_swapped_in(advisor_settings: Settings) -> None:
    """The advisor's process opens the build's folder itself: if another build took its place
    since the request began, it says so rather than answer from the other build."""
    from copkg.pipeline.advice_runs import open_source
    from copkg.pipeline.build import STORE_DIR

    source = ("folder", str(advisor_settings.build_dir / STORE_DIR), {}, "an older build's")
    with pytest.raises(CopkgError, match="new build was swapped in") as error:
        open_source(source)
    assert error.value.status == 503


def test_the_advisors_process_keeps_what_it_reads_per_build(advisor_settings: Settings) -> None:
    """The store the advisor's process opens is known as the build it checked: its lookups,
    descriptions and index of studied contexts are kept for the next context (they were read
    anew for every answer)."""
    identity = Manifest.read(advisor_settings.build_dir).identity
    store = open_source(("folder", str(advisor_settings.build_dir / STORE_DIR), {}, identity))
    assert store.build_identity == identity
    assert studied(store) is studied(store)
    assert build_memo(store, "rows") is not None


def test_what_rests_on_your_input_is_in_your_voice(client: FlaskClient) -> None:
    """The user's levels are neither the author's claim nor a curators' reading: a derivation
    about the user's context whose only weak premise is what they said is in the voice "your
    input"; one about a studied context keeps the voice the rules gave it."""
    query = {"mode": "InputControl@InMostTeams", **COMP_LIKE}
    body = client.get("/api/advice", query_string=query).get_json()
    yours = [f for r in body["roles"] for f in r["findings"] if f["hypothetical"]]
    studied = [f for r in body["roles"] for f in r["findings"] if not f["hypothetical"]]
    assert yours and studied
    for finding in yours:
        graph_voices = {
            (fact["voice"] or {}).get("iri")
            for fact in finding["facts"]
            if not fact["hypothetical"]
        } - {None}
        assert graph_voices <= {COPKG + "AuthorVoice"}, "a premise of the graph is weak"
        assert finding["voice"] == YOUR_INPUT.as_json()
        for fact in finding["facts"]:
            if fact["hypothetical"]:
                assert fact["voice"] == YOUR_INPUT.as_json()
    assert {f["voice"]["iri"] for f in studied} <= {
        COPKG + "AuthorVoice",
        COPKG + "DerivedFromCuratorReading",
    }
    mine = [
        reason
        for rec in body["recommendations"]
        for reason in rec["reasons"]
        if reason["because"] == "your input"
    ]
    assert mine and all(r["voice"] == YOUR_INPUT.as_json() for r in mine)
    html = client.get("/advisor", query_string=query).get_data(as_text=True)
    assert '<span class="badge voice input">your input</span>' in html
    assert "derived from a curators" not in html[: html.index('id="roles"')].split("your input")[0]


PAGED = {"mode": "InputControl@LesserDegree"}


@pytest.mark.parametrize(
    ("query", "which"),
    [
        ({"page": "0"}, "page"),
        ({"page": "two"}, "page"),
        ({"page": ["1", "2"]}, "page"),
        ({"page_size": "0"}, "page_size"),
        ({"page_size": "51"}, "page_size"),
        ({"page_size": "-1"}, "page_size"),
        ({"page": "99"}, "past the last page"),
    ],
)
def test_paging_parameters_are_400_saying_which(
    client: FlaskClient, query: dict, which: str
) -> None:
    for path in ("/api/advice", "/advisor"):
        response = client.get(path, query_string={**PAGED, **query})
        assert response.status_code == 400, (path, query)
        assert which in response.get_data(as_text=True), (path, query)


@pytest.mark.parametrize(
    ("body", "which"),
    [({"page": 0}, "page"), ({"pageSize": True}, "pageSize"), ({"pageSize": 99}, "pageSize")],
)
def test_paging_fields_of_a_post_are_checked(client: FlaskClient, body: dict, which: str) -> None:
    response = client.post("/api/advice", json={"modes": [PAGED["mode"]], **body})
    assert response.status_code == 400
    answer = response.get_json()
    assert which in answer["error"] + " ".join(str(e) for e in answer["errors"])


def test_pages_link_to_each_other_and_share_the_advice(client: FlaskClient) -> None:
    """page_size=1: one studied context a page, Link rel=next to the next, the total; the
    advice (risky roles, recommendations, counts across all) the same on every page; the pages
    together are the studied contexts of one large page, in its order."""
    whole = client.get("/api/advice", query_string={**PAGED, "page_size": "50"}).get_json()
    total = whole["matched"]["total"]
    assert total >= 2 and len(whole["matchedContexts"]) == total
    seen = []
    url = "/api/advice?" + "mode=InputControl@LesserDegree&page_size=1"
    for number in range(1, total + 1):
        response = client.get(url)
        assert response.status_code == 200
        body = response.get_json()
        assert body["matched"] | {"page": 0, "pageSize": 0, "lastPage": 0, "hasNext": 0} == (
            whole["matched"] | {"page": 0, "pageSize": 0, "lastPage": 0, "hasNext": 0}
        )
        assert (body["matched"]["page"], body["matched"]["lastPage"]) == (number, total)
        assert response.headers["X-Page"] == str(number)
        assert response.headers["X-Last-Page"] == str(total)
        assert body["riskyRoles"] == whole["riskyRoles"]
        assert [r["iri"] for r in body["recommendations"]] == [
            r["iri"] for r in whole["recommendations"]
        ]
        for mine, all_of_them in zip(body["roles"], whole["roles"], strict=True):
            assert mine["inMatchedContexts"] == all_of_them["inMatchedContexts"]
        seen += [m["context"]["iri"] for m in body["matchedContexts"]]
        if number < total:
            assert 'rel="next"' in response.headers["Link"]
            assert body["links"]["next"].endswith(f"page={number + 1}")
            url = body["links"]["next"]
        else:
            assert 'rel="next"' not in response.headers["Link"]
    assert seen == [m["context"]["iri"] for m in whole["matchedContexts"]]


def test_the_advisor_page_shows_a_page_of_studied_contexts(client: FlaskClient) -> None:
    query = {**PAGED, "page_size": "1", "page": "2"}
    body = client.get("/api/advice", query_string=query).get_json()
    html = client.get("/advisor", query_string=query).get_data(as_text=True)
    total = body["matched"]["total"]
    assert f"Studied contexts with these modes of control ({total})" in html
    assert f"Page 2 of {total}" in html
    assert (
        'rel="prev" href="/advisor?mode=InputControl@LesserDegree&amp;page_size=1&amp;page=1'
        in (html)
    )
    (shown,) = body["matchedContexts"]
    studied = html[html.index('id="studied"') :]
    assert str(escape(shown["context"]["label"])) in studied[: studied.index("</ol>")]
    for other in client.get("/api/advice", query_string={**PAGED, "page_size": "50"}).get_json()[
        "matchedContexts"
    ]:
        if other["context"]["iri"] != shown["context"]["iri"]:
            assert f'href="{other["context"]["iri"]}"' not in studied[: studied.index("</ol>")]
