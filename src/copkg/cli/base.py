"""The click group every command joins, the options commands share (--root, --store), and
errors printed as `file:line: message` with the CLI's exit codes."""

from __future__ import annotations

import dataclasses
import functools
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn

import click

from copkg.config import Settings
from copkg.errors import CopkgError

#: Exit codes: 1 when the data is wrong (SHACL violations) or a step failed, 2 when an input
#: cannot be read (syntax errors, bad parameters, bad usage).
EXIT_FAILED = 1
EXIT_SYNTAX = 2


def fail(error: CopkgError, file: str | None = None) -> NoReturn:
    """Print an error as `file:line: message` lines on stderr and exit (no traceback); an
    error at one place is one `file:line:column: message` line."""
    for problem in error.problems:
        if file and problem.file is None:
            problem.file = file
    lines = [str(p) for p in error.problems]
    located = len(error.problems) == 1 and error.problems[0].line is not None
    if not located and [p.message for p in error.problems] != [error.message]:
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


def relative(path: Path, root: Path) -> str:
    """`path` relative to the project folder where it lies inside it (as written)."""
    try:
        return path.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return str(path)
