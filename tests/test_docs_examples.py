"""Every `copkg ...` example of README.md and docs/*.md runs on the shipped data.

The commands are read from the ```sh blocks (and the `$ copkg` lines of ```console blocks) and
run with the CLI in a built copy of the project, from its root, as a reader would type them:
exit 0 expected. Those that need a server or stand for a value (URL, ID, PATH, my.ttl) are
listed and skipped; those that run HermiT (Java, about half a minute) run in the `java` test;
those that change the corpus (new-study, add) are replayed in copies of their own: the README's
scaffold, and docs/adding-a-study.md's worked example as written, in a copy without its study.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from conftest import ROOT, Reasoner, copy_project

from copkg.cli import main

DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
PLACEHOLDERS = {"URL", "ID", "PATH", "FILE", "QUERY_URL", "GSP_URL", "UPDATE_URL", "...", "my.ttl"}
SERVERS = {"serve", "push"}
CHANGES_CORPUS = {"new-study", "add"}
#: What runs HermiT unless told not to (Java, 15-35 s a run).
HERMIT = {"build", "reason"}
WORKED = "josserand2004-insurance"


@dataclass(frozen=True)
class Example:
    """One documented command: where it is written, and its words after `copkg`."""

    file: str
    line: int
    args: tuple[str, ...]

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: copkg {shlex.join(self.args)}"


def examples() -> list[Example]:
    """The `copkg` commands of the documents' ```sh and ```console blocks, in order."""
    found = []
    for path in DOCUMENTS:
        block: str | None = None
        pending, start = "", 0
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if line.startswith("```"):
                block = line[3:].strip() if block is None else None
                continue
            if block not in ("sh", "console"):
                continue
            text = line.strip()
            if block == "console":
                if not text.startswith("$ "):
                    continue
                text = text[2:]
            if not pending:
                start = number
            if text.endswith("\\"):
                pending += text[:-1] + " "
                continue
            text, pending = pending + text, ""
            if text.startswith("copkg "):
                words = shlex.split(text, comments=True)
                found.append(Example(path.relative_to(ROOT).as_posix(), start, tuple(words[1:])))
    return found


def kind(example: Example) -> str:
    """How the test treats an example: run, hermit, corpus (replayed), or why it is skipped."""
    args = set(example.args)
    if args & PLACEHOLDERS:
        return "skip: stands for a value of the reader's"
    if example.args[0] in SERVERS or "--store" in args:
        return "skip: needs a server"
    if example.args[0] in CHANGES_CORPUS:
        return "corpus"
    if example.args[0] in HERMIT and "--skip-owl" not in args:
        return "hermit"
    return "run"


ALL = examples()


def test_the_documents_have_examples() -> None:
    kinds = {kind(e) for e in ALL}
    assert {"run", "hermit", "corpus"} <= kinds, kinds
    # every example is run somewhere, or skipped for one of the reasons above
    assert all(kind(e) in ("run", "hermit", "corpus") or kind(e).startswith("skip:") for e in ALL)
    replayed = {e.args for e in ALL if kind(e) == "corpus"}
    assert replayed <= {
        ("new-study", "smith2010"),
        ("add", "--dry-run", "data/studies/smith2010"),
        ("add", "data/studies/smith2010"),
        ("new-study", WORKED),
        ("add", "--dry-run", f"data/studies/{WORKED}"),
        ("add", f"data/studies/{WORKED}"),
    }, replayed


