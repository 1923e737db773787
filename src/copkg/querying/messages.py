"""The messages between the query service and its worker processes: pickled, length-prefixed
frames on a socket, and errors as plain dicts (so a worker's CopkgError crosses intact)."""

from __future__ import annotations

import pickle
import socket
import struct
import time
from collections.abc import Mapping
from typing import Any

from copkg.errors import CopkgError, Problem

_HEADER = struct.Struct("!Q")


def send_message(sock: socket.socket, message: Any) -> None:
    data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    sock.settimeout(None)
    sock.sendall(_HEADER.pack(len(data)) + data)


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
