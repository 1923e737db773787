"""The named-query API: queries/*.rq served at /api/queries/<name>, listed, and described
in OpenAPI. Parameters are validated and bound as RDF terms by
copkg.querying.named_queries.bind; the query runs through the query executor (time limit,
killable workers). The OpenAPI document is copkg.web.openapi."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlencode

from flask import Blueprint, Response, current_app, jsonify, request

from copkg.errors import CopkgError, Problem
from copkg.querying.executor import Job
from copkg.querying.named_queries import (
    NamedQuery,
    Page,
    Parameter,
    enumerated_values,
    prepare,
)
from copkg.store.results import CSV, ROWS_JSON, SPARQL_JSON, plain
from copkg.web import client_address, get_executor, get_store, named_queries
from copkg.web.negotiation import best_offer

bp = Blueprint("api", __name__, url_prefix="/api")

#: A query name is a file stem: letters, digits, '-' and '_' (never a path).
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_\-]{0,99}$")

SUFFIXES = {".csv": CSV, ".json": "application/json"}

RESERVED = {"page"}  # query-string names the API itself reads


def _lookup(raw_name: str) -> tuple[NamedQuery, str | None]:
    """The query a URL names and the media type its suffix asks for; 404 for anything else."""
    name, suffix = raw_name, None
    for candidate in SUFFIXES:
        if name.endswith(candidate):
            name, suffix = name[: -len(candidate)], candidate
            break
    queries = named_queries()
    if not NAME.match(name) or name not in queries:
        raise CopkgError(
            f"no named query {raw_name!r}",
            status=404,
            problems=[Problem(f"known queries: {', '.join(sorted(queries))}", path="name")],
        )
    return queries[name], SUFFIXES.get(suffix) if suffix else None


def describe_parameter(param: Parameter, values: list[str] | None = None) -> dict[str, Any]:
    data: dict[str, Any] = {
        "name": param.name,
        "required": param.required and param.default is None,
        "type": param.describe_type(),
        "kind": param.kind,
    }
    if param.datatype:
        data["datatype"] = param.datatype
    if param.lang:
        data["lang"] = param.lang
    if param.default is not None:
        data["default"] = param.default
    if values:
        data["enum"] = values
    return data


def allowed_values(query: NamedQuery, param: Parameter) -> list[str] | None:
    if param.enum is not None:
        return list(param.enum)
    if param.enum_from_store:
        return enumerated_values(get_store(), query, param)
    return None


def describe_query(query: NamedQuery, *, with_text: bool = True) -> dict[str, Any]:
    """What the list shows of one query."""
    data: dict[str, Any] = {
        "name": query.name,
        "summary": query.summary,
        "description": query.description,
        "tags": list(query.tags),
        "parameters": [describe_parameter(p, allowed_values(query, p)) for p in query.parameters],
        "links": {
            "json": f"/api/queries/{query.name}",
            "csv": f"/api/queries/{query.name}.csv",
            "page": f"/query?name={query.name}",
        },
    }
    if query.pagination:
        data["pagination"] = query.pagination
        if query.page_over:
            data["pageOver"] = query.page_over[0]
    if with_text:
        data["sparql"] = query.text
    return data


@bp.get("/queries")
@bp.get("/queries.json")
def list_queries() -> Response:
    """Every named query: name, summary, description, parameters, links and SPARQL text."""
    queries = named_queries()
    return jsonify(
        {
            "ok": True,
            "queries": [describe_query(queries[name]) for name in sorted(queries)],
            "links": {"openapi": "/api/openapi.json"},
        }
    )


def _raw_parameters(query: NamedQuery) -> tuple[dict[str, str], int | None]:
    """Query-string (or form) values by name; repeated values are refused."""
    raw: dict[str, str] = {}
    page: int | None = None
    source = request.args if request.method == "GET" else request.values
    for key in source:
        values = source.getlist(key)
        if len(values) > 1:
            raise CopkgError(
                f"parameter {key!r} given {len(values)} times",
                status=400,
                problems=[Problem("give each parameter once", path=key)],
            )
        if key == "page" and query.parameter("page") is None:
            if not values[0].isdigit() or int(values[0]) < 1:
                raise CopkgError(
                    "page must be a whole number from 1",
                    status=400,
                    problems=[Problem(f"page={values[0]!r}", path="page")],
                )
            page = int(values[0])
            continue
        raw[key] = values[0]
    return raw, page


@bp.route("/queries/<path:name>", methods=["GET", "POST"])
def run_query(name: str) -> Response:
    """Run one named query: JSON rows by default, CSV by `.csv` or Accept: text/csv."""

    query, suffix_type = _lookup(name)
    offered = ["application/json", CSV, SPARQL_JSON]
    media_type = suffix_type or best_offer(offered)
    if media_type is None:
        raise CopkgError(
            f"cannot serve {request.headers.get('Accept')}; offered: {', '.join(offered)}",
            status=406,
        )
    raw, page = _raw_parameters(query)
    prepared = prepare(get_store(), query, raw, page=page)
    where, bindings = prepared.page, prepared.bindings
    wire = media_type if media_type in (CSV, SPARQL_JSON) else ROWS_JSON
    job = Job(
        sparql=prepared.text,
        bindings=prepared.rest,
        media_types={
            "select": wire,
            "ask": wire,
            "graph": "text/turtle" if media_type == CSV else "application/n-triples",
        },
        client=client_address(),
    )
    answer = get_executor().run(job)
    if answer.kind == "graph":
        graph_type = "text/turtle" if media_type == CSV else "application/n-triples"
        return Response(answer.body, mimetype=graph_type)
    count = answer.count  # rows written (an ASK's answer is one)
    prepared.check_not_past_end(count)  # in every format
    if media_type == CSV:
        response = Response(answer.body, mimetype=media_type)
        response.headers["Content-Disposition"] = f'inline; filename="{query.name}.csv"'
        return _with_page_links(response, query, where, count)
    if media_type == SPARQL_JSON:
        response = Response(answer.body, mimetype=media_type)
        if answer.truncated:
            response.headers["Copkg-Truncated"] = f"results cut at {answer.count} rows"
        return _with_page_links(response, query, where, count)
    rows, variables = answer.body.split(b"\n", 1)  # as the worker wrote them (ROWS_JSON)
    body: dict[str, Any] = {
        "ok": True,
        "query": query.name,
        "parameters": {
            p.name: plain(bindings[p.var]) for p in query.parameters if p.var in bindings
        },
        "count": count,
        "truncated": answer.truncated,
        "links": {"csv": _csv_url(query), "list": "/api/queries"},
    }
    if where is not None:
        body.update(_page_data(query, where, count))
        body["links"].update(page_links(query, where, count))
    response = Response(
        _json_with(body, rows=rows, variables=variables), mimetype="application/json"
    )
    return _with_page_links(response, query, where, count)


def _json_with(values: dict[str, Any], **written: bytes) -> bytes:
    """The JSON object jsonify writes of `values` and the `written` members (JSON already):
    compact, keys sorted, a line break at the end."""
    dumps = current_app.json.dumps
    members = {name: dumps(value, separators=(",", ":")).encode() for name, value in values.items()}
    members.update(written)
    return (
        b"{"
        + b",".join(dumps(name).encode() + b":" + members[name] for name in sorted(members))
        + b"}\n"
    )


def _page_data(query: NamedQuery, where: Page, rows: int) -> dict[str, Any]:
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


def _csv_url(query: NamedQuery) -> str:
    """This answer as CSV: the same parameters and page."""
    args = urlencode(list(request.args.items(multi=True)))
    return f"/api/queries/{query.name}.csv" + (f"?{args}" if args else "")


def _page_url(query: NamedQuery, number: int) -> str:
    """The URL of another page: this request's parameters with `page` set."""
    args = [(k, v) for k, v in request.args.items(multi=True) if k != "page"]
    return f"{request.path}?{urlencode([*args, ('page', str(number))])}"


def page_links(query: NamedQuery, where: Page, rows: int) -> dict[str, str]:
    """first / prev / next / last page URLs (last when the number of pages is known)."""
    links = {"first": _page_url(query, 1)}
    if where.number > 1:
        links["prev"] = _page_url(query, where.number - 1)
    if where.has_next(rows):
        links["next"] = _page_url(query, where.number + 1)
    if where.last is not None:
        links["last"] = _page_url(query, where.last)
    return links


def _with_page_links(
    response: Response, query: NamedQuery, where: Page | None, rows: int
) -> Response:
    """An RFC 8288 Link header to the other pages (as grlc sends), and the page in headers."""
    if where is None:
        return response
    links = page_links(query, where, rows)
    response.headers["Link"] = ", ".join(f'<{url}>; rel="{rel}"' for rel, url in links.items())
    response.headers["X-Page"] = str(where.number)
    if where.last is not None:
        response.headers["X-Last-Page"] = str(where.last)
    return response
