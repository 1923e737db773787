"""The pages' blueprint, IRIs and links (local paths, CURIEs), and content negotiation between
a page and its RDF and JSON twins."""

from __future__ import annotations

import functools
from collections.abc import Iterable
from typing import Any
from urllib.parse import quote

from flask import Blueprint, Response, request
from markupsafe import Markup
from rdflib import URIRef
from rdflib.term import Node

from copkg.errors import CopkgError
from copkg.namespaces import BASE, shorten
from copkg.web.negotiation import best_offer

bp = Blueprint("pages", __name__)

ROOT_IRI = BASE.rstrip("/")  # https://w3id.org/copkg

#: Twin suffixes and the media type each stands for; HTML is the page itself.
TWINS: dict[str, str] = {
    ".ttl": "text/turtle",
    ".jsonld": "application/ld+json",
    ".nt": "application/n-triples",
    ".rdf": "application/rdf+xml",
    ".json": "application/json",
}

HTML = "text/html"

OFFERED = [HTML, "application/json", *(t for t in TWINS.values() if t != "application/json")]

RDF_MEDIA = {t for t in TWINS.values() if t != "application/json"}

LABEL_PATH = "rdfs:label|skos:prefLabel|dcterms:title"


#: IRIs whose paths and CURIEs are kept (a page writes dozens; each costs a regex or two).
KEPT_IRIS = 1 << 16


def local_path(iri: Node | str) -> str | None:
    """The path that serves an IRI of copkg (`https://w3id.org/copkg/id/x` -> `/id/x`)."""
    return _local_path(str(iri))


@functools.lru_cache(maxsize=KEPT_IRIS)
def _local_path(text: str) -> str | None:
    if not text.startswith(BASE):
        return None
    rest = text[len(ROOT_IRI) :]
    path, sep, fragment = rest.partition("#")
    result = quote(path, safe="/:@!$&'()*+,;=-._~")
    return result + (sep + quote(fragment, safe="-._~") if sep else "")


def href(iri: Node | str) -> str:
    """Where a link to an IRI goes: its page here, or the IRI itself."""
    return local_path(iri) or str(iri)


def curie(iri: Node | str) -> str:
    """An IRI shortened with the copkg prefixes (longest namespace first)."""
    return _curie(str(iri))


@functools.lru_cache(maxsize=KEPT_IRIS)
def _curie(text: str) -> str:
    return shorten(text) or text


def iri_of_path(path: str) -> URIRef:
    """The IRI a local path stands for (the inverse of local_path)."""
    return URIRef(ROOT_IRI + path)


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


def split_suffix(path: str) -> tuple[str, str | None]:
    for suffix in TWINS:
        if path.endswith(suffix) and len(path) > len(suffix):
            return path[: -len(suffix)], suffix
    return path, None


def alternates(path: str, types: Iterable[str]) -> str:
    suffix_of = {t: s for s, t in TWINS.items()}
    links = [f'<{path}>; rel="canonical"; type="text/html"']
    links += [f'<{path}{suffix_of[t]}>; rel="alternate"; type="{t}"' for t in types]
    return ", ".join(links)


def twin_response(body: bytes | str, media_type: str, link_header: str | None = None) -> Response:
    charset = "; charset=utf-8" if not media_type.startswith("application/ld") else ""
    response = Response(body, mimetype=media_type)
    response.headers["Content-Type"] = media_type + charset
    response.headers["Vary"] = "Accept"
    if link_header:
        response.headers["Link"] = link_header
    return response
