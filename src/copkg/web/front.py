"""The asynchronous front of `copkg serve`: slow clients cost a coroutine and a buffer, never a
request thread.

gunicorn's request threads block on their client's socket: a few clients that send their
request, or read the answer, a few bytes at a time hold every thread, and cheap requests wait
behind them (issue 11). The front listens on the public host:port instead, in one process
running an asyncio loop. It reads each request whole (head and body, each within a deadline),
hands it to gunicorn on a private Unix socket, reads gunicorn's answer whole and writes it to
the client within a deadline of its own. gunicorn's threads only ever talk to the front, which
never makes them wait.

Deadlines: a request's head must arrive within `client_timeout` s of its first byte, its body
within `client_timeout` s plus one second per `min_rate` bytes; an answer must be written
within the same allowance for its size; an idle keep-alive connection is closed after
`client_timeout` s. A body over `max_body` is read and thrown away (up to `discard_bound`
bytes) and answered 413, so that clients which send the whole body before they read (Python's
urllib, requests) see the 413 rather than a broken pipe. While the answers and bodies held in
memory exceed `max_buffered` bytes, new requests are answered 503 with Retry-After.

Headers for gunicorn: the hop-by-hop ones are dropped, as are any a client could use to pose as
the front (X-Forwarded-*, Forwarded) and any whose name has an underscore (gunicorn maps
SCRIPT_NAME and the like into the WSGI environ from a trusted peer, which the front is);
X-Forwarded-For carries the client's address and Host the public host, so the app's URLs and
base IRIs stay the public ones.

Run as `python -m copkg.web.front --fd N --upstream PATH ...` by `copkg serve` (see
copkg.web.server): it ends with its parent.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ctypes
import fcntl
import json
import os
import shutil
import signal
import socket
import struct
import sys
import termios
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from http import HTTPStatus
from pathlib import Path
from typing import Any

from copkg.web.direct import DirectQueries
from copkg.web.messages import (
    MAX_HEAD,
    Answer,
    ClientGoneError,
    RefusalError,
    Request,
    Upstream,
    access_line,
    body_framing,
    error_answer,
    parse_head,
    read_answer,
    upstream_request,
)

#: Bytes a client may send or be sent per second, on top of `client_timeout` (16 KiB/s).
MIN_RATE = 16 * 1024


#: Bytes of an over-limit body read and thrown away before the 413 (beyond: closed at once).
DISCARD_BOUND = 64 * 1024 * 1024

#: Bytes of an answer left in the kernel's send buffer when the answer counts as written.
SETTLED = 64 * 1024

#: Answers and bodies held in memory at once (all connections): beyond it, 503.
MAX_BUFFERED = 256 * 1024 * 1024

#: Seconds to wait before retrying, sent with the 503 of a full buffer.
RETRY_AFTER = 1


@dataclass(frozen=True)
class FrontLimits:
    """The deadlines and bounds of the front."""

    client_timeout: float = 10.0
    min_rate: int = MIN_RATE
    max_body: int = 1024 * 1024
    max_head: int = MAX_HEAD
    discard_bound: int = DISCARD_BOUND
    max_buffered: int = MAX_BUFFERED
    upstream_timeout: float = 60.0

    def allowance(self, size: int) -> float:
        """Seconds to send or receive `size` bytes."""
        return self.client_timeout + size / self.min_rate


class Front:
    """The front's connections: each read whole, forwarded to gunicorn, answered."""

    def __init__(
        self,
        upstream: str,
        public_host: str,
        limits: FrontLimits,
        log: Callable[[str], None] | None = None,
        direct: DirectQueries | None = None,
    ) -> None:
        self.upstream = Upstream(upstream)
        self.direct = direct  # queries to /sparql, answered here (copkg.web.direct)
        self.public_host = public_host
        self.limits = limits
        self.buffered = 0
        self.log = log or (lambda line: print(line, flush=True))
        self.connections: set[asyncio.Task[None]] = set()

    # -- a connection -------------------------------------------------------------------------

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self.connections.add(task)
        peer = writer.get_extra_info("peername")
        client = str(peer[0]) if isinstance(peer, tuple) else "-"
        unmeasured = [0]  # a bound on the bytes of our answers the kernel still holds
        try:
            while True:
                try:
                    request = await self.read_request(reader, writer)
                except ClientGoneError:
                    return
                except RefusalError as refusal:
                    await self.refuse(writer, client, refusal, None)
                    return
                held = len(request.body)
                self.buffered += held
                try:
                    if self.buffered - held > self.limits.max_buffered:
                        raise RefusalError(503, "the server is busy: try again shortly",
                                      [("Retry-After", str(RETRY_AFTER))])  # fmt: skip
                    answer = None
                    if self.direct is not None and self.direct.takes(request):
                        answer = await self.direct.answer(request, client)
                    if answer is None:
                        answer = await self.forward(request, client)
                    request.body = b""
                    self.buffered += len(answer.body) - held
                    held = len(answer.body)
                    data = self.render(answer, request)
                    if not await self.send(writer, data, len(answer.body), unmeasured):
                        return
                except RefusalError as refusal:
                    await self.refuse(writer, client, refusal, request)
                    return
                finally:
                    self.buffered -= held
                if not request.keep_alive:
                    return
        except (ConnectionError, OSError, asyncio.CancelledError):
            return  # (a cancelled task's exception() raises in Python 3.11's stream callback)
        finally:
            if writer.transport.get_write_buffer_size():
                abort(writer)
            else:
                writer.close()
            if task is not None:
                self.connections.discard(task)

    async def refuse(
        self,
        writer: asyncio.StreamWriter,
        client: str,
        refusal: RefusalError,
        request: Request | None,
    ) -> None:
        data = error_answer(refusal.status, refusal.message, refusal.headers)
        line = request.line if request is not None else "-"
        self.log(access_line(client, line, refusal.status, len(data)))
        with contextlib.suppress(ConnectionError, OSError):
            await self.send(writer, data, len(data))

    async def send(
        self,
        writer: asyncio.StreamWriter,
        data: bytes,
        size: int,
        unmeasured: list[int] | None = None,
    ) -> bool:
        """Write `data` within its deadline; False (the connection aborted) past it.

        Written means read by the client, give or take SETTLED bytes: the kernel takes up to
        megabytes of a connection's answer in its send buffer, and a client that reads slowly
        would otherwise hold them well past the deadline. `unmeasured`: a bound on what the
        kernel holds of the connection's earlier answers; while the bound stays within
        SETTLED, the kernel is not asked."""
        deadline = time.monotonic() + self.limits.allowance(size)
        writer.write(data)
        if not writer.transport.get_write_buffer_size():  # (most answers: the kernel took them)
            if unmeasured is not None and unmeasured[0] + len(data) <= SETTLED:
                unmeasured[0] += len(data)
                return True
            left = unsent(writer)
            if unmeasured is not None:
                unmeasured[0] = left
            if left <= SETTLED:
                return True
        try:
            async with asyncio.timeout_at(deadline):
                await writer.drain()
            pause = 0.001  # a client that reads at once is seen at once, a slow one every 0.2 s
            while (left := unsent(writer)) > SETTLED:
                if time.monotonic() >= deadline:
                    raise TimeoutError
                await asyncio.sleep(min(pause, deadline - time.monotonic()))
                pause = min(0.2, 2 * pause)
        except TimeoutError:
            abort(writer)
            return False
        if unmeasured is not None:
            unmeasured[0] = left
        return True

    # -- reading a request --------------------------------------------------------------------

    async def read_request(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> Request:
        limits = self.limits
        try:
            async with asyncio.timeout(limits.client_timeout):
                first = await reader.read(1)
        except TimeoutError as exc:
            raise ClientGoneError from exc
        if not first:
            raise ClientGoneError
        deadline = time.monotonic() + limits.client_timeout
        try:
            async with asyncio.timeout_at(deadline):
                head = first + await reader.readuntil(b"\r\n\r\n")
        except TimeoutError as exc:
            raise RefusalError(
                408, "the request stopped arriving; send it whole, without pauses"
            ) from exc
        except asyncio.LimitOverrunError as exc:
            raise RefusalError(431, f"the request's head is over {limits.max_head} bytes") from exc
        except asyncio.IncompleteReadError as exc:
            raise ClientGoneError from exc
        request = parse_head(head, self.public_host)
        expect = request.header("expect")
        length, chunked = body_framing(request)
        if expect is not None:
            if expect.lower() != "100-continue":
                raise RefusalError(417, f"cannot meet the expectation {expect!r}")
            if request.version == "HTTP/1.1" and (length or chunked):
                if length is not None and length > limits.max_body:
                    raise RefusalError(413, self.too_large())
                writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        if self.buffered > limits.max_buffered and (length or chunked):
            raise RefusalError(503, "the server is busy: try again shortly",
                          [("Retry-After", str(RETRY_AFTER))])  # fmt: skip
        if length is not None:
            remaining = deadline - time.monotonic() + length / limits.min_rate
            if length > limits.max_body:
                await self.discard(reader, length, remaining)
                raise RefusalError(413, self.too_large())
            request.body = await self.within(reader.readexactly(length), remaining)
        elif chunked:
            remaining = deadline - time.monotonic() + limits.max_body / limits.min_rate
            request.body = await self.within(self.read_chunked(reader), remaining)
        return request

    def too_large(self) -> str:
        return f"the request body is over the limit of {self.limits.max_body} bytes"

    async def within(self, work: Any, seconds: float) -> Any:
        """Await a body read: 408 past its deadline, ClientGoneError when the client closed."""
        try:
            return await asyncio.wait_for(work, max(seconds, 0.001))
        except TimeoutError as exc:
            raise RefusalError(408, "the request body stopped arriving; send it whole, "
                          "without pauses") from exc  # fmt: skip
        except asyncio.IncompleteReadError as exc:
            raise ClientGoneError from exc

    async def discard(self, reader: asyncio.StreamReader, length: int, seconds: float) -> None:
        """Read and drop an over-limit body (up to discard_bound), so the client reads the 413."""
        if length > self.limits.discard_bound:
            return

        async def drain() -> None:
            left = length
            while left:
                piece = await reader.read(min(left, 1 << 16))
                if not piece:
                    raise asyncio.IncompleteReadError(b"", left)
                left -= len(piece)

        await self.within(drain(), seconds)

    async def read_chunked(self, reader: asyncio.StreamReader) -> bytes:
        """A chunked body, whole; over max_body the rest is read and dropped, then 413."""
        body = bytearray()
        total = 0
        while True:
            try:
                line = await reader.readuntil(b"\r\n")
            except asyncio.LimitOverrunError as exc:
                raise RefusalError(400, "a chunk size line is too long") from exc
            size_text = line.split(b";", 1)[0].strip()
            try:
                size = int(size_text, 16)
            except ValueError as exc:
                raise RefusalError(400, "a chunk size is not a hexadecimal number") from exc
            if size < 0 or not size_text.isalnum():
                raise RefusalError(400, "a chunk size is not a hexadecimal number")
            if size == 0:
                while (await reader.readuntil(b"\r\n")) != b"\r\n":  # trailers: dropped
                    pass
                break
            total += size
            if total > self.limits.discard_bound:
                raise RefusalError(413, self.too_large())
            chunk = await reader.readexactly(size + 2)
            if chunk[-2:] != b"\r\n":
                raise RefusalError(400, "a chunk does not end with CRLF")
            if total <= self.limits.max_body:
                body += chunk[:-2]
        if total > self.limits.max_body:
            raise RefusalError(413, self.too_large())
        return bytes(body)

    # -- gunicorn -----------------------------------------------------------------------------

    async def forward(self, request: Request, client: str) -> Answer:
        data = upstream_request(request, client)
        for attempt in range(2):
            reader, writer, reused = await self.upstream.connect()
            try:
                writer.write(data)
                answer, reusable = await asyncio.wait_for(
                    read_answer(reader, request.method == "HEAD"), self.limits.upstream_timeout
                )
            except TimeoutError as exc:
                writer.close()
                raise RefusalError(504, "the application did not answer in time") from exc
            except (ConnectionError, OSError, asyncio.IncompleteReadError, ValueError) as exc:
                writer.close()
                # a kept connection gunicorn closed meanwhile: retry what is safe to repeat
                if reused and attempt == 0 and request.method in ("GET", "HEAD", "OPTIONS"):
                    continue
                raise RefusalError(502, "the application closed the connection without an "
                              "answer") from exc  # fmt: skip
            if reusable:
                self.upstream.release(reader, writer)
            else:
                writer.close()
            return answer
        raise AssertionError("unreachable")

    def render(self, answer: Answer, request: Request) -> bytes:
        """The answer's bytes for the client, framed by Content-Length."""
        lines = [answer.status_line]
        lines += [k + b": " + v for k, v in answer.headers]
        status = int(answer.status_line.split(b" ", 2)[1])
        if request.method == "HEAD":
            if answer.content_length is not None:
                lines.append(b"Content-Length: " + answer.content_length)
        elif status >= HTTPStatus.OK and status not in (
            HTTPStatus.NO_CONTENT,
            HTTPStatus.NOT_MODIFIED,
        ):
            lines.append(b"Content-Length: %d" % len(answer.body))
        if not request.keep_alive:
            lines.append(b"Connection: close")
        elif request.version == "HTTP/1.0":
            lines.append(b"Connection: keep-alive")
        head = b"\r\n".join(lines) + b"\r\n\r\n"
        return head if request.method == "HEAD" else head + answer.body


def abort(writer: asyncio.StreamWriter) -> None:
    """Drop a connection at once, with what the kernel still holds of it (a reset)."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


def unsent(writer: asyncio.StreamWriter) -> int:
    """Bytes of a connection's answer its client has not acknowledged (Linux), else 0."""
    sock = writer.get_extra_info("socket")
    if sock is None:
        return 0
    try:
        packed = fcntl.ioctl(sock.fileno(), termios.TIOCOUTQ, b"\0" * 4)
    except OSError:
        return 0
    return int.from_bytes(packed, sys.byteorder, signed=True)


# -- the process --------------------------------------------------------------------------------


def die_with_parent() -> None:
    """Have the kernel end this process when its parent ends (Linux), even by SIGKILL."""
    with contextlib.suppress(Exception):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM, 0, 0, 0)  # PR_SET_PDEATHSIG


