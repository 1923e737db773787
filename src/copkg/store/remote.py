"""SparqlEndpointStore: the Store protocol on a SPARQL 1.1 endpoint (queries through SPARQLWrapper,
graphs through the Graph Store Protocol or SPARQL Update)."""

from __future__ import annotations

import base64
import contextlib
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

import pyoxigraph as ox
from rdflib.term import Node
from SPARQLWrapper import POST, POSTDIRECTLY, URLENCODED

from copkg.errors import CopkgError
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
from copkg.store.remote_answers import read_graph, read_solutions, readable_blank_nodes
from copkg.store.remote_text import (
    NOT_DATA,
    VIRTUOSO_GRAPH,
    chunks,
    insert,
    names_a_graph,
    names_dataset,
    query_form,
    server_graph,
    virtuoso_dataset,
    with_prefixes,
)
from copkg.store.results import SPARQL_JSON, QueryResult
from copkg.store.scan import bind_values, check_remote_calls
from copkg.store.terms import (
    serialize,
    terms_as_sparql,
    to_ox_graph_name,
    triples_to_quads,
)

T = TypeVar("T")

#: Accept headers: SPARQL JSON results for SELECT and ASK, N-Triples (else Turtle) for graphs.
_ACCEPT_SOLUTIONS = f"{SPARQL_JSON}, application/sparql-results+xml;q=0.8"
_ACCEPT_GRAPH = "application/n-triples, text/turtle;q=0.9, application/rdf+xml;q=0.5"
#: The largest SPARQL Update body `replace_graph` sends in one request (bytes, about).
UPDATE_CHUNK_BYTES = 1_000_000


class SparqlEndpointStore:
    """A dataset behind a SPARQL 1.1 endpoint (Oxigraph, Fuseki, GraphDB, Virtuoso ...).

    As in the embedded store, the default graph of a query is the union of the named graphs:
    unless the query names its own dataset (FROM) or `default_graphs`/`named_graphs` are given,
    every named graph is sent as default-graph-uri and named-graph-uri (standard SPARQL
    protocol, so the answers are the same on every server). On Virtuoso (its `virtrdf#` graph
    listed) the graphs that are not data are left out instead, with its own pragmas
    (remote_text.virtuoso_dataset): a few graphs named rather than every one
    (`exclude_server_graphs=False` names every one). `union_default_graph=True` sends no
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
        exclude_server_graphs: bool = True,
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
        self.exclude_server_graphs = exclude_server_graphs
        self._graphs: tuple[float, list[str], list[str] | None] | None = None
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
        pragmas = ""
        default: list[str]
        named: list[str]
        if default_graphs is None and named_graphs is None:
            if self.union_default_graph or names_dataset(sparql):
                default, named = [], []
            else:
                pragmas, default = self._dataset(sparql)
                named = default
        else:
            default, named = list(default_graphs or ()), list(named_graphs or ())
        body, media_type = self._send_query(pragmas + with_prefixes(sparql), form, default, named)
        return self._result(form, body, media_type, self.max_rows)

    def _dataset(self, sparql: str) -> tuple[str, list[str]]:
        """The dataset of a query that names none: on Virtuoso, pragmas that leave out the
        graphs that are not data (remote_text.virtuoso_dataset), else every data graph (to send
        as default-graph-uri and named-graph-uri)."""
        names, excluded = self._listing()
        if excluded is not None and self.exclude_server_graphs and not names_a_graph(sparql):
            with contextlib.suppress(ValueError):  # a name that is no IRI: every graph named
                return virtuoso_dataset(excluded), []
        return "", names

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
                return read_graph(ox.parse(body, format=fmt), limit)
            fmt_results = (
                ox.QueryResultsFormat.from_media_type(media_type) or ox.QueryResultsFormat.JSON
            )
            body = readable_blank_nodes(body, fmt_results)
            answer = ox.parse_query_results(body, format=fmt_results)
            if isinstance(answer, ox.QueryBoolean):
                return QueryResult(kind="ask", boolean=bool(answer))
            return read_solutions(answer, limit)  # (read as they are iterated: inside the try)
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
        bodies = list(chunks(triples, self.chunk_bytes)) or [b""]
        for number, chunk in enumerate(bodies):
            text = insert(f"GRAPH {name} {{\n{chunk.decode('utf-8')}}}")
            self._update(f"DROP SILENT GRAPH {name} ;\n{text}" if number == 0 else text)

    def add_triples(self, graph: str | None, triples: Sequence[ox.Triple]) -> None:
        """Add triples to a named graph (or the default graph): GSP POST, else INSERT DATA."""
        if self.graph_store_url is not None:
            self._graph_store("POST", graph, serialize(triples, ox.RdfFormat.N_TRIPLES))
            return
        for chunk in chunks(triples, self.chunk_bytes):
            data = chunk.decode("utf-8")
            if graph is not None:
                data = f"GRAPH {to_ox_graph_name(graph)} {{\n{data}}}"
            self._update(insert(data))

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
        return list(self._listing()[0])

    def _listing(self) -> tuple[list[str], list[str] | None]:
        """The data graphs, and on Virtuoso the graphs that are not data (None elsewhere),
        listed at most every `graphs_ttl` seconds."""
        with self._lock:
            cached = self._graphs
        if cached is not None and time.monotonic() - cached[0] < self.graphs_ttl:
            return cached[1], cached[2]
        # GROUP BY, not DISTINCT: Virtuoso 7.2 answers it in ms, DISTINCT ?g in seconds
        rows = self.select("SELECT ?g WHERE { GRAPH ?g { ?s ?p ?o } } GROUP BY ?g")
        every = sorted(str(row["g"]) for row in rows if "g" in row)
        names = [g for g in every if not server_graph(g)]
        excluded = None
        if VIRTUOSO_GRAPH in every:  # with those never data: a push may begin after this
            excluded = sorted({g for g in every if server_graph(g)} | NOT_DATA)
        with self._lock:
            self._graphs = (time.monotonic(), names, excluded)
        return names, excluded

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
