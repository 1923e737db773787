"""The HTTP side of the remote store: SPARQLWrapper requests with a given query form, HTTP
Digest authentication sent with the body, connections another thread can close at a deadline
(`Cancel`), the server's own time limit (COPKG_REMOTE_TIMEOUT_PARAM) and every failed exchange
as a CopkgError that names the URL."""

from __future__ import annotations

import contextlib
import http.client
import math
import socket
import ssl
import threading
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Iterator, Mapping
from http import HTTPStatus
from http.client import HTTPException
from typing import Any, TypeVar

from SPARQLWrapper import SPARQLWrapper
from SPARQLWrapper.SPARQLExceptions import SPARQLWrapperException

from copkg.errors import CopkgError

T = TypeVar("T")


def allow_headers(count: int) -> None:
    """Let an answer carry `count` header lines (http.client refuses more than 100).

    Virtuoso echoes every graph of a query's dataset as a response header (one
    X-SPARQL-default-graph or X-SPARQL-named-graph line each), so a query that names each
    graph of a corpus of a few dozen studies gets more than 100 header lines back."""
    # the standard library's only knob: a module-wide limit (so, for the whole process)
    http.client._MAXHEADERS = max(http.client._MAXHEADERS, count)  # type: ignore[attr-defined]


class SparqlRequest(SPARQLWrapper):
    """A SPARQLWrapper whose query form is given rather than guessed with regular expressions
    (its guess looks at the first keyword anywhere, and is slow on large INSERT DATA bodies)."""

    def __init__(
        self,
        endpoint: str,
        form: str,
        update_endpoint: str | None = None,
        opener: urllib.request.OpenerDirector | None = None,
    ) -> None:
        self._form = form
        self._opener = opener
        super().__init__(endpoint, updateEndpoint=update_endpoint)

    def _parseQueryType(self, query: str) -> str:  # noqa: N802 (SPARQLWrapper's name)
        return self._form

    def _query(self) -> tuple[Any, str]:
        """Open the request with this request's own opener (connections a `Cancel` can close;
        Digest authentication where given), not SPARQLWrapper's process-wide one; HTTP errors
        pass through, and an answer the server cut at its time limit is refused."""
        request = self._createRequest()
        opener = self._opener or cancellable_opener()
        response = opener.open(request, timeout=self.timeout or None)
        try:
            check_complete(self.endpoint, response.headers)
        except CopkgError:
            response.close()
            raise
        return response, self.returnFormat


class DigestFirst(urllib.request.HTTPDigestAuthHandler):
    """HTTP Digest authentication sent with the request that carries a body, not after a 401:
    the challenge is fetched first by a GET without a body to the same URL. (Virtuoso answers
    401 and closes the connection while a large body is still being sent, so the usual
    challenge-then-retry breaks the pipe on a graph of a few megabytes.)"""

    def http_request(self, request: urllib.request.Request) -> urllib.request.Request:
        if request.data is None or request.has_header("Authorization"):
            return request
        challenge = self._challenge(request)
        if challenge is not None:
            answer = self.get_authorization(request, challenge)
            if answer:
                request.add_unredirected_header(self.auth_header, f"Digest {answer}")
        return request

    https_request = http_request

    def _challenge(self, request: urllib.request.Request) -> dict[str, str] | None:
        probe = urllib.request.Request(request.full_url, method="GET")
        try:
            with cancellable_opener().open(probe, timeout=request.timeout) as response:
                response.read()
            return None  # no authentication asked for
        except urllib.error.HTTPError as exc:
            asked = exc.code == HTTPStatus.UNAUTHORIZED
            header = exc.headers.get("WWW-Authenticate", "") if asked else ""
            exc.close()
        scheme, _, rest = header.partition(" ")
        if scheme.lower() != "digest":
            return None
        items = urllib.request.parse_http_list(rest)
        return urllib.request.parse_keqv_list(filter(None, items))  # type: ignore[arg-type]


def digest_opener(
    auth: tuple[str, str], urls: Iterable[str | None]
) -> urllib.request.OpenerDirector:
    """A fresh opener that answers a Digest challenge from any of `urls` with `auth`; one a
    request, as urllib's handler counts its retries for its whole life."""
    passwords = urllib.request.HTTPPasswordMgrWithDefaultRealm()
    for url in urls:
        if url is not None:
            passwords.add_password(None, url, *auth)
    return cancellable_opener(DigestFirst(passwords))


