"""A call in a child process that is killed at a deadline: for work that cannot be cancelled
in-process (a query on the command line, which pyoxigraph checks for its time limit only
between result rows; the advisor's rules on the web)."""

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
