"""Pictures drawn on the server as SVG text: an organisation's timeline and the risk matrix."""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from xml.sax.saxutils import escape, quoteattr

from copkg.querying.pages.charts import TimelineEvent

SVG_NS = "http://www.w3.org/2000/svg"

_DATE = re.compile(r"^(-?\d{4})(?:-(\d{2}))?(?:-(\d{2}))?")
MONTHS = 12
#: A timeline marks every year up to this span (years), every other year up to the next.
YEARLY_TICKS = 16
BIENNIAL_TICKS = 32


@dataclass(frozen=True)
class MatrixCell:
    """One risky (row, column) pair of the matrix and where its evidence is."""

    row: str
    column: str
    title: str
    href: str | None = None
    risk: str | None = None  # the risk the rules derive, named in the cell


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
            f'viewBox="0 0 {self.width} {self.height}" role="group" '
            f"aria-label={quoteattr(self.title)} "
            f'font-family="{FONT}" font-size="12">'
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
    if not 1 <= month <= MONTHS:
        return float(year)
    return year + (month - 1) / MONTHS + ((day or 1) - 1) / 365


#: The pictures' font: DejaVu Sans where it is installed (the widest of the common sans-serif
#: faces, whose advance widths text_width uses), so that an estimate fits any fallback.
FONT = "DejaVu Sans, Verdana, Liberation Sans, Arial, sans-serif"

#: DejaVu Sans advance widths in 1/2048 em, by character class (measured from the font).
_ADVANCE: dict[str, int] = {
    **dict.fromkeys("ijl'|", 569),
    **dict.fromkeys(".,:;!", 690),
    " ": 651,
    "f": 721,
    "t": 803,
    "r": 842,
    "(": 799,
    ")": 799,
    "-": 739,
    "/": 690,
    "s": 1067,
    "z": 1075,
    "c": 1126,
    "k": 1186,
    "v": 1212,
    "x": 1212,
    "y": 1212,
    "a": 1255,
    "e": 1260,
    "o": 1253,
    "w": 1675,
    "m": 1995,
    **dict.fromkeys("bdghnpqu", 1300),
    **dict.fromkeys("0123456789", 1303),
    **dict.fromkeys("IJ", 604),
    "L": 1141,
    "F": 1178,
    "P": 1235,
    "E": 1294,
    "S": 1300,
    "T": 1251,
    "Y": 1251,
    "M": 1767,
    "W": 2025,
    "—": 2048,
    "–": 1024,
    "…": 2048,
    "×": 1716,
}
_DEFAULT_ADVANCE = 1480  # capitals and any other character: a wide one


def text_width(text: str, size: float) -> float:
    """An estimate, a little generous, of a line's width in px at a font size (DejaVu Sans)."""
    units = sum(_ADVANCE.get(ch, _DEFAULT_ADVANCE) for ch in text)
    return units / 2048 * size * 1.04


def wrap(text: str, size: float, width: float, lines: int = 3) -> list[str]:
    """Words in lines no wider than `width` (at most `lines`, the last one cut with "…")."""
    out: list[str] = []
    current = ""
    for word in text.split():
        candidate = f"{current} {word}".strip()
        if current and text_width(candidate, size) > width:
            out.append(current)
            current = word
        else:
            current = candidate
    if current:
        out.append(current)
    out = [_fit(line, size, width) for line in out] or [""]
    if len(out) > lines:
        out = [*out[: lines - 1], _fit(" ".join(out[lines - 1 :]) + "…", size, width)]
    return out


def _fit(line: str, size: float, width: float) -> str:
    """A line cut (with "…") to fit `width`."""
    if text_width(line, size) <= width:
        return line
    while line and text_width(line + "…", size) > width:
        line = line[:-1]
    return line.rstrip() + "…"


def _tspans(lines: Sequence[str], x: float, height: float) -> str:
    return "".join(
        f'<tspan x="{x:.1f}" dy="{0 if i == 0 else height}">{escape(line)}</tspan>'
        for i, line in enumerate(lines)
    )


def _link(inner: str, href: str | None) -> str:
    if not href:
        return inner
    return f"<a href={quoteattr(href)}>{inner}</a>"


#: Marker colours of event types, in order of first appearance (each at least 3:1 on white).
EVENT_COLOURS = (
    "#1d5b7e",
    "#a63d28",
    "#2f6b3a",
    "#6a3d9a",
    "#8a5a00",
    "#0f6e6e",
    "#b0306f",
    "#4a4a4a",
    "#5c4fb8",
    "#7a5230",
)
OTHER_EVENT = "other event"


