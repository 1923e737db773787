"""A bounded load test of `copkg serve` on loopback (issue 6: robustness under load).

Concurrent clients (threads with keep-alive connections, 127.0.0.1 only) send, for a fixed
time, a mix of named queries (/api/queries/...), resource pages (HTML and JSON twins), ad-hoc
SPARQL, malformed queries (400 expected) and queries that run into the time limit (503
expected). The RSS of the server's processes (gunicorn master and workers, query workers) is
sampled throughout. The run passes when no request gets a 5xx other than the intended 503s of
the limit-hitting queries, none fails at the connection or times out in the client, and the
servers' memory grows by less than the stated bound between the start and the end of the run.

    python benchmarks/load.py                      # 60 s, 16 clients, a server on build/
    python benchmarks/load.py --duration 5 --clients 4 --json load.json
    python benchmarks/load.py --url http://127.0.0.1:5000   # a server already running

Without --url the script starts `copkg serve` on a free port over the project's build/
(building it first if needed) with a short query time limit (--query-timeout, 2 s), and stops
it at the end. The exit status is 0 when the run passes, 1 when it does not.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from http import HTTPStatus
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import psutil
import requests

ROOT = Path(__file__).resolve().parents[1]

#: Memory growth allowed between the start and the end of a run (medians of the RSS samples
#: in the first and in the last fifth), summed over the server's processes.
DEFAULT_RSS_GROWTH_MB = 150.0

SELECTS = [
    "SELECT ?role ?label WHERE { ?role a copkg:ManagementRole ; rdfs:label ?label } ORDER BY ?role",
    "SELECT (COUNT(*) AS ?n) WHERE { ?s ?p ?o }",
    "SELECT ?g (COUNT(*) AS ?n) WHERE { GRAPH ?g { ?s ?p ?o } } GROUP BY ?g",
    "SELECT ?q ?page WHERE { ?q a copkg:Quote ; copkg:page ?page } ORDER BY ?page LIMIT 50",
    "ASK { ?s a copkg:Case }",
    "CONSTRUCT { ?s rdfs:label ?l } WHERE { ?s a copkg:Finding ; rdfs:label ?l } LIMIT 100",
    "SELECT ?s ?o WHERE { ?s copkg:hasEvidence ?o } LIMIT 200",
    "DESCRIBE <https://w3id.org/copkg/id/josserand2004/gas>",
]
#: Queries that must run into the time limit (503 with Retry-After).
SLOW = [
    "SELECT (COUNT(*) AS ?n) WHERE { ?a ?b ?c . ?d ?e ?f . ?g ?h ?i . ?j ?k ?l }",
    "SELECT (COUNT(*) AS ?n) WHERE { ?s (<http://e/p>|!<http://e/p>)* ?o . ?x ?y ?z . ?u ?v ?w }",
]
#: Queries that must be refused (400).
BAD = [
    "SELECT * WHERE {",
    "SELECT * { ?s nope:p ?o }",
    "SELECT * { SERVICE <http://127.0.0.1:9/sparql> { ?s ?p ?o } }",
    "SELECT * " + "{ " * 300 + "?s ?p ?o" + " }" * 300,
]
PAGES = ["/", "/index.json", "/rules", "/ontology", "/matrix", "/matrix.json", "/query"]

#: The mix: kind -> weight (the per-mille of requests of that kind).
MIX = {
    "named": 300,
    "page": 300,
    "sparql": 350,
    "bad": 40,
    "slow": 10,
}


@dataclass
class Sample:
    """One request: what it was, its status (0: no answer) and how long it took."""

    kind: str
    status: int
    seconds: float
    intended: tuple[int, ...]
    detail: str = ""  # for a status not intended: the request and the error


@dataclass
class Report:
    url: str
    duration: float
    clients: int
    requests: int = 0
    per_second: float = 0.0
    statuses: dict[str, dict[str, int]] = field(default_factory=dict)
    latency_ms: dict[str, dict[str, float]] = field(default_factory=dict)
    unexpected: list[str] = field(default_factory=list)
    examples: list[str] = field(default_factory=list)
    rss_mb: dict[str, Any] = field(default_factory=dict)
    rss_growth_bound_mb: float = DEFAULT_RSS_GROWTH_MB
    passed: bool = False
    failures: list[str] = field(default_factory=list)


# -- the server ----------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def started_server(
    root: Path, *, query_timeout: float, workers: int, env: dict[str, str] | None = None
) -> Iterator[tuple[str, int]]:
    """`copkg serve` on a free 127.0.0.1 port: (its URL, its pid); stopped at the end."""
    port = free_port()
    command = [sys.executable, "-m", "copkg.cli", "serve", "--root", str(root),
               "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers)]  # fmt: skip
    environ = {k: v for k, v in os.environ.items() if not k.startswith("COPKG_")}
    environ.update(env or {})
    environ["COPKG_QUERY_TIMEOUT"] = str(query_timeout)
    log = open(os.devnull, "wb")  # noqa: SIM115 - closed below
    process = subprocess.Popen(command, env=environ, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180  # a first start may build
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"copkg serve exited with {process.returncode}")
            try:
                if requests.get(url + "/sparql", headers={"Accept": "text/turtle"}, timeout=5).ok:
                    break
            except (requests.ConnectionError, requests.Timeout):  # the port is bound first
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("copkg serve did not answer within 180 s")
            time.sleep(0.2)
        yield url, process.pid
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)
        log.close()


def probe_main(
    argv: list[str] | None,
    *,
    doc: str,
    load: str,
    default: int,
    query_timeout: float,
    measure: Callable[[str, int, int], dict[str, Any]],
) -> int:
    """The command line shared by heavy_queries.py and slow_clients.py.

    Probes are timed alone, then beside `--{load}` connections of the other kind (`measure`
    returns the figures, with `with_{load}` and `statuses_with_{load}`); without --url, a
    `copkg serve --workers 1` over the project's build is started and stopped. Exit status 0
    when every probe under load answered 200 within --bound seconds.
    """
    parser = argparse.ArgumentParser(description=doc.split("\n\n", maxsplit=1)[0])
    parser.add_argument("--url", help="a running server (default: start one over build/)")
    parser.add_argument(f"--{load}", type=int, default=default, help=f"{load} connections")
    parser.add_argument("--probes", type=int, default=20, help="probes a phase")
    parser.add_argument("--bound", type=float, default=1.0, help="seconds a probe may take")
    parser.add_argument("--json", type=Path, help="write the figures here")
    args = parser.parse_args(argv)
    count = getattr(args, load)
    if args.url:
        result = measure(args.url, count, args.probes)
    else:
        root = Path(__file__).resolve().parents[1]
        with started_server(root, query_timeout=query_timeout, workers=1) as (url, _pid):
            result = measure(url, count, args.probes)
    print(json.dumps(result, indent=2))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    under_load = result[f"with_{load}"]
    passed = under_load["max"] <= args.bound and result[f"statuses_with_{load}"] == [200]
    return 0 if passed else 1


def server_pid(url: str) -> int | None:
    """The pid of the process listening on the URL's port (for --url), if it is ours to see."""
    port = int(url.rsplit(":", 1)[1].split("/", maxsplit=1)[0])
    for conn in psutil.net_connections(kind="tcp"):
        if conn.laddr and conn.laddr.port == port and conn.status == psutil.CONN_LISTEN:
            return conn.pid
    return None


