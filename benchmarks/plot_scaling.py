"""The scaling curve as an SVG: build time, peak memory, `copkg add` and the named queries'
median against the number of studies, on log-log axes, from the JSON that run.py writes.

    python benchmarks/plot_scaling.py benchmarks/results-scale.json -o benchmarks/scaling.svg

Several JSON files may be given (say, the 10-1,000 run and the 10,000 run); a size measured in
more than one keeps the last. No plotting library is needed: the SVG is written by hand.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
from collections.abc import Callable
from pathlib import Path
from typing import Any

WIDTH, HEIGHT = 360, 250  # one panel
LEFT, RIGHT, TOP, BOTTOM = 62, 14, 34, 44
COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd")

Series = list[tuple[float, float]]


def sizes(paths: list[Path]) -> dict[int, dict[str, Any]]:
    """Each measured size's figures, by number of studies."""
    found: dict[int, dict[str, Any]] = {}
    for path in paths:
        for size in json.loads(path.read_text(encoding="utf-8"))["sizes"]:
            found[int(size["n"])] = size
    return dict(sorted(found.items()))


def _get(size: dict[str, Any], *keys: str) -> float | None:
    value: Any = size
    for key in keys:
        if not isinstance(value, dict) or value.get(key) is None:
            return None
        value = value[key]
    return float(value) if isinstance(value, int | float) else None


def _named(size: dict[str, Any], key: str, pick: Callable[[list[float]], float]) -> float | None:
    """`pick` (median, max) over the named queries of each one's `key` (median ms)."""
    queries = size.get("latency", {}).get("queries", {})
    medians = [q[key] for q in queries.values() if q.get(key) is not None]
    return pick(medians) if medians else None


def panels() -> list[tuple[str, str, list[tuple[str, Callable[[dict[str, Any]], float | None]]]]]:
    """Each panel: its title, its unit and its series (a label and how to read a size)."""
    return [
        (
            "build",
            "s",
            [
                ("wall", lambda s: _get(s, "build", "wall_s")),
                ("CPU", lambda s: _get(s, "build", "cpu_s")),
                ("CPU, SHACL batched", lambda s: _get(s, "build_batched", "cpu_s")),
            ],
        ),
        (
            "build: peak memory",
            "MiB",
            [
                ("peak RSS", lambda s: _get(s, "build", "peak_rss_mib")),
                ("peak RSS, SHACL batched", lambda s: _get(s, "build_batched", "peak_rss_mib")),
            ],
        ),
        (
            "copkg add of one study",
            "s",
            [
                ("wall", lambda s: _get(s, "add", "seconds")),
                ("CPU", lambda s: _get(s, "add", "cpu_s")),
            ],
        ),
        (
            "named queries (in process)",
            "ms",
            [
                ("median of medians, wall", lambda s: _named(s, "median_ms", statistics.median)),
                ("the same, CPU", lambda s: _named(s, "median_cpu_ms", statistics.median)),
                ("slowest median, wall", lambda s: _named(s, "median_ms", max)),
            ],
        ),
    ]


def _ticks(low: float, high: float) -> list[float]:
    return [10.0**e for e in range(math.floor(math.log10(low)), math.ceil(math.log10(high)) + 1)]


def _label(value: float) -> str:
    return f"{value:,.0f}" if value >= 1 else f"{value:g}"


