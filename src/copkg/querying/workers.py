"""Query worker processes: the pool `ProcessExecutor` keeps (each opens the build's store read-only;
a query past the limit has its worker killed and replaced), the messages between them, and the
worker's own loop (`worker_main`)."""

from __future__ import annotations

import atexit
import collections
import logging
import math
import os
import pickle
import queue
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
import weakref
from collections.abc import Collection, Mapping
from http import HTTPStatus
from pathlib import Path
from typing import Any, Generic, TypeVar
from urllib.parse import urlsplit

from copkg.errors import CopkgError, Problem
from copkg.querying.executor import (
    MAX_ANSWER_BYTES,
    Answer,
    Job,
    out_of_memory,
    run_job,
    saturated,
    timed_out,
    too_large,
)
from copkg.querying.sandbox import confine
from copkg.store.embedded import OxigraphStore

log = logging.getLogger(__name__)

T = TypeVar("T")

#: How long a new worker process may take to import and open the store.
STARTUP_TIMEOUT = 60.0

#: The data segment (heap) a query worker process may grow to, in bytes. A query can build
#: strings that double at each step (nested CONCAT: 1 GiB after 30 BINDs, in a second or two)
#: faster than the time limit stops it; past this bound its allocation fails and the worker
#: dies or errs, alone, instead of the machine running out of memory.
DEFAULT_MEMORY_LIMIT = 2 << 30

#: How long a query may wait for a worker, in time limits: every running query ends (or is
#: killed) within one limit, so a query that waits a little longer than that finds a worker
#: unless the queries ahead of it take them all again; only then is the service saturated.
QUEUE_WAIT = 2.0

_HEADER = struct.Struct("!Q")


def send_message(sock: socket.socket, message: Any) -> None:
    data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    sock.settimeout(None)
    sock.sendall(_HEADER.pack(len(data)) + data)


def _recv_exactly(sock: socket.socket, size: int, deadline: float | None) -> bytes:
    chunks: list[bytes] = []
    while size:
        if deadline is not None:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError
            sock.settimeout(remaining)
        else:
            sock.settimeout(None)
        try:
            chunk = sock.recv(min(size, 1 << 20))
        except TimeoutError:
            raise
        if not chunk:
            raise EOFError("the other end closed the connection")
        chunks.append(chunk)
        size -= len(chunk)
    return b"".join(chunks)


def receive_message(sock: socket.socket, deadline: float | None = None) -> Any:
    (size,) = _HEADER.unpack(_recv_exactly(sock, _HEADER.size, deadline))
    return pickle.loads(_recv_exactly(sock, size, deadline))


def error_to_dict(exc: CopkgError) -> dict[str, Any]:
    return {
        "message": exc.message,
        "status": exc.status,
        "problems": [p.as_dict() for p in exc.problems],
        "headers": dict(exc.headers),
    }


def error_from_dict(data: Mapping[str, Any]) -> CopkgError:
    return CopkgError(
        data["message"],
        status=data.get("status", 500),
        problems=[Problem(**p) for p in data.get("problems", ())],
        headers=dict(data.get("headers", {})),
    )


