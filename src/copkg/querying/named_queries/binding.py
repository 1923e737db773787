"""Turn raw parameter values into RDF terms (validated), and prepare or run a named query
with them: the one way the CLI and the web API run a named query."""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

import pyoxigraph as ox
from rdflib import Literal, URIRef
from rdflib.term import Node

from copkg.errors import CopkgError, Problem
from copkg.namespaces import PREFIXES
from copkg.querying.named_queries.model import XSD, NamedQuery, Parameter
from copkg.querying.named_queries.paging import (
    Fact,
    Page,
    kept,
    keys_fact,
    page_keys,
    past_the_end,
    plan,
)
from copkg.store import QueryResult, Store
from copkg.store.scan import tokens

#: How many allowed values an error message lists.
SHOWN_VALUES = 10

ABSOLUTE_IRI = re.compile(r"^(?:https?://[^\s/?#]+[^\s]*|urn:[A-Za-z0-9][A-Za-z0-9-]{0,31}:\S+)$")
PREFIXED = re.compile(r"^([A-Za-z][\w.-]*)?:([^\s]*)$")

_LEXICAL = {
    XSD + "integer": r"[+-]?\d+",
    XSD + "nonNegativeInteger": r"\+?\d+",
    XSD + "positiveInteger": r"\+?0*[1-9]\d*",
    XSD + "decimal": r"[+-]?(\d+(\.\d*)?|\.\d+)",
    XSD + "double": r"[+-]?((\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?|INF)|-INF|NaN",
    XSD + "float": r"[+-]?((\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?|INF)|-INF|NaN",
    XSD + "boolean": r"true|false|1|0",
    XSD + "date": r"-?\d{4,}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])(Z|[+-]\d{2}:\d{2})?",
    XSD + "dateTime": r"-?\d{4,}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])T"
    r"([01]\d|2[0-3]):[0-5]\d:[0-5]\d(\.\d+)?(Z|[+-]\d{2}:\d{2})?",
    XSD + "time": r"([01]\d|2[0-3]):[0-5]\d:[0-5]\d(\.\d+)?(Z|[+-]\d{2}:\d{2})?",
    XSD + "gYear": r"-?\d{4,}(Z|[+-]\d{2}:\d{2})?",
    XSD + "gYearMonth": r"-?\d{4,}-(0[1-9]|1[0-2])(Z|[+-]\d{2}:\d{2})?",
}
_EXAMPLES = {
    XSD + "integer": "a whole number such as 2004",
    XSD + "date": "a date such as 2004-06-30",
    XSD + "gYear": "a year such as 2004",
    XSD + "boolean": "true or false",
}


def _refuse(param: Parameter, why: str) -> CopkgError:
    message = f"parameter {param.name}: {why}"
    return CopkgError(message, status=400, problems=[Problem(message, path=param.name)])


def expand_iri(value: str) -> str | None:
    """An absolute IRI from an IRI or a prefixed name with a copkg prefix (None if neither)."""
    value = value.strip()
    if value.startswith("<") and value.endswith(">"):
        value = value[1:-1]
    match = PREFIXED.match(value)
    if match and not ABSOLUTE_IRI.match(value) and (match.group(1) or "") in PREFIXES:
        value = PREFIXES[match.group(1) or ""] + match.group(2)
    if not ABSOLUTE_IRI.match(value):
        return None
    try:
        ox.NamedNode(value)  # rejects characters an IRI cannot hold
    except ValueError:
        return None
    return value


def to_term(param: Parameter, value: str) -> Node:
    """One raw value as the RDF term the parameter's type asks for (400 when it cannot be)."""
    if param.kind == "iri":
        iri = expand_iri(value)
        if iri is None:
            known = ", ".join(f"{p}:" for p in PREFIXES)
            raise _refuse(
                param,
                f"{value!r} is not an absolute http(s) or urn IRI, nor a prefixed name with a "
                f"known prefix ({known})",
            )
        return URIRef(iri)
    if param.lang:
        return Literal(value, lang=param.lang)
    if param.datatype and param.datatype != XSD + "string":
        pattern = _LEXICAL.get(param.datatype)
        if pattern and not re.fullmatch(pattern, value.strip()):
            expected = _EXAMPLES.get(param.datatype, f"a valid {param.describe_type()}")
            raise _refuse(param, f"{value!r} is not {expected}")
        lexical = value.strip()
        if param.datatype == XSD + "integer":
            lexical = str(int(lexical))
        return Literal(lexical, datatype=URIRef(param.datatype), normalize=False)
    return Literal(value)


