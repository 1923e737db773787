"""The copkg command: query formats, named-query parameters, and errors as file:line lines
with exit codes (1: the data is wrong, 2: an input cannot be read), never a traceback."""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from conftest import needs_validation
from rdflib import Graph, URIRef
from rdflib import Literal as RDFLiteral
from rdflib.term import Node

from copkg.cli import main
from copkg.cli.output import table
from copkg.config import Settings

COUNT_CLASSES = "SELECT (COUNT(?c) AS ?n) WHERE { ?c a owl:Class }"


def invoke(runner: CliRunner, settings: Settings, *args: str) -> Result:
    return runner.invoke(main, [*args, "--root", str(settings.root)], catch_exceptions=False)


def assert_clean_failure(result: Result, code: int) -> None:
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output


@pytest.mark.parametrize("fmt", ["table", "json", "csv", "tsv"])
def test_query_formats(runner: CliRunner, built: Settings, fmt: str) -> None:
    result = invoke(runner, built, "query", "-e", COUNT_CLASSES, "--format", fmt)
    assert result.exit_code == 0, result.output
    out = result.stdout
    if fmt == "json":
        count = int(json.loads(out)["results"]["bindings"][0]["n"]["value"])
    elif fmt == "csv":
        rows = list(csv.reader(io.StringIO(out)))
        assert rows[0] == ["n"]
        count = int(rows[1][0])
    elif fmt == "tsv":
        lines = out.splitlines()
        assert lines[0] == "?n"
        count = int(lines[1])
    else:
        lines = out.splitlines()
        assert lines[0].strip() == "n" and lines[-1] == "(1 row)"
        count = int(lines[2])
    assert count > 10


def test_table_uses_prefixed_names(runner: CliRunner, built: Settings) -> None:
    query = "SELECT ?c WHERE { VALUES ?c { copkg:Finding } }"
    result = invoke(runner, built, "query", "-e", query)
    assert result.exit_code == 0, result.output
    assert "copkg:Finding" in result.stdout


def test_a_query_file_takes_parameters(runner: CliRunner, built: Settings, tmp_path: Path) -> None:
    path = tmp_path / "count.rq"
    path.write_text(
        "#+ summary: How many things of a type\n"
        "SELECT (COUNT(?x) AS ?n) WHERE { ?x a ?_type_iri }\n"
    )
    classes = invoke(
        runner, built, "query", str(path), "--param", "type=owl:Class", "--format", "csv"
    )
    assert classes.exit_code == 0, classes.output
    assert int(classes.stdout.splitlines()[1]) > 10
    nothing = invoke(
        runner,
        built,
        "query",
        str(path),
        "--param",
        "type=http://example.org/Nothing",
        "--format",
        "csv",
    )
    assert nothing.stdout.splitlines()[1] == "0"


def test_the_readme_example(runner: CliRunner, built: Settings) -> None:
    path = built.queries_dir / "risky-roles.rq"
    if not path.is_file():
        pytest.skip("queries/risky-roles.rq is not written yet")
    result = invoke(runner, built, "query", str(path), "--param", "controlMode=copkg:InputControl")
    assert result.exit_code == 0, result.output
    assert result.stdout.rstrip().endswith(("row)", "rows)"))


def test_construct_prints_turtle(runner: CliRunner, built: Settings) -> None:
    query = "CONSTRUCT WHERE { copkg:Finding a ?type }"
    result = invoke(runner, built, "query", "-e", query)
    assert result.exit_code == 0, result.output
    assert len(Graph().parse(data=result.stdout, format="turtle")) >= 1
    as_csv = invoke(runner, built, "query", "-e", query, "--format", "csv")
    assert_clean_failure(as_csv, 2)
    assert "Turtle" in as_csv.stderr


