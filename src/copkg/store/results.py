"""QueryResult: one value type for SELECT, ASK and CONSTRUCT results, and its serialisers."""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

import pyoxigraph as ox
from rdflib import BNode, URIRef
from rdflib import Literal as RdfLiteral
from rdflib.namespace import XSD
from rdflib.term import Node

from copkg.errors import CopkgError
from copkg.namespaces import PREFIXES
from copkg.store.terms import OxTerm, serialize, to_ox

Kind = Literal["select", "ask", "graph"]

SPARQL_JSON = "application/sparql-results+json"
SPARQL_XML = "application/sparql-results+xml"
CSV = "text/csv"
TSV = "text/tab-separated-values"

#: Media types of SELECT and ASK results, first one the default.
SOLUTION_MEDIA_TYPES: dict[str, ox.QueryResultsFormat | None] = {
    SPARQL_JSON: None,  # written here, the other three from it through pyoxigraph
    SPARQL_XML: ox.QueryResultsFormat.XML,
    CSV: ox.QueryResultsFormat.CSV,
    TSV: ox.QueryResultsFormat.TSV,
}

#: Media types of graph (CONSTRUCT/DESCRIBE) results, first one the default.
GRAPH_MEDIA_TYPES: dict[str, ox.RdfFormat] = {
    "text/turtle": ox.RdfFormat.TURTLE,
    "application/n-triples": ox.RdfFormat.N_TRIPLES,
    "application/ld+json": ox.RdfFormat.JSON_LD,
    "application/rdf+xml": ox.RdfFormat.RDF_XML,
    "application/trig": ox.RdfFormat.TRIG,
    "application/n-quads": ox.RdfFormat.N_QUADS,
}

_ALIASES = {"application/json": SPARQL_JSON}

#: The named-query API's rows (copkg's own JSON, not a SPARQL results format), as `rows_json`
#: writes them; what a query worker writes for the API, so that no term is read back.
ROWS_JSON = "application/x-copkg-rows+json"

_INTEGER_TYPES = {
    str(XSD[name])
    for name in (
        "integer",
        "int",
        "long",
        "short",
        "byte",
        "nonNegativeInteger",
        "positiveInteger",
        "nonPositiveInteger",
        "negativeInteger",
        "unsignedLong",
        "unsignedInt",
        "unsignedShort",
        "unsignedByte",
    )
}
_FLOAT_TYPES = {str(XSD.decimal), str(XSD.double), str(XSD.float)}
_BOOLEAN = str(XSD.boolean)

Triple = tuple[Node, Node, Node]


