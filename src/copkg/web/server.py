"""`copkg serve`: the app under gunicorn (gthread workers), never Flask's development server,
behind the asynchronous front of copkg.web.front, which holds the public port: gunicorn listens
on a private Unix socket and gets each request whole, so slow clients never hold its threads.

A client that stops half-way through its request (headers or body), or stops reading the
answer, is dropped after CLIENT_TIMEOUT s of silence (COPKG_CLIENT_TIMEOUT): otherwise a few
such connections hold every request thread and the service stops answering (slowloris). And
the worker closes connections in helper threads: gunicorn's gthread worker lingers up to 2 s
on each closing connection whose client does not close its side, in its main loop, which
then accepts nothing.
"""

from __future__ import annotations

import contextlib
import gc
import io
import logging
import math
import os
import select
import shutil
import signal
import socket
import struct
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, cast

from gunicorn import glogging
from gunicorn.app.base import BaseApplication
from gunicorn.workers import gthread

from copkg.config import SERVE_TYPES, Settings, read_environment
from copkg.errors import CopkgError
from copkg.pipeline.open import check_store
from copkg.web import front
from copkg.web.app import app_config, create_app
from copkg.web.direct import direct_config
from copkg.web.messages import MAX_REQUEST_LINE

log = logging.getLogger(__name__)

#: Request threads per gunicorn worker: slow queries wait in threads, not in the accept queue.
THREADS = 8

#: At most this many gunicorn workers by default: each has its own query worker processes
#: (two, each opening the store) and its own answer caches.
MAX_DEFAULT_WORKERS = 4


#: Seconds a client may stay silent in the middle of a request, or not read our answer.
CLIENT_TIMEOUT = 10.0

#: A body over the limit is still read (and dropped) up to this many bytes before the 413 is
#: sent: a client that is not reading answers until it has sent its body (urllib, requests)
#: otherwise gets a broken pipe instead of the 413. Larger bodies are cut off at once.
DRAIN_BYTES = 64 * 1024 * 1024

#: gunicorn's default access log format, which CopkgLogger writes cheaply.
ACCESS_LOG_FORMAT = '%(h)s %(l)s %(u)s %(t)s "%(r)s" %(s)s %(b)s "%(f)s" "%(a)s"'


class CopkgApplication(BaseApplication):  # type: ignore[misc]
    """gunicorn running create_app({"SETTINGS": settings}) in each worker process."""

    def __init__(self, settings: Settings, options: dict[str, Any], warm_up: bool = True) -> None:
        self.settings = settings
        self.options = options
        self.warm_up = warm_up  # (not when the front runs the named queries: it warms them)
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            if key in self.cfg.settings:  # control_socket_disable is new in gunicorn 25
                self.cfg.set(key, value)

    def load(self) -> Any:
        log_like_gunicorn()
        app = create_app({"SETTINGS": self.settings, "WARM_UP": self.warm_up})
        # Flask's way to add WSGI middleware, which mypy reads as assigning to a method
        app.wsgi_app = guarded_input(app.wsgi_app, app.config.get("MAX_CONTENT_LENGTH"))  # type: ignore[method-assign]
        return app


def log_like_gunicorn() -> None:
    """copkg's log records (the warm-up, unexpected errors) go to gunicorn's error log, at its
    level, in its format."""
    ours, theirs = logging.getLogger("copkg"), logging.getLogger("gunicorn.error")
    ours.handlers = list(theirs.handlers)
    ours.setLevel(theirs.level)
    ours.propagate = False


