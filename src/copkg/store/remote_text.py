"""The SPARQL text copkg sends a remote endpoint: its prefixes, its query form, its dataset
(every data graph named, or on Virtuoso the server's own graphs left out), the graphs that are
not data, and the bodies of SPARQL Update requests."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Sequence

import pyoxigraph as ox
from rdflib.term import Node

from copkg.errors import CopkgError
from copkg.namespaces import PREFIXES, PUSH_MANIFEST_GRAPH, PUSH_TMP_GRAPH, PUSH_TMP_PREFIX
from copkg.store.scan import tokens
from copkg.store.terms import serialize

_FORMS = {"SELECT": "select", "ASK": "ask", "CONSTRUCT": "graph", "DESCRIBE": "graph"}
_DATASET_KEYWORDS = {"FROM"}

#: Graphs Virtuoso keeps for itself in every database: the schema of its RDF views and the LDP
#: vocabulary. With its service description graph (see `server_graph`) they are not data: never
#: in the dataset a query is sent with, never counted, never dropped by `copkg push --prune`.
SERVER_GRAPHS = frozenset(
    {"http://www.openlinksw.com/schemas/virtrdf#", "http://www.w3.org/ns/ldp#"}
)
#: Virtuoso's service description graph, named after its [URIQA] DefaultHost (`http://HOST/sparql`)
#: or `http://localuriqaserver/sparql` when that is not set.
_SERVICE_GRAPH = re.compile(r"http://[^/?#]+/sparql")

#: The graphs that are never data, whether a listing of the store's graphs has seen them or not:
#: Virtuoso's own, copkg push's record and its temporary graph. A query sent with exclusions
#: (`virtuoso_dataset`) always leaves these out: a push that begins after the client listed the
#: graphs (kept `graphs_ttl` s) writes only into them before moving a graph into place.
NOT_DATA = SERVER_GRAPHS | {str(PUSH_MANIFEST_GRAPH), PUSH_TMP_GRAPH}

#: The graph whose presence marks a Virtuoso store: the schema of its RDF views, in every
#: database it keeps (the dataset's exclusions below are Virtuoso's own syntax).
VIRTUOSO_GRAPH = "http://www.openlinksw.com/schemas/virtrdf#"


def server_graph(graph: Node | str) -> bool:
    """Whether a graph is not data: one the server keeps for itself (Virtuoso's; see
    SERVER_GRAPHS), or copkg push's record and temporary graphs (copkg.pipeline.push)."""
    name = str(graph)
    if name == str(PUSH_MANIFEST_GRAPH) or name.startswith(PUSH_TMP_PREFIX):
        return True
    return name in SERVER_GRAPHS or _SERVICE_GRAPH.fullmatch(name) is not None


def query_form(sparql: str) -> str:
    """`select`, `ask` or `graph` (CONSTRUCT, DESCRIBE): the first query form keyword."""
    for token in tokens(sparql):
        if token.kind == "word" and token.upper in _FORMS:
            return _FORMS[token.upper]
    raise CopkgError("not a SPARQL query: no SELECT, ASK, CONSTRUCT or DESCRIBE", status=400)


def names_dataset(sparql: str) -> bool:
    """Whether the query has its own FROM or FROM NAMED clause."""
    return any(t.kind == "word" and t.upper in _DATASET_KEYWORDS for t in tokens(sparql))


def names_a_graph(sparql: str) -> bool:
    """Whether the query has `GRAPH` with anything but a variable after it (`GRAPH <g>`,
    `GRAPH ex:g`), or a name that begins with GRAPH (read as the keyword by some engines)."""
    toks = tokens(sparql)
    for i, token in enumerate(toks):
        if token.kind not in ("word", "pname") or not token.upper.startswith("GRAPH"):
            continue
        if token.upper != "GRAPH" or i + 1 >= len(toks) or toks[i + 1].kind != "var":
            return True
    return False