@dataclass
class QueryResult:
    """The result of one query: solutions, a boolean or triples."""

    kind: Kind
    variables: list[str] = field(default_factory=list)
    rows: list[dict[str, Node]] = field(default_factory=list)
    boolean: bool | None = None
    triples: list[Triple] = field(default_factory=list)
    truncated: bool = False

    def __len__(self) -> int:
        if self.kind == "select":
            return len(self.rows)
        if self.kind == "graph":
            return len(self.triples)
        return 1

    def media_types(self) -> list[str]:
        """The media types this result can be written as, the default first."""
        if self.kind == "graph":
            return list(GRAPH_MEDIA_TYPES)
        return list(SOLUTION_MEDIA_TYPES)

    def serialize(self, media_type: str | None = None) -> bytes:
        """This result in a standard format (406 when the kind of result cannot take it)."""
        media_type = (media_type or self.media_types()[0]).split(";")[0].strip().lower()
        media_type = _ALIASES.get(media_type, media_type)
        if self.kind == "graph" and media_type in GRAPH_MEDIA_TYPES:
            return self._serialize_graph(GRAPH_MEDIA_TYPES[media_type])
        if self.kind != "graph" and media_type == ROWS_JSON:
            return rows_json(self.variables if self.kind == "select" else [], self.to_json_rows())
        if self.kind != "graph" and media_type in SOLUTION_MEDIA_TYPES:
            body = self._sparql_json()
            fmt = SOLUTION_MEDIA_TYPES[media_type]
            if fmt is None:
                return body
            parsed = ox.parse_query_results(body, ox.QueryResultsFormat.JSON)
            data = parsed.serialize(format=fmt)
            assert data is not None  # None only when written to an output
            return data
        raise CopkgError(f"a {self.kind} result cannot be written as {media_type}", status=406)

    def _sparql_json(self) -> bytes:
        if self.kind == "ask":
            doc: dict[str, Any] = {"head": {}, "boolean": bool(self.boolean)}
        else:
            doc = {
                "head": {"vars": list(self.variables)},
                "results": {
                    "bindings": [
                        {var: _json_term(value) for var, value in row.items() if value is not None}
                        for row in self.rows
                    ]
                },
            }
        return json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode("utf-8")

    def _serialize_graph(self, fmt: ox.RdfFormat) -> bytes:
        if fmt.supports_datasets:
            items: list[Any] = [
                ox.Quad(*(to_ox(t) for t in triple), ox.DefaultGraph())  # type: ignore[arg-type, call-arg]
                for triple in self.triples
            ]
        else:
            items = [ox.Triple(*(to_ox(t) for t in triple)) for triple in self.triples]  # type: ignore[arg-type]
        prefixes = _used_prefixes(self.triples) if fmt in _PREFIXED_FORMATS else None
        return serialize(items, fmt, prefixes)

    @classmethod
    def from_sparql_json(cls, doc: dict[str, Any]) -> QueryResult:
        """A SELECT or ASK result read back from the SPARQL 1.1 Query Results JSON format."""
        if "boolean" in doc:
            return cls("ask", boolean=bool(doc["boolean"]))
        variables = list(doc.get("head", {}).get("vars", []))
        rows = [
            {var: _from_json_term(value) for var, value in binding.items()}
            for binding in doc.get("results", {}).get("bindings", [])
        ]
        return cls("select", variables=variables, rows=rows)

    def to_json_rows(self) -> list[dict[str, Any]]:
        """Plain JSON-friendly rows: IRIs and strings as text, numbers and booleans as such."""
        if self.kind == "ask":
            return [{"boolean": bool(self.boolean)}]
        if self.kind == "graph":
            return [
                {"subject": plain(s), "predicate": plain(p), "object": plain(o)}
                for s, p, o in self.triples
            ]
        return [{var: plain(row.get(var)) for var in self.variables} for row in self.rows]


_PREFIXED_FORMATS = {ox.RdfFormat.TURTLE, ox.RdfFormat.TRIG, ox.RdfFormat.RDF_XML}


def _used_prefixes(triples: list[Triple]) -> dict[str, str]:
    """The copkg prefixes whose namespace starts an IRI of the triples."""
    iris = {str(t) for triple in triples for t in triple if isinstance(t, URIRef)}
    iris |= {
        str(t.datatype)
        for triple in triples
        for t in triple
        if isinstance(t, RdfLiteral) and t.datatype
    }
    return {
        prefix: ns for prefix, ns in PREFIXES.items() if any(iri.startswith(ns) for iri in iris)
    }


def _json_term(value: Node) -> dict[str, str]:
    """One term in the SPARQL 1.1 Query Results JSON format."""
    if isinstance(value, URIRef):
        return {"type": "uri", "value": str(value)}
    if isinstance(value, BNode):
        return {"type": "bnode", "value": str(value)}
    if isinstance(value, RdfLiteral):
        term: dict[str, str] = {"type": "literal", "value": str(value)}
        if value.language:
            term["xml:lang"] = value.language
        elif value.datatype is not None and str(value.datatype) != str(XSD.string):
            term["datatype"] = str(value.datatype)
        return term
    raise CopkgError(f"cannot write {value!r} as a SPARQL result term", status=500)


def _from_json_term(data: dict[str, str]) -> Node:
    """One term of the SPARQL 1.1 Query Results JSON format (the inverse of _json_term)."""
    kind = data.get("type")
    if kind == "uri":
        return URIRef(data["value"])
    if kind == "bnode":
        return BNode(data["value"])
    if "xml:lang" in data:
        return RdfLiteral(data["value"], lang=data["xml:lang"])
    if "datatype" in data:
        return RdfLiteral(data["value"], datatype=URIRef(data["datatype"]), normalize=False)
    return RdfLiteral(data["value"])


