"""Pages of a named query's answer, computed page by page rather than cut from the whole.

With `pagination: N` alone (grlc), page P is the solutions (P-1)*N+1 .. P*N: the query gets
`LIMIT N OFFSET (P-1)*N`. With `page_over: {study: copkg:Study}` as well, page P binds the
`study` parameter to the P-th N instances of the class in IRI order (one VALUES block), so the
engine joins only their data: the rows of a page are those of its studies, and the number of
pages is known from a cheap count. Giving the parameter itself asks for one value: one page.
The page's studies and the other bound parameters go into ONE VALUES block: with a block of
its own for each, oxigraph 0.5 starts the join from the first (risky-roles at 1,000 studies:
390 ms against 26 ms).
"""

from __future__ import annotations

import functools
import weakref
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar, cast

import pyoxigraph as ox
from rdflib import URIRef
from rdflib.term import Node

from copkg.errors import CopkgError, Problem
from copkg.querying.named_queries.model import NamedQuery
from copkg.store import Store
from copkg.store.scan import bind_values, tokens
from copkg.store.terms import terms_as_sparql

T = TypeVar("T")

# sorted in Python: oxigraph's ORDER BY on 1,000 IRIs takes ~45 ms, the listing ~6 ms
_KEYS = "SELECT ?key WHERE { ?key a ?class }"


@dataclass(frozen=True)
class Page:
    """Where one page sits: its number (from 1), its size and, when known, the last page."""

    number: int
    size: int
    last: int | None = None  # None: unknown (row pages); the next page may be empty
    over: str | None = None  # the parameter a page binds (page_over), if any
    keys: tuple[str, ...] = ()  # the IRIs the page binds it to

    def has_next(self, rows: int) -> bool:
        """Whether a next page exists, given how many rows this page got."""
        if self.last is not None:
            return self.number < self.last
        return rows >= self.size


def past_the_end(page: int, last: int | None) -> CopkgError:
    """The 400 for a page beyond the answer."""
    where = f"the last page is {last}" if last is not None else "the answer ends before it"
    message = f"page {page} is past the end of the answer: {where}"
    return CopkgError(message, status=400, problems=[Problem(message, path="page")])


def kept(store: Store, key: Hashable, compute: Callable[[], T]) -> T:
    """`compute()`, once for a store that cannot change (read-only: a build's, say), every
    time for one that can."""
    if not getattr(store, "read_only", False):
        return compute()
    try:
        memo = _KEPT.setdefault(store, {})
    except TypeError:  # a store that cannot be weakly referenced
        return compute()
    if key not in memo:
        memo[key] = compute()
    return cast(T, memo[key])


def store_identity(store: Store) -> str | None:
    """The identity of a store that cannot change: the identity of the build it was opened
    from (pipeline.load_build sets it from the manifest), else None."""
    if not getattr(store, "read_only", False):
        return None
    return getattr(store, "build_identity", None)


#: What `kept` keeps, by store (dropped with the store).
_KEPT: weakref.WeakKeyDictionary[Any, dict[Hashable, Any]] = weakref.WeakKeyDictionary()


#: A fact of the whole store a named query reads before it runs (the values a parameter may
#: take, the keys its pages run over): the name of its read (FACT_READS, run as a page read of
#: copkg.querying.pages.reads by the web's executor) and the read's plain arguments. A fact
#: changes only with the store: a build's is read once.
Fact = tuple[str, ...]


def keys_fact(cls: str) -> Fact:
    """The fact of the keys the pages over `cls` run over (`page_keys`)."""
    return ("page_keys", cls)


def page_keys(store: Store, cls: str) -> list[str]:
    """The IRIs of the instances of `cls`, in IRI order: what pages run over (read once per
    read-only store)."""

    def read() -> tuple[str, ...]:
        rows = store.query(_KEYS, bindings={"class": URIRef(cls)}).rows
        # code point order is the UTF-8 byte order oxigraph sorts IRIs in
        return tuple(sorted({str(row["key"]) for row in rows if isinstance(row["key"], URIRef)}))

    return list(kept(store, ("page keys", cls), read))


def plan(
    facts: Mapping[Fact, Sequence[str]],
    query: NamedQuery,
    bindings: Mapping[str, Node],
    number: int | None,
) -> tuple[str, Page | None, Mapping[str, Node]]:
    """The SPARQL text that computes page `number` (1 when None), where the page sits, and
    the bindings still to give the store with that text (none when the page wrote them in).
    The keys of pages over a class are among `facts` (`keys_fact`).

    A query without `pagination` is returned whole (no page). A `page_over` parameter that is
    bound already makes the answer one page.
    """
    if not query.pagination:
        return query.text, None, bindings
    number = 1 if number is None else number
    if number < 1:
        raise CopkgError(
            "page must be a whole number from 1",
            status=400,
            problems=[Problem(f"page={number}", path="page")],
        )
    size = query.pagination
    if query.page_over is None:
        return _limited(query.text, size, (number - 1) * size), Page(number, size), bindings
    name, cls = query.page_over
    param = query.parameter(name)
    assert param is not None  # checked when the header was read
    if param.var in bindings:
        if number > 1:
            raise past_the_end(number, 1)
        key = str(bindings[param.var])
        return query.text, Page(1, size, last=1, over=name, keys=(key,)), bindings
    keys = facts[keys_fact(cls)]
    last = max(1, -(-len(keys) // size))
    if number > last:
        raise past_the_end(number, last)
    chosen = keys[(number - 1) * size : number * size]
    # an empty corpus still binds the variable, to nothing: no rows rather than every row
    values: dict[str, str | list[str]] = dict(terms_as_sparql(bindings))
    values[param.var] = [str(ox.NamedNode(k)) for k in chosen]
    text = bind_values(query.text, values)
    return text, Page(number, size, last=last, over=name, keys=tuple(chosen)), {}


def _limited(sparql: str, limit: int, offset: int) -> str:
    """The query with its solutions cut to `limit` from `offset` (an existing cut composes)."""
    form = _own_cut(sparql)
    if form is not None:
        prologue, rest = sparql[:form], sparql[form:]
        return f"{prologue}SELECT * WHERE {{ {rest}\n}}\nLIMIT {limit} OFFSET {offset}\n"
    return f"{sparql.rstrip()}\nLIMIT {limit} OFFSET {offset}\n"


@functools.lru_cache(maxsize=64)
def _own_cut(sparql: str) -> int | None:
    """Where the query form starts, if the query cuts its solutions itself (LIMIT, OFFSET)."""
    outer = [t for t in tokens(sparql) if t.depth == 0 and t.kind == "word"]
    if any(t.upper in ("LIMIT", "OFFSET") for t in outer):
        form = next(t for t in outer if t.upper in ("SELECT", "CONSTRUCT", "ASK", "DESCRIBE"))
        return form.start
    return None
