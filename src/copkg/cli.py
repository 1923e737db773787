"""The `copkg` command: a thin click shell, each command one library call."""

from __future__ import annotations

import dataclasses
import functools
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import click
from rdflib import BNode, Literal, URIRef
from rdflib.term import Node

from copkg.config import Settings
from copkg.errors import CopkgError
from copkg.namespaces import prefixed

if TYPE_CHECKING:
    from copkg.querying.named_queries import Page

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


def store_option(command: Callable[..., Any]) -> Callable[..., Any]:
    """`--store URL` on a command: the settings' store_url (a SPARQL endpoint's query URL, a
    store folder or `memory:`) instead of the build's store."""

    @click.option(
        "--store",
        "store_url",
        metavar="URL",
        default=None,
        help="Query this store instead of build/: a SPARQL endpoint's query URL (http(s)), "
        "a store folder or memory: (default: COPKG_STORE_URL).",
    )
    @functools.wraps(command)
    def wrapper(store_url: str | None, settings: Settings, **kwargs: Any) -> Any:
        if store_url is not None:
            settings = dataclasses.replace(settings, store_url=store_url)
        return command(settings=settings, **kwargs)

    return wrapper


@click.group()
@click.version_option(package_name="copkg")
def main() -> None:
    """copkg: the knowledge graph of Josserand (2004) on communities of practice."""


@main.command()
@root_option
@click.option("--skip-owl", is_flag=True, help="Leave out the HermiT consistency check (Java).")
def build(settings: Settings, skip_owl: bool) -> None:
    """Load, check, infer, validate and export the dataset into build/ (atomically): every
    study is checked against the others as `copkg add` checks a bundle, SHACL and HermiT
    (where Java is present) included."""
    # deferred: saves a measured start-up cost (`import copkg.cli` 0.7-1.6 s, 2.8-6 s
    # with every command's modules); each command loads what it runs
    from copkg.pipeline import build as run_build

    try:
        manifest = run_build(settings, owl=not skip_owl)
    except CopkgError as error:
        fail(error)
    click.echo(f"built {settings.build_dir}: {manifest.quads} quads")
    click.echo(f"  owl: {manifest.extra.get('owl', 'not run')}")
    for graph, count in sorted(manifest.graphs.items()):
        click.echo(f"  {count:>8}  {graph}")
    timings = ", ".join(f"{step} {seconds:.2f}s" for step, seconds in manifest.timings.items())
    click.echo(f"  ({timings})")


@main.command()
@root_option
def reason(settings: Settings) -> None:
    """Check with HermiT (owlready2) that the ontology and the studies are consistent, and list
    the class memberships it infers from the defined classes. Needs Java."""
    from rdflib import Graph

    # deferred: saves a measured start-up cost (`import copkg.cli` 0.7-1.6 s, 2.8-6 s
    # with every command's modules); each command loads what it runs
    from copkg.pipeline.steps import source_files
    from copkg.rdf_io import parse_file
    from copkg.reasoning.owl import check_consistency

    try:
        graphs: list[Graph] = [
            parse_file(path) for files in source_files(settings).values() for path in files
        ]
        outcome = check_consistency(graphs)
    except CopkgError as error:
        fail(error)
    click.echo(outcome.text())
    if not outcome.consistent:
        sys.exit(EXIT_FAILED)


@main.command()
@click.argument("files", nargs=-1, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--engine",
    type=click.Choice(["sparql", "pyshacl"]),
    default="sparql",
    show_default=True,
    help="The SHACL engine: shapes compiled to SPARQL (fast), or pyshacl (the reference).",
)
@root_option
def validate(settings: Settings, files: tuple[Path, ...], engine: str) -> None:
    """Validate the sources, or FILES with the ontology, against ontology/shapes.ttl.

    Exit 1 on SHACL violations, 2 on syntax errors (sources, rules, named queries).
    """
    # deferred: saves a measured start-up cost (`import copkg.cli` 0.7-1.6 s, 2.8-6 s
    # with every command's modules); each command loads what it runs
    from copkg.pipeline import check

    try:
        outcome = check(settings, list(files) or None, engine)
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
@click.option(
    "--page",
    type=click.IntRange(min=1),
    default=None,
    help="Which page of a query with `pagination:` in its header (the first by default).",
)
@root_option
@store_option
def query(
    settings: Settings,
    file: Path | None,
    expression: str | None,
    fmt: str,
    params: tuple[str, ...],
    page: int | None,
) -> None:
    """Run a SPARQL query (FILE.rq or -e TEXT) against the build, building it first if needed,
    or against the store given with --store (or COPKG_STORE_URL). A paged query prints one
    page (--page N) and says on stderr which, and how many there are."""
    # deferred: saves a measured start-up cost (`import copkg.cli` 0.7-1.6 s, 2.8-6 s
    # with every command's modules); each command loads what it runs
    from copkg.querying.deadline import call_with_deadline
    from copkg.querying.named_queries import parse_named_query

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
        if page is not None and not named.pagination:
            raise CopkgError(
                "--page: the query has no pages (no `pagination:` in its header)", status=400
            )
        # in a process killed at COPKG_QUERY_TIMEOUT, as the service's query workers are
        output, note = call_with_deadline(
            run_query, (settings, named, raw, page, fmt), settings.query_timeout
        )
    except CopkgError as error:
        fail(error, where)
    click.echo(output, nl=not output.endswith("\n"))
    if note is not None:
        click.echo(note, err=True)