def test_a_syntax_error_says_where(runner: CliRunner, built: Settings, tmp_path: Path) -> None:
    path = tmp_path / "broken.rq"
    path.write_text("SELECT * WHERE {\n  ?s ?p ?o .\n  ?s nope:p ?o\n}\n")
    result = invoke(runner, built, "query", str(path))
    assert_clean_failure(result, 2)
    assert f"{path}:3:" in result.stderr


STUDY_PAGES = """#+ pagination: 1
#+ page_over:
#+   study: copkg:Study
SELECT ?study WHERE { ?__study_iri a copkg:Study . BIND (?__study_iri AS ?study) }
"""


def test_query_pages(runner: CliRunner, built: Settings, tmp_path: Path) -> None:
    listed = invoke(
        runner, built, "query", "-e", "SELECT ?s WHERE { ?s a copkg:Study } ORDER BY ?s"
    )
    studies = [line.split()[0] for line in listed.stdout.splitlines()[2:-1]]
    assert studies, listed.output
    path = tmp_path / "studies.rq"
    path.write_text(STUDY_PAGES)
    first = invoke(runner, built, "query", str(path), "--format", "csv")
    assert first.exit_code == 0, first.output
    assert first.stderr.startswith(f"page 1 of {len(studies)} ")
    last = invoke(runner, built, "query", str(path), "--page", str(len(studies)))
    assert last.exit_code == 0, last.output
    assert studies[-1] in last.stdout and "the last page" in last.stderr
    past = invoke(runner, built, "query", str(path), "--page", str(len(studies) + 1))
    assert_clean_failure(past, 2)
    assert "past the end" in past.stderr
    rows = tmp_path / "rows.rq"
    rows.write_text("#+ pagination: 2\nSELECT ?c WHERE { ?c a owl:Class } ORDER BY ?c\n")
    second = invoke(runner, built, "query", str(rows), "--page", "2", "--format", "csv")
    assert second.exit_code == 0, second.output
    assert len(second.stdout.splitlines()) == 3  # header and two rows
    assert second.stderr.startswith("page 2 (2 rows a page); --page 3")
    assert_clean_failure(invoke(runner, built, "query", str(rows), "--page", "0"), 2)
    unpaged = invoke(runner, built, "query", "-e", "ASK {}", "--page", "2")
    assert_clean_failure(unpaged, 2)
    assert "no pages" in unpaged.stderr


@pytest.mark.parametrize(
    "args, words",
    [
        (["--param", "type=not an iri"], "parameter type"),
        (["--param", "colour=red"], "colour"),
        ([], "required"),
        (["--param", "novalue"], "NAME=VALUE"),
    ],
)
def test_bad_parameters_are_refused(
    runner: CliRunner, built: Settings, tmp_path: Path, args: list[str], words: str
) -> None:
    path = tmp_path / "q.rq"
    path.write_text("SELECT ?x WHERE { ?x a ?_type_iri }\n")
    result = invoke(runner, built, "query", str(path), *args)
    assert_clean_failure(result, 2)
    assert words in result.stderr


def test_query_usage_errors(runner: CliRunner, built: Settings, tmp_path: Path) -> None:
    assert_clean_failure(invoke(runner, built, "query"), 2)
    assert_clean_failure(invoke(runner, built, "query", "x.rq", "-e", "ASK {}"), 2)
    missing = invoke(runner, built, "query", str(tmp_path / "missing.rq"))
    assert_clean_failure(missing, 2)
    assert "no such query file" in missing.stderr


def test_service_is_refused(runner: CliRunner, built: Settings) -> None:
    query = "SELECT * WHERE { SERVICE <http://127.0.0.1:9/sparql> { ?s ?p ?o } }"
    result = invoke(runner, built, "query", "-e", query)
    assert_clean_failure(result, 2)  # a query refused as written, as /sparql's 400
    assert "is not allowed" in result.stderr


