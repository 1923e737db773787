"""The benchmark harness works: synthetic bundles pass the shapes and feed the rules, and
benchmarks/run.py runs end to end in its quickest mode."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pyoxigraph as ox
import pytest
from conftest import needs_study, needs_validation

from copkg.config import Settings
from copkg.namespaces import COPKG, INFERENCE_GRAPH, study_graph
from copkg.pipeline import steps
from copkg.store.embedded import OxigraphStore

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

import synthetic  # noqa: E402


@pytest.fixture
def corpus(tmp_path: Path) -> Settings:
    """A project with the ontology, the rules, the Josserand bundle and 3 synthetic studies."""
    needs_study()
    root = tmp_path / "project"
    for name in ("ontology", "rules", "queries"):
        shutil.copytree(ROOT / name, root / name)
    studies = root / "data" / "studies"
    # the Josserand bundle links findings of the bundles it cites: copy every shipped bundle
    for bundle in sorted((ROOT / "data" / "studies").iterdir()):
        if bundle.is_dir():
            shutil.copytree(bundle, studies / bundle.name)
    synthetic.write_corpus(studies, 3)
    return Settings.load(root, environ={})


def test_synthetic_studies_are_deterministic_and_shaped_like_the_real_bundle() -> None:
    sid, files = synthetic.study_files(7)
    assert sid == "synthetic-00007"
    assert synthetic.study_files(7) == (sid, files)
    assert set(files) == {"study", "contexts", "cases", "enactments", "themes", "references"}
    assert synthetic.study_files(8)[1] != files


def test_synthetic_studies_pass_the_shapes(corpus: Settings) -> None:
    needs_validation()
    store = OxigraphStore()
    sources = steps.load_sources(corpus, store)
    for i in range(3):
        graph = study_graph(synthetic.study_id(i))
        triples = sum(1 for q in sources.quads if q.graph_name.value == graph)
        assert 900 < triples < 1600, f"{graph}: {triples} triples"
    outcome = steps.validate(corpus, sources)
    assert outcome.conforms, outcome.text
    assert "Warning" not in outcome.text, outcome.text


def test_the_rules_derive_risky_roles_in_synthetic_contexts(corpus: Settings) -> None:
    store = OxigraphStore()
    steps.load_sources(corpus, store)
    assert steps.infer(corpus, store) > 0
    graph = ox.NamedNode(str(INFERENCE_GRAPH))

    def derived(predicate: str) -> set[str]:
        found = store.native.quads_for_pattern(None, ox.NamedNode(predicate), None, graph)
        return {q.subject.value for q in found if "/synthetic-" in q.subject.value}

    contexts = derived(str(COPKG.riskyRole))
    favourability = derived(str(COPKG.favourability))
    assert contexts, "no risky role derived in a synthetic context"
    assert len(favourability) == 3 * synthetic.CASES_PER_STUDY


@pytest.mark.server
@pytest.mark.slow
def test_the_harness_runs_in_its_quickest_mode(tmp_path: Path) -> None:
    needs_study()
    out = tmp_path / "results.json"
    command = [
        sys.executable,
        str(ROOT / "benchmarks" / "run.py"),
        "--sizes",
        "2",
        "--quick",
        # the second build is the first run again (the rebuild column only times it)
        "--no-rebuild",
        # HTTP: each workload at one count of client threads (two: still concurrent), two
        # turns of 0.2 s for each server, after 0.4 s of warm-up (8 and 1 threads, five turns
        # each, took twice as long)
        "--seconds",
        "0.4",
        "--threads",
        "2",
        "--rounds",
        "2",
        "--work",
        str(tmp_path / "work"),
        "--out",
        str(out),
    ]
    oxigraph = shutil.which("oxigraph") or Path(sys.executable).parent / "oxigraph"
    if not Path(oxigraph).is_file():
        command.append("--no-http")
    done = subprocess.run(command, check=False, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    report = json.loads(out.read_text())
    (size,) = report["sizes"]
    assert size["n"] == 2
    assert size["build"]["ok"], size["build"]
    assert set(size["build"]["timings"]) >= {"load", "infer", "validate", "export"}
    assert size["build"]["peak_rss_mib"] > 0
    queries = size["latency"]["queries"]
    assert set(queries) == {p.stem for p in (ROOT / "queries").glob("*.rq")}
    assert all(q["median_ms"] > 0 for q in queries.values())
    assert size["latency"]["resource_data"]["median_ms"] > 0
    if "http" in size:
        http = size["http"]
        named = [f for label, f in http["workloads"].items() if "named queries" in label]
        assert named, sorted(http["workloads"])
        for figures in named:
            for who in ("copkg uncached", "copkg cached", "oxigraph"):
                assert figures[who]["requests"] > 0, (who, figures)
            assert set(figures["copkg uncached"]["statuses"]) == {"200"}, figures
    assert "add" in size
    assert "| N |" in done.stdout
    assert size["build"]["cpu_s"] > 0 and len(size["build"]["load_avg"]) == 3
    assert size["add"]["ok"] and size["add"]["cpu_s"] > 0, size["add"]
    # the scaling curve is drawn from the same JSON
    svg = tmp_path / "scaling.svg"
    plot = [sys.executable, str(ROOT / "benchmarks" / "plot_scaling.py"), str(out), "-o", str(svg)]
    subprocess.run(plot, check=True, timeout=60)
    drawn = svg.read_text()
    assert drawn.startswith("<svg") and drawn.count("<circle") >= 6, drawn[:500]


# -- run.py --virtuoso -------------------------------------------------------------------------


def test_the_virtuoso_option_is_wired_and_reported() -> None:
    """run.py takes --virtuoso, virtuoso_bench.py imports, its left-out queries exist and its
    report names the figures (no server: a second)."""
    import run
    import virtuoso_bench

    with pytest.raises(SystemExit):
        run.main(["--help"])
    assert set(virtuoso_bench.LEFT_OUT) <= {p.stem for p in (ROOT / "queries").glob("*.rq")}
    figures = {"rps": 12.5, "p50_ms": 40.0}
    table = virtuoso_bench.markdown(
        10,
        {
            "virtuoso": "07.20.3229",
            "quads": 1000,
            "buffers": 20000,
            "push": {"seconds": 1.5},
            "push_again": {"seconds": 1.2},
            "workloads": {
                "8|one resource's triples": {"embedded": figures, "virtuoso": figures, "ratio": 1.0}
            },
        },
    )
    assert "`copkg push` 1.5 s into the empty store, 1.2 s again" in table
    assert "| 10 | 8 | one resource's triples | 12.5 (40.0) | 12.5 (40.0) | 1.0 |" in table


@pytest.mark.server
@pytest.mark.slow
def test_the_virtuoso_run_pushes_and_serves_from_virtuoso(
    built: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """run.py --virtuoso on a built project: the push to a Virtuoso of its own, and the
    uncached workloads from it beside the embedded store, every answer a 200. Starts its own
    Virtuoso: skipped where Debian's virtuoso-opensource is missing (CI installs it)."""
    import run
    import virtuoso_bench

    reason = virtuoso_bench.missing()
    if reason is not None:
        pytest.skip(reason)
    out = tmp_path / "results.json"
    code = run.main(
        ["--sizes", "4", "--project", str(built.root), "--no-http", "--virtuoso",
         "--seconds", "0.5", "--rounds", "1", "--threads", "1", "--work", str(tmp_path / "w"),
         "--out", str(out)]
    )  # fmt: skip
    assert code == 0, capsys.readouterr().out[-3000:]
    (size,) = json.loads(out.read_text())["sizes"]
    result = size["virtuoso"]
    assert result["push"]["ok"] and result["push_again"]["ok"], result
    assert len(result["workloads"]) == 4, sorted(result["workloads"])
    for label, figures in result["workloads"].items():
        for who in ("embedded", "virtuoso"):
            assert figures[who]["requests"] > 0, (label, who, figures)
            assert set(figures[who]["statuses"]) == {"200"}, (label, who, figures)
        assert figures["ratio"] > 0, (label, figures)
    named = result["named_first_page"]
    assert set(named) == {p.stem for p in (ROOT / "queries").glob("*.rq")}
    assert named["timeline"]["virtuoso"]["rows"] == named["timeline"]["embedded"]["rows"] > 0
    comparison = named["role-study-comparison"]
    assert comparison["virtuoso"]["rows"] == comparison["embedded"]["rows"] > 0, comparison
    assert "role-study-comparison" not in result["left_out"]
    assert "ratio Virtuoso / embedded" in capsys.readouterr().out
