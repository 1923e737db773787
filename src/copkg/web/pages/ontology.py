"""The ontology's page (documentation) and its RDF twins."""

from __future__ import annotations

from flask import Response, current_app, render_template
from markupsafe import Markup

from copkg.querying.pages.reads import ontology_from_plain
from copkg.web import read_page
from copkg.web.pages.links import HTML, bp, twin_response, wants
from copkg.web.pages.ontology_docs import ontology_html

ONTOLOGY_TWINS = {
    ".ttl": "text/turtle",
    ".owl": "application/rdf+xml",
    ".rdf": "application/rdf+xml",
    ".nt": "application/n-triples",
    ".jsonld": "application/ld+json",
}


@bp.get("/ontology")
@bp.get("/ontology<any('.ttl', '.owl', '.rdf', '.nt', '.jsonld'):suffix>")
def ontology(suffix: str | None = None) -> Response | str:
    """The ontology: documentation for people, Turtle / RDF/XML / ... for tools."""
    offered = [
        HTML,
        "text/turtle",
        "application/rdf+xml",
        "application/n-triples",
        "application/ld+json",
    ]
    media_type = ONTOLOGY_TWINS[suffix] if suffix else wants(None, offered)
    link_header = ", ".join(
        f'</ontology{s}>; rel="alternate"; type="{t}"'
        for s, t in ONTOLOGY_TWINS.items()
        if s != ".rdf"
    )
    if media_type != HTML:
        return twin_response(read_page("ontology_twin", media_type), media_type, link_header)
    cache = current_app.extensions.setdefault("copkg.pages", {})
    if "ontology_html" not in cache:
        cache["ontology_html"] = ontology_html(*ontology_from_plain(read_page("ontology")))
    response = Response(
        render_template("ontology.html", body=Markup(cache["ontology_html"])), mimetype=HTML
    )
    response.headers["Link"] = link_header
    response.headers["Vary"] = "Accept"
    return response
