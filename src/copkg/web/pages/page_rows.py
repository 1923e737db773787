"""A page's queries answered as pyoxigraph terms: on the embedded store, the engine's solutions
as they come, without an rdflib term for each (most of a page's cost before); elsewhere (a
remote store) through store.query, its terms converted back."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

import pyoxigraph as ox
from rdflib.term import Node

from copkg.errors import CopkgError
from copkg.namespaces import PREFIXES
from copkg.store import Store
from copkg.store.embedded import OxigraphStore
from copkg.store.results import until
from copkg.store.scan import bind_values
from copkg.store.terms import from_ox, terms_as_sparql, to_ox

Row = dict[str, Any]  # variable -> pyoxigraph term (unbound ones left out)

#: Each page query with its VALUES blocks written once (scan.bind_values), a placeholder
#: where each bound term goes: the same text as store.query runs, without its lexing a page.
_templates: dict[tuple[str, tuple[str, ...]], str] = {}


def _placeholder(name: str) -> str:
    return f"<urn:copkg:bound:{name}>"


def bound_text(text: str, bindings: Mapping[str, Node | Sequence[Node]]) -> str:
    """The query with its variables bound as store.query binds them (the VALUES blocks of
    scan.bind_values); a list of terms (for one variable only) gives one VALUES row each."""
    names = tuple(sorted(bindings))
    template = _templates.get((text, names))
    if template is None:
        template = bind_values(text, {name: _placeholder(name) for name in names})
        _templates[(text, names)] = template
    for name in names:
        value = bindings[name]
        terms = value if isinstance(value, list | tuple) else [value]
        written = [terms_as_sparql({name: term})[name] for term in terms]
        # bind_values writes `(<placeholder>)`: the rows `(<a>) (<b>)` in its place
        template = template.replace(_placeholder(name), ") (".join(written))
    return template


def page_rows(
    store: Store, text: str, bindings: Mapping[str, Node | Sequence[Node]] | None = None
) -> list[Row]:
    """The solutions of one of the pages' own SELECT queries, as pyoxigraph terms, under the
    store's time and row limits (a row limit cuts the rows as store.query does)."""
    sparql = bound_text(text, bindings) if bindings else text
    if not isinstance(store, OxigraphStore):
        return [
            {name: to_ox(term) for name, term in row.items()} for row in store.query(sparql).rows
        ]
    deadline = time.monotonic() + store.timeout if store.timeout else None
    limit = store.max_rows
    rows: list[Row] = []
    try:
        answer = store.native.query(sparql, use_default_graph_as_union=True, prefixes=PREFIXES)
        assert isinstance(answer, ox.QuerySolutions)
        names = [variable.value for variable in answer.variables]
        for solution in until(answer, deadline):
            if limit is not None and len(rows) >= limit:
                break
            rows.append({n: t for n, t in zip(names, solution, strict=True) if t is not None})
    except (OSError, RuntimeError, ValueError, TypeError, SyntaxError) as exc:
        raise CopkgError(f"query failed: {exc}", status=500) from exc
    return rows


def mentioned(store: Store, iri: Node, ask: str) -> bool:
    """Whether the graph has a statement about or to `iri`: one index lookup each way on the
    embedded store, else the ASK query given (`?s` bound to the IRI)."""
    if not isinstance(store, OxigraphStore):
        return bool(store.query(ask, bindings={"s": iri}).boolean)
    term = to_ox(iri)
    native = store.native
    if next(iter(native.quads_for_pattern(term, None, None)), None) is not None:  # type: ignore[arg-type]
        return True
    return next(iter(native.quads_for_pattern(None, None, term)), None) is not None  # type: ignore[arg-type]


def lexical(term: Any) -> str:
    """A term's value as text (an IRI, a literal's lexical form)."""
    return str(term.value)


def node(term: Any) -> Node | None:
    """A pyoxigraph term as rdflib's (None stays None)."""
    return None if term is None else from_ox(term)
