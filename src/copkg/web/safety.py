"""Parse queries and updates before they run: refuse what could reach outside the store.

Everything here works on rdflib's SPARQL parse tree (comments and strings are gone, prefixed
names and relative IRIs are resolved through the query's own prologue), never on raw text:

- SERVICE is refused unless its endpoint IRI is in `allowed_service_endpoints`;
- FROM / FROM NAMED / USING / USING NAMED must name a graph of the store (nothing is fetched);
- LOAD is refused, and so is any `file:` IRI in those positions.

The parse also tells the kind of result a query gives (for content negotiation) and the
dataset its FROM clauses describe.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from pyparsing import ParseBaseException
from rdflib.plugins.sparql.algebra import translatePrologue
from rdflib.plugins.sparql.parser import parseQuery, parseUpdate
from rdflib.plugins.sparql.parserutils import CompValue
from rdflib.plugins.sparql.sparql import Prologue
from rdflib.term import URIRef, Variable

from copkg.errors import CopkgError, Problem
from copkg.namespaces import PREFIXES

ResultKind = Literal["select", "ask", "graph"]

_KINDS: dict[str, ResultKind] = {
    "SelectQuery": "select",
    "AskQuery": "ask",
    "ConstructQuery": "graph",
    "DescribeQuery": "graph",
}

UPDATE_HINT = "updates go to POST /update with an Authorization: Bearer token"


@dataclass(frozen=True)
class QueryPlan:
    """What the parser learnt about a query that may run."""

    form: str
    kind: ResultKind
    from_graphs: tuple[str, ...] = ()
    from_named_graphs: tuple[str, ...] = ()

    @property
    def has_dataset(self) -> bool:
        return bool(self.from_graphs or self.from_named_graphs)


@dataclass(frozen=True)
class UpdatePlan:
    """What the parser learnt about an update that may run."""

    operations: tuple[str, ...]
    names_dataset: bool  # some operation has WITH, USING or USING NAMED


def syntax_error(exc: ParseBaseException, what: str = "query") -> CopkgError:
    """A 400 carrying the parser's message and position (line and column, 1-based)."""
    found = f", found {exc.found}" if getattr(exc, "found", "") else ""
    message = f"{exc.msg}{found}"
    return CopkgError(
        f"SPARQL {what} syntax error at line {exc.lineno}, column {exc.col}: {message}",
        status=400,
        problems=[Problem(message, line=exc.lineno, column=exc.col)],
    )


def _too_deep(what: str) -> CopkgError:
    return CopkgError(f"the SPARQL {what} is nested too deeply to be analysed", status=400)


def _parse_query(sparql: str) -> CompValue:
    try:
        return parseQuery(sparql)
    except ParseBaseException as exc:
        error = syntax_error(exc)
    except RecursionError as exc:
        raise _too_deep("query") from exc
    if _is_update(sparql):
        raise CopkgError(f"this is a SPARQL update, not a query: {UPDATE_HINT}", status=403)
    raise error


def _is_update(sparql: str) -> bool:
    try:
        parseUpdate(sparql)
    except (ParseBaseException, RecursionError):
        return False
    return True


def _prologue(decls: Any, base: str | None, previous: Prologue | None = None) -> Prologue:
    try:
        return translatePrologue(decls, base, dict(PREFIXES), previous)
    except Exception as exc:  # rdflib raises plain Exceptions for bad declarations
        raise CopkgError(f"bad SPARQL prologue: {exc}", status=400) from exc


def _resolve(prologue: Prologue, term: Any, where: str) -> str:
    """The absolute IRI a parse-tree term (IRI or prefixed name) stands for."""
    try:
        iri = prologue.absolutize(term)
    except Exception as exc:  # "Unknown namespace prefix : x"
        raise CopkgError(f"{where}: {exc}", status=400) from exc
    if not isinstance(iri, URIRef):
        raise CopkgError(f"{where} must name an IRI, not {term}", status=400)
    return str(iri)


def _field(node: CompValue, key: str) -> Any:
    """A field of a parse-tree node, or None (CompValue.get(key) would return the key)."""
    return OrderedDict.get(node, key)


