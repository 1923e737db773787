"""The build: named graphs from the sources, deterministic exports, an atomic swap of build/,
and a build that is refused when it is incomplete; and the settings it runs with."""

from __future__ import annotations

import json
import os
import shutil
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from conftest import needs_validation
from rdflib import Dataset

from copkg.config import Settings
from copkg.errors import CopkgError
from copkg.namespaces import INFERENCE_GRAPH, ONTOLOGY_GRAPH, study_graph
from copkg.pipeline import build, check, load_build, steps, streamed
from copkg.pipeline.build import MANIFEST, STORE_DIR, Manifest, is_stale, recover
from copkg.store.embedded import OxigraphStore

MINI = """@prefix copkg: <https://w3id.org/copkg/ontology#> .
@prefix xsd: <http://www.w3.org/2001/XMLSchema#> .
@prefix m: <https://w3id.org/copkg/id/mini/> .
m:q1 copkg:page "0320"^^xsd:positiveInteger .
m:x copkg:note [ copkg:page "7"^^xsd:positiveInteger ] .
"""


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """The temporary project without the real study bundles: these tests add their own."""
    for folder in settings.study_dirs():
        shutil.rmtree(folder)
    return settings


def add_study(settings: Settings, name: str = "mini", text: str = MINI) -> Path:
    folder = settings.data_dir / "studies" / name
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.ttl"
    path.write_text(text, encoding="utf-8")
    return path


def mark_build(settings: Settings) -> Path:
    """A stand-in for a previous build: any build/ folder with a file to recognise."""
    settings.build_dir.mkdir()
    marker = settings.build_dir / "previous.txt"
    marker.write_text("the previous build")
    return marker


def leftovers(settings: Settings) -> list[str]:
    return sorted(p.name for p in settings.root.iterdir() if p.name.startswith(".build"))


# -- settings ------------------------------------------------------------------------------


def test_settings_defaults_environment_then_overrides(project: Path) -> None:
    env = {
        "COPKG_ROOT": str(project),
        "COPKG_QUERY_TIMEOUT": "2.5",
        "COPKG_MAX_ROWS": "7",
        "COPKG_ALLOWED_SERVICE_ENDPOINTS": "http://a/sparql, http://b/sparql",
    }
    settings = Settings.load(environ=env, max_rows=9)
    assert settings.root == project.resolve()
    assert settings.build_dir == project.resolve() / "build"
    assert settings.query_timeout == 2.5
    assert settings.max_rows == 9
    assert settings.allowed_service_endpoints == ("http://a/sparql", "http://b/sparql")
    assert settings.update_token is None and settings.store_url is None
    assert settings.shapes_file == project.resolve() / "ontology" / "shapes.ttl"


