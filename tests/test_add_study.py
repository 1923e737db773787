"""`copkg new-study` and `copkg add`: a draft the build skips, a good bundle added to the corpus
and the build (incrementally, giving what a full build gives), and bad bundles refused with
what and where, the corpus and the build left byte for byte as they were.

One small corpus (the ontology, the rules, the queries and the Josserand bundle, whose roles
every study points at) is built once; each test works on a copy of it.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
from collections.abc import Callable
from importlib import resources
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from conftest import joined_export, shared_hermit
from rdflib import Graph

from copkg.cli import main
from copkg.config import Settings
from copkg.namespaces import COPKG, study_graph
from copkg.pipeline import build, build_state, exports, steps
from copkg.pipeline.build import STORE_DIR
from copkg.pipeline.build_cache import PaperIndex
from copkg.pipeline.corpus_checks import study_records
from copkg.pipeline.open import check_exports
from copkg.pipeline.steps import DRAFT_MARKER, source_files
from copkg.store.embedded import OxigraphStore

ROOT = Path(__file__).resolve().parents[1]
DEMO = "demo2000"
DEMO_NS = f"https://w3id.org/copkg/id/{DEMO}/"


def template(study_id: str = DEMO) -> str:
    """The scaffold's study.ttl for `study_id`, placeholders still in."""
    source = resources.files("copkg").joinpath("templates", "study", "study.ttl")
    return source.read_text(encoding="utf-8").replace("{{ID}}", study_id)


def fill(text: str) -> str:
    """The template as a researcher might fill it: each TODO text kept as the value."""
    text = text.replace('"TODO: ', '"')
    return re.sub(r" *# TODO.*$", "", text, flags=re.MULTILINE)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory, run_folder: Path) -> Path:
    """A built project with the shipped bundles (built once, copied by each test): the
    Josserand bundle states its links to the studies it cites, so it needs them. Its HermiT
    run is the documented `copkg build`'s (the same triples: conftest.shared_hermit)."""
    if not (ROOT / "data/studies/josserand2004/roles.ttl").is_file():
        pytest.fail("the Josserand bundle (its roles) is missing")
    root = tmp_path_factory.mktemp("corpus") / "project"
    for name in ("ontology", "rules", "queries"):
        shutil.copytree(ROOT / name, root / name)
    shutil.copytree(ROOT / "data/studies", root / "data/studies")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(steps, "check_consistency", shared_hermit(run_folder))
        build(Settings.load(root, environ={}))
    return root


