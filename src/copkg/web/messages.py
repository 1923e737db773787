"""HTTP/1.1 messages as the front reads and writes them: requests read whole, gunicorn's
answers (and the connections to it), the front's own error answers, and the access log
line."""

from __future__ import annotations

import asyncio
import json
import time
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from http import HTTPStatus

#: The largest request head (request line and headers) the front reads: 431 beyond.
MAX_HEAD = 64 * 1024


#: gunicorn's largest request line: GET queries longer than this must be POSTed.
MAX_REQUEST_LINE = 8190

#: The largest answer head from gunicorn.
MAX_UPSTREAM_HEAD = 1024 * 1024


#: Request headers never passed on: hop-by-hop ones, and those only the front may set.
DROPPED_REQUEST = frozenset(
    {
        "connection", "keep-alive", "proxy-connection", "te", "transfer-encoding", "upgrade",
        "trailer", "expect", "content-length", "forwarded", "x-real-ip",
        "proxy-authorization",
    }
)  # fmt: skip


#: Answer headers never passed on (the front frames the answer itself).
DROPPED_RESPONSE = frozenset(
    {"connection", "keep-alive", "proxy-connection", "te", "transfer-encoding", "upgrade",
     "trailer", "content-length"}
)  # fmt: skip

#: The parts of a request line: METHOD TARGET HTTP/1.x.
REQUEST_LINE_PARTS = 3

#: The parts of a status line before its reason phrase: HTTP/1.x STATUS.
STATUS_LINE_PARTS = 2


class RefusalError(Exception):
    """A request the front answers itself (then closes the connection)."""

    def __init__(self, status: int, message: str, headers: Iterable[tuple[str, str]] = ()) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = list(headers)


class ClientGoneError(Exception):
    """The client closed its side, or stayed silent past its deadline before a request."""


@dataclass
class Request:
    method: str
    target: str
    version: str
    headers: list[tuple[str, str]]
    body: bytes
    keep_alive: bool

    @property
    def line(self) -> str:
        return f"{self.method} {self.target} {self.version}"

    def header(self, name: str) -> str | None:
        return next((v for k, v in self.headers if k.lower() == name), None)


@dataclass
class Answer:
    status_line: bytes
    headers: list[tuple[bytes, bytes]]
    body: bytes
    content_length: bytes | None  # as gunicorn sent it (a HEAD answer's)


def reason(status: int) -> str:
    """The reason phrase, upper-cased as werkzeug writes it (the app's other answers)."""
    try:
        return HTTPStatus(status).phrase.upper()
    except ValueError:
        return "ERROR"


