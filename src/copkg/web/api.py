"""The named-query API: queries/*.rq served at /api/queries/<name>, listed, and described
in OpenAPI. A request is read and answered by copkg.web.named (parameters validated and bound
as RDF terms by copkg.querying.named_queries.bind); the query runs through the query executor
(time limit, killable workers). The OpenAPI document is copkg.web.openapi."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, jsonify, request

from copkg.querying.named_queries import NamedQuery, Parameter, values_fact
from copkg.querying.named_queries import allowed_values as values_of
from copkg.web import client_address, get_executor, named_queries, store_facts
from copkg.web.named import named_answer, read_named

bp = Blueprint("api", __name__, url_prefix="/api")


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
    if param.enum_from_store:  # found in the data: read by the executor, a build's once
        return values_of(query, param, store_facts([values_fact(query, param)]))
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


@bp.route("/queries/<path:name>", methods=["GET", "POST"])
def run_query(name: str) -> Response:
    """Run one named query: JSON rows by default, CSV by `.csv` or Accept: text/csv."""
    source = request.args if request.method == "GET" else request.values
    ask = read_named(
        named_queries(),
        name,
        accept=request.headers.get("Accept"),
        values=list(source.items(multi=True)),
        path=request.path,
        args=list(request.args.items(multi=True)),
    )
    call = ask.call(store_facts(ask.needs()))
    answer = get_executor().run(call.job(client_address()))
    headers, body = named_answer(call, answer)
    return Response(body, headers=headers)
