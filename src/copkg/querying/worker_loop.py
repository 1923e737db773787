"""The query worker process: open the build's store read-only, confine itself, then answer jobs
until the service closes the socket (`worker_main`, forked by copkg.querying.forks)."""

from __future__ import annotations

import hashlib
import logging
import os
import signal
import socket
from collections.abc import Collection
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from copkg.errors import CopkgError
from copkg.querying.executor import MAX_ANSWER_BYTES, Job, out_of_memory, run_job, too_large
from copkg.querying.messages import error_to_dict, receive_message, send_message
from copkg.querying.sandbox import confine
from copkg.store.embedded import OxigraphStore

log = logging.getLogger(__name__)

#: The data segment (heap) a query worker process may grow to, in bytes. A query can build
#: strings that double at each step (nested CONCAT: 1 GiB after 30 BINDs, in a second or two)
#: faster than the time limit stops it; past this bound its allocation fails and the worker
#: dies or errs, alone, instead of the machine running out of memory.
DEFAULT_MEMORY_LIMIT = 2 << 30


def _ports(endpoints: Collection[str]) -> list[int]:
    ports = []
    for endpoint in endpoints:
        parts = urlsplit(endpoint)
        ports.append(parts.port or (443 if parts.scheme == "https" else 80))
    return ports


def worker_main(fd: int) -> None:
    """The loop of a worker process on the socket `fd`: open the store read-only, then answer
    jobs until EOF."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C stops the server, which stops us
    sock = socket.socket(fileno=fd)
    try:
        config = receive_message(sock)
    except (EOFError, OSError):
        return  # never taken: the service ended first
    limit_memory(config.get("memory_limit"))
    expect = config.get("expect")
    try:
        before = None if expect is None else _sha256(expect[0])
        store = _open(config, config["path"])
        if expect is not None and not before == _sha256(expect[0]) == expect[1]:
            raise CopkgError(
                f"the store in {config['path']} is not the build this service serves (a new "
                "build was swapped in); try again",
                status=503,
                headers={"Retry-After": "1"},
            )
        graphs = frozenset(store.graphs())
    except CopkgError as exc:
        send_message(sock, ("error", error_to_dict(exc)))
        return
    readable = [Path(p) for p in config.get("read_paths", (config["path"],))]
    confinement = confine(readable, _ports(config["allowed_service_endpoints"]))
    send_message(sock, ("ready", os.getpid(), confinement.describe(), confinement.complete))
    allowed = config["allowed_service_endpoints"]
    while True:
        try:
            message = receive_message(sock)
        except (EOFError, OSError):
            return
        if isinstance(message, dict):  # {"open": path}: a newer snapshot (a job is a tuple)
            store, graphs = _reopen(sock, config, message["open"], (store, graphs))
            continue
        job = Job.from_message(message)
        store.timeout = job.timeout or config["timeout"]  # (the store's deadline between rows)
        try:
            answer = run_job(store, job, graphs=graphs, allowed_service_endpoints=allowed)
            if len(answer.body) > MAX_ANSWER_BYTES:
                raise too_large(len(answer.body))
        except CopkgError as exc:
            reply: tuple[str, Any] = ("error", error_to_dict(exc))
        except MemoryError:
            reply = ("error", error_to_dict(out_of_memory(config.get("memory_limit"), 1)))
        except Exception as exc:  # a bug must not take the worker down silently
            log.exception("query failed")
            reply = ("error", {"message": f"the query failed: {exc}", "status": 500})
        else:  # what the answer is, then its bytes as they are (no pickle), in one write
            size = len(answer.body)
            meta = (answer.kind, answer.media_type, size, answer.count, answer.truncated)
            send_message(sock, ("ok", meta), answer.body)
            continue
        send_message(sock, reply)


def _reopen(
    sock: socket.socket, config: dict[str, Any], path: str, current: tuple[OxigraphStore, Any]
) -> tuple[OxigraphStore, frozenset[Any]]:
    """The store at `path` and its graphs ("opened" said to the pool), else the current one
    (the error said)."""
    try:
        opened = _open(config, path)
        graphs = frozenset(opened.graphs())
    except CopkgError as exc:
        send_message(sock, ("error", error_to_dict(exc)))
        return current
    send_message(sock, ("opened",))
    return opened, graphs


def _open(config: dict[str, Any], path: str) -> OxigraphStore:
    return OxigraphStore.open_read_only(
        path,
        timeout=config["timeout"],
        max_rows=config["max_rows"],
        allowed_service_endpoints=config["allowed_service_endpoints"],
    )


def _sha256(path: str) -> str | None:
    try:
        return hashlib.sha256(Path(path).read_bytes()).hexdigest()
    except OSError:
        return None


def limit_memory(limit: int | None) -> None:
    """Bound this process's data segment (heap and anonymous mappings) to `limit` bytes."""
    if not limit:
        return
    import resource

    _, hard = resource.getrlimit(resource.RLIMIT_DATA)
    if hard != resource.RLIM_INFINITY:
        limit = min(limit, hard)
    resource.setrlimit(resource.RLIMIT_DATA, (limit, hard))
