"""Heavy queries against a live `copkg serve` (issue 11, item 3): do cheap queries still answer?

Cheap probes (an uncached `ASK`, made unique by a comment so the answer cache cannot serve it)
are timed first alone, then while 8 threads of another client (source address 127.0.0.2) loop
a cartesian COUNT that runs to the time limit. Reported: the probes' p50, p95 and max in each
phase, and the statuses the heavy queries got (503 at the limit, or at once when their client
is over its share of the workers).

    python benchmarks/heavy_queries.py                 # 8 heavy loops, 20 probes a phase
    python benchmarks/heavy_queries.py --heavy 16 --json heavy.json
    python benchmarks/heavy_queries.py --url http://127.0.0.1:5000   # a server already running

Without --url it starts `copkg serve --workers 1` on a free port over the project's build (see
load.py) with a 3 s query limit, and stops it at the end. Exit status 0 when every probe under
load answered 200 within --bound s (default 1).
"""

from __future__ import annotations

import http.client
import itertools
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

import requests

#: A cartesian product that runs to any time limit (92 triples: 6.6e9 rows to count).
HEAVY = "SELECT (COUNT(*) AS ?n) { ?a ?b ?c . ?d ?e ?f . ?g ?h ?i . ?j ?k ?l . ?m ?n1 ?o }"
ACCEPT = {"Accept": "application/sparql-results+json"}


def probe(endpoint: str) -> tuple[int, float]:
    """One cheap uncached ASK: its status and seconds."""
    started = time.monotonic()
    try:
        response = requests.get(
            endpoint,
            params={"query": f"ASK {{ ?s ?p ?o }} # {uuid.uuid4()}"},
            headers=ACCEPT,
            timeout=30,
        )
        status = response.status_code
    except requests.RequestException:
        status = 0
    return status, time.monotonic() - started


def heavy_loop(
    url: str, stop: threading.Event, statuses: list[int], counter: Iterator[int]
) -> None:
    """Send heavy queries from 127.0.0.2 until told to stop (each unique: no answer shared)."""
    parts = urlsplit(url)
    while not stop.is_set():
        conn = http.client.HTTPConnection(
            parts.hostname or "127.0.0.1", parts.port or 80, timeout=60,
            source_address=("127.0.0.2", 0),
        )  # fmt: skip
        body = urlencode({"query": f"{HEAVY} # {next(counter)}"})
        try:
            conn.request(
                "POST", "/sparql", body,
                {**ACCEPT, "Content-Type": "application/x-www-form-urlencoded"},
            )  # fmt: skip
            statuses.append(conn.getresponse().status)
        except OSError:
            statuses.append(0)
        finally:
            conn.close()


def summary(seconds: list[float]) -> dict[str, float]:
    ordered = sorted(seconds)
    return {
        "p50": round(ordered[len(ordered) // 2], 4),
        "p95": round(ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))], 4),
        "max": round(ordered[-1], 4),
    }


def measure(url: str, heavy: int, probes: int) -> dict[str, Any]:
    endpoint = url.rstrip("/") + "/sparql"
    for _ in range(5):  # warm the workers
        probe(endpoint)
    alone = [probe(endpoint) for _ in range(probes)]
    stop = threading.Event()
    statuses: list[int] = []
    counter = itertools.count()
    loops = [
        threading.Thread(target=heavy_loop, args=(url, stop, statuses, counter), daemon=True)
        for _ in range(heavy)
    ]
    for loop in loops:
        loop.start()
    try:
        time.sleep(1.0)  # the heavy queries hold their workers
        loaded = [probe(endpoint) for _ in range(probes)]
    finally:
        stop.set()
        for loop in loops:
            loop.join(90)
    return {
        "heavy_loops": heavy,
        "alone": summary([t for _, t in alone]),
        "with_heavy": summary([t for _, t in loaded]),
        "statuses_alone": sorted({s for s, _ in alone}),
        "statuses_with_heavy": sorted({s for s, _ in loaded}),
        "heavy_statuses": dict(Counter(str(s) for s in statuses)),
    }


def main(argv: list[str] | None = None) -> int:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import load  # the benchmarks' folder is not a package: found once the script's is on the path

    return load.probe_main(
        argv, doc=__doc__, load="heavy", default=8, query_timeout=3.0, measure=measure
    )


if __name__ == "__main__":
    sys.exit(main())
