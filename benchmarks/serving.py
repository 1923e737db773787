"""What the benchmarks share to serve and load a project over HTTP: the servers (`copkg serve`,
`oxigraph serve-read-only`), the uncached workloads drawn from a corpus, keep-alive load from
client threads and its summary (run.py, cpu.py and virtuoso_bench.py use them)."""

from __future__ import annotations

import contextlib
import http.client
import itertools
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

#: The oxigraph CLI: on PATH, else the one the test extras install next to this Python.
OXIGRAPH = shutil.which("oxigraph") or str(Path(sys.executable).parent / "oxigraph")


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (0-100) by linear interpolation; nan for no values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    k = (len(ordered) - 1) * q / 100
    low = int(k)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (k - low)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# -- HTTP load -----------------------------------------------------------------------------------


def load(
    port: int,
    requests_: list[tuple[str, str, dict[str, str]]],
    *,
    threads: int,
    seconds: float,
    max_requests: int,
) -> dict[str, Any]:
    """Send the requests round-robin from `threads` keep-alive connections for `seconds`
    (at most max_requests in all); throughput and latency percentiles."""
    return summary(
        load_raw(port, requests_, threads=threads, seconds=seconds, max_requests=max_requests)
    )


def load_raw(
    port: int,
    requests_: list[tuple[str, str, dict[str, str]]],
    *,
    threads: int,
    seconds: float,
    max_requests: int,
    start: int = 0,
) -> dict[str, Any]:
    """load() before the summary: every latency (ms), statuses, errors, elapsed seconds.
    Request i (from `start`, counted over all threads) is requests_[i % len(requests_)]."""
    latencies: list[float] = []
    errors: list[str] = []
    statuses: dict[int, int] = {}
    lock = threading.Lock()
    counter = iter(range(start, start + max_requests))
    deadline = time.perf_counter() + seconds

    def worker(offset: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        mine: list[float] = []
        while time.perf_counter() < deadline:
            try:
                i = next(counter)  # one sequence for all threads: no request sent twice
            except StopIteration:
                break
            method, path, headers, *body = requests_[i % len(requests_)]
            start = time.perf_counter()
            try:
                conn.request(method, path, body=body[0] if body else None, headers=headers)
                response = conn.getresponse()
                response.read()
                status = response.status
            except (OSError, http.client.HTTPException) as exc:
                with lock:
                    errors.append(type(exc).__name__)
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
                continue
            mine.append((time.perf_counter() - start) * 1000)
            with lock:
                statuses[status] = statuses.get(status, 0) + 1
        conn.close()
        with lock:
            latencies.extend(mine)

    started = time.perf_counter()
    pool = [threading.Thread(target=worker, args=(k,)) for k in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    return {
        "latencies": latencies,
        "statuses": statuses,
        "errors": len(errors),
        "seconds": time.perf_counter() - started,
        "next": start + len(latencies) + len(errors),
    }


def merged(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Several load_raw() results as one."""
    statuses: dict[int, int] = {}
    for run in runs:
        for status, count in run["statuses"].items():
            statuses[status] = statuses.get(status, 0) + count
    out = {
        "latencies": [ms for run in runs for ms in run["latencies"]],
        "statuses": statuses,
        "errors": sum(run["errors"] for run in runs),
        "seconds": sum(run["seconds"] for run in runs),
    }
    if all("cpu_s" in run for run in runs):
        out["cpu_s"] = sum(run["cpu_s"] for run in runs)
    return out


def summary(raw: dict[str, Any]) -> dict[str, Any]:
    """Throughput and latency percentiles of a load_raw() result."""
    latencies, elapsed = raw["latencies"], raw["seconds"]
    out = {
        "requests": len(latencies),
        "seconds": round(elapsed, 2),
        "rps": round(len(latencies) / elapsed, 1) if elapsed else 0,
        "p50_ms": round(percentile(latencies, 50), 2),
        "p95_ms": round(percentile(latencies, 95), 2),
        "p99_ms": round(percentile(latencies, 99), 2),
        "statuses": raw["statuses"],
        "errors": raw["errors"],
    }
    if "cpu_s" in raw and latencies:  # the server's CPU per request (all its processes)
        out["cpu_ms_per_request"] = round(raw["cpu_s"] * 1000 / len(latencies), 2)
    return out


def group_cpu_seconds(pgid: int) -> float:
    """CPU time (user + system) of the live processes of a process group, from /proc: a server
    and its workers (each server runs in a session of its own, see server())."""
    total = 0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()  # after the command: state, ppid, pgrp, ...
        if int(fields[2]) == pgid:
            total += int(fields[11]) + int(fields[12])  # utime, stime (clock ticks)
    return total / os.sysconf("SC_CLK_TCK")


def timed_load(process: subprocess.Popen | None, port: int, requests_: list[Any],
               **options: Any) -> dict[str, Any]:  # fmt: skip
    """load_raw() with the CPU seconds the server's process group spent meanwhile."""
    before = group_cpu_seconds(process.pid) if process is not None else None
    raw = load_raw(port, requests_, **options)
    if before is not None and process is not None:
        raw["cpu_s"] = group_cpu_seconds(process.pid) - before
    return raw


def wait_for(port: int, path: str, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError, http.client.HTTPException):
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            conn.request("GET", path)
            conn.getresponse().read()
            conn.close()
            return
        time.sleep(0.2)
    raise TimeoutError(f"no server on 127.0.0.1:{port} after {timeout} s")


def wait_for_line(log: Path, text: str, timeout: float) -> str | None:
    """The first line of a log holding `text`, once it is there (None after `timeout` s)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError):
            for line in log.read_text(errors="replace").splitlines():
                if text in line:
                    return line.split(text, 1)[1].strip()
        time.sleep(0.5)
    return None


@contextlib.contextmanager
def server(
    command: list[str], port: int, path: str, log: Path, env: dict[str, str] | None = None
) -> Iterator[subprocess.Popen]:
    """A server process (its own process group), stopped on exit."""
    with log.open("wb") as out:
        process = subprocess.Popen(
            command,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            env={**os.environ, **(env or {})},
        )
        try:
            wait_for(port, path)
            yield process
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait()


#: The uncached ad-hoc workloads: one query shape each, a different resource every request.
RDFS = "PREFIX rdfs: <http://www.w3.org/2000/01/rdf-schema#>\n"
COPKG = "PREFIX copkg: <https://w3id.org/copkg/ontology#>\n"
UNCACHED_ADHOC: dict[str, Callable[[str, str], str]] = {
    "one resource's triples": lambda r, study: f"SELECT ?p ?o WHERE {{ <{r}> ?p ?o }}",
    "incoming links with labels": lambda r, study: (
        RDFS + f"SELECT ?s ?p ?label WHERE {{ ?s ?p <{r}> OPTIONAL {{ ?s rdfs:label ?label }} }}"
        " LIMIT 100"
    ),
    "one study's quotes by page": lambda r, study: (
        COPKG + f"SELECT ?quote ?page WHERE {{ ?quote copkg:quotedIn <{study}> ; "
        "copkg:page ?page } ORDER BY ?page ?quote"
    ),
}

ID_BASE = "https://w3id.org/copkg"


def corpus_resources(root: Path) -> tuple[list[str], list[str]]:
    """The typed resources of the studies (shuffled, seed 0) and the studies, from the build."""

    import pyoxigraph as ox

    store = ox.Store.read_only(str(root / "build" / "oxigraph"))
    rdf_type = ox.NamedNode("http://www.w3.org/1999/02/22-rdf-syntax-ns#type")
    study = ox.NamedNode("https://w3id.org/copkg/ontology#Study")
    resources = sorted(
        {
            q.subject.value
            for q in store.quads_for_pattern(None, rdf_type, None)
            if isinstance(q.subject, ox.NamedNode) and q.subject.value.startswith(ID_BASE + "/id/")
        }
    )
    studies = sorted({q.subject.value for q in store.quads_for_pattern(None, rdf_type, study)})
    random.Random(0).shuffle(resources)
    del store
    return resources, studies


def study_of(resource: str) -> str:
    return resource.rsplit("/", 1)[0] + "/study"


def named_variations(root: Path, studies: list[str]) -> dict[str, list[tuple[str, str]]]:
    """Each named query's requests with its parameters varied: (copkg path, the text copkg
    runs for it, bound as copkg binds it, for oxigraph). Enumerated parameters take each
    value, the study a query pages over (or takes) each study, the others their default."""

    from copkg.config import Settings
    from copkg.pipeline.open import open_store
    from copkg.querying.named_queries import load_named_queries, prepare
    from copkg.store.scan import bind_values
    from copkg.store.terms import terms_as_sparql

    settings = Settings.load(root, environ={})
    store = open_store(settings)
    out: dict[str, list[tuple[str, str]]] = {}
    for name, query in sorted(load_named_queries(root / "queries").items()):
        choices: list[list[tuple[str, str]]] = []
        for param in query.parameters:
            if param.enum:
                choices.append([(param.name, v) for v in param.enum])
            elif param.kind == "iri" and (
                param.name == "study" or (query.page_over and query.page_over[0] == param.name)
            ):
                choices.append([(param.name, v) for v in studies])
        variations = []
        for combo in itertools.islice(itertools.product(*choices), 300):
            raw = dict(combo)
            try:
                prepared = prepare(store, query, raw)
            except Exception:  # noqa: BLE001 - a combination the query refuses is left out
                continue
            text = prepared.text
            if prepared.rest:
                text = bind_values(text, terms_as_sparql(prepared.rest))
            path = f"/api/queries/{name}" + ("?" + urllib.parse.urlencode(raw) if raw else "")
            variations.append((path, text))
        out[name] = variations
    return out


def http_workloads(
    root: Path, resources: list[str], studies: list[str]
) -> dict[str, tuple[list[Any], list[Any]]]:
    """workload -> (copkg requests, oxigraph requests): the same questions in the same order."""
    json_accept = {"Accept": "application/sparql-results+json"}

    def sparql(path: str, text: str) -> tuple[str, str, dict[str, str]]:
        return ("GET", f"{path}?" + urllib.parse.urlencode({"query": text}), json_accept)

    workloads: dict[str, tuple[list[Any], list[Any]]] = {}
    for label, make in UNCACHED_ADHOC.items():
        if "study" in label:
            texts = [make("", s) for s in studies]
        else:
            texts = [make(r, study_of(r)) for r in resources]
        workloads[label] = (
            [sparql("/sparql", t) for t in texts],
            [sparql("/query", t) for t in texts],
        )
    variations = named_variations(root, studies)
    named_copkg: list[Any] = []
    named_oxi: list[Any] = []
    direct = {
        "Accept": "application/sparql-results+json",
        "Content-Type": "application/sparql-query",
    }
    for pairs in itertools_roundrobin(list(variations.values())):
        path, text = pairs
        named_copkg.append(("GET", path, {"Accept": "application/json"}))
        # POSTed: oxigraph refuses (400) a GET whose URL holds the longest named queries
        named_oxi.append(("POST", "/query", direct, text.encode("utf-8")))
    workloads["named queries, parameters varied"] = (named_copkg, named_oxi)
    return workloads


def server_commands(root: Path, oxi_dir: Path, ports: dict[str, int]) -> dict[str, list[str]]:
    """The command line of each server under test (copkg twice, oxigraph once)."""
    commands = {
        name: [
            sys.executable,
            "-m",
            "copkg.cli",
            "serve",
            "--port",
            str(ports[name]),
            "--root",
            str(root),
        ]
        for name in ("copkg", "copkg-uncached")
    }
    commands["oxigraph"] = [
        OXIGRAPH,
        "serve-read-only",
        "--location",
        str(oxi_dir),
        "--bind",
        f"127.0.0.1:{ports['oxigraph']}",
        "--union-default-graph",
    ]
    return commands


def itertools_roundrobin(lists: list[list[Any]]) -> Iterator[Any]:
    """One item of each list in turn until all are spent."""
    iterators = [iter(items) for items in lists if items]
    while iterators:
        for it in list(iterators):
            try:
                yield next(it)
            except StopIteration:
                iterators.remove(it)