# -- closing connections at a deadline ---------------------------------------------------------

_current = threading.local()


class Cancel:
    """Closes the HTTP connections of one piece of work from another thread.

    While it is current in a thread (`cancelling`), every connection that thread opens through
    `cancellable_opener` is registered; `cancel()` shuts them down, so that a read waiting on
    a slow server ends at once (and the server sees the connection close) rather than at the
    socket's timeout, and refuses the connections the work would open after it.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._sockets: list[socket.socket] = []
        self.cancelled = False

    def cancel(self) -> None:
        with self._lock:
            self.cancelled = True
            sockets, self._sockets = self._sockets, []
        for sock in sockets:
            _shut(sock)

    def opened(self, sock: socket.socket) -> None:
        with self._lock:
            if not self.cancelled:
                self._sockets.append(sock)
                return
        _shut(sock)
        raise ConnectionAbortedError("the exchange was cancelled at the time limit")


@contextlib.contextmanager
def cancelling(cancel: Cancel) -> Iterator[Cancel]:
    """Make `cancel` the one that closes the connections this thread opens, for a while."""
    previous = getattr(_current, "cancel", None)
    _current.cancel = cancel
    try:
        yield cancel
    finally:
        _current.cancel = previous


def _shut(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):  # closed already (its descriptor is then -1, not reused)
        sock.shutdown(socket.SHUT_RDWR)


def _connect(connection: http.client.HTTPConnection, connect: Callable[[], None]) -> None:
    cancel: Cancel | None = getattr(_current, "cancel", None)
    if cancel is not None and cancel.cancelled:
        raise ConnectionAbortedError("the exchange was cancelled at the time limit")
    connect()
    if cancel is not None and connection.sock is not None:
        cancel.opened(connection.sock)


class _Connection(http.client.HTTPConnection):
    def connect(self) -> None:
        _connect(self, super().connect)


class _SecureConnection(http.client.HTTPSConnection):
    def connect(self) -> None:
        _connect(self, super().connect)


class _Handler(urllib.request.HTTPHandler):
    def http_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
        return self.do_open(_Connection, req)


class _SecureHandler(urllib.request.HTTPSHandler):
    def __init__(self, context: ssl.SSLContext | None = None) -> None:
        super().__init__(context=context)
        self.ssl_context = context

    def https_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
        return self.do_open(_SecureConnection, req, context=self.ssl_context)


def cancellable_opener(*handlers: urllib.request.BaseHandler) -> urllib.request.OpenerDirector:
    """An opener (with `handlers`) whose connections the current `Cancel` can close."""
    return urllib.request.build_opener(_Handler, _SecureHandler, *handlers)


# -- the server's own time limit ---------------------------------------------------------------

#: The request parameter and unit of servers with a time limit of their own, by name:
#: Virtuoso's `timeout` (milliseconds; an "anytime" query answers what it found by then, which
#: `check_complete` refuses) and Fuseki's (seconds; allowed by fuseki:allowTimeoutOverride).
TIMEOUT_PARAMETERS = {"virtuoso": ("timeout", "ms"), "fuseki": ("timeout", "s")}


def timeout_parameter(spec: str | None) -> tuple[str, str] | None:
    """The (name, unit) that COPKG_REMOTE_TIMEOUT_PARAM describes: `virtuoso`, `fuseki`,
    `NAME:ms` or `NAME:s`; None for nothing to send (unset, empty or `none`)."""
    text = (spec or "").strip()
    if text.lower() in ("", "none"):
        return None
    if text.lower() in TIMEOUT_PARAMETERS:
        return TIMEOUT_PARAMETERS[text.lower()]
    name, _, unit = text.rpartition(":")
    if not name or unit not in ("ms", "s"):
        raise CopkgError(
            f"COPKG_REMOTE_TIMEOUT_PARAM={text!r}: give virtuoso, fuseki, none, or the "
            "parameter's name and unit as NAME:ms or NAME:s",
            status=500,
        )
    return name, unit


def timeout_value(seconds: float, unit: str) -> str:
    """A time limit in the server's unit (whole milliseconds, or seconds)."""
    if unit == "ms":
        return str(max(1, math.ceil(seconds * 1000)))
    return f"{seconds:g}"


