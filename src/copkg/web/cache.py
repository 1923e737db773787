"""Answers to GET and HEAD requests kept per build: an ETag made of the build's identity and the
body, 304 Not Modified on If-None-Match, and a bounded in-memory cache of the answers, served by
a WSGI middleware in front of Flask (a hit costs no dispatch).

A build's store never changes once written, so an answer (a named query's rows, a page, the
result of a SPARQL query sent by GET) depends only on the request and on the build: the cache is
keyed on the identity of the build the app serves (the SHA-256 of its manifest, see
`store_identity`) and on what the answer depends on in the request (host, path and query
string, Accept, Origin). A rebuild or `copkg add` makes a new manifest, hence a new identity: the
app swaps in the new build with a new cache (copkg.web.builds), keeps nothing of the old one, and
ETags of the old build no longer match (an ETag starts with the build's id). Stores that can
change (writable, in memory, remote) have no identity and are never cached.
"""

from __future__ import annotations

import hashlib
import io
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

from flask import Flask, request
from werkzeug.http import http_date
from werkzeug.wrappers import Response

from copkg.querying.named_queries import paging
from copkg.store import Store

#: Default bound on the cached bodies of one web process (bytes); 0 disables the cache.
DEFAULT_MAX_BYTES = 64 * 1024 * 1024

#: Answers larger than this are given an ETag but not kept.
MAX_ENTRY_BYTES = 8 * 1024 * 1024

#: Paths never cached (updates, and static files, which Flask serves with its own ETags).
UNCACHED_PREFIXES = ("/update", "/static/")

#: Request headers an answer may depend on besides the URL and the host (as WSGI keys).
KEY_ENVIRON = ("HTTP_ACCEPT", "HTTP_ORIGIN")

#: Request headers that make a request conditional (answered through werkzeug).
CONDITIONAL_ENVIRON = (
    "HTTP_IF_NONE_MATCH",
    "HTTP_IF_MATCH",
    "HTTP_IF_MODIFIED_SINCE",
    "HTTP_IF_UNMODIFIED_SINCE",
    "HTTP_IF_RANGE",
    "HTTP_RANGE",
)

#: POSTs kept by their body: SPARQL queries (not updates) in either protocol encoding.
POST_CACHED_PATHS = ("/sparql",)
POST_CACHED_TYPES = ("application/x-www-form-urlencoded", "application/sparql-query")

#: The largest POST body kept as part of a key (larger POSTs are run every time).
MAX_POST_KEY_BYTES = 64 * 1024

#: Where the middleware tells Flask's after_request the key to keep an answer under.
ENVIRON_KEY = "copkg.cache.key"

#: Response headers not kept (written anew on each response).
_NOT_REPLAYED = {"date"}

StartResponse = Callable[..., Any]
WSGIApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]


#: The identity of a store that cannot change (its build's), else None: what answers are kept
#: under (the one definition is the querying layer's, which keeps page reads per build too).
store_identity = paging.store_identity


@dataclass(frozen=True)
class Entry:
    """An answer as Flask gave it: status, headers (ETag and CORS included, not Date), body."""

    status: int
    headers: tuple[tuple[str, str], ...]
    body: bytes
    etag: str
    status_line: str = "200 OK"


class ResponseCache:
    """A thread-safe LRU of answers under one build identity, at most `max_bytes` of bodies."""

    def __init__(
        self, identity: str | None, max_bytes: int = DEFAULT_MAX_BYTES, build_id: str | None = None
    ) -> None:
        self.identity = identity
        self.build_id = build_id or (identity or "")[:16]
        self.max_bytes = max_bytes
        self._entries: OrderedDict[str, Entry] = OrderedDict()
        self._size = 0
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    @property
    def enabled(self) -> bool:
        return self.identity is not None

    def etag(self, body: bytes) -> str:
        digest = hashlib.sha256()
        digest.update((self.identity or "").encode())
        digest.update(body)
        return f"{self.build_id}-{digest.hexdigest()[:24]}"

    def get(self, key: str) -> Entry | None:
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                self.misses += 1
                return None
            self._entries.move_to_end(key)
            self.hits += 1
            return entry

    def put(self, key: str, entry: Entry) -> None:
        size = len(entry.body) + len(key)
        if size > min(MAX_ENTRY_BYTES, self.max_bytes):
            return
        with self._lock:
            old = self._entries.pop(key, None)
            if old is not None:
                self._size -= len(old.body) + len(key)
            self._entries[key] = entry
            self._size += size
            while self._size > self.max_bytes and self._entries:
                dropped_key, dropped = self._entries.popitem(last=False)
                self._size -= len(dropped.body) + len(dropped_key)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._size = 0

    def __len__(self) -> int:
        return len(self._entries)


