"""The commands on the project: build, reason, validate, query, serve, new-study, add, push."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import click
import pyoxigraph as ox

from copkg.cli.base import EXIT_FAILED, fail, main, relative, root_option, store_option
from copkg.cli.output import FORMATS, page_note, render, terminal_width
from copkg.config import Settings
from copkg.errors import CopkgError, Problem


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
    # deferred: saves a measured start-up cost (see the query command)
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
        if outcome.conforms:
            click.echo(outcome.text.rstrip() or "Conforms.")  # warnings, if any, are in the text
            return
        lines = violation_lines(settings, outcome, list(files)) if files else None
    except CopkgError as error:
        fail(error)
    click.echo("\n".join(lines) if lines else outcome.text.rstrip(), err=True)
    sys.exit(EXIT_FAILED)


_NOT_LOADED = "validate with that study's files too, or `copkg validate` for the whole corpus"


def violation_lines(settings: Settings, outcome: Any, files: list[Path]) -> list[str]:
    """`copkg validate FILE...`'s violations as `file:line: message` lines, each with a note
    where its value or focus belongs to a study whose files were not given (not loaded)."""
    # deferred: saves a measured start-up cost (see the query command)
    from rdflib import URIRef

    # deferred: saves a measured start-up cost (the pipeline's checks load pyshacl's engine)
    from copkg.pipeline.check import FILES_GRAPH
    from copkg.pipeline.steps import Sources, shacl_problems, source_files
    from copkg.pipeline.study_view import FileOnDisk, locate, study_of
    from copkg.rdf_io import read_quads

    given = {path.resolve() for path in files}
    quads = [quad for path in files for quad in read_quads(path, FILES_GRAPH)]
    problems = shacl_problems(outcome, Sources(graphs={FILES_GRAPH: files}, quads=quads))
    described: dict[str, set[str]] = {}  # IRI: the files not given that describe it
    for paths in source_files(settings).values():
        for path in paths:
            if path.resolve() not in given and path not in settings.ontology_files():
                for quad in read_quads(path, FILES_GRAPH):
                    if isinstance(quad.subject, ox.NamedNode):
                        described.setdefault(quad.subject.value, set()).add(
                            relative(path, settings.root)
                        )
    lines, noted = [], 0
    results = outcome.report.violations if outcome.report is not None else []
    for problem, result in zip(problems, results, strict=True):
        focus = _iri(result.focus)
        if problem.file is None and focus is not None:
            problem.file, problem.line = locate([FileOnDisk(p) for p in files], URIRef(focus))
        lines.append(str(problem))
        for role, name in (("links to", result.value), ("is about", result.focus)):
            iri = _iri(name)
            elsewhere = sorted(described.get(iri, ())) if iri is not None else []
            if iri is not None and elsewhere:
                study = study_of(URIRef(iri)) or "the corpus"
                shown = ", ".join(elsewhere[:_SHOW_FILES])
                more = len(elsewhere) - _SHOW_FILES
                lines.append(
                    f"  {role} {name} of study {study}, which is not loaded (described in "
                    f"{shown}{f' and {more} more' if more > 0 else ''}): {_NOT_LOADED}"
                )
                noted += 1
                break
    summary = f"{len(problems)} violation{'s' if len(problems) != 1 else ''}"
    if noted:
        summary += f"; {noted} involve studies not loaded: {_NOT_LOADED}"
    return [*lines, summary]


_SHOW_FILES = 3


def _iri(name: str | None) -> str | None:
    """The IRI a SHACL report's focus or value names (`<iri>` or a prefixed name)."""
    # deferred: saves a measured start-up cost (see the query command)
    from copkg.namespaces import PREFIXES

    if not name:
        return None
    if name.startswith("<") and name.endswith(">"):
        return name[1:-1]
    prefix, colon, local = name.partition(":")
    return PREFIXES[prefix] + local if colon and prefix in PREFIXES else None


