"""How the CLI prints a query's answer: tables, SPARQL results formats, RDF, and which page."""

from __future__ import annotations

import json
import shutil
import textwrap
from typing import TYPE_CHECKING

from rdflib import BNode, Literal, URIRef
from rdflib.term import Node

from copkg.errors import CopkgError
from copkg.namespaces import prefixed

if TYPE_CHECKING:
    # deferred: saves a measured start-up cost (see the query command)
    from copkg.querying.named_queries import Page
    from copkg.store import QueryResult

FORMATS = ("table", "json", "csv", "tsv")
_SOLUTION_TYPES = {
    "json": "application/sparql-results+json",
    "csv": "text/csv",
    "tsv": "text/tab-separated-values",
}
_GRAPH_TYPES = {"table": "text/turtle", "json": "application/ld+json"}


def page_note(at: Page, rows: int) -> str:
    """Which page the CLI printed, of how many, and how to get another."""
    if at.last is not None:
        where = f"page {at.number} of {at.last}"
        unit = f"{at.size} values of {at.over} a page" if at.over else f"{at.size} rows a page"
    else:
        where = f"page {at.number}"
        unit = f"{at.size} rows a page"
    more = f"; --page {at.number + 1} for the next" if at.has_next(rows) else "; the last page"
    return f"{where} ({unit}){more}"


def render(result: QueryResult, fmt: str, *, wide: bool = False, width: int | None = None) -> str:
    """A query result as text in one of the CLI's formats (`wide`, `width`: see `table`)."""
    if result.kind == "graph":
        if fmt not in _GRAPH_TYPES:
            raise CopkgError(
                f"a CONSTRUCT or DESCRIBE result is RDF: use --format table (Turtle) or json "
                f"(JSON-LD), not {fmt}",
                status=400,
            )
        return result.serialize(_GRAPH_TYPES[fmt]).decode("utf-8")
    if fmt == "json":
        return json.dumps(
            json.loads(result.serialize(_SOLUTION_TYPES[fmt])), indent=2, ensure_ascii=False
        )
    if fmt in _SOLUTION_TYPES:
        return result.serialize(_SOLUTION_TYPES[fmt]).decode("utf-8")
    if result.kind == "ask":
        return "yes" if result.boolean else "no"
    return table(result.variables, result.rows, width, wide=wide)


def short(value: Node | None) -> str:
    """A term as a reader wants it in a table: prefixed names, plain text, numbers."""
    if value is None:
        return ""
    if isinstance(value, URIRef):
        return prefixed(value)
    if isinstance(value, BNode):
        return f"_:{value}"
    if isinstance(value, Literal):
        return " ".join(str(value).split())
    return str(value)


def table(
    variables: list[str],
    rows: list[dict[str, Node]],
    width: int | None = None,
    *,
    wide: bool = False,
) -> str:
    """A query's solutions as plain text that fits `width` characters (the terminal's).

    A column of IRIs is left out where a label column stands for it (`x` beside `xLabel`,
    then headed `x`; a row without a label shows the IRI); long cells are wrapped. When the
    columns cannot each have MIN_COLUMN characters, each row is printed as a block of
    `name  value` lines instead. `wide`: every column, each cell on one line, however long.
    """
    count = f"({len(rows)} row{'s' if len(rows) != 1 else ''})"
    columns = [(v, v) for v in variables] if wide else _labelled(variables, rows)
    headers = [header for header, _ in columns]
    cells = [[_cell(row, var) for _, var in columns] for row in rows]
    natural = [max([len(h), *(len(r[i]) for r in cells)]) for i, h in enumerate(headers)]
    width = width or terminal_width()
    widths = natural if wide else _fit(natural, width - 2 * (len(natural) - 1))
    if widths is None:
        return "\n\n".join([*(_record(headers, row, width) for row in cells), count])
    lines = _wrapped(headers, widths)
    lines.append("  ".join("-" * w for w in widths))
    for row in cells:
        lines += _wrapped(row, widths)
    lines.append(count)
    return "\n".join(lines)


def _wrapped(row: list[str], widths: list[int]) -> list[str]:
    """A row of the table as lines, each cell wrapped to its column's width."""
    wrapped = [_wrap(text, w) for text, w in zip(row, widths, strict=True)]
    height = max((len(parts) for parts in wrapped), default=1)
    return [_line([p[i] if i < len(p) else "" for p in wrapped], widths) for i in range(height)]


def _labelled(variables: list[str], rows: list[dict[str, Node]]) -> list[tuple[str, str]]:
    """The columns to show, (header, variable): `x` left out where `xLabel` is also a column
    and no `x` is a literal; `xLabel` is then headed `x`."""
    shown = []
    for var in variables:
        iri = var[: -len("Label")] if var.endswith("Label") else None
        if iri in variables and not any(isinstance(row.get(iri), Literal) for row in rows):
            shown.append((iri, var))
        elif f"{var}Label" not in variables or any(
            isinstance(row.get(var), Literal) for row in rows
        ):
            shown.append((var, var))
    return shown


def _cell(row: dict[str, Node], var: str) -> str:
    value = row.get(var)
    if value is None and var.endswith("Label"):
        value = row.get(var[: -len("Label")])  # no label: the IRI it stands for
    return short(value)


#: The narrowest a column of the table is made; below it, rows are printed as blocks.
MIN_COLUMN = 12


def _fit(natural: list[int], room: int) -> list[int] | None:
    """Column widths that add up to at most `room`: each column as wide as its widest cell,
    or as wide as a cap shared by the widest ones; None when that cap is below MIN_COLUMN."""
    if sum(natural) <= room:
        return natural
    low, high = 0, max(natural)
    while low < high:  # the largest cap under which the columns fit
        cap = (low + high + 1) // 2
        if sum(min(n, cap) for n in natural) <= room:
            low = cap
        else:
            high = cap - 1
    if low < MIN_COLUMN:
        return None
    widths = [min(n, low) for n in natural]
    spare = room - sum(widths)
    for i, n in enumerate(natural):  # what the cap's rounding left, to the first wide columns
        extra = min(spare, n - widths[i])
        widths[i] += extra
        spare -= extra
    return widths


def _record(headers: list[str], row: list[str], width: int) -> str:
    """One row as `name  value` lines, the values wrapped; empty values left out."""
    indent = max(len(h) for h in headers) + 2
    lines = []
    for header, text in zip(headers, row, strict=True):
        if text:
            parts = _wrap(text, max(width - indent, MIN_COLUMN))
            lines.append(header.ljust(indent) + parts[0])
            lines += [" " * indent + part for part in parts[1:]]
    return "\n".join(lines) or "(no values)"


def terminal_width() -> int:
    """The terminal's width in characters (COLUMNS, else the terminal, else 100)."""
    return shutil.get_terminal_size((100, 24)).columns


def _wrap(text: str, width: int) -> list[str]:
    if len(text) <= width:
        return [text]
    return textwrap.wrap(text, width, break_on_hyphens=False) or [""]


def _line(cells: list[str], widths: list[int]) -> str:
    return "  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip()
