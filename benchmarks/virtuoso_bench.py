"""copkg on Virtuoso beside the embedded store (`run.py --virtuoso`).

On a built project, a Virtuoso of its own (Debian's virtuoso-opensource, started on 127.0.0.1
with its own virtuoso.ini and database by tests/virtuoso_server.py, the accounts README.md
describes) gets the build by `copkg push` (the push account, HTTP Digest, the Graph Store
Protocol: README.md's command), timed into the empty store and again over it (each graph
replaced). Then two `copkg serve` that keep no answer (COPKG_RESPONSE_CACHE_BYTES=0), one on
the embedded store and one with `--store` on Virtuoso, both up at once, take turns on the
uncached workloads of run.py (`http_workloads`: one resource's triples, incoming links with
labels, one study's quotes, the named queries with their parameters varied), every request
a different question; the ratio is Virtuoso's requests/s over the embedded store's.

    python benchmarks/run.py --sizes 100 --project P --no-http --virtuoso --out results.json
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))

import cpu  # noqa: E402
import serving  # noqa: E402
import virtuoso_server  # noqa: E402

from copkg.config import Settings  # noqa: E402
from copkg.errors import CopkgError  # noqa: E402
from copkg.pipeline import load_build  # noqa: E402
from copkg.pipeline.open import open_store  # noqa: E402
from copkg.querying.named_queries import load_named_queries, run_page  # noqa: E402

#: Named queries Virtuoso 7.2.5 cannot answer (README.md, "Virtuoso"): left out of the named
#: queries' workload on both servers, so that both answer the same questions, as is any other
#: whose first page Virtuoso does not answer within the service's time limit. None today
#: (role-study-comparison was, until it was rewritten into a form Virtuoso answers).
LEFT_OUT: tuple[str, ...] = ()


def missing() -> str | None:
    """Why Virtuoso cannot be benchmarked here, or None."""
    if virtuoso_server.VIRTUOSO is None or virtuoso_server.ISQL is None:
        return "Virtuoso (virtuoso-t and isql-vt, Debian's virtuoso-opensource) is not installed"
    return None


def timed_push(root: Path, server: virtuoso_server.Virtuoso) -> dict[str, Any]:
    """`copkg push` of the build to the server, as README.md writes it; its wall time."""
    command = [
        sys.executable, "-m", "copkg.cli", "push", "--store", server.sparql,
        "--graph-store-url", server.graph_crud_auth, "--user", virtuoso_server.PUSH_USER,
        "--digest", "--timeout", "1800", "--root", str(root),
    ]  # fmt: skip
    env = {**os.environ, "COPKG_STORE_PASSWORD": server.push_password}
    children = os.times()
    virtuoso_cpu = cpu.cpu(server.process.pid)
    start = time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - start
    after = os.times()
    last = (done.stdout.strip().splitlines() or [""])[-1] if done.returncode == 0 else ""
    return {
        "ok": done.returncode == 0,
        "seconds": round(wall, 2),
        # user + system seconds: the copkg push process, and Virtuoso meanwhile
        "cpu_s_copkg": round(
            after.children_user
            + after.children_system
            - children.children_user
            - children.children_system,
            2,
        ),
        "cpu_s_virtuoso": round(cpu.cpu(server.process.pid) - virtuoso_cpu, 2),
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "said": last or (done.stdout + done.stderr)[-1500:],
    }


def quads(root: Path) -> int:
    manifest = json.loads((root / "build" / "manifest.json").read_text())
    return int(manifest.get("quads") or sum(manifest.get("graphs", {}).values()))


def named_latency(
    root: Path, server: virtuoso_server.Virtuoso, repeats: int = 3
) -> dict[str, dict[str, Any]]:
    """The first page of each named query (default parameters) on the embedded store and on
    Virtuoso, one at a time: the median ms of `repeats`, or the error (the service's time
    limit applies to both)."""
    settings = Settings.load(root, environ={})
    stores = {
        "embedded": load_build(settings),
        "virtuoso": open_store(dataclasses.replace(settings, store_url=server.sparql)),
    }
    out: dict[str, dict[str, Any]] = {}
    for name, query in sorted(load_named_queries(root / "queries").items()):
        out[name] = {}
        for who, store in stores.items():
            times: list[float] = []
            rows, error = 0, None
            for _ in range(repeats):
                start = time.perf_counter()
                try:
                    rows = len(run_page(store, query, {})[0].rows)
                except CopkgError as exc:
                    error = exc.message[:300]
                    break
                times.append((time.perf_counter() - start) * 1000)
            median = round(statistics.median(times), 1) if times else None
            out[name][who] = {"median_ms": median, "rows": rows, "error": error}
        print(f"   {name}: {out[name]}", flush=True)
    return out


def workloads(root: Path, left_out: list[str]) -> dict[str, list[Any]]:
    """run.py's uncached workloads as copkg requests, the named queries `left_out` left out."""
    resources, studies = serving.corpus_resources(root)
    out = {
        label: ours for label, (ours, _) in serving.http_workloads(root, resources, studies).items()
    }
    named = "named queries, parameters varied"
    out[named] = [
        r for r in out[named] if not any(r[1].startswith(f"/api/queries/{q}?") or
                                         r[1] == f"/api/queries/{q}" for q in left_out)
    ]  # fmt: skip
    return out


