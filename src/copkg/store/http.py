"""The HTTP side of the remote store: SPARQLWrapper requests with a given query form, HTTP
Digest authentication sent with the body, and every failed exchange as a CopkgError that names
the URL."""

from __future__ import annotations

import http.client
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable
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
        """Open the request with this request's own opener (Digest authentication) where given,
        not SPARQLWrapper's, which installs a process-wide one; HTTP errors pass through."""
        if self._opener is None:
            return super()._query()
        request = self._createRequest()
        return self._opener.open(request, timeout=self.timeout or None), self.returnFormat


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
            with urllib.request.urlopen(probe, timeout=request.timeout) as response:
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
    return urllib.request.build_opener(DigestFirst(passwords))


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
