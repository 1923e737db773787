"""The messages between the query service and its worker processes: pickled, length-prefixed
frames on a socket, and errors as plain dicts (so a worker's CopkgError crosses intact).

A worker is sandboxed because it runs what clients send; what it replies is read as plain data
only (`plain=True`: no class, no function), so that a worker taken over through the engine
cannot run code in the service by its reply."""

from __future__ import annotations

import asyncio
import contextlib
import io
import pickle
import socket
import struct
import time
from collections.abc import Callable, Mapping
from typing import Any

from copkg.errors import CopkgError, Problem

_HEADER = struct.Struct("!Q")

#: Raw bytes up to this size are sent in the same write as the frame before them.
ONE_WRITE = 1 << 18


def send_message(sock: socket.socket, message: Any, raw: bytes = b"") -> None:
    """A pickled frame, and `raw` bytes after it: in one write when `raw` is small, so that
    the reader wakes once; a large `raw` is not copied."""
    data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    sock.settimeout(None)
    if len(raw) > ONE_WRITE:
        sock.sendall(_HEADER.pack(len(data)) + data)
        sock.sendall(raw)
    else:
        sock.sendall(b"".join((_HEADER.pack(len(data)), data, raw)))


def recv_exactly(sock: socket.socket, size: int, deadline: float | None) -> bytes:
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


class _PlainUnpickler(pickle.Unpickler):
    """Unpickles str, bytes, numbers, None and the built-in containers of them, nothing else."""

    def find_class(self, module: str, name: str) -> Any:
        raise pickle.UnpicklingError(f"a reply may hold plain data only, not {module}.{name}")


def loads_plain(data: bytes | bytearray) -> Any:
    """A pickled frame of plain data (UnpicklingError for anything that names a class)."""
    return _PlainUnpickler(io.BytesIO(data)).load()


def receive_message(
    sock: socket.socket, deadline: float | None = None, *, plain: bool = False
) -> Any:
    """The next frame; `plain`: a reply from a sandboxed process, read as plain data only."""
    (size,) = _HEADER.unpack(recv_exactly(sock, _HEADER.size, deadline))
    data = recv_exactly(sock, size, deadline)
    return loads_plain(data) if plain else pickle.loads(data)


class FrameLink(asyncio.Protocol):
    """A socket to a worker process on an asyncio loop, one exchange at a time: `send` a frame,
    then await its reply (a frame, and the raw bytes `raw_size` of it says follow it). The
    socket stays registered with the loop between exchanges, and a reply is read as it comes,
    in as few reads as it arrives in."""

    def __init__(self, raw_size: Callable[[Any], int]) -> None:
        self.raw_size = raw_size
        self.buffer = bytearray()
        self.transport: asyncio.Transport | None = None
        self.loop = asyncio.get_running_loop()
        self.started: asyncio.Future[None] | None = None
        self.done: asyncio.Future[tuple[Any, bytes]] | None = None
        self.lost: BaseException | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def send(self, message: Any) -> None:
        """Send a frame and expect its reply (a reply still unread is dropped)."""
        if self.lost is not None or self.transport is None:
            raise EOFError("the other end closed the connection")
        self.buffer.clear()
        self.started = self.loop.create_future()
        self.done = self.loop.create_future()
        data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
        self.transport.write(_HEADER.pack(len(data)) + data)

    async def started_within(self, seconds: float) -> bool:
        """Whether the reply has begun to arrive within `seconds`."""
        assert self.started is not None
        try:
            async with asyncio.timeout(max(0.0, seconds)):
                await self.started
        except TimeoutError:
            return False
        return True

    async def reply(self, deadline: float) -> tuple[Any, bytes]:
        """The reply's message and raw bytes (TimeoutError past the deadline, EOFError when
        the other end closed)."""
        assert self.done is not None
        async with asyncio.timeout_at(deadline):
            return await self.done

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if self.started is not None and not self.started.done():
            self.started.set_result(None)
        if self.done is None or self.done.done() or len(self.buffer) < _HEADER.size:
            return
        (size,) = _HEADER.unpack_from(self.buffer)
        end = _HEADER.size + size
        if len(self.buffer) < end:
            return
        message = loads_plain(self.buffer[_HEADER.size : end])  # a sandboxed worker's reply
        raw = self.raw_size(message)
        if len(self.buffer) < end + raw:
            return
        body = bytes(self.buffer[end : end + raw])
        self.buffer.clear()
        self.done.set_result((message, body))

    def connection_lost(self, exc: BaseException | None) -> None:
        self.lost = exc or EOFError("the other end closed the connection")
        for future in (self.started, self.done):
            if future is not None and not future.done():
                future.set_exception(EOFError("the other end closed the connection"))

    def close_threadsafe(self) -> None:
        """Close the socket from any thread."""
        if self.transport is not None:
            with contextlib.suppress(RuntimeError):  # the loop is closed: nothing to close
                self.loop.call_soon_threadsafe(self.transport.abort)


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