def run_query(
    conn: Any, settings: Settings, named: Any, raw: dict[str, str], page: int | None, fmt: str
) -> tuple[str, str | None]:
    """`copkg query` in its process: open the store (building it first if needed), then run
    the query under the time limit; the output and the page note."""
    # deferred: saves a measured start-up cost (see query)
    from copkg.pipeline import load_build
    from copkg.pipeline.open import open_store
    from copkg.querying.deadline import started
    from copkg.querying.named_queries import run_page

    if settings.store_url is not None:
        store = open_store(settings)
    else:
        store = load_build(settings, rebuild="stale", timeout=settings.query_timeout)
    started(conn)
    result, at = run_page(store, named, raw, page=page)
    return render(result, fmt), None if at is None else page_note(at, len(result.rows))


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


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True, type=int)
@click.option("--workers", default=None, type=int, help="gunicorn workers (default: the web's)")
@root_option
@store_option
def serve(settings: Settings, host: str, port: int, workers: int | None) -> None:
    """Serve the SPARQL endpoint, the named-query API and the pages (gunicorn)."""
    try:
        # deferred: saves a measured start-up cost (`import copkg.cli` 0.7-1.6 s, 2.8-6 s
        # with every command's modules); each command loads what it runs
        from copkg.web.server import serve as run_server
    except ImportError as exc:
        fail(CopkgError(f"the web service is not available: {exc}", status=500))
    try:
        run_server(settings, host, port, workers)
    except CopkgError as error:
        fail(error)


@main.command("new-study")
@click.argument("study_id", metavar="ID")
@root_option
def new_study(settings: Settings, study_id: str) -> None:
    """Scaffold data/studies/ID/: a commented Turtle template, marked as a draft (the build
    skips it until `copkg add` takes it in)."""
    # deferred: saves a measured start-up cost (`import copkg.cli` 0.7-1.6 s, 2.8-6 s
    # with every command's modules); each command loads what it runs
    from copkg.studies.scaffold import new_study as scaffold

    try:
        folder = scaffold(settings, study_id)
    except CopkgError as error:
        fail(error)
    shown = _relative(folder, settings.root)
    click.echo(f"created {shown}/ (a draft: `copkg build` skips it)")
    click.echo(f"  fill in {shown}/study.ttl: every value marked TODO")
    click.echo(f"  check it:  copkg add --dry-run {shown}")
    click.echo(f"  add it:    copkg add {shown}")
    click.echo("  guide:     docs/adding-a-study.md")


@main.command()
@click.argument("path", type=click.Path(path_type=Path))
@click.option("--id", "study_id", metavar="ID", help="The study's ID (default: the folder in "
              "data/studies/, else the namespace of the bundle's copkg:Study).")  # fmt: skip
@click.option("--dry-run", is_flag=True, help="Run every check, change nothing.")
@click.option("--skip-owl", is_flag=True, help="Leave out the HermiT consistency check (Java).")
@click.option("--rebuild", is_flag=True, help="Rebuild the whole build instead of extending it.")
@root_option
def add(
    settings: Settings,
    path: Path,
    study_id: str | None,
    dry_run: bool,
    skip_owl: bool,
    rebuild: bool,
) -> None:
    """Check a study bundle (a folder of .ttl files, or one .ttl file) and add it to the corpus
    (data/studies/ID/) and the build.

    Checks: Turtle syntax, the IRIs it uses and describes, the SHACL shapes, OWL consistency
    (HermiT). On any problem nothing is changed; exit 2 on syntax errors, 1 otherwise.
    """
    # deferred: saves a measured start-up cost (`import copkg.cli` 0.7-1.6 s, 2.8-6 s
    # with every command's modules); each command loads what it runs
    from copkg.studies.add import add_study

    try:
        outcome = add_study(
            settings, path, study_id=study_id, skip_owl=skip_owl, rebuild=rebuild, dry_run=dry_run
        )
    except CopkgError as error:
        fail(error)
    report = outcome.report
    bundle = report.bundle
    click.echo(f"checked {path} as study {bundle.study_id}:")
    for step, what in report.steps.items():
        click.echo(f"  {step:<7} {what}")
    for problem in report.warnings:
        click.echo(f"warning: {problem}", err=True)
    if bundle.ignored:
        click.echo(f"not copied (not .ttl or notes): {', '.join(bundle.ignored)}", err=True)
    if outcome.target is None or outcome.manifest is None:
        click.echo(f"{outcome.how}; `copkg add {path}` adds it")
        return
    manifest = outcome.manifest
    count = manifest.graphs.get(bundle.graph_name, 0)
    click.echo(f"added study {bundle.study_id}: {_relative(outcome.target, settings.root)}/")
    click.echo(f"  graph {bundle.graph_name} ({count} triples)")
    seconds = sum(manifest.timings.values())
    click.echo(f"  {outcome.how}: {manifest.quads} quads in {settings.build_dir} ({seconds:.2f}s)")
    click.echo("  a running `copkg serve` swaps it in within a second or so, no restart")