def request_key(environ: Mapping[str, Any]) -> str:
    """What the answer to a request depends on: method, scheme, host (base IRIs and the service
    description name the host), path, query string, Accept and Origin."""
    return "\n".join(
        (
            environ.get("REQUEST_METHOD", ""),
            environ.get("wsgi.url_scheme", ""),
            environ.get("HTTP_HOST") or environ.get("SERVER_NAME", ""),
            environ.get("SCRIPT_NAME", ""),
            environ.get("PATH_INFO", ""),
            environ.get("QUERY_STRING", ""),
            *(environ.get(name, "") for name in KEY_ENVIRON),
        )
    )


def _cacheable(environ: Mapping[str, Any]) -> bool:
    return environ.get("REQUEST_METHOD") in ("GET", "HEAD") and not environ.get(
        "PATH_INFO", ""
    ).startswith(UNCACHED_PREFIXES)


class _Unreadable:
    """A request body that could not be read: reading it again raises the same error, so that
    Flask answers it as it would have (408 for a client gone silent, say)."""

    def __init__(self, error: Exception) -> None:
        self.error = error

    def read(self, *args: Any) -> bytes:
        raise self.error

    readline = read

    def readlines(self, *args: Any) -> list[bytes]:
        raise self.error

    def __iter__(self) -> Iterator[bytes]:
        raise self.error


def post_key(environ: dict[str, Any], max_body: int) -> str | None:
    """The key of a query POSTed to /sparql (form or application/sparql-query) with a
    Content-Length up to `max_body`: the request's key, its Content-Type and its body (read
    here, and given back to Flask as a new stream). None for any other POST."""
    if not _post_cached(environ):
        return None
    try:
        length = int(environ.get("CONTENT_LENGTH") or "")
    except ValueError:
        return None
    if not 0 < length <= max_body:
        return None
    try:
        body = environ["wsgi.input"].read(length)
    except Exception as exc:  # noqa: BLE001 - each WSGI server's input raises its own kinds (a client gone silent: 408)
        environ["wsgi.input"] = _Unreadable(exc)
        return None
    environ["wsgi.input"] = io.BytesIO(body)
    if len(body) != length:
        return None
    return post_key_of(environ, body, max_body)


def _post_cached(environ: Mapping[str, Any]) -> bool:
    content_type = environ.get("CONTENT_TYPE", "")
    return (
        environ.get("PATH_INFO") in POST_CACHED_PATHS
        and content_type.split(";", 1)[0].strip().lower() in POST_CACHED_TYPES
    )


def post_key_of(environ: Mapping[str, Any], body: bytes, max_body: int) -> str | None:
    """The key of a query POSTed to /sparql, its body in hand (see `post_key`)."""
    if not _post_cached(environ) or not 0 < len(body) <= max_body:
        return None
    content_type = environ.get("CONTENT_TYPE", "")
    return f"{request_key(environ)}\n{content_type}\n{body.decode('latin-1')}"


def _conditional(environ: Mapping[str, Any]) -> bool:
    return any(name in environ for name in CONDITIONAL_ENVIRON)


_date_lock = threading.Lock()
_date: list[tuple[int, str]] = [(0, "")]  # the second formatted last, and its header


def date_now() -> str:
    """The Date header werkzeug writes (one formatting a second)."""
    second = int(time.time())
    current = _date[0]
    if current[0] != second:
        current = (second, http_date(second))
        with _date_lock:
            _date[0] = current
    return current[1]


class _Running:
    """A request being answered: done when its answer is kept; its answer when it is an error
    (not kept), for the same requests that waited for it."""

    def __init__(self) -> None:
        self.done = threading.Event()
        self.error: tuple[str, list[tuple[str, str]], bytes] | None = None


