"""The SPARQL 1.1 Protocol for queries, without a web framework: what a request asks (the query,
its dataset, the formats to answer in, the base IRI) and the headers of its answer, from the
parts of an HTTP request. Flask's /sparql view (copkg.web.sparql) and the front's direct path
(copkg.web.direct) both call these, so there is one reading of the protocol, one content
negotiation, one set of checks and one error shape.

Requests are read as werkzeug reads them: the query string and a form body by
`urllib.parse.parse_qsl` with werkzeug's error handler, Content-Type by
`werkzeug.http.parse_options_header`, Accept by werkzeug's MIMEAccept.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from urllib.parse import parse_qsl

from werkzeug import urls as _register_url_quote  # noqa: F401 - werkzeug's "url_quote" errors
from werkzeug.http import parse_options_header
from werkzeug.sansio.utils import get_current_url, get_host

from copkg.errors import CopkgError
from copkg.querying.executor import Answer, Job
from copkg.querying.safety import UPDATE_HINT, check_protocol_graphs
from copkg.store.lexer import tokens
from copkg.store.results import CSV, GRAPH_MEDIA_TYPES, SPARQL_JSON, SPARQL_XML, TSV
from copkg.web.negotiation import accepted_of, best_offer_of

FORM = "application/x-www-form-urlencoded"
SPARQL_QUERY = "application/sparql-query"
SPARQL_UPDATE = "application/sparql-update"
TURTLE = "text/turtle"
NTRIPLES = "application/n-triples"
JSONLD = "application/ld+json"
RDFXML = "application/rdf+xml"
TRIG = "application/trig"
NQUADS = "application/n-quads"

#: Media types a client may ask for (Accept), mapped to the one we write; first is the default.
SOLUTION_TYPES: dict[str, str] = {
    SPARQL_JSON: SPARQL_JSON,
    SPARQL_XML: SPARQL_XML,
    CSV: CSV,
    TSV: TSV,
    "application/json": SPARQL_JSON,
    "application/xml": SPARQL_XML,
    "text/xml": SPARQL_XML,
}
GRAPH_TYPES: dict[str, str] = {
    **{media_type: media_type for media_type in GRAPH_MEDIA_TYPES},
    "application/x-turtle": TURTLE,
    "application/turtle": TURTLE,
    "text/plain": NTRIPLES,
    "application/json": JSONLD,
    "application/xml": RDFXML,
}

#: The `format` parameter: the names clients send (SPARQLWrapper's, Virtuoso's, Fuseki's), each
#: a family of media types per kind of result; the Accept header chooses within a family.
FORMAT_NAMES: dict[str, dict[str, tuple[str, ...]]] = {
    "json": {"solutions": (SPARQL_JSON,), "graph": (JSONLD,)},
    "srj": {"solutions": (SPARQL_JSON,)},
    "xml": {"solutions": (SPARQL_XML,), "graph": (RDFXML,)},
    "srx": {"solutions": (SPARQL_XML,)},
    "csv": {"solutions": (CSV,)},
    "tsv": {"solutions": (TSV,)},
    "rdf": {"graph": (RDFXML,)},
    "rdfxml": {"graph": (RDFXML,)},
    "rdf+xml": {"graph": (RDFXML,)},
    "turtle": {"graph": (TURTLE,)},
    "ttl": {"graph": (TURTLE,)},
    "n3": {"graph": (TURTLE, NTRIPLES)},
    "ntriples": {"graph": (NTRIPLES,)},
    "n-triples": {"graph": (NTRIPLES,)},
    "nt": {"graph": (NTRIPLES,)},
    "jsonld": {"graph": (JSONLD,)},
    "json-ld": {"graph": (JSONLD,)},
    "trig": {"graph": (TRIG,)},
    "nquads": {"graph": (NQUADS,)},
    "n-quads": {"graph": (NQUADS,)},
    "nq": {"graph": (NQUADS,)},
}

#: Sent with every response: pages load only the service's own files (no inline script, no
#: frame elsewhere), and a browser takes each file for the type the service gives it.
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
}

#: Cross-origin access (flask-cors options) to the paths open to it.
CORS_PATHS = (r"/sparql", r"/api/*")
CORS_METHODS = ["GET", "POST", "OPTIONS"]
CORS_ALLOW_HEADERS = ["Content-Type", "Accept"]
CORS_EXPOSE_HEADERS = ["Retry-After", "Copkg-Truncated", "Copkg-Build", "Link", "Vary"]

#: Distinct (format, Accept) pairs whose negotiation is kept: clients repeat their headers.
NEGOTIATIONS_KEPT = 512


def content_type(media_type: str) -> str:
    """A Content-Type header value: text types say they are UTF-8."""
    return f"{media_type}; charset=utf-8" if media_type.startswith("text/") else media_type


def parse_pairs(text: str) -> list[tuple[str, str]]:
    """A query string or form body as werkzeug reads it (bad escapes stay percent-encoded)."""
    return parse_qsl(text, keep_blank_values=True, errors="werkzeug.url_quote")


@lru_cache(maxsize=64)
def endpoint_url(host: str | None, path: str) -> str:
    """The URL of `path` on the host a request names, as werkzeug's base_url gives it."""
    return get_current_url("http", get_host("http", host), "", path)