@main.command()
@click.option("--store", "store_url", required=True, metavar="URL",
              help="The SPARQL endpoint's query URL.")  # fmt: skip
@click.option("--update-url", metavar="URL", help="Its SPARQL Update URL.")
@click.option("--graph-store-url", metavar="URL",
              help="Its Graph Store Protocol URL (used when given: one PUT a graph).")  # fmt: skip
@click.option("--prune", is_flag=True, help="Also drop the server's graphs the build lacks.")
@click.option("--timeout", default=120.0, show_default=True, help="Seconds to wait a request.")
@click.option("--user", help="User name for HTTP Basic authentication (password: "
              "COPKG_STORE_PASSWORD, else asked).")  # fmt: skip
@click.option("--digest", is_flag=True, help="Send the user's password by HTTP Digest "
              "authentication, not Basic (Virtuoso's /sparql-auth).")  # fmt: skip
@root_option
def push(
    settings: Settings,
    store_url: str,
    update_url: str | None,
    graph_store_url: str | None,
    prune: bool,
    timeout: float,
    user: str | None,
    digest: bool,
) -> None:
    """Load the build into a SPARQL store, each named graph replaced whole (re-run safely),
    and check the triple counts afterwards."""
    # deferred: saves a measured start-up cost (`import copkg.cli` 0.7-1.6 s, 2.8-6 s
    # with every command's modules); each command loads what it runs
    from copkg.pipeline.push import push as run_push
    from copkg.store.remote import SparqlEndpointStore

    def progress(graph: str, count: int) -> None:
        click.echo(f"  {count:>8}  {graph}")

    auth = None
    if user is not None:
        password = os.environ.get("COPKG_STORE_PASSWORD")
        if password is None:
            password = click.prompt(f"password for {user}", hide_input=True)
        auth = (user, password)
    try:
        target = SparqlEndpointStore(
            store_url,
            update_url,
            graph_store_url,
            timeout=timeout,
            max_rows=None,
            auth=auth,
            auth_scheme="digest" if digest else "basic",
        )
        click.echo(f"pushing {settings.build_dir} to {store_url}")
        report = run_push(settings, target, prune=prune, progress=progress)
    except CopkgError as error:
        fail(error)
    click.echo(
        f"pushed {len(report.graphs)} graphs, {report.triples} triples ({report.method}); "
        "the counts on the server match the build"
    )
    for graph in report.dropped:
        click.echo(f"  dropped {graph} (not in the build)")
    if report.others:
        click.echo(
            "the server has graphs the build lacks (--prune drops them): "
            + ", ".join(report.others),
            err=True,
        )


def _relative(path: Path, root: Path) -> str:
    try:
        return path.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return str(path)


# -- scholarly formats (copkg.scholarly) ------------------------------------------------------


@main.group()
def cite() -> None:
    """Bibliographies: import a study's references from BibTeX or CSL-JSON."""


@cite.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--study", "study_id", required=True, metavar="ID", help="The study citing them.")
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Turtle file to write (default: data/studies/ID/references-imported.ttl).",
)
@root_option
def cite_import(settings: Settings, file: Path, study_id: str, output: Path | None) -> None:
    """Import FILE (.bib or CSL-JSON .json) as FaBiO works cited (CiTO) by study ID; a work
    the corpus has already, by DOI, is linked instead. Nothing is written on any problem."""
    # deferred: saves a measured start-up cost (`import copkg.cli` 0.7-1.6 s, 2.8-6 s
    # with every command's modules); each command loads what it runs
    from copkg.scholarly.bibliography import import_bibliography

    try:
        outcome = import_bibliography(settings, file, study_id, output)
    except CopkgError as error:
        fail(error)
    click.echo(
        f"wrote {_relative(outcome.path, settings.root)}: {len(outcome.created)} new works, "
        f"{len(outcome.linked)} linked to works already in the corpus"
    )
    for work in outcome.linked:
        click.echo(f"  linked {short(work)}")


