"""Slow clients against a live `copkg serve` (issue 11, item 2): do cheap queries still answer?

Cheap probes (an uncached `ASK`, made unique by a comment so the answer cache cannot serve it)
are timed first alone, then while SLOW connections are open: half ask for a large answer and
read it 1 KiB every 2 s (their receive buffer kept small), half send a request 10 bytes every
3 s. Reported: the probes' p50, p95 and max in each phase, and how long the slow connections
lasted (the service drops them at its deadlines).

    python benchmarks/slow_clients.py                  # 64 slow clients, 20 probes a phase
    python benchmarks/slow_clients.py --slow 128 --json slow.json
    python benchmarks/slow_clients.py --url http://127.0.0.1:5000   # a server already running

Without --url it starts `copkg serve --workers 1` on a free port over the project's build
(see load.py), and stops it at the end. Exit status 0 when every probe with slow clients
answered 200 within --bound s (default 1).
"""

from __future__ import annotations

import socket
import statistics
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlencode, urlsplit

import requests

#: A large answer: every pair of subjects, as CSV (a few hundred KB on a small store).
LARGE_QUERY = "SELECT ?a ?b WHERE { ?a ?p ?x . ?b ?q ?y }"

#: What a slow reader reads at a time, and how often.
READ_BYTES, READ_EVERY = 1024, 2.0

#: What a slow writer sends at a time, and how often.
WRITE_BYTES, WRITE_EVERY = 10, 3.0


def probe(url: str, timeout: float = 30.0) -> tuple[int, float]:
    """One cheap uncached query on a new connection: (status, seconds); status 0 on a timeout
    or a connection error."""
    query = f"ASK {{ ?s ?p ?o }} # {uuid.uuid4().hex}"
    start = time.perf_counter()
    try:
        response = requests.get(
            url + "/sparql",
            params={"query": query},
            headers={"Accept": "application/sparql-results+json"},
            timeout=timeout,
        )
        status = response.status_code
    except requests.RequestException:
        status = 0
    return status, time.perf_counter() - start


def probes(url: str, count: int, timeout: float = 30.0) -> list[tuple[int, float]]:
    """`count` probes one after another."""
    return [probe(url, timeout) for _ in range(count)]


#: TCP states (as /proc/net/tcp writes them) of a connection the server holds: established,
#: closed by the client only, or closed by the server with data still queued.
HOLDING = {"01", "08", "04"}


def held_by_server(port: int) -> set[int]:
    """The client ports of the connections the server on `port` (IPv4) still holds (Linux).

    Seen from the server's side: a slow reader notices that the server dropped it only once
    it has read what its own kernel already holds (tens of KB at 1 KiB every 2 s), since the
    server's reset cannot enter its closed receive window. (Read from /proc/net/tcp directly:
    psutil would look through every process's files, seconds on a busy machine.)"""
    held = set()
    with open("/proc/net/tcp") as table:
        next(table)
        for line in table:
            fields = line.split()
            local, remote, state = fields[1], fields[2], fields[3]
            if int(local.rsplit(":", 1)[1], 16) == port and state in HOLDING:
                held.add(int(remote.rsplit(":", 1)[1], 16))
    return held


def summary(seconds: list[float]) -> dict[str, float]:
    """p50, p95 and max, in seconds."""
    ordered = sorted(seconds)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return {"p50": statistics.median(ordered), "p95": p95, "max": ordered[-1]}


@dataclass
class Slow:
    """One slow connection."""

    kind: str  # "reader" or "writer"
    sock: socket.socket
    pending: bytes = b""  # what a writer has still to send
    received: int = 0
    first: bytes = b""  # the first bytes the server sent
    opened: float = field(default_factory=time.monotonic)
    closed: float | None = None  # when the server dropped it