def virtuoso_dataset(excluded: Iterable[str]) -> str:
    """Virtuoso's pragmas that leave `excluded` out of a query's default graph and named
    graphs, everything else in: `define input:default-graph-exclude <g>` and
    `define input:named-graph-exclude <g>`, to go before the query's text.

    This is the embedded store's dataset (the union of the data graphs, each also named)
    without naming every data graph: Virtuoso 7.2 takes 20-30 ms more a query for a hundred
    graphs sent as default-graph-uri and named-graph-uri, and a graph group (one IRI for the
    lot) cannot stand in FROM NAMED (SP031). With named-graph-exclude Virtuoso 7.2 finds
    nothing in `GRAPH <g> { ... }` (a constant graph; a variable is right): such a query is
    sent with every graph named instead (`names_a_graph`)."""
    pragmas = []
    for graph in sorted(excluded):
        iri = str(ox.NamedNode(graph))
        pragmas.append(f"define input:default-graph-exclude {iri}\n")
        pragmas.append(f"define input:named-graph-exclude {iri}\n")
    return "".join(pragmas)


def declared_prefixes(sparql: str) -> set[str]:
    """The prefix names a query or update declares with PREFIX."""
    toks = [t for t in tokens(sparql) if t.kind != "string"]
    return {
        toks[i + 1].text.split(":", 1)[0]
        for i, tok in enumerate(toks[:-1])
        if tok.kind == "word" and tok.upper == "PREFIX" and ":" in toks[i + 1].text
    }


def with_prefixes(sparql: str) -> str:
    """The text with the copkg prefixes it does not declare itself declared first (the embedded
    store knows them without declarations; a remote endpoint does not)."""
    declared = declared_prefixes(sparql)
    head = "".join(f"PREFIX {p}: <{ns}>\n" for p, ns in PREFIXES.items() if p not in declared)
    return head + sparql


# -- SPARQL Update bodies ----------------------------------------------------------------------


def insert(data: str) -> str:
    """INSERT DATA, or where the data has blank nodes the same as a template with one empty
    solution, `INSERT { ... } WHERE {}` (fresh blank nodes either way): Virtuoso refuses blank
    nodes in INSERT DATA (SP031 "not allowed in a constant clause")."""
    if "_:" in data:
        return f"INSERT {{ {data} }} WHERE {{}}"
    return f"INSERT DATA {{ {data} }}"


def chunks(triples: Sequence[ox.Triple], limit: int) -> Iterator[bytes]:
    """N-Triples bodies of about `limit` bytes; triples that share a blank node stay together
    (a blank node label means a fresh node in each INSERT DATA)."""
    current: list[bytes] = []
    size = 0
    for group in _blank_node_groups(triples):
        data = serialize(group, ox.RdfFormat.N_TRIPLES)
        if current and size + len(data) > limit:
            yield b"".join(current)
            current, size = [], 0
        current.append(data)
        size += len(data)
    if current:
        yield b"".join(current)


def _blank_node_groups(triples: Sequence[ox.Triple]) -> Iterator[list[ox.Triple]]:
    """Triples without blank nodes one by one; the others grouped by connected blank nodes."""
    parent: dict[str, str] = {}

    def find(label: str) -> str:
        while parent.setdefault(label, label) != label:
            parent[label] = parent[parent[label]]
            label = parent[label]
        return label

    grouped: list[ox.Triple] = []
    for triple in triples:
        blanks = [t.value for t in (triple.subject, triple.object) if isinstance(t, ox.BlankNode)]
        if not blanks:
            yield [triple]
            continue
        grouped.append(triple)
        first = find(blanks[0])
        for other in blanks[1:]:
            parent[find(other)] = first
    components: dict[str, list[ox.Triple]] = {}
    for triple in grouped:
        node = triple.subject if isinstance(triple.subject, ox.BlankNode) else triple.object
        assert isinstance(node, ox.BlankNode)
        components.setdefault(find(node.value), []).append(triple)
    yield from components.values()