def _walk(node: Any) -> Iterator[CompValue]:
    """Every CompValue of a parse tree, depth first (subqueries, EXISTS, ... included)."""
    stack = [node]
    while stack:
        item = stack.pop()
        if isinstance(item, CompValue):
            yield item
            stack.extend(item.values())
        elif isinstance(item, Mapping):
            stack.extend(item.values())
        elif isinstance(item, list | tuple) or (
            hasattr(item, "asList") and not isinstance(item, str)
        ):
            stack.extend(item)


def _check_service(node: CompValue, prologue: Prologue, allowed: Collection[str]) -> None:
    term = _field(node, "term")
    if isinstance(term, Variable):
        raise CopkgError(
            f"SERVICE ?{term} is not allowed: a federated endpoint must be a listed IRI",
            status=400,
        )
    endpoint = _resolve(prologue, term, "SERVICE")
    if endpoint not in allowed:
        listed = ", ".join(sorted(allowed)) or "none"
        raise CopkgError(
            f"SERVICE <{endpoint}> is not allowed: this endpoint queries only its own store "
            f"(allowed federated endpoints: {listed})",
            status=400,
        )


def check_graph_iri(iri: str, graphs: Collection[str], keyword: str) -> None:
    """Refuse a dataset IRI that is a file or not a graph of the store (nothing is fetched)."""
    if iri.lower().startswith("file:"):
        raise CopkgError(f"{keyword} <{iri}>: file: IRIs are never read", status=400)
    if iri not in graphs:
        raise CopkgError(
            f"{keyword} <{iri}> is not a graph of this store (nothing is fetched); "
            "the named graphs are listed by GET /sparql",
            status=400,
        )


def check_protocol_graphs(iris: Sequence[str] | None, parameter: str) -> None:
    """Graph IRIs given as protocol parameters name graphs of the store; never file: IRIs."""
    for iri in iris or ():
        if iri.lower().startswith("file:"):
            raise CopkgError(f"{parameter}={iri}: file: IRIs are never read", status=400)


def analyse_query(
    sparql: str,
    *,
    graphs: Collection[str],
    allowed_service_endpoints: Collection[str] = (),
    base: str | None = None,
) -> QueryPlan:
    """Parse `sparql`, refuse unsafe SERVICE / FROM, and say what kind of result it gives."""
    parsed = _parse_query(sparql)
    prologue = _prologue(parsed[0], base)
    body: CompValue = parsed[1]
    from_graphs: list[str] = []
    from_named: list[str] = []
    try:
        for clause in _field(body, "datasetClause") or ():
            if _field(clause, "default") is not None:
                iri = _resolve(prologue, clause["default"], "FROM")
                check_graph_iri(iri, graphs, "FROM")
                from_graphs.append(iri)
            else:
                iri = _resolve(prologue, clause["named"], "FROM NAMED")
                check_graph_iri(iri, graphs, "FROM NAMED")
                from_named.append(iri)
        for node in _walk(body):
            if node.name == "ServiceGraphPattern":
                _check_service(node, prologue, allowed_service_endpoints)
    except RecursionError as exc:
        raise _too_deep("query") from exc
    return QueryPlan(body.name, _KINDS[body.name], tuple(from_graphs), tuple(from_named))


def analyse_update(
    sparql: str,
    *,
    graphs: Collection[str],
    allowed_service_endpoints: Collection[str] = (),
    base: str | None = None,
) -> UpdatePlan:
    """Parse an update; refuse LOAD, unsafe SERVICE and USING of graphs the store lacks."""
    try:
        parsed = parseUpdate(sparql)
    except ParseBaseException as exc:
        raise syntax_error(exc, "update") from exc
    except RecursionError as exc:
        raise _too_deep("update") from exc
    operations: list[str] = []
    names_dataset = False
    prologue: Prologue | None = None
    try:
        for decls, operation in zip(parsed.prologue, _field(parsed, "request") or (), strict=False):
            prologue = _prologue(decls, base, prologue)
            operations.append(operation.name)
            if operation.name == "Load":
                raise CopkgError(
                    "LOAD is not allowed: the service never fetches or reads files", status=400
                )
            if _field(operation, "withClause") is not None or _field(operation, "using"):
                names_dataset = True
            for clause in _field(operation, "using") or ():
                if _field(clause, "default") is not None:
                    iri = _resolve(prologue, clause["default"], "USING")
                    check_graph_iri(iri, graphs, "USING")
                else:
                    iri = _resolve(prologue, clause["named"], "USING NAMED")
                    check_graph_iri(iri, graphs, "USING NAMED")
            for node in _walk(operation):
                if node.name == "ServiceGraphPattern":
                    _check_service(node, prologue, allowed_service_endpoints)
    except RecursionError as exc:
        raise _too_deep("update") from exc
    return UpdatePlan(tuple(operations), names_dataset)


