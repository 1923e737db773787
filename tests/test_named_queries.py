"""Named queries: grlc headers parsed (or refused with file:line), parameters bound as terms."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from conftest import EX, G1, ROOT
from rdflib import Literal, URIRef
from rdflib.namespace import RDF, XSD

from copkg.errors import CopkgError
from copkg.namespaces import COPKG
from copkg.querying.named_queries import (
    NamedQuery,
    bind,
    enumerated_values,
    facts_needed,
    load_named_queries,
    parse_named_query,
    parse_variable,
    read_facts,
    run_page,
)
from copkg.querying.named_queries.binding import enumeration_query
from copkg.querying.named_queries.paging import page_keys, plan
from copkg.store import QueryResult
from copkg.store.embedded import OxigraphStore

PEOPLE = f"""#+ summary: People by type
#+ description: >
#+   Everyone of a type, with an optional minimum age.
#+ tags:
#+   - people
#+ defaults:
#+   - type: {EX}Person
#+ enumerate:
#+   - kind:
#+     - adult
#+     - child
PREFIX ex: <{EX}>
SELECT ?who ?age WHERE {{
  ?who a ?_type_iri ; ex:age ?age .
  OPTIONAL {{ ?who ex:kind ?__kind }}
  FILTER (!BOUND(?__minAge_integer) || ?age >= ?__minAge_integer)
}} ORDER BY ?who
"""


def run(
    store: OxigraphStore, query: NamedQuery, raw: dict[str, str], **options: Any
) -> QueryResult:
    """The result of run_page without the page."""
    return run_page(store, query, raw, **options)[0]


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def people(tmp_path: Path) -> NamedQuery:
    return parse_named_query(write(tmp_path, "people.rq", PEOPLE))


@pytest.mark.parametrize(
    "var, expected",
    [
        ("controlMode_iri", ("controlMode", "iri", None, None)),
        ("year_integer", ("year", "literal", str(XSD.integer), None)),
        ("name_en", ("name", "literal", None, "en")),
        ("day_xsd_date", ("day", "literal", str(XSD.date), None)),
        ("topic", ("topic", "literal", None, None)),
    ],
)
def test_variable_names_carry_the_type(var: str, expected: tuple) -> None:
    assert parse_variable(var) == expected


def test_header_and_parameters(people: NamedQuery) -> None:
    assert people.name == "people"
    assert people.summary == "People by type"
    assert people.description == "Everyone of a type, with an optional minimum age."
    assert people.tags == ("people",)
    by_name = {p.name: p for p in people.parameters}
    assert list(by_name) == ["type", "kind", "minAge"]
    assert by_name["type"].required and by_name["type"].kind == "iri"
    assert by_name["type"].default == EX + "Person"
    assert not by_name["kind"].required and by_name["kind"].enum == ("adult", "child")
    assert by_name["minAge"].datatype == str(XSD.integer)


def test_bind_gives_rdf_terms(people: NamedQuery) -> None:
    bound = bind(people, {"type": f"{EX}Person", "minAge": "18", "kind": "adult"})
    assert bound == {
        "_type_iri": URIRef(EX + "Person"),
        "__minAge_integer": Literal("18", datatype=XSD.integer),
        "__kind": Literal("adult"),
    }


def test_defaults_fill_in_and_optional_parameters_stay_unbound(people: NamedQuery) -> None:
    assert bind(people, {}) == {"_type_iri": URIRef(EX + "Person")}


def test_prefixed_names_are_expanded(tmp_path: Path) -> None:
    query = parse_named_query(
        write(tmp_path, "modes.rq", "SELECT ?r WHERE { ?r copkg:riskyUnder ?_controlMode_iri }")
    )
    assert bind(query, {"controlMode": "copkg:InputControl"}) == {
        "_controlMode_iri": COPKG.InputControl
    }


@pytest.mark.parametrize(
    "raw, words",
    [
        ({"type": "Person"}, ["type", "absolute"]),
        ({"type": "javascript:alert(1)"}, ["type", "absolute"]),
        ({"type": "http://example.org/a b"}, ["type"]),
        ({"type": "nope:Person"}, ["type", "prefix"]),
        ({"minAge": "eighteen"}, ["minAge", "whole number"]),
        ({"minAge": "1.5"}, ["minAge"]),
        ({"kind": "robot"}, ["kind", "adult, child"]),
        ({"colour": "red"}, ["colour", "type, kind, minAge"]),
    ],
)
def test_bad_values_are_refused_saying_which_and_why(
    people: NamedQuery, raw: dict, words: list
) -> None:
    with pytest.raises(CopkgError) as error:
        bind(people, raw)
    assert error.value.status == 400
    for word in words:
        assert word in error.value.message


def test_a_missing_required_parameter_is_named(tmp_path: Path) -> None:
    query = parse_named_query(write(tmp_path, "q.rq", "SELECT ?s WHERE { ?s ?p ?_thing_iri }"))
    with pytest.raises(CopkgError) as error:
        bind(query, {})
    assert error.value.status == 400
    assert "thing" in error.value.message and "required" in error.value.message


def test_run_binds_and_answers(small_store: OxigraphStore, people: NamedQuery) -> None:
    result = run(small_store, people, {"minAge": "18"})
    assert result.to_json_rows() == [{"who": EX + "alice", "age": 42}]
    everyone = run(small_store, people, {})
    assert [r["who"] for r in everyone.to_json_rows()] == [EX + "alice", EX + "bob"]


def test_a_hostile_value_is_only_a_value(small_store: OxigraphStore, tmp_path: Path) -> None:
    query = parse_named_query(write(tmp_path, "q.rq", "SELECT ?s WHERE { ?s ?p ?_text }"))
    before = small_store.quad_count()
    result = run(small_store, query, {"text": '" } ; DROP ALL ; #'})
    assert result.rows == [] and small_store.quad_count() == before
    note = 'says "hi" } { ; # and \\ bye'
    assert [str(r["s"]) for r in run(small_store, query, {"text": note}).rows] == [EX + "alice"]


def test_enumerate_from_the_data(small_store: OxigraphStore, tmp_path: Path) -> None:
    text = (
        "#+ enumerate:\n#+   - type\n"
        f"SELECT ?s WHERE {{ GRAPH <{G1}> {{ ?s a ?_type_iri }} }} ORDER BY ?s LIMIT 5\n"
    )
    query = parse_named_query(write(tmp_path, "q.rq", text))
    param = query.parameter("type")
    assert param is not None and param.enum_from_store
    assert "LIMIT" not in enumeration_query(query, param)
    assert enumerated_values(small_store, query, param) == [EX + "Person"]
    assert run(small_store, query, {"type": EX + "Person"}).to_json_rows() == [{"s": EX + "alice"}]
    with pytest.raises(CopkgError, match="not one of"):
        run(small_store, query, {"type": EX + "Robot"})


@pytest.mark.parametrize(
    "text, line, words",
    [
        ("#+ summary: ok\n#+ tags: [a\nSELECT * {}\n", 2, "YAML"),
        ("#+ summary: ok\n#+ sumary: typo\nSELECT * {}\n", 2, "sumary"),
        ("#+ summary: ok\n#+ defaults:\n#+   - nope: 1\nSELECT * { ?s ?p ?_x }\n", 2, "nope"),
        ("#+ enumerate:\n#+   - nope\nSELECT * { ?s ?p ?_x }\n", 1, "nope"),
        ("#+ pagination: many\nSELECT * {}\n", 1, "pagination"),
        ("#+ - a list\nSELECT * {}\n", 1, "mapping"),
        ("#+ summary: ok\nSELECT * WHERE {\n  ?s ?p ?o .\n  ?s nope:p ?o\n}\n", 4, "syntax"),
    ],
)
def test_a_bad_file_is_refused_with_file_and_line(
    tmp_path: Path, text: str, line: int, words: str
) -> None:
    path = write(tmp_path, "bad.rq", text)
    with pytest.raises(CopkgError) as error:
        parse_named_query(path)
    problem = error.value.problems[0]
    assert (problem.file, problem.line) == (str(path), line), problem
    assert words in problem.message


def test_load_reports_every_bad_file(tmp_path: Path) -> None:
    write(tmp_path, "good.rq", PEOPLE)
    write(tmp_path, "bad1.rq", "#+ tags: [a\nSELECT * {}\n")
    write(tmp_path, "bad2.rq", "#+ colour: red\nSELECT * {}\n")
    with pytest.raises(CopkgError) as error:
        load_named_queries(tmp_path)
    assert [Path(p.file).name for p in error.value.problems] == ["bad1.rq", "bad2.rq"]


def test_the_project_queries_parse() -> None:
    queries = load_named_queries(ROOT / "queries")
    if not queries:
        pytest.fail("queries/ has no named query")
    for query in queries.values():
        assert query.summary, f"{query.name} has no summary"
        for param in query.parameters:
            if param.default is not None:
                bind(query, {})


# -- paging ----------------------------------------------------------------------------------

PAGED = f"""#+ summary: notes of studies, two studies a page
#+ pagination: 2
#+ page_over:
#+   study: <{EX}Study>
SELECT ?study ?note WHERE {{ ?note <{EX}of> ?__study_iri . BIND (?__study_iri AS ?study) }}
ORDER BY ?note
"""


@pytest.fixture
def studies() -> OxigraphStore:
    """Five studies (s1..s5) with two notes each, and one study with none (s6)."""
    store = OxigraphStore()
    triples = []
    for i in range(1, 7):
        study = URIRef(f"{EX}s{i}")
        triples.append((study, RDF.type, URIRef(EX + "Study")))
        if i < 6:
            triples += [(URIRef(f"{EX}n{i}{k}"), URIRef(EX + "of"), study) for k in "ab"]
    store.add_graph(G1, triples)
    return store


def test_pages_run_over_the_studies(studies: OxigraphStore, tmp_path: Path) -> None:
    query = parse_named_query(tmp_path / "paged.rq", PAGED)
    assert query.page_over == ("study", EX + "Study")
    first, where = run_page(studies, query, {})
    assert [str(r["note"]) for r in first.rows] == [EX + n for n in ("n1a", "n1b", "n2a", "n2b")]
    assert where is not None and (where.number, where.last) == (1, 3) and where.has_next(4)
    last, where = run_page(studies, query, {}, page=3)
    assert [str(r["note"]) for r in last.rows] == [EX + "n5a", EX + "n5b"]  # s6 has none
    assert where is not None and not where.has_next(len(last.rows))
    with pytest.raises(CopkgError) as error:
        run_page(studies, query, {}, page=4)
    assert error.value.status == 400 and "past the end" in error.value.message
    whole = run(studies, query, {}, whole=True)
    pages = [run(studies, query, {}, page=n).rows for n in (1, 2, 3)]
    assert sorted(str(r["note"]) for p in pages for r in p) == sorted(
        str(r["note"]) for r in whole.rows
    )


def test_a_given_study_is_one_page(studies: OxigraphStore, tmp_path: Path) -> None:
    query = parse_named_query(tmp_path / "paged.rq", PAGED)
    rows, where = run_page(studies, query, {"study": EX + "s4"})
    assert [str(r["note"]) for r in rows.rows] == [EX + "n4a", EX + "n4b"]
    assert where is not None and where.last == 1
    with pytest.raises(CopkgError):
        run_page(studies, query, {"study": EX + "s4"}, page=2)


def test_row_pages_cut_the_solutions(studies: OxigraphStore, tmp_path: Path) -> None:
    text = f"#+ pagination: 3\nSELECT ?note WHERE {{ ?note <{EX}of> ?s }} ORDER BY ?note\n"
    query = parse_named_query(tmp_path / "rows.rq", text)
    assert len(run(studies, query, {}).rows) == 3
    assert [str(r["note"]) for r in run(studies, query, {}, page=4).rows] == [EX + "n5b"]
    with pytest.raises(CopkgError):
        run(studies, query, {}, page=5)


@pytest.mark.parametrize(
    ("header", "needle"),
    [
        (f"#+ page_over:\n#+   study: <{EX}Study>\n", "pagination"),
        (f"#+ pagination: 2\n#+ page_over:\n#+   other: <{EX}Study>\n", "other"),
    ],
)
def test_bad_page_over_is_refused(tmp_path: Path, header: str, needle: str) -> None:
    text = header + "SELECT ?s WHERE { ?s ?p ?__study_iri }\n"
    with pytest.raises(CopkgError) as error:
        parse_named_query(tmp_path / "bad.rq", text)
    assert needle in str(error.value.problems[0])


TAGGED = f"""#+ summary: notes of a kind, two studies a page
#+ pagination: 2
#+ page_over:
#+   study: <{EX}Study>
#+ defaults:
#+   - kind: {EX}Kind
SELECT ?note WHERE {{ ?note <{EX}of> ?__study_iri ; a ?_kind_iri }} ORDER BY ?note
"""


def test_a_page_binds_its_studies_and_the_parameters_in_one_block(
    studies: OxigraphStore, tmp_path: Path
) -> None:
    studies.add_graph(G1, [(URIRef(f"{EX}n{i}a"), RDF.type, URIRef(EX + "Kind")) for i in (1, 3)])
    query = parse_named_query(tmp_path / "tagged.rq", TAGGED)
    bindings = bind(query, {})
    facts = read_facts(studies, facts_needed(query, bindings, whole=False))
    text, where, rest = plan(facts, query, bindings, 2)
    # one block: oxigraph starts a join from the first of several (390 ms against 26)
    assert text.count("VALUES") == 1 and rest == {}
    assert where is not None and where.keys == (EX + "s3", EX + "s4")
    assert [str(r["note"]) for r in run(studies, query, {}, page=1).rows] == [EX + "n1a"]
    assert [str(r["note"]) for r in run(studies, query, {}, page=2).rows] == [EX + "n3a"]
    given = {"study": EX + "s3", "kind": EX + "Kind"}
    assert [str(r["note"]) for r in run(studies, query, given).rows] == [EX + "n3a"]


def test_page_keys_come_in_iri_order(tmp_path: Path) -> None:
    store = OxigraphStore()
    names = ["b", "a10", "a9", "Z", "é"]
    store.add_graph(G1, [(URIRef(EX + n), RDF.type, URIRef(EX + "Study")) for n in names])
    ordered = store.query(f"SELECT ?s WHERE {{ ?s a <{EX}Study> }} ORDER BY ?s").rows
    assert page_keys(store, EX + "Study") == [str(r["s"]) for r in ordered]