def timeline_svg(events: Sequence[TimelineEvent], title: str) -> str:
    """A horizontal dated axis with one mark per event, one event a row: its label beside the
    mark on the side with more room, wrapped to fit the picture; a legend of event types."""
    placed = sorted(
        ((year_fraction(e.date), e) for e in events if year_fraction(e.date) is not None),
        key=lambda pair: (pair[0], pair[1].label),
    )
    width, left, right, top, line_h, size = 900, 24, 24, 56, 15, 12
    kinds: dict[str, str] = {}
    for _, event in placed:
        kind = event.kind or OTHER_EVENT
        kinds.setdefault(kind, EVENT_COLOURS[len(kinds) % len(EVENT_COLOURS)])
    title_lines = wrap(title, 14, width - 2 * left, lines=2)
    if not placed:
        canvas = _Canvas(width, top + 40, title)
        canvas.add(_title(title_lines, left))
        canvas.add(f'<text x="{left}" y="{top + 20}">No dated events.</text>')
        return canvas.text()
    first = int(placed[0][0])  # type: ignore[arg-type]
    last = int(placed[-1][0]) + 1  # type: ignore[arg-type]
    span = max(last - first, 1)
    axis_y = top + 18 * (len(title_lines) - 1)

    def x_of(value: float) -> float:
        return left + 10 + (width - left - right - 20) * (value - first) / span

    marks: list[str] = []
    y = axis_y + 30
    for value, event in placed:
        x = x_of(value)  # type: ignore[arg-type]
        room_right, room_left = width - right - (x + 9), x - 9 - left
        anchor = "start" if room_right >= room_left else "end"
        tx = x + 9 if anchor == "start" else x - 9
        when = event.date + (f" ({event.qualifier})" if event.qualifier else "")
        lines = wrap(f"{when}: {event.label}", size, max(room_left, room_right))
        colour = kinds[event.kind or OTHER_EVENT]
        mark = (
            f'<line x1="{x:.1f}" y1="{axis_y}" x2="{x:.1f}" y2="{y - 4}" stroke="#999" '
            'stroke-dasharray="2,2"/>'
            f'<circle cx="{x:.1f}" cy="{y - 4}" r="5" fill="{colour}"/>'
            f'<text x="{tx:.1f}" y="{y}" text-anchor="{anchor}">'
            f"<title>{escape(event.label)}</title>{_tspans(lines, tx, line_h)}</text>"
        )
        marks.append(f'<g class="event">{_link(mark, event.href)}</g>')
        y += line_h * len(lines) + 9
    legend_y = y + 14
    items, x, row = [], float(left), 0
    for kind, colour in kinds.items():
        item_w = 16 + text_width(kind, size) + 22
        if x + item_w > width - right and x > left:
            x, row = float(left), row + 1
        ly = legend_y + 18 + row * 20
        items.append(
            f'<circle cx="{x + 5:.1f}" cy="{ly - 4}" r="5" fill="{colour}"/>'
            f'<text x="{x + 14:.1f}" y="{ly}">{escape(kind)}</text>'
        )
        x += item_w
    height = legend_y + 18 + row * 20 + 14
    canvas = _Canvas(width, math.ceil(height), title)
    canvas.add(_title(title_lines, left))
    canvas.add(
        f'<line x1="{left}" y1="{axis_y}" x2="{width - right}" y2="{axis_y}" '
        'stroke="#333" stroke-width="1.5"/>'
    )
    step = 1 if span <= YEARLY_TICKS else 2 if span <= BIENNIAL_TICKS else 5
    for year in range(first, last + 1, step):
        x = x_of(year)
        canvas.add(
            f'<line x1="{x:.1f}" y1="{axis_y - 4}" x2="{x:.1f}" y2="{axis_y + 4}" stroke="#333"/>'
            f'<text x="{x:.1f}" y="{axis_y - 8}" text-anchor="middle" font-size="11">{year}</text>'
        )
    canvas.parts.extend(marks)
    canvas.add(
        f'<g class="legend"><text x="{left}" y="{legend_y}" font-weight="bold">Event types</text>'
        + "".join(items)
        + "</g>"
    )
    return canvas.text()


def _title(lines: Sequence[str], x: float) -> str:
    return f'<text x="{x}" y="20" font-size="14" font-weight="bold">{_tspans(lines, x, 18)}</text>'


#: Matrix colours: white text on RISKY is 6.3:1; EMPTY cells carry no text.
RISKY, EMPTY = "#a63d28", "#e4e4e4"
#: Column labels turn by this many degrees (counter-clockwise).
_TURN = 40