def panel(
    x0: float,
    y0: float,
    title: str,
    unit: str,
    series: list[tuple[str, Series]],
) -> list[str]:
    """One log-log panel at (x0, y0)."""
    points = [p for _, s in series for p in s]
    out = [
        f'<text x="{x0 + WIDTH / 2:.1f}" y="{y0 + 18}" text-anchor="middle" '
        f'font-weight="bold">{title}</text>'
    ]
    if not points:
        return [*out, f'<text x="{x0 + WIDTH / 2}" y="{y0 + HEIGHT / 2}">not measured</text>']
    xs, ys = (
        _ticks(min(p[0] for p in points), max(p[0] for p in points)),
        _ticks(min(p[1] for p in points), max(p[1] for p in points)),
    )
    left, right = x0 + LEFT, x0 + WIDTH - RIGHT
    top, bottom = y0 + TOP, y0 + HEIGHT - BOTTOM

    def sx(v: float) -> float:
        lo, hi = math.log10(xs[0]), math.log10(xs[-1])
        return left + (math.log10(v) - lo) / ((hi - lo) or 1) * (right - left)

    def sy(v: float) -> float:
        lo, hi = math.log10(ys[0]), math.log10(ys[-1])
        return bottom - (math.log10(v) - lo) / ((hi - lo) or 1) * (bottom - top)

    out.append(
        f'<rect x="{left}" y="{top}" width="{right - left}" height="{bottom - top}" '
        'fill="none" stroke="#888"/>'
    )
    for v in xs:
        out.append(
            f'<line x1="{sx(v):.1f}" y1="{top}" x2="{sx(v):.1f}" y2="{bottom}" stroke="#eee"/>'
        )
        out.append(
            f'<text x="{sx(v):.1f}" y="{bottom + 14}" text-anchor="middle">{_label(v)}</text>'
        )
    for v in ys:
        out.append(
            f'<line x1="{left}" y1="{sy(v):.1f}" x2="{right}" y2="{sy(v):.1f}" stroke="#eee"/>'
        )
        out.append(f'<text x="{left - 4}" y="{sy(v) + 4:.1f}" text-anchor="end">{_label(v)}</text>')
    out.append(
        f'<text x="{(left + right) / 2:.1f}" y="{bottom + 30}" text-anchor="middle">studies</text>'
    )
    out.append(
        f'<text x="{x0 + 12}" y="{(top + bottom) / 2:.1f}" text-anchor="middle" '
        f'transform="rotate(-90 {x0 + 12} {(top + bottom) / 2:.1f})">{unit}</text>'
    )
    for i, (name, s) in enumerate(series):
        colour = COLOURS[i % len(COLOURS)]
        if len(s) > 1:
            path = " ".join(f"{sx(x):.1f},{sy(y):.1f}" for x, y in s)
            out.append(
                f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="2"/>'
            )
        for x, y in s:
            out.append(f'<circle cx="{sx(x):.1f}" cy="{sy(y):.1f}" r="3" fill="{colour}"/>')
        out.append(f'<text x="{left + 6}" y="{top + 14 + 13 * i}" fill="{colour}">{name}</text>')
    return out


def svg(found: dict[int, dict[str, Any]], caption: str) -> str:
    """The four panels, two by two, with a caption."""
    body: list[str] = []
    for k, (title, unit, readers) in enumerate(panels()):
        series = []
        for name, read in readers:
            values = [(float(n), read(size)) for n, size in found.items()]
            series.append((name, [(x, y) for x, y in values if y is not None and y > 0]))
        body += panel((k % 2) * WIDTH, 24 + (k // 2) * HEIGHT, title, unit, series)
    total_w, total_h = 2 * WIDTH, 24 + 2 * HEIGHT + 10
    head = (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{total_w}" height="{total_h}" '
        f'viewBox="0 0 {total_w} {total_h}" font-family="sans-serif" font-size="11">'
    )
    title = f'<text x="{total_w / 2}" y="16" text-anchor="middle" font-size="13">{caption}</text>'
    background = f'<rect width="{total_w}" height="{total_h}" fill="white"/>'
    return "\n".join([head, background, title, *body, "</svg>"]) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", nargs="+", type=Path, help="JSON written by run.py --out")
    parser.add_argument("-o", "--out", type=Path, required=True, help="the SVG to write")
    parser.add_argument(
        "--caption", default="copkg on synthetic corpora (log-log; one run, 2 shared cores)"
    )
    args = parser.parse_args(argv)
    args.out.write_text(svg(sizes(args.results), args.caption), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