@main.group()
def export() -> None:
    """Export the corpus in scholarly formats (nanopublications, ORKG CSV, JSON-LD)."""


def _write_output(data: bytes, output: Path | None) -> None:
    """Write an export to `output` (atomically) or to stdout."""
    if output is None:
        sys.stdout.buffer.write(data)
        sys.stdout.flush()
        return
    # deferred: saves a measured start-up cost (`import copkg.cli` 0.7-1.6 s, 2.8-6 s
    # with every command's modules); each command loads what it runs
    from copkg.rdf_io import atomic_write

    atomic_write(output, data)
    click.echo(f"wrote {output}", err=True)


@export.command("nanopub")
@click.option("--study", "study_id", required=True, metavar="ID")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="TriG file to write (default: stdout).")  # fmt: skip
@click.option("--curator", metavar="IRI", default=None,
              help="Who the publication info attributes them to (e.g. an ORCID IRI); "
              "default: copkg.")  # fmt: skip
@click.option(
    "--key",
    "key",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="Sign with this RSA private key (PEM); unsigned without.",
)
@click.option("--orcid", default=None, help="The signer's ORCID IRI (with --key).")
@click.option("--name", default=None, help="The signer's name (with --key).")
@root_option
def export_nanopub(
    settings: Settings,
    study_id: str,
    output: Path | None,
    curator: str | None,
    key: Path | None,
    orcid: str | None,
    name: str | None,
) -> None:
    """A study's findings as nanopublications (TriG), one a finding: assertion, provenance
    (quotes, pages, voice, study) and publication info, checked with the nanopub library."""
    # deferred: saves a measured start-up cost (`import copkg.cli` 0.7-1.6 s, 2.8-6 s
    # with every command's modules); each command loads what it runs
    from copkg.scholarly.nanopub import (
        Signer,
        check_nanopubs,
        export_nanopubs,
        sign_nanopubs,
        to_trig,
    )

    if key is not None and not (orcid and name):
        raise click.UsageError("--key needs --orcid and --name (the signer)")
    try:
        dataset = export_nanopubs(settings, study_id, curator=curator or orcid)
        count = check_nanopubs(dataset)
        if key is not None:
            dataset = sign_nanopubs(dataset, Signer.from_pem(key, str(orcid), str(name)))
        _write_output(to_trig(dataset), output)
    except CopkgError as error:
        fail(error)
    click.echo(f"{count} nanopublications{' (signed)' if key else ''}, well-formed", err=True)


@export.command("orkg")
@click.option("--study", "studies", multiple=True, metavar="ID",
              help="Export this study (repeatable); default: every study.")  # fmt: skip
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="CSV file to write (default: stdout).")  # fmt: skip
@click.option("--research-field", default=None, help="ORKG research field (label or ID).")
@click.option("--research-problem", default=None, help="The contributions' research problem.")
@root_option
def export_orkg(
    settings: Settings,
    studies: tuple[str, ...],
    output: Path | None,
    research_field: str | None,
    research_problem: str | None,
) -> None:
    """Studies and their findings as a CSV for ORKG's bulk paper import: one row a finding
    (a contribution of its study's paper), one column per predicate."""
    # deferred: saves a measured start-up cost (`import copkg.cli` 0.7-1.6 s, 2.8-6 s
    # with every command's modules); each command loads what it runs
    from copkg.scholarly import orkg

    try:
        header, rows = orkg.orkg_rows(
            settings,
            list(studies) or None,
            research_field or orkg.DEFAULT_FIELD,
            research_problem or orkg.DEFAULT_PROBLEM,
        )
        _write_output(orkg.to_csv(header, rows).encode("utf-8"), output)
    except CopkgError as error:
        fail(error)
    click.echo(f"{len(rows)} contributions, {len(header)} columns", err=True)


@export.command("jsonld")
@click.option("--study", "study_id", required=True, metavar="ID")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="JSON-LD file to write (default: stdout).")  # fmt: skip
@click.option("--inline-context", is_flag=True,
              help="Embed the @context instead of referring to its published URL.")  # fmt: skip
@root_option
def export_jsonld(
    settings: Settings, study_id: str, output: Path | None, inline_context: bool
) -> None:
    """A study's named graph as JSON-LD compacted with copkg's published @context
    (https://w3id.org/copkg/ns/context.jsonld, served by `copkg serve` at /ns/context.jsonld)."""
    # deferred: saves a measured start-up cost (`import copkg.cli` 0.7-1.6 s, 2.8-6 s
    # with every command's modules); each command loads what it runs
    from copkg.scholarly.jsonld import export_jsonld as run_export

    try:
        text = run_export(settings, study_id, inline_context)
    except CopkgError as error:
        fail(error)
    _write_output(text.encode("utf-8"), output)


if __name__ == "__main__":
    main()