@main.command()
@click.argument("file", required=False, metavar="NAME|FILE")
@click.option("-e", "--expression", help="SPARQL text to run instead of a FILE.")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="table", show_default=True)
@click.option(
    "--wide",
    is_flag=True,
    help="--format table: every column, each cell on one line (by default the table fits "
    "the terminal: long cells wrapped, IRI columns left out beside their labels).",
)
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
    file: str | None,
    expression: str | None,
    fmt: str,
    wide: bool,
    params: tuple[str, ...],
    page: int | None,
) -> None:
    """Run a SPARQL query against the build, building it first if needed, or against the
    store given with --store (or COPKG_STORE_URL): a named query by NAME (queries/NAME.rq),
    a FILE.rq, or -e TEXT. A paged query prints one page (--page N) and says on stderr
    which, and how many there are. An IRI parameter that names nothing in the graph is
    warned about on stderr."""
    # deferred: saves a measured start-up cost (`import copkg.cli` 0.7-1.6 s, 2.8-6 s
    # with every command's modules); each command loads what it runs
    from copkg.querying.deadline import call_with_deadline
    from copkg.querying.named_queries import parse_named_query

    if (file is None) == (expression is None):
        raise click.UsageError("give either a query NAME or FILE, or -e 'SPARQL', not both")
    raw: dict[str, str] = {}
    for item in params:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise click.UsageError(f"--param {item!r}: write NAME=VALUE")
        raw[name.strip()] = value
    where = file or "<expression>"
    try:
        if file is not None:
            path = query_path(settings, file)
            where = str(path) if path.name != f"{file}.rq" else relative(path, Path.cwd())
            text = read_query(path)
        else:
            path, text = Path("<expression>.rq"), str(expression)
        check_query(settings, text)
        named = parse_named_query(path, text)
        if page is not None and not named.pagination:
            raise CopkgError(
                "--page: the query has no pages (no `pagination:` in its header)", status=400
            )
        width = terminal_width()
        # in a process killed at COPKG_QUERY_TIMEOUT, as the service's query workers are
        output, notes = call_with_deadline(
            run_query, (settings, named, raw, page, fmt, wide, width), settings.query_timeout
        )
    except CopkgError as error:
        fail(error, where)
    click.echo(output, nl=not output.endswith("\n"))
    for note in notes:
        click.echo(note, err=True)


def query_path(settings: Settings, file: str) -> Path:
    """The .rq file `copkg query` names: a path, else a named query of queries/ by its name
    (the file's stem); neither is a 400 listing the named queries."""
    path = Path(file)
    if path.is_file():
        return path
    named = settings.queries_dir / f"{file}.rq"
    if "/" not in file and "\\" not in file and named.is_file():
        return named
    names = sorted(p.stem for p in settings.queries_dir.glob("*.rq"))
    known = f"; the named queries: {', '.join(names)}" if names else ""
    what = "query file" if path.suffix == ".rq" or "/" in file else "query file or named query"
    raise CopkgError(f"no such {what}{known}", status=400)


def read_query(path: Path) -> str:
    """A query file's text; one that cannot be read is a 400 naming it."""
    try:
        return path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise CopkgError(
            "not valid UTF-8",
            status=400,
            problems=[Problem(f"not valid UTF-8 at byte offset {exc.start}")],
        ) from exc
    except OSError as exc:
        raise CopkgError(f"cannot read {path}: {exc.strerror}", status=400) from exc


def check_query(settings: Settings, text: str) -> None:
    """Read the query as the service does before it runs (copkg.querying.safety), so that a
    syntax error, an unknown prefix or a refused SERVICE gets the service's message; FROM
    clauses are checked against the store's graphs when it runs."""
    # deferred: saves a measured start-up cost (see the query command)
    from copkg.querying.safety import analyse_query

    try:
        analyse_query(
            text, graphs=None, allowed_service_endpoints=settings.allowed_service_endpoints
        )
    except CopkgError as error:
        for problem in error.problems:
            if problem.line is not None:
                problem.message = f"SPARQL syntax error: {problem.message}"
        raise


def run_query(
    conn: Any,
    settings: Settings,
    named: Any,
    raw: dict[str, str],
    page: int | None,
    fmt: str,
    wide: bool,
    width: int,
) -> tuple[str, list[str]]:
    """`copkg query` in its process: open the store (building it first if needed), then run
    the query under the time limit; the output and the notes for stderr (which page, IRI
    parameters that name nothing in the graph)."""
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
    notes = [] if at is None else [page_note(at, len(result.rows))]
    notes += unknown_iris(store, named, raw)
    return render(result, fmt, wide=wide, width=width), notes


def unknown_iris(store: Any, named: Any, raw: dict[str, str]) -> list[str]:
    """A warning for each IRI parameter given a value that no triple of the graph mentions
    (a typo gives no rows, not an error: say why)."""
    # deferred: saves a measured start-up cost (see the query command)
    from copkg.querying.named_queries import expand_iri

    warnings = []
    for param in named.parameters:
        value = raw.get(param.name)
        iri = expand_iri(value) if param.kind == "iri" and value else None
        if iri is None:
            continue
        ask = f"ASK {{ {{ <{iri}> ?p ?o }} UNION {{ ?s <{iri}> ?o }} UNION {{ ?s ?p <{iri}> }} }}"
        if not store.query(ask).boolean:
            warnings.append(f"warning: {param.name}={value}: no such resource in the graph")
    return warnings


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
    shown = relative(folder, settings.root)
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
    click.echo(f"added study {bundle.study_id}: {relative(outcome.target, settings.root)}/")
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
    for note in report.notes:
        click.echo(f"  {note}")
    if report.others:
        click.echo(
            "the server has graphs the build lacks (--prune drops them): "
            + ", ".join(report.others),
            err=True,
        )
