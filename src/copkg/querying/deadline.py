"""Work in a child process that is killed at a deadline: for work that cannot be cancelled
in-process (a query on the command line, which pyoxigraph checks for its time limit only
between result rows: `call_with_deadline`; the advisor's rules on the web, in a process kept
warm between calls: `WarmProcess`)."""

from __future__ import annotations

import math
import multiprocessing
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import Any

from copkg.errors import CopkgError
from copkg.querying.executor import timed_out
from copkg.querying.messages import error_from_dict, error_to_dict


def started(conn: Connection) -> None:
    """Called by the work when the part under the time limit begins (after opening a store or
    building it, which the limit does not cover)."""
    conn.send(("started", None))


def _child(conn: Connection, work: Callable[..., Any], args: tuple[Any, ...]) -> None:
    try:
        reply: tuple[str, Any] = ("ok", work(conn, *args))
    except CopkgError as exc:
        reply = ("error", error_to_dict(exc))
    conn.send(reply)


def call_with_deadline(
    work: Callable[..., Any],
    args: tuple[Any, ...],
    timeout: float,
    *,
    startup: float | None = None,
    on_timeout: Callable[[], CopkgError] | None = None,
) -> Any:
    """`work(conn, *args)` in a fresh process (spawned: it imports what it needs); it calls
    `started(conn)` when the limited part begins, and the process is killed if that part
    outlives `timeout` s (CopkgError 503, or `on_timeout()`), or if it does not begin within
    `startup` s (if given). Its CopkgError is raised here."""
    context = multiprocessing.get_context("spawn")
    ours, theirs = context.Pipe()
    process = context.Process(target=_child, args=(theirs, work, args), daemon=True)
    process.start()
    theirs.close()
    try:
        limited = False
        while True:
            if limited and not ours.poll(timeout):
                raise on_timeout() if on_timeout is not None else timed_out(timeout)
            if not limited and startup is not None and not ours.poll(startup):
                raise CopkgError(
                    f"the work's process did not start within {startup:g} s; try again",
                    status=503,
                    headers={"Retry-After": str(max(1, math.ceil(timeout)))},
                )
            try:
                status, payload = ours.recv()
            except EOFError:
                process.join()
                raise CopkgError(
                    f"the query process stopped unexpectedly (exit status {process.exitcode})",
                    status=500,
                ) from None
            if status == "started":
                limited = True
            elif status == "error":
                raise error_from_dict(payload)
            else:
                return payload
    finally:
        if process.is_alive():
            process.kill()
        process.join()
        ours.close()


def _warm_child(
    conn: Connection,
    setup: Callable[..., Any],
    setup_args: tuple[Any, ...],
    prime: Callable[[Any], None] | None,
) -> None:
    try:
        state = setup(*setup_args)
        conn.send(("opened", None))
        if prime is not None:
            prime(state)
    except CopkgError as exc:
        conn.send(("error", error_to_dict(exc)))
        return
    conn.send(("ready", None))
    while True:
        try:
            work, args = conn.recv()
        except EOFError:  # the parent closed its end: done
            return
        conn.send(("started", None))
        try:
            reply: tuple[str, Any] = ("ok", work(state, *args))
        except CopkgError as exc:
            reply = ("error", error_to_dict(exc))
        conn.send(reply)


class WarmProcess:
    """A spawned process that keeps what `setup(*setup_args)` returned (an opened store) for
    call after call, `prime(state)` having run once on it (what every call reuses). Setting up
    may take `startup` s; priming is bounded as the first call is, which it is part of. A call
    that outlives its limit kills the process (the caller starts another); so does an error
    that is not a CopkgError. One call at a time."""

    def __init__(
        self,
        setup: Callable[..., Any],
        setup_args: tuple[Any, ...],
        *,
        startup: float,
        prime: Callable[[Any], None] | None = None,
    ) -> None:
        context = multiprocessing.get_context("spawn")
        self._conn, theirs = context.Pipe()
        self._process = context.Process(
            target=_warm_child, args=(theirs, setup, setup_args, prime), daemon=True
        )
        self._process.start()
        theirs.close()
        self._ready = False
        self.startup = startup

    @property
    def alive(self) -> bool:
        return self._process.is_alive()

    def call(
        self,
        work: Callable[..., Any],
        args: tuple[Any, ...],
        timeout: float,
        *,
        on_timeout: Callable[[], CopkgError] | None = None,
    ) -> Any:
        """`work(state, *args)` in the process, killed if it outlives `timeout` s (CopkgError
        503, or `on_timeout()`); its CopkgError is raised here, and the process stays."""
        not_started = CopkgError(
            f"the work's process did not start within {self.startup:g} s; try again",
            status=503,
            headers={"Retry-After": str(max(1, math.ceil(timeout)))},
        )
        late = on_timeout if on_timeout is not None else lambda: timed_out(timeout)
        if not self._ready:
            try:
                self._receive("opened", self.startup, lambda: not_started)
                self._receive("ready", timeout, late)
            except CopkgError:  # the set-up failed: the process is done
                self.close()
                raise
            self._ready = True
        self._conn.send((work, args))
        self._receive("started", self.startup, lambda: not_started)
        return self._receive("ok", timeout, late)

    def _receive(self, expected: str, wait: float, silence: Callable[[], CopkgError]) -> Any:
        if not self._conn.poll(wait):
            self.close()
            raise silence()
        try:
            status, payload = self._conn.recv()
        except EOFError:
            self.close()
            raise CopkgError(
                f"the work's process stopped unexpectedly (exit status {self._process.exitcode})",
                status=500,
            ) from None
        if status == "error":
            raise error_from_dict(payload)
        if status != expected:
            self.close()
            raise CopkgError(f"the work's process said {status!r}, not {expected!r}", 500)
        return payload

    def close(self) -> None:
        """Stop the process (killed if it is working) and reap it."""
        self._conn.close()
        if self._process.is_alive():
            self._process.kill()
        self._process.join()
