"""A remote store's answers read as the server sent them, without a server: Virtuoso 7.2.5's own
answers with blank nodes (recorded from Debian's virtuoso-opensource over copkg's ontology), and
the dataset a query is sent with on Virtuoso whatever its last listing of the graphs saw."""

from __future__ import annotations

import json
from collections.abc import Sequence

import pyoxigraph as ox
import pytest
from rdflib import BNode, Literal, URIRef

from copkg.errors import CopkgError
from copkg.namespaces import PUSH_MANIFEST_GRAPH, PUSH_TMP_GRAPH
from copkg.store.remote import SparqlEndpointStore
from copkg.store.remote_answers import readable_blank_nodes
from copkg.store.remote_text import VIRTUOSO_GRAPH

OWL = "http://www.w3.org/2002/07/owl#"
ONTOLOGY = "https://w3id.org/copkg/ontology#"

#: `SELECT ?class ?expression (STR(?expression) AS ?text) ?operand WHERE { ?class
#: owl:equivalentClass ?expression . ?expression owl:intersectionOf ?operand } ORDER BY ?class
#: LIMIT 2`, as Virtuoso 7.2.5 answered it in SPARQL JSON (bytes as sent: its tabs, no final
#: newline) and in SPARQL XML.
VIRTUOSO_JSON = (
    b'\n{ "head": { "link": [], "vars": ["class", "expression", "text", "operand"] },\n'
    b'  "results": { "distinct": false, "ordered": true, "bindings": [\n'
    b'    { "class": { "type": "uri", "value": "https://w3id.org/copkg/ontology#ClandestineCollec'
    b'tive" }\t, "expression": { "type": "bnode", "value": "nodeID://b10000" }\t, "text": { "typ'
    b'e": "literal", "value": "nodeID://b10000" }\t, "operand": { "type": "bnode", "value": "nod'
    b'eID://b10001" }},\n'
    b'    { "class": { "type": "uri", "value": "https://w3id.org/copkg/ontology#CommunityOfPracti'
    b'ce" }\t, "expression": { "type": "bnode", "value": "nodeID://b10005" }\t, "text": { "type"'
    b': "literal", "value": "nodeID://b10005" }\t, "operand": { "type": "bnode", "value": "nodeI'
    b'D://b10004" }} ] } }'
)
VIRTUOSO_XML = (
    b'<sparql xmlns="http://www.w3.org/2005/sparql-results#" xmlns:xsi="http://www.w3.org/2001/'
    b'XMLSchema-instance" xsi:schemaLocation="http://www.w3.org/2001/sw/DataAccess/rf1/result2.x'
    b'sd">\n <head>\n  <variable name="class"/>\n  <variable name="expression"/>\n'
    b'  <variable name="text"/>\n  <variable name="operand"/>\n </head>\n'
    b' <results distinct="false" ordered="true">\n  <result>\n'
    b'   <binding name="class"><uri>https://w3id.org/copkg/ontology#ClandestineCollective</uri>'
    b"</binding>\n"
    b'   <binding name="expression"><bnode>nodeID://b10000</bnode></binding>\n'
    b'   <binding name="text"><literal>nodeID://b10000</literal></binding>\n'
    b'   <binding name="operand"><bnode>nodeID://b10001</bnode></binding>\n  </result>\n'
    b"  <result>\n"
    b'   <binding name="class"><uri>https://w3id.org/copkg/ontology#CommunityOfPractice</uri>'
    b"</binding>\n"
    b'   <binding name="expression"><bnode>nodeID://b10005</bnode></binding>\n'
    b'   <binding name="text"><literal>nodeID://b10005</literal></binding>\n'
    b'   <binding name="operand"><bnode>nodeID://b10004</bnode></binding>\n  </result>\n'
    b" </results>\n</sparql>"
)
#: The same as a CONSTRUCT of its two triple patterns, in N-Triples: labels there.
VIRTUOSO_NTRIPLES = (
    b"_:b10000\t<http://www.w3.org/2002/07/owl#intersectionOf>\t_:b10001 .\n"
    b"<https://w3id.org/copkg/ontology#CommunityOfPractice>\t<http://www.w3.org/2002/07/owl#equi"
    b"valentClass>\t_:b10005 .\n"
    b"<https://w3id.org/copkg/ontology#ClandestineCollective>\t<http://www.w3.org/2002/07/owl#eq"
    b"uivalentClass>\t_:b10000 .\n"
    b"_:b10005\t<http://www.w3.org/2002/07/owl#intersectionOf>\t_:b10004 .\n"
)


class Recorded(SparqlEndpointStore):
    """A store whose endpoint answers every query with one recorded answer (and a listing of
    the graphs with `listing`), keeping the text of each query sent."""

    def __init__(self, body: bytes, media_type: str, listing: Sequence[str] = ()) -> None:
        super().__init__("http://127.0.0.1:9/sparql", union_default_graph=not listing)
        self.body, self.media_type, self.listing = body, media_type, listing
        self.sent: list[str] = []

    def _send_query(
        self, text: str, form: str, default: Sequence[str], named: Sequence[str]
    ) -> tuple[bytes, str]:
        self.sent.append(text)
        if "GRAPH ?g { ?s ?p ?o } } GROUP BY ?g" in text:
            bindings = [{"g": {"type": "uri", "value": g}} for g in self.listing]
            doc = {"head": {"vars": ["g"]}, "results": {"bindings": bindings}}
            return json.dumps(doc).encode(), "application/sparql-results+json"
        return self.body, self.media_type


QUERY = "SELECT ?class ?expression ?text ?operand WHERE { ?class owl:equivalentClass ?expression }"
FORMATS = [
    pytest.param(VIRTUOSO_JSON, "application/sparql-results+json", id="json"),
    pytest.param(VIRTUOSO_XML, "application/sparql-results+xml; charset=UTF-8", id="xml"),
]


