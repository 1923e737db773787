"""The pages' blueprint, IRIs and links (local paths, CURIEs), and content negotiation between
a page and its RDF and JSON twins."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, request
from markupsafe import Markup

from copkg.errors import CopkgError
from copkg.querying.pages.links import (
    HTML,
    OFFERED,
    ROOT_IRI,
    TWINS,
    curie,
    href,
    iri_of_path,
    local_path,
    split_suffix,
)
from copkg.web.negotiation import best_offer

__all__ = [
    "HTML",
    "OFFERED",
    "ROOT_IRI",
    "TWINS",
    "curie",
    "href",
    "iri_of_path",
    "local_path",
    "split_suffix",
]

bp = Blueprint("pages", __name__)

RDF_MEDIA = {t for t in TWINS.values() if t != "application/json"}

LABEL_PATH = "rdfs:label|skos:prefLabel|dcterms:title"


#: The schemes an IRI may have to become a link (a `javascript:` or `data:` IRI stays text).
LINK_SCHEMES = ("http", "https", "mailto")


@bp.app_template_test("linkable")
def linkable(iri: Any) -> bool:
    """Whether an IRI may be an href: a page of the service, or an http(s) or mailto IRI."""
    text = str(iri).strip()
    return local_path(text) is not None or text.split(":", 1)[0].lower() in LINK_SCHEMES


#: Characters of a value shown on a page; longer values end with a link to all of it (a twin).
LONG_VALUE = 2000


@bp.app_template_test("long")
def is_long(value: Any) -> bool:
    """Whether a value is cut on pages (more than LONG_VALUE characters)."""
    return len(str(value)) > LONG_VALUE


@bp.app_template_filter("shortened")
def shortened(value: Any) -> str:
    """A value's first LONG_VALUE characters, and an ellipsis if there are more."""
    text = str(value)
    return text if len(text) <= LONG_VALUE else text[:LONG_VALUE] + "…"


@bp.app_template_filter("href")
def _href_filter(iri: Any) -> str:
    return href(iri)


@bp.app_template_filter("curie")
def _curie_filter(iri: Any) -> str:
    return curie(iri)


@bp.app_template_global("link")
def link(iri: Any, label: Any = None) -> Markup:
    """An <a> to a resource with its label (or CURIE) as text."""
    text = str(label) if label else curie(iri)
    if not linkable(iri):
        return Markup('<code title="{}">{}</code>').format(str(iri), text)
    return Markup('<a href="{}" title="{}">{}</a>').format(href(iri), str(iri), text)


def wants(suffix: str | None, offered: list[str] | None = None) -> str:
    """The media type asked for: a suffix wins, then the Accept header (406 if none fits)."""
    if suffix:
        return TWINS[suffix]
    offered = offered or OFFERED
    best = best_offer(offered)
    if best is None:
        raise CopkgError(
            f"cannot serve {request.headers.get('Accept')}; offered: {', '.join(offered)}",
            status=406,
        )
    return best


def twin_response(body: bytes | str, media_type: str, link_header: str | None = None) -> Response:
    charset = "; charset=utf-8" if not media_type.startswith("application/ld") else ""
    response = Response(body, mimetype=media_type)
    response.headers["Content-Type"] = media_type + charset
    response.headers["Vary"] = "Accept"
    if link_header:
        response.headers["Link"] = link_header
    return response
