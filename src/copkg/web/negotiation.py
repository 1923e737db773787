"""Content negotiation as clients use it: the Accept header with its q-values, whatever
media-type parameters (`charset=utf-8`, `profile=...`) a client adds."""

from __future__ import annotations

import functools
from collections.abc import Sequence

from flask import request
from werkzeug.datastructures import MIMEAccept
from werkzeug.http import parse_accept_header


def accepted_of(header: str | None) -> MIMEAccept:
    """An Accept header with media-type parameters other than q dropped: a client asking for
    `application/sparql-results+json; charset=utf-8` asks for SPARQL JSON."""
    parsed = parse_accept_header(header, MIMEAccept)
    return MIMEAccept([(value.split(";", 1)[0].strip().lower(), q) for value, q in parsed])


def best_offer_of(header: str | None, offered: Sequence[str]) -> str | None:
    """The type among `offered` an Accept header prefers: the first when it says nothing,
    None when it accepts none of them."""
    return _best_offer(header, tuple(offered))


@functools.lru_cache(maxsize=512)  # clients send the same few Accept headers again and again
def _best_offer(header: str | None, offered: tuple[str, ...]) -> str | None:
    accept = accepted_of(header)
    if not accept:
        return offered[0] if offered else None
    return accept.best_match(list(offered))


def accepted() -> MIMEAccept:
    """The request's Accept header, read as `accepted_of` reads one."""
    return accepted_of(request.headers.get("Accept"))


def best_offer(offered: Sequence[str]) -> str | None:
    """The type among `offered` the request's Accept header prefers (see `best_offer_of`)."""
    return best_offer_of(request.headers.get("Accept"), offered)
