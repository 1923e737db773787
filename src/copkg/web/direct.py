"""The front's direct path: queries to /sparql, named queries and resources' JSON pages
(/id/....json) answered in the front's own process, with no gunicorn and no Flask on the way
(issue 13: an ad-hoc query paid ~1 ms of CPU for them, a page more).

The front (copkg.web.front) reads each request whole. One to /sparql by GET or POST without a
conditional header is read here by the protocol functions Flask's view calls
(copkg.web.protocol: one reading of the protocol, one content negotiation, one set of checks,
one error shape), run by the front's own pool of query worker processes (the same
ProcessExecutor: time and row limits, the sandbox, fair scheduling by the client's address)
and answered with the headers Flask would give: CORS (computed by flask-cors's own function),
the security headers, the build the request was pinned to (`Copkg-Build`: builds are swapped
here as in each web process, copkg.web.builds), and, when the build keeps answers, an ETag and
the answer cache (copkg.web.cache). A JSON page is the page read Flask's view asks the workers
for (copkg.querying.pages.reads: the worker writes the JSON), with the view's headers. What it
does not take goes on to gunicorn as before: HEAD, conditional requests, the service
description, updates, HTML pages, and every other path.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import logging
import re
import time
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache
from http import HTTPStatus
from pathlib import Path
from typing import Any, cast

from flask_cors.core import DEFAULT_OPTIONS, get_cors_headers, serialize_options

from copkg.config import Settings
from copkg.errors import CopkgError
from copkg.pipeline.build import MANIFEST
from copkg.querying.executor import AsyncExecutor, Executor, Job
from copkg.querying.memo import MemoExecutor
from copkg.querying.messages import loads_plain
from copkg.querying.named_queries import Fact, load_named_queries
from copkg.querying.pages.links import OFFERED, twin_links
from copkg.web import Services, read_answer, read_job
from copkg.web.builds import BUILD_HEADER, BuildSwitch, open_services
from copkg.web.cache import (
    MAX_POST_KEY_BYTES,
    Entry,
    ResponseCache,
    date_now,
    post_key_of,
    request_key,
)
from copkg.web.messages import MAX_REQUEST_LINE, Answer, Request, access_line, reason
from copkg.web.named import named_answer, read_named
from copkg.web.negotiation import best_offer_of
from copkg.web.protocol import (
    CORS_ALLOW_HEADERS,
    CORS_EXPOSE_HEADERS,
    CORS_METHODS,
    SECURITY_HEADERS,
    ProtocolRequest,
    answer_headers,
    endpoint_url,
    error_json,
    parse_pairs,
    read_query,
)

log = logging.getLogger(__name__)

#: The paths answered here: the SPARQL endpoint, the named queries under a prefix, and the
#: JSON pages of resources (/id/....json, with at most `?incoming=N`, and nothing escaped).
PATH = "/sparql"
NAMED = "/api/queries/"
PAGES = "/id/"
PAGE_QUERY = re.compile(r"(?:incoming=[0-9]+)?")

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
    "OVERVIEW_TIMEOUT",
    "WARM_UP",
)


def direct_config(config: Mapping[str, Any], settings: Settings) -> dict[str, Any] | None:
    """What the front needs to answer queries itself (JSON-able): the settings and the app's
    configuration; None when queries do not run in worker processes over an on-disk store (a
    store in memory or at a URL: Flask's threads keep them, beside the updates)."""
    url = settings.store_url
    if config["QUERY_WORKERS"] < 1 or url == "memory:" or (url or "").startswith("http"):
        return None
    values = {key: config[key] for key in CONFIG_KEYS}
    values["ALLOWED_SERVICE_ENDPOINTS"] = list(values["ALLOWED_SERVICE_ENDPOINTS"])
    fields = {f.name: getattr(settings, f.name) for f in dataclasses.fields(Settings)}
    plain = {k: str(v) if isinstance(v, Path) else v for k, v in fields.items()}
    return {"settings": plain, "config": values}


def settings_of(config: Mapping[str, Any]) -> Settings:
    """The settings `direct_config` wrote."""
    values = dict(config["settings"])
    for name in ("root", "build_dir"):
        values[name] = Path(values[name])
    for name in ("allowed_service_endpoints", "source_texts"):
        values[name] = tuple(values[name])
    return Settings(**values)


def _on_loop(executor: Executor) -> AsyncExecutor:
    """The executor of a build the front serves (checked to have run_async when it opened)."""
    return cast(AsyncExecutor, executor)


class Headers(dict[str, str]):
    """A request's headers by lower-cased name (the first of each), looked up in any case."""

    def __init__(self, pairs: list[tuple[str, str]]) -> None:
        super().__init__()
        for name, value in pairs:
            self.setdefault(name.lower(), value)

    def get(self, name: str, default: Any = None) -> Any:
        return dict.get(self, name.lower(), default)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and dict.__contains__(self, name.lower())


class DirectQueries:
    """The front's own answers to SPARQL queries."""

    def __init__(self, config: Mapping[str, Any], log_line: Any = None) -> None:
        self.settings = settings_of(config)
        self.config = config["config"]
        self.log_line = log_line or (lambda line: print(line, flush=True))
        # the workers ready themselves: the front answers at once, the first queries wait
        first = open_services(self.config, self.settings, None)
        reopen = None
        if self.settings.store_url is None:  # the build: swapped when build/ is replaced
            reopen = lambda: open_services(self.config, self.settings, None, start=True)  # noqa: E731
        self.switch = BuildSwitch(
            first,
            reopen=reopen,
            manifest=self.settings.build_dir / MANIFEST if reopen else None,
            on_switch=self._warm_up_soon,
        )
        self.loop: asyncio.AbstractEventLoop | None = None
        if not hasattr(first.executor, "run_async"):
            raise CopkgError("queries of this store do not run in worker processes", status=500)
        self.queries = load_named_queries(self.settings.queries_dir)
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

    def start(self) -> None:
        """Begin on the running loop: the named queries of the build run once, in the
        background, so that their answers are kept before the first client asks."""
        self.loop = asyncio.get_running_loop()
        self._warm_up_soon(self.switch.current)

    def _warm_up_soon(self, services: Services) -> None:
        """Warm a build's answers up on the loop (from any thread: a build swapped in)."""
        warm = self.config.get("WARM_UP", True)  # COPKG_WARM_UP=false: none
        if self.loop is not None and warm and isinstance(services.executor, MemoExecutor):
            task = functools.partial(asyncio.ensure_future, self.warm_up(services))
            self.loop.call_soon_threadsafe(task)

    async def warm_up(self, services: Services) -> int:
        """Run each named query once with its default parameters, as JSON rows (the API's
        default); how many were answered. A query that fails is left to its first request."""
        started, answered = time.perf_counter(), 0
        for name in sorted(self.queries):
            try:
                ask = read_named(self.queries, name, accept="application/json", values=[],
                                 path=NAMED + name, args=[])  # fmt: skip
                call = ask.call(await self._facts(services, ask.needs(), None))
                await _on_loop(services.executor).run_async(call.job(None), self.threads)
                answered += 1
            except CopkgError:
                continue
            except Exception:  # a warm-up never takes the front down
                log.exception("warm-up: %s failed", name)
        seconds = time.perf_counter() - started
        self.log_line(f"warm-up: {answered} of {len(self.queries)} named queries answered in "
                      f"{seconds:.1f} s (the front's query workers)")  # fmt: skip
        return answered

    def takes(self, request: Request) -> bool:
        """Whether the request is one for the direct path (else gunicorn's): GET or POST to
        /sparql, GET of a named query or of a resource's JSON page, neither conditional nor
        past gunicorn's limit on the request line (gunicorn refuses it, as it did before)."""
        if len(request.line) > MAX_REQUEST_LINE:
            return False
        path = request.target.partition("?")[0]
        if path == PATH:
            if request.method not in ("GET", "POST"):
                return False
        elif path.startswith(PAGES):
            if not self._takes_page(request):
                return False
        elif not (
            request.method == "GET" and path.startswith(NAMED) and path != NAMED and "%" not in path
        ):
            return False
        return not any(name.lower() in CONDITIONAL for name, _ in request.headers)

    @staticmethod
    def _takes_page(request: Request) -> bool:
        """Whether a request for a page is one the front answers: GET of a JSON twin."""
        path, _, query = request.target.partition("?")
        return (
            request.method == "GET"
            and path.endswith(".json")
            and len(path) > len(PAGES) + len(".json")
            and "%" not in path
            and PAGE_QUERY.fullmatch(query) is not None
        )

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
        path, _, query = request.target.partition("?")
        cache: ResponseCache = services.cache
        key = None
        if cache.enabled:
            environ = {
                "REQUEST_METHOD": request.method,
                "wsgi.url_scheme": "http",
                "HTTP_HOST": headers.get("host", ""),
                "SCRIPT_NAME": "",
                "PATH_INFO": path,
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
        if path == PATH:
            run = self._run(services, request, query, headers, client)
        elif path.startswith(PAGES):
            run = self._run_page(services, path, query, headers, client)
        else:
            run = self._run_named(services, path, query, headers, client)
        status, head, body = await run
        if status is None:
            return None
        if not path.startswith(PAGES):  # (the pages are not open to other origins: CORS_PATHS)
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
            answer = await _on_loop(services.executor).run_async(call.job(client), self.threads)
            return HTTPStatus.OK, answer_headers(call, answer, self.max_rows), answer.body
        except CopkgError as error:
            return self._error(error)
        except Exception:  # a bug answers as Flask's handler does, and is logged
            log.exception("unexpected error on %s %s", request.method, PATH)
            return self._error(CopkgError("internal error; see the server log", status=500))

    async def _run_named(
        self, services: Services, path: str, query: str, headers: Headers, client: str
    ) -> tuple[Any, list[tuple[str, str]], bytes]:
        """(status, headers, body) of a named query's answer or error."""
        try:
            args = parse_pairs(query.encode("latin-1").decode()) if query else []
            ask = read_named(
                self.queries,
                path.removeprefix(NAMED),
                accept=headers.get("accept"),
                values=args,
                path=path,
                args=args,
            )
            call = ask.call(await self._facts(services, ask.needs(), client))
            answer = await _on_loop(services.executor).run_async(call.job(client), self.threads)
            head, body = named_answer(call, answer)
            return HTTPStatus.OK, head, body
        except CopkgError as error:
            return self._error(error)
        except UnicodeDecodeError:
            return self._error(CopkgError("the query string is not valid UTF-8", status=400))
        except Exception:  # a bug answers as Flask's handler does, and is logged
            log.exception("unexpected error on GET %s", path)
            return self._error(CopkgError("internal error; see the server log", status=500))

    async def _facts(
        self, services: Services, needs: list[Fact], client: str | None
    ) -> dict[Fact, Any]:
        """The facts of the store a named query needs, read by the build's workers as page
        reads (a build's once: copkg.web.store_facts does the same for Flask's views)."""
        known, missing = services.known_facts(needs)
        read = {}
        for fact in missing:
            job = read_job(fact[0], fact[1:], client=client, timeout=services.executor.timeout,
                           overview=float(self.config.get("OVERVIEW_TIMEOUT", 0)))  # fmt: skip
            answer = await _on_loop(services.executor).run_async(job, self.threads)
            read[fact] = read_answer(fact[0], answer)
        services.keep_facts(read)
        return {**known, **read}

    async def _run_page(
        self, services: Services, path: str, query: str, headers: Headers, client: str
    ) -> tuple[Any, list[tuple[str, str]], bytes]:
        """(status, headers, body) of a resource's JSON page, as Flask's view answers it
        (copkg.web.pages.resources); status None: Flask's after all (an IRI that itself ends
        in .json, served by Accept)."""
        try:
            page = int(query.partition("=")[2] or "1")
            if page < 1:
                raise CopkgError("incoming must be a page number from 1", status=400)
            plain = best_offer_of(headers.get("accept"), OFFERED)
            job = Job.page_read("resource", path, page, plain, client=client)
            answer = await _on_loop(services.executor).run_async(job, self.threads)
            read = loads_plain(answer.body)
            if read[0] != "json":
                return None, [], b""
            head = [
                ("Content-Type", "application/json"),
                ("Link", twin_links(read[1])),
                ("Vary", "Accept"),
            ]
            return HTTPStatus.OK, head, read[2]
        except CopkgError as error:
            return self._error(error)
        except Exception:  # a bug answers as Flask's handler does, and is logged
            log.exception("unexpected error on GET %s", path)
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
