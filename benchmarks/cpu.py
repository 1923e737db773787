"""CPU time per request, by process, of `copkg serve` (answer cache off) and `oxigraph serve`:
the profile of RESULTS.md ("Where the time goes"). CPU time hardly depends on the machine's
load, unlike requests/s, so it is the fair before/after on a shared machine.

Each workload of run.py (the same uncached requests: a different resource or parameter value
each time) is sent by one keep-alive client, `--requests` requests after a warm-up; the user
and system time of every process of each server is read from /proc before and after.

    python benchmarks/cpu.py --project /tmp/cb/n100/project --requests 1000
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import serving  # noqa: E402

TICK = os.sysconf("SC_CLK_TCK")


def tree(pid: int) -> list[int]:
    """A process and its descendants (from /proc)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        with contextlib.suppress(OSError, IndexError, ValueError):
            stat = Path(f"/proc/{entry}/stat").read_text()
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            children.setdefault(ppid, []).append(int(entry))
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        todo += children.get(current, [])
    return found


def role(pid: int) -> str:
    """What a process of the servers is, from its command line."""
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return "gone"
    text = b" ".join(argv).decode(errors="replace")
    if "worker_loop" in text:
        return "query worker"
    if "copkg.web.front" in text:
        return "front"
    if "oxigraph" in text and "serve" in text:
        return "oxigraph"
    return "web"  # the gunicorn master and its workers


