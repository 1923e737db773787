"""Query worker processes: the pool `ProcessExecutor` keeps (each opens the build's store read-only,
or a snapshot of a writable one; a query past the limit has its worker killed and replaced).
The messages between them are in copkg.querying.messages, who goes first in
copkg.querying.scheduling, and the worker's own loop in copkg.querying.worker_loop."""

from __future__ import annotations

import asyncio
import atexit
import collections
import concurrent.futures
import contextlib
import itertools
import logging
import math
import os
import pickle
import queue
import select
import signal
import subprocess
import threading
import time
import weakref
from collections.abc import Collection, Mapping
from http import HTTPStatus
from pathlib import Path
from typing import Any

from copkg.errors import CopkgError
from copkg.querying.executor import (
    Answer,
    Job,
    out_of_memory,
    over_share,
    saturated,
    timed_out,
)
from copkg.querying.forks import start_worker
from copkg.querying.messages import (
    FrameLink,
    error_from_dict,
    receive_message,
    recv_exactly,
    send_message,
)
from copkg.querying.sandbox import say_confinement
from copkg.querying.scheduling import FairPool, RefusedError
from copkg.querying.worker_loop import DEFAULT_MEMORY_LIMIT
from copkg.store.temporary import Snapshots

log = logging.getLogger(__name__)

#: How long a new worker process may take to import and open the store.
STARTUP_TIMEOUT = 60.0

#: How long a query may wait for a worker, in time limits: every running query ends (or is
#: killed) within one limit, so a query that waits a little longer than that finds a worker
#: unless the queries ahead of it take them all again; only then is the service saturated.
QUEUE_WAIT = 2.0

#: A query that has run this long (seconds) is long: at most all workers but one may run long
#: queries, and each client at most its share of them, so a short query always finds a worker
#: within about this time (docs/security.md, "Fair scheduling").
SHORT_QUERY = 0.5


