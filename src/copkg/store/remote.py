"""SparqlEndpointStore: the Store protocol on a SPARQL 1.1 endpoint (queries through SPARQLWrapper,
graphs through the Graph Store Protocol or SPARQL Update)."""

from __future__ import annotations

import base64
import re
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

import pyoxigraph as ox
from rdflib.term import Node
from SPARQLWrapper import POST, POSTDIRECTLY, URLENCODED

from copkg.errors import CopkgError
from copkg.namespaces import PREFIXES, PUSH_MANIFEST_GRAPH, PUSH_TMP_PREFIX
from copkg.store.http import (
    SparqlRequest,
    allow_headers,
    call,
    cancellable_opener,
    digest_opener,
    timeout_parameter,
    timeout_value,
    unreadable,
)
from copkg.store.results import SPARQL_JSON, QueryResult
from copkg.store.scan import bind_values, check_remote_calls, tokens
from copkg.store.terms import (
    from_ox,
    serialize,
    terms_as_sparql,
    to_ox_graph_name,
    triples_to_quads,
)

T = TypeVar("T")

#: Accept headers: SPARQL JSON results for SELECT and ASK, N-Triples (else Turtle) for graphs.
_ACCEPT_SOLUTIONS = f"{SPARQL_JSON}, application/sparql-results+xml;q=0.8"
_ACCEPT_GRAPH = "application/n-triples, text/turtle;q=0.9, application/rdf+xml;q=0.5"
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

#: The largest SPARQL Update body `replace_graph` sends in one request (bytes, about).
UPDATE_CHUNK_BYTES = 1_000_000


