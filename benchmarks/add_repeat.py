"""`copkg add` of synthetic studies into a built project, one process an add, timed.

    python benchmarks/add_repeat.py PROJECT --first 2000 --count 5 [--profile OUT.prof]

Each add runs in a child process (as `copkg add` does): its wall time (the add itself, and the
whole process with Python's start-up and imports), its CPU time (user + system of every thread
and of the children it waited for: HermiT's JVM), the 1-minute load average when it began and
the add's own timings. Prints one JSON line an add, then the medians. The project grows by one
study an add: work on a copy.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent


def child(
    root: Path, index: int, profile: str | None, cpu_steps: bool, early: bool = False
) -> dict[str, Any]:
    """One add, in this process."""
    sys.path.insert(0, str(HERE))
    import synthetic

    from copkg.config import Settings
    from copkg.studies.add import add_study

    if cpu_steps:  # the add's steps timed in CPU seconds of the thread that runs each
        import types

        from copkg.pipeline import extend
        from copkg.studies import check

        clock = types.SimpleNamespace(
            perf_counter=time.thread_time, strftime=time.strftime, gmtime=time.gmtime
        )
        check.time = extend.time = clock  # type: ignore[assignment]
    settings = Settings.load(root, environ={})
    outside = Path(tempfile.mkdtemp(prefix="copkg-add-"))
    folder = synthetic.write_study(outside, index)
    if early:  # its graph sorts before every other study's, so the splice has all to copy
        own = f"/id/{folder.name}/"
        renamed = outside / f"a-early-{folder.name}"
        renamed.mkdir()
        for path in folder.iterdir():
            turtle = path.read_text(encoding="utf-8").replace(own, f"/id/{renamed.name}/")
            turtle = turtle.replace(f'"Author {index}"', f'"Author {index}, early"')
            (renamed / path.name).write_text(turtle, encoding="utf-8")
        folder = renamed
    start, cpu = time.perf_counter(), _cpu()
    try:
        if profile:
            import cProfile

            profiler = cProfile.Profile()
            outcome = profiler.runcall(add_study, settings, folder)
            profiler.dump_stats(profile)
        else:
            outcome = add_study(settings, folder)
    finally:
        shutil.rmtree(outside, ignore_errors=True)
    return {
        "index": index,
        "seconds": round(time.perf_counter() - start, 3),
        "cpu_s": round(_cpu() - cpu, 3),
        "how": outcome.how,
        "timings": outcome.timings,
    }


def _cpu() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("project", type=Path)
    parser.add_argument("--first", type=int, default=2000, help="index of the first study")
    parser.add_argument("--count", type=int, default=3)
    parser.add_argument("--profile", default=None, help="cProfile the last add into this file")
    parser.add_argument(
        "--cpu-steps", action="store_true", help="time the steps in CPU (thread) seconds"
    )
    parser.add_argument(
        "--early",
        action="store_true",
        help="rename each study so that its graph sorts first (its block goes at the start)",
    )
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.project, args.first, args.profile, args.cpu_steps, args.early)))
        return
    results = []
    for index in range(args.first, args.first + args.count):
        profile = args.profile if index == args.first + args.count - 1 else None
        load = round(os.getloadavg()[0], 2)
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        command = [sys.executable, __file__, str(args.project), "--child", "--first", str(index)]
        command += ["--cpu-steps"] if args.cpu_steps else []
        command += ["--early"] if args.early else []
        done = subprocess.run(
            command + (["--profile", profile] if profile else []),
            capture_output=True,
            text=True,
            check=False,
        )
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        if done.returncode:
            print(done.stderr, file=sys.stderr)
            raise SystemExit(done.returncode)
        result = json.loads(done.stdout.strip().splitlines()[-1])
        result["process_s"] = round(time.perf_counter() - start, 3)
        result["process_cpu_s"] = round(
            after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime, 3
        )
        result["load"] = load
        results.append(result)
        print(json.dumps(result), flush=True)
    summary = {
        key: statistics.median(r[key] for r in results)
        for key in ("seconds", "cpu_s", "process_s", "process_cpu_s", "load")
    }
    print(json.dumps({"median": summary, "adds": len(results)}))


if __name__ == "__main__":
    main()
