"""Content negotiation as clients use it: the Accept header with its q-values, whatever
media-type parameters (`charset=utf-8`, `profile=...`) a client adds."""

from __future__ import annotations

from collections.abc import Sequence

from flask import request
from werkzeug.datastructures import MIMEAccept
from werkzeug.http import parse_accept_header


def accepted() -> MIMEAccept:
    """The request's Accept header with media-type parameters other than q dropped: a client
    asking for `application/sparql-results+json; charset=utf-8` asks for SPARQL JSON."""
    parsed = parse_accept_header(request.headers.get("Accept"), MIMEAccept)
    return MIMEAccept([(value.split(";", 1)[0].strip().lower(), q) for value, q in parsed])


def best_offer(offered: Sequence[str]) -> str | None:
    """The Accept-preferred type among `offered`: the first when the client says nothing,
    None when it accepts none of them."""
    accept = accepted()
    if not accept:
        return offered[0] if offered else None
    return accept.best_match(list(offered))