class _GuardedInput:
    """wsgi.input whose reads turn a client gone silent (the socket's receive timeout) into
    408 Request Timeout rather than an unexpected error, and end the connection's reading
    side, so that gunicorn does not wait on it again for the rest of the body.

    A body without Content-Length (chunked) is read whole first, and one over `max_body`
    bytes is 413: werkzeug would cut it at the limit without a word, and run what is left.
    """

    def __init__(self, stream: Any, sock: socket.socket | None, max_body: int | None) -> None:
        self._stream = stream
        self._socket = sock
        self._max_body = max_body

    def _call(self, name: str, *args: Any) -> Any:
        from werkzeug.exceptions import RequestEntityTooLarge, RequestTimeout

        try:
            if self._max_body is not None:
                data = self._stream.read(self._max_body + 1)
                while data and len(data) <= self._max_body:
                    more = self._stream.read(self._max_body + 1 - len(data))
                    if not more:
                        break
                    data += more
                if len(data) > self._max_body:
                    drain(self._stream, drain_bound(self._max_body) - len(data))
                    raise RequestEntityTooLarge(
                        f"the request body is over the limit of {self._max_body} bytes"
                    )
                self._stream, self._max_body = io.BytesIO(data), None
            return getattr(self._stream, name)(*args)
        except (BlockingIOError, TimeoutError) as exc:
            if self._socket is not None:
                with contextlib.suppress(OSError):
                    self._socket.shutdown(socket.SHUT_RD)
            raise RequestTimeout(
                "the request body stopped arriving; send it whole, without pauses"
            ) from exc

    def read(self, *args: Any) -> bytes:
        return cast(bytes, self._call("read", *args))

    def readline(self, *args: Any) -> bytes:
        return cast(bytes, self._call("readline", *args))

    def readlines(self, *args: Any) -> list[bytes]:
        return cast(list[bytes], self._call("readlines", *args))

    def __iter__(self) -> Iterator[bytes]:
        return iter(self.readline, b"")


def guarded_input(
    wsgi_app: Callable[..., Iterable[bytes]], max_body: int | None
) -> Callable[..., Iterable[bytes]]:
    """A WSGI app reading its request body through _GuardedInput."""

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        forwarded = environ.get("HTTP_X_FORWARDED_FOR")
        if forwarded and "REMOTE_PORT" not in environ:  # over the Unix socket: from the front
            environ["REMOTE_ADDR"] = forwarded
        if "wsgi.input" in environ:
            chunked = not environ.get("CONTENT_LENGTH") and max_body is not None
            environ["wsgi.input"] = _GuardedInput(
                environ["wsgi.input"], environ.get("gunicorn.socket"), max_body if chunked else None
            )
            length = environ.get("CONTENT_LENGTH") or ""
            if max_body is not None and length.isdigit() and max_body < int(length):
                if int(length) <= drain_bound(max_body):  # read it, so the client sees our 413
                    with contextlib.suppress(Exception):  # reading again raises what it did
                        drain(environ["wsgi.input"], int(length))
                environ["wsgi.input"] = io.BytesIO()  # werkzeug answers 413 by the length
        return wsgi_app(environ, start_response)

    return app


def drain_bound(max_body: int) -> int:
    """How much of a body over the limit is read and dropped before answering 413."""
    return max(DRAIN_BYTES, 4 * max_body)


def drain(stream: Any, size: int) -> None:
    """Read and drop up to `size` bytes of a request body (less if it ends first)."""
    while size > 0:
        chunk = stream.read(min(size, 1 << 20))
        if not chunk:
            return
        size -= len(chunk)


_closer: ThreadPoolExecutor | None = None
_close = gthread.TConn.close  # gunicorn's own, before CopkgThreadWorker swaps the class


def _close_later(conn: Any) -> None:
    global _closer  # noqa: PLW0603 (one pool a process, made on first use)
    if _closer is None:
        _closer = ThreadPoolExecutor(max_workers=4, thread_name_prefix="copkg-close")
    _closer.submit(_close, conn, True)


class _QuickCloseConn(gthread.TConn):  # type: ignore[misc]
    """A connection whose graceful close (a linger for the client's end) runs in a helper
    thread, never in the worker's main loop."""

    def close(self, graceful: bool = False) -> None:
        if graceful:
            _close_later(self)
        else:
            _close(self, graceful)


class CopkgThreadWorker(gthread.ThreadWorker):  # type: ignore[misc]
    """gunicorn's gthread worker, making its connections _QuickCloseConn."""

    def init_process(self) -> None:
        gthread.TConn = _QuickCloseConn  # this worker process only: accept() makes them
        super().init_process()

    def run(self) -> None:
        gc.freeze()  # the app as loaded: left out of every collection, the one at exit included
        super().run()

    def _cap_keepalive(self, deadline: float) -> None:
        """On stopping, close idle kept-alive connections now, not 2 s later: their only
        client is the front, which stops with the service (requests in flight still finish)."""
        super()._cap_keepalive(min(deadline, time.monotonic()))


