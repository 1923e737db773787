"""IRIs as the pages write them: the local path that serves an IRI of copkg, a link's target,
a CURIE; the twins' suffixes. Kept per IRI (a page writes dozens, each a regex or two)."""

from __future__ import annotations

import functools
from typing import Any
from urllib.parse import quote

from copkg.namespaces import BASE, shorten

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

#: What a resource's page is offered as (Accept chooses; the first when it says nothing).
OFFERED = [HTML, "application/json", *(t for t in TWINS.values() if t != "application/json")]

#: IRIs whose paths and CURIEs are kept (a page writes dozens; each costs a regex or two).
KEPT_IRIS = 1 << 16


def local_path(iri: Any) -> str | None:
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


def href(iri: Any) -> str:
    """Where a link to an IRI goes: its page here, or the IRI itself."""
    return local_path(iri) or str(iri)


def curie(iri: Any) -> str:
    """An IRI shortened with the copkg prefixes (longest namespace first)."""
    return _curie(str(iri))


@functools.lru_cache(maxsize=KEPT_IRIS)
def _curie(text: str) -> str:
    return shorten(text) or text


def iri_of_path(path: str) -> str:
    """The IRI a local path stands for (the inverse of local_path)."""
    return ROOT_IRI + path


def split_suffix(path: str) -> tuple[str, str | None]:
    """A path without its twin suffix, and the suffix (None for the page itself)."""
    for suffix in TWINS:
        if path.endswith(suffix) and len(path) > len(suffix):
            return path[: -len(suffix)], suffix
    return path, None


def twin_links(path: str) -> str:
    """The Link header of a resource's page and twins: the page (canonical), then each twin
    in the order of TWINS."""
    links = [f'<{path}>; rel="canonical"; type="text/html"']
    links += [f'<{path}{suffix}>; rel="alternate"; type="{t}"' for suffix, t in TWINS.items()]
    return ", ".join(links)
