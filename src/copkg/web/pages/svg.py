"""Pictures drawn on the server as SVG text: an organisation's timeline and the risk matrix."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from xml.sax.saxutils import escape, quoteattr

SVG_NS = "http://www.w3.org/2000/svg"

_DATE = re.compile(r"^(-?\d{4})(?:-(\d{2}))?(?:-(\d{2}))?")


@dataclass(frozen=True)
class TimelineEvent:
    """One dated event to place on a timeline."""

    date: str
    label: str
    href: str | None = None
    qualifier: str | None = None
    kind: str | None = None


@dataclass(frozen=True)
class MatrixCell:
    """One risky (row, column) pair of the matrix and where its evidence is."""

    row: str
    column: str
    title: str
    href: str | None = None


@dataclass(frozen=True)
class Axis:
    """A row or column header: a key, a label and an optional link."""

    key: str
    label: str
    href: str | None = None
    note: str | None = None


@dataclass
class _Canvas:
    width: int
    height: int
    title: str
    parts: list[str] = field(default_factory=list)

    def add(self, text: str) -> None:
        self.parts.append(text)

    def text(self) -> str:
        head = (
            f'<svg xmlns="{SVG_NS}" version="1.1" width="{self.width}" height="{self.height}" '
            f'viewBox="0 0 {self.width} {self.height}" role="img" '
            f'font-family="sans-serif" font-size="12">'
        )
        return "\n".join([head, f"<title>{escape(self.title)}</title>", *self.parts, "</svg>"])


def year_fraction(date: str) -> float | None:
    """An xsd:gYear, gYearMonth or date lexical form as a fractional year (None if not a date)."""
    match = _DATE.match(date.strip())
    if not match:
        return None
    year = int(match.group(1))
    month = int(match.group(2)) if match.group(2) else None
    day = int(match.group(3)) if match.group(3) else None
    if month is None:
        return float(year)
    if not 1 <= month <= 12:
        return float(year)
    return year + (month - 1) / 12 + ((day or 1) - 1) / 365


def _link(inner: str, href: str | None) -> str:
    if not href:
        return inner
    return f"<a href={quoteattr(href)}>{inner}</a>"


def _clip(label: str, size: int) -> str:
    return label if len(label) <= size else label[: size - 1] + "…"


def timeline_svg(events: Sequence[TimelineEvent], title: str) -> str:
    """A horizontal dated axis with one labelled mark per event, labels stacked to stay legible."""
    placed = sorted(
        ((year_fraction(e.date), e) for e in events if year_fraction(e.date) is not None),
        key=lambda pair: (pair[0], pair[1].label),
    )
    row_height, left, right, top = 22, 40, 40, 56
    height = top + 40 + row_height * max(len(placed), 1)
    width = 900
    canvas = _Canvas(width, height, title)
    canvas.add(f'<text x="{left}" y="20" font-size="14" font-weight="bold">{escape(title)}</text>')
    if not placed:
        canvas.add(f'<text x="{left}" y="{top + 20}">No dated events.</text>')
        return canvas.text()
    first = int(placed[0][0])  # type: ignore[arg-type]
    last = int(placed[-1][0]) + 1  # type: ignore[operator]
    span = max(last - first, 1)
    axis_y = top

    def x_of(value: float) -> float:
        return left + (width - left - right) * (value - first) / span

    canvas.add(
        f'<line x1="{left}" y1="{axis_y}" x2="{width - right}" y2="{axis_y}" '
        'stroke="#333" stroke-width="1.5"/>'
    )
    step = 1 if span <= 16 else 2 if span <= 32 else 5
    for year in range(first, last + 1, step):
        x = x_of(year)
        canvas.add(
            f'<line x1="{x:.1f}" y1="{axis_y - 4}" x2="{x:.1f}" y2="{axis_y + 4}" stroke="#333"/>'
            f'<text x="{x:.1f}" y="{axis_y - 8}" text-anchor="middle" font-size="11">{year}</text>'
        )
    for index, (value, event) in enumerate(placed):
        x = x_of(value)  # type: ignore[arg-type]
        y = axis_y + 30 + index * row_height
        anchor = "end" if x > width * 0.6 else "start"
        dx = -8 if anchor == "end" else 8
        when = event.date + (f" ({event.qualifier})" if event.qualifier else "")
        label = f"{when}: {_clip(event.label, 70)}"
        mark = (
            f'<line x1="{x:.1f}" y1="{axis_y}" x2="{x:.1f}" y2="{y - 4}" stroke="#bbb" '
            'stroke-dasharray="2,2"/>'
            f'<circle cx="{x:.1f}" cy="{y - 4}" r="4" fill="#2a6f97"/>'
            f'<text x="{x + dx:.1f}" y="{y}" text-anchor="{anchor}">'
            f"<title>{escape(event.label)}</title>{escape(label)}</text>"
        )
        canvas.add(f'<g class="event">{_link(mark, event.href)}</g>')
    return canvas.text()


def matrix_svg(
    rows: Sequence[Axis], columns: Sequence[Axis], cells: Sequence[MatrixCell], title: str
) -> str:
    """Rows x columns grid: a filled, linked cell where the pair is risky, else an empty one."""
    cell_w, cell_h, head_w, head_h = 130, 34, 150, 120
    width = head_w + cell_w * max(len(columns), 1) + 20
    height = 30 + head_h + cell_h * max(len(rows), 1) + 40
    canvas = _Canvas(width, height, title)
    canvas.add(f'<text x="10" y="20" font-size="14" font-weight="bold">{escape(title)}</text>')
    by_pair: dict[tuple[str, str], list[MatrixCell]] = {}
    for cell in cells:
        by_pair.setdefault((cell.row, cell.column), []).append(cell)
    top = 30 + head_h
    for j, column in enumerate(columns):
        x = head_w + j * cell_w + cell_w / 2
        label = (
            f'<text x="{x:.1f}" y="{top - 8}" text-anchor="start" '
            f'transform="rotate(-35 {x:.1f} {top - 8})">'
            f"<title>{escape(column.note or column.label)}</title>"
            f"{escape(_clip(column.label, 28))}</text>"
        )
        canvas.add(_link(label, column.href))
    for i, row in enumerate(rows):
        y = top + i * cell_h
        label = (
            f'<text x="{head_w - 10}" y="{y + cell_h / 2 + 4:.1f}" text-anchor="end">'
            f"{escape(_clip(row.label, 22))}</text>"
        )
        canvas.add(_link(label, row.href))
        for j, column in enumerate(columns):
            x = head_w + j * cell_w
            found = by_pair.get((row.key, column.key), [])
            fill = "#c8553d" if found else "#f2f2f2"
            tip = "; ".join(c.title for c in found) or f"{row.label}: not derived risky"
            rect = (
                f'<rect x="{x + 2}" y="{y + 2}" width="{cell_w - 4}" height="{cell_h - 4}" '
                f'fill="{fill}" rx="3"><title>{escape(tip)}</title></rect>'
            )
            if found:
                rect += (
                    f'<text x="{x + cell_w / 2:.1f}" y="{y + cell_h / 2 + 4:.1f}" '
                    f'text-anchor="middle" fill="#fff">risky</text>'
                )
                rect = _link(rect, found[0].href)
            canvas.add(f'<g class="cell{" risky" if found else ""}">{rect}</g>')
    legend_y = top + cell_h * max(len(rows), 1) + 25
    canvas.add(
        f'<rect x="10" y="{legend_y - 11}" width="14" height="14" fill="#c8553d"/>'
        f'<text x="30" y="{legend_y}">derived risky by the rules (click for the explanation)'
        "</text>"
    )
    return canvas.text()