class RssSampler:
    """Sums the RSS of a process and its descendants every `interval` s, in a thread."""

    def __init__(self, pid: int | None, interval: float = 0.5) -> None:
        self.pid = pid
        self.interval = interval
        self.samples: list[tuple[float, float, int]] = []  # (t, MiB, processes)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> RssSampler:
        if self.pid is not None:
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()

    def _run(self) -> None:
        start = time.monotonic()
        try:
            root = psutil.Process(self.pid)
        except psutil.Error:
            return
        while not self._stop.is_set():
            total, count = 0, 0
            try:
                processes = [root, *root.children(recursive=True)]
            except psutil.Error:
                return
            for process in processes:
                try:
                    total += process.memory_info().rss
                    count += 1
                except psutil.Error:
                    continue
            self.samples.append((round(time.monotonic() - start, 2), total / 2**20, count))
            self._stop.wait(self.interval)

    def summary(self) -> dict[str, Any]:
        if not self.samples:
            return {}
        values = [mb for _, mb, _ in self.samples]
        fifth = max(1, len(values) // 5)
        first, last = statistics.median(values[:fifth]), statistics.median(values[-fifth:])
        step = max(1, len(self.samples) // 20)
        return {
            "start": round(first, 1),
            "end": round(last, 1),
            "max": round(max(values), 1),
            "growth": round(last - first, 1),
            "processes_max": max(n for _, _, n in self.samples),
            "series": [(t, round(mb, 1)) for t, mb, _ in self.samples[::step]],
        }


# -- the requests --------------------------------------------------------------------------


def _get_json(session: requests.Session, url: str, **kwargs: Any) -> Any:
    """The JSON of a GET, waiting out a 503 (a busy or loaded service says when to come back)
    a few times; any other failure is an error saying what the service answered."""
    for _ in range(5):
        response = session.get(url, timeout=30, **kwargs)
        if response.status_code != HTTPStatus.SERVICE_UNAVAILABLE:
            break
        time.sleep(min(5.0, float(response.headers.get("Retry-After", "1"))))
    if response.status_code != HTTPStatus.OK:
        raise RuntimeError(f"GET {url}: {response.status_code} {response.text[:300]}")
    return response.json()


def discover(url: str) -> tuple[list[str], list[str]]:
    """Named-query URLs (with default parameters) and resource page paths of the server."""
    session = requests.Session()
    queries = _get_json(session, url + "/api/queries").get("queries", [])
    named = [f"/api/queries/{q['name']}" for q in queries]
    named += [f"/api/queries/{q['name']}.csv" for q in queries[:3]]
    found = _get_json(
        session,
        url + "/sparql",
        params={
            "query": "SELECT DISTINCT ?s WHERE { ?s a ?t FILTER(STRSTARTS(STR(?s), "
            '"https://w3id.org/copkg/id/")) } ORDER BY ?s LIMIT 300'
        },
        headers={"Accept": "application/sparql-results+json"},
    )
    pages = list(PAGES)
    for row in found["results"]["bindings"]:
        path = row["s"]["value"].removeprefix("https://w3id.org/copkg")
        path = quote(path, safe="/:@!$&'()*+,;=-._~")
        pages += [path, path + ".json"]
    return named, pages


def next_request(
    rng: random.Random, named: list[str], pages: list[str], mix: dict[str, int]
) -> tuple[str, Callable[[requests.Session, str, float], requests.Response], tuple[int, ...]]:
    """A request of the mix: its kind, how to send it and the statuses it may get."""
    kind = rng.choices(list(mix), weights=list(mix.values()))[0]
    if kind == "named" and named:
        path = rng.choice(named)
        return kind, lambda s, u, t: s.get(u + path, timeout=t), (200,)
    if kind == "page" or (kind == "named" and not named):
        path = rng.choice(pages)
        offered = (
            ["text/html", "application/json", "text/turtle"]
            if path.startswith("/id/")
            else ["text/html"]
        )
        accept = rng.choice(offered)
        return (
            "page",
            lambda s, u, t: s.get(u + path, headers={"Accept": accept}, timeout=t),
            (200,),
        )
    if kind == "sparql":
        query = rng.choice(SELECTS)
        if rng.random() < 0.5:
            return (
                kind,
                lambda s, u, t: s.get(u + "/sparql", params={"query": query}, timeout=t),
                (200,),
            )
        return kind, lambda s, u, t: s.post(u + "/sparql", data={"query": query}, timeout=t), (200,)
    if kind == "bad":
        query = rng.choice(BAD)
        return (
            kind,
            lambda s, u, t: s.post(
                u + "/sparql",
                data=query.encode(),
                headers={"Content-Type": "application/sparql-query"},
                timeout=t,
            ),
            (400,),
        )
    query = rng.choice(SLOW)
    return "slow", lambda s, u, t: s.post(u + "/sparql", data={"query": query}, timeout=t), (503,)


class SourceAddress(requests.adapters.HTTPAdapter):
    """Connections from one local address: each simulated client is a client of its own to
    the service's per-client scheduling (127.0.0.0/8 is all loopback)."""

    def __init__(self, address: str) -> None:
        self.address = address
        super().__init__()

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        kwargs["source_address"] = (self.address, 0)
        super().init_poolmanager(*args, **kwargs)


def session_from(url: str, address: str | None) -> requests.Session:
    """A session whose connections leave from `address` (only towards a loopback server)."""
    session = requests.Session()
    if address is not None and urlsplit(url).hostname in ("127.0.0.1", "localhost"):
        session.mount("http://", SourceAddress(address))
    return session


def client_address(index: int) -> str:
    """The loopback address simulated client `index` sends from."""
    return f"127.0.{2 + index // 250}.{1 + index % 250}"


def client(
    url: str,
    seed: int,
    until: float,
    named: list[str],
    pages: list[str],
    timeout: float,
    mix: dict[str, int],
    out: list[Sample],
) -> None:
    rng = random.Random(seed)
    address = client_address(seed)
    session = session_from(url, address)
    while time.monotonic() < until:
        kind, send, intended = next_request(rng, named, pages, mix)
        start = time.monotonic()
        detail = ""
        try:
            response = send(session, url, timeout)
            response.content  # noqa: B018 - read the whole body
            status = response.status_code
            if status not in intended:
                request = response.request
                detail = f"{request.method} {request.url[len(url) :][:100]}: {response.text[:200]}"
        except requests.RequestException as exc:
            status = 0  # no answer: refused, reset or timed out in the client
            detail = f"{type(exc).__name__}: {exc}"[:300]
            session.close()
            session = session_from(url, address)
        out.append(Sample(kind, status, time.monotonic() - start, intended, detail))
    session.close()  # no keep-alive connection left for the server to wait on


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def run(
    url: str,
    *,
    duration: float = 60.0,
    clients: int = 16,
    pid: int | None = None,
    query_timeout: float = 2.0,
    rss_growth_mb: float = DEFAULT_RSS_GROWTH_MB,
    seed: int = 6,
    mix: dict[str, int] | None = None,
) -> Report:
    """Load the server at `url` for `duration` s with `clients` concurrent clients."""
    named, pages = discover(url)
    samples: list[Sample] = []
    # a request waits at most for a query slot and the limit; the client gives it far more
    timeout = 4 * query_timeout + 30
    with RssSampler(pid if pid is not None else server_pid(url)) as sampler:
        until = time.monotonic() + duration
        threads = [
            threading.Thread(
                target=client,
                args=(url, seed + i, until, named, pages, timeout, mix or MIX, samples),
            )
            for i in range(clients)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    return summarise(url, duration, clients, samples, sampler.summary(), rss_growth_mb)


def summarise(
    url: str,
    duration: float,
    clients: int,
    samples: list[Sample],
    rss: dict[str, Any],
    rss_growth_mb: float,
) -> Report:
    report = Report(url, duration, clients, rss_growth_bound_mb=rss_growth_mb)
    report.requests = len(samples)
    report.per_second = round(len(samples) / duration, 1)
    statuses: dict[str, Counter[int]] = defaultdict(Counter)
    latencies: dict[str, list[float]] = defaultdict(list)
    unexpected: Counter[str] = Counter()
    for sample in samples:
        statuses[sample.kind][sample.status] += 1
        latencies[sample.kind].append(sample.seconds)
        latencies["all"].append(sample.seconds)
        if sample.status not in sample.intended:
            unexpected[f"{sample.kind} -> {sample.status}"] += 1
    report.statuses = {k: {str(s): n for s, n in sorted(c.items())} for k, c in statuses.items()}
    report.latency_ms = {
        kind: {
            "p50": round(1000 * percentile(values, 0.50), 1),
            "p90": round(1000 * percentile(values, 0.90), 1),
            "p99": round(1000 * percentile(values, 0.99), 1),
            "max": round(1000 * max(values), 1),
        }
        for kind, values in sorted(latencies.items())
    }
    report.unexpected = [f"{what}: {n}" for what, n in unexpected.most_common()]
    report.examples = [s.detail for s in samples if s.detail][:10]
    report.rss_mb = rss
    failures = []
    server_errors = sum(
        n
        for sample_kind, counter in statuses.items()
        for status, n in counter.items()
        if status >= 500 and not (status == 503 and sample_kind == "slow")
    )
    if server_errors:
        failures.append(f"{server_errors} responses were 5xx other than the intended 503s")
    no_answer = sum(c.get(0, 0) for c in statuses.values())
    if no_answer:
        failures.append(f"{no_answer} requests got no answer (connection error or timeout)")
    if not samples:
        failures.append("no request was made")
    if rss and rss["growth"] >= rss_growth_mb:
        failures.append(f"memory grew {rss['growth']} MiB (bound {rss_growth_mb} MiB)")
    report.failures = failures
    report.passed = not failures
    return report


def markdown(report: Report) -> str:
    """The report as Markdown (the RESULTS.md section)."""
    lines = [
        f"{report.requests} requests in {report.duration:g} s from {report.clients} clients "
        f"({report.per_second} req/s); {'PASS' if report.passed else 'FAIL'}"
        + (f": {'; '.join(report.failures)}" if report.failures else ""),
        "",
        "| kind | statuses | p50 ms | p90 ms | p99 ms | max ms |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for kind, stats in report.latency_ms.items():
        counts = report.statuses.get(kind, {})
        shown = ", ".join(f"{s}: {n}" for s, n in counts.items()) or "-"
        lines.append(
            f"| {kind} | {shown} | {stats['p50']} | {stats['p90']} | {stats['p99']} | "
            f"{stats['max']} |"
        )
    if report.rss_mb:
        rss = report.rss_mb
        lines += [
            "",
            f"RSS of the server's processes (up to {rss['processes_max']}): {rss['start']} MiB "
            f"at the start, {rss['end']} MiB at the end (growth {rss['growth']} MiB, bound "
            f"{report.rss_growth_bound_mb:g} MiB), {rss['max']} MiB at most.",
        ]
    if report.unexpected:
        lines += ["", "Statuses other than intended: " + "; ".join(report.unexpected)]
        lines += [f"- {example}" for example in report.examples]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", help="a running server (default: start `copkg serve`)")
    parser.add_argument("--root", type=Path, default=ROOT, help="the project to serve")
    parser.add_argument("--duration", type=float, default=60.0, help="seconds (default 60)")
    parser.add_argument("--clients", type=int, default=16, help="concurrent clients (16)")
    parser.add_argument("--workers", type=int, default=1, help="gunicorn workers (1)")
    parser.add_argument("--query-timeout", type=float, default=2.0, help="seconds (2)")
    parser.add_argument("--rss-growth-mb", type=float, default=DEFAULT_RSS_GROWTH_MB)
    parser.add_argument("--json", type=Path, help="write the report as JSON here")
    args = parser.parse_args(argv)
    if args.duration <= 0 or args.duration > 3600 or not 1 <= args.clients <= 256:
        parser.error("--duration must be in (0, 3600] s and --clients in [1, 256]")
    options = {
        "duration": args.duration,
        "clients": args.clients,
        "query_timeout": args.query_timeout,
        "rss_growth_mb": args.rss_growth_mb,
    }
    if args.url:
        report = run(args.url.rstrip("/"), **options)
    else:
        with started_server(args.root, query_timeout=args.query_timeout, workers=args.workers) as (
            url,
            pid,
        ):
            report = run(url, pid=pid, **options)
    print(markdown(report))
    if args.json:
        args.json.write_text(json.dumps(asdict(report), indent=2) + "\n")
    return 0 if report.passed else 1


if __name__ == "__main__":
    sys.exit(main())
