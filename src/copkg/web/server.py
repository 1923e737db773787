"""`copkg serve`: the app under gunicorn (gthread workers), never Flask's development server."""

from __future__ import annotations

import logging
import math
import socket
import subprocess
import sys
from typing import Any

from gunicorn.app.base import BaseApplication

from copkg.config import Settings
from copkg.errors import CopkgError
from copkg.web.executor import error_from_dict, error_to_dict, receive_message, send_message

log = logging.getLogger(__name__)

#: Request threads per gunicorn worker: slow queries wait in threads, not in the accept queue.
THREADS = 8

#: gunicorn's largest request line: GET queries longer than this must be POSTed.
MAX_REQUEST_LINE = 8190


class CopkgApplication(BaseApplication):  # type: ignore[misc]
    """gunicorn running create_app({"SETTINGS": settings}) in each worker process."""

    def __init__(self, settings: Settings, options: dict[str, Any]) -> None:
        self.settings = settings
        self.options = options
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            if key in self.cfg.settings:  # control_socket_disable is new in gunicorn 25
                self.cfg.set(key, value)

    def load(self) -> Any:
        from copkg.web import create_app

        return create_app({"SETTINGS": self.settings})


def check_store(settings: Settings) -> tuple[int, int]:
    """Open the store once before serving (building first if there is no build).

    A corrupted or incomplete build raises CopkgError (500) saying what is wrong, so the server
    refuses to start rather than serve it. Returns (named graphs, quads).

    This runs in a child process: RocksDB leaves background threads in a process that opened
    an on-disk store, and gunicorn workers forked from such a process crash when they exit.
    """
    parent, child = socket.socketpair()
    with parent:
        try:
            process = subprocess.Popen(
                [sys.executable, "-c", "from copkg.web.server import check_main; check_main()",
                 str(child.fileno())],
                pass_fds=(child.fileno(),),
                stdin=subprocess.DEVNULL,
            )  # fmt: skip
        finally:
            child.close()
        try:
            send_message(parent, settings)
            status, payload = receive_message(parent)
        except (EOFError, OSError) as exc:
            process.wait()
            raise CopkgError(
                f"checking the store failed (exit status {process.returncode})", status=500
            ) from exc
        process.wait()
    if status == "error":
        raise error_from_dict(payload)
    return payload


def check_main() -> None:
    """The child process of check_store: open (or build) the store and report on it."""
    from copkg.store import open_store

    sock = socket.socket(fileno=int(sys.argv[1]))
    settings = receive_message(sock)
    try:
        store = open_store(settings)
        reply: tuple[str, Any] = ("ok", (len(store.graphs()), store.quad_count()))
    except CopkgError as exc:
        reply = ("error", error_to_dict(exc))
    except Exception as exc:  # report it rather than die with a traceback only
        reply = ("error", {"message": f"cannot open the store: {exc}", "status": 500})
    send_message(sock, reply)


def gunicorn_options(
    settings: Settings, host: str, port: int, workers: int | None
) -> dict[str, Any]:
    """The gunicorn settings of `copkg serve`."""
    if workers is not None and workers < 1:
        raise CopkgError("--workers must be at least 1", status=400)
    url = f"http://{host}:{port}"

    def when_ready(server: Any) -> None:
        server.log.info("copkg SPARQL endpoint: %s/sparql (query page %s/query)", url, url)

    return {
        "bind": f"{host}:{port}",
        "workers": workers or 1,
        "worker_class": "gthread",
        "threads": THREADS,
        # a request waits at most for the query limit (and a worker slot): leave room for both
        "timeout": max(30, math.ceil(4 * settings.query_timeout)),
        "graceful_timeout": 10,
        "limit_request_line": MAX_REQUEST_LINE,
        "accesslog": "-",
        "errorlog": "-",
        "loglevel": "info",
        "proc_name": "copkg",
        "preload_app": False,
        "control_socket_disable": True,  # one fixed socket path would clash between servers
        "when_ready": when_ready,
    }


def serve(
    settings: Settings, host: str = "127.0.0.1", port: int = 5000, workers: int | None = None
) -> None:
    """Serve the SPARQL endpoint and the rest of the app on host:port until stopped."""
    graphs, quads = check_store(settings)
    log.info("serving %d named graphs, %d quads", graphs, quads)
    CopkgApplication(settings, gunicorn_options(settings, host, port, workers)).run()
