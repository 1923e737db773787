"""The front's direct path: queries to /sparql answered in the front's own process, with no
gunicorn and no Flask on the way (issue 13: an ad-hoc query paid ~1 ms of CPU for them).

The front (copkg.web.front) reads each request whole. One to /sparql by GET or POST without a
conditional header is read here by the protocol functions Flask's view calls
(copkg.web.protocol: one reading of the protocol, one content negotiation, one set of checks,
one error shape), run by the front's own pool of query worker processes (the same
ProcessExecutor: time and row limits, the sandbox, fair scheduling by the client's address)
and answered with the headers Flask would give: CORS (computed by flask-cors's own function),
the security headers, the build the request was pinned to (`Copkg-Build`: builds are swapped
here as in each web process, copkg.web.builds), and, when the build keeps answers, an ETag and
the answer cache (copkg.web.cache). What it does not take goes on to gunicorn as before: HEAD,
conditional requests, the service description, updates, and every other path.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache
from http import HTTPStatus
from pathlib import Path
from typing import Any

from flask_cors.core import DEFAULT_OPTIONS, get_cors_headers, serialize_options

from copkg.config import Settings
from copkg.errors import CopkgError
from copkg.pipeline.build import MANIFEST, STORE_DIR, Manifest
from copkg.web import Services
from copkg.web.builds import BUILD_HEADER, BuildSwitch, query_workers, remembered, start_executor
from copkg.web.cache import (
    MAX_POST_KEY_BYTES,
    Entry,
    ResponseCache,
    date_now,
    post_key_of,
    request_key,
)
from copkg.web.messages import Answer, Request, access_line, reason
from copkg.web.protocol import (
    CORS_ALLOW_HEADERS,
    CORS_EXPOSE_HEADERS,
    CORS_METHODS,
    SECURITY_HEADERS,
    ProtocolRequest,
    answer_headers,
    endpoint_url,
    error_json,
    read_query,
)

log = logging.getLogger(__name__)

#: The path answered here.
PATH = "/sparql"

#: Threads that wait on the query workers for the front's requests (one a running request).
THREADS = 64

#: Request headers that make a request conditional: such requests are Flask's (werkzeug's
#: make_conditional answers them).
CONDITIONAL = frozenset(
    {"if-none-match", "if-match", "if-modified-since", "if-unmodified-since", "if-range", "range"}
)

#: The keys of the app's configuration the direct path reads (copkg.web.app.app_config).
CONFIG_KEYS = (
    "QUERY_WORKERS",
    "QUERY_TIMEOUT",
    "MAX_ROWS",
    "ALLOWED_SERVICE_ENDPOINTS",
    "RESPONSE_CACHE_BYTES",
    "CORS_ORIGINS",
    "MAX_CONTENT_LENGTH",
)


def direct_config(config: Mapping[str, Any], settings: Settings) -> dict[str, Any] | None:
    """What the front needs to answer queries itself (JSON-able), from the app's configuration;
    None when queries do not run in worker processes over an on-disk store (a store in memory
    or at a URL: Flask's threads keep them, beside the updates)."""
    if config["QUERY_WORKERS"] < 1:
        return None
    url = settings.store_url
    if url is None:
        store: Path = settings.build_dir / STORE_DIR
        manifest: Path | None = settings.build_dir / MANIFEST
    elif url == "memory:" or url.startswith(("http://", "https://")):
        return None
    else:  # an on-disk store, read-only, as copkg.pipeline.open opens it
        store, manifest = Path(url.removeprefix("file://")).expanduser(), None
    values = {key: config[key] for key in CONFIG_KEYS}
    values["ALLOWED_SERVICE_ENDPOINTS"] = list(values["ALLOWED_SERVICE_ENDPOINTS"])
    return {"store": str(store), "manifest": None if manifest is None else str(manifest), **values}


def open_services(config: Mapping[str, Any], *, start: bool) -> Services:
    """The query workers and answer cache of the build (or store) as it is now. The front opens
    no store itself: its workers do (and check they opened this build)."""
    identity = build_id = None
    if config["manifest"] is not None:
        manifest = Manifest.read(Path(config["manifest"]).parent)
        identity, build_id = manifest.identity, manifest.build_id
    executor = remembered(query_workers(config["store"], identity, config), identity, config)
    kept = config["RESPONSE_CACHE_BYTES"]
    cache = ResponseCache(identity if kept > 0 else None, kept, build_id)
    services = Services(None, executor, cache=cache, build_id=build_id)  # type: ignore[arg-type]
    if start:
        try:
            start_executor(executor)
        except BaseException:
            services.close()
            raise
    return services


class Headers(dict[str, str]):
    """A request's headers by lower-cased name (the first of each), looked up in any case."""

    def __init__(self, pairs: list[tuple[str, str]]) -> None:
        super().__init__()
        for name, value in pairs:
            self.setdefault(name.lower(), value)

    def get(self, name: str, default: Any = None) -> Any:  # type: ignore[override]
        return dict.get(self, name.lower(), default)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and dict.__contains__(self, name.lower())


class DirectQueries:
    """The front's own answers to SPARQL queries."""

    def __init__(self, config: Mapping[str, Any], log_line: Any = None) -> None:
        self.config = dict(config)
        self.log_line = log_line or (lambda line: print(line, flush=True))
        first = open_services(self.config, start=False)  # the workers ready themselves
        manifest = self.config["manifest"]
        self.switch = BuildSwitch(
            first,
            reopen=None if manifest is None else lambda: open_services(self.config, start=True),
            manifest=None if manifest is None else Path(manifest),
        )
        self.threads = ThreadPoolExecutor(THREADS, thread_name_prefix="copkg-direct")
        self.max_rows = int(self.config["MAX_ROWS"])
        max_body = self.config["MAX_CONTENT_LENGTH"]
        self.max_post = min(MAX_POST_KEY_BYTES, max_body or MAX_POST_KEY_BYTES)
        options = {
            **DEFAULT_OPTIONS,
            "origins": self.config["CORS_ORIGINS"],
            "methods": CORS_METHODS,
            "allow_headers": CORS_ALLOW_HEADERS,
            "expose_headers": CORS_EXPOSE_HEADERS,
        }
        cors_options = serialize_options(options)

        @lru_cache(maxsize=256)
        def cors(
            origin: str | None, private: str | None, method: str
        ) -> tuple[tuple[str, str], ...]:
            seen = Headers([])
            if origin is not None:
                seen["origin"] = origin
            if private is not None:
                seen["access-control-request-private-network"] = private
            found = get_cors_headers(cors_options, seen, method)  # type: ignore[arg-type]
            return tuple((name, str(value)) for name, value in found.items())

        self.cors = cors

    def takes(self, request: Request) -> bool:
        """Whether the request is one for the direct path (else gunicorn's)."""
        if request.method not in ("GET", "POST"):
            return False
        if request.target.partition("?")[0] != PATH:
            return False
        return not any(name.lower() in CONDITIONAL for name, _ in request.headers)

    async def answer(self, request: Request, client: str) -> Answer | None:
        """The answer to a request `takes` took; None for one that is Flask's after all (a GET
        without a query: the service description)."""
        services = self.switch.pin()
        try:
            return await self._answer(services, request, client)
        finally:
            self.switch.release(services)

    async def _answer(self, services: Services, request: Request, client: str) -> Answer | None:
        headers = Headers(request.headers)
        query = request.target.partition("?")[2]
        cache: ResponseCache = services.cache
        key = None
        if cache.enabled:
            environ = {
                "REQUEST_METHOD": request.method,
                "wsgi.url_scheme": "http",
                "HTTP_HOST": headers.get("host", ""),
                "SCRIPT_NAME": "",
                "PATH_INFO": PATH,
                "QUERY_STRING": query,
                "HTTP_ACCEPT": headers.get("accept", ""),
                "HTTP_ORIGIN": headers.get("origin", ""),
                "CONTENT_TYPE": headers.get("content-type", ""),
            }
            if request.method == "GET":
                key = request_key(environ)
            else:
                key = post_key_of(environ, request.body, self.max_post)
            entry = None if key is None else cache.get(key)
            if entry is not None:
                return self._finish(request, client, services, entry.status, entry.headers,
                                    entry.body)  # fmt: skip
        status, head, body = await self._run(services, request, query, headers, client)
        if status is None:
            return None
        head = [*head, *self.cors(headers.get("origin"), headers.get(
            "access-control-request-private-network"), request.method)]  # fmt: skip
        head += [(k, v) for k, v in SECURITY_HEADERS.items() if not any(k == n for n, _ in head)]
        if status == HTTPStatus.OK and key is not None:
            etag = cache.etag(body)
            if request.method == "GET":  # an ETag names a GET's representation, not a POST's
                head += [("Cache-Control", "no-cache"), ("ETag", f'"{etag}"')]
            cache.put(key, Entry(status, tuple(head), body, etag, "200 OK"))
        return self._finish(request, client, services, status, head, body)

    async def _run(
        self, services: Services, request: Request, query: str, headers: Headers, client: str
    ) -> tuple[Any, list[tuple[str, str]], bytes]:
        """(status, headers, body) of the query's answer or error; status None: Flask's."""
        try:
            call = read_query(
                ProtocolRequest(
                    request.method,
                    query.encode("latin-1"),
                    headers.get,
                    request.body,
                    endpoint_url(headers.get("host"), PATH),
                )
            )
            if call is None:
                return None, [], b""
            answer = await services.executor.run_async(call.job(client), self.threads)
            return HTTPStatus.OK, answer_headers(call, answer, self.max_rows), answer.body
        except CopkgError as error:
            return self._error(error)
        except Exception:  # a bug answers as Flask's handler does, and is logged
            log.exception("unexpected error on %s %s", request.method, PATH)
            return self._error(CopkgError("internal error; see the server log", status=500))

    @staticmethod
    def _error(error: CopkgError) -> tuple[int, list[tuple[str, str]], bytes]:
        head = [("Content-Type", "application/json")]
        head += [(k, v) for k, v in error.headers.items() if k.lower() != "content-type"]
        return error.status, head, error_json(error)

    def _finish(
        self,
        request: Request,
        client: str,
        services: Services,
        status: int,
        head: Any,
        body: bytes,
    ) -> Answer:
        lines = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in head]
        lines.append((b"Date", date_now().encode("latin-1")))
        if services.build_id is not None:
            lines.append((BUILD_HEADER.encode("latin-1"), services.build_id.encode("latin-1")))
        agent = request.header("user-agent") or "-"
        referer = request.header("referer") or "-"
        self.log_line(access_line(client, request.line, status, len(body), referer, agent))
        status_line = f"HTTP/1.1 {int(status)} {reason(int(status))}".encode("latin-1")
        return Answer(status_line, lines, body, None)

    def close(self) -> None:
        self.switch.close()
        self.threads.shutdown(wait=False, cancel_futures=True)