def test_settings_root_from_the_working_folder(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(project)
    assert Settings.load(environ={}).root == project.resolve()
    monkeypatch.chdir(project / "ontology")
    with pytest.raises(CopkgError, match="COPKG_ROOT"):
        Settings.load(environ={})


def test_settings_refuse_a_bad_number(project: Path) -> None:
    with pytest.raises(CopkgError, match="COPKG_MAX_ROWS"):
        Settings.load(project, environ={"COPKG_MAX_ROWS": "many"})


def test_study_dirs_and_ontology_files(settings: Settings) -> None:
    add_study(settings, "zz")
    add_study(settings, "aa")
    names = [p.name for p in settings.study_dirs()]
    assert names == sorted(names) and {"aa", "zz"} <= set(names)
    assert [p.name for p in settings.ontology_files()] == ["copkg.ttl", "vocabularies.ttl"]


# -- steps ----------------------------------------------------------------------------------


def test_each_study_goes_into_its_own_graph(settings: Settings) -> None:
    add_study(settings)
    store = OxigraphStore()
    sources = steps.load_sources(settings, store)
    assert str(ONTOLOGY_GRAPH) in store.graphs()
    assert store.quad_count(study_graph("mini")) == 3
    assert "data/studies/mini/mini.ttl" in sources.hashes
    assert sources.graphs[str(ONTOLOGY_GRAPH)] == settings.ontology_files()


def test_sources_keep_literals_as_written(settings: Settings) -> None:
    add_study(settings)
    sources = steps.load_sources(settings, OxigraphStore())
    pages = {str(o) for _, _, o in sources.graph(study_graph("mini"))}
    assert "0320" in pages


def test_all_syntax_errors_are_reported_at_once(settings: Settings) -> None:
    add_study(settings, "one", MINI + "m:a m:b .\n")
    add_study(settings, "two", "@prefix m: <https://w3id.org/copkg/id/mini/> .\nm:a nope:b m:c .\n")
    with pytest.raises(CopkgError) as error:
        steps.load_sources(settings, OxigraphStore())
    where = sorted((Path(p.file).name, p.line) for p in error.value.problems)
    assert where == [("one.ttl", 6), ("two.ttl", 2)]


# -- build and swap ---------------------------------------------------------------------------


def test_a_build_writes_the_store_the_exports_and_the_manifest(settings: Settings) -> None:
    add_study(settings)
    manifest = build(settings, validate=False)
    out = settings.build_dir
    assert {p.name for p in out.iterdir()} == {
        "copkg.trig",
        "copkg.nq",
        "joined.json",  # their digests
        "exports",  # the segments, which the manifest lists and copkg add splices
        MANIFEST,
        STORE_DIR,
    }
    assert all(name.startswith("exports/") for name in manifest.files)
    assert manifest.quads == sum(manifest.graphs.values())
    assert manifest.graphs[study_graph("mini")] == 3
    assert str(INFERENCE_GRAPH) in manifest.graphs
    assert set(manifest.timings) >= {"load", "infer", "export"}
    assert not manifest.validated
    assert Manifest.read(out) == manifest
    dataset = Dataset()
    dataset.parse(out / "copkg.nq", format="nquads")
    assert (
        '"0320"^^<http://www.w3.org/2001/XMLSchema#positiveInteger>'
        in (out / "copkg.nq").read_text()
    )
    store = load_build(settings)
    assert store.read_only and store.quad_count() == manifest.quads
    assert leftovers(settings) == []


def test_exports_are_the_same_from_the_same_sources(settings: Settings) -> None:
    add_study(settings)
    build(settings, validate=False)
    first = {n: (settings.build_dir / n).read_bytes() for n in ("copkg.trig", "copkg.nq")}
    build(settings, validate=False)
    second = {n: (settings.build_dir / n).read_bytes() for n in ("copkg.trig", "copkg.nq")}
    assert first == second


def test_a_build_that_fails_loading_leaves_the_old_build(settings: Settings) -> None:
    marker = mark_build(settings)
    add_study(settings, "broken", "@prefix m: <https://w3id.org/copkg/id/mini/> .\nm:a m:b .\n")
    with pytest.raises(CopkgError):
        build(settings, validate=False)
    assert marker.read_text() == "the previous build"
    assert leftovers(settings) == []


def test_a_build_that_fails_halfway_leaves_the_old_build(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    marker = mark_build(settings)
    add_study(settings)
    written: list[Path] = []

    def export_then_crash(loaded: Any, out_dir: Path) -> dict:
        export(loaded, out_dir)
        written.extend(out_dir.iterdir())
        raise OSError("disk full")

    export = streamed.export
    monkeypatch.setattr(streamed, "export", export_then_crash)
    with pytest.raises(OSError, match="disk full"):
        build(settings, validate=False)
    assert written, "the export ran before the crash"
    assert marker.read_text() == "the previous build"
    assert not (settings.build_dir / MANIFEST).exists()
    assert leftovers(settings) == []


def test_a_swap_cut_between_its_renames_is_recovered(settings: Settings) -> None:
    add_study(settings)
    build(settings, validate=False)
    # the moment between "build -> .build-old-*" and ".build-new-* -> build"
    old = settings.root / f".build-old-build-{1}"
    os.rename(settings.build_dir, old)
    (settings.root / ".build-new-build-x").mkdir()
    recover(settings)
    assert (settings.build_dir / MANIFEST).is_file()
    assert leftovers(settings) == []
    assert load_build(settings).quad_count() > 0


def test_a_build_without_a_manifest_is_refused(settings: Settings) -> None:
    (settings.build_dir / STORE_DIR).mkdir(parents=True)
    with pytest.raises(CopkgError, match="manifest"):
        load_build(settings)


def test_a_store_that_does_not_match_its_manifest_is_refused(settings: Settings) -> None:
    add_study(settings)
    build(settings, validate=False)
    path = settings.build_dir / MANIFEST
    data = json.loads(path.read_text())
    data["quads"] += 1
    path.write_text(json.dumps(data))
    with pytest.raises(CopkgError, match="manifest says"):
        load_build(settings)
    data["complete"] = False
    path.write_text(json.dumps(data))
    with pytest.raises(CopkgError, match="not complete"):
        load_build(settings)
    path.write_text("{ not json")
    with pytest.raises(CopkgError, match="unreadable"):
        load_build(settings)


def test_load_build_builds_when_missing_and_refuses_when_told(settings: Settings) -> None:
    with pytest.raises(CopkgError, match="no build"):
        load_build(settings, rebuild="never")


def test_a_stale_build_is_rebuilt_when_asked(settings: Settings) -> None:
    add_study(settings)
    build(settings, validate=False)
    before = Manifest.read(settings.build_dir)
    add_study(settings, "mini", MINI + "<https://w3id.org/copkg/id/mini/y> a copkg:Case .\n")
    assert load_build(settings).quad_count() == before.quads  # "missing": the old build
    needs_validation()
    try:
        store = load_build(settings, rebuild="stale")
    except CopkgError as error:  # the mini study does not satisfy the shapes
        assert error.status == 422
        assert Manifest.read(settings.build_dir) == before
        return
    assert store.quad_count() == before.quads + 1


def test_staleness_reads_only_the_files_whose_size_or_time_changed(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    study = add_study(settings)
    past = time.time() - 60  # files changed just before a build are read each time (racy)
    for path in settings.root.rglob("*"):
        if path.is_file():
            os.utime(path, (past, past))
    build(settings, validate=False)
    manifest = Manifest.read(settings.build_dir)
    assert set(manifest.extra["source_stats"]) == set(manifest.sources)
    read: list[str] = []
    hash_file = steps.sha256

    def counting(path: Path) -> str:
        read.append(path.name)
        return hash_file(path)

    monkeypatch.setattr(steps, "sha256", counting)
    assert not is_stale(settings, manifest) and read == []
    study.write_text(MINI.replace("0320", "0321"), encoding="utf-8")  # the same size
    assert is_stale(settings, manifest) and read == [study.name]
    study.write_text(MINI, encoding="utf-8")  # back as built: read, and found unchanged
    read.clear()
    assert not is_stale(settings, manifest) and read == [study.name]
    read.clear()
    new = add_study(settings, "other")
    assert is_stale(settings, manifest) and sorted(read) == sorted([study.name, new.name])


# -- with the real validation ----------------------------------------------------------------


def test_a_shacl_violation_fails_the_build_and_keeps_the_old_one(settings: Settings) -> None:
    needs_validation()
    marker = mark_build(settings)
    add_study(
        settings,
        "bad",
        "@prefix copkg: <https://w3id.org/copkg/ontology#> .\n"
        "<https://w3id.org/copkg/id/bad/case> a copkg:Case .\n",
    )
    with pytest.raises(CopkgError) as error:
        build(settings)
    assert error.value.status == 422
    assert "Violation" in str(error.value)
    assert marker.read_text() == "the previous build"


def test_check_reports_violations_of_given_files(settings: Settings, tmp_path: Path) -> None:
    needs_validation()
    case = tmp_path / "case.ttl"
    case.write_text(
        "@prefix copkg: <https://w3id.org/copkg/ontology#> .\n"
        "<https://w3id.org/copkg/id/bad/case> a copkg:Case .\n"
    )
    outcome = check(settings, [case])
    assert not outcome.conforms
    assert "copkg/id/bad/case" in outcome.text


def test_check_refuses_a_file_that_does_not_parse(settings: Settings, tmp_path: Path) -> None:
    broken = tmp_path / "broken.ttl"
    broken.write_text("<a> <b> .\n")
    with pytest.raises(CopkgError) as error:
        check(settings, [broken])
    assert error.value.status == 400
    assert error.value.problems[0].file == str(broken)


def test_processes_starting_together_build_once(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    needs_validation()
    calls: list[int] = []
    load = streamed.load

    def counting_load(*args: Any, **options: Any) -> Any:
        calls.append(1)
        return load(*args, **options)

    monkeypatch.setattr(streamed, "load", counting_load)
    with ThreadPoolExecutor(max_workers=3) as pool:
        stores = list(pool.map(lambda _: load_build(settings), range(3)))
    assert len(calls) == 1
    assert len({store.quad_count() for store in stores}) == 1
