"""Query worker processes forked from a template: a process each parent starts once (on its
first worker), which imports what a worker needs and then forks a worker at each request. A new
worker costs a few milliseconds instead of the ~0.4 s of CPU a fresh Python process takes to
import copkg: a pool replaces every worker killed at the time limit, a swapped-in build gets a
pool of its own, and `copkg serve` starts two pools.

The template holds no store and no secret, takes requests from its parent only (over a socket
pair) and forks while single-threaded; each worker opens its store and confines itself
(copkg.querying.sandbox) after the fork, as a spawned one did. A worker is the template's
child: its pool signals it through a pidfd (never a recycled pid) and learns how it ended from
the template, which reaps it. When the parent goes, the template reads EOF and ends; its
workers end at the EOF of their own sockets."""

from __future__ import annotations

import atexit
import collections
import contextlib
import os
import select
import signal
import socket
import struct
import subprocess
import sys
import threading
import traceback

from copkg.querying.messages import recv_exactly
from copkg.querying.worker_loop import worker_main

#: a request: an operation (b"F": fork a worker for the socket sent along; b"S": how the
#: worker of this serial number ended) and its argument
_REQUEST = struct.Struct("!cq")
#: a reply: two numbers (a worker's pid and serial; a status, or RUNNING)
_REPLY = struct.Struct("!qq")
RUNNING = -(2**62)
#: the returncode of a worker that ended when its template cannot say how (it died too)
UNKNOWN = 255
#: how many ended workers' statuses the template keeps for their pools to ask
_KEPT = 4096


class WorkerProcess:
    """A forked worker as its pool sees it: the part of subprocess.Popen the pool uses."""

    def __init__(self, pid: int, serial: int, template: Template) -> None:
        self.pid = pid
        self.serial = serial
        self.template = template
        self.pidfd = os.pidfd_open(pid)  # the template reaps only at its next request: ours
        self.returncode: int | None = None

    def _ended_within(self, seconds: float | None) -> bool:
        readable, _, _ = select.select([self.pidfd], [], [], seconds)
        return bool(readable)

    def poll(self) -> int | None:
        if self.returncode is None and self._ended_within(0):
            self.returncode = self._ended()
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        if self.returncode is None:
            if not self._ended_within(timeout):
                raise subprocess.TimeoutExpired(f"query worker {self.pid}", timeout or 0.0)
            self.returncode = self._ended()
        return self.returncode

    def _ended(self) -> int:
        status = self.template.status(self.serial)
        return UNKNOWN if status is None else status

    def send_signal(self, sig: int) -> None:
        with contextlib.suppress(ProcessLookupError):  # ended already
            signal.pidfd_send_signal(self.pidfd, sig)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)

    def __del__(self) -> None:
        with contextlib.suppress(OSError, AttributeError):
            os.close(self.pidfd)


