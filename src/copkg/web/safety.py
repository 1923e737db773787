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
from urllib.parse import urljoin, urlsplit

import pyoxigraph as ox
from pyparsing import ParseBaseException, ParseResults
from rdflib.plugins.sparql.parser import parseQuery, parseUpdate
from rdflib.plugins.sparql.parserutils import CompValue
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
    relative_iris: bool = False  # needs a base IRI

    @property
    def has_dataset(self) -> bool:
        return bool(self.from_graphs or self.from_named_graphs)


@dataclass(frozen=True)
class UpdatePlan:
    """What the parser learnt about an update that may run."""

    operations: tuple[str, ...]
    names_dataset: bool  # some operation has WITH, USING or USING NAMED
    relative_iris: bool = False  # needs a base IRI


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


class Names:
    """The prologue of a query or update: its base IRI and prefixes (the predeclared ones,
    then PREFIX declarations in order), used to resolve the IRIs the checks look at.

    (rdflib's Prologue keeps one prefix a namespace, so `PREFIX dc: <.../dc/terms/>` would
    hide the predeclared `dcterms:`; SPARQL and the store allow both.)
    """

    def __init__(self, base: str | None) -> None:
        self.base = base
        self.prefixes: dict[str, str] = dict(PREFIXES)

    def declare(self, decls: Any) -> Names:
        for decl in decls or ():
            if decl.name == "Base":
                self.base = self.absolute(str(decl["iri"]))
            elif decl.name == "PrefixDecl":
                self.prefixes[_field(decl, "prefix") or ""] = self.absolute(str(decl["iri"]))
        return self

    def absolute(self, iri: str) -> str:
        return urljoin(self.base, iri) if self.base and _is_relative(iri) else iri

    def resolve(self, term: Any, where: str) -> str:
        """The absolute IRI a parse-tree term (an IRI or a prefixed name) stands for."""
        if isinstance(term, CompValue) and term.name == "pname":
            prefix = _field(term, "prefix") or ""
            local = _field(term, "localname") or ""
            if prefix not in self.prefixes:
                known = ", ".join(f"{p}:" for p in sorted(PREFIXES))
                raise CopkgError(
                    f"unknown prefix {prefix}: in {prefix}:{local}; declare it "
                    f"(PREFIX {prefix}: <...>) or use a predeclared one ({known})",
                    status=400,
                )
            return self.prefixes[prefix] + local
        if isinstance(term, URIRef):
            return self.absolute(str(term))
        raise CopkgError(f"{where} must name an IRI, not {term}", status=400)


def _field(node: CompValue, key: str) -> Any:
    """A field of a parse-tree node, or None (CompValue.get(key) would return the key)."""
    return OrderedDict.get(node, key)


def _walk(node: Any) -> Iterator[Any]:
    """Every node and leaf of a parse tree, depth first (subqueries, EXISTS, ... included)."""
    stack = [node]
    while stack:
        item = stack.pop()
        yield item
        if isinstance(item, list | tuple | ParseResults):  # before Mapping: ParseResults is one
            stack.extend(item)
        elif isinstance(item, Mapping):  # CompValue is an OrderedDict
            stack.extend(item.values())


def _is_relative(iri: str) -> bool:
    return not urlsplit(iri).scheme


def _check_tree(tree: Any, names: Names, allowed: Collection[str], what: str) -> bool:
    """Check SERVICE endpoints and prefixed names; say whether any IRI is relative."""
    relative = False
    try:
        for item in _walk(tree):
            if isinstance(item, URIRef):
                relative = relative or _is_relative(str(item))
            elif isinstance(item, CompValue):
                if item.name == "ServiceGraphPattern":
                    _check_service(item, names, allowed)
                elif item.name == "pname":
                    names.resolve(item, "a prefixed name")
    except RecursionError as exc:
        raise _too_deep(what) from exc
    return relative


def _check_service(node: CompValue, names: Names, allowed: Collection[str]) -> None:
    term = _field(node, "term")
    if isinstance(term, Variable):
        raise CopkgError(
            f"SERVICE ?{term} is not allowed: a federated endpoint must be a listed IRI",
            status=400,
        )
    endpoint = names.resolve(term, "SERVICE")
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
    """Graph IRIs given as protocol parameters are absolute IRIs; never file: IRIs."""
    for iri in iris or ():
        if iri.lower().startswith("file:"):
            raise CopkgError(f"{parameter}={iri}: file: IRIs are never read", status=400)
        try:
            ox.NamedNode(iri)
        except ValueError as exc:
            raise CopkgError(
                f"{parameter}={iri!r} is not an absolute IRI: {exc}", status=400
            ) from exc


def analyse_query(
    sparql: str,
    *,
    graphs: Collection[str],
    allowed_service_endpoints: Collection[str] = (),
    base: str | None = None,
) -> QueryPlan:
    """Parse `sparql`, refuse unsafe SERVICE / FROM, and say what kind of result it gives."""
    parsed = _parse_query(sparql)
    names = Names(base).declare(parsed[0])
    body: CompValue = parsed[1]
    from_graphs: list[str] = []
    from_named: list[str] = []
    try:
        for clause in _field(body, "datasetClause") or ():
            if _field(clause, "default") is not None:
                iri = names.resolve(clause["default"], "FROM")
                check_graph_iri(iri, graphs, "FROM")
                from_graphs.append(iri)
            else:
                iri = names.resolve(clause["named"], "FROM NAMED")
                check_graph_iri(iri, graphs, "FROM NAMED")
                from_named.append(iri)
    except RecursionError as exc:
        raise _too_deep("query") from exc
    relative = _check_tree(parsed, names, allowed_service_endpoints, "query")
    return QueryPlan(body.name, _KINDS[body.name], tuple(from_graphs), tuple(from_named), relative)


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
    names_dataset = relative = False
    names = Names(base)
    try:
        for decls, operation in zip(parsed.prologue, _field(parsed, "request") or (), strict=False):
            names.declare(decls)
            operations.append(operation.name)
            if operation.name == "Load":
                raise CopkgError(
                    "LOAD is not allowed: the service never fetches or reads files", status=400
                )
            if _field(operation, "withClause") is not None or _field(operation, "using"):
                names_dataset = True
            for clause in _field(operation, "using") or ():
                if _field(clause, "default") is not None:
                    iri = names.resolve(clause["default"], "USING")
                    check_graph_iri(iri, graphs, "USING")
                else:
                    iri = names.resolve(clause["named"], "USING NAMED")
                    check_graph_iri(iri, graphs, "USING NAMED")
            relative = (
                _check_tree([decls, operation], names, allowed_service_endpoints, "update")
                or relative
            )
    except RecursionError as exc:
        raise _too_deep("update") from exc
    return UpdatePlan(tuple(operations), names_dataset, relative)


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
    names = Names(base)
    for decls, operation in zip(parsed.prologue, _field(parsed, "request") or (), strict=False):
        names.declare(decls)
        using = [
            ("default", names.resolve(c["default"], "USING"))
            if _field(c, "default") is not None
            else ("named", names.resolve(c["named"], "USING NAMED"))
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