def plain(value: Node | None) -> Any:
    """One term as a plain JSON value (None for unbound)."""
    if value is None:
        return None
    if isinstance(value, BNode):
        return f"_:{value}"
    if isinstance(value, RdfLiteral) and value.datatype is not None:
        datatype = str(value.datatype)
        try:
            if datatype in _INTEGER_TYPES:
                return int(str(value))
            if datatype == str(XSD.boolean):
                return str(value).strip() in ("true", "1")
            if datatype in _FLOAT_TYPES:
                number = float(str(value))
                return number if math.isfinite(number) else str(value)
        except ValueError:
            return str(value)
    return str(value)


def plain_term(term: ox.NamedNode | ox.BlankNode | ox.Literal | None) -> Any:
    """`plain` of a pyoxigraph term, without making an rdflib one."""
    if term is None:
        return None
    if isinstance(term, ox.BlankNode):
        return f"_:{term.value}"
    if not isinstance(term, ox.Literal):
        return term.value if isinstance(term, ox.NamedNode) else str(term)
    value, datatype = term.value, term.datatype.value
    try:
        if datatype in _INTEGER_TYPES:
            return int(value)
        if datatype == _BOOLEAN:
            return value.strip() in ("true", "1")
        if datatype in _FLOAT_TYPES:
            number = float(value)
            return number if math.isfinite(number) else value
    except ValueError:
        return value
    return value


def rows_json(variables: list[str], rows: list[dict[str, Any]]) -> bytes:
    """ROWS_JSON: the rows of plain values, a line break, the variables, each as compact JSON
    with sorted keys (as Flask's jsonify writes them)."""
    rows_text = json.dumps(rows, ensure_ascii=True, sort_keys=True, separators=(",", ":"))
    names = json.dumps(variables, ensure_ascii=True, separators=(",", ":"))
    return f"{rows_text}\n{names}".encode()


def solutions_result(
    solutions: Iterable[ox.QuerySolution],
    variables: list[str],
    term: Callable[[OxTerm], Node],
    limit: int | None,
) -> QueryResult:
    """SELECT rows, each bound value read by `term`, at most `limit` (then marked truncated)."""
    rows: list[dict[str, Node]] = []
    for solution in solutions:
        if limit is not None and len(rows) >= limit:
            return QueryResult("select", variables=variables, rows=rows, truncated=True)
        row = {}
        for var in variables:
            value = solution[var]
            if value is not None:
                row[var] = term(value)
        rows.append(row)
    return QueryResult("select", variables=variables, rows=rows)


def triples_result(
    statements: Iterable[ox.Quad | ox.Triple], term: Callable[[OxTerm], Node], limit: int | None
) -> QueryResult:
    """The triples of a CONSTRUCT or DESCRIBE answer, each term read by `term`, at most `limit`
    (then marked truncated)."""
    triples: list[tuple[Node, Node, Node]] = []
    for statement in statements:
        if limit is not None and len(triples) >= limit:
            return QueryResult("graph", triples=triples, truncated=True)
        triples.append((term(statement.subject), term(statement.predicate), term(statement.object)))
    return QueryResult("graph", triples=triples)


def past_deadline() -> CopkgError:
    """The store's own stop at its deadline: the same 503 as the executor's at the limit."""
    return CopkgError(
        "the query passed its time limit and was stopped; try a narrower query",
        status=503,
        headers={"Retry-After": "10"},
    )


def until(results: Iterable[Any], deadline: float | None) -> Iterator[Any]:
    """Iterate results, refusing to go on past the deadline (503 with Retry-After)."""
    for count, item in enumerate(results):
        if deadline is not None and count % 256 == 0 and time.monotonic() > deadline:
            raise past_deadline()
        yield item


class _EnoughError(Exception):
    """More solutions came than the row limit lets through."""


class _Lines:
    """A binary writer for pyoxigraph's TSV serialiser: keeps the header and at most `limit`
    solution lines (then _EnoughError, which stops the serialiser), and refuses to go on past
    the deadline (503)."""

    def __init__(self, limit: int | None, deadline: float | None) -> None:
        self.limit = limit
        self.deadline = deadline
        self.chunks: list[bytes] = []
        self.lines = 0

    def write(self, data: bytes) -> int:
        if self.deadline is not None and time.monotonic() > self.deadline:
            raise past_deadline()
        chunk = bytes(data)
        self.chunks.append(chunk)
        self.lines += chunk.count(b"\n")
        if self.limit is not None and self.lines > self.limit + 1:
            raise _EnoughError
        return len(chunk)

    def flush(self) -> None:
        """Nothing to flush: the lines are kept in memory."""

    def text(self) -> bytes:
        """The header and the solutions kept, whole lines only."""
        tsv = b"".join(self.chunks)
        if self.limit is not None and self.lines > self.limit + 1:
            end = -1
            for _ in range(self.limit + 1):
                end = tsv.index(b"\n", end + 1)
            tsv = tsv[: end + 1]
        return tsv


