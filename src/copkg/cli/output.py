"""How the CLI prints a query's answer: tables, SPARQL results formats, RDF, and which page."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from rdflib import BNode, Literal, URIRef
from rdflib.term import Node

from copkg.errors import CopkgError
from copkg.namespaces import prefixed

if TYPE_CHECKING:
    from copkg.querying.named_queries import Page

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


def render(result: Any, fmt: str) -> str:
    """A query result as text in one of the CLI's formats."""
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
    return table(result.variables, result.rows)


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


def table(variables: list[str], rows: list[dict[str, Node]], width: int = 60) -> str:
    """A plain text table, one line a row; long cells cut at `width` characters."""
    cells = [[_cut(short(row.get(v)), width) for v in variables] for row in rows]
    widths = [max([len(v), *(len(r[i]) for r in cells)]) for i, v in enumerate(variables)]
    lines = [
        "  ".join(v.ljust(w) for v, w in zip(variables, widths, strict=True)).rstrip(),
        "  ".join("-" * w for w in widths),
    ]
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in cells]
    lines.append(f"({len(rows)} row{'s' if len(rows) != 1 else ''})")
    return "\n".join(lines)


def _cut(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"
