"""Running a named query at /api/queries/<name>, without a web framework: what a request asks
(the query, its parameters bound as terms, the page, the format) and the answer made of the
worker's. Flask's view (copkg.web.api) and the front's direct path (copkg.web.direct) both call
these, so there is one reading of the parameters, one set of page links and one JSON shape.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from rdflib.term import Node

from copkg.errors import CopkgError, Problem
from copkg.querying.executor import Answer, Job
from copkg.querying.named_queries import (
    Fact,
    NamedQuery,
    Page,
    Prepared,
    bind,
    facts_needed,
    prepare_bound,
)
from copkg.store.results import CSV, ROWS_JSON, SPARQL_JSON, plain
from copkg.web.negotiation import best_offer_of
from copkg.web.protocol import content_type

#: Where the named queries are run.
PREFIX = "/api/queries/"

#: A query name is a file stem: letters, digits, '-' and '_' (never a path).
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_\-]{0,99}$")

SUFFIXES = {".csv": CSV, ".json": "application/json"}

#: The formats offered, the first by default.
OFFERED = ["application/json", CSV, SPARQL_JSON]

RESERVED = {"page"}  # query-string names the API itself reads


def json_bytes(value: Any) -> bytes:
    """JSON as Flask's jsonify writes it (compact, keys sorted, ASCII)."""
    return json.dumps(value, ensure_ascii=True, sort_keys=True, separators=(",", ":")).encode()


def lookup(queries: Mapping[str, NamedQuery], raw_name: str) -> tuple[NamedQuery, str | None]:
    """The query a URL names and the media type its suffix asks for; 404 for anything else."""
    name, suffix = raw_name, None
    for candidate in SUFFIXES:
        if name.endswith(candidate):
            name, suffix = name[: -len(candidate)], candidate
            break
    if not NAME.match(name) or name not in queries:
        raise CopkgError(
            f"no named query {raw_name!r}",
            status=404,
            problems=[Problem(f"known queries: {', '.join(sorted(queries))}", path="name")],
        )
    return queries[name], SUFFIXES.get(suffix) if suffix else None


def raw_parameters(
    query: NamedQuery, values: Sequence[tuple[str, str]]
) -> tuple[dict[str, str], int | None]:
    """Parameter values by name (query string, or form too); repeated values are refused."""
    grouped: dict[str, list[str]] = {}
    for key, value in values:
        grouped.setdefault(key, []).append(value)
    raw: dict[str, str] = {}
    page: int | None = None
    for key, given in grouped.items():
        if len(given) > 1:
            raise CopkgError(
                f"parameter {key!r} given {len(given)} times",
                status=400,
                problems=[Problem("give each parameter once", path=key)],
            )
        if key == "page" and query.parameter("page") is None:
            if not given[0].isdigit() or int(given[0]) < 1:
                raise CopkgError(
                    "page must be a whole number from 1",
                    status=400,
                    problems=[Problem(f"page={given[0]!r}", path="page")],
                )
            page = int(given[0])
            continue
        raw[key] = given[0]
    return raw, page


@dataclass(frozen=True)
class NamedCall:
    """A named-query request read: the query, the page to run and how to answer."""

    query: NamedQuery
    media_type: str
    prepared: Prepared
    path: str  # the request's path (page links keep it)
    args: tuple[tuple[str, str], ...]  # the query string (links keep it)

    @property
    def graph_type(self) -> str:
        return "text/turtle" if self.media_type == CSV else "application/n-triples"

    def job(self, client: str | None) -> Job:
        wire = self.media_type if self.media_type in (CSV, SPARQL_JSON) else ROWS_JSON
        return Job(
            sparql=self.prepared.text,
            bindings=self.prepared.rest,
            media_types={"select": wire, "ask": wire, "graph": self.graph_type},
            client=client,
        )


@dataclass(frozen=True)
class NamedAsk:
    """A named-query request read and its parameters bound, before the facts of the store it
    needs (`needs`: a parameter's values in the data, the keys of its page), which the caller
    has the executor read; `call` then plans the page."""

    query: NamedQuery
    media_type: str
    raw: dict[str, str]
    bindings: dict[str, Node]
    page: int | None
    path: str
    args: tuple[tuple[str, str], ...]

    def needs(self) -> list[Fact]:
        return facts_needed(self.query, self.bindings, whole=False)

    def call(self, facts: Mapping[Fact, Sequence[str]]) -> NamedCall:
        """The request, its page planned with `facts` (those it `needs`)."""
        prepared = prepare_bound(self.query, self.raw, self.bindings, facts, page=self.page)
        return NamedCall(self.query, self.media_type, prepared, self.path, self.args)