class CopkgLogger(glogging.Logger):  # type: ignore[misc]
    """gunicorn's logger, writing the access line of its default format (Apache combined)
    without first gathering every header and environ value as format atoms: measured on cached
    answers, gunicorn's line cost ~65 us of the worker's ~255 us a request, this one ~35 us."""

    _second = 0
    _stamp = ""

    def access(self, resp: Any, req: Any, environ: dict[str, Any], request_time: Any) -> None:
        if self.cfg.access_log_format != ACCESS_LOG_FORMAT:
            super().access(resp, req, environ, request_time)
            return
        if not self.access_log_enabled:
            return
        status = resp.status
        if isinstance(status, str):
            status = status.split(None, 1)[0]
        sent = getattr(resp, "sent", None)
        user = self._get_user(environ) if "HTTP_AUTHORIZATION" in environ else None
        request = f"{environ['REQUEST_METHOD']} {environ['RAW_URI']} {environ['SERVER_PROTOCOL']}"
        fields = (
            _escaped(environ.get("REMOTE_ADDR", "-")),
            "-",
            _escaped(user or "-"),
            self.now(),
            f'"{_escaped(request)}"',
            _escaped(status) if isinstance(status, str) else status,
            "-" if sent is None else sent,
            f'"{_escaped(environ.get("HTTP_REFERER", "-"))}"',
            f'"{_escaped(environ.get("HTTP_USER_AGENT", "-"))}"',
        )
        line = " ".join(map(str, fields))
        try:
            self.access_log.info(line)
        except Exception:  # noqa: BLE001 (a failed log line must not fail the response)
            self.exception("cannot write the access log")

    def now(self) -> str:
        second = int(time.time())
        if second != self._second:
            self._stamp, self._second = super().now(), second
        return self._stamp


def _escaped(value: str) -> str:
    """A value as gunicorn's access log writes it (double quotes escaped)."""
    return value.replace('"', '\\"')


def limit_client_silence(sock: socket.socket, seconds: float) -> None:
    """Receive and send timeouts in the kernel on a listening socket, inherited by every
    connection it accepts (gunicorn makes those blocking without a timeout of its own)."""
    whole = int(seconds)
    value = struct.pack("ll", whole, int((seconds - whole) * 1_000_000))
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, value)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, value)


def default_workers() -> int:
    """One gunicorn worker a core, up to MAX_DEFAULT_WORKERS: one worker holds Python's lock
    while it answers, so a second core only serves requests through a second process (cached
    answers at N=10: 2,828 -> 3,348 requests/s, medians of 10 alternating rounds)."""
    return max(1, min(os.cpu_count() or 1, MAX_DEFAULT_WORKERS))


def gunicorn_options(
    settings: Settings,
    host: str,
    port: int,
    workers: int | None,
    client_timeout: float = CLIENT_TIMEOUT,
    bind: str | None = None,
) -> dict[str, Any]:
    """The gunicorn settings of `copkg serve` (listening on `bind`, default host:port)."""
    if workers is not None and workers < 1:
        raise CopkgError("--workers must be at least 1", status=400)
    if client_timeout <= 0:
        raise CopkgError("the client timeout must be a positive number of seconds", status=400)
    url = f"http://{host}:{port}"

    def when_ready(server: Any) -> None:
        for listener in server.LISTENERS:  # before any worker accepts a connection
            limit_client_silence(listener.sock, client_timeout)
        server.log.info("copkg SPARQL endpoint: %s/sparql (query page %s/query)", url, url)

    return {
        "bind": bind or f"{host}:{port}",
        "workers": workers or default_workers(),
        "worker_class": "copkg.web.server.CopkgThreadWorker",
        "threads": THREADS,
        # a request waits at most for the query limit (and a worker slot): leave room for both
        "timeout": max(30, math.ceil(4 * settings.query_timeout)),
        "graceful_timeout": 10,
        "limit_request_line": MAX_REQUEST_LINE,
        "accesslog": "-",
        "logger_class": "copkg.web.server.CopkgLogger",
        "errorlog": "-",
        "loglevel": "info",
        "proc_name": "copkg",
        "preload_app": False,
        "control_socket_disable": True,  # one fixed socket path would clash between servers
        "when_ready": when_ready,
        "keepalive": 5,  # the front keeps idle connections for UPSTREAM_IDLE s
        # headers only a proxy may set (SCRIPT_NAME, PATH_INFO, which gunicorn trusts from
        # 127.0.0.1): the front drops them from clients, and gunicorn ignores them
        "forwarder_headers": "",
        "secure_scheme_headers": {},
    }


