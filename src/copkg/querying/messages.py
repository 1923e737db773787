"""The messages between the query service and its worker processes: pickled, length-prefixed
frames on a socket, and errors as plain dicts (so a worker's CopkgError crosses intact)."""

from __future__ import annotations

import asyncio
import pickle
import socket
import struct
import time
from collections.abc import Mapping
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


def receive_message(sock: socket.socket, deadline: float | None = None) -> Any:
    (size,) = _HEADER.unpack(recv_exactly(sock, _HEADER.size, deadline))
    return pickle.loads(recv_exactly(sock, size, deadline))


class AsyncFrames:
    """Reads frames (and raw bytes) from a socket on an asyncio loop, in as few reads as the
    bytes come in; the socket is non-blocking while it reads (`send_message` and
    `recv_exactly` set their own mode)."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buffer = bytearray()

    async def _more(self) -> None:
        self.sock.setblocking(False)
        chunk = await asyncio.get_running_loop().sock_recv(self.sock, 1 << 20)
        if not chunk:
            raise EOFError("the other end closed the connection")
        self.buffer += chunk

    async def exactly(self, size: int) -> bytes:
        while len(self.buffer) < size:
            await self._more()
        data = bytes(self.buffer[:size])
        del self.buffer[:size]
        return data

    async def frame(self) -> bytes:
        """One length-prefixed frame's payload."""
        (size,) = _HEADER.unpack(await self.exactly(_HEADER.size))
        return await self.exactly(size)


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
