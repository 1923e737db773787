"""One page per resource (/id/..., /graph/...) with its RDF and JSON twins, and the rules page:
their data read by a query worker (copkg.querying.pages.reads), rendered here."""

from __future__ import annotations

from flask import Response, jsonify, render_template, request
from markupsafe import Markup

from copkg.errors import CopkgError
from copkg.querying.pages.charts import timeline_slug
from copkg.querying.pages.explanations import EXPLAINED_BY
from copkg.querying.pages.links import twin_links
from copkg.querying.pages.reads import ResourceHtml
from copkg.web import read_page
from copkg.web.negotiation import best_offer
from copkg.web.pages.links import (
    HTML,
    OFFERED,
    TWINS,
    bp,
    iri_of_path,
    split_suffix,
    twin_response,
    wants,
)
from copkg.web.pages.svg import timeline_svg


def _serve_resource(path: str) -> Response | str:
    given = request.args.get("incoming", "1")
    if not given.isdigit() or int(given) < 1:
        raise CopkgError("incoming must be a page number from 1", status=400)
    read = read_page("resource", path, int(given), best_offer(OFFERED))
    form, base_path = read[0], read[1]
    if form == "unacceptable":
        wants(None)  # raises the 406
    link_header = twin_links(base_path)
    if form == "json":
        response = Response(read[2], mimetype="application/json")
        response.headers["Link"] = link_header
        response.headers["Vary"] = "Accept"
        return response
    if form == "rdf":
        return twin_response(read[3], read[2], link_header)
    page = ResourceHtml.from_plain(read[2])
    resource = page.resource
    timeline = None
    timeline_href = None
    if page.organisation:
        timeline_href = "/timeline/" + timeline_slug(resource.iri)
        if page.events:
            timeline = Markup(timeline_svg(page.events, f"Timeline of {resource.label}"))
    html = render_template(
        "resource.html",
        r=resource,
        path=base_path,
        twins=TWINS,
        timeline=timeline,
        timeline_href=timeline_href,
        citations=page.citations,
        explanations=page.explanations,
        more_explanations=page.more_explanations,
        explained_by=EXPLAINED_BY if page.explanations else (),
    )
    response = Response(html, mimetype=HTML)
    response.headers["Link"] = link_header
    response.headers["Vary"] = "Accept"
    return response


@bp.get("/id/<path:rest>")
def resource_page(rest: str) -> Response | str:
    """The page of https://w3id.org/copkg/id/... (and its twins by suffix or Accept)."""
    return _serve_resource("/id/" + rest)


@bp.get("/graph/<path:rest>")
def graph_page(rest: str) -> Response | str:
    """A named graph: how many statements and what it holds, by class."""
    base_path, suffix = split_suffix("/graph/" + rest)
    if suffix not in (None, ".json"):
        raise CopkgError("a graph page has an HTML and a JSON twin only", status=404)
    offered = TWINS[suffix] if suffix else best_offer([HTML, "application/json"])
    data, labels = read_page("graph", iri_of_path(base_path), offered == HTML)
    if data is None:
        return _serve_resource("/graph/" + rest)
    if wants(suffix, [HTML, "application/json"]) == "application/json":
        return jsonify(data)
    return render_template("graph.html", data=data, path=base_path, labels=labels)


@bp.get("/rules")
@bp.get("/rules.json")
def rules_page() -> Response | str:
    """The inference rules (https://w3id.org/copkg/rules#name), each with its SPARQL text."""
    items = read_page("rules")
    if request.path.endswith(".json") or wants(None, [HTML, "application/json"]) != HTML:
        return jsonify({"ok": True, "rules": items})
    return render_template("rules.html", rules=items)