def error_json(error: CopkgError) -> bytes:
    """The body of an error answer, as Flask's JSON provider writes it (compact, keys sorted)."""
    text = json.dumps(error.body(), ensure_ascii=True, sort_keys=True, separators=(",", ":"))
    return f"{text}\n".encode()


class ProtocolRequest:
    """The parts of an HTTP request the protocol reads: method, query string, headers (by a
    case-insensitive lookup), body and the endpoint's URL."""

    def __init__(
        self,
        method: str,
        query_string: bytes,
        header: Callable[[str], str | None],
        body: bytes,
        base_url: str,
    ) -> None:
        self.method = method
        self.header = header
        self.body = body
        self.base_url = base_url
        try:
            self.args = parse_pairs(query_string.decode()) if query_string else []
        except UnicodeDecodeError as exc:
            raise CopkgError("the query string is not valid UTF-8", status=400) from exc
        mimetype, params = parse_options_header(header("Content-Type") or "")
        self.mimetype = mimetype.lower()
        self.charset = params.get("charset")
        self._form: list[tuple[str, str]] | None = None

    @property
    def form(self) -> list[tuple[str, str]]:
        """The form body's fields (empty unless the body is a form that reads as UTF-8)."""
        if self._form is None:
            self._form = []
            if self.method != "GET" and self.mimetype == FORM and self.body:
                try:
                    self._form = parse_pairs(self.body.decode())
                except ValueError:  # werkzeug reads an undecodable form as an empty one
                    self._form = []
        return self._form

    def arg(self, name: str) -> list[str]:
        return [v for k, v in self.args if k == name]

    def field(self, name: str) -> list[str]:
        return [v for k, v in self.form if k == name]

    def value(self, name: str) -> list[str]:
        """Query string, then form (not for GET), as werkzeug's request.values."""
        return self.arg(name) + (self.field(name) if self.method != "GET" else [])


# -- negotiation -------------------------------------------------------------------------------


def requested_format(values: Sequence[str]) -> dict[str, tuple[str, ...]] | None:
    """The `format` parameter as {"solutions"|"graph": family of media types}; None when it is
    absent or names nothing we know (then Accept decides, as for clients that send their own
    names)."""
    for raw in values:
        value = raw.strip().lower()
        if value in FORMAT_NAMES:
            return FORMAT_NAMES[value]
        chosen: dict[str, tuple[str, ...]] = {
            kind: (offered[value],)
            for kind, offered in (("solutions", SOLUTION_TYPES), ("graph", GRAPH_TYPES))
            if value in offered
        }
        if chosen:
            return chosen
    return None


def negotiate(formats: Sequence[str], accept: str | None) -> dict[str, str]:
    """The media type to write each kind of result in ({kind: media type}); a kind left out
    cannot be served (406 once the query says what kind it is). Content-Type is always the
    canonical media type of what is written, whatever alias was asked for."""
    return dict(_negotiate(tuple(formats), accept))


@lru_cache(maxsize=NEGOTIATIONS_KEPT)
def _negotiate(formats: tuple[str, ...], accept: str | None) -> tuple[tuple[str, str], ...]:
    chosen: dict[str, str] = {}
    requested = requested_format(formats) or {}
    for group, family in requested.items():
        kinds = ("select", "ask") if group == "solutions" else ("graph",)
        chosen.update(dict.fromkeys(kinds, best_offer_of(accept, family) or family[0]))
    named = {value for value, q in accepted_of(accept) if q > 0}
    for kinds, offered in ((("select", "ask"), SOLUTION_TYPES), (("graph",), GRAPH_TYPES)):
        if requested and (kinds[0] in chosen or not named & set(offered)):
            continue  # the format said, or says nothing of this kind and Accept names none
        best = best_offer_of(accept, list(offered))
        if best is not None:
            chosen.update(dict.fromkeys(kinds, offered[best]))
    if not requested and not chosen:
        raise CopkgError(
            f"cannot answer in any type of Accept: {accept or ''}; "
            f"results come as {', '.join(SOLUTION_TYPES)} (SELECT, ASK) or "
            f"{', '.join(GRAPH_TYPES)} (CONSTRUCT, DESCRIBE)",
            status=406,
        )
    return tuple(chosen.items())


