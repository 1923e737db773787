"""The store: union default graph, bindings as terms, standard result formats, refusals."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pyoxigraph as ox
import pytest
from conftest import EX, G1, G2, SMALL_TRIPLES
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from rdflib import BNode, Dataset, Graph, Literal, URIRef
from rdflib.compare import isomorphic
from rdflib.namespace import XSD

from copkg.config import Settings
from copkg.errors import CopkgError
from copkg.pipeline.open import open_store
from copkg.store import Store
from copkg.store.embedded import OxigraphStore
from copkg.store.results import GRAPH_MEDIA_TYPES, SOLUTION_MEDIA_TYPES, QueryResult
from copkg.store.scan import bind_values, remote_calls
from copkg.store.temporary import TemporaryStore
from copkg.store.terms import from_ox, to_ox

NAMES = (
    f"PREFIX ex: <{EX}> SELECT ?name WHERE {{ ?p a ex:Person ; rdfs:label ?name }} ORDER BY ?name"
)


def names(result: QueryResult) -> list[str]:
    return [str(row["name"]) for row in result.rows]


def test_the_embedded_store_is_a_store(small_store: OxigraphStore) -> None:
    assert isinstance(small_store, Store)


def test_default_graph_is_the_union_of_named_graphs(small_store: OxigraphStore) -> None:
    assert names(small_store.query(NAMES)) == ["Alice", "Bob"]


def test_default_graphs_restrict_the_default_graph(small_store: OxigraphStore) -> None:
    assert names(small_store.query(NAMES, default_graphs=[G2])) == ["Bob"]
    assert names(small_store.query(NAMES, default_graphs=[G1, G2])) == ["Alice", "Bob"]


def test_named_graphs_alone_leave_the_default_graph_empty(small_store: OxigraphStore) -> None:
    assert names(small_store.query(NAMES, named_graphs=[G1])) == []
    in_graph = small_store.query(
        "SELECT DISTINCT ?g WHERE { GRAPH ?g { ?s ?p ?o } }", named_graphs=[G1]
    )
    assert [str(r["g"]) for r in in_graph.rows] == [G1]


def test_graphs_and_counts(small_store: OxigraphStore) -> None:
    assert small_store.graphs() == [G1, G2]
    assert small_store.quad_count() == sum(len(t) for t in SMALL_TRIPLES.values())
    assert small_store.quad_count(G2) == len(SMALL_TRIPLES[G2])


HOSTILE = 'x" } ; DROP ALL ; INSERT DATA { <a> <b> "c" } #'


@pytest.mark.parametrize(
    "value",
    [Literal(HOSTILE), Literal(HOSTILE, lang="en"), URIRef(EX + "not-there")],
)
def test_bindings_are_terms_and_never_change_the_query(
    small_store: OxigraphStore, value: URIRef | Literal
) -> None:
    before = small_store.quad_count()
    result = small_store.query("SELECT ?s WHERE { ?s ?p ?_v }", bindings={"_v": value})
    assert result.rows == []
    assert result.variables == ["s"]
    assert small_store.quad_count() == before


def test_a_blank_node_cannot_be_bound(small_store: OxigraphStore) -> None:
    with pytest.raises(CopkgError) as error:
        small_store.query("SELECT ?s WHERE { ?s ?p ?_v }", bindings={"_v": BNode("b")})
    assert error.value.status == 400


def test_a_binding_matches_exactly_the_term(small_store: OxigraphStore) -> None:
    note = SMALL_TRIPLES[G1][4][2]
    result = small_store.query("SELECT ?s WHERE { ?s ?p ?_v }", bindings={"_v": note})
    assert [str(r["s"]) for r in result.rows] == [EX + "alice"]


AGE = "<http://example.org/age>"


@pytest.mark.parametrize(
    "sparql, expected",
    [
        ("SELECT ?s WHERE { ?s ?p ?x FILTER (?x = ?_v) }", [{"s": EX + "alice"}]),
        ("SELECT (COUNT(*) AS ?n) WHERE { ?s ?p ?_v }", [{"n": 1}]),
        ("SELECT ?p (COUNT(*) AS ?n) WHERE { ?s ?p ?_v } GROUP BY ?p", [{"p": EX + "age", "n": 1}]),
        ("SELECT ?s WHERE { { SELECT ?s WHERE { ?s ?p ?_v } } }", [{"s": EX + "alice"}]),
        ("SELECT DISTINCT ?s ?_v WHERE { ?s ?p ?_v }", [{"s": EX + "alice", "_v": 42}]),
        (
            f"SELECT ?s WHERE {{ ?s {AGE} ?a FILTER (!BOUND(?_v) || ?a >= ?_v) }}",
            [{"s": EX + "alice"}],
        ),
        (
            f"SELECT ?s ?y WHERE {{ ?s {AGE} ?a BIND (?_v + 1 AS ?y) }} ORDER BY ?s",
            [{"s": EX + "alice", "y": 43}, {"s": EX + "bob", "y": 43}],
        ),
        (
            f"SELECT ?s WHERE {{ {{ ?s {AGE} ?a FILTER (?a >= ?_v) }} UNION {{ ?s a ?_v }} }}",
            [{"s": EX + "alice"}],
        ),
        (
            f"SELECT ?s WHERE {{ ?s {AGE} ?a VALUES ?a {{ 7 42 }} FILTER (?a = ?_v) }}",
            [{"s": EX + "alice"}],
        ),
        (f"ASK {{ ?s {AGE} ?_v }}", [{"boolean": True}]),
    ],
)
def test_bindings_reach_every_group_of_the_query(
    small_store: OxigraphStore, sparql: str, expected: list[dict]
) -> None:
    value = Literal("42", datatype=XSD.integer)
    result = small_store.query(sparql, bindings={"_v": value})
    assert result.to_json_rows() == expected


def test_bindings_in_construct_and_describe(small_store: OxigraphStore) -> None:
    alice = URIRef(EX + "alice")
    built = small_store.query(
        f"CONSTRUCT {{ ?_who {AGE} ?a }} WHERE {{ ?_who {AGE} ?a }}", bindings={"_who": alice}
    )
    assert [t[0] for t in built.triples] == [alice]
    described = small_store.query("DESCRIBE ?_who", bindings={"_who": alice})
    assert {t[0] for t in described.triples} == {alice, BNode("addr")} or alice in {
        t[0] for t in described.triples
    }
    assert all(t[0] == alice or isinstance(t[0], BNode) for t in described.triples)


def test_bind_values_writes_the_blocks() -> None:
    text = bind_values("SELECT ?s WHERE { ?s ?p ?_v OPTIONAL { ?s ?q ?_v } } # {", {"_v": "1"})
    assert text == (
        "SELECT ?s WHERE { VALUES (?_v) { (1) } ?s ?p ?_v "
        "OPTIONAL { VALUES (?_v) { (1) } ?s ?q ?_v } } # {"
    )


def select_result(store: OxigraphStore) -> QueryResult:
    return store.query(
        f"PREFIX ex: <{EX}> SELECT ?s ?o ?missing "
        "WHERE { ?s ?p ?o OPTIONAL { ?s ex:nope ?missing } }",
        default_graphs=[G1],
    )


def solutions(body: bytes, fmt: ox.QueryResultsFormat) -> set[tuple]:
    parsed = ox.parse_query_results(body, fmt)
    variables = [v.value for v in parsed.variables]
    return {tuple(str(s[v]) if s[v] is not None else None for v in variables) for s in parsed}


def test_select_results_parse_back_in_every_format(small_store: OxigraphStore) -> None:
    result = select_result(small_store)
    expected = {
        tuple(str(to_ox(row[v])) if v in row else None for v in result.variables)
        for row in result.rows
    }
    assert len(expected) == len(SMALL_TRIPLES[G1])
    for media_type, fmt in [
        ("application/sparql-results+json", ox.QueryResultsFormat.JSON),
        ("application/sparql-results+xml", ox.QueryResultsFormat.XML),
        ("text/tab-separated-values", ox.QueryResultsFormat.TSV),
    ]:
        body = result.serialize(media_type)
        got = solutions(body, fmt)
        assert {tuple(_blank(v) for v in row) for row in got} == {
            tuple(_blank(v) for v in row) for row in expected
        }, media_type
    rows = list(csv.reader(io.StringIO(result.serialize("text/csv").decode("utf-8"))))
    assert rows[0] == ["s", "o", "missing"]
    assert len(rows) == 1 + len(SMALL_TRIPLES[G1])
    assert ["http://example.org/alice", 'says "hi" } { ; # and \\ bye', ""] in rows


def _blank(value: str | None) -> str | None:
    return "_:b" if value is not None and value.startswith("_:") else value


def test_json_results_are_the_w3c_shape(small_store: OxigraphStore) -> None:
    doc = json.loads(select_result(small_store).serialize("application/json"))
    assert doc["head"]["vars"] == ["s", "o", "missing"]
    ages = [b["o"] for b in doc["results"]["bindings"] if b["o"].get("datatype")]
    assert ages == [{"type": "literal", "value": "42", "datatype": str(XSD.integer)}]
    labels = [b["o"] for b in doc["results"]["bindings"] if "xml:lang" in b["o"]]
    assert labels == [{"type": "literal", "value": "Alice", "xml:lang": "en"}]


@pytest.mark.parametrize("media_type", list(SOLUTION_MEDIA_TYPES))
def test_ask_results_parse_back(small_store: OxigraphStore, media_type: str) -> None:
    result = small_store.query(f"ASK {{ <{EX}bob> ?p ?o }}")
    assert result.kind == "ask" and result.boolean is True
    body = result.serialize(media_type)
    if media_type == "text/csv":
        assert body.strip() == b"true"
        return
    fmt = {
        "application/sparql-results+json": ox.QueryResultsFormat.JSON,
        "application/sparql-results+xml": ox.QueryResultsFormat.XML,
        "text/tab-separated-values": ox.QueryResultsFormat.TSV,
    }[media_type]
    assert bool(ox.parse_query_results(body, fmt)) is True


RDFLIB_FORMATS = {
    "text/turtle": "turtle",
    "application/n-triples": "nt",
    "application/ld+json": "json-ld",
    "application/rdf+xml": "xml",
    "application/trig": "trig",
    "application/n-quads": "nquads",
}


@pytest.mark.parametrize("media_type", list(GRAPH_MEDIA_TYPES))
def test_graph_results_parse_back(small_store: OxigraphStore, media_type: str) -> None:
    result = small_store.query("CONSTRUCT { ?s ?p ?o } WHERE { ?s ?p ?o }", default_graphs=[G1])
    assert result.kind == "graph"
    expected = Graph()
    for triple in result.triples:
        expected.add(triple)
    body = result.serialize(media_type)
    fmt = RDFLIB_FORMATS[media_type]
    if fmt in ("trig", "nquads"):
        parsed = Dataset()
        parsed.parse(data=body, format=fmt)
        got = Graph()
        for s, p, o, _ in parsed.quads((None, None, None, None)):
            got.add((s, p, o))
    else:
        got = Graph().parse(data=body, format=fmt)
    assert isomorphic(got, expected), media_type
    assert len(got) == len(SMALL_TRIPLES[G1])


def test_turtle_results_use_known_prefixes() -> None:
    store = OxigraphStore()
    store.add_graph(
        G1, [(URIRef("https://w3id.org/copkg/ontology#X"), URIRef(EX + "p"), Literal("1"))]
    )
    body = store.query("CONSTRUCT WHERE { ?s ?p ?o }").serialize("text/turtle").decode()
    assert "@prefix copkg: <https://w3id.org/copkg/ontology#>" in body
    assert "copkg:X" in body
    assert "@prefix foaf:" not in body


def test_a_format_that_does_not_fit_is_406(small_store: OxigraphStore) -> None:
    with pytest.raises(CopkgError) as select_error:
        select_result(small_store).serialize("text/turtle")
    assert select_error.value.status == 406
    with pytest.raises(CopkgError) as graph_error:
        small_store.query("CONSTRUCT WHERE { ?s ?p ?o }").serialize("text/csv")
    assert graph_error.value.status == 406


def test_json_rows_are_plain(small_store: OxigraphStore) -> None:
    result = small_store.query(
        f"SELECT ?age ?label WHERE {{ <{EX}alice> <{EX}age> ?age ; rdfs:label ?label }}"
    )
    assert result.to_json_rows() == [{"age": 42, "label": "Alice"}]


def test_syntax_errors_are_400_with_the_position(small_store: OxigraphStore) -> None:
    with pytest.raises(CopkgError) as error:
        small_store.query("SELECT *\nWHERE { ?s ?p }")
    assert error.value.status == 400
    assert error.value.problems[0].line == 2


@pytest.mark.parametrize(
    "sparql",
    [
        "SELECT * WHERE { SERVICE <http://127.0.0.1:9/sparql> { ?s ?p ?o } }",
        "SELECT * WHERE { SERVICE SILENT <http://127.0.0.1:9/sparql> { ?s ?p ?o } }",
        "SELECT * WHERE { BIND(<http://127.0.0.1:9/> AS ?e) SERVICE ?e { ?s ?p ?o } }",
        "select * where { service <http://127.0.0.1:9/sparql> { ?s ?p ?o } }",
    ],
)
def test_service_to_an_unlisted_endpoint_is_refused(
    small_store: OxigraphStore, sparql: str
) -> None:
    with pytest.raises(CopkgError) as error:
        small_store.query(sparql)
    assert error.value.status == 400


def test_service_inside_a_string_or_comment_is_not_a_call(small_store: OxigraphStore) -> None:
    sparql = 'SELECT * WHERE { ?s ?p "SERVICE <http://x/>" } # SERVICE <http://y/>'
    assert small_store.query(sparql).rows == []
    assert remote_calls(sparql) == []


def test_load_is_refused(small_store: OxigraphStore, tmp_path: Path) -> None:
    secret = tmp_path / "secret.ttl"
    secret.write_text(f"<{EX}s> <{EX}p> <{EX}o> .")
    with pytest.raises(CopkgError) as error:
        small_store.update(f"LOAD <{secret.as_uri()}> INTO GRAPH <{EX}g>")
    assert error.value.status == 400
    assert EX + "g" not in small_store.graphs()


def test_update_and_replace_graph(small_store: OxigraphStore) -> None:
    small_store.update(f"INSERT DATA {{ GRAPH <{G2}> {{ <{EX}carol> a <{EX}Person> }} }}")
    assert small_store.quad_count(G2) == len(SMALL_TRIPLES[G2]) + 1
    small_store.replace_graph(G2, [(URIRef(EX + "dan"), URIRef(EX + "p"), Literal("d"))])
    assert small_store.quad_count(G2) == 1
    assert small_store.quad_count(G1) == len(SMALL_TRIPLES[G1])


def test_load_dataset_keeps_graph_names(tmp_path: Path) -> None:
    path = tmp_path / "data.trig"
    path.write_text(f"<{G1}> {{ <{EX}a> <{EX}p> 1 . }} <{G2}> {{ <{EX}b> <{EX}p> 2 . }}")
    store = OxigraphStore()
    store.load_dataset(path)
    assert store.graphs() == [G1, G2]


def test_read_only_store_refuses_changes(tmp_path: Path) -> None:
    writable = OxigraphStore(tmp_path / "db")
    writable.add_graph(G1, SMALL_TRIPLES[G1])
    writable.flush()
    del writable
    store = OxigraphStore.open_read_only(tmp_path / "db")
    assert store.quad_count() == len(SMALL_TRIPLES[G1])
    with pytest.raises(CopkgError) as error:
        store.update(f"CLEAR GRAPH <{G1}>")
    assert error.value.status == 403


def test_max_rows_truncates_and_says_so() -> None:
    store = OxigraphStore(max_rows=2)
    for graph, triples in SMALL_TRIPLES.items():
        store.add_graph(graph, triples)
    result = store.query("SELECT * WHERE { ?s ?p ?o }")
    assert len(result.rows) == 2 and result.truncated


@pytest.mark.parametrize(
    "term",
    [
        URIRef(EX + "x"),
        Literal("01", datatype=XSD.integer),
        Literal("été", lang="fr"),
        Literal("plain"),
        Literal("2004", datatype=XSD.gYear),
    ],
)
def test_terms_survive_the_round_trip(term: URIRef | Literal) -> None:
    back = from_ox(to_ox(term))
    assert back == term
    assert str(back) == str(term)


def test_open_store_memory_and_path(settings: Settings, tmp_path: Path) -> None:
    memory = open_store(Settings.load(settings.root, store_url="memory:"))
    assert memory.quad_count() == 0
    disk = OxigraphStore(tmp_path / "db")
    disk.add_graph(G1, SMALL_TRIPLES[G1])
    del disk
    opened = open_store(Settings.load(settings.root, store_url=str(tmp_path / "db")))
    assert opened.quad_count() == len(SMALL_TRIPLES[G1])


def test_memory_snapshots_hold_every_change_and_go_when_no_one_reads_them() -> None:
    """`memory:` is read by other processes through snapshots: one taken after each change,
    each removed once released and no longer the newest; the store's folder goes with it."""
    store = TemporaryStore()
    snapshots = store.snapshots
    first = snapshots.acquire()
    assert snapshots.acquire() == first  # no change: the same snapshot, held twice
    store.add_graph(G1, SMALL_TRIPLES[G1])
    second = snapshots.acquire()
    assert second != first
    assert len(ox.Store.read_only(str(second))) == len(SMALL_TRIPLES[G1])
    assert len(ox.Store.read_only(str(first))) == 0  # a holder still reads the old one
    snapshots.release(first)
    assert first.exists()  # held once more
    snapshots.release(first)
    assert not first.exists()
    snapshots.release(second)
    assert second.exists()  # the newest stays for the next reader
    store.update(f"DROP GRAPH <{G1}>")
    third = snapshots.acquire()
    assert not second.exists() and len(ox.Store.read_only(str(third))) == 0
    folder = store.folder
    store.close()
    assert not folder.exists()