def read_named(
    queries: Mapping[str, NamedQuery],
    raw_name: str,
    *,
    accept: str | None,
    values: Sequence[tuple[str, str]],
    path: str,
    args: Sequence[tuple[str, str]],
) -> NamedAsk:
    """What a request for a named query asks (404, 406, 400 otherwise): `values` are its
    parameters (the query string, or a form's fields too), `args` its query string."""
    query, suffix_type = lookup(queries, raw_name)
    media_type = suffix_type or best_offer_of(accept, OFFERED)
    if media_type is None:
        raise CopkgError(
            f"cannot serve {accept}; offered: {', '.join(OFFERED)}",
            status=406,
        )
    raw, page = raw_parameters(query, values)
    bindings = bind(query, raw)
    return NamedAsk(query, media_type, raw, bindings, page, path, tuple(args))


def named_answer(call: NamedCall, answer: Answer) -> tuple[list[tuple[str, str]], bytes]:
    """The headers and body of a named query's answer (400 for a page past the end)."""
    if answer.kind == "graph":
        return [("Content-Type", content_type(call.graph_type))], answer.body
    count = answer.count  # rows written (an ASK's answer is one)
    call.prepared.check_not_past_end(count)  # in every format
    query, where = call.query, call.prepared.page
    if call.media_type == CSV:
        headers = [
            ("Content-Type", content_type(CSV)),
            ("Content-Disposition", f'inline; filename="{query.name}.csv"'),
        ]
        return headers + _page_headers(call, where, count), answer.body
    if call.media_type == SPARQL_JSON:
        headers = [("Content-Type", SPARQL_JSON)]
        if answer.truncated:
            headers.append(("Copkg-Truncated", f"results cut at {answer.count} rows"))
        return headers + _page_headers(call, where, count), answer.body
    rows, variables = answer.body.split(b"\n", 1)  # as the worker wrote them (ROWS_JSON)
    bindings = call.prepared.bindings
    body: dict[str, Any] = {
        "ok": True,
        "query": query.name,
        "parameters": {
            p.name: plain(bindings[p.var]) for p in query.parameters if p.var in bindings
        },
        "count": count,
        "truncated": answer.truncated,
        "links": {"csv": _csv_url(call), "list": "/api/queries"},
    }
    if where is not None:
        body.update(_page_data(where, count))
        body["links"].update(page_links(call, where, count))
    # the members in key order, as jsonify writes them, with the worker's rows as they came
    parts = [
        json_bytes({k: v for k, v in body.items() if k < "rows"})[1:-1],
        b'"rows":' + rows,
        json_bytes({k: v for k, v in body.items() if "rows" < k < "variables"})[1:-1],
        b'"variables":' + variables,
        json_bytes({k: v for k, v in body.items() if k > "variables"})[1:-1],
    ]
    headers = [("Content-Type", "application/json")]
    data = b"{" + b",".join(part for part in parts if part) + b"}\n"
    return headers + _page_headers(call, where, count), data


def _page_data(where: Page, rows: int) -> dict[str, Any]:
    data: dict[str, Any] = {
        "page": where.number,
        "pageSize": where.size,
        "lastPage": where.last,
        "hasNext": where.has_next(rows),
    }
    if where.over:
        data["pageOver"] = where.over
        data["pageValues"] = list(where.keys)
    return data


def _csv_url(call: NamedCall) -> str:
    """This answer as CSV: the same parameters and page."""
    args = urlencode(list(call.args))
    return f"/api/queries/{call.query.name}.csv" + (f"?{args}" if args else "")


def _page_url(call: NamedCall, number: int) -> str:
    """The URL of another page: this request's parameters with `page` set."""
    kept = urlencode([(k, v) for k, v in call.args if k != "page"])
    return f"{call.path}?{kept}{'&' if kept else ''}page={number}"


def page_links(call: NamedCall, where: Page, rows: int) -> dict[str, str]:
    """first / prev / next / last page URLs (last when the number of pages is known)."""
    links = {"first": _page_url(call, 1)}
    if where.number > 1:
        links["prev"] = _page_url(call, where.number - 1)
    if where.has_next(rows):
        links["next"] = _page_url(call, where.number + 1)
    if where.last is not None:
        links["last"] = _page_url(call, where.last)
    return links


def _page_headers(call: NamedCall, where: Page | None, rows: int) -> list[tuple[str, str]]:
    """An RFC 8288 Link header to the other pages (as grlc sends), and the page in headers."""
    if where is None:
        return []
    links = page_links(call, where, rows)
    headers = [
        ("Link", ", ".join(f'<{url}>; rel="{rel}"' for rel, url in links.items())),
        ("X-Page", str(where.number)),
    ]
    if where.last is not None:
        headers.append(("X-Last-Page", str(where.last)))
    return headers