def bind(query: NamedQuery, raw: Mapping[str, str], *, strict: bool = True) -> dict[str, Node]:
    """Validate raw values (by parameter name) and return {variable: RDF term}.

    A missing required parameter takes its header default or is refused (400); an optional one
    left out stays unbound. With `strict`, a name that is no parameter is refused too.
    """
    if strict:
        unknown = sorted(set(raw) - {p.name for p in query.parameters})
        if unknown:
            names = ", ".join(p.name for p in query.parameters) or "none"
            message = f"{query.name} has no parameter {unknown[0]!r} (its parameters: {names})"
            raise CopkgError(message, status=400, problems=[Problem(message, path=unknown[0])])
    bindings: dict[str, Node] = {}
    for param in query.parameters:
        value = raw.get(param.name)
        if value is None or value == "":
            value = param.default
        if value is None:
            if param.required:
                raise _refuse(param, f"is required ({param.describe_type()})")
            continue
        term = to_term(param, value)
        if param.enum is not None and str(term) not in _allowed(param):
            raise _refuse(param, f"{value!r} is not one of: {', '.join(param.enum)}")
        bindings[param.var] = term
    return bindings


@functools.lru_cache(maxsize=256)
def _allowed(param: Parameter) -> frozenset[str]:
    """The terms a parameter's listed values stand for (a header's list never changes)."""
    return frozenset(str(to_term(param, v)) for v in param.enum or ())


def enumeration_query(query: NamedQuery, param: Parameter) -> str:
    """The query's WHERE clause asked for the distinct values of one parameter (grlc style)."""
    toks = tokens(query.text)
    forms = ("SELECT", "CONSTRUCT", "ASK", "DESCRIBE")
    start = next((i for i, t in enumerate(toks) if t.depth == 0 and t.upper in forms), None)
    if start is None:
        raise CopkgError(f"{query.name}: cannot find the query form", status=500)
    k = start + 1
    if toks[start].upper == "CONSTRUCT" and k < len(toks) and toks[k].text == "{":
        k = next(i for i in range(k, len(toks)) if toks[i].depth == 0 and toks[i].text == "}")
    opened = next(i for i in range(k, len(toks)) if toks[i].depth == 0 and toks[i].text == "{")
    closed = next(
        i for i in range(opened + 1, len(toks)) if toks[i].depth == 0 and toks[i].text == "}"
    )
    prologue = query.text[: toks[start].start]
    body = query.text[toks[opened].start : toks[closed].end]
    return f"{prologue}SELECT DISTINCT ?{param.var} WHERE {body} ORDER BY ?{param.var}"


@functools.lru_cache(maxsize=256)
def values_fact(query: NamedQuery, param: Parameter) -> Fact:
    """The fact of the values a parameter with `enumerate` takes in the data
    (`named_values`)."""
    return ("named_values", enumeration_query(query, param), param.var)


def named_values(store: Store, sparql: str, var: str) -> list[str]:
    """The values of `var` in the answer of an enumeration query, in its order (read once per
    read-only store)."""

    def read() -> tuple[str, ...]:
        result = store.query(sparql)
        return tuple(str(row[var]) for row in result.rows if var in row)

    return list(kept(store, ("values", sparql, var), read))


#: The reads of the facts named queries read, by name (a Fact's first member).
FACT_READS: dict[str, Callable[..., list[str]]] = {
    "named_values": named_values,
    "page_keys": page_keys,
}


def read_facts(store: Store, facts: Iterable[Fact]) -> dict[Fact, list[str]]:
    """The facts read on the store itself (the CLI's way; the web's executor runs the same
    reads as jobs)."""
    return {fact: FACT_READS[fact[0]](store, *fact[1:]) for fact in facts}