class SparqlEndpointStore:
    """A dataset behind a SPARQL 1.1 endpoint (Oxigraph, Fuseki, GraphDB, Virtuoso ...).

    As in the embedded store, the default graph of a query is the union of the named graphs:
    unless the query names its own dataset (FROM) or `default_graphs`/`named_graphs` are given,
    every named graph is sent as default-graph-uri and named-graph-uri (standard SPARQL
    protocol, so the answers are the same on every server). `union_default_graph=True` sends no
    dataset, for servers whose default graph already is that union (Fuseki with
    tdb2:unionDefaultGraph, GraphDB, Virtuoso, `oxigraph serve --union-default-graph`).

    Updates need `update_url`; `replace_graph` uses the Graph Store Protocol (`graph_store_url`,
    PUT, idempotent) where given, else DROP SILENT GRAPH + INSERT DATA in chunks. `auth` (user,
    password) is sent as HTTP Basic authentication with every request, or, with
    `auth_scheme="digest"`, as HTTP Digest authentication when the server asks for it
    (Virtuoso's /sparql-auth and /sparql-graph-crud-auth); the password never crosses in clear.
    `timeout_param` (COPKG_REMOTE_TIMEOUT_PARAM) sends the server a time limit of its own,
    `server_timeout` s (default `timeout`); an answer it cut there is a 503, not a part.
    """

    def __init__(  # noqa: PLR0913 (the endpoint's URLs and options, keyword-only)
        self,
        query_url: str,
        update_url: str | None = None,
        graph_store_url: str | None = None,
        *,
        timeout: float = 30.0,
        max_rows: int | None = None,
        allowed_service_endpoints: Sequence[str] = (),
        union_default_graph: bool = False,
        graphs_ttl: float = 5.0,
        chunk_bytes: int = UPDATE_CHUNK_BYTES,
        auth: tuple[str, str] | None = None,
        auth_scheme: str = "basic",
        timeout_param: str | None = None,
        server_timeout: float | None = None,
    ) -> None:
        if auth_scheme not in ("basic", "digest"):
            raise CopkgError(f"unknown authentication scheme {auth_scheme!r}", status=400)
        for url in (query_url, update_url, graph_store_url):
            if url is not None and not url.startswith(("http://", "https://")):
                raise CopkgError(f"not an http(s) URL: {url}", status=400)
        self.query_url = query_url
        self.update_url = update_url
        self.graph_store_url = graph_store_url
        self.timeout = timeout
        self.max_rows = max_rows
        self.allowed_service_endpoints = tuple(allowed_service_endpoints)
        self.union_default_graph = union_default_graph
        self.graphs_ttl = graphs_ttl
        self.chunk_bytes = chunk_bytes
        self.auth = auth
        self.auth_scheme = auth_scheme
        self.timeout_param = timeout_parameter(timeout_param)
        self.server_timeout = timeout if server_timeout is None else server_timeout
        self._graphs: tuple[float, list[str]] | None = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"SparqlEndpointStore({self.query_url!r})"

    def __getstate__(self) -> dict[str, Any]:  # for another process: no lock, no cache
        return {k: v for k, v in self.__dict__.items() if k not in ("_lock", "_graphs")}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state, _lock=threading.Lock(), _graphs=None)

    # -- queries ---------------------------------------------------------------------------

    def query(
        self,
        sparql: str,
        *,
        bindings: Mapping[str, Node] | None = None,
        default_graphs: Sequence[str] | None = None,
        named_graphs: Sequence[str] | None = None,
        base: str | None = None,
    ) -> QueryResult:
        """Run a SPARQL query on the endpoint, its relative IRIs resolved against `base`.

        The protocol carries only text: `bindings` are written into VALUES blocks by
        pyoxigraph's serialiser (scan.bind_values), never pasted from a raw input string, and
        the base is declared on the first line (so that lines keep their numbers).
        """
        check_remote_calls(sparql, self.allowed_service_endpoints)
        if bindings:
            sparql = bind_values(sparql, terms_as_sparql(bindings))
        if base is not None:
            sparql = f"BASE <{base}> {sparql}"
        form = query_form(sparql)
        if default_graphs is None and named_graphs is None:
            if self.union_default_graph or _names_dataset(sparql):
                default, named = [], []
            else:
                default = named = self.graphs()
        else:
            default, named = list(default_graphs or ()), list(named_graphs or ())
        body, media_type = self._send_query(with_prefixes(sparql), form, default, named)
        return self._result(form, body, media_type, self.max_rows)

    def _send_query(
        self, text: str, form: str, default: Sequence[str], named: Sequence[str]
    ) -> tuple[bytes, str]:
        request = SparqlRequest(
            self.query_url, "CONSTRUCT" if form == "graph" else "SELECT", opener=self._opener()
        )
        request.setMethod(POST)
        request.setRequestMethod(URLENCODED)
        request.setOnlyConneg(True)
        request.setTimeout(self.timeout)  # type: ignore[arg-type]  # seconds, a float
        request.setQuery(text)
        if self.timeout_param is not None:
            name, unit = self.timeout_param
            request.addParameter(name, timeout_value(self.server_timeout, unit))
        if self.auth is not None and self.auth_scheme == "basic":
            request.setCredentials(*self.auth)
        allow_headers(len(default) + len(named) + 100)  # Virtuoso echoes each graph
        for graph in default:
            request.addDefaultGraph(graph)
        for graph in named:
            request.addNamedGraph(graph)
        accept = _ACCEPT_GRAPH if form == "graph" else _ACCEPT_SOLUTIONS
        request.addCustomHttpHeader("Accept", accept)

        def send() -> tuple[bytes, str]:
            response = request.query().response
            cut = response.headers.get("X-SPARQL-MaxRows")
            if cut is not None:
                raise CopkgError(
                    f"the SPARQL endpoint {self.query_url} cut its answer at {cut} rows "
                    "(Virtuoso's [SPARQL] ResultSetMaxRows): raise it above the store's "
                    "triple count",
                    status=502,
                )
            return response.read(), response.headers.get("Content-Type", "")

        return self._call(self.query_url, send)

    def _result(self, form: str, body: bytes, media_type: str, limit: int | None) -> QueryResult:
        media_type = media_type.split(";", maxsplit=1)[0].strip().lower()
        try:
            if form == "graph":
                fmt = ox.RdfFormat.from_media_type(media_type) or ox.RdfFormat.N_TRIPLES
                return _graph(ox.parse(body, format=fmt), limit)
            fmt_results = (
                ox.QueryResultsFormat.from_media_type(media_type) or ox.QueryResultsFormat.JSON
            )
            answer = ox.parse_query_results(body, format=fmt_results)
            if isinstance(answer, ox.QueryBoolean):
                return QueryResult(kind="ask", boolean=bool(answer))
            return _solutions(answer, limit)  # (read as they are iterated: inside the try)
        except (SyntaxError, ValueError) as exc:
            raise unreadable(self.query_url, media_type, body, exc) from exc

    def facts(self, without: Sequence[str] = ()) -> list[tuple[Node, Node, Node]]:
        """Every triple of the named graphs but those `without`, with no row limit (one
        CONSTRUCT): what the rules read when the advisor reasons over this store."""
        graphs = [g for g in self.graphs() if g not in set(without)]
        text = with_prefixes("CONSTRUCT { ?s ?p ?o } WHERE { ?s ?p ?o }")
        body, media_type = self._send_query(text, "graph", graphs, [])
        return self._result("graph", body, media_type, None).triples

    def select(self, sparql: str) -> list[dict[str, Node]]:
        """The rows of a SELECT on the endpoint's own dataset (no dataset sent, no row limit)."""
        body, media_type = self._send_query(with_prefixes(sparql), "select", [], [])
        return self._result("select", body, media_type, None).rows

    # -- changes ---------------------------------------------------------------------------

    def _writable(self) -> str:
        if self.update_url is None:
            raise CopkgError(
                f"the SPARQL endpoint {self.query_url} is used read-only: give its update URL "
                "to change it",
                status=403,
            )
        return self.update_url

    def update(self, sparql: str) -> None:
        """Run a SPARQL update (LOAD and SERVICE to unlisted endpoints are refused)."""
        check_remote_calls(sparql, self.allowed_service_endpoints)
        self._update(with_prefixes(sparql))

    def _update(self, text: str) -> None:
        url = self._writable()
        request = SparqlRequest(
            self.query_url, "INSERT", update_endpoint=url, opener=self._opener()
        )
        request.setMethod(POST)
        request.setRequestMethod(POSTDIRECTLY)
        request.setOnlyConneg(True)
        request.setTimeout(self.timeout)  # type: ignore[arg-type]  # seconds, a float
        request.setQuery(text)
        if self.auth is not None and self.auth_scheme == "basic":
            request.setCredentials(*self.auth)

        def send() -> None:
            request.query().response.read()

        self._call(url, send)
        self._graphs = None

    def replace_graph(self, graph: str, triples: Iterable[tuple[Node, Node, Node]]) -> None:
        """Make `graph` hold exactly `triples` (GSP PUT, else DROP + INSERT DATA in chunks)."""
        self.put_graph(
            graph,
            [ox.Triple(q.subject, q.predicate, q.object) for q in triples_to_quads(triples, None)],
        )

    def put_graph(self, graph: str, triples: Sequence[ox.Triple]) -> None:
        """Replace one named graph with pyoxigraph triples; re-running it gives the same graph."""
        if self.graph_store_url is not None:
            body = serialize(triples, ox.RdfFormat.N_TRIPLES)
            self._graph_store("PUT", graph, body)
            return
        name = str(to_ox_graph_name(graph))
        chunks = list(_chunks(triples, self.chunk_bytes)) or [b""]
        for number, chunk in enumerate(chunks):
            insert = _insert(f"GRAPH {name} {{\n{chunk.decode('utf-8')}}}")
            self._update(f"DROP SILENT GRAPH {name} ;\n{insert}" if number == 0 else insert)

    def add_triples(self, graph: str | None, triples: Sequence[ox.Triple]) -> None:
        """Add triples to a named graph (or the default graph): GSP POST, else INSERT DATA."""
        if self.graph_store_url is not None:
            self._graph_store("POST", graph, serialize(triples, ox.RdfFormat.N_TRIPLES))
            return
        for chunk in _chunks(triples, self.chunk_bytes):
            data = chunk.decode("utf-8")
            if graph is not None:
                data = f"GRAPH {to_ox_graph_name(graph)} {{\n{data}}}"
            self._update(_insert(data))

    def move_graph(self, source: str, target: str) -> None:
        """Replace `target` by `source` in one update (MOVE): never half of either."""
        move = f"MOVE SILENT GRAPH {to_ox_graph_name(source)} TO {to_ox_graph_name(target)}"
        self._update(move)

    def drop_graph(self, graph: str) -> None:
        """Remove one named graph (nothing happens when it is not there)."""
        self._update(f"DROP SILENT GRAPH {to_ox_graph_name(graph)}")

    def load_dataset(self, path: Path) -> None:
        """Add the graphs of a TriG or N-Quads file; each keeps its name."""
        path = Path(path)
        fmt = {".trig": ox.RdfFormat.TRIG, ".nq": ox.RdfFormat.N_QUADS}.get(path.suffix.lower())
        if fmt is None:
            raise CopkgError(f"{path}: not a dataset file (.trig or .nq)", status=400)
        self._writable()
        by_graph: dict[str | None, list[ox.Triple]] = {}
        try:
            for quad in ox.parse(path=str(path), format=fmt):
                name = (
                    None if isinstance(quad.graph_name, ox.DefaultGraph) else quad.graph_name.value
                )
                by_graph.setdefault(name, []).append(
                    ox.Triple(quad.subject, quad.predicate, quad.object)
                )
        except SyntaxError as exc:
            raise CopkgError(f"{path}: {exc}", status=400) from exc
        for name, triples in by_graph.items():
            self.add_triples(name, triples)

    def _graph_store(self, method: str, graph: str | None, body: bytes) -> None:
        assert self.graph_store_url is not None
        base = self.graph_store_url
        query = "default" if graph is None else "graph=" + urllib.parse.quote(graph, safe="")
        url = f"{base}{'&' if '?' in base else '?'}{query}"
        headers = {"Content-Type": "application/n-triples"}
        if self.auth is not None and self.auth_scheme == "basic":
            token = base64.b64encode(":".join(self.auth).encode("utf-8")).decode("ascii")
            headers["Authorization"] = f"Basic {token}"
        request = urllib.request.Request(url, data=body, method=method, headers=headers)
        opener = self._opener() or cancellable_opener()

        def send() -> None:
            with opener.open(request, timeout=self.timeout) as response:
                response.read()

        self._call(self.graph_store_url, send)
        self._graphs = None

    def _opener(self) -> urllib.request.OpenerDirector | None:
        """A fresh opener that answers a Digest challenge with `auth` (None without Digest)."""
        if self.auth is None or self.auth_scheme != "digest":
            return None
        return digest_opener(self.auth, (self.query_url, self.update_url, self.graph_store_url))

    def _call(self, url: str, send: Callable[[], T]) -> T:
        """Run one HTTP exchange; every failure becomes a CopkgError that names the URL."""
        return call(url, send, self.timeout)

    # -- looking -----------------------------------------------------------------------------

    def graphs(self) -> list[str]:
        """The IRIs of the endpoint's named graphs, sorted (kept `graphs_ttl` seconds)."""
        with self._lock:
            cached = self._graphs
        if cached is not None and time.monotonic() - cached[0] < self.graphs_ttl:
            return list(cached[1])
        # GROUP BY, not DISTINCT: Virtuoso 7.2 answers it in ms, DISTINCT ?g in seconds
        rows = self.select("SELECT ?g WHERE { GRAPH ?g { ?s ?p ?o } } GROUP BY ?g")
        names = sorted(str(row["g"]) for row in rows if "g" in row and not server_graph(row["g"]))
        with self._lock:
            self._graphs = (time.monotonic(), names)
        return list(names)

    def quad_count(self, graph: str | None = None) -> int:
        """How many triples the named graphs hold together (or one named graph); the server's
        own graphs are not counted."""
        if graph is None:
            return sum(self.graph_counts().values())
        where = str(to_ox_graph_name(graph))
        rows = self.select(f"SELECT (COUNT(*) AS ?n) WHERE {{ GRAPH {where} {{ ?s ?p ?o }} }}")
        return int(str(rows[0]["n"])) if rows and "n" in rows[0] else 0

    def graph_counts(self) -> dict[str, int]:
        """How many triples each named graph holds, in one query (not the server's own)."""
        rows = self.select("SELECT ?g (COUNT(*) AS ?n) WHERE { GRAPH ?g { ?s ?p ?o } } GROUP BY ?g")
        return {
            str(row["g"]): int(str(row["n"]))
            for row in rows
            if "g" in row and not server_graph(row["g"])
        }