def write_answer(
    answer: ox.QueryBoolean | ox.QuerySolutions | ox.QueryTriples,
    media_type: str,
    limit: int | None,
    deadline: float | None,
) -> tuple[Kind, bytes, int, bool]:
    """The engine's answer written in `media_type`, at most `limit` rows (or triples): the
    kind, the body, the rows written and whether there were more (406 for a format the kind
    of answer cannot take). Terms stay pyoxigraph's: no rdflib object is made."""
    media_type = media_type.split(";", maxsplit=1)[0].strip().lower()
    media_type = _ALIASES.get(media_type, media_type)
    kind: Kind = (
        "ask"
        if isinstance(answer, ox.QueryBoolean)
        else "select"
        if isinstance(answer, ox.QuerySolutions)
        else "graph"
    )
    offered = GRAPH_MEDIA_TYPES if kind == "graph" else {**SOLUTION_MEDIA_TYPES, ROWS_JSON: None}
    if media_type not in offered:
        raise CopkgError(f"a {kind} result cannot be written as {media_type}", status=406)
    if isinstance(answer, ox.QueryBoolean):
        return kind, QueryResult("ask", boolean=bool(answer)).serialize(media_type), 1, False
    truncated = False
    if isinstance(answer, ox.QuerySolutions) and media_type == ROWS_JSON:
        names = [v.value for v in answer.variables]
        rows = []
        for count, solution in enumerate(until(answer, deadline)):
            if limit is not None and count >= limit:
                truncated = True
                break
            rows.append(dict(zip(names, map(plain_term, solution), strict=True)))
        return kind, rows_json(names, rows), len(rows), truncated
    if isinstance(answer, ox.QuerySolutions):
        # pyoxigraph writes SPARQL TSV, one line a solution (a line break in a literal is
        # escaped), counted on the way
        lines = _Lines(limit, deadline)
        try:
            answer.serialize(lines, format=ox.QueryResultsFormat.TSV)  # type: ignore[arg-type]
        except _EnoughError:
            truncated = True
        tsv = lines.text()
        fmt = SOLUTION_MEDIA_TYPES[media_type] or ox.QueryResultsFormat.JSON
        body = ox.parse_query_results(tsv, ox.QueryResultsFormat.TSV).serialize(format=fmt)
        return kind, body or b"", tsv.count(b"\n") - 1, truncated
    triples: list[ox.Triple] = []
    for count, triple in enumerate(until(answer, deadline)):
        if limit is not None and count >= limit:
            truncated = True
            break
        triples.append(triple)
    rdf_format = GRAPH_MEDIA_TYPES[media_type]
    items: list[Any] = triples
    if rdf_format.supports_datasets:
        graph = ox.DefaultGraph()
        items = [ox.Quad(t.subject, t.predicate, t.object, graph) for t in triples]
    prefixes = _ox_prefixes(triples) if rdf_format in _PREFIXED_FORMATS else None
    body = ox.serialize(items, format=rdf_format, prefixes=prefixes)
    return kind, body or b"", len(triples), truncated


_PLAIN_DATATYPES = {str(XSD.string), "http://www.w3.org/1999/02/22-rdf-syntax-ns#langString"}


def _ox_prefixes(triples: list[ox.Triple]) -> dict[str, str]:
    """The copkg prefixes whose namespace starts an IRI of the triples (pyoxigraph terms)."""
    iris = set()
    for triple in triples:
        for term in triple:
            if isinstance(term, ox.NamedNode):
                iris.add(term.value)
            elif isinstance(term, ox.Literal) and term.datatype.value not in _PLAIN_DATATYPES:
                iris.add(term.datatype.value)
    return {
        prefix: ns for prefix, ns in PREFIXES.items() if any(iri.startswith(ns) for iri in iris)
    }