def allowed_values(
    query: NamedQuery, param: Parameter, facts: Mapping[Fact, Sequence[str]]
) -> list[str]:
    """The allowed values of a parameter: listed in the header, or found in the data (among
    `facts`: `values_fact`)."""
    if param.enum is not None:
        return list(param.enum)
    if not param.enum_from_store:
        return []
    return list(facts[values_fact(query, param)])


def enumerated_values(store: Store, query: NamedQuery, param: Parameter) -> list[str]:
    """The allowed values of a parameter, read on the store itself when found in the data."""
    facts = read_facts(store, [values_fact(query, param)] if param.enum_from_store else [])
    return allowed_values(query, param, facts)


def facts_needed(query: NamedQuery, bindings: Mapping[str, Node], *, whole: bool) -> list[Fact]:
    """The facts of the store a request needs besides its bindings: the values of each
    parameter given that must be in the data, and the keys of its page when it pages over a
    class and its parameter is not given."""
    needed = [
        values_fact(query, p) for p in query.parameters if p.enum_from_store and p.var in bindings
    ]
    if not whole and query.pagination and query.page_over is not None:
        name, cls = query.page_over
        param = query.parameter(name)
        if param is not None and param.var not in bindings:
            needed.append(keys_fact(cls))
    return needed


@dataclass(frozen=True)
class Prepared:
    """A named query ready to run, whoever runs it (the CLI on the store, the web through its
    executor): the text of the page asked for and the terms it still takes."""

    query: NamedQuery
    text: str
    bindings: dict[str, Node]  # every parameter given or defaulted, by variable
    rest: Mapping[str, Node]  # those the text still takes (paging may have written some in)
    page: Page | None

    def check_not_past_end(self, rows: int) -> None:
        """A page of rows past the end is known only once it comes back empty: 404 then."""
        where = self.page
        if where is not None and where.number > 1 and where.last is None and not rows:
            raise past_the_end(where.number, None)


def prepare(
    store: Store,
    query: NamedQuery,
    raw: Mapping[str, str],
    *,
    strict: bool = True,
    page: int | None = None,
    whole: bool = False,
) -> Prepared:
    """Bind the parameters as RDF terms (values the data must hold checked against it) and
    plan the page: with `pagination: N` in the header the answer comes a page at a time, the
    first by default (see paging.py); without it, or with `whole`, whole (and no page). The
    store's facts it needs are read on the store itself (see `prepare_bound`)."""
    bindings = bind(query, raw, strict=strict)
    facts = read_facts(store, facts_needed(query, bindings, whole=whole))
    return prepare_bound(query, raw, bindings, facts, page=page, whole=whole)


def prepare_bound(
    query: NamedQuery,
    raw: Mapping[str, str],
    bindings: dict[str, Node],
    facts: Mapping[Fact, Sequence[str]],
    *,
    page: int | None = None,
    whole: bool = False,
) -> Prepared:
    """`prepare` with the parameters bound (`bind`) and the facts the request needs given
    (`facts_needed`, read by whoever reads the store: the web's executor, or the store)."""
    for param in query.parameters:
        if param.enum_from_store and param.var in bindings:
            allowed = allowed_values(query, param, facts)
            if str(bindings[param.var]) not in allowed:
                shown = ", ".join(allowed[:SHOWN_VALUES])
                shown += " ..." if len(allowed) > SHOWN_VALUES else ""
                raise _refuse(param, f"{raw.get(param.name)!r} is not one of: {shown}")
    if whole:
        return Prepared(query, query.text, bindings, bindings, None)
    text, where, rest = plan(facts, query, bindings, page)
    return Prepared(query, text, bindings, rest, where)


def run_page(
    store: Store,
    query: NamedQuery,
    raw: Mapping[str, str],
    *,
    strict: bool = True,
    page: int | None = None,
    whole: bool = False,
) -> tuple[QueryResult, Page | None]:
    """Run one page of a named query on the store (see `prepare`): the result and the page."""
    prepared = prepare(store, query, raw, strict=strict, page=page, whole=whole)
    result = store.query(prepared.text, bindings=prepared.rest)
    prepared.check_not_past_end(len(result.rows))
    return result, prepared.page
