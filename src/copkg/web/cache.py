"""Answers to GET requests kept per build: an ETag made of the build's identity and the body,
304 Not Modified on If-None-Match, and a bounded in-memory cache of the bodies.

A build's store never changes once written, so an answer (a named query's rows, a page, the
result of a SPARQL query sent by GET) depends only on the request and on the build: the cache is
keyed on the identity of the build the app serves (the SHA-256 of its manifest, see
`store_identity`) and on what the answer depends on in the request (path and query string,
Accept, Origin). A rebuild or `copkg add` makes a new manifest, hence a new identity: the app
that serves the new build (a restarted server, or a worker reloaded with SIGHUP) keeps nothing
of the old one, and ETags of the old build no longer match. Stores that can change (writable,
in memory, remote) have no identity and are never cached.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from flask import Flask, Response, g, request

from copkg.store import Store

#: Default bound on the cached bodies of one web process (bytes); 0 disables the cache.
DEFAULT_MAX_BYTES = 64 * 1024 * 1024

#: Answers larger than this are given an ETag but not kept.
MAX_ENTRY_BYTES = 8 * 1024 * 1024

#: Paths never cached (updates, and static files, which Flask serves with its own ETags).
UNCACHED_PREFIXES = ("/update", "/static/")

#: Request headers an answer may depend on besides the URL.
KEY_HEADERS = ("Accept", "Origin")

#: Response headers not replayed from the cache (set anew on each response).
_NOT_REPLAYED = {"content-length", "date", "set-cookie", "etag"}


def store_identity(store: Store) -> str | None:
    """The identity of a store that cannot change: the identity of the build it was opened
    from (pipeline.load_build sets it from the manifest), else None."""
    if not getattr(store, "read_only", False):
        return None
    return getattr(store, "build_identity", None)


@dataclass(frozen=True)
class Entry:
    status: int
    headers: tuple[tuple[str, str], ...]
    body: bytes
    etag: str


class ResponseCache:
    """A thread-safe LRU of answers under one build identity, at most `max_bytes` of bodies."""

    def __init__(self, identity: str | None, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        self.identity = identity
        self.max_bytes = max_bytes
        self._entries: OrderedDict[str, Entry] = OrderedDict()
        self._size = 0
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    @property
    def enabled(self) -> bool:
        return self.identity is not None

    def key(self) -> str:
        """What the answer to the current request depends on."""
        parts = [request.method, request.full_path]
        parts += [f"{name}: {request.headers.get(name, '')}" for name in KEY_HEADERS]
        return "\n".join(parts)

    def etag(self, body: bytes) -> str:
        digest = hashlib.sha256()
        digest.update((self.identity or "").encode())
        digest.update(body)
        return digest.hexdigest()[:32]

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


def _cacheable_request() -> bool:
    return request.method == "GET" and not request.path.startswith(UNCACHED_PREFIXES)


def _replay(entry: Entry) -> Response:
    response = Response(entry.body, status=entry.status)
    response.headers.clear()
    for name, value in entry.headers:
        response.headers.add(name, value)
    return response


def init_app(app: Flask, store: Store, max_bytes: int = DEFAULT_MAX_BYTES) -> ResponseCache:
    """Keep the app's GET answers under the identity of its store's build (call before the
    extensions whose headers depend on the request, such as flask-cors)."""
    cache = ResponseCache(store_identity(store) if max_bytes > 0 else None, max_bytes)
    app.extensions["copkg.cache"] = cache

    @app.before_request
    def from_cache() -> Response | None:
        if not cache.enabled or not _cacheable_request():
            return None
        key = cache.key()
        g.copkg_cache_key = key
        entry = cache.get(key)
        if entry is None:
            return None
        g.copkg_cache_hit = True
        response = _replay(entry)
        response.set_etag(entry.etag)
        return response.make_conditional(request)

    @app.after_request
    def to_cache(response: Response) -> Response:
        key = g.pop("copkg_cache_key", None)
        if key is None or g.pop("copkg_cache_hit", False):
            return response
        if response.status_code != 200 or response.is_streamed or response.direct_passthrough:
            return response
        body = response.get_data()
        etag = cache.etag(body)
        response.headers.setdefault("Cache-Control", "no-cache")
        headers = tuple(
            (name, value)
            for name, value in response.headers.items()
            if name.lower() not in _NOT_REPLAYED and not name.lower().startswith("access-control-")
        )
        cache.put(key, Entry(response.status_code, headers, body, etag))
        response.set_etag(etag)
        return response.make_conditional(request)

    return cache


def get_cache(app: Flask) -> ResponseCache | None:
    cache: Any = app.extensions.get("copkg.cache")
    return cache