class CacheMiddleware:
    """The WSGI app in front of Flask: answers a cached request from the cache without Flask's
    dispatch (the headers and body of the first answer, a fresh Date; conditional requests
    through werkzeug's make_conditional, as Flask does them), and lets the rest through.

    Concurrent requests for an answer not yet cached wait for the first of them to finish
    (`wait` s at most) instead of running the same query again, and get its answer: the one
    kept, or the same error (a query past the time limit would run past it again).
    """

    def __init__(
        self,
        app: WSGIApp,
        cache_of: Callable[[Mapping[str, Any]], ResponseCache],
        wait: float,
        max_body: int | None = None,
    ) -> None:
        self.app = app
        self.cache_of = cache_of  # the cache of the build the request is pinned to
        self.wait = wait
        self.max_post = min(MAX_POST_KEY_BYTES, max_body or MAX_POST_KEY_BYTES)
        self._running: dict[tuple[str | None, str], _Running] = {}
        self._lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        cache = self.cache_of(environ)
        if not cache.enabled:
            return self.app(environ, start_response)
        if _cacheable(environ):
            key: str | None = request_key(environ)
        elif environ.get("REQUEST_METHOD") == "POST":
            key = post_key(environ, self.max_post)
        else:
            key = None
        if key is None:
            return self.app(environ, start_response)
        entry = cache.get(key)
        if entry is None:
            with self._lock:
                running = self._running.get((cache.identity, key))
                if running is None:
                    self._running[(cache.identity, key)] = first = _Running()
            if running is None:
                return self._compute(key, cache, first, environ, start_response)
            running.done.wait(self.wait)
            entry = cache.get(key)
            if entry is None and running.error is not None:
                status, headers, body = running.error
                start_response(status, headers)
                return [body]
            if entry is None:  # still running, or not kept (too large): run it here
                environ[ENVIRON_KEY] = key
                return self.app(environ, start_response)
        return replay(entry, environ, start_response)

    def _compute(
        self,
        key: str,
        cache: ResponseCache,
        running: _Running,
        environ: dict[str, Any],
        start_response: StartResponse,
    ) -> Iterable[bytes]:
        environ[ENVIRON_KEY] = key
        answer: list[Any] = []

        def keep_status(status: str, headers: list[tuple[str, str]], *exc_info: Any) -> Any:
            answer[:] = [status, headers]
            return start_response(status, headers, *exc_info)

        try:
            body = self.app(environ, keep_status)
            if (
                answer and int(answer[0][:3]) >= HTTPStatus.BAD_REQUEST
            ):  # an error: small, and shared
                try:
                    data = b"".join(body)
                finally:
                    if hasattr(body, "close"):
                        body.close()
                running.error = (answer[0], list(answer[1]), data)
                return [data]
            return body
        finally:  # Flask has kept the answer (or not) by the time it returns its iterable
            with self._lock:
                del self._running[(cache.identity, key)]
            running.done.set()


def replay(entry: Entry, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
    """A cached answer to this request, as Flask would have given it (a POST as it was: Flask
    makes only GET and HEAD answers conditional, and dates them)."""
    if environ["REQUEST_METHOD"] == "POST":
        start_response(entry.status_line, list(entry.headers))
        return [entry.body]
    if _conditional(environ):
        response = Response(entry.body, status=entry.status, headers=list(entry.headers))
        response.make_conditional(environ)
        return response(environ, start_response)
    start_response(entry.status_line, [*entry.headers, ("Date", date_now())])
    return [] if environ["REQUEST_METHOD"] == "HEAD" else [entry.body]


def cache_for(store: Store, max_bytes: int = DEFAULT_MAX_BYTES) -> ResponseCache:
    """The answer cache of a store: under its build's identity, or disabled."""
    identity = store_identity(store) if max_bytes > 0 else None
    return ResponseCache(identity, max_bytes, getattr(store, "build_id", None))


def init_app(
    app: Flask, cache_of: Callable[[Mapping[str, Any]], ResponseCache], wait: float = 30.0
) -> None:
    """Keep the app's GET and HEAD answers, and the answers to queries POSTed to /sparql, in
    the cache of the build each request is pinned to (`cache_of(environ)`; call before the
    extensions whose headers the answer must keep, such as flask-cors: their after_request
    functions then run before ours). `wait` bounds how long a request waits for the same
    request already running."""
    app.wsgi_app = CacheMiddleware(  # type: ignore[method-assign]
        app.wsgi_app, cache_of, wait, app.config.get("MAX_CONTENT_LENGTH")
    )

    @app.after_request
    def to_cache(response: Response) -> Response:
        key = request.environ.pop(ENVIRON_KEY, None)
        if key is None:
            return response
        cache = cache_of(request.environ)
        if (
            response.status_code != HTTPStatus.OK
            or response.is_streamed
            or response.direct_passthrough
        ):
            return response
        body = response.get_data()
        etag = cache.etag(body)
        if request.method != "POST":  # an ETag names a GET's representation, not a POST's
            response.headers.setdefault("Cache-Control", "no-cache")
            response.set_etag(etag)
        if "Set-Cookie" not in response.headers:  # (case-insensitive) never another's cookie
            headers = tuple(
                (name, value)
                for name, value in response.headers.items()
                if name.lower() not in _NOT_REPLAYED
            )
            cache.put(key, Entry(response.status_code, headers, body, etag, response.status))
        return response.make_conditional(request)
