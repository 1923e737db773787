"""Query worker processes started ahead: their imports done, they wait for a configuration
(copkg.querying.worker_loop reads it first), so that a pool taking one has a worker that opens
its store in a fraction of the second or more a new Python process takes to import. That
matters when workers are killed one after another (a pool's standby covers one kill), and when
a build is swapped in (a new pool for it)."""

from __future__ import annotations

import atexit
import contextlib
import socket
import subprocess
import sys
import threading


def start_process() -> tuple[subprocess.Popen[bytes], socket.socket]:
    """A worker process and the socket to it; it imports what it needs, then waits for its
    configuration."""
    parent, child = socket.socketpair()
    try:
        process = subprocess.Popen(
            [
                sys.executable,
                "-c",
                "from copkg.querying.worker_loop import worker_main; worker_main()",
                str(child.fileno()),
            ],
            pass_fds=(child.fileno(),),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
        )
    except BaseException:
        parent.close()
        raise
    finally:
        child.close()
    return process, parent


class Prestarted:
    """Worker processes started ahead for the pools of this process that ask for them."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.waiting: list[tuple[subprocess.Popen[bytes], socket.socket]] = []
        self.wanted = 0
        self.refilling = False

    def take(self, wanted: int) -> tuple[subprocess.Popen[bytes], socket.socket]:
        """A process waiting for its configuration (started now if none waits), and, when
        `wanted`, another started ahead in its place."""
        with self.lock:
            self.wanted = max(self.wanted, wanted)
            taken = self.waiting.pop() if self.waiting else None
            refill = self.wanted > 0 and not self.refilling
            self.refilling = self.refilling or refill
        if refill:
            threading.Thread(target=self._refill, name="copkg-prestart", daemon=True).start()
        if taken is not None and taken[0].poll() is None:
            return taken
        return start_process()

    def _refill(self) -> None:
        try:
            while True:
                with self.lock:
                    if len(self.waiting) >= self.wanted:
                        return
                started = start_process()
                with self.lock:
                    self.waiting.append(started)
        finally:
            with self.lock:
                self.refilling = False

    def close(self) -> None:
        with self.lock:
            doomed, self.waiting, self.wanted = self.waiting, [], 0
        for process, sock in doomed:
            with contextlib.suppress(OSError):
                process.kill()
            sock.close()
            with contextlib.suppress(OSError, subprocess.TimeoutExpired):
                process.wait(timeout=10)


#: The processes this process keeps started ahead (for every pool in it that asks for them).
PRESTARTED = Prestarted()
atexit.register(PRESTARTED.close)
