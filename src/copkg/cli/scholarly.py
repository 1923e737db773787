"""The commands on scholarly formats (copkg.scholarly): `cite import`, and `export` of
nanopublications, ORKG CSV and JSON-LD."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from copkg.cli.base import fail, main, relative, root_option
from copkg.cli.output import short
from copkg.config import Settings
from copkg.errors import CopkgError


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
        f"wrote {relative(outcome.path, settings.root)}: {len(outcome.created)} new works, "
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


@export.command("dataset")
@root_option
def export_dataset(settings: Settings) -> None:
    """Write build/copkg.nq and build/copkg.trig whole (after `copkg add`, which keeps the
    exports as segments under build/exports/ and leaves the joined files out)."""
    # deferred: saves a measured start-up cost (see copkg.cli.commands.build)
    from copkg.pipeline.open import join_exports

    try:
        digests = join_exports(settings)
    except CopkgError as error:
        fail(error)
    for name, digest in sorted(digests.items()):
        click.echo(f"{relative(settings.build_dir / name, settings.root)}  sha256 {digest}")


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