def matrix_svg(
    rows: Sequence[Axis], columns: Sequence[Axis], cells: Sequence[MatrixCell], title: str
) -> str:
    """Rows x columns grid: where the pair is risky a filled cell naming the risk, linked to
    its explanation, else a grey one; header sizes measured from the labels; a full legend."""
    cell_w, cell_h, size, small = 130, 40, 12, 11
    row_labels = [_fit(r.label, size, 220) for r in rows]
    head_w = 16 + max([text_width(t, size) for t in row_labels] or [40])
    col_labels = [_fit(c.label, size, 240) for c in columns]
    col_widths = [text_width(t, size) for t in col_labels]
    sin, cos = math.sin(math.radians(_TURN)), math.cos(math.radians(_TURN))
    head_h = 14 + max([w * sin for w in col_widths] or [0]) + 4
    grid_right = head_w + cell_w * max(len(columns), 1)
    label_right = max(
        [head_w + j * cell_w + cell_w / 2 + w * cos + 4 for j, w in enumerate(col_widths)] or [0]
    )
    width = math.ceil(max(grid_right, label_right, 560) + 12)
    title_lines = wrap(title, 14, width - 20, lines=2)
    top = 30 + 18 * (len(title_lines) - 1) + head_h
    by_pair: dict[tuple[str, str], list[MatrixCell]] = {}
    for cell in cells:
        by_pair.setdefault((cell.row, cell.column), []).append(cell)
    parts: list[str] = []
    for j, (column, text) in enumerate(zip(columns, col_labels, strict=True)):
        x = head_w + j * cell_w + cell_w / 2
        label = (
            f'<text x="{x:.1f}" y="{top - 8:.1f}" text-anchor="start" '
            f'transform="rotate(-{_TURN} {x:.1f} {top - 8:.1f})">'
            f"<title>{escape(column.note or column.label)}</title>{escape(text)}</text>"
        )
        parts.append(_link(label, column.href))
    for i, (row, text) in enumerate(zip(rows, row_labels, strict=True)):
        y = top + i * cell_h
        label = (
            f'<text x="{head_w - 8:.1f}" y="{y + cell_h / 2 + 4:.1f}" text-anchor="end">'
            f"<title>{escape(row.note or row.label)}</title>{escape(text)}</text>"
        )
        parts.append(_link(label, row.href))
        for j, column in enumerate(columns):
            x = head_w + j * cell_w
            found = by_pair.get((row.key, column.key), [])
            fill = RISKY if found else EMPTY
            tip = "; ".join(c.title for c in found) or f"{row.label}: no risk derived here"
            rect = (
                f'<rect x="{x + 2:.1f}" y="{y + 2}" width="{cell_w - 4}" height="{cell_h - 4}" '
                f'fill="{fill}" rx="3"><title>{escape(tip)}</title></rect>'
            )
            if found:
                risks = list(dict.fromkeys(c.risk for c in found if c.risk)) or ["risky"]
                lines = wrap(", ".join(risks), small, cell_w - 12, lines=2)
                ty = y + cell_h / 2 + 4 - (len(lines) - 1) * 6.5
                cx = x + cell_w / 2
                rect += (
                    f'<text x="{cx:.1f}" y="{ty:.1f}" text-anchor="middle" fill="#fff" '
                    f'font-size="{small}">{_tspans(lines, cx, 13)}</text>'
                )
                rect = _link(rect, found[0].href)
            parts.append(f'<g class="cell{" risky" if found else ""}">{rect}</g>')
    legend_y = top + cell_h * max(len(rows), 1) + 24
    legend = [
        (
            RISKY,
            "risky: the rules derive the named risk for this role in this context "
            "(click a cell for the explanation)",
        ),
        (EMPTY, "no risk derived for this role in this context"),
    ]
    for fill, text in legend:
        lines = wrap(text, size, width - 50)
        parts.append(
            f'<g class="legend"><rect x="10" y="{legend_y - 11}" width="14" height="14" '
            f'fill="{fill}" stroke="#767676" stroke-width="0.5"/>'
            f'<text x="30" y="{legend_y}">{_tspans(lines, 30, 15)}</text></g>'
        )
        legend_y += 15 * len(lines) + 8
    canvas = _Canvas(width, math.ceil(legend_y), title)
    canvas.add(
        f'<text x="10" y="20" font-size="14" font-weight="bold">{_tspans(title_lines, 10, 18)}'
        "</text>"
    )
    canvas.parts.extend(parts)
    return canvas.text()