def run(runner: CliRunner, root: Path, args: tuple[str, ...] | list[str]) -> Result:
    return runner.invoke(main, list(args), env={"COPKG_ROOT": str(root)}, catch_exceptions=False)


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A copy of the project, built once (without HermiT: see test_examples_with_hermit)."""
    root = copy_project(tmp_path_factory.mktemp("docs"))
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(root)
        for name in [n for n in os.environ if n.startswith("COPKG_")]:
            patch.delenv(name)
        built = run(CliRunner(), root, ["build", "--skip-owl"])
        assert built.exit_code == 0, built.output
        yield root


@pytest.mark.parametrize("example", [e for e in ALL if kind(e) == "run"], ids=str)
@pytest.mark.usefixtures("rdflib_sparql_fast")  # `copkg validate --engine pyshacl`
def test_example(project: Path, example: Example, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(project)
    result = run(CliRunner(), project, example.args)
    assert result.exit_code == 0, f"{example}\n{result.output}"
    assert "Traceback" not in result.output


@pytest.mark.java
@pytest.mark.slow
@pytest.mark.parametrize("example", [e for e in ALL if kind(e) == "hermit"], ids=str)
def test_examples_with_hermit(
    project: Path, example: Example, monkeypatch: pytest.MonkeyPatch, hermit_once: Reasoner
) -> None:
    """HermiT's run over the shipped data is shared (see `hermit_once`): `copkg build` and
    `copkg reason` give it the triples tests/test_consistency.py gives it."""
    from copkg.reasoning.owl import JavaMissingError, find_java

    try:
        find_java()
    except JavaMissingError as error:
        pytest.skip(str(error))
    monkeypatch.chdir(project)
    result = run(CliRunner(), project, example.args)
    assert result.exit_code == 0, f"{example}\n{result.output}"


def scaffolds() -> list[list[Example]]:
    """Each `new-study smith2010` example with the `add` examples that follow it."""
    runs: list[list[Example]] = []
    for example in ALL:
        if example.args == ("new-study", "smith2010"):
            runs.append([example])
        elif runs and example.file == runs[-1][0].file and "data/studies/smith2010" in example.args:
            runs[-1].append(example)
    return runs


@pytest.mark.parametrize("steps", scaffolds(), ids=lambda steps: str(steps[0]))
def test_the_scaffold(
    steps: list[Example], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`new-study smith2010`, then `add`: the template is refused until its TODO values are
    filled in (the `$EDITOR` step between them), and it stays a draft."""
    root = copy_project(tmp_path)
    monkeypatch.chdir(root)
    runner = CliRunner()
    created = run(runner, root, steps[0].args)
    assert created.exit_code == 0, created.output
    assert (root / "data/studies/smith2010/study.ttl").is_file()
    for example in steps[1:]:
        result = run(runner, root, example.args)
        assert result.exit_code == 1, f"{example}\n{result.output}"
        assert "TODO" in result.output
    assert (root / "data/studies/smith2010/DRAFT").is_file()


def test_the_worked_example_replays(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """docs/adding-a-study.md's worked example, as written, in a copy of the project without
    its study: scaffold, the bundle's files written in (what the guide shows being filled
    in), check, add, and the cross-study question it ends with."""
    shipped = ROOT / "data" / "studies" / WORKED
    root = copy_project(tmp_path)
    shutil.rmtree(root / "data" / "studies" / WORKED)
    monkeypatch.chdir(root)
    guide = [e for e in ALL if e.file == "docs/adding-a-study.md" and WORKED in " ".join(e.args)]
    assert [e.args[0] for e in guide] == ["new-study", "add", "add"], guide
    runner = CliRunner()
    scaffold = run(runner, root, guide[0].args)
    assert scaffold.exit_code == 0, scaffold.output
    folder = root / "data" / "studies" / WORKED
    (folder / "study.ttl").unlink()
    for path in shipped.glob("*.ttl"):
        shutil.copy(path, folder / path.name)
    dry = run(runner, root, guide[1].args)
    assert dry.exit_code == 0, dry.output
    assert "dry run: nothing changed" in dry.output and (folder / "DRAFT").exists()
    added = run(runner, root, guide[2].args)
    assert added.exit_code == 0, added.output
    assert f"added study {WORKED}" in added.output and not (folder / "DRAFT").exists()
    question = next(
        e for e in ALL if e.file == "docs/adding-a-study.md" and "risk-observations" in str(e)
    )
    answer = run(runner, root, [*question.args, "--format", "csv"])
    assert answer.exit_code == 0, answer.output
    assert "Josserand (2004), The Network Organization" in answer.stdout
    assert re.search(r"risk of systematization", answer.stdout)