def test_open_store_memory_is_a_temporary_store(settings: Settings) -> None:
    store = open_store(Settings.load(settings.root, store_url="memory:"))
    assert isinstance(store, TemporaryStore) and not store.read_only
    store.update(f"INSERT DATA {{ GRAPH <{G1}> {{ <{EX}a> <{EX}b> 1 }} }}")
    assert store.quad_count() == 1


@hypothesis_settings(max_examples=200, deadline=None)
@given(text=st.text(), lang=st.sampled_from([None, "en", "fr-BE"]))
def test_any_text_binds_as_a_literal_and_nothing_else(text: str, lang: str | None) -> None:
    store = OxigraphStore()
    store.add_graph(G1, [(URIRef(EX + "s"), URIRef(EX + "p"), Literal(text, lang=lang))])
    result = store.query(
        "SELECT ?s WHERE { ?s ?p ?_v } # ?_v", bindings={"_v": Literal(text, lang=lang)}
    )
    assert result.to_json_rows() == [{"s": EX + "s"}]
    assert store.quad_count() == 1


@pytest.mark.parametrize("iri", ["http://example.org/a b", "http://example.org/>", "no scheme"])
def test_an_iri_rdf_does_not_allow_is_a_400(small_store: OxigraphStore, iri: str) -> None:
    with pytest.raises(CopkgError) as error:
        small_store.query("SELECT * WHERE { ?_v ?p ?o }", bindings={"_v": URIRef(iri)})
    assert error.value.status == 400
