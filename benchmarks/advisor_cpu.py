"""The advisor's CPU per answer in process, on a built project: `advise()` alone, in thread
CPU time (steady on a loaded machine), and what the HTTP path adds to it: the answer passed
from the advisor's process to the web process (pickled and unpickled) and made JSON.

The contexts are run.py's advisor workloads (a different context each time: the levels of
"your levels", and the same with one control mode at one degree, the 15 in turn), after the
advisor's process has primed itself (an empty context, the index of studied contexts).

    python benchmarks/advisor_cpu.py --project PROJECT --contexts 200
    python benchmarks/advisor_cpu.py --project PROJECT --contexts 50 --profile modes.prof
    python benchmarks/advisor_cpu.py --project PROJECT --contexts 200 --before 400
    python benchmarks/advisor_cpu.py --project PROJECT --contexts 200 --http

With --http, the same contexts are asked of a `copkg serve` keeping no answer (one keep-alive
client, after ADVISOR_WARM_UP other contexts), and the CPU of each of its processes is read
from /proc: the CPU per answer of the front, the web process (gunicorn and Flask), the
advisor's process and the query workers.
"""

from __future__ import annotations

import argparse
import cProfile
import http.client
import json
import os
import pickle
import statistics
import sys
import time
import urllib.parse
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import cpu  # noqa: E402
from run import ADVISOR_WARM_UP, advisor_workloads  # noqa: E402
from serving import free_port, server, server_commands  # noqa: E402

from copkg.pipeline.advice_runs import prime_advice  # noqa: E402
from copkg.pipeline.build import Manifest  # noqa: E402
from copkg.reasoning.advice.answer import advise  # noqa: E402
from copkg.reasoning.advice.context import AdviceContext, Vocabulary, read_context  # noqa: E402
from copkg.store.embedded import OxigraphStore  # noqa: E402


def contexts(vocabulary: Vocabulary, label: str, count: int) -> list[AdviceContext]:
    """The first `count` contexts of one of run.py's advisor workloads."""
    found = []
    for _method, path, _headers in advisor_workloads()[label][:count]:
        pairs = urllib.parse.parse_qsl(path.partition("?")[2])
        modes = [v for k, v in pairs if k == "mode"]
        levels = [(k, v) for k, v in pairs if k != "mode"]
        found.append(read_context(vocabulary, modes, levels))
    return found


def http_cpu(root: Path, count: int, only: str) -> dict[str, Any]:
    """CPU per answer of each process of `copkg serve` (no answer cache), by role."""
    port = free_port()
    command = server_commands(root, root, {"copkg": port, "copkg-uncached": port, "oxigraph": 0})
    log = Path(os.environ.get("TMPDIR", "/tmp")) / f"advisor-cpu-{port}.log"
    env = {"COPKG_RESPONSE_CACHE_BYTES": "0"}
    report: dict[str, Any] = {}
    with server(command["copkg-uncached"], port, "/api/queries", log, env=env) as process:
        for label, every in advisor_workloads().items():
            if only not in label:
                continue
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)

            def ask(path: str, conn: http.client.HTTPConnection = conn) -> int:
                conn.request("GET", path, headers={"Accept": "application/json"})
                response = conn.getresponse()
                body = response.read()
                if response.status != 200:
                    raise RuntimeError(f"{path}: {response.status} {body[:300]!r}")
                return len(body)

            for _method, path, _headers in every[-ADVISOR_WARM_UP:]:
                ask(path)
            before = cpu.snapshot(process.pid)
            sizes = [ask(path) for _method, path, _headers in every[:count]]
            after = cpu.snapshot(process.pid)
            conn.close()
            by_role: dict[str, float] = {}
            for pid, (role, seconds) in after.items():
                name = "advisor" if "spawn_main" in _cmdline(pid) else role
                spent = seconds - before.get(pid, (role, 0.0))[1]
                by_role[name] = by_role.get(name, 0.0) + spent
            report[label] = {
                "answers": len(sizes),
                "cpu_ms_per_answer": {
                    k: round(1000 * v / len(sizes), 1) for k, v in by_role.items()
                },
                "cpu_ms_per_answer_total": round(1000 * sum(by_role.values()) / len(sizes), 1),
                "bytes_median": int(statistics.median(sizes)),
            }
            print(f"HTTP {label}: {report[label]}", flush=True)
    return report


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--project", type=Path, required=True)
    parser.add_argument("--contexts", type=int, default=200, help="contexts per workload")
    parser.add_argument("--profile", type=Path, help="cProfile the mode answers into this file")
    parser.add_argument("--only", default="", help="only the workloads whose name has this")
    parser.add_argument("--http", action="store_true", help="over HTTP, CPU by process")
    parser.add_argument(
        "--before",
        type=int,
        default=0,
        help="in process: first advise this many other contexts of each workload, unmeasured "
        "(what a process that has answered for a while keeps of the build)",
    )
    args = parser.parse_args()
    root = args.project.resolve()
    if args.http:
        http_cpu(root, args.contexts, args.only)
        return
    store = OxigraphStore.open_read_only(root / "build" / "oxigraph")
    store.build_identity = Manifest.read(root / "build").identity
    rules = root / "rules"
    vocabulary = Vocabulary.read(store)
    start = time.thread_time()
    prime_advice(rules)(store)  # as the advisor's process primes itself
    print(f"priming the process: {1000 * (time.thread_time() - start):.0f} ms")
    report: dict[str, Any] = {}
    for label in ("advisor: your levels", "advisor: a mode and your levels"):
        if args.only not in label:
            continue
        advise_ms, path_ms, sizes = [], [], []
        profile = cProfile.Profile() if args.profile and "mode" in label else None
        asked = contexts(vocabulary, label, args.contexts + args.before)
        for context in asked[args.contexts :]:
            advise(store, context, rules=rules)
        for context in asked[: args.contexts]:
            start = time.thread_time()
            if profile is not None:
                profile.enable()
            answer = advise(store, context, rules=rules)
            middle = time.thread_time()
            # what the HTTP path adds: from the advisor's process to the web's, then JSON
            body = json.dumps(pickle.loads(pickle.dumps(answer)).as_json())
            if profile is not None:
                profile.disable()
            end = time.thread_time()
            advise_ms.append(1000 * (middle - start))
            path_ms.append(1000 * (end - middle))
            sizes.append(len(body))
        report[label] = {
            "answers": len(advise_ms),
            "advise_ms_median": round(statistics.median(advise_ms), 1),
            "advise_ms_p95": round(percentile(advise_ms, 0.95), 1),
            "pickle_json_ms_median": round(statistics.median(path_ms), 1),
            "bytes_median": int(statistics.median(sizes)),
        }
        print(f"{label}: {report[label]}", flush=True)
        if profile is not None:
            profile.dump_stats(str(args.profile))


if __name__ == "__main__":
    main()