# -- reading a query request -------------------------------------------------------------------


@dataclass(frozen=True)
class QueryCall:
    """A protocol request read: the query and how to run and answer it."""

    text: str
    media_types: dict[str, str]
    default_graphs: tuple[str, ...] | None
    named_graphs: tuple[str, ...] | None
    base: str
    partial: bool

    def job(self, client: str | None) -> Job:
        return Job(
            self.text,
            default_graphs=self.default_graphs,
            named_graphs=self.named_graphs,
            media_types=self.media_types,
            base=self.base,
            client=client,
        )


def check_charset(request: ProtocolRequest) -> None:
    charset = request.charset
    if charset and charset.strip().lower() not in ("utf-8", "utf8"):
        raise CopkgError(f"the request body must be UTF-8, not {charset}", status=415)


def body_text(request: ProtocolRequest) -> str:
    check_charset(request)
    try:
        return request.body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise CopkgError(f"the request body is not valid UTF-8: {exc}", status=400) from exc


def one(values: Sequence[str], name: str) -> str | None:
    if len(values) > 1:
        raise CopkgError(f"give one {name}, not {len(values)}", status=400)
    return values[0] if values else None


def graph_parameters(
    request: ProtocolRequest, default_name: str, named_name: str
) -> tuple[tuple[str, ...] | None, ...]:
    """Protocol graph IRIs (query string, and a form body) or None when not given."""
    result = []
    for name in (default_name, named_name):
        values = request.arg(name)
        if request.method == "POST" and request.mimetype == FORM:
            values += request.field(name)
        values = [v.strip() for v in values if v.strip()]
        check_protocol_graphs(values, name)
        result.append(tuple(values) if values else None)
    return tuple(result)


def refuse_update() -> None:
    raise CopkgError(f"/sparql answers queries only: {UPDATE_HINT}", status=403)


def query_text(request: ProtocolRequest) -> str | None:
    """The query of a protocol request (None for a GET without one); 4xx for a bad request."""
    if request.method in ("GET", "HEAD"):
        if request.arg("update"):
            refuse_update()
        return one(request.arg("query"), "query")
    mimetype = request.mimetype
    if mimetype == FORM:
        check_charset(request)
        if request.field("update") or request.arg("update"):
            refuse_update()
        query = one(request.field("query") + request.arg("query"), "query")
    elif mimetype == SPARQL_QUERY:
        if request.arg("query"):
            raise CopkgError("give the query in the body or in the URL, not both", status=400)
        query = body_text(request)
    elif mimetype == SPARQL_UPDATE:
        refuse_update()
    else:
        raise CopkgError(
            f"POST a query as {FORM} (query=...) or as {SPARQL_QUERY}, "
            f"not as {mimetype or 'a body without a Content-Type'}",
            status=415,
        )
    if query is None or not query.strip():
        raise CopkgError("the request has no query", status=400)
    return query


def base_iri(base_url: str) -> str:
    """The base IRI of relative IRIs in a request: the endpoint's own URL."""
    if any(c in base_url for c in '<>"{}|^`\\ '):
        raise CopkgError("the request URL cannot serve as a base IRI", status=400)
    return base_url


def read_query(request: ProtocolRequest) -> QueryCall | None:
    """What a query request to /sparql asks, checked (4xx otherwise); None for a GET without a
    query (the service description)."""
    text = query_text(request)
    if text is None:
        return None
    media_types = negotiate(request.value("format"), request.header("Accept"))
    default_graphs, named_graphs = graph_parameters(request, "default-graph-uri", "named-graph-uri")
    base = base_iri(request.base_url)
    partial = next(iter(request.value("partial")), "").strip().lower() in ("true", "1", "yes")
    return QueryCall(text, media_types, default_graphs, named_graphs, base, partial)


def has_own_limit(sparql: str) -> bool:
    """Whether the query's outermost level has a LIMIT of its own."""
    return any(t.depth == 0 and t.kind == "word" and t.upper == "LIMIT" for t in tokens(sparql))


def answer_headers(call: QueryCall, answer: Answer, max_rows: int) -> list[tuple[str, str]]:
    """The headers of a query's answer (400 for one cut at the row limit unless the client
    asked for part of it or the query limits itself)."""
    if answer.truncated and not call.partial and not has_own_limit(call.text):
        raise CopkgError(
            f"the answer has more than {max_rows} rows, the most this service returns at once "
            f"(COPKG_MAX_ROWS): add LIMIT and OFFSET to page through it, or ask for the first "
            f"{max_rows} rows only with partial=true",
            status=400,
        )
    headers = [("Content-Type", content_type(answer.media_type)), ("Vary", "Accept")]
    if answer.truncated:
        headers.append(("Copkg-Truncated", f"results cut at {answer.count} rows"))
    return headers
