"""Read queries and updates before they run: refuse what could reach outside the store.

Queries are read by `copkg.store.lexer`, token by token as the engine reads them (never by
another parser, which could read a different query into the same text):

- SERVICE is refused unless its endpoint is an allowed absolute IRI, LOAD always
  (`copkg.store.scan.check_remote_calls`, the check the store itself runs on the final text);
- FROM / FROM NAMED / USING / USING NAMED must name a graph of the store (nothing is fetched);
- an undeclared prefix is named, with the prefixes that are predeclared.

The reading also tells the query form and the dataset its FROM clauses describe. Updates (which
need the update token) are parsed by rdflib as well, for their operations and USING clauses.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import urljoin

import pyoxigraph as ox
from pyparsing import ParseBaseException, ParseResults
from rdflib.plugins.sparql.parserutils import CompValue
from rdflib.term import URIRef

from copkg.errors import CopkgError, Problem
from copkg.namespaces import PREFIXES
from copkg.rdf_io import parse_sparql_update
from copkg.store.lexer import Token, iri_value, position, tokens
from copkg.store.scan import check_remote_calls

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


def _is_update(sparql: str) -> bool:
    try:
        parse_sparql_update(sparql)
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

    def resolve_pname(self, prefix: str, local: str) -> str:
        """The IRI `prefix:local` stands for; an undeclared prefix is a 400 that names it."""
        if prefix not in self.prefixes:
            known = ", ".join(f"{p}:" for p in sorted(PREFIXES))
            raise CopkgError(
                f"unknown prefix {prefix}: in {prefix}:{local}; declare it "
                f"(PREFIX {prefix}: <...>) or use a predeclared one ({known})",
                status=400,
            )
        return self.prefixes[prefix] + local

    def resolve(self, term: Any, where: str) -> str:
        """The absolute IRI a parse-tree term (an IRI or a prefixed name) stands for."""
        if isinstance(term, CompValue) and term.name == "pname":
            return self.resolve_pname(_field(term, "prefix") or "", _field(term, "localname") or "")
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


#: An IRI's scheme, as urlsplit finds one (an ASCII letter, then letters, digits, + - .).
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*:")


def _is_relative(iri: str) -> bool:
    return _SCHEME.match(iri) is None


def _check_tree(tree: Any, names: Names, what: str) -> bool:
    """Check the prefixed names of a parse tree; say whether any IRI is relative."""
    relative = False
    try:
        for item in _walk(tree):
            if isinstance(item, URIRef):
                relative = relative or _is_relative(str(item))
            elif isinstance(item, CompValue) and item.name == "pname":
                names.resolve(item, "a prefixed name")
    except RecursionError as exc:
        raise _too_deep(what) from exc
    return relative


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


_FORMS = ("SELECT", "ASK", "CONSTRUCT", "DESCRIBE")
_FORM_NAMES = {
    "SELECT": "SelectQuery",
    "ASK": "AskQuery",
    "CONSTRUCT": "ConstructQuery",
    "DESCRIBE": "DescribeQuery",
}


#: How deeply brackets and unary operators may nest: the engine's parser recurses on each level
#: (and a worker's stack is finite); the queries people write stay far below this.
MAX_NESTING = 200

_OPENERS = {"{": "}", "(": ")", "[": "]"}
_UNARY = {"!", "^", "-", "+"}


def _check_nesting(sparql: str, toks: list[Token]) -> None:
    depth = run = 0
    for tok in toks:
        if tok.text in _OPENERS:
            depth += 1
        elif tok.text in ("}", ")", "]"):
            depth = max(depth - 1, 0)
        run = run + 1 if tok.text in _UNARY else 0
        if depth + run > MAX_NESTING:
            line, column = position(sparql, tok.start)
            raise CopkgError(
                f"the SPARQL query is nested too deeply: more than {MAX_NESTING} levels "
                f"at line {line}, column {column}",
                status=400,
            )


def _prologue(toks: list[Token], names: Names) -> int:
    """Read BASE and PREFIX declarations into `names`; the index of the first other token."""
    i = 0
    while i < len(toks) and toks[i].kind in ("word", "pname"):
        upper = toks[i].upper
        if upper == "BASE" and i + 1 < len(toks) and toks[i + 1].kind == "iri":
            names.base = names.absolute(iri_value(toks[i + 1]))
            i += 2
        elif (
            upper == "PREFIX"
            and i + 2 < len(toks)
            and toks[i + 1].kind == "pname"
            and toks[i + 1].text.endswith(":")
            and toks[i + 1].text.count(":") == 1
            and toks[i + 2].kind == "iri"
        ):
            names.prefixes[toks[i + 1].text[:-1]] = names.absolute(iri_value(toks[i + 2]))
            i += 3
        elif upper.startswith(("BASE", "PREFIX")):
            raise CopkgError(
                f"cannot read the declaration {toks[i].text!r}: write BASE <iri> or "
                "PREFIX name: <iri>, separated by white space",
                status=400,
            )
        else:
            break
    return i


def _dataset_target(toks: list[Token], j: int, keyword: str, names: Names) -> str:
    if j >= len(toks) or toks[j].kind not in ("iri", "pname"):
        raise CopkgError(f"{keyword} must be followed by a graph IRI", status=400)
    if toks[j].kind == "iri":
        return names.absolute(iri_value(toks[j]))
    prefix, _, local = toks[j].text.partition(":")
    return names.resolve_pname(prefix, local)


def _dataset_clauses(
    toks: list[Token], names: Names, graphs: Collection[str] | None, keywords: tuple[str, str]
) -> tuple[list[str], list[str]]:
    """The graphs named by FROM / FROM NAMED (or USING / USING NAMED) outside any group; a
    name that only begins with the keyword (`FROMex:g`) is refused, as an engine may read it
    as the keyword."""
    default: list[str] = []
    named: list[str] = []
    keyword, named_keyword = keywords
    for i, tok in enumerate(toks):
        if tok.depth or tok.kind not in ("word", "pname") or not tok.upper.startswith(keyword):
            continue
        if tok.upper != keyword:
            raise CopkgError(
                f"cannot read {tok.text!r}: write {keyword} <iri> with a space", status=400
            )
        j = i + 1
        if j < len(toks) and toks[j].upper.startswith("NAMED"):
            if toks[j].upper != "NAMED":
                raise CopkgError(
                    f"cannot read {toks[j].text!r}: write {named_keyword} <iri> with a space",
                    status=400,
                )
            iri = _dataset_target(toks, j + 1, named_keyword, names)
            if graphs is not None:
                check_graph_iri(iri, graphs, named_keyword)
            named.append(iri)
        else:
            iri = _dataset_target(toks, j, keyword, names)
            if graphs is not None:
                check_graph_iri(iri, graphs, keyword)
            default.append(iri)
    return default, named


def analyse_query(
    sparql: str,
    *,
    graphs: Collection[str] | None,
    allowed_service_endpoints: Collection[str] = (),
    base: str | None = None,
) -> QueryPlan:
    """Read `sparql` as the engine will, refuse unsafe SERVICE / LOAD / FROM, and say what
    kind of result it gives. Syntax errors beyond the tokens are left to the engine.
    `graphs` None: no store at hand, FROM clauses are left to be checked when it runs."""
    check_remote_calls(sparql, tuple(allowed_service_endpoints))
    toks = tokens(sparql)
    _check_nesting(sparql, toks)
    names = Names(base)
    first = _prologue(toks, names)
    if first >= len(toks):
        raise CopkgError("the request holds no query, only declarations", status=400)
    form = toks[first].upper
    if toks[first].kind != "word" or form not in _FORMS:
        if _is_update(sparql):
            raise CopkgError(f"this is a SPARQL update, not a query: {UPDATE_HINT}", status=403)
        line, column = position(sparql, toks[first].start)
        why = f"expected SELECT, ASK, CONSTRUCT or DESCRIBE, found {toks[first].text!r}"
        raise CopkgError(
            f"SPARQL syntax error at line {line}, column {column}: {why}",
            status=400,
            problems=[Problem(why, line=line, column=column)],
        )
    for tok in toks:
        if tok.kind == "pname":
            prefix, _, local = tok.text.partition(":")
            try:
                names.resolve_pname(prefix, local)
            except CopkgError as error:
                line, column = position(sparql, tok.start)
                raise CopkgError(
                    f"SPARQL syntax error at line {line}, column {column}: {error.message}",
                    status=400,
                    problems=[Problem(error.message, line=line, column=column)],
                ) from error
    from_graphs, from_named = _dataset_clauses(toks, names, graphs, ("FROM", "FROM NAMED"))
    relative = any(t.kind == "iri" and _is_relative(iri_value(t)) for t in toks)
    name = _FORM_NAMES[form]
    return QueryPlan(name, _KINDS[name], tuple(from_graphs), tuple(from_named), relative)


def analyse_update(
    sparql: str,
    *,
    graphs: Collection[str],
    allowed_service_endpoints: Collection[str] = (),
    base: str | None = None,
) -> UpdatePlan:
    """Parse an update; refuse LOAD, unsafe SERVICE and USING of graphs the store lacks."""
    check_remote_calls(sparql, tuple(allowed_service_endpoints))
    try:
        parsed = parse_sparql_update(sparql)
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
            relative = _check_tree([decls, operation], names, "update") or relative
    except RecursionError as exc:
        raise _too_deep("update") from exc
    return UpdatePlan(tuple(operations), names_dataset, relative)


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
    previous = ""
    last = 0
    for token in tokens(sparql):
        if token.depth == 0 and token.upper == "WHERE" and previous != "DELETE":
            # DELETE WHERE takes no USING
            pieces.append(sparql[last : token.start])
            pieces.append(f"{clause} ")
            last = token.start
        previous = token.upper
    pieces.append(sparql[last:])
    rewritten = "".join(pieces)
    _check_rewrite(sparql, rewritten, default_graphs, named_graphs, base)
    return rewritten


def _using_of(sparql: str, base: str | None) -> list[tuple[str, list[tuple[str, str]]]]:
    parsed = parse_sparql_update(sparql)
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