class _Worker:
    """One worker process and the socket to it."""

    def __init__(self, config: Mapping[str, Any]) -> None:
        self.process, parent = start_worker()
        self.socket = parent
        self.ready = False
        self._link: FrameLink | None = None  # the socket on an asyncio loop, once used there
        #: the store it opened (a snapshot, for a writable store)
        self.path: str = config["path"]
        send_message(parent, dict(config))

    def wait_ready(self) -> None:
        reply = receive_message(self.socket, time.monotonic() + STARTUP_TIMEOUT, plain=True)
        if reply[0] != "ready":
            raise error_from_dict(reply[1])
        self.ready = True
        self.confinement: str = reply[2]
        say_confinement(reply[2], reply[3])

    def call(self, job: Job, deadline: float) -> Answer:
        self.send(job)
        return self.receive(deadline)

    def send(self, job: Job) -> None:
        send_message(self.socket, job.to_message())

    def reopen(self, path: str, deadline: float) -> None:
        """Open another store (a newer snapshot) in place of the one it reads."""
        send_message(self.socket, {"open": path})
        reply = receive_message(self.socket, deadline, plain=True)
        if reply[0] != "opened":
            raise error_from_dict(reply[1])
        self.path = path

    def answered_within(self, seconds: float) -> bool:
        """Whether the answer has begun to arrive within `seconds` (nothing is read)."""
        readable, _, _ = select.select([self.socket], [], [], max(0.0, seconds))
        return bool(readable)

    def receive(self, deadline: float) -> Answer:
        status, payload = receive_message(self.socket, deadline, plain=True)
        if status == "error":
            raise error_from_dict(payload)
        kind, media_type, size, count, truncated = payload
        body = recv_exactly(self.socket, size, deadline)  # the answer's bytes, unpickled
        return Answer(kind, media_type, body, count, truncated)

    async def link(self) -> FrameLink:
        """The socket on the running asyncio loop (from then on used by no thread)."""
        if self._link is None:
            self.socket.setblocking(False)
            _, self._link = await asyncio.get_running_loop().create_unix_connection(
                lambda: FrameLink(_raw_size), sock=self.socket
            )
        return self._link

    def signal_kill(self) -> None:
        """SIGKILL, without waiting for the end."""
        with contextlib.suppress(OSError):
            self.process.kill()

    def kill(self) -> None:
        try:
            self.process.kill()
            self.process.wait(timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            log.warning("query worker %s did not stop", self.process.pid)
        if self._link is not None:
            self._link.close_threadsafe()
        else:
            self.socket.close()


def _raw_size(message: Any) -> int:
    """How many raw bytes follow a worker's reply: an answer's body."""
    status, payload = message
    return int(payload[2]) if status == "ok" else 0


def _answer_of(message: Any, body: bytes) -> Answer:
    status, payload = message
    if status == "error":
        raise error_from_dict(payload)
    kind, media_type, _, count, truncated = payload
    return Answer(kind, media_type, body, count, truncated)


class _NoRoomError(Exception):
    """A query became long while the long lane (or its client's share of it) was full."""


#: How a job can fail in a worker (anything else is a bug, raised as it is).
FAILURES = (_NoRoomError, TimeoutError, CopkgError, EOFError, OSError, pickle.PickleError)


class ProcessExecutor:
    """A pool of worker processes reading one on-disk store read-only (or snapshots of one)."""

    def __init__(  # noqa: PLR0913 (the store, then keyword-only limits and options)
        self,
        path: str | os.PathLike[str],
        *,
        timeout: float,
        workers: int = 2,
        max_rows: int | None = None,
        allowed_service_endpoints: Collection[str] = (),
        memory_limit: int | None = DEFAULT_MEMORY_LIMIT,
        short: float = SHORT_QUERY,
        expect: tuple[str | os.PathLike[str], str] | None = None,
        snapshots: Snapshots | None = None,
    ) -> None:
        """`expect`: (a file, its SHA-256) each worker reads before and after opening the store:
        a worker that opened another build (swapped in meanwhile) refuses to start. The workers
        are forked from this process's template (copkg.querying.forks). `snapshots`: the
        workers read snapshots of a writable store (`memory:`), each query the newest; `path`
        is their folder."""
        self.timeout = timeout
        self._snapshots = snapshots
        self.memory_limit = memory_limit
        self.workers = max(1, workers)
        #: how long a query runs before it counts as long
        self.short = min(short, timeout)
        #: long queries running at once: all workers but one (kept for short queries)
        self.long_limit = max(1, self.workers - 1)
        #: long queries one client may run at once
        self.client_long_limit = max(1, (self.workers - 1) // 2)
        self._long: collections.Counter[str] = collections.Counter()
        self._anonymous = itertools.count()
        self._config = {
            "path": str(Path(path)),
            "read_paths": (str(Path(path)),),
            "timeout": timeout,
            "max_rows": max_rows,
            "allowed_service_endpoints": tuple(allowed_service_endpoints),
            "memory_limit": memory_limit,
            "expect": None if expect is None else (str(expect[0]), expect[1]),
        }
        self._idle: FairPool[_Worker] = FairPool(self.workers, self._over)
        self._all: set[_Worker] = set()
        self._lock = threading.Lock()
        self._closed = False
        self._draining = False
        #: a ready worker that takes the place of one killed (at the time limit, or a long
        #: query with no room), so that the next query does not wait for a process to start
        self._standby: _Worker | None = None
        self._spares: set[_Worker] = set()  # started as the standby, not yet handed out
        for _ in range(self.workers):
            self._idle.put(self._spawn())
        self._start_spare(standby=True)
        self._finalizer = weakref.finalize(self, _kill_all, self._all, self._lock)
        atexit.register(self._finalizer)

    def _spawn(self, *, spare: bool = False) -> _Worker:
        config = self._config
        if self._snapshots is not None:  # each worker holds the snapshot it reads
            config = {**config, "path": str(self._snapshots.acquire())}
        worker = _Worker(config)
        with self._lock:
            self._all.add(worker)
            if spare:
                self._spares.add(worker)
        return worker

    def _retire(self, worker: _Worker) -> None:
        """Kill a worker and, unless closing, put a fresh one in its place. Nothing here waits
        (the caller may be an asyncio loop): the dead worker is reaped, and its successor
        started, in threads of their own."""
        with self._lock:
            self._all.discard(worker)
        worker.signal_kill()
        threading.Thread(target=worker.kill, name="copkg-reap", daemon=True).start()
        if self._snapshots is not None:
            self._snapshots.release(worker.path)
        if self._closed or self._draining:
            return  # draining: a new worker would open the new build
        with self._lock:
            spare, self._standby = self._standby, None
            if spare is not None:
                self._spares.discard(spare)
        if spare is not None:  # ready: it takes the place at once
            self._idle.put(spare)
        self._start_spare(standby=spare is not None)

    def _start_spare(self, *, standby: bool) -> None:
        threading.Thread(
            target=self._ready_then_idle, args=(standby,), name="copkg-spawn", daemon=True
        ).start()

    def _ready_then_idle(self, standby: bool) -> None:
        """Start a worker and wait for it to open the store (half a second or so) before
        anyone waits on it, then keep it as the standby (`standby`) or hand it out; a failure
        is reported by run()."""
        worker = self._spawn(spare=standby)
        if self._closed:  # closed meanwhile: _kill_all may have missed it
            worker.kill()
            return
        with contextlib.suppress(CopkgError, EOFError, OSError, TimeoutError, pickle.PickleError):
            worker.wait_ready()
        if standby and worker.ready:
            with self._lock:
                if self._standby is None and not self._closed:
                    self._standby = worker
                    return
        with self._lock:
            self._spares.discard(worker)
        self._idle.put(worker)

    def _client_key(self, job: Job) -> str:
        """The client's share to count the job in; a job that names none (the service's own,
        a library caller) is a client of its own."""
        return job.client or f"-{next(self._anonymous)}"

    def _take(self, client: str) -> _Worker:
        """A worker for a query of `client` (see FairPool for who goes first)."""
        try:
            return self._idle.get(QUEUE_WAIT * self.timeout, client)
        except RefusedError:
            raise over_share(client, self.client_long_limit, self.timeout) from None
        except queue.Empty:
            raise saturated(self.timeout) from None

    def _over(self, client: str) -> bool:
        return self._long[client] >= self.client_long_limit  # (under the pool's lock)

    def _become_long(self, client: str) -> bool:
        """Count a query that has run past `short` as long, if there is room for it."""
        with self._lock:
            if (
                sum(self._long.values()) >= self.long_limit
                or self._long[client] >= self.client_long_limit
            ):
                return False
            self._long[client] += 1
        if self._long[client] >= self.client_long_limit:
            self._idle.refuse_waiting(client)
        return True

    def _end_long(self, client: str) -> None:
        with self._lock:
            self._long[client] -= 1
            if self._long[client] <= 0:
                del self._long[client]

    def drain(self) -> None:
        """Serve the requests still pinned to this pool's build, but replace no worker: its
        files are gone (a new build took its place), and a new worker would open the new one."""
        self._draining = True

    def start(self) -> None:
        """Wait until every worker has opened the store (before the pool is first used)."""
        with self._lock:  # (the standby readies itself in a thread of its own)
            workers = [w for w in self._all - self._spares if not w.ready]
        for worker in workers:
            try:
                worker.wait_ready()
            except (CopkgError, EOFError, OSError, TimeoutError) as exc:
                self._retire(worker)
                if isinstance(exc, CopkgError):
                    raise
                raise CopkgError(f"a query worker did not start: {exc}", status=503) from exc

    def _admit(self, job: Job) -> str:
        """The client key of a job the pool may take (503 when it is closing or drained)."""
        if self._closed:
            raise CopkgError(
                "the query service is shutting down", status=503, headers={"Retry-After": "5"}
            )
        if self._draining and not self._all:
            raise CopkgError(
                "a new build was swapped in while this request ran; try again",
                status=503,
                headers={"Retry-After": "1"},
            )
        return self._client_key(job)

    def run(self, job: Job) -> Answer:
        client = self._admit(job)
        return self._run_on(self._take(client), job, client)

    def _run_on(self, worker: _Worker, job: Job, client: str) -> Answer:
        if worker._link is not None:  # one pool is used from threads or from a loop, not both
            raise RuntimeError("a query worker used by an asyncio loop was given to a thread")
        long = False
        try:
            deadline = self._prepare(worker, job.timeout or self.timeout)
            worker.send(job)
            if self.workers > 1 and not worker.answered_within(self.short):
                long = self._long_or_refused(client)
            answer = worker.receive(deadline)
        except FAILURES as exc:
            error = self._failed(worker, job, client, exc)
            if error is exc:
                raise
            raise error from exc
        finally:
            if long:
                self._end_long(client)
        self._idle.release(client)
        self._idle.put(worker)
        return answer

    async def run_async(self, job: Job, threads: concurrent.futures.Executor) -> Answer:
        """`run` for an asyncio loop, with no thread in between (the same scheduling, limits
        and outcomes); `threads` only wait for a worker still opening the store. Not for
        snapshots of a writable store, whose workers reopen between queries (run in threads)."""
        if self._snapshots is not None:
            raise RuntimeError("a pool reading snapshots is run from threads, not a loop")
        loop = asyncio.get_running_loop()
        client = self._admit(job)
        try:
            worker = await self._idle.get_async(QUEUE_WAIT * self.timeout, client)
        except RefusedError:
            raise over_share(client, self.client_long_limit, self.timeout) from None
        except queue.Empty:
            raise saturated(self.timeout) from None
        long = False
        try:
            if not worker.ready:
                await loop.run_in_executor(threads, worker.wait_ready)
            link = await worker.link()
            deadline = time.monotonic() + (job.timeout or self.timeout)
            link.send(job.to_message())
            if self.workers > 1 and not await link.started_within(self.short):
                long = self._long_or_refused(client)
            answer = _answer_of(*await link.reply(deadline))
        except asyncio.CancelledError:  # the service is stopping: the worker's state is unknown
            self._idle.release(client)
            self._retire(worker)
            raise
        except FAILURES as exc:
            error = self._failed(worker, job, client, exc)
            if error is exc:
                raise
            raise error from exc
        finally:
            if long:
                self._end_long(client)
        self._idle.release(client)
        self._idle.put(worker)
        return answer

    def _long_or_refused(self, client: str) -> bool:
        """A query that did not answer within `short`: counted as long, or _NoRoomError."""
        if not self._become_long(client):
            raise _NoRoomError
        return True

    def _failed(self, worker: _Worker, job: Job, client: str, exc: BaseException) -> Exception:
        """The worker's fate after a failed job (kept, or killed and replaced), and the error
        to give the client."""
        self._idle.release(client)
        if isinstance(exc, _NoRoomError):
            log.warning("a long query of %s, with no room for it: killing worker %s",
                        client, worker.process.pid)  # fmt: skip
            self._retire(worker)
            return over_share(job.client, self.client_long_limit, self.timeout, stopped=self.short)
        if isinstance(exc, TimeoutError):
            limit = job.timeout or self.timeout
            log.warning("query over %ss: killing worker %s", limit, worker.process.pid)
            self._retire(worker)
            return timed_out(limit)
        if isinstance(exc, CopkgError):
            if worker.ready:
                self._idle.put(worker)
            else:  # the worker could not open the store
                self._retire(worker)
            if exc.status == HTTPStatus.SERVICE_UNAVAILABLE:  # the store's deadline between rows
                exc.headers.setdefault("Retry-After", str(max(1, math.ceil(self.timeout))))
            return exc
        log.error("query worker %s failed: %s", worker.process.pid, exc)
        self._retire(worker)
        with contextlib.suppress(subprocess.TimeoutExpired):  # it ended, or ends now (killed)
            worker.process.wait(timeout=1)
        if worker.process.returncode == -signal.SIGABRT:  # an allocation failed (Rust)
            return out_of_memory(self.memory_limit, self.timeout)
        return CopkgError(
            "the query worker stopped unexpectedly; try again",
            status=503,
            headers={"Retry-After": "1"},
        )

    def _prepare(self, worker: _Worker, limit: float) -> float:
        """Make the worker ready for a query (started; on the newest snapshot of a writable
        store, which holds every change made before the query); the query's deadline."""
        if not worker.ready:
            worker.wait_ready()
        deadline = time.monotonic() + limit
        if self._snapshots is not None:
            self._newest(worker, deadline)
        return deadline

    def _newest(self, worker: _Worker, deadline: float) -> None:
        assert self._snapshots is not None
        path = str(self._snapshots.acquire())
        old = worker.path
        if path == old:
            self._snapshots.release(path)  # (held once already, by the worker)
            return
        try:
            worker.reopen(path, deadline)
        except BaseException:
            self._snapshots.release(path)
            raise
        self._snapshots.release(old)

    def pids(self) -> list[int]:
        """The process ids of the workers (for tests and monitoring)."""
        with self._lock:
            return sorted(w.process.pid for w in self._all - self._spares)

    def close(self) -> None:
        self._closed = True
        self._finalizer()


def _kill_all(workers: set[_Worker], lock: threading.Lock) -> None:
    with lock:
        doomed = list(workers)
        workers.clear()
    for worker in doomed:
        worker.kill()