async def run(sock: socket.socket, front: Front, parent: int, cleanup: Path | None) -> None:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        loop.add_signal_handler(signum, stop.set)
    server = await asyncio.start_server(front.handle, sock=sock, limit=front.limits.max_head)
    if front.direct is not None:
        front.direct.start()
    try:
        while not stop.is_set():
            if os.getppid() != parent:  # the parent is gone (where PDEATHSIG is not offered)
                break
            with contextlib.suppress(TimeoutError, asyncio.TimeoutError):
                await asyncio.wait_for(stop.wait(), 1.0)
    finally:
        server.close()
        for task in list(front.connections):
            task.cancel()
        front.upstream.close()
        if cleanup is not None:
            shutil.rmtree(cleanup, ignore_errors=True)


def command(
    fd: int,
    upstream: str,
    public_host: str,
    limits: FrontLimits,
    cleanup: Path,
    direct: dict[str, Any] | None = None,
) -> list[str]:
    """The command line starting the front over the listening socket `fd` (`direct`: the
    configuration of the queries it answers itself, copkg.web.direct.direct_config)."""
    return [sys.executable, "-m", "copkg.web.front", "--fd", str(fd), "--upstream", upstream,
            "--public-host", public_host, "--limits", json.dumps(asdict(limits)),
            "--cleanup", str(cleanup), "--parent", str(os.getpid()),
            *(["--direct", json.dumps(direct)] if direct else [])]  # fmt: skip


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="copkg.web.front")
    parser.add_argument("--fd", type=int, required=True)
    parser.add_argument("--upstream", required=True)
    parser.add_argument("--public-host", required=True)
    parser.add_argument("--limits", required=True)
    parser.add_argument("--cleanup", type=Path)
    parser.add_argument("--parent", type=int, required=True)
    parser.add_argument("--direct")
    args = parser.parse_args(argv)
    die_with_parent()
    if os.getppid() != args.parent:
        sys.exit(0)
    sock = socket.socket(fileno=args.fd)
    sock.setblocking(False)
    direct = None
    if args.direct:
        try:
            direct = DirectQueries(json.loads(args.direct))
        except Exception as exc:  # noqa: BLE001 - gunicorn answers everything then
            print(f"copkg front: queries go to gunicorn: {exc}", file=sys.stderr, flush=True)
    front = Front(args.upstream, args.public_host, FrontLimits(**json.loads(args.limits)),
                  direct=direct)  # fmt: skip
    try:
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(run(sock, front, args.parent, args.cleanup))
    finally:
        if direct is not None:
            direct.close()


if __name__ == "__main__":
    main()