def virtuoso_bench(
    root: Path,
    work: Path,
    *,
    threads: list[int],
    seconds: float,
    max_requests: int,
    rounds: int = 5,
    only: str = "",
    buffers: int | None = None,
) -> dict[str, Any]:
    """Push to a fresh Virtuoso (timed), then copkg serve on it and on the embedded store,
    taking turns on each workload; see the module's docstring."""
    reason = missing()
    if reason is not None:
        return {"error": reason}
    work.mkdir(parents=True, exist_ok=True)
    folder = work / "virtuoso"
    shutil.rmtree(folder, ignore_errors=True)
    size = quads(root)
    # about 200 bytes a quad in Virtuoso's pages of 8 KB, and never less than the tests' 160 MB
    buffers = buffers or max(20_000, size // 40)
    server = virtuoso_server.start(folder, buffers=buffers)
    try:
        results: dict[str, Any] = {"virtuoso": server.version(), "quads": size}
        results["load_average_before"] = [round(x, 2) for x in os.getloadavg()]
        results["buffers"] = buffers
        results["push"] = timed_push(root, server)
        print(f"   push to Virtuoso: {results['push']}", flush=True)
        if not results["push"]["ok"]:
            return results
        results["push_again"] = timed_push(root, server)
        print(f"   push again: {results['push_again']}", flush=True)
        results["database_mib"] = round((folder / "db" / "virtuoso.db").stat().st_size / 2**20)
        results["named_first_page"] = named_latency(root, server)
        failing = [q for q, f in results["named_first_page"].items() if f["virtuoso"]["error"]]
        left_out = sorted(set(LEFT_OUT) | set(failing))
        results.update(
            serve_both(root, server, work, threads, seconds, max_requests, rounds, only, left_out)
        )
        results["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
        return results
    finally:
        server.stop()


def serve_both(
    root: Path,
    server: virtuoso_server.Virtuoso,
    work: Path,
    threads: list[int],
    seconds: float,
    max_requests: int,
    rounds: int,
    only: str,
    left_out: list[str],
) -> dict[str, Any]:
    """The two copkg serve, up at once, taking turns on each workload."""
    every = workloads(root, left_out)
    ports = {"embedded": serving.free_port(), "virtuoso": serving.free_port()}
    base = [sys.executable, "-m", "copkg.cli", "serve", "--root", str(root)]
    commands = {
        "embedded": [*base, "--port", str(ports["embedded"])],
        "virtuoso": [*base, "--port", str(ports["virtuoso"]), "--store", server.sparql],
    }
    uncached = {"COPKG_RESPONSE_CACHE_BYTES": "0"}  # no answer kept (and no warm-up)
    out: dict[str, Any] = {
        "distinct": {label: len(requests) for label, requests in every.items()},
        "left_out": left_out,
        "threads": threads,
        "rounds": rounds,
        "workloads": {},
    }
    with contextlib.ExitStack() as stack:
        pids = {"virtuoso-t": server.process.pid}
        for who, command in commands.items():
            log = work / f"{who}-serve.log"
            process = stack.enter_context(
                serving.server(command, ports[who], "/api/queries", log, uncached)
            )
            pids[f"copkg serve, {who}"] = process.pid
        offsets: dict[tuple[str, str], int] = {}
        for count in threads:
            for label, requests in every.items():
                if only and only not in label:
                    continue
                parts: dict[str, list[dict[str, Any]]] = {who: [] for who in ports}
                spent: dict[str, float] = dict.fromkeys(pids, 0.0)
                for _ in range(rounds):
                    for who, port in ports.items():
                        before = {k: _tree_cpu(pid) for k, pid in pids.items()}
                        raw = serving.load_raw(
                            port,
                            requests,
                            threads=count,
                            seconds=seconds / rounds,
                            max_requests=max_requests,
                            start=offsets.get((who, label), 0),
                        )
                        offsets[(who, label)] = raw["next"]
                        parts[who].append(raw)
                        for k, pid in pids.items():  # the CPU of the servers that answered
                            if k == f"copkg serve, {who}" or (who, k) == ("virtuoso", "virtuoso-t"):
                                spent[k] += _tree_cpu(pid) - before[k]
                figures: dict[str, Any] = {
                    who: serving.summary(serving.merged(runs)) for who, runs in parts.items()
                }
                failed = [
                    who
                    for who in ports
                    if figures[who]["errors"] or set(figures[who]["statuses"]) - {200}
                ]
                if failed:  # a ratio over refusals or dropped requests would mean nothing
                    figures["failed"] = failed
                elif figures["embedded"]["rps"]:
                    ratio = figures["virtuoso"]["rps"] / figures["embedded"]["rps"]
                    figures["ratio"] = round(ratio, 2)
                figures["cpu_s"] = {k: round(v, 2) for k, v in spent.items()}
                figures["load_average"] = [round(x, 2) for x in os.getloadavg()]
                out["workloads"][f"{count}|{label}"] = figures
                print(
                    f"   {count} threads, {label}: embedded {figures['embedded']['rps']}, "
                    f"Virtuoso {figures['virtuoso']['rps']}, ratio {figures.get('ratio', '-')}",
                    flush=True,
                )
    return out


def _tree_cpu(pid: int) -> float:
    """User + system seconds of a process and its descendants (query workers, gunicorn's)."""
    return sum(cpu.cpu(p) for p in cpu.tree(pid))


def markdown(n: int, result: dict[str, Any]) -> str:
    """The Virtuoso figures of one size as Markdown."""
    if "error" in result:
        return f"Virtuoso at N={n}: {result['error']}"
    push, again = result.get("push", {}), result.get("push_again", {})
    lines = [
        f"Virtuoso {result.get('virtuoso')} at N={n} ({result.get('quads')} quads, "
        f"{result.get('buffers')} buffers): `copkg push` {push.get('seconds')} s into the "
        f"empty store, {again.get('seconds')} s again over it (CPU s, copkg and Virtuoso: "
        f"{push.get('cpu_s_copkg')} and {push.get('cpu_s_virtuoso')}, then "
        f"{again.get('cpu_s_copkg')} and {again.get('cpu_s_virtuoso')}); database "
        f"{result.get('database_mib', '-')} MiB. Load average (1, 5, 15 min) before "
        f"{result.get('load_average_before')}, after {result.get('load_average_after')}.",
        "",
        "| N | threads | workload | embedded | Virtuoso | ratio Virtuoso / embedded |",
        "|---|---|---|---|---|---|",
    ]
    for key, f in result.get("workloads", {}).items():  # the HTTP figures
        count, label = key.split("|", 1)
        cells = [
            f"{f[who]['rps']} ({f[who]['p50_ms']})" if isinstance(f.get(who), dict) else "-"
            for who in ("embedded", "virtuoso")
        ]
        ratio = f.get("ratio", "failed: " + ", ".join(f.get("failed", [])))
        lines.append(f"| {n} | {count} | {label} | {cells[0]} | {cells[1]} | {ratio} |")
    named = result.get("named_first_page", {})
    if named:
        lines += [
            "",
            f"First page of each named query, one at a time (median ms, rows), N={n}; left out "
            "of the HTTP named-query workload: " + ", ".join(result.get("left_out", [])),
            "",
            "| query | embedded | Virtuoso |",
            "|---|---|---|",
        ]
        for name, f in named.items():
            cells = [
                f"{f[w]['median_ms']} ({f[w]['rows']})" if not f[w]["error"] else
                "error: " + f[w]["error"][:90].replace("|", "/")
                for w in ("embedded", "virtuoso")
            ]  # fmt: skip
            lines.append(f"| {name} | {cells[0]} | {cells[1]} |")
    return "\n".join(lines)