def cpu(pid: int) -> float:
    """User + system seconds of a process (its ended threads included)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / TICK


def snapshot(root: int) -> dict[int, tuple[str, float]]:
    return {pid: (role(pid), cpu(pid)) for pid in tree(root)}


def by_role(before: dict[int, tuple[str, float]], after: dict[int, tuple[str, float]]) -> dict:
    spent: dict[str, float] = {}
    for pid, (name, seconds) in after.items():
        spent[name] = spent.get(name, 0.0) + seconds - before.get(pid, (name, 0.0))[1]
    return spent


def measure(port: int, root: int, requests_: list[Any], count: int, start: int) -> dict[str, Any]:
    """CPU seconds by role of `count` requests (from request `start`), one client."""
    before = snapshot(root)
    started = time.perf_counter()
    raw = serving.load_raw(port, requests_, threads=1, seconds=600, max_requests=count, start=start)
    wall = time.perf_counter() - started
    spent = by_role(before, snapshot(root))
    done = len(raw["latencies"])
    return {
        "requests": done,
        "statuses": raw["statuses"],
        "wall_ms": 1000 * wall / max(done, 1),
        "cpu_ms": {k: 1000 * v / max(done, 1) for k, v in spent.items()},
    }


def summarise(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    """The median over rounds, by role and in all (and the lowest total: the least disturbed)."""
    totals = [sum(r["cpu_ms"].values()) for r in rounds]
    roles = sorted({k for r in rounds for k in r["cpu_ms"]})
    return {
        "requests": sum(r["requests"] for r in rounds),
        "statuses": {
            str(k): sum(r["statuses"].get(k, 0) for r in rounds)
            for k in {k for r in rounds for k in r["statuses"]}
        },
        "cpu_ms": {
            k: round(statistics.median(r["cpu_ms"].get(k, 0) for r in rounds), 3) for k in roles
        },
        "cpu_ms_total": round(statistics.median(totals), 3),
        "cpu_ms_total_min": round(min(totals), 3),
        "wall_ms": round(statistics.median(r["wall_ms"] for r in rounds), 3),
    }


def server_table(
    args: argparse.Namespace, root: Path, oxi_dir: Path
) -> dict[str, tuple[list[str], int, dict[str, str]]]:
    """name -> (command, port, environment) of each server measured."""
    env = {"COPKG_RESPONSE_CACHE_BYTES": "0", **dict(e.split("=", 1) for e in args.env)}
    servers: dict[str, tuple[list[str], int, dict[str, str]]] = {}
    ports = {"copkg-uncached": serving.free_port(), "copkg": 0, "oxigraph": serving.free_port()}
    commands = serving.server_commands(root, oxi_dir, ports)
    servers["copkg"] = (commands["copkg-uncached"], ports["copkg-uncached"], env)
    if args.base is not None:
        port = serving.free_port()
        base_env = {**env, "PYTHONPATH": str(args.base.resolve() / "src")}
        base_command = [*commands["copkg-uncached"]]
        base_command[base_command.index("--port") + 1] = str(port)
        servers["base"] = (base_command, port, base_env)
    if not args.no_oxigraph:
        servers["oxigraph"] = (commands["oxigraph"], ports["oxigraph"], {})
    return servers


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--project", type=Path, required=True)
    parser.add_argument("--requests", type=int, default=200, help="requests a round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--warm", type=int, default=100)
    parser.add_argument("--only", default="")
    parser.add_argument("--no-oxigraph", action="store_true")
    parser.add_argument(
        "--base", type=Path, help="another copkg source tree (its src/) to measure beside"
    )
    parser.add_argument("--work", type=Path, default=Path("/tmp/copkg-cpu"))
    parser.add_argument("--out", type=Path)
    parser.add_argument("--env", action="append", default=[], help="NAME=VALUE for copkg serve")
    args = parser.parse_args(argv)
    root = args.project.resolve()
    work = args.work
    work.mkdir(parents=True, exist_ok=True)
    resources, studies = serving.corpus_resources(root)
    workloads = serving.http_workloads(root, resources, studies)
    paths = [r[len(serving.ID_BASE) :] for r in resources]
    workloads["page JSON (/id/....json)"] = ([("GET", p + ".json", {}) for p in paths], None)
    html = {"Accept": "text/html"}
    workloads["page HTML (/id/...)"] = ([("GET", p, html) for p in reversed(paths)], None)
    oxi_dir = work / "oxigraph-store"
    if not args.no_oxigraph and not oxi_dir.exists():
        subprocess.run(
            [serving.OXIGRAPH, "load", "--location", str(oxi_dir), "--file",
             str(root / "build" / "copkg.nq")],
            check=True, capture_output=True,
        )  # fmt: skip
    servers = server_table(args, root, oxi_dir)
    report: dict[str, Any] = {"loadavg": os.getloadavg(), "workloads": {}}
    with contextlib.ExitStack() as stack:
        pids = {}
        for name, (command, port, extra) in servers.items():
            probe = "/" if name == "oxigraph" else "/api/queries"
            process = stack.enter_context(
                serving.server(command, port, probe, work / f"{name}.log", env=extra)
            )
            pids[name] = process.pid
        time.sleep(2)
        for label, (mine, other) in workloads.items():
            if args.only and args.only not in label:
                continue
            sent = {name: mine if name != "oxigraph" else other for name in servers}
            sent = {name: reqs for name, reqs in sent.items() if reqs is not None}
            for name, reqs in sent.items():  # warm-up
                serving.load_raw(
                    servers[name][1], reqs, threads=1, seconds=60, max_requests=args.warm
                )
            rounds: dict[str, list[dict[str, Any]]] = {name: [] for name in sent}
            for index in range(args.rounds):
                for name, reqs in sent.items():
                    start = args.warm + index * args.requests
                    rounds[name].append(
                        measure(servers[name][1], pids[name], reqs, args.requests, start)
                    )
            figures = {name: summarise(r) for name, r in rounds.items()}
            report["workloads"][label] = figures
            print(label + ": " + "; ".join(
                f"{name} {f['cpu_ms_total']} ms (min {f['cpu_ms_total_min']}) {f['cpu_ms']}"
                for name, f in figures.items()), flush=True)  # fmt: skip
    report["loadavg_end"] = os.getloadavg()
    print(f"load average: {report['loadavg']} -> {report['loadavg_end']}")
    if args.out:
        args.out.write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