def error_answer(
    status: int, message: str, headers: Iterable[tuple[str, str]] = (), close: bool = True
) -> bytes:
    """An answer of the front's own, in the service's one JSON error shape."""
    body = json.dumps({"ok": False, "status": status, "error": message, "errors": []}).encode()
    lines = [f"HTTP/1.1 {status} {reason(status)}", "Server: copkg-front",
             "Content-Type: application/json", f"Content-Length: {len(body)}"]  # fmt: skip
    lines += [f"{k}: {v}" for k, v in headers]
    if close:
        lines.append("Connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def header_tokens(value: str | None) -> set[str]:
    return {t.strip().lower() for t in (value or "").split(",") if t.strip()}


def parse_head(head: bytes, public_host: str) -> Request:
    """The request line and headers (400 when they cannot be read)."""
    try:
        text = head.decode("latin-1")
    except UnicodeDecodeError as exc:  # pragma: no cover - latin-1 decodes every byte
        raise RefusalError(400, "the request head cannot be read") from exc
    lines = text[:-4].split("\r\n")
    while lines and not lines[0]:
        lines.pop(0)  # empty lines before a request line are allowed
    parts = lines[0].split(" ") if lines else []
    if (
        len(parts) != REQUEST_LINE_PARTS
        or parts[2] not in ("HTTP/1.1", "HTTP/1.0")
        or not parts[0].isalpha()
    ):
        raise RefusalError(400, "the request line is not METHOD TARGET HTTP/1.x")
    headers = []
    for line in lines[1:]:
        name, colon, value = line.partition(":")
        if not colon or not name or name != name.strip() or " " in name or "\t" in name:
            raise RefusalError(400, f"a header line cannot be read: {line[:80]!r}")
        headers.append((name, value.strip(" \t")))
    method, target, version = parts
    connection = header_tokens(", ".join(v for k, v in headers if k.lower() == "connection"))
    keep_alive = "keep-alive" in connection if version == "HTTP/1.0" else "close" not in connection
    request = Request(method, target, version, headers, b"", keep_alive)
    if request.header("host") is None:
        request.headers.append(("Host", public_host))
    return request


def body_framing(request: Request) -> tuple[int | None, bool]:
    """(Content-Length, chunked) of a request; 400 or 501 for framings the front refuses."""
    lengths = {v.strip() for k, v in request.headers if k.lower() == "content-length"}
    codings = [t for k, v in request.headers if k.lower() == "transfer-encoding"
               for t in (x.strip().lower() for x in v.split(","))]  # fmt: skip
    if codings:
        if lengths:
            raise RefusalError(400, "a request with both Content-Length and Transfer-Encoding")
        if codings != ["chunked"]:
            raise RefusalError(501, f"the transfer coding {', '.join(codings)!r} is not supported")
        return None, True
    if not lengths:
        return None, False
    if len(lengths) > 1 or not next(iter(lengths)).isdigit():
        raise RefusalError(400, "Content-Length is not one whole number")
    return int(next(iter(lengths))), False


def upstream_request(request: Request, client: str) -> bytes:
    """The request as gunicorn gets it: framed by Content-Length, with the front's headers."""
    named = header_tokens(", ".join(v for k, v in request.headers if k.lower() == "connection"))
    lines = [request.line]
    for name, value in request.headers:
        lower = name.lower()
        if (
            lower in DROPPED_REQUEST
            or lower in named
            or "_" in name
            or lower.startswith("x-forwarded-")
        ):
            continue
        lines.append(f"{name}: {value}")
    lines.append(f"X-Forwarded-For: {client}")
    if request.body or request.method not in ("GET", "HEAD", "OPTIONS", "DELETE"):
        lines.append(f"Content-Length: {len(request.body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + request.body


async def read_answer(reader: asyncio.StreamReader, head_only: bool) -> tuple[Answer, bool]:
    """gunicorn's answer, whole, and whether its connection can take another request."""
    while True:
        head = await reader.readuntil(b"\r\n\r\n")
        lines = head[:-4].split(b"\r\n")
        status_line = lines[0]
        parts = status_line.split(b" ", 2)
        if len(parts) < STATUS_LINE_PARTS or not parts[1].isdigit():
            raise ValueError(f"not an HTTP answer: {status_line[:80]!r}")
        status = int(parts[1])
        if status >= HTTPStatus.OK:
            break  # 1xx: skipped (the front has answered the client's Expect itself)
    headers: list[tuple[bytes, bytes]] = []
    length: bytes | None = None
    chunked = False
    close = parts[0] == b"HTTP/1.0"
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        value = value.strip()
        lower = name.strip().lower()
        if lower == b"content-length":
            length = value
        elif lower == b"transfer-encoding":
            chunked = b"chunked" in value.lower()
        elif lower == b"connection":
            tokens = {t.strip().lower() for t in value.split(b",")}
            close = b"close" in tokens or (close and b"keep-alive" not in tokens)
        if lower.decode("latin-1") not in DROPPED_RESPONSE:
            headers.append((name.strip(), value))
    if head_only or status in (204, 304):
        body = b""
    elif chunked:
        pieces = []
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";", 1)[0].strip(), 16)
            if size == 0:
                while (await reader.readuntil(b"\r\n")) != b"\r\n":
                    pass
                break
            pieces.append((await reader.readexactly(size + 2))[:-2])
        body = b"".join(pieces)
    elif length is not None:
        body = await reader.readexactly(int(length))
    else:
        body = await reader.read()
        close = True
    return Answer(status_line, headers, body, length), not close


#: Seconds an idle connection to gunicorn is kept for the next request (gunicorn keeps it 5).
UPSTREAM_IDLE = 2.0


class Upstream:
    """Connections to gunicorn's Unix socket, idle ones kept for the next request."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.idle: deque[tuple[float, asyncio.StreamReader, asyncio.StreamWriter]] = deque()

    async def connect(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter, bool]:
        """A connection, and whether it is a reused one."""
        now = time.monotonic()
        while self.idle:
            since, reader, writer = self.idle.pop()
            if now - since < UPSTREAM_IDLE and not reader.at_eof():
                return reader, writer, True
            writer.close()
        reader, writer = await asyncio.open_unix_connection(self.path, limit=MAX_UPSTREAM_HEAD)
        return reader, writer, False

    def release(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.idle.append((time.monotonic(), reader, writer))

    def close(self) -> None:
        while self.idle:
            self.idle.pop()[2].close()


_stamp: list[tuple[int, str]] = [(0, "")]  # the second formatted last, and its stamp


def access_line(
    client: str, request_line: str, status: int, sent: int, referer: str = "-", agent: str = "-"
) -> str:
    """An access log line in gunicorn's default format, for the answers the front gives."""
    second = int(time.time())
    if _stamp[0][0] != second:
        _stamp[0] = (second, time.strftime("[%d/%b/%Y:%H:%M:%S %z]", time.localtime(second)))
    stamp = _stamp[0][1]
    line, referer, agent = (v.replace('"', '\\"') for v in (request_line, referer, agent))
    return f'{client} - - {stamp} "{line}" {status} {sent} "{referer}" "{agent}"'