class SlowClients:
    """`count` slow connections to host:port (half readers, half writers), driven by one
    thread until stop(): readers read READ_BYTES every READ_EVERY s, writers send WRITE_BYTES
    every WRITE_EVERY s; a connection the server closes is marked closed."""

    def __init__(self, url: str, count: int) -> None:
        parts = urlsplit(url)
        self.address = (parts.hostname or "127.0.0.1", parts.port or 80)
        self.host = parts.netloc
        self.count = count
        self.slow: list[Slow] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def reader_request(self) -> bytes:
        return (
            f"GET /sparql?{urlencode({'query': LARGE_QUERY})} HTTP/1.1\r\nHost: {self.host}\r\n"
            "Accept: text/csv\r\n\r\n"
        ).encode()

    def writer_request(self, i: int) -> bytes:
        body = b"ASK { ?s ?p ?o }" + b" " * 200
        return (
            f"POST /sparql HTTP/1.1\r\nHost: {self.host}\r\nX-Slow: {i}\r\n"
            "Content-Type: application/sparql-query\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        ).encode() + body

    def start(self) -> SlowClients:
        for i in range(self.count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            if i % 2 == 0:  # a small receive window: the answer stays with the server
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            sock.settimeout(10)
            sock.connect(self.address)
            sock.setblocking(False)
            if i % 2 == 0:
                sock.sendall(self.reader_request())
                self.slow.append(Slow("reader", sock))
            else:
                data = self.writer_request(i)
                sock.send(data[:WRITE_BYTES])
                self.slow.append(Slow("writer", sock, pending=data[WRITE_BYTES:]))
        self._thread.start()
        return self

    def _run(self) -> None:
        last_read = last_write = last_look = time.monotonic()
        ports = {slow.sock.getsockname()[1]: slow for slow in self.slow}
        while not self._stop.is_set():
            now = time.monotonic()
            if now - last_look >= 0.5:
                last_look = now
                held = held_by_server(self.address[1])
                for port, slow in ports.items():
                    if port not in held and slow.closed is None:
                        slow.closed = now
            read_now, write_now = now - last_read >= READ_EVERY, now - last_write >= WRITE_EVERY
            for slow in self.slow:
                if slow.closed is not None:
                    continue
                if slow.kind == "reader" and read_now:
                    self._read(slow, READ_BYTES)
                elif slow.kind == "writer":
                    self._read(slow, 4096)
                    if write_now and slow.closed is None and slow.pending:
                        try:
                            slow.sock.send(slow.pending[:WRITE_BYTES])
                            slow.pending = slow.pending[WRITE_BYTES:]
                        except OSError:
                            slow.pending = b""
            if read_now:
                last_read = now
            if write_now:
                last_write = now
            self._stop.wait(0.1)

    def _read(self, slow: Slow, size: int) -> None:
        try:
            data = slow.sock.recv(size)
        except BlockingIOError:
            return
        except OSError:
            return
        if not data:
            return  # closed: the server-side look notes when
        if not slow.first:
            slow.first = data[:64]
        slow.received += len(data)

    def open_count(self) -> int:
        return sum(1 for s in self.slow if s.closed is None)

    def wait_dropped(self, timeout: float) -> bool:
        """Wait until the server has dropped every slow connection (True), or `timeout` s."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.open_count() == 0:
                return True
            time.sleep(0.2)
        return self.open_count() == 0

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)
        for slow in self.slow:
            slow.sock.close()

    def __enter__(self) -> SlowClients:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def measure(url: str, slow: int, count: int, settle: float = 2.0) -> dict[str, object]:
    """Probe times alone and with `slow` slow clients, and how long those lasted."""
    probes(url, 3)  # warm up: the first query of a worker pays for opening the store
    # the large answer once, so it is cached (the same query string and Accept as the slow
    # readers'): heavy queries are another matter (issue 11, item 3)
    requests.get(url + "/sparql", params={"query": LARGE_QUERY}, headers={"Accept": "text/csv"},
                 timeout=60)  # fmt: skip
    alone = probes(url, count)
    with SlowClients(url, slow) as clients:
        time.sleep(settle)
        busy = probes(url, count)
        held = clients.open_count()
        clients.wait_dropped(120)
        lasted = [(s.closed or time.monotonic()) - s.opened for s in clients.slow]
        readers = [s.received for s in clients.slow if s.kind == "reader"]
        firsts = sorted({s.first.split(b"\r\n", 1)[0].decode() for s in clients.slow})
    return {
        "slow_clients": slow,
        "alone": summary([t for _, t in alone]),
        "with_slow": summary([t for _, t in busy]),
        "statuses_with_slow": sorted({s for s, _ in busy}),
        "held_during_probes": held,
        "slow_lasted": summary(lasted),
        "reader_bytes": summary([float(b) for b in readers]) if readers else {},
        "first_lines": firsts,
    }


def main(argv: list[str] | None = None) -> int:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import load  # the benchmarks' folder is not a package: found once the script's is on the path

    return load.probe_main(
        argv, doc=__doc__, load="slow", default=64, query_timeout=10.0, measure=measure
    )


if __name__ == "__main__":
    sys.exit(main())