# A tokenizer good enough to find the top-level WHERE keywords of an update that the parser has
# already accepted: it skips comments, strings and IRIs so that braces inside them do not count.
_TOKEN = re.compile(
    r"""
    (?P<comment>\#[^\n\r]*)
  | (?P<string>'''(?:[^'\\]|\\.|'(?!''))*'''|\"\"\"(?:[^"\\]|\\.|"(?!""))*\"\"\"
               |'(?:[^'\\\n\r]|\\.)*'|"(?:[^"\\\n\r]|\\.)*")
  | (?P<iri><[^<>"{}|^`\\\x00-\x20']*>)
  | (?P<word>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<open>\{)
  | (?P<close>\})
  | (?P<other>.)
    """,
    re.VERBOSE | re.DOTALL,
)


def with_using(
    sparql: str,
    default_graphs: Sequence[str],
    named_graphs: Sequence[str],
    *,
    base: str | None = None,
) -> str:
    """The update with `USING` / `USING NAMED` clauses for the protocol's
    using-graph-uri / using-named-graph-uri parameters added to every DELETE/INSERT ... WHERE.

    The rewrite is checked by parsing it again: each Modify operation must now carry exactly
    the requested clauses and nothing else may have changed, or the request is refused (400).
    """
    clause = " ".join(
        [f"USING <{iri}>" for iri in default_graphs]
        + [f"USING NAMED <{iri}>" for iri in named_graphs]
    )
    pieces: list[str] = []
    depth = 0
    previous = ""
    last = 0
    for match in _TOKEN.finditer(sparql):
        kind, text = match.lastgroup, match.group()
        if kind == "open":
            depth += 1
        elif kind == "close":
            depth -= 1
        elif kind == "word" and depth == 0 and text.upper() == "WHERE" and previous != "DELETE":
            # DELETE WHERE takes no USING
            pieces.append(sparql[last : match.start()])
            pieces.append(f"{clause} ")
            last = match.start()
        if kind != "comment" and not text.isspace():
            previous = text.upper()
    pieces.append(sparql[last:])
    rewritten = "".join(pieces)
    _check_rewrite(sparql, rewritten, default_graphs, named_graphs, base)
    return rewritten


def _using_of(sparql: str, base: str | None) -> list[tuple[str, list[tuple[str, str]]]]:
    parsed = parseUpdate(sparql)
    result = []
    prologue: Prologue | None = None
    for decls, operation in zip(parsed.prologue, _field(parsed, "request") or (), strict=False):
        prologue = _prologue(decls, base, prologue)
        using = [
            ("default", _resolve(prologue, c["default"], "USING"))
            if _field(c, "default") is not None
            else ("named", _resolve(prologue, c["named"], "USING NAMED"))
            for c in _field(operation, "using") or ()
        ]
        result.append((operation.name, using))
    return result


def _check_rewrite(
    original: str,
    rewritten: str,
    default_graphs: Sequence[str],
    named_graphs: Sequence[str],
    base: str | None,
) -> None:
    expected_using = [("default", g) for g in default_graphs] + [("named", g) for g in named_graphs]
    before = _using_of(original, base)
    try:
        after = _using_of(rewritten, base)
    except ParseBaseException:
        after = []
    expected = [(name, expected_using if name == "Modify" else using) for name, using in before]
    if after != expected:
        raise CopkgError(
            "cannot apply using-graph-uri / using-named-graph-uri to this update; "
            "write USING clauses in the update instead",
            status=400,
        )
