"""Benchmarks of copkg at N synthetic studies: build, add, query latency and HTTP throughput.

For each N the harness writes a project (the ontology, rules, queries, the Josserand (2004)
bundle and N synthetic bundles, see synthetic.py) under a work folder and measures, each in a
child process so that peak memory is the step's own:

- build: wall time, peak memory (the process tree's summed RSS, sampled, and ru_maxrss) and the
  manifest's step timings (load / infer / validate / export), then a rebuild of the same sources;
- add: `copkg add` of study N into the corpus (copkg.studies.add when it exists);
- latency: median and p95 of every named query (queries/*.rq, default parameters) and of one
  resource's page data (querying.pages.reading.read_resource) and page (GET /id/... .json)
  on the embedded store;
- HTTP: throughput and latency percentiles of `copkg serve` and of `oxigraph serve-read-only`
  holding the same dataset, under the same concurrent load (threads of keep-alive
  connections, loopback only, bounded in time and count), on ad-hoc SPARQL and on the named
  queries, and their ratios; both servers run at once and take turns (--rounds), so that the
  machine's other work weighs on both alike, and copkg is measured after its start-up warm-up;
- with --virtuoso: `copkg push` of the build to a Virtuoso of its own, timed, and the uncached
  HTTP workloads served by `copkg serve --store` on it beside `copkg serve` on the embedded
  store, taking turns (virtuoso_bench.py).

    python benchmarks/run.py --sizes 10,100,1000 --out benchmarks/results.json
    python benchmarks/run.py --sizes 2 --quick          # seconds: proves the harness works

Results are printed as Markdown tables and written as JSON (--out).
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import itertools
import json
import os
import platform
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))

import synthetic  # noqa: E402
from serving import (  # noqa: E402
    ID_BASE,
    OXIGRAPH,
    corpus_resources,
    free_port,
    http_workloads,
    load,
    merged,
    percentile,
    server,
    server_commands,
    summary,
    timed_load,
    wait_for_line,
)

JOSSERAND = "josserand2004"
PROJECT_DIRS = ("ontology", "rules", "queries")

# -- helpers -----------------------------------------------------------------------------------


def machine() -> dict[str, Any]:
    """What the figures were measured on."""
    cpu = platform.processor() or ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    memory = None
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                memory = round(int(line.split()[1]) / 1024 / 1024, 1)
    versions = {"python": platform.python_version()}
    for name in ("pyoxigraph", "rdflib", "pyshacl", "flask", "gunicorn", "copkg"):
        with contextlib.suppress(Exception):
            from importlib.metadata import version

            versions[name] = version(name)
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        out = subprocess.run(
            [OXIGRAPH, "--version"], capture_output=True, text=True, timeout=10, check=False
        )
        versions["oxigraph CLI"] = out.stdout.strip().split()[-1]
    return {
        "nproc": os.cpu_count(),
        "memory_gib": memory,
        "cpu": cpu,
        "platform": platform.platform(),
        "versions": versions,
    }


def make_project(target: Path, n: int, seed: int = 0, bundles: Path | None = None) -> Path:
    """A project with the sources of this repository, its study bundles and n studies (with
    `bundles`, the synthetic ones written already there, linked rather than written again:
    an earlier run's data/studies with the same n and seed)."""
    if target.exists():
        shutil.rmtree(target)
    for name in PROJECT_DIRS:
        shutil.copytree(REPO / name, target / name)
    studies = target / "data" / "studies"
    studies.mkdir(parents=True)
    for bundle in sorted((REPO / "data" / "studies").iterdir()):  # the real bundles link
        if bundle.is_dir():  # to one another, so all of them come along
            shutil.copytree(bundle, studies / bundle.name)
    if bundles is None:
        synthetic.write_corpus(studies, n, seed)
        return target
    written = sorted(p for p in bundles.iterdir() if p.name.startswith("synthetic-"))
    if [p.name for p in written] != [synthetic.study_id(i) for i in range(n)]:
        raise SystemExit(f"{bundles} does not hold synthetic studies 0 to {n - 1}")
    for folder in written:
        shutil.copytree(folder, studies / folder.name, copy_function=os.link)
    return target


def run_child(
    args: list[str], env: dict[str, str] | None = None, timeout: float = 3600
) -> dict[str, Any]:
    """Run `python run.py --child ...`, returning its JSON answer with wall time, CPU time (user
    + system, of the child and the children it waited for), the load average when it began and
    peak memory (the summed RSS of the process and its children, sampled every 50 ms, and the
    largest ru_maxrss)."""
    import psutil

    load = [round(x, 2) for x in os.getloadavg()]
    start = time.perf_counter()
    with tempfile.NamedTemporaryFile("r", suffix=".json") as answer:
        process = subprocess.Popen(
            [
                sys.executable,
                str(Path(__file__).resolve()),
                "--child",
                *args,
                "--answer",
                answer.name,
            ],
            env={**os.environ, **(env or {})},
            stdin=subprocess.DEVNULL,
        )
        peak, usage, status = 0, None, None
        watched = psutil.Process(process.pid)
        while True:
            pid, status, usage = os.wait4(process.pid, os.WNOHANG)
            if pid:
                break
            with contextlib.suppress(psutil.Error):
                total = 0
                for proc in [watched, *watched.children(recursive=True)]:
                    with contextlib.suppress(psutil.Error):
                        total += proc.memory_info().rss
                peak = max(peak, total)
            if time.perf_counter() - start > timeout:
                process.kill()
            time.sleep(0.05)
        process.returncode = os.waitstatus_to_exitcode(status)
        wall = time.perf_counter() - start
        text = Path(answer.name).read_text() or "{}"
    result = json.loads(text) if text.strip() else {"ok": False}
    result.update(
        wall_s=round(wall, 3),
        cpu_s=round(usage.ru_utime + usage.ru_stime, 3),
        load_avg=load,
        peak_rss_mib=round(peak / 2**20, 1),
        maxrss_mib=round(usage.ru_maxrss / 1024, 1),
        returncode=process.returncode,
    )
    return result


# -- child tasks -------------------------------------------------------------------------------


def child_build(root: Path) -> dict[str, Any]:
    from copkg.config import Settings
    from copkg.errors import CopkgError
    from copkg.pipeline import build

    settings = Settings.load(root, environ={})
    try:
        manifest = build(settings)
    except CopkgError as exc:
        return {"ok": False, "error": exc.message, "problems": [str(p) for p in exc.problems][:5]}
    return {
        "ok": True,
        "timings": manifest.timings,
        "cpu_timings": manifest.extra.get("cpu", {}),
        "quads": manifest.quads,
        "graphs": len(manifest.graphs),
    }


def child_add(root: Path, index: int) -> dict[str, Any]:
    """`copkg add` of synthetic study `index` (written to a folder outside the corpus)."""
    try:
        from copkg.studies.add import add_study as add
    except ImportError:
        return {"ok": False, "missing": "copkg.studies.add does not exist yet"}
    from copkg.config import Settings

    settings = Settings.load(root, environ={})
    outside = Path(tempfile.mkdtemp(prefix="copkg-add-"))
    folder = synthetic.write_study(outside, index)
    start, cpu = time.perf_counter(), _cpu()
    try:
        outcome = add(settings, folder)
    except Exception as exc:  # noqa: BLE001 - report, whatever the interface turns out to be
        return {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
    finally:
        shutil.rmtree(outside, ignore_errors=True)
    seconds, cpu = time.perf_counter() - start, _cpu() - cpu
    timings = getattr(outcome, "timings", None) or getattr(
        getattr(outcome, "manifest", None), "timings", None
    )
    return {"ok": True, "seconds": round(seconds, 3), "cpu_s": round(cpu, 3), "timings": timings}


def _cpu() -> float:
    """CPU seconds of this process and of the children it waited for (HermiT's JVM)."""
    import resource

    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def _timed(call: Callable[[], Any], repeats: int, budget: float, warmup: int = 2) -> dict[str, Any]:
    for _ in range(warmup):
        result = call()
    times: list[float] = []
    cpu: list[float] = []  # the calling thread's CPU time: what a loaded machine hardly changes
    deadline = time.perf_counter() + budget
    while len(times) < repeats and (len(times) < 3 or time.perf_counter() < deadline):
        start, used = time.perf_counter(), time.thread_time()
        result = call()
        times.append((time.perf_counter() - start) * 1000)
        cpu.append((time.thread_time() - used) * 1000)
    size = len(result) if hasattr(result, "__len__") else None
    return {
        "median_ms": round(statistics.median(times), 2),
        "p95_ms": round(percentile(times, 95), 2),
        "median_cpu_ms": round(statistics.median(cpu), 2),
        "runs": len(times),
        "size": size,
    }


def child_latency(root: Path, repeats: int, budget: float) -> dict[str, Any]:
    """Named queries and a resource page on the build's store, in process."""
    from rdflib import URIRef

    from copkg.config import Settings
    from copkg.pipeline import load_build
    from copkg.querying.named_queries import load_named_queries, run_page
    from copkg.querying.pages.reading import read_resource
    from copkg.web.app import create_app

    settings = Settings.load(root, environ={})
    store = load_build(settings, rebuild="never", timeout=60, max_rows=10000)
    out: dict[str, Any] = {"queries": {}}
    for name, query in sorted(load_named_queries(settings.queries_dir).items()):
        out["queries"][name] = _timed(
            lambda q=query: run_page(store, q, {})[0].rows, repeats, budget
        )
    app = create_app({"STORE": store, "ROOT": str(root), "QUERY_WORKERS": 1})
    resource = URIRef(f"https://w3id.org/copkg/id/{synthetic.study_id(1)}/case-1")
    role = URIRef("https://w3id.org/copkg/id/josserand2004/facilitation")
    with app.app_context():
        out["resource_data"] = _timed(
            lambda: read_resource(store, resource).properties, repeats * 5, budget
        )
        out["role_data"] = _timed(lambda: read_resource(store, role).properties, repeats, budget)
    path = f"/id/{synthetic.study_id(1)}/case-1.json"
    uncached = create_app(
        {"STORE": store, "ROOT": str(root), "QUERY_WORKERS": 1, "RESPONSE_CACHE_BYTES": 0}
    )
    for label, flask_app in (("resource_page", uncached), ("resource_page_cached", app)):
        client = flask_app.test_client()

        def page(client: Any = client) -> bytes:
            response = client.get(path)
            assert response.status_code == 200, response.status_code
            return response.data

        out[label] = _timed(page, repeats * 5, budget)
    return out


def http_bench(
    root: Path,
    work: Path,
    *,
    threads: list[int],
    seconds: float,
    max_requests: int,
    rounds: int = 5,
    only: str = "",
) -> dict[str, Any]:
    """copkg serve (twice: with its answer caches, and with none) and oxigraph
    serve-read-only on the same data, under the same load, all three up at once, taking turns
    on each workload for `rounds` turns of seconds / rounds.

    Uncached figures: every request a different resource (or parameter value), sent to the
    copkg serve that keeps no answer (COPKG_RESPONSE_CACHE_BYTES=0), so no answer is served
    twice by construction. Cached figures: the first four requests of the same workload,
    repeated, on the copkg serve with its caches (what a repeated question costs)."""
    build = root / "build"
    oxi_dir = work / "oxigraph-store"
    shutil.rmtree(oxi_dir, ignore_errors=True)
    start = time.perf_counter()
    subprocess.run(
        [OXIGRAPH, "load", "--location", str(oxi_dir), "--file", str(build / "copkg.nq")],
        check=True,
        capture_output=True,
    )
    oxi_load = time.perf_counter() - start
    resources, studies = corpus_resources(root)
    workloads = http_workloads(root, resources, studies)
    paths = [r[len(ID_BASE) :] for r in resources]
    pages = {
        "page HTML (/id/...)": [("GET", p, {"Accept": "text/html"}) for p in paths],
        "page JSON (/id/....json)": [("GET", p + ".json", {}) for p in paths],
    }

    ports = {"copkg": free_port(), "copkg-uncached": free_port(), "oxigraph": free_port()}
    commands = server_commands(root, oxi_dir, ports)
    envs = {"copkg-uncached": {"COPKG_RESPONSE_CACHE_BYTES": "0"}}
    results: dict[str, Any] = {
        "oxigraph_load_s": round(oxi_load, 2),
        "threads": threads,
        "rounds": rounds,
        "distinct": {label: len(c) for label, (c, _) in workloads.items()} | {"pages": len(paths)},
        "workloads": {},
    }
    processes: dict[str, subprocess.Popen] = {}
    with contextlib.ExitStack() as stack:
        for name, port in ports.items():
            probe = "/" if name == "oxigraph" else "/api/queries"
            processes[name] = stack.enter_context(
                server(
                    commands[name],
                    port,
                    probe,
                    work / f"{name}-serve.log",
                    env=envs.get(name),
                )
            )
        results["copkg_warm_up"] = wait_for_line(work / "copkg-serve.log", "warm-up:", 900)
        offsets: dict[tuple[str, str], int] = {}
        for count in threads:
            every = {**workloads, **{k: (v, None) for k, v in pages.items()}}
            for label, (ours, theirs) in every.items():
                if only and only not in label:
                    continue
                cached = ours[:4]
                # warm-up: the cached server learns its four answers; every server warms up
                load(ports["copkg"], cached, threads=1, seconds=seconds, max_requests=8)
                turns: dict[str, tuple[str, list[Any]]] = {
                    "copkg cached": ("copkg", cached),
                    "copkg uncached": ("copkg-uncached", ours),
                }
                if theirs is not None:
                    turns["oxigraph"] = ("oxigraph", theirs)
                parts: dict[str, list[dict[str, Any]]] = {k: [] for k in turns}
                for _ in range(rounds):
                    for who, (name, requests_) in turns.items():
                        key = (who, label)
                        raw = timed_load(
                            processes[name],
                            ports[name],
                            requests_,
                            threads=count,
                            seconds=seconds / rounds,
                            max_requests=max_requests,
                            start=offsets.get(key, 0),
                        )
                        offsets[key] = raw["next"]
                        parts[who].append(raw)
                figures = {who: summary(merged(runs)) for who, runs in parts.items()}
                failed = [
                    who for who, f in figures.items() if f["errors"] or set(f["statuses"]) - {200}
                ]
                if failed:  # a ratio over refusals or dropped requests would mean nothing
                    figures["failed"] = failed
                if "oxigraph" in figures and figures["oxigraph"]["rps"] and not failed:
                    o = figures["oxigraph"]["rps"]
                    figures["ratio_cached"] = round(figures["copkg cached"]["rps"] / o, 2)
                    figures["ratio_uncached"] = round(figures["copkg uncached"]["rps"] / o, 2)
                results["workloads"][f"{count}|{label}"] = figures
                print(
                    f"   {count} threads, {label}: "
                    + ", ".join(
                        f"{k} {v['rps'] if isinstance(v, dict) else v}" for k, v in figures.items()
                    ),
                    flush=True,
                )
        # beyond the first cycle the uncached server sees a request again (it keeps nothing)
        results["sent"] = {f"{who}|{label}": n for (who, label), n in offsets.items()}
    return results


#: The contingency factors and levels the advisor takes (synthetic.py's, Josserand's five).
ADVISOR_LEVELS = ("Low", "Medium", "High")
ADVISOR_DEGREES = ("MainMode", "InMostTeams", "LesserDegree")
#: Requests (other contexts) sent before an advisor workload is measured.
ADVISOR_WARM_UP = 12


def advisor_workloads(seed: int = 0) -> dict[str, list[tuple[str, str, dict[str, str]]]]:
    """GET /api/advice requests, every one a different hypothetical context: each combination
    of levels on the five factors (1,023, shuffled); and each of those with one control mode at
    one degree (which matches studied contexts, more as the corpus grows)."""
    combos = [
        c for c in itertools.product(("", *ADVISOR_LEVELS), repeat=len(synthetic.FACTORS)) if any(c)
    ]
    random.Random(seed).shuffle(combos)
    modes = [f"{m}@{d}" for m in synthetic.MODES for d in ADVISOR_DEGREES]
    headers = {"Accept": "application/json"}

    def levels(combo: tuple[str, ...]) -> list[tuple[str, str]]:
        return [(f, v) for f, v in zip(synthetic.FACTORS, combo, strict=True) if v]

    return {
        "advisor: your levels": [
            ("GET", "/api/advice?" + urllib.parse.urlencode(levels(c)), headers) for c in combos
        ],
        "advisor: a mode and your levels": [
            (
                "GET",
                "/api/advice?"
                + urllib.parse.urlencode([("mode", modes[i % len(modes)]), *levels(c)]),
                headers,
            )
            for i, c in enumerate(combos)
        ],
    }


def advisor_bench(
    root: Path,
    work: Path,
    *,
    threads: list[int],
    seconds: float,
    max_requests: int,
    rounds: int = 5,
) -> dict[str, Any]:
    """The advisor's uncached answers over HTTP: `copkg serve` keeping no answer
    (COPKG_RESPONSE_CACHE_BYTES=0), every request a different context (the advisor's own
    LRU keeps 256 answers; a workload cycles through 1,011 contexts before one comes again),
    after a warm-up of ADVISOR_WARM_UP other contexts.
    Latency percentiles, requests/s and the server's CPU per answer (from /proc), and the size
    of a sample answer (matched studied contexts, findings)."""
    port = free_port()
    command = server_commands(root, work, {"copkg": port, "copkg-uncached": port, "oxigraph": 0})
    results: dict[str, Any] = {"threads": threads, "workloads": {}, "answers": {}}
    workloads = advisor_workloads()
    log = work / "advisor-serve.log"
    with server(
        command["copkg-uncached"],
        port,
        "/api/queries",
        log,
        env={"COPKG_RESPONSE_CACHE_BYTES": "0"},
    ) as process:
        # (no answer cache, so no start-up warm-up of the named queries to wait for)
        offset = 0
        for label, every in workloads.items():
            # warm-up (each web process reads the rules once): contexts not asked below, on
            # connections of their own (to reach every worker), the last answer kept as a
            # sample of the answers' size
            sample: dict[str, Any] = {}
            for method, path, headers in every[-ADVISOR_WARM_UP:]:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
                conn.request(method, path, headers=headers)
                sample = json.loads(conn.getresponse().read())
                conn.close()
            requests_ = every[:-ADVISOR_WARM_UP]
            results["answers"][label] = {
                "matched_contexts": (sample.get("matched") or {}).get("total", 0),
                "matched_on_page": len(sample.get("matchedContexts", [])),
                "findings": sum(len(r.get("findings", [])) for r in sample.get("roles", [])),
                "recommendations": len(sample.get("recommendations", [])),
            }
            for count in threads:
                runs = []
                for _ in range(rounds):
                    raw = timed_load(process, port, requests_, threads=count,
                                     seconds=seconds / rounds, max_requests=max_requests,
                                     start=offset)  # fmt: skip
                    offset = raw["next"]
                    runs.append(raw)
                figures = summary(merged(runs))
                results["workloads"][f"{count}|{label}"] = figures
                print(f"   {count} threads, {label}: {figures}", flush=True)
            offset = 0
    return results


# -- one size ----------------------------------------------------------------------------------


def bench_size(n: int, work: Path, args: argparse.Namespace) -> dict[str, Any]:
    if args.project is not None:  # a built project, used as it is (only HTTP is measured)
        root = args.project.resolve()
        out: dict[str, Any] = {"n": n, "project": str(root)}
        print(f"== N={n}: built project {root}", flush=True)
        (work / f"n{n}").mkdir(parents=True, exist_ok=True)
        manifest = json.loads((root / "build" / "manifest.json").read_text())
        out["build"] = {
            "ok": True,
            "quads": manifest.get("quads"),
            "timings": manifest.get("timings"),
        }
        if not args.no_http:
            out["http"] = run_http(root, work / f"n{n}", args)
            print(f"   http: {out['http'].get('error') or 'measured'}", flush=True)
        if args.virtuoso:
            out["virtuoso"] = virtuoso(root, work / f"n{n}", args)
        if args.advisor:
            out["advisor"] = run_advisor(root, work / f"n{n}", args)
        return out
    root = make_project(work / f"n{n}" / "project", n, args.seed, args.bundles)
    out = {"n": n}
    print(f"== N={n}: project at {root}", flush=True)
    out["build"] = run_child(["build", "--root", str(root)], timeout=args.build_timeout)
    print(f"   build {out['build'].get('wall_s')} s, {out['build'].get('timings')}", flush=True)
    if not out["build"].get("ok"):
        return out
    if not args.no_rebuild:
        out["rebuild"] = run_child(["build", "--root", str(root)], timeout=args.build_timeout)
        print(f"   rebuild {out['rebuild'].get('wall_s')} s", flush=True)
    out["disk_mib"] = {
        name: round(_size(root / "build" / name) / 2**20, 1) for name in ("oxigraph", "copkg.nq")
    }
    out["latency"] = run_child(
        [
            "latency",
            "--root",
            str(root),
            "--repeats",
            str(args.repeats),
            "--budget",
            str(args.budget),
        ]
    )
    print("   latency done", flush=True)
    if not args.no_http:
        out["http"] = run_http(root, work / f"n{n}", args)
        print(f"   http: {out['http'].get('error') or 'measured'}", flush=True)
    if args.virtuoso:
        out["virtuoso"] = virtuoso(root, work / f"n{n}", args)
    if args.advisor:
        out["advisor"] = run_advisor(root, work / f"n{n}", args)
    if not args.no_add:
        out["add"] = run_child(["add", "--root", str(root), "--index", str(n)])
        print(f"   add {out['add']}", flush=True)
    return out


def run_http(root: Path, work: Path, args: argparse.Namespace) -> dict[str, Any]:
    """http_bench() with the command line's options; a failure is recorded, not raised."""
    try:
        return http_bench(
            root,
            work,
            threads=thread_counts(args),
            seconds=args.seconds,
            max_requests=args.max_requests,
            rounds=args.rounds,
            only=args.only,
        )
    except (OSError, subprocess.SubprocessError, TimeoutError) as exc:
        return {"error": f"{type(exc).__name__}: {exc}"}


def run_advisor(root: Path, work: Path, args: argparse.Namespace) -> dict[str, Any]:
    try:
        return advisor_bench(
            root,
            work,
            threads=[int(t) for t in str(args.advisor_threads).split(",") if t.strip()],
            seconds=args.seconds,
            max_requests=args.max_requests,
            rounds=args.rounds,
        )
    except (OSError, subprocess.SubprocessError, TimeoutError) as exc:
        return {"error": f"{type(exc).__name__}: {exc}"}


def _size(path: Path) -> int:
    """Bytes of a file, or of every file under a folder."""
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def thread_counts(args: argparse.Namespace) -> list[int]:
    return [int(t) for t in str(args.threads).split(",") if t.strip()]


def virtuoso(root: Path, work: Path, args: argparse.Namespace) -> dict[str, Any]:
    """--virtuoso: copkg push to a Virtuoso of its own, and copkg serve on it beside the
    embedded store (virtuoso_bench.py)."""
    import virtuoso_bench  # only with --virtuoso (it imports this module)

    try:
        return virtuoso_bench.virtuoso_bench(
            root,
            work / "virtuoso-bench",
            threads=thread_counts(args),
            seconds=args.seconds,
            max_requests=args.max_requests,
            rounds=args.rounds,
            only=args.only,
            buffers=args.virtuoso_buffers,
        )
    except (OSError, RuntimeError, subprocess.SubprocessError, TimeoutError) as exc:
        return {"error": f"{type(exc).__name__}: {exc}"}


# -- report ------------------------------------------------------------------------------------


def markdown(report: dict[str, Any]) -> str:
    lines = []
    m = report["machine"]
    lines += [
        f"Machine: {m['cpu']}, {m['nproc']} cores, {m['memory_gib']} GiB; "
        + ", ".join(f"{k} {v}" for k, v in m["versions"].items()),
        "",
    ]
    lines += [
        "| N | quads | build s (CPU s; load avg) | load | infer | validate | export | peak MiB "
        "| rebuild s | add s (CPU s) |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in report["sizes"]:
        b = r["build"]
        t = b.get("timings", {})
        add = r.get("add", {})
        add_s = (
            f"{add.get('seconds')} ({add.get('cpu_s', '-')})"
            if add.get("ok")
            else ("missing" if add.get("missing") else add.get("error", "-"))
        )
        lines.append(
            f"| {r['n']} | {b.get('quads', '-')} | {b.get('wall_s')} ({b.get('cpu_s', '-')}; "
            f"{(b.get('load_avg') or ['-'])[0]}) | {t.get('load', '-')} | "
            f"{t.get('infer', '-')} | {t.get('validate', '-')} | {t.get('export', '-')} | "
            f"{b.get('peak_rss_mib')} | {r.get('rebuild', {}).get('wall_s', '-')} | {add_s} |"
        )
    lines += ["", "Latency on the embedded store (median / p95 ms [median CPU ms] (rows)):", ""]
    names = sorted({q for r in report["sizes"] for q in r.get("latency", {}).get("queries", {})})
    lines += [
        "| query | " + " | ".join(f"N={r['n']}" for r in report["sizes"]) + " |",
        "|---|" + "---|" * len(report["sizes"]),
    ]
    rows = [
        (name, lambda r, name=name: r.get("latency", {}).get("queries", {}).get(name))
        for name in names
    ]
    rows += [
        (label, lambda r, key=key: r.get("latency", {}).get(key))
        for label, key in (
            ("resource page data (read_resource)", "resource_data"),
            ("role page data (read_resource)", "role_data"),
            ("resource page GET .json (test client)", "resource_page"),
            ("the same, from the answer cache", "resource_page_cached"),
        )
    ]
    for label, get in rows:
        cells = []
        for r in report["sizes"]:
            v = get(r)
            cells.append(
                f"{v['median_ms']} / {v['p95_ms']} [{v.get('median_cpu_ms', '-')}] ({v['size']})"
                if v
                else "-"
            )
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "HTTP, requests/s (p50 ms). Uncached: every request a different resource or "
        "parameter value, on a copkg serve that keeps no answer; cached: four of the "
        "same requests repeated, on a copkg serve with its answer caches; oxigraph: "
        "the uncached requests. Ratios are copkg / oxigraph.",
        "",
        "| N | threads | workload | copkg uncached | copkg cached | oxigraph serve | "
        "ratio uncached | ratio cached |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in report["sizes"]:
        h = r.get("http")
        if not h or "error" in h:
            continue
        for key, f in h["workloads"].items():
            count, label = key.split("|", 1)

            def cell(who: str, f: dict[str, Any] = f) -> str:
                v = f.get(who)
                return f"{v['rps']} ({v['p50_ms']})" if v else "-"

            lines.append(
                f"| {r['n']} | {count} | {label} | {cell('copkg uncached')} | "
                f"{cell('copkg cached')} | {cell('oxigraph')} | {f.get('ratio_uncached', '-')} "
                f"| {f.get('ratio_cached', '-')} |"
            )
    for r in report["sizes"]:
        if "virtuoso" in r:
            import virtuoso_bench  # only with --virtuoso (it imports this module)

            lines += ["", virtuoso_bench.markdown(r["n"], r["virtuoso"])]
    advised = [r for r in report["sizes"] if r.get("advisor") and "error" not in r["advisor"]]
    if advised:
        lines += [
            "",
            "Advisor, uncached (a different context every request; the server's CPU from /proc):",
            "",
            "| N | threads | workload | p50 ms | p95 ms | requests/s | CPU ms an answer | "
            "matched contexts (sample) |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for r in advised:
            a = r["advisor"]
            for key, f in a["workloads"].items():
                count, label = key.split("|", 1)
                lines.append(
                    f"| {r['n']} | {count} | {label} | {f['p50_ms']} | {f['p95_ms']} | "
                    f"{f['rps']} | {f.get('cpu_ms_per_request', '-')} | "
                    f"{a['answers'].get(label, {}).get('matched_contexts', '-')} |"
                )
    return "\n".join(lines)


def _build_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--bundles",
        type=Path,
        default=None,
        help="the synthetic bundles written already (an earlier run's data/studies, same size "
        "and seed): hard-linked instead of written again",
    )
    parser.add_argument(
        "--build-timeout",
        type=float,
        default=3600,
        help="seconds after which a build is stopped (10,000 studies on a busy machine take more)",
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10,100,1000")
    parser.add_argument(
        "--quick", action="store_true", help="few repeats, one second of HTTP load a workload"
    )
    parser.add_argument("--no-http", action="store_true")
    parser.add_argument("--no-add", action="store_true")
    parser.add_argument("--no-rebuild", action="store_true", help="skip the second build")
    parser.add_argument("--repeats", type=int, default=None)
    parser.add_argument("--budget", type=float, default=None, help="seconds a measured call")
    parser.add_argument("--seconds", type=float, default=None, help="HTTP load a workload")
    parser.add_argument("--threads", default="8,1", help="client threads, comma-separated")
    parser.add_argument("--max-requests", type=int, default=100000)
    parser.add_argument(
        "--rounds", type=int, default=5, help="HTTP: turns each server takes on each workload"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--advisor",
        action="store_true",
        help="also the advisor's uncached answers over HTTP (a different context a request)",
    )
    parser.add_argument(
        "--advisor-threads", default="1", help="advisor: client threads, comma-separated"
    )
    parser.add_argument("--only", default="", help="HTTP: only the workloads whose name holds this")
    parser.add_argument(
        "--project",
        type=Path,
        default=None,
        help="a built project to measure over HTTP (one size, not modified)",
    )
    parser.add_argument(
        "--virtuoso",
        action="store_true",
        help="also time copkg push to a Virtuoso of its own and serve the uncached workloads "
        "from it beside the embedded store (Debian's virtuoso-opensource)",
    )
    parser.add_argument(
        "--virtuoso-buffers", type=int, default=None, help="Virtuoso's NumberOfBuffers (8 KB)"
    )
    _build_options(parser)
    parser.add_argument("--work", type=Path, default=None, help="work folder (default: temp)")
    parser.add_argument("--keep", action="store_true", help="keep the work folder")
    parser.add_argument("--out", type=Path, default=None, help="write the results as JSON")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--root", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--index", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--answer", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        tasks = {
            "build": lambda: child_build(args.root),
            "add": lambda: child_add(args.root, args.index),
            "latency": lambda: child_latency(args.root, args.repeats, args.budget),
        }
        args.answer.write_text(json.dumps(tasks[args.child]()))
        return 0
    args.repeats = args.repeats or (3 if args.quick else 20)
    args.budget = args.budget or (1.0 if args.quick else 10.0)
    args.seconds = args.seconds or (1.0 if args.quick else 10.0)
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    work = args.work or Path(tempfile.mkdtemp(prefix="copkg-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    report: dict[str, Any] = {"machine": machine(), "command": " ".join(sys.argv), "sizes": []}
    try:
        for n in sizes:
            report["sizes"].append(bench_size(n, work, args))
            if args.out:
                args.out.write_text(json.dumps(report, indent=2))
    finally:
        if not args.keep and args.work is None:
            shutil.rmtree(work, ignore_errors=True)
    print(markdown(report))
    if args.out:
        args.out.write_text(json.dumps(report, indent=2))
    ok = all(r["build"].get("ok") for r in report["sizes"])
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
