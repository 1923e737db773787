"""The landing page (what the graph holds, the named queries) and the query page."""

from __future__ import annotations

import json
from typing import Any

from flask import Response, current_app, jsonify, render_template, request, url_for

from copkg.namespaces import PREFIXES
from copkg.web import named_queries, read_page
from copkg.web.pages.links import HTML, bp, wants


def landing_data() -> dict[str, Any]:
    """What the graph holds (studies, cases, roles, risks, counts per class and per graph,
    read by a query worker) and the named queries."""
    return {**read_page("landing"), "queries": _named_query_summaries()}


def _named_query_summaries() -> list[dict[str, str]]:
    return [
        {
            "name": q.name,
            "summary": q.summary,
            "api": f"/api/queries/{q.name}",
            "query": f"/query?name={q.name}",
        }
        for q in named_queries().values()
    ]


def dataset_description(root: str, data: dict[str, Any]) -> dict[str, Any]:
    """The graph as a schema.org Dataset, for data catalogues and search engines (JSON-LD)."""
    return {
        "@context": "https://schema.org/",
        "@type": "Dataset",
        "@id": f"{root}/.well-known/void#copkg",
        "name": "copkg: communities of practice in organisations",
        "description": (
            "A knowledge graph of research on communities of practice in organisations: "
            "studies, cases, management roles, their risks and contingencies, every finding "
            "with its evidence (a quote and its page), derived answers with their voice."
        ),
        "url": f"{root}/",
        "license": "https://creativecommons.org/licenses/by/4.0/",
        "isAccessibleForFree": True,
        "keywords": ["communities of practice", "management control", "knowledge graph"],
        "citation": [study["label"] for study in data.get("studies", []) if study.get("label")],
        "distribution": [
            {
                "@type": "DataDownload",
                "name": "SPARQL endpoint",
                "contentUrl": f"{root}/sparql",
                "encodingFormat": "application/sparql-results+json",
            },
            {
                "@type": "DataDownload",
                "name": "VoID description",
                "contentUrl": f"{root}/.well-known/void",
                "encodingFormat": "text/turtle",
            },
        ],
    }


@bp.get("/")
@bp.get("/index.json")
def landing() -> Response | str:
    """The landing page: what the graph holds, with links and example queries."""
    suffix = ".json" if request.path.endswith(".json") else None
    data = landing_data()
    if wants(suffix, [HTML, "application/json"]) == "application/json":
        return jsonify(data)
    dataset = json.dumps(dataset_description(request.url_root.rstrip("/"), data), indent=1)
    html = render_template("landing.html", d=data, dataset=dataset.replace("</", "<\\/"))
    response = Response(html, mimetype=HTML)
    response.headers["Link"] = '</index.json>; rel="alternate"; type="application/json"'
    response.headers["Vary"] = "Accept"
    return response


#: What the editor holds when the URL gives neither a query nor a named query.
DEFAULT_QUERY = (
    "SELECT ?class (COUNT(?s) AS ?n) WHERE { ?s a ?class }\nGROUP BY ?class ORDER BY DESC(?n) "
    "LIMIT 20"
)


@bp.get("/query")
def query_page() -> str:
    """A SPARQL editor with the named queries, run against /sparql; `?query=` (a permalink)
    pre-fills the editor and `?name=` a named query, and the page's script then runs it."""
    given = request.args.get("query", "")
    name = request.args.get("name", "")
    queries = named_queries()
    return render_template(
        "query.html",
        initial=name if name in queries else "",
        query_text=given or DEFAULT_QUERY,
        autorun=bool(given.strip()) or name in queries,
        named=[(q.name, q.summary or "") for _, q in sorted(queries.items())],
        prefixes=PREFIXES,
        sparql_url=_sparql_url(),
        max_rows=current_app.config.get("MAX_ROWS"),
    )


def _sparql_url() -> str:
    try:
        return url_for("sparql.sparql")
    except Exception:  # noqa: BLE001 - the protocol blueprint names its endpoint as it likes
        return "/sparql"