class Template:
    """This process's template process, started at the first fork (and again if it died)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.process: subprocess.Popen[bytes] | None = None
        self.control: socket.socket | None = None

    def fork(self) -> tuple[WorkerProcess, socket.socket]:
        """A new worker process and the socket to it; the worker waits for its configuration
        (copkg.querying.worker_loop reads it first)."""
        parent, child = socket.socketpair()
        try:
            with self.lock:
                try:
                    return self._fork(child), parent
                except (OSError, EOFError):  # the template died: started again, once
                    self._stop()
                    return self._fork(child), parent
        except BaseException:
            parent.close()
            raise
        finally:
            child.close()

    def _fork(self, child: socket.socket) -> WorkerProcess:
        control = self._started()
        socket.send_fds(control, [_REQUEST.pack(b"F", 0)], [child.fileno()])
        pid, serial = self._reply(control)
        return WorkerProcess(pid, serial, self)

    def status(self, serial: int) -> int | None:
        """How the worker of `serial` ended (as subprocess.Popen.returncode), None if it runs."""
        with self.lock:
            if self.control is None:
                return None
            try:
                self.control.sendall(_REQUEST.pack(b"S", serial))
                status, _ = self._reply(self.control)
            except (OSError, EOFError):
                return None
        return None if status == RUNNING else status

    def _started(self) -> socket.socket:
        if self.control is not None and self.process is not None and self.process.poll() is None:
            return self.control
        self._stop()
        ours, theirs = socket.socketpair()
        try:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-c",
                    "from copkg.querying.forks import template_main; template_main()",
                    str(theirs.fileno()),
                ],
                pass_fds=(theirs.fileno(),),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
            )
        except BaseException:
            ours.close()
            raise
        finally:
            theirs.close()
        self.control = ours
        return ours

    @staticmethod
    def _reply(control: socket.socket) -> tuple[int, int]:
        first, second = _REPLY.unpack(recv_exactly(control, _REPLY.size, None))
        return first, second

    def _stop(self) -> None:
        """Close the socket (the template ends at its EOF) and reap the template."""
        control, process, self.control, self.process = self.control, None, None, self.process
        if control is not None:
            control.close()
        if process is not None:
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()

    def forget(self) -> None:
        """In a forked child: the parent's template is not ours (its socket stays the
        parent's: closing our copy of it leaves the parent's open, and lets the template end
        at the parent's EOF); the child starts its own when it needs one."""
        if self.control is not None:
            self.control.close()
        self.lock = threading.Lock()
        self.process = None
        self.control = None

    def close(self) -> None:
        """End the template (at exit: its workers' pools have been closed before)."""
        with self.lock:
            self._stop()


#: This process's template (each process its own: a forked child starts afresh).
TEMPLATE = Template()
os.register_at_fork(after_in_child=TEMPLATE.forget)
atexit.register(TEMPLATE.close)


def start_worker() -> tuple[WorkerProcess, socket.socket]:
    """A worker process forked from this process's template, and the socket to it."""
    return TEMPLATE.fork()


def template_main() -> None:
    """The template's loop: fork a worker for each socket sent, say how workers ended, until
    EOF from the parent."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C stops the server, which stops us
    control = socket.socket(fileno=int(sys.argv[1]))
    live: dict[int, int] = {}  # pid -> serial, of the workers not reaped yet
    ended: collections.OrderedDict[int, int] = collections.OrderedDict()  # serial -> status
    serials = 0
    while True:
        try:
            message, fds, _, _ = socket.recv_fds(control, _REQUEST.size, 1)
        except OSError:
            return
        if len(message) < _REQUEST.size:
            return  # EOF: the parent is gone
        _reap(live, ended)
        operation, argument = _REQUEST.unpack(message)
        if operation == b"F" and len(fds) == 1:
            serials += 1
            pid = _fork_worker(control, fds[0])
            live[pid] = serials
            reply = (pid, serials)
        else:
            for fd in fds:
                os.close(fd)
            reply = (_status(argument, live, ended), 0)
        control.sendall(_REPLY.pack(*reply))


def _fork_worker(control: socket.socket, fd: int) -> int:
    pid = os.fork()
    if pid == 0:  # the worker
        code = 0
        try:
            control.close()
            signal.signal(signal.SIGINT, signal.SIG_DFL)
            worker_main(fd)
        except BaseException:  # noqa: BLE001 (said on stderr, then the worker ends)
            traceback.print_exc()
            code = 1
        finally:
            sys.stderr.flush()
            os._exit(code)  # never the template's own clean-up
    os.close(fd)
    return pid


def _reap(live: dict[int, int], ended: collections.OrderedDict[int, int]) -> None:
    """Reap every worker that ended (no zombies), keeping its status by serial."""
    for pid in list(live):
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            ended[live.pop(pid)] = os.waitstatus_to_exitcode(status)
    while len(ended) > _KEPT:
        ended.popitem(last=False)


def _status(serial: int, live: dict[int, int], ended: collections.OrderedDict[int, int]) -> int:
    if serial in ended:
        return ended[serial]
    for pid, of in live.items():
        if of == serial:
            done, status = os.waitpid(pid, os.WNOHANG)
            if not done:
                return RUNNING
            del live[pid]
            ended[serial] = os.waitstatus_to_exitcode(status)
            return ended[serial]
    return UNKNOWN  # ended so long ago that its status was let go
