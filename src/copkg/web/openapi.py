"""The OpenAPI 3 document of the API (/api/openapi.json): one path per named query, its
parameters typed from the query header, and the advisor's path."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from flask import Blueprint, Response, jsonify

from copkg.querying.named_queries import (
    NamedQuery,
    Parameter,
)
from copkg.store.results import SPARQL_JSON
from copkg.web import named_queries
from copkg.web.api import allowed_values

_XSD_SCHEMAS: dict[str, dict[str, Any]] = {
    "integer": {"type": "integer"},
    "nonNegativeInteger": {"type": "integer", "minimum": 0},
    "positiveInteger": {"type": "integer", "minimum": 1},
    "decimal": {"type": "number"},
    "double": {"type": "number"},
    "float": {"type": "number"},
    "boolean": {"type": "boolean"},
    "date": {"type": "string", "format": "date"},
    "dateTime": {"type": "string", "format": "date-time"},
}


def _parameter_schema(param: Parameter, values: list[str] | None) -> dict[str, Any]:
    if param.kind == "iri":
        schema: dict[str, Any] = {"type": "string", "format": "uri"}
    else:
        local = (param.datatype or "").rpartition("#")[2]
        schema = dict(_XSD_SCHEMAS.get(local, {"type": "string"}))
    if values:
        schema = {"type": "string", "enum": values}
    if param.default is not None:
        schema["default"] = (
            param.default if schema.get("type") == "string" else _typed(param.default, schema)
        )
    return schema


def _typed(value: str, schema: Mapping[str, Any]) -> Any:
    try:
        if schema.get("type") == "integer":
            return int(value)
        if schema.get("type") == "number":
            return float(value)
        if schema.get("type") == "boolean":
            return value in ("true", "1")
    except ValueError:
        pass
    return value


def _page_description(query: NamedQuery) -> str:
    """What `page` means for a query, for OpenAPI."""
    if query.page_over:
        name = query.page_over[0]
        what = (
            f"page of the answer, from 1 (the first by default): a page holds the rows of "
            f"{query.pagination} values of `{name}` (instances of <{query.page_over[1]}> in "
            f"IRI order); giving `{name}` makes the answer one page"
        )
    else:
        what = f"page of {query.pagination} rows, from 1 (the first by default)"
    return (
        what + ". The response links the first, previous, next and (when known) last "
        "pages (`links` and an RFC 8288 Link header); a page past the end is a 400."
    )


def openapi_document() -> dict[str, Any]:
    """OpenAPI 3.0 description of the named queries and the advisor."""
    error_ref = {"$ref": "#/components/responses/Error"}
    paths: dict[str, Any] = {
        "/api/queries": {
            "get": {
                "operationId": "listQueries",
                "summary": "The named queries, with their parameters and SPARQL text",
                "tags": ["queries"],
                "responses": {
                    "200": {
                        "description": "The list",
                        "content": {"application/json": {"schema": {"type": "object"}}},
                    }
                },
            }
        },
        "/api/advice": _advice_path(error_ref),
    }
    queries = named_queries()
    for name in sorted(queries):
        query = queries[name]
        parameters = []
        for param in query.parameters:
            values = allowed_values(query, param)
            parameters.append(
                {
                    "name": param.name,
                    "in": "query",
                    "required": param.required and param.default is None,
                    "description": f"{param.describe_type()}"
                    + (
                        " (an absolute IRI or a CURIE such as j04:facilitation)"
                        if param.kind == "iri"
                        else ""
                    ),
                    "schema": _parameter_schema(param, values),
                }
            )
        if query.pagination:
            parameters.append(
                {
                    "name": "page",
                    "in": "query",
                    "required": False,
                    "description": _page_description(query),
                    "schema": {"type": "integer", "minimum": 1},
                }
            )
        operation: dict[str, Any] = {
            "operationId": "query_" + re.sub(r"\W", "_", name),
            "summary": query.summary or name,
            "description": query.description or query.summary or name,
            "tags": list(query.tags) or ["queries"],
            "parameters": parameters,
            "responses": {
                "200": {
                    "description": "Solutions as JSON rows (or CSV)",
                    "content": {
                        "application/json": {"schema": {"$ref": "#/components/schemas/Rows"}},
                        "text/csv": {"schema": {"type": "string"}},
                        SPARQL_JSON: {"schema": {"type": "object"}},
                    },
                },
                "400": error_ref,
                "404": error_ref,
                "406": error_ref,
                "503": error_ref,
            },
        }
        paths[f"/api/queries/{name}"] = {"get": operation}
        paths[f"/api/queries/{name}.csv"] = {
            "get": {
                **operation,
                "operationId": operation["operationId"] + "_csv",
                "summary": (query.summary or name) + " (CSV)",
                "responses": {
                    "200": {
                        "description": "Solutions as CSV",
                        "content": {"text/csv": {"schema": {"type": "string"}}},
                    },
                    "400": error_ref,
                    "404": error_ref,
                },
            }
        }
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "copkg named queries",
            "version": "0.1.0",
            "description": "The competency queries of copkg (queries/*.rq, grlc-style) and the "
            "contingency advisor. Parameter values are bound as RDF terms, never pasted into "
            "the query text.",
        },
        "servers": [{"url": "/"}],
        "paths": paths,
        "components": {
            "schemas": {
                "Error": {
                    "type": "object",
                    "required": ["ok", "status", "error", "errors"],
                    "properties": {
                        "ok": {"type": "boolean"},
                        "status": {"type": "integer"},
                        "error": {"type": "string"},
                        "errors": {"type": "array", "items": {"type": "object"}},
                    },
                },
                "Rows": {
                    "type": "object",
                    "properties": {
                        "ok": {"type": "boolean"},
                        "query": {"type": "string"},
                        "variables": {"type": "array", "items": {"type": "string"}},
                        "rows": {"type": "array", "items": {"type": "object"}},
                        "count": {"type": "integer"},
                        "page": {"type": "integer"},
                        "pageSize": {"type": "integer"},
                        "lastPage": {"type": "integer", "nullable": True},
                        "hasNext": {"type": "boolean"},
                        "links": {"type": "object", "additionalProperties": {"type": "string"}},
                    },
                },
            },
            "responses": {
                "Error": {
                    "description": "The one error shape of copkg",
                    "content": {
                        "application/json": {"schema": {"$ref": "#/components/schemas/Error"}}
                    },
                }
            },
        },
    }


def _advice_path(error_ref: Mapping[str, Any]) -> dict[str, Any]:
    params = [
        {
            "name": "mode",
            "in": "query",
            "required": False,
            "explode": True,
            "description": "A control mode, optionally with its degree: `OutputControl`, "
            "`InputControl@InMostTeams` (names, CURIEs or IRIs); repeatable",
            "schema": {"type": "array", "items": {"type": "string"}},
        },
        {
            "name": "level",
            "in": "query",
            "required": False,
            "explode": True,
            "description": "A factor level as `factor@Level`, e.g. `decentralization@Low`; "
            "repeatable (a factor's slug may also be a parameter name: `decentralization=Low`)",
            "schema": {"type": "array", "items": {"type": "string"}},
        },
        {
            "name": "page",
            "in": "query",
            "required": False,
            "description": "The page of studied contexts the modes match (from 1); the advice "
            "is the same on every page. A `Link` header gives the other pages",
            "schema": {"type": "integer", "minimum": 1, "default": 1},
        },
        {
            "name": "page_size",
            "in": "query",
            "required": False,
            "description": "Studied contexts a page",
            "schema": {"type": "integer", "minimum": 1, "maximum": 50, "default": 10},
        },
    ]
    ok = {
        "description": "Which roles are risky, why, and the study's advice",
        "content": {"application/json": {"schema": {"type": "object"}}},
    }
    responses = {"200": ok, "400": error_ref}
    return {
        "get": {
            "operationId": "advice",
            "summary": "Contingency advice for a context",
            "tags": ["advisor"],
            "parameters": params,
            "responses": responses,
        },
        "post": {
            "operationId": "advicePost",
            "summary": "Contingency advice for a context (JSON)",
            "tags": ["advisor"],
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {
                        "schema": {
                            "type": "object",
                            "properties": {
                                "modes": {
                                    "type": "array",
                                    "items": {
                                        "type": "object",
                                        "properties": {
                                            "mode": {"type": "string"},
                                            "degree": {"type": "string"},
                                        },
                                    },
                                },
                                "levels": {
                                    "type": "object",
                                    "additionalProperties": {"type": "string"},
                                },
                                "page": {"type": "integer", "minimum": 1},
                                "pageSize": {"type": "integer", "minimum": 1, "maximum": 50},
                            },
                        }
                    }
                },
            },
            "responses": responses,
        },
    }


bp = Blueprint("openapi", __name__, url_prefix="/api")


@bp.get("/openapi.json")
def openapi() -> Response:
    """The OpenAPI description of this API."""
    return jsonify(openapi_document())