def check_complete(url: str, headers: Mapping[str, str]) -> None:
    """Refuse an answer the server cut at its own time limit: Virtuoso's "anytime" answer
    (X-SQL-State S1TAT, HTTP 200 or 206) holds what it had found by then, maybe nothing."""
    if headers.get("X-SQL-State", "").strip() == "S1TAT":
        raise stopped_by_server(url, headers.get("X-SQL-Message", ""))


def stopped_by_server(url: str, detail: str = "") -> CopkgError:
    detail = " ".join(detail.split())[:300]
    why = f" ({detail})" if detail else ""
    return CopkgError(
        f"the SPARQL endpoint {url} stopped the query at its time limit{why}; simplify it "
        "(fewer joins, a LIMIT) or try again later",
        status=503,
        headers={"Retry-After": "10"},
    )


def unreadable(url: str, media_type: str, body: bytes, exc: Exception) -> CopkgError:
    """An answer that cannot be parsed: 503 when the server ended it with its own time limit
    (`oxigraph serve --timeout-s` writes that it cancelled the query into a begun answer)."""
    if b"has been cancelled" in body[-500:]:
        return stopped_by_server(url)
    return CopkgError(
        f"the SPARQL endpoint {url} sent an answer that cannot be read "
        f"({media_type or 'no media type'}): {exc}",
        status=502,
    )


def call(url: str, send: Callable[[], T], timeout: float) -> T:
    """Run one HTTP exchange; every failure becomes a CopkgError that names the URL."""
    try:
        return send()
    except urllib.error.HTTPError as exc:
        raise http_error(url, exc.code, read_body(exc)) from exc
    except SPARQLWrapperException as exc:
        raise wrapper_error(url, exc) from exc
    except urllib.error.URLError as exc:
        raise network_error(url, exc.reason, timeout) from exc
    except (TimeoutError, ConnectionError, HTTPException, OSError) as exc:
        raise network_error(url, exc, timeout) from exc


def read_body(exc: urllib.error.HTTPError) -> str:
    try:
        return exc.read().decode("utf-8", "replace")
    except (OSError, HTTPException):
        return ""


def http_error(url: str, code: int, body: str) -> CopkgError:
    detail = " ".join(body.split())[:500]
    detail = f": {detail}" if detail else ""
    if code == HTTPStatus.BAD_REQUEST:
        return CopkgError(f"the SPARQL endpoint {url} refused the request{detail}", status=400)
    if code in (401, 403):
        return CopkgError(
            f"the SPARQL endpoint {url} refused access (HTTP {code}): it needs credentials or "
            f"does not allow this operation{detail}",
            status=502,
        )
    if code == HTTPStatus.NOT_FOUND:
        return CopkgError(f"nothing answers at {url} (HTTP 404): check the URL{detail}", status=502)
    if code in (503, 504):
        return CopkgError(
            f"the SPARQL endpoint {url} is busy or timed out (HTTP {code}){detail}",
            status=503,
            headers={"Retry-After": "10"},
        )
    return CopkgError(f"the SPARQL endpoint {url} failed (HTTP {code}){detail}", status=502)


def wrapper_error(url: str, exc: SPARQLWrapperException) -> CopkgError:
    codes = {"QueryBadFormed": 400, "Unauthorized": 401, "EndPointNotFound": 404, "URITooLong": 414}
    code = codes.get(type(exc).__name__, 500)
    body = getattr(exc, "response", None) or str(exc)
    if isinstance(body, bytes):
        body = body.decode("utf-8", "replace")
    return http_error(url, code, str(body))


def network_error(url: str, reason: Any, timeout: float) -> CopkgError:
    if isinstance(reason, TimeoutError) or "timed out" in str(reason):
        return CopkgError(
            f"the SPARQL endpoint {url} did not answer within {timeout:g} s (timeout)",
            status=503,
            headers={"Retry-After": "10"},
        )
    if isinstance(reason, ConnectionRefusedError):
        why = "connection refused (is the server running?)"
    else:
        why = str(getattr(reason, "strerror", None) or reason)
    return CopkgError(f"cannot reach the SPARQL endpoint {url}: {why}", status=502)