class _Worker:
    """One worker process and the socket to it."""

    def __init__(self, config: Mapping[str, Any]) -> None:
        parent, child = socket.socketpair()
        try:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-c",
                    "from copkg.querying.workers import worker_main; worker_main()",
                    str(child.fileno()),
                ],
                pass_fds=(child.fileno(),),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
            )
        finally:
            child.close()
        self.socket = parent
        self.ready = False
        send_message(parent, dict(config))

    def wait_ready(self) -> None:
        reply = receive_message(self.socket, time.monotonic() + STARTUP_TIMEOUT)
        if reply[0] != "ready":
            raise error_from_dict(reply[1])
        self.ready = True
        self.confinement: str = reply[2]
        _say_confinement(reply[2], reply[3])

    def call(self, job: Job, deadline: float) -> Answer:
        send_message(self.socket, job)
        status, payload = receive_message(self.socket, deadline)
        if status == "error":
            raise error_from_dict(payload)
        return Answer(*payload)

    def kill(self) -> None:
        try:
            self.process.kill()
            self.process.wait(timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            log.warning("query worker %s did not stop", self.process.pid)
        self.socket.close()


class _FairPool(Generic[T]):
    """Idle items handed out first come, first served: a released item goes straight to the
    longest waiter, so a query that arrives later never takes a worker from one that has been
    waiting (with queue.Queue it can, and under load an early query waited out its time)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._idle: collections.deque[T] = collections.deque()
        self._waiters: collections.deque[tuple[threading.Event, list[T]]] = collections.deque()

    def put(self, item: T) -> None:
        with self._lock:
            if self._waiters:
                event, box = self._waiters.popleft()
                box.append(item)
                event.set()
            else:
                self._idle.append(item)

    def get(self, timeout: float) -> T:
        """The next idle item; queue.Empty after `timeout` s without one."""
        with self._lock:
            if self._idle and not self._waiters:
                return self._idle.popleft()
            event, box = threading.Event(), []
            self._waiters.append((event, box))
        event.wait(timeout)
        with self._lock:
            if box:
                return box[0]
            self._waiters.remove((event, box))
        raise queue.Empty


class ProcessExecutor:
    """A pool of worker processes reading one on-disk store read-only."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        timeout: float,
        workers: int = 2,
        max_rows: int | None = None,
        allowed_service_endpoints: Collection[str] = (),
        memory_limit: int | None = DEFAULT_MEMORY_LIMIT,
    ) -> None:
        self.timeout = timeout
        self.memory_limit = memory_limit
        self._config = {
            "path": str(Path(path)),
            "timeout": timeout,
            "max_rows": max_rows,
            "allowed_service_endpoints": tuple(allowed_service_endpoints),
            "memory_limit": memory_limit,
        }
        self._idle: _FairPool[_Worker] = _FairPool()
        self._all: set[_Worker] = set()
        self._lock = threading.Lock()
        self._closed = False
        for _ in range(max(1, workers)):
            self._idle.put(self._spawn())
        self._finalizer = weakref.finalize(self, _kill_all, self._all, self._lock)
        atexit.register(self._finalizer)

    def _spawn(self) -> _Worker:
        worker = _Worker(self._config)
        with self._lock:
            self._all.add(worker)
        return worker

    def _retire(self, worker: _Worker) -> None:
        """Kill a worker and, unless closing, put a fresh one in its place."""
        with self._lock:
            self._all.discard(worker)
        worker.kill()
        if not self._closed:
            self._idle.put(self._spawn())

    def run(self, job: Job) -> Answer:
        if self._closed:
            raise CopkgError(
                "the query service is shutting down", status=503, headers={"Retry-After": "5"}
            )
        try:
            worker = self._idle.get(timeout=QUEUE_WAIT * self.timeout)
        except queue.Empty:
            raise saturated(self.timeout) from None
        try:
            if not worker.ready:
                worker.wait_ready()
            answer = worker.call(job, time.monotonic() + self.timeout)
        except TimeoutError:
            log.warning("query over %ss: killing worker %s", self.timeout, worker.process.pid)
            self._retire(worker)
            raise timed_out(self.timeout) from None
        except CopkgError as exc:
            if worker.ready:
                self._idle.put(worker)
            else:  # the worker could not open the store
                self._retire(worker)
            # the store's own deadline between result rows
            if exc.status == HTTPStatus.SERVICE_UNAVAILABLE:
                exc.headers.setdefault("Retry-After", str(max(1, math.ceil(self.timeout))))
            raise
        except (EOFError, OSError, pickle.PickleError) as exc:
            log.error("query worker %s failed: %s", worker.process.pid, exc)
            self._retire(worker)
            if worker.process.returncode == -signal.SIGABRT:  # an allocation failed (Rust)
                raise out_of_memory(self.memory_limit, self.timeout) from exc
            raise CopkgError(
                "the query worker stopped unexpectedly; try again",
                status=503,
                headers={"Retry-After": "1"},
            ) from exc
        self._idle.put(worker)
        return answer

    def pids(self) -> list[int]:
        """The process ids of the workers (for tests and monitoring)."""
        with self._lock:
            return sorted(w.process.pid for w in self._all)

    def close(self) -> None:
        self._closed = True
        self._finalizer()


def _kill_all(workers: set[_Worker], lock: threading.Lock) -> None:
    with lock:
        doomed = list(workers)
        workers.clear()
    for worker in doomed:
        worker.kill()


_said: set[str] = set()


def _say_confinement(description: str, complete: bool) -> None:
    """Log once what the query workers' sandbox holds (a warning when it is incomplete)."""
    if description in _said:
        return
    _said.add(description)
    if complete:
        log.info("query workers confined: %s", description)
    else:
        log.warning("query workers only partly confined: %s", description)


def _ports(endpoints: Collection[str]) -> list[int]:
    ports = []
    for endpoint in endpoints:
        parts = urlsplit(endpoint)
        ports.append(parts.port or (443 if parts.scheme == "https" else 80))
    return ports


def worker_main() -> None:
    """The loop of a worker process: open the store read-only, then answer jobs until EOF."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C stops the server, which stops us
    sock = socket.socket(fileno=int(sys.argv[1]))
    config = receive_message(sock)
    limit_memory(config.get("memory_limit"))
    try:
        store = OxigraphStore.open_read_only(
            config["path"],
            timeout=config["timeout"],
            max_rows=config["max_rows"],
            allowed_service_endpoints=config["allowed_service_endpoints"],
        )
        graphs = frozenset(store.graphs())
    except CopkgError as exc:
        send_message(sock, ("error", error_to_dict(exc)))
        return
    confinement = confine([Path(config["path"])], _ports(config["allowed_service_endpoints"]))
    send_message(sock, ("ready", os.getpid(), confinement.describe(), confinement.complete))
    allowed = config["allowed_service_endpoints"]
    while True:
        try:
            job = receive_message(sock)
        except (EOFError, OSError):
            return
        try:
            answer = run_job(store, job, graphs=graphs, allowed_service_endpoints=allowed)
            if len(answer.body) > MAX_ANSWER_BYTES:
                raise too_large(len(answer.body))
            reply: tuple[str, Any] = (
                "ok",
                (answer.kind, answer.media_type, answer.body, answer.count, answer.truncated),
            )
        except CopkgError as exc:
            reply = ("error", error_to_dict(exc))
        except MemoryError:
            reply = ("error", error_to_dict(out_of_memory(config.get("memory_limit"), 1)))
        except Exception as exc:  # a bug must not take the worker down silently
            log.exception("query failed")
            reply = ("error", {"message": f"the query failed: {exc}", "status": 500})
        send_message(sock, reply)


def limit_memory(limit: int | None) -> None:
    """Bound this process's data segment (heap and anonymous mappings) to `limit` bytes."""
    if not limit:
        return
    import resource

    _, hard = resource.getrlimit(resource.RLIMIT_DATA)
    if hard != resource.RLIM_INFINITY:
        limit = min(limit, hard)
    resource.setrlimit(resource.RLIMIT_DATA, (limit, hard))