def serve(
    settings: Settings, host: str = "127.0.0.1", port: int = 5000, workers: int | None = None
) -> None:
    """Serve the SPARQL endpoint and the rest of the app on host:port until stopped: the front
    on host:port, gunicorn on a Unix socket in a private temporary directory."""
    given = read_environment(SERVE_TYPES)
    client_timeout = given.get("client_timeout", CLIENT_TIMEOUT)
    min_rate = given.get("client_min_rate", front.MIN_RATE)
    max_buffered = given.get("front_buffer", front.MAX_BUFFERED)
    if min_rate <= 0 or max_buffered <= 0:
        raise CopkgError("COPKG_CLIENT_MIN_RATE and COPKG_FRONT_BUFFER must be positive", 500)
    options = gunicorn_options(settings, host, port, workers, client_timeout)
    if settings.store_url == "memory:" and options["workers"] > 1:
        raise CopkgError(
            f"--store memory: is one store per process: with {options['workers']} workers, each "
            "would keep its own (updates would land in one and reads alternate); serve it with "
            "--workers 1",
            status=500,
        )
    limits = front.FrontLimits(
        client_timeout=client_timeout,
        min_rate=int(min_rate),
        max_body=settings.max_body,
        max_buffered=int(max_buffered),
        upstream_timeout=options["timeout"] + 10.0,
    )
    graphs, quads = check_store(settings)
    log.info("serving %d named graphs, %d quads", graphs, quads)
    try:
        public = listen(host, port)
    except OSError as exc:
        raise CopkgError(f"cannot listen on {host}:{port}: {exc.strerror or exc}", 500) from exc
    private = Path(tempfile.mkdtemp(prefix="copkg-serve-"))
    upstream = private / "gunicorn.sock"
    options["bind"] = f"unix:{upstream}"
    # the warm-up is the front's when it answers the named queries (COPKG_WARM_UP=false: none)
    direct = direct_config(app_config({"SETTINGS": settings, "WARM_UP": True}), settings)
    argv = front.command(public.fileno(), str(upstream), f"{host}:{port}", limits, private, direct)
    runner = _FrontRunner(public, argv)
    ready = options["when_ready"]

    def when_ready(server: Any) -> None:
        ready(server)
        runner.start(server.log)

    options["when_ready"] = when_ready
    options["on_exit"] = lambda server: runner.stop()
    try:
        CopkgApplication(settings, options, warm_up=direct is None).run()
    finally:
        runner.stop()
        public.close()
        shutil.rmtree(private, ignore_errors=True)


def listen(host: str, port: int) -> socket.socket:
    """The public listening socket (bound by `copkg serve`, handed to the front)."""
    family, kind, proto, _, address = socket.getaddrinfo(
        host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
    )[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(2048)
    except OSError:
        sock.close()
        raise
    return sock


class _FrontRunner:
    """The front's process, started once gunicorn listens, and stopped with it. Should it end
    on its own, gunicorn is stopped too: a service nobody can reach is no service."""

    def __init__(self, public: socket.socket, argv: list[str]) -> None:
        self.public = public
        self.argv = argv
        self.process: subprocess.Popen[bytes] | None = None
        self.stopping = False

    def start(self, logger: Any) -> None:
        self.process = subprocess.Popen(
            self.argv, pass_fds=(self.public.fileno(),), stdin=subprocess.DEVNULL
        )
        self.public.close()  # the front's now: gunicorn's workers need not hold it
        pid = self.process.pid
        try:
            watch = os.pidfd_open(pid)
        except (AttributeError, OSError):
            return
        threading.Thread(target=self._watch, args=(watch, logger), daemon=True).start()

    def _watch(self, pidfd: int, logger: Any) -> None:
        select.select([pidfd], [], [])
        os.close(pidfd)
        if not self.stopping:
            logger.error("copkg: the front process ended; stopping the service")
            os.kill(os.getpid(), signal.SIGTERM)

    def stop(self) -> None:
        self.stopping = True
        process = self.process
        if process is None or process.returncode is not None:
            return
        with contextlib.suppress(OSError):
            process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)