@pytest.mark.parametrize(("body", "media_type"), FORMATS)
def test_virtuosos_blank_nodes_in_sparql_results_are_blank_nodes(
    body: bytes, media_type: str
) -> None:
    store = Recorded(body, media_type)
    rows = store.query(QUERY).rows
    assert [row["class"] for row in rows] == [
        URIRef(ONTOLOGY + "ClandestineCollective"),
        URIRef(ONTOLOGY + "CommunityOfPractice"),
    ]
    blanks = [row[var] for row in rows for var in ("expression", "operand")]
    assert all(isinstance(node, BNode) for node in blanks)
    assert len(set(blanks)) == 4  # four nodes, four blank nodes
    # STR() of a blank node is Virtuoso's text for it: a literal, kept as it is
    assert [row["text"] for row in rows] == [Literal("nodeID://b10000"), Literal("nodeID://b10005")]


@pytest.mark.parametrize(("body", "media_type"), FORMATS)
def test_one_node_is_one_blank_node_in_an_answer_and_none_of_another(
    body: bytes, media_type: str
) -> None:
    doubled = body.replace(b'"text": { "type": "literal"', b'"text": { "type": "bnode"')
    doubled = doubled.replace(b"<literal>nodeID://", b"<bnode>nodeID://").replace(
        b"</literal>", b"</bnode>"
    )
    store = Recorded(doubled, media_type)  # ?text now the same node as ?expression
    first, second = store.query(QUERY).rows, store.query(QUERY).rows
    for row in first:
        assert row["text"] == row["expression"] != row["operand"]
    nodes = {row[var] for row in first for var in row if isinstance(row[var], BNode)}
    again = {row[var] for row in second for var in row if isinstance(row[var], BNode)}
    assert len(nodes) == len(again) == 4
    assert nodes.isdisjoint(again)


def test_blank_nodes_of_a_graph_answer_are_its_own() -> None:
    store = Recorded(VIRTUOSO_NTRIPLES, "application/n-triples; charset=UTF-8")
    construct = "CONSTRUCT { ?c owl:equivalentClass ?e } WHERE { ?c owl:equivalentClass ?e }"
    first, second = store.query(construct).triples, store.query(construct).triples
    expressions = {o for _, p, o in first if p == URIRef(OWL + "equivalentClass")}
    subjects = {s for s, p, _ in first if p == URIRef(OWL + "intersectionOf")}
    assert len(expressions) == 2 and expressions == subjects  # the same node, the same BNode
    assert all(isinstance(node, BNode) for node in expressions)
    nodes = {t for triple in first for t in triple if isinstance(t, BNode)}
    assert nodes.isdisjoint({t for triple in second for t in triple if isinstance(t, BNode)})
    assert len(nodes) == 4


def test_other_answers_are_read_as_they_are() -> None:
    plain = b'{"head":{"vars":["s"]},"results":{"bindings":[{"s":{"type":"literal","value":"x"}}]}}'
    assert readable_blank_nodes(plain, ox.QueryResultsFormat.JSON) is plain
    assert readable_blank_nodes(VIRTUOSO_JSON, ox.QueryResultsFormat.TSV) is VIRTUOSO_JSON
    broken = Recorded(VIRTUOSO_JSON[:-20], "application/sparql-results+json")
    with pytest.raises(CopkgError, match="cannot be read") as error:
        broken.query(QUERY)
    assert error.value.status == 502
    entity = b'<!DOCTYPE sparql [<!ENTITY e "nodeID://b1">]>' + VIRTUOSO_XML
    with pytest.raises(CopkgError, match="cannot be read"):
        Recorded(entity, "application/sparql-results+xml").query(QUERY)


def test_queries_on_virtuoso_leave_out_graphs_no_listing_has_seen() -> None:
    """A push that begins after the store listed its graphs (kept 5 s) writes its record and
    its temporary graph: both are left out of the next query's dataset all the same."""
    data = "https://w3id.org/copkg/graph/ontology"
    store = Recorded(VIRTUOSO_JSON, "application/sparql-results+json", [VIRTUOSO_GRAPH, data])
    store.query(QUERY)
    pragmas = store.sent[-1].split("PREFIX", 1)[0]
    for graph in (VIRTUOSO_GRAPH, str(PUSH_MANIFEST_GRAPH), PUSH_TMP_GRAPH):
        assert f"define input:default-graph-exclude <{graph}>" in pragmas
        assert f"define input:named-graph-exclude <{graph}>" in pragmas
    assert data not in pragmas
    assert store.graphs() == [data]
    elsewhere = Recorded(VIRTUOSO_JSON, "application/sparql-results+json", [data])
    elsewhere.query(QUERY)  # not Virtuoso: the data graphs named, no pragma
    assert elsewhere.sent[-1].startswith("PREFIX")


def test_literals_beside_a_virtuoso_blank_node_keep_their_text() -> None:
    text = 'café "cité" 😀 \\ nodeID://b1'
    doc = {
        "head": {"vars": ["s", "label"]},
        "results": {
            "bindings": [
                {
                    "s": {"type": "bnode", "value": "nodeID://b1"},
                    "label": {"type": "literal", "value": text, "xml:lang": "fr"},
                }
            ]
        },
    }
    for ascii_only in (True, False):
        body = json.dumps(doc, ensure_ascii=ascii_only).encode("utf-8")
        rows = Recorded(body, "application/sparql-results+json").query(QUERY).rows
        assert rows[0]["label"] == Literal(text, lang="fr")
        assert isinstance(rows[0]["s"], BNode)