def server_graph(graph: Node | str) -> bool:
    """Whether a graph is not data: one the server keeps for itself (Virtuoso's; see
    SERVER_GRAPHS), or copkg push's record and temporary graphs (copkg.pipeline.push)."""
    name = str(graph)
    if name == str(PUSH_MANIFEST_GRAPH) or name.startswith(PUSH_TMP_PREFIX):
        return True
    return name in SERVER_GRAPHS or _SERVICE_GRAPH.fullmatch(name) is not None


def _solutions(answer: Any, limit: int | None) -> QueryResult:
    variables = [v.value for v in answer.variables]
    rows: list[dict[str, Node]] = []
    for solution in answer:
        if limit is not None and len(rows) >= limit:
            return QueryResult("select", variables=variables, rows=rows, truncated=True)
        rows.append({var: from_ox(solution[var]) for var in variables if solution[var] is not None})
    return QueryResult("select", variables=variables, rows=rows)


def _graph(quads: Iterable[Any], limit: int | None) -> QueryResult:
    triples: list[tuple[Node, Node, Node]] = []
    for quad in quads:
        if limit is not None and len(triples) >= limit:
            return QueryResult("graph", triples=triples, truncated=True)
        triples.append((from_ox(quad.subject), from_ox(quad.predicate), from_ox(quad.object)))
    return QueryResult("graph", triples=triples)


# -- SPARQL text -------------------------------------------------------------------------------


def query_form(sparql: str) -> str:
    """`select`, `ask` or `graph` (CONSTRUCT, DESCRIBE): the first query form keyword."""
    for token in tokens(sparql):
        if token.kind == "word" and token.upper in _FORMS:
            return _FORMS[token.upper]
    raise CopkgError("not a SPARQL query: no SELECT, ASK, CONSTRUCT or DESCRIBE", status=400)


def _names_dataset(sparql: str) -> bool:
    """Whether the query has its own FROM or FROM NAMED clause."""
    return any(t.kind == "word" and t.upper in _DATASET_KEYWORDS for t in tokens(sparql))


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


def _insert(data: str) -> str:
    """INSERT DATA, or where the data has blank nodes the same as a template with one empty
    solution, `INSERT { ... } WHERE {}` (fresh blank nodes either way): Virtuoso refuses blank
    nodes in INSERT DATA (SP031 "not allowed in a constant clause")."""
    if "_:" in data:
        return f"INSERT {{ {data} }} WHERE {{}}"
    return f"INSERT DATA {{ {data} }}"


def _chunks(triples: Sequence[ox.Triple], limit: int) -> Iterator[bytes]:
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