def test_build_reports_a_syntax_error_with_file_and_line(
    runner: CliRunner, settings: Settings
) -> None:
    study = settings.data_dir / "studies" / "broken"
    study.mkdir(parents=True)
    (study / "broken.ttl").write_text("@prefix m: <http://example.org/> .\n\nm:a m:b .\n")
    result = invoke(runner, settings, "build")
    assert_clean_failure(result, 2)
    assert f"{study / 'broken.ttl'}:3:" in result.stderr
    assert not settings.build_dir.exists()


def test_validate_a_file_that_does_not_parse(
    runner: CliRunner, settings: Settings, tmp_path: Path
) -> None:
    path = tmp_path / "bad.ttl"
    path.write_text('@prefix ex: <http://example.org/> .\nex:a ex:b "open .\n')
    result = invoke(runner, settings, "validate", str(path))
    assert_clean_failure(result, 2)
    assert f"{path}:2:" in result.stderr


def test_validate_a_file_with_violations(
    runner: CliRunner, settings: Settings, tmp_path: Path
) -> None:
    needs_validation()
    path = tmp_path / "case.ttl"
    path.write_text(
        "@prefix copkg: <https://w3id.org/copkg/ontology#> .\n"
        "<https://w3id.org/copkg/id/bad/case> a copkg:Case .\n"
    )
    result = invoke(runner, settings, "validate", str(path))
    assert_clean_failure(result, 1)
    assert "Violation" in result.stderr


def test_validate_checks_the_named_queries(
    runner: CliRunner, settings: Settings, tmp_path: Path
) -> None:
    shutil.rmtree(settings.queries_dir)
    settings.queries_dir.mkdir()
    (settings.queries_dir / "typo.rq").write_text("#+ sumary: typo\nSELECT * {}\n")
    path = tmp_path / "empty.ttl"
    path.write_text("")
    result = invoke(runner, settings, "validate", str(path))
    assert_clean_failure(result, 2)
    assert f"{settings.queries_dir / 'typo.rq'}:1:" in result.stderr


