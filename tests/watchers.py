"""Watchers that prove nothing left the machine: a TCP listener and a FIFO that see any use."""

from __future__ import annotations

import os
import socket
import threading
import time
from pathlib import Path


class Listener:
    """A TCP server on 127.0.0.1 that counts the connections it gets (to see any outbound call)."""

    def __init__(self, path: str = "/") -> None:
        self.socket = socket.create_server(("127.0.0.1", 0))
        self.socket.settimeout(0.05)
        self.port = self.socket.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}{path}"
        self.connections = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.socket.accept()
            except TimeoutError:
                continue
            self.connections += 1
            conn.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        self.socket.close()


class FifoWatch:
    """A named pipe that records whether anyone opened it for reading (a file read)."""

    def __init__(self, path: Path) -> None:
        os.mkfifo(path)
        self.path = path
        self.uri = path.as_uri()
        self.opened = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()

    def _watch(self) -> None:
        while not self._stop.is_set():
            try:  # succeeds only while a reader has the FIFO open (or waits on it)
                fd = os.open(self.path, os.O_WRONLY | os.O_NONBLOCK)
            except OSError:
                time.sleep(0.001)
                continue
            self.opened = True
            os.close(fd)

    def close(self) -> None:
        self._stop.set()
        self._thread.join()


class SlowListener:
    """A TCP server on 127.0.0.1 that reads what each connection sends and never answers; it
    records the bytes and when the other end closed the connection (EOF or reset)."""

    def __init__(self, path: str = "/sparql") -> None:
        self.socket = socket.create_server(("127.0.0.1", 0))
        self.socket.settimeout(0.05)
        self.url = f"http://127.0.0.1:{self.socket.getsockname()[1]}{path}"
        #: per connection: [what it sent, when it was accepted, when it was closed or None]
        self.connections: list[list] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.socket.accept()
            except TimeoutError:
                continue
            record: list = [b"", time.monotonic(), None]
            with self._lock:
                self.connections.append(record)
            threading.Thread(target=self._read, args=(conn, record), daemon=True).start()

    def _read(self, conn: socket.socket, record: list) -> None:
        conn.settimeout(0.05)
        with conn:
            while not self._stop.is_set():
                try:
                    chunk = conn.recv(65536)
                except TimeoutError:
                    continue
                except OSError:  # reset by the other end
                    chunk = b""
                if not chunk:
                    record[2] = time.monotonic()
                    return
                record[0] += chunk

    def closed_after(self, index: int, wait: float) -> float | None:
        """How long connection `index` stayed open (waiting up to `wait` s from its start for
        the other end to close it); None if it is still open."""
        _, opened, closed = self.connections[index]
        while closed is None and time.monotonic() < opened + wait:
            time.sleep(0.02)
            closed = self.connections[index][2]
        return None if closed is None else closed - opened

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        self.socket.close()
