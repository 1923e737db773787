"""The `copkg` command: a thin click shell, each command one library call."""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn

import click
from rdflib import BNode, Literal, URIRef
from rdflib.term import Node

from copkg.config import Settings
from copkg.errors import CopkgError
from copkg.namespaces import PREFIXES

#: Exit codes: 1 when the data is wrong (SHACL violations) or a step failed, 2 when an input
#: cannot be read (syntax errors, bad parameters, bad usage).
EXIT_FAILED = 1
EXIT_SYNTAX = 2


def fail(error: CopkgError, file: str | None = None) -> NoReturn:
    """Print an error as `file:line: message` lines on stderr and exit (no traceback)."""
    for problem in error.problems:
        if file and problem.file is None:
            problem.file = file
    lines = [str(p) for p in error.problems]
    if [p.message for p in error.problems] != [error.message]:
        lines.insert(0, f"{file}: {error.message}" if file else f"copkg: {error.message}")
    click.echo("\n".join(lines), err=True)
    sys.exit(EXIT_SYNTAX if error.status in (400, 404, 406, 413) else EXIT_FAILED)


def root_option(command: Callable[..., Any]) -> Callable[..., Any]:
    """`--root PATH` on a command; the settings it gives are passed on as `settings`."""

    @click.option(
        "--root",
        type=click.Path(file_okay=False, path_type=Path),
        default=None,
        help="Project folder (ontology/, data/); default: COPKG_ROOT or the working folder.",
    )
    @functools.wraps(command)
    def wrapper(root: Path | None, **kwargs: Any) -> Any:
        try:
            settings = Settings.load(root)
        except CopkgError as error:
            fail(error)
        return command(settings=settings, **kwargs)

    return wrapper


@click.group()
@click.version_option(package_name="copkg")
def main() -> None:
    """copkg: the knowledge graph of Josserand (2004) on communities of practice."""


@main.command()
@root_option
def build(settings: Settings) -> None:
    """Load, infer, validate and export the dataset into build/ (atomically)."""
    from copkg.pipeline import build as run_build

    try:
        manifest = run_build(settings)
    except CopkgError as error:
        fail(error)
    click.echo(f"built {settings.build_dir}: {manifest.quads} quads")
    for graph, count in sorted(manifest.graphs.items()):
        click.echo(f"  {count:>8}  {graph}")
    timings = ", ".join(f"{step} {seconds:.2f}s" for step, seconds in manifest.timings.items())
    click.echo(f"  ({timings})")


@main.command()
@click.argument("files", nargs=-1, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@root_option
def validate(settings: Settings, files: tuple[Path, ...]) -> None:
    """Validate the sources, or FILES with the ontology, against ontology/shapes.ttl.

    Exit 1 on SHACL violations, 2 on syntax errors (sources, rules, named queries).
    """
    from copkg.pipeline import check

    try:
        outcome = check(settings, list(files) or None)
    except CopkgError as error:
        fail(error)
    if outcome.conforms:
        click.echo(outcome.text.rstrip() or "Conforms.")  # warnings, if any, are in the text
        return
    click.echo(outcome.text.rstrip(), err=True)
    sys.exit(EXIT_FAILED)


FORMATS = ("table", "json", "csv", "tsv")
_SOLUTION_TYPES = {
    "json": "application/sparql-results+json",
    "csv": "text/csv",
    "tsv": "text/tab-separated-values",
}
_GRAPH_TYPES = {"table": "text/turtle", "json": "application/ld+json"}


@main.command()
@click.argument("file", required=False, type=click.Path(dir_okay=False, path_type=Path))
@click.option("-e", "--expression", help="SPARQL text to run instead of a FILE.")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="table", show_default=True)
@click.option(
    "--param",
    "params",
    multiple=True,
    metavar="NAME=VALUE",
    help="A value for the query's ?_NAME parameter (repeatable); IRIs may be prefixed names.",
)
@root_option
def query(
    settings: Settings,
    file: Path | None,
    expression: str | None,
    fmt: str,
    params: tuple[str, ...],
) -> None:
    """Run a SPARQL query (FILE.rq or -e TEXT) against the build, building it first if needed."""
    from copkg.named_queries import parse_named_query, run
    from copkg.pipeline import load_build

    if (file is None) == (expression is None):
        raise click.UsageError("give either a query FILE or -e 'SPARQL', not both")
    raw: dict[str, str] = {}
    for item in params:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise click.UsageError(f"--param {item!r}: write NAME=VALUE")
        raw[name.strip()] = value
    where = str(file) if file else None
    try:
        if file is not None:
            if not file.is_file():
                raise CopkgError(f"no such query file: {file}", status=400)
            named = parse_named_query(file)
        else:
            named = parse_named_query(Path("<expression>.rq"), expression)
        store = load_build(settings, rebuild="stale", timeout=settings.query_timeout)
        result = run(store, named, raw)
        output = render(result, fmt)
    except CopkgError as error:
        fail(error, where)
    click.echo(output, nl=not output.endswith("\n"))


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
        for prefix, ns in PREFIXES.items():
            if value.startswith(ns) and value != ns:
                return f"{prefix}:{value[len(ns) :]}"
        return f"<{value}>"
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


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True, type=int)
@click.option("--workers", default=None, type=int, help="gunicorn workers (default: the web's)")
@root_option
def serve(settings: Settings, host: str, port: int, workers: int | None) -> None:
    """Serve the SPARQL endpoint, the named-query API and the pages (gunicorn)."""
    try:
        from copkg.web import serve as run_server
    except ImportError as exc:
        fail(CopkgError(f"the web service is not available: {exc}", status=500))
    try:
        run_server(settings, host, port, workers)
    except CopkgError as error:
        fail(error)


if __name__ == "__main__":
    main()