@pytest.fixture
def project(corpus: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    return _own_copy(corpus, tmp_path, monkeypatch)


@pytest.fixture(scope="module")
def added(corpus: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The corpus with the filled template added as study demo2000 (one add, checked here,
    for the tests that start from a corpus holding it: each works on a copy, or only reads)."""
    root = tmp_path_factory.mktemp("added") / "project"
    shutil.copytree(corpus, root, symlinks=True)
    bundle = write_bundle(tmp_path_factory.mktemp("demo"), fill(template()))
    result = copkg(root, "add", "--skip-owl", str(bundle))
    assert result.exit_code == 0, result.output
    return root


@pytest.fixture(scope="module")
def first_added(corpus: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The corpus with study first2001 added, a paper with a DOI (one add, checked here, for
    the tests of a second ID for the same paper: each works on a copy)."""
    root = tmp_path_factory.mktemp("first-added") / "project"
    shutil.copytree(corpus, root, symlinks=True)
    first = fill(template("first2001")).replace(
        "    dcterms:creator :author ;",
        '    dcterms:creator :author ;\n    dcterms:identifier "https://doi.org/10.1234/demo.5" ;',
    )
    bundle = write_bundle(tmp_path_factory.mktemp("first"), first, "a")
    result = copkg(root, "add", "--skip-owl", str(bundle))
    assert result.exit_code == 0, result.output
    return root


def _own_copy(source: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of a built project for one test, worked on from its root (as `project`)."""
    root = tmp_path / "project"
    shutil.copytree(source, root, symlinks=True)
    for name in ("COPKG_ROOT", "COPKG_BUILD_DIR", "COPKG_STORE_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(root)  # paths such as data/studies/ID are written from the project
    return root


@pytest.fixture
def first_added_project(first_added: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    return _own_copy(first_added, tmp_path, monkeypatch)


@pytest.fixture
def added_project(added: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of `added` of this test's own, as `project` is of the corpus."""
    return _own_copy(added, tmp_path, monkeypatch)


def copkg(root: Path, *args: str) -> Result:
    return CliRunner().invoke(main, [*args, "--root", str(root)], catch_exceptions=False)


def write_bundle(parent: Path, text: str, name: str = "bundle") -> Path:
    folder = parent / name
    folder.mkdir(parents=True)
    (folder / "study.ttl").write_text(text, encoding="utf-8")
    return folder


def fingerprint(root: Path) -> dict[str, object]:
    """Every file under data/studies (and the folder listing, hidden ones too), the build's
    manifest and N-Quads, and what lies next to build/."""
    studies = root / "data/studies"
    return {
        "files": {
            p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(studies.rglob("*"))
            if p.is_file()
        },
        "folders": sorted(p.name for p in studies.iterdir()),
        "build": {
            "manifest.json": hashlib.sha256(
                (root / "build/manifest.json").read_bytes()
            ).hexdigest(),
            "copkg.nq": hashlib.sha256(joined_export(root / "build", "copkg.nq")).hexdigest(),
        },
        "beside build": sorted(p.name for p in root.iterdir()),
    }


def manifest(root: Path) -> dict:
    return json.loads((root / "build/manifest.json").read_text(encoding="utf-8"))


# -- new-study -------------------------------------------------------------------------------


def test_new_study_makes_a_draft_the_build_skips(project: Path) -> None:
    result = copkg(project, "new-study", DEMO)
    assert result.exit_code == 0, result.output
    folder = project / "data/studies" / DEMO
    assert (folder / DRAFT_MARKER).is_file()
    assert f"https://w3id.org/copkg/id/{DEMO}/" in (folder / "study.ttl").read_text()
    settings = Settings.load(project, environ={})
    assert study_graph(DEMO) not in source_files(settings)
    assert build_state(settings)[0] == "fresh", "a draft must not make the build stale"
    assert "--dry-run" in result.output and "docs/adding-a-study.md" in result.output


@pytest.mark.parametrize(
    ("study_id", "words"),
    [
        ("../evil", "is a path"),
        ("a/b", "is a path"),
        ("Smith2010", "upper-case"),
        ("smith_2010", "single hyphens"),
        ("smith--2010", "single hyphens"),
        ("inferred", "reserved"),
        ("josserand2004", "exists already"),
    ],
)
def test_new_study_refuses_unsafe_or_taken_ids(project: Path, study_id: str, words: str) -> None:
    before = fingerprint(project)
    result = copkg(project, "new-study", study_id)
    assert result.exit_code != 0
    assert words in result.output
    assert fingerprint(project) == before
    assert not (project / "evil").exists() and not (project / "data/evil").exists()


def test_the_unfilled_template_parses_and_is_refused_for_its_placeholders(project: Path) -> None:
    copkg(project, "new-study", DEMO)
    before = fingerprint(project)
    result = copkg(project, "add", "--skip-owl", f"data/studies/{DEMO}")
    assert result.exit_code == 1, result.output
    assert re.search(
        rf"data/studies/{DEMO}/study\.ttl:\d+: a TODO placeholder is left", result.output
    )
    assert "not added" in result.output and "nothing was changed" in result.output
    assert fingerprint(project) == before


# -- adding a good bundle ----------------------------------------------------------------------


def test_a_filled_draft_is_added_in_place_and_queried_across_studies(project: Path) -> None:
    copkg(project, "new-study", DEMO)
    draft = project / "data/studies" / DEMO / "study.ttl"
    draft.write_text(fill(draft.read_text()), encoding="utf-8")

    dry = copkg(project, "add", "--dry-run", "--skip-owl", f"data/studies/{DEMO}")
    assert dry.exit_code == 0, dry.output
    assert (project / "data/studies" / DEMO / DRAFT_MARKER).exists(), "a dry run changes nothing"

    result = copkg(project, "add", "--skip-owl", f"data/studies/{DEMO}")
    assert result.exit_code == 0, result.output
    assert "build extended" in result.output
    assert not (project / "data/studies" / DEMO / DRAFT_MARKER).exists()
    graphs = manifest(project)["graphs"]
    assert graphs[study_graph(DEMO)] > 100

    settings = Settings.load(project, environ={})
    assert build_state(settings)[0] == "fresh", "the manifest must know the new files"
    table = copkg(
        project, "query", str(project / "queries/role-study-comparison.rq"), "--format", "csv"
    )
    assert table.exit_code == 0, table.output
    rows = [line for line in table.output.splitlines() if f"{DEMO_NS}study" in line]
    assert any("/facilitation," in row and "risk realised" in row for row in rows), rows


def test_an_outside_bundle_is_copied_in_and_the_build_equals_a_full_build(
    project: Path, tmp_path: Path
) -> None:
    bundle = write_bundle(tmp_path, fill(template()))
    (bundle / "notes.md").write_text("where the quotes come from\n", encoding="utf-8")
    result = copkg(project, "add", "--skip-owl", str(bundle))
    assert result.exit_code == 0, result.output
    placed = project / "data/studies" / DEMO
    assert sorted(p.name for p in placed.iterdir()) == ["notes.md", "study.ttl"]
    assert (placed / "study.ttl").read_bytes() == (bundle / "study.ttl").read_bytes()
    assert not [p for p in (project / "data/studies").iterdir() if p.name.startswith(".")]

    again = tmp_path / "again"
    shutil.copytree(project, again)
    shutil.rmtree(again / "build")
    build(Settings.load(again, environ={}))
    for name in ("copkg.nq", "copkg.trig"):
        assert not (project / "build" / name).exists()  # an add keeps the segments only
        assert joined_export(project / "build", name) == (again / "build" / name).read_bytes()
    assert copkg(project, "export", "dataset").exit_code == 0
    for name in ("copkg.nq", "copkg.trig"):
        assert (project / "build" / name).read_bytes() == (again / "build" / name).read_bytes()
    check_exports(project / "build")  # the joined files are checked too (joined.json)
    assert manifest(project)["graphs"] == manifest(again)["graphs"]
    assert manifest(project)["sources"] == manifest(again)["sources"]


def test_a_single_file_is_a_bundle_and_its_id_comes_from_its_study_record(
    project: Path, tmp_path: Path
) -> None:
    path = tmp_path / "smith.ttl"
    path.write_text(fill(template("smith2010")), encoding="utf-8")
    result = copkg(project, "add", "--skip-owl", str(path))
    assert result.exit_code == 0, result.output
    assert (project / "data/studies/smith2010/smith.ttl").is_file()
    assert study_graph("smith2010") in manifest(project)["graphs"]


def test_a_stale_build_is_rebuilt_with_the_study(project: Path, tmp_path: Path) -> None:
    study = project / "data/studies/josserand2004/study.ttl"
    study.write_text(study.read_text() + "\n# an edit since the build\n", encoding="utf-8")
    result = copkg(project, "add", "--skip-owl", str(write_bundle(tmp_path, fill(template()))))
    assert result.exit_code == 0, result.output
    assert "build rebuilt (stale)" in result.output
    assert build_state(Settings.load(project, environ={}))[0] == "fresh"


def test_a_build_whose_exports_are_laid_out_otherwise_is_rebuilt(
    project: Path, tmp_path: Path
) -> None:
    """A build made by an older copkg (no layout named in its manifest) cannot be spliced."""
    path = project / "build/manifest.json"
    data = manifest(project)
    del data["extra"]["exports"]
    path.write_text(json.dumps(data), encoding="utf-8")
    result = copkg(project, "add", "--skip-owl", str(write_bundle(tmp_path, fill(template()))))
    assert result.exit_code == 0, result.output
    assert "build rebuilt (exports of an older copkg)" in result.output
    assert manifest(project)["extra"]["exports"] == exports.LAYOUT


@pytest.mark.java
def test_hermit_checks_the_bundle_with_what_it_links_to(project: Path, tmp_path: Path) -> None:
    result = copkg(project, "add", "--dry-run", str(write_bundle(tmp_path, fill(template()))))
    assert result.exit_code == 0, result.output
    assert re.search(r"owl\s+consistent", result.output)


@pytest.mark.java
def test_an_inconsistent_bundle_is_refused_by_hermit(project: Path, tmp_path: Path) -> None:
    text = fill(template()).replace(
        '    copkg:sector "its sector',
        "    copkg:eventType copkg:Reorganisation ;\n" + '    copkg:sector "its sector',
    )
    before = fingerprint(project)
    result = copkg(project, "add", str(write_bundle(tmp_path, text)))
    assert result.exit_code == 1, result.output
    assert "HermiT" in result.output and "disjoint" in result.output
    assert fingerprint(project) == before


@pytest.mark.java
def test_hermit_keeps_its_classes_with_the_build_and_gives_the_same_verdicts(
    project: Path, tmp_path: Path
) -> None:
    """The first HermiT run of an add writes a class archive into build/cache/; the add carries
    it into the new build, and the next add's HermiT maps it and still refuses what it must."""
    first = fill(template("first2001")).replace('"the title, as published"', '"Another title"')
    result = copkg(project, "add", str(write_bundle(tmp_path, first, "a")))
    assert result.exit_code == 0, result.output
    assert re.search(r"owl\s+consistent", result.output)
    kept = sorted(p.suffix for p in (project / "build" / "cache").glob("hermit-*"))
    assert kept == [".jar", ".jsa"]
    text = fill(template()).replace(
        '    copkg:sector "its sector',
        "    copkg:eventType copkg:Reorganisation ;\n" + '    copkg:sector "its sector',
    )
    result = copkg(project, "add", str(write_bundle(tmp_path, text, "b")))
    assert result.exit_code == 1, result.output
    assert "HermiT" in result.output and "disjoint" in result.output
    result = copkg(project, "add", str(write_bundle(tmp_path, fill(template()), "c")))
    assert result.exit_code == 0, result.output
    assert re.search(r"owl\s+consistent", result.output)


def test_without_java_add_says_so_and_stops_unless_told_to_skip(
    project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("JAVA", "JAVA_HOME"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("PATH", str(tmp_path / "no-java"))
    bundle = write_bundle(tmp_path, fill(template()))
    before = fingerprint(project)
    result = copkg(project, "add", str(bundle))
    assert result.exit_code == 1
    assert "Java" in result.output and "--skip-owl" in result.output
    assert fingerprint(project) == before
    assert copkg(project, "add", "--skip-owl", str(bundle)).exit_code == 0


def test_a_failure_while_swapping_the_build_takes_the_study_out_again(
    project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from copkg.pipeline import extend

    def broken(new: Path, build_dir: Path) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(extend, "swap_in", broken)
    before = fingerprint(project)
    with pytest.raises(OSError, match="disk full"):
        copkg(project, "add", "--skip-owl", str(write_bundle(tmp_path, fill(template()))))
    assert fingerprint(project) == before


# -- bad bundles ---------------------------------------------------------------------------------

Edit = Callable[[str], str]


def _replace(old: str, new: str) -> Edit:
    def edit(text: str) -> str:
        assert old in text, f"the template no longer has {old!r}"
        return text.replace(old, new, 1)

    return edit


def _append(extra: str) -> Edit:
    return lambda text: text + "\n" + extra + "\n"


BAD = {
    "broken Turtle": (
        _replace("    copkg:hasCase :case-1 ;\n.", "    copkg:hasCase :case-1 ;\n"),
        2,
        r"study\.ttl:\d+:",
    ),
    "SHACL violation (page outside the study)": (
        _replace('copkg:page "9"^^xsd:positiveInteger', 'copkg:page "99"^^xsd:positiveInteger'),
        1,
        r"study\.ttl:\d+: Violation copsh:QuotePageRangeShape",
    ),
    "SHACL violation through a link (risk of another role)": (
        _replace("copkg:realisedRisk j04:imposed-topic", "copkg:realisedRisk j04:obligation"),
        1,
        r"Violation copsh:EnactmentRealisedRiskShape",
    ),
    "undeclared copkg term": (
        _replace("copkg:controlMode copkg:OutputControl", "copkg:controlMode copkg:OutputContrl"),
        1,
        r"study\.ttl:\d+: copkg:OutputContrl: not a term of the copkg ontology",
    ),
    "another study's resource described": (
        _append('j04:facilitation rdfs:comment "also a role of ours"@en .'),
        1,
        r"study\.ttl:\d+: j04:facilitation: this resource belongs to study josserand2004",
    ),
    "shared vocabulary redefined (rdfs:)": (
        _append(
            "PREFIX owl: <http://www.w3.org/2002/07/owl#>\n"
            'rdfs:label a owl:AnnotationProperty ; rdfs:label "DEFACED" .'
        ),
        1,
        r"study\.ttl:\d+: rdfs:label: a term of the shared vocabulary: a study cannot redefine it",
    ),
    "shared vocabulary redefined (a copkg concept)": (
        _append('copkg:OutputControl skos:prefLabel "DEFACED"@en .'),
        1,
        r"study\.ttl:\d+: copkg:OutputControl: a term of the shared vocabulary",
    ),
    "another study's IRI no bundle defines": (
        _replace("copkg:onFactor j04:decentralization", "copkg:onFactor j04:decentralisation"),
        1,
        r"study\.ttl:\d+: j04:decentralisation: no study bundle describes it \(study "
        r"josserand2004 has no such resource\)",
    ),
    "a study that is not in the corpus": (
        _append(
            "PREFIX ws: <https://w3id.org/copkg/id/nowhere2001/>\n:finding-1 copkg:inCase ws:case ."
        ),
        1,
        r"no study bundle describes it \(there is no study nowhere2001 in the corpus\)",
    ),
    "own IRI used but not described": (
        _replace("copkg:enactedBy :position-1", "copkg:enactedBy :positon-1"),
        1,
        r"study\.ttl:\d+: :positon-1: used but not described",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_a_bad_bundle_is_refused_and_nothing_changes(
    project: Path, tmp_path: Path, case: str
) -> None:
    edit, code, expected = BAD[case]
    bundle = write_bundle(tmp_path, edit(fill(template())))
    before = fingerprint(project)
    result = copkg(project, "add", "--skip-owl", str(bundle))
    assert result.exit_code == code, result.output
    assert re.search(expected, result.output), result.output
    assert fingerprint(project) == before


def test_an_id_that_exists_is_refused(project: Path, tmp_path: Path) -> None:
    bundle = write_bundle(tmp_path, fill(template("josserand2004")))
    before = fingerprint(project)
    result = copkg(project, "add", "--skip-owl", str(bundle))
    assert result.exit_code == 1, result.output
    assert "study josserand2004 exists already" in result.output
    assert fingerprint(project) == before


@pytest.mark.parametrize("study_id", ["../evil", "../../etc", "data/studies/evil"])
def test_an_id_with_a_path_is_refused(project: Path, tmp_path: Path, study_id: str) -> None:
    bundle = write_bundle(tmp_path, fill(template()))
    before = fingerprint(project)
    result = copkg(project, "add", "--skip-owl", "--id", study_id, str(bundle))
    assert result.exit_code == 2, result.output
    assert "is not a valid study ID: it is a path" in result.output
    assert fingerprint(project) == before
    assert not (project / "data/evil").exists() and not (tmp_path / "evil").exists()


def test_a_namespace_with_dots_is_refused(project: Path, tmp_path: Path) -> None:
    text = fill(template()).replace(DEMO_NS, "https://w3id.org/copkg/id/../evil/")
    bundle = write_bundle(tmp_path, text, name="evil")
    before = fingerprint(project)
    result = copkg(project, "add", "--skip-owl", str(bundle))
    assert result.exit_code == 2, result.output
    assert "not a valid study ID" in result.output or "cannot tell which study" in result.output
    assert fingerprint(project) == before


def test_a_resource_another_bundle_describes_is_refused(project: Path, tmp_path: Path) -> None:
    shared = "<http://example.org/acme> a <http://xmlns.com/foaf/0.1/Organization> ."
    first = write_bundle(tmp_path, fill(template("first2001")) + shared + "\n", name="first")
    assert copkg(project, "add", "--skip-owl", str(first)).exit_code == 0
    second = write_bundle(tmp_path, fill(template("second2002")) + shared + "\n", name="second")
    before = fingerprint(project)
    result = copkg(project, "add", "--skip-owl", str(second))
    assert result.exit_code == 1, result.output
    assert "<http://example.org/acme>: already described by study first2001" in result.output
    assert fingerprint(project) == before


def test_a_bundle_with_other_rdf_files_is_refused(project: Path, tmp_path: Path) -> None:
    bundle = write_bundle(tmp_path, fill(template()))
    (bundle / "extra.nt").write_text("", encoding="utf-8")
    result = copkg(project, "add", "--skip-owl", str(bundle))
    assert result.exit_code == 2
    assert "extra.nt: only .ttl files are read by the build" in result.output


def test_the_template_asks_who_encoded_the_study_and_add_requires_it(
    project: Path, tmp_path: Path
) -> None:
    """The scaffold attributes the bundle to a person with a name and an ORCID iD; a bundle
    without that attribution, or a curators' reading without its author, is refused."""
    text = fill(template())
    assert "prov:wasAttributedTo :curator" in text and "copkg:orcid <https://orcid.org/" in text
    unattributed = text.replace("    prov:wasAttributedTo :curator ;\n", "", 1)
    result = copkg(
        project,
        "add",
        "--dry-run",
        "--skip-owl",
        str(write_bundle(tmp_path, unattributed, name="no-curator")),
    )
    assert result.exit_code == 1 and "copsh:BundleAttributionShape" in result.output
    evidence = "\n    copkg:hasEvidence :q-contexts-1"
    reading = text.replace(
        "copkg:voice copkg:AuthorVoice ;" + evidence,
        "copkg:voice copkg:CuratorVoice ;" + evidence,
        1,
    )
    assert reading != text
    result = copkg(
        project,
        "add",
        "--dry-run",
        "--skip-owl",
        str(write_bundle(tmp_path, reading, name="reading")),
    )
    assert result.exit_code == 1 and "copsh:CuratorAttributionShape" in result.output


# -- the build applies the checks of add ------------------------------------------------------


def _edit_and_build(project: Path, extra: str) -> tuple[Result, dict]:
    """In a project with the demo study added (added_project), write `extra` into its
    study.ttl in place and build."""
    study = project / "data/studies" / DEMO / "study.ttl"
    study.write_text(study.read_text(encoding="utf-8") + "\n" + extra + "\n", encoding="utf-8")
    before = {
        "manifest.json": (project / "build/manifest.json").read_bytes(),
        "copkg.nq": joined_export(project / "build", "copkg.nq"),
    }
    return copkg(project, "build", "--skip-owl"), before


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        (
            'j04:facilitation rdfs:comment "also a role of ours"@en .',
            r"study\.ttl:\d+: j04:facilitation: this resource belongs to study josserand2004",
        ),
        (
            "PREFIX owl: <http://www.w3.org/2002/07/owl#>\n"
            'rdfs:label a owl:AnnotationProperty ; rdfs:label "DEFACED" .',
            r"study\.ttl:\d+: rdfs:label: a term of the shared vocabulary",
        ),
        (
            ":finding-1 copkg:inCase j04:case-nowhere .",
            r"study\.ttl:\d+: j04:case-nowhere: no study bundle describes it",
        ),
        (
            ':finding-1 rdfs:comment "TODO: say why" .',
            r"study\.ttl:\d+: a TODO placeholder is left",
        ),
    ],
    ids=["another study's resource", "shared vocabulary", "undescribed IRI", "placeholder"],
)
def test_build_refuses_what_add_refuses_after_an_edit(
    added_project: Path, extra: str, expected: str
) -> None:
    result, before = _edit_and_build(added_project, extra)
    assert result.exit_code == 1, result.output
    assert re.search(expected, result.output), result.output
    assert (added_project / "build/manifest.json").read_bytes() == before["manifest.json"]
    assert joined_export(added_project / "build", "copkg.nq") == before["copkg.nq"]


def test_build_refuses_the_same_paper_under_a_second_id(first_added_project: Path) -> None:
    """The build finds a paper entered twice, as add does (each study against the papers of the
    others, indexed once for the corpus)."""
    project = first_added_project
    folder = project / "data/studies/second2002"
    folder.mkdir()
    (folder / "study.ttl").write_text(fill(template("second2002")), encoding="utf-8")
    result = copkg(project, "build", "--skip-owl")
    assert result.exit_code == 1, result.output
    for study, other in (("second2002", "first2001"), ("first2001", "second2002")):
        assert re.search(
            rf"{study}/study\.ttl:\d+: :study: this paper is already in the corpus as study "
            rf"{other} \(\S+\): the same authors, year and title",
            result.output,
        ), result.output


def test_build_places_shacl_violations_at_file_and_line(added_project: Path) -> None:
    result, _ = _edit_and_build(added_project, ':q-study-1 copkg:page "999"^^xsd:positiveInteger .')
    assert result.exit_code == 1, result.output
    assert re.search(r"study\.ttl:\d+: Violation copsh:\w+: :q-study-1", result.output), (
        result.output
    )


@pytest.mark.java
@pytest.mark.slow
def test_build_runs_hermit_unless_told_to_skip(added_project: Path) -> None:
    extra = ":organisation-1 copkg:eventType copkg:Reorganisation ."
    result, _ = _edit_and_build(added_project, extra)
    assert result.exit_code == 0, result.output  # --skip-owl: SHACL alone lets it through
    result = copkg(added_project, "build")
    assert result.exit_code == 1, result.output
    assert "HermiT" in result.output and "disjoint" in result.output


# -- quotes against the study's text, paraphrases, and one paper under one ID ----------------

PAPER = next(
    (
        p
        for p in (ROOT.parent / "shared/paper", ROOT.parent.parent / "shared/paper")
        if (p / "josserand-2004.txt").is_file()
    ),
    None,
)


def source_of(body: str) -> str:
    """A source text with every quote of the bundle on its page, and a page 6 of other words."""
    graph = Graph().parse(data=body, format="turtle")
    pages: dict[int, list[str]] = {6: ["Something else."]}
    for quote, text in graph.subject_objects(COPKG.quoteText):
        pages.setdefault(int(graph.value(quote, COPKG.page)), []).append(f"It is {text}")
    return "".join(f"[page {n}]\n" + "\n".join(pages[n]) + "\n" for n in sorted(pages))


def with_source(parent: Path, text: str, body: str | None = None) -> Path:
    """The filled template with a source text in source/, declared by its SHA-256."""
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
    body = (body or fill(template())) + (
        "\n:study copkg:sourceText :source-text .\n"
        ':source-text a copkg:SourceText ; rdfs:label "the text"@en ;\n'
        f'    copkg:sha256 "{digest}" .\n'
    )
    bundle = write_bundle(parent, body)
    (bundle / "source").mkdir()
    (bundle / "source" / "demo.txt").write_text(text, encoding="utf-8")
    return bundle


def test_quotes_are_verified_against_the_source_text_a_bundle_ships(
    project: Path, tmp_path: Path
) -> None:
    bundle = with_source(tmp_path, source_of(fill(template())))
    result = copkg(project, "add", "--skip-owl", str(bundle))
    assert result.exit_code == 0, result.output
    assert "quotes verified against demo.txt" in result.output
    assert (project / "data/studies" / DEMO / "source/demo.txt").is_file()
    flag = f"<{DEMO_NS}study> <https://w3id.org/copkg/ontology#quotesVerified> "
    assert flag in joined_export(project / "build", "copkg.nq").decode("utf-8")
    assert copkg(project, "build", "--skip-owl").exit_code == 0
    assert flag in (project / "build/copkg.nq").read_text(encoding="utf-8")


def test_a_study_without_a_source_text_is_not_marked_verified(added: Path) -> None:
    nquads = joined_export(added / "build", "copkg.nq").decode("utf-8")
    assert f"<{DEMO_NS}study> " in nquads
    flag = f"<{DEMO_NS}study> <https://w3id.org/copkg/ontology#quotesVerified> "
    assert flag not in nquads


def test_a_bundle_cannot_say_its_quotes_are_verified(project: Path, tmp_path: Path) -> None:
    text = fill(template()) + "\n:study copkg:quotesVerified true .\n"
    result = copkg(project, "add", "--skip-owl", str(write_bundle(tmp_path, text)))
    assert result.exit_code == 1, result.output
    assert re.search(r"study\.ttl:\d+: :study copkg:quotesVerified: only the build", result.output)


def test_a_quote_not_on_its_page_is_refused_by_add_and_by_build(
    project: Path, tmp_path: Path
) -> None:
    source = source_of(fill(template()))
    moved = fill(template()).replace(
        'copkg:page "5"^^xsd:positiveInteger', 'copkg:page "6"^^xsd:positiveInteger', 1
    )
    before = fingerprint(project)
    result = copkg(project, "add", "--skip-owl", str(with_source(tmp_path / "a", source, moved)))
    assert result.exit_code == 1, result.output
    assert re.search(
        r"study\.ttl:\d+: :q-study-1: not on page 6 of the source text of \S+ \(demo\.txt\): "
        r"it stands on page 5",
        result.output,
    ), result.output
    assert fingerprint(project) == before
    # added right, then edited in place: the build refuses it the same way
    assert (
        copkg(project, "add", "--skip-owl", str(with_source(tmp_path / "b", source))).exit_code == 0
    )
    study = project / "data/studies" / DEMO / "study.ttl"
    study.write_text(
        study.read_text(encoding="utf-8").replace(
            'copkg:page "5"^^xsd:positiveInteger', 'copkg:page "6"^^xsd:positiveInteger', 1
        ),
        encoding="utf-8",
    )
    result = copkg(project, "build", "--skip-owl")
    assert result.exit_code == 1, result.output
    assert re.search(r"study\.ttl:\d+: :q-study-1: not on page 6", result.output), result.output


@pytest.mark.skipif(PAPER is None, reason="the paper's text (../shared/paper) is absent")
def test_a_paraphrase_entered_as_a_quote_of_josserand_is_refused(
    project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COPKG_SOURCE_TEXTS", str(PAPER))
    paraphrase = (
        "Managers who control communities of practice too tightly kill them, says Josserand."
    )
    extra = (
        f':q-para a copkg:Quote ; rdfs:label "quote, page 331"@en ;\n'
        f'    copkg:quoteText "{paraphrase}" ; copkg:page "331"^^xsd:positiveInteger ;\n'
        "    copkg:quotedIn j04:study ; copkg:voice copkg:AuthorVoice .\n"
        ":author copkg:hasEvidence :q-para .\n"
    )
    result = copkg(
        project, "add", "--skip-owl", str(write_bundle(tmp_path, fill(template()) + extra))
    )
    assert result.exit_code == 1, result.output
    assert re.search(
        r"study\.ttl:\d+: :q-para: not on page 331 of the source text of j04:study "
        r"\(josserand-2004\.txt\): it is nowhere in the text",
        result.output,
    ), result.output
    # as what it is, a paraphrase, it passes (and is not verified as words of the paper)
    fixed = extra.replace(":q-para a copkg:Quote", ":q-para a copkg:Paraphrase").replace(
        "copkg:quoteText", "copkg:evidenceText"
    )
    result = copkg(
        project, "add", "--skip-owl", str(write_bundle(tmp_path / "2", fill(template()) + fixed))
    )
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize(
    ("edit", "why"),
    [
        (lambda text: text, "the same authors, year and title"),
        (
            lambda text: text.replace(
                "    dcterms:creator :author ;",
                '    dcterms:creator :author ;\n    dcterms:identifier "doi:10.1234/Demo.5" ;',
            ).replace('"the title, as published"', '"Another title"'),
            r"the same DOI \(10\.1234/demo\.5\)",
        ),
    ],
    ids=["authors, year and title", "DOI"],
)
def test_the_same_paper_under_a_second_id_is_refused(
    first_added_project: Path, tmp_path: Path, edit: Callable[[str], str], why: str
) -> None:
    project = first_added_project
    second = write_bundle(tmp_path, edit(fill(template("second2002"))), "b")
    before = fingerprint(project)
    result = copkg(project, "add", "--skip-owl", str(second))
    assert result.exit_code == 1, result.output
    assert re.search(
        r"study\.ttl:\d+: :study: this paper is already in the corpus as study first2001 "
        rf"\(\S+\): {why}",
        result.output,
    ), result.output
    assert fingerprint(project) == before


def test_the_paper_index_an_add_keeps_is_what_reading_the_records_gives(
    project: Path, tmp_path: Path
) -> None:
    """The duplicate check reads the papers from an index kept with the build (the first add
    makes it from the store's study records, each add extends it): after two adds it is what
    reading every record of the new build gives."""
    assert PaperIndex.read(project / "build") is None  # a full build keeps none
    first = fill(template("first2001")).replace(
        "    dcterms:creator :author ;",
        '    dcterms:creator :author ;\n    dcterms:identifier "https://doi.org/10.1234/demo.5" ;',
    )
    second = fill(template("second2002")).replace('"the title, as published"', '"Another title"')
    for name, text in (("a", first), ("b", second)):
        result = copkg(project, "add", "--skip-owl", str(write_bundle(tmp_path, text, name)))
        assert result.exit_code == 0, result.output
    kept = PaperIndex.read(project / "build")
    assert kept is not None
    store = OxigraphStore.open_read_only(project / "build" / STORE_DIR)
    try:
        full = PaperIndex.of_records(study_records(store.native))
    finally:
        del store
    assert kept == full
    dois = {str(p.study).split("/")[-2]: p.dois for p in kept.papers}
    assert dois["first2001"] == {"10.1234/demo.5"}
    assert "second2002" in dois