def test_no_project_is_a_clear_error(
    runner: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("COPKG_ROOT", raising=False)
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(main, ["query", "-e", "ASK {}"])
    assert result.exit_code != 0
    assert "COPKG_ROOT" in result.stderr and "Traceback" not in result.output


def test_serve_is_documented(runner: CliRunner) -> None:
    result = runner.invoke(main, ["serve", "--help"])
    assert result.exit_code == 0
    assert "--port" in result.stdout and "--workers" in result.stdout


def test_build_validate_and_query_do_not_import_flask(built: Settings) -> None:
    script = (
        "import sys\n"
        "from copkg.cli import main\n"
        "try:\n"
        "    main(['query', '-e', 'ASK { ?s ?p ?o }', '--root', sys.argv[1]])\n"
        "except SystemExit:\n"
        "    pass\n"
        "assert 'flask' not in sys.modules, 'flask was imported'\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, str(built.root)],
        check=False,
        capture_output=True,
        text=True,
        env={**os.environ, "COPKG_ROOT": str(built.root)},
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "yes"


@pytest.mark.java
def test_reason_reports_consistency_and_classes(
    runner: CliRunner, settings: Settings, tmp_path: Path
) -> None:
    from copkg.reasoning.owl import JavaMissingError, find_java

    try:
        find_java()
    except JavaMissingError as error:
        pytest.skip(str(error))
    study = settings.root / "data" / "studies" / "tiny"
    study.mkdir(parents=True, exist_ok=True)
    (study / "tiny.ttl").write_text(
        "PREFIX copkg: <https://w3id.org/copkg/ontology#>\n"
        "<https://w3id.org/copkg/id/tiny/c> a copkg:Collective ;\n"
        "  copkg:hasForm copkg:CommunityOfPracticeForm .\n",
        encoding="utf-8",
    )
    for other in (settings.root / "data" / "studies").iterdir():
        if other.name != "tiny":
            shutil.rmtree(other)
    result = invoke(runner, settings, "reason")
    assert result.exit_code == 0, result.output
    assert "consistent" in result.output
    assert "<https://w3id.org/copkg/id/tiny/c> a copkg:CommunityOfPractice" in result.output

    (study / "bad.ttl").write_text(
        "PREFIX copkg: <https://w3id.org/copkg/ontology#>\n"
        "<https://w3id.org/copkg/id/tiny/c> a copkg:Quote .\n",
        encoding="utf-8",
    )
    result = invoke(runner, settings, "reason")
    assert_clean_failure(result, 1)


def test_query_stops_at_the_time_limit(runner: CliRunner, built: Settings) -> None:
    """`copkg query` ran a slow query for 77 s against the 10 s limit: it runs in a process
    killed at COPKG_QUERY_TIMEOUT, as the service's query workers are."""
    import time

    slow = "SELECT (COUNT(*) AS ?n) WHERE { ?a ?b ?c . ?d ?e ?f . ?g ?h ?i }"
    start = time.monotonic()
    result = runner.invoke(
        main, ["query", "-e", slow, "--root", str(built.root)], env={"COPKG_QUERY_TIMEOUT": "1"}
    )
    assert time.monotonic() - start < 20
    assert_clean_failure(result, 1)
    assert "longer than the limit of 1 s" in result.output
    quick = runner.invoke(main, ["query", "-e", "ASK {}", "--root", str(built.root)],
                          env={"COPKG_QUERY_TIMEOUT": "1"})  # fmt: skip
    assert quick.exit_code == 0 and quick.output.strip() == "yes", quick.output


def test_a_named_query_by_name(runner: CliRunner, built: Settings) -> None:
    result = invoke(runner, built, "query", "risky-roles", "--param", "controlMode=copkg:Clan")
    assert result.exit_code == 0, result.output
    assert result.stdout.rstrip().endswith(("row)", "rows)"))
    by_path = invoke(
        runner,
        built,
        "query",
        str(built.queries_dir / "risky-roles.rq"),
        "--param",
        "controlMode=copkg:Clan",
    )
    assert by_path.stdout == result.stdout
    unknown = invoke(runner, built, "query", "risky-rolez")
    assert_clean_failure(unknown, 2)
    assert "no such query file or named query" in unknown.stderr
    names = sorted(p.stem for p in built.queries_dir.glob("*.rq"))
    assert ", ".join(names) in unknown.stderr


QUOTE = (
    "Management is thus present at most general meetings of the communities but "
    "interestingly, this is less detrimental to community development at Electrical than it "
    "was at Comp."
)


def _rows() -> tuple[list[str], list[dict[str, Node]]]:
    role = URIRef("https://w3id.org/copkg/id/josserand2004/facilitation")
    other = URIRef("https://w3id.org/copkg/id/josserand2004/support")
    rows: list[dict[str, Node]] = [
        {"role": role, "roleLabel": RDFLiteral("Facilitation"), "quote": RDFLiteral(QUOTE)},
        {"role": other, "quote": RDFLiteral("short")},
    ]
    return ["role", "roleLabel", "quote"], rows


def test_a_table_fits_the_width() -> None:
    variables, rows = _rows()
    text = table(variables, rows, 60)
    lines = text.splitlines()
    assert all(len(line) <= 60 for line in lines), text
    assert lines[0].split() == ["role", "quote"]  # the IRI column left out for its label
    assert "Facilitation" in text and "josserand2004/facilitation" not in text
    assert "j04:support" in text  # no label: the IRI stands in its place
    assert QUOTE not in text  # wrapped over several lines, every word kept in order
    assert QUOTE in " ".join(line[len("Facilitation  ") :].strip() for line in lines[2:-2])
    wide = table(variables, rows, 60, wide=True)
    assert wide.splitlines()[0].split() == variables
    assert QUOTE in wide and max(len(line) for line in wide.splitlines()) > 60


def test_a_table_too_wide_for_columns_prints_blocks() -> None:
    variables = [f"column{i}" for i in range(8)]
    rows: list[dict[str, Node]] = [{v: RDFLiteral(f"{v} {QUOTE}") for v in variables}]
    text = table(variables, rows, 50)
    assert all(len(line) <= 50 for line in text.splitlines()), text
    assert text.splitlines()[0].startswith("column0  ")
    assert text.endswith("(1 row)")


def test_query_tables_fit_the_terminal(runner: CliRunner, built: Settings) -> None:
    args = ["query", "risky-roles", "--param", "controlMode=copkg:InputControl"]
    fitted = runner.invoke(main, [*args, "--root", str(built.root)], env={"COLUMNS": "90"})
    assert fitted.exit_code == 0, fitted.output
    assert max(len(line) for line in fitted.stdout.splitlines()) <= 90
    wide = runner.invoke(main, [*args, "--wide", "--root", str(built.root)], env={"COLUMNS": "90"})
    assert wide.exit_code == 0, wide.output
    assert max(len(line) for line in wide.stdout.splitlines()) > 90
    assert wide.stdout.splitlines()[0].split()[:2] == ["role", "roleLabel"]


@pytest.mark.parametrize(
    "text, line, column, words",
    [
        ("SELEC ?x WHERE { ?x a copkg:Study }", 1, 1, "expected SELECT, ASK, CONSTRUCT"),
        ("SELECT * WHERE {\n  ?s ?p ?o .\n  ?s nope:p ?o\n}\n", 3, 6, "unknown prefix nope:"),
    ],
)
def test_syntax_errors_are_the_service_s(
    runner: CliRunner, built: Settings, tmp_path: Path, text: str, line: int, column: int,
    words: str,
) -> None:  # fmt: skip
    from copkg.errors import CopkgError
    from copkg.querying.safety import analyse_query

    with pytest.raises(CopkgError) as service:
        analyse_query(text, graphs=())
    assert f"at line {line}, column {column}" in service.value.message
    path = tmp_path / "broken.rq"
    path.write_text(text)
    for where, args in ((str(path), [str(path)]), ("<expression>", ["-e", text])):
        result = invoke(runner, built, "query", *args)
        assert_clean_failure(result, 2)
        expected = (
            f"{where}:{line}:{column}: SPARQL syntax error: {service.value.problems[0].message}"
        )
        assert result.stderr.strip() == expected
        assert words in result.stderr and "\\u{" not in result.stderr


def test_an_iri_parameter_that_names_nothing_warns(runner: CliRunner, built: Settings) -> None:
    nope = invoke(runner, built, "query", "risky-roles", "--param", "controlMode=copkg:Nope")
    assert nope.exit_code == 0, nope.output
    assert "controlMode=copkg:Nope: no such resource in the graph" in nope.stderr
    clan = invoke(runner, built, "query", "risky-roles", "--param", "controlMode=copkg:Clan")
    assert clan.exit_code == 0 and "no such resource" not in clan.stderr


def test_validate_a_shipped_file_says_what_is_not_loaded(
    runner: CliRunner, settings: Settings
) -> None:
    needs_validation()
    path = settings.data_dir / "studies" / "wenger-snyder2000" / "study.ttl"
    alone = invoke(runner, settings, "validate", str(path))
    assert_clean_failure(alone, 1)
    lines = alone.stderr.splitlines()
    violations = [line for line in lines if "Violation" in line]
    assert violations and all(line.startswith(f"{path}:") for line in violations), lines
    assert int(violations[0].split(":")[1]) > 0
    assert "links to j04:study of study josserand2004, which is not loaded" in alone.stderr
    assert "`copkg validate` for the whole corpus" in lines[-1]
    every = sorted(str(p) for p in (settings.data_dir / "studies").glob("*/*.ttl"))
    together = invoke(runner, settings, "validate", *every)
    assert together.exit_code == 0, together.output
