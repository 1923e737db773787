"""`copkg add` under hostile bundles and kills: a bad bundle is refused with a clear error and
the corpus (every file under data/studies) and the build stay byte for byte as they were; a
`copkg add` SIGKILLed at any moment leaves either nothing changed or the study wholly added (or,
in the one window between placing the study and swapping the build in, the study in the corpus
and a build that knows it is stale), never a damaged corpus or build.
(Bad bundles the checks themselves refuse are in tests/test_add_study.py.)"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
from importlib import resources
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from copkg.cli import main
from copkg.config import Settings
from copkg.namespaces import study_graph
from copkg.pipeline import Manifest, build, build_state, load_build

ROOT = Path(__file__).resolve().parents[1]
DEMO = "robust2000"


def bundle_text(study_id: str = DEMO) -> str:
    """The scaffold's study.ttl filled in the way a researcher might (TODO texts as values)."""
    source = resources.files("copkg").joinpath("templates", "study", "study.ttl")
    text = source.read_text(encoding="utf-8").replace("{{ID}}", study_id)
    text = text.replace('"TODO: ', '"')
    return re.sub(r" *# TODO.*$", "", text, flags=re.MULTILINE)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The ontology, rules, queries and the Josserand bundle, built once (SHACL left out)."""
    if not (ROOT / "data/studies/josserand2004/roles.ttl").is_file():
        pytest.fail("the Josserand bundle is missing")
    if not resources.files("copkg").joinpath("templates", "study", "study.ttl").is_file():
        pytest.fail("copkg add (the study template) is missing")
    root = tmp_path_factory.mktemp("corpus") / "project"
    for name in ("ontology", "rules", "queries"):
        shutil.copytree(ROOT / name, root / name)
    shutil.copytree(ROOT / "data/studies/josserand2004", root / "data/studies/josserand2004")
    build(Settings.load(root, environ={}), validate=False)
    return root


@pytest.fixture
def project(corpus: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "project"
    shutil.copytree(corpus, root, symlinks=True)
    for name in list(os.environ):
        if name.startswith("COPKG_"):
            monkeypatch.delenv(name)
    return root


def corpus_files(root: Path) -> dict[str, str]:
    """SHA-256 of every file under data/studies and build/ (hidden leftovers aside)."""
    hashes = {}
    for folder in (root / "data/studies", root / "build"):
        for path in sorted(folder.rglob("*")):
            if path.is_file() and not any(part.startswith(".") for part in path.parts[-3:]):
                hashes[path.relative_to(root).as_posix()] = hashlib.sha256(
                    path.read_bytes()
                ).hexdigest()
    return hashes


def add(root: Path, *args: str) -> Result:
    return CliRunner().invoke(main, ["add", "--skip-owl", *args, "--root", str(root)])


# -- hostile bundles ----------------------------------------------------------------------------


def good() -> bytes:
    return bundle_text().encode("utf-8")


PREFIXES_100K = "".join(f"@prefix p{i}: <http://e/{i}/> .\n" for i in range(100_000))
LAUGHS = (
    '<?xml version="1.0"?>\n<!DOCTYPE r [<!ENTITY a "aaaaaaaaaa">'
    + "".join(f'<!ENTITY a{i} "{("&a" + (str(i - 1) if i > 1 else "") + ";") * 10}">'
              for i in range(1, 9))
    + ']>\n<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">&a8;</rdf:RDF>\n'
)  # fmt: skip

#: name -> (files of the bundle folder, exit status, words of the message)
HOSTILE: dict[str, tuple[dict[str, bytes], int, str]] = {
    "latin-1": ({"study.ttl": bundle_text().encode("utf-8").replace(b"\xc3\xa9", b"\xe9")
                 + "# café\n".encode("latin-1")}, 2, "not valid UTF-8"),
    "UTF-16": ({"study.ttl": bundle_text().encode("utf-16")}, 2, "UTF-16"),
    "UTF-8 with a BOM": ({"study.ttl": b"\xef\xbb\xbf" + good()}, 2, "byte order mark"),
    "invalid UTF-8": ({"study.ttl": good() + b'\n<http://e/a> <http://e/b> "\xff" .\n'}, 2,
                      "not valid UTF-8"),
    "NUL bytes": ({"study.ttl": b"\x00\x00" + good()}, 2, "NUL"),
    "broken Turtle": ({"study.ttl": good() + b"\n<http://e/a> <http://e/b> .\n"}, 2,
                      "study.ttl:"),
    "a blank file": ({"study.ttl": b""}, None, ""),
    "a comment only": ({"study.ttl": b"# nothing here\n"}, None, ""),
    "no Turtle file": ({"notes.md": b"# a study\n"}, None, "no .ttl file"),
    "an empty folder": ({}, None, "no .ttl file"),
    "100000 prefixes": ({"study.ttl": good() + PREFIXES_100K.encode()}, 2,
                        "prefix declarations"),
    "RDF/XML with entities": ({"study.ttl": good(), "extra.rdf": LAUGHS.encode()}, 2,
                              "only .ttl files"),
    "RDF/XML entities as .ttl": ({"study.ttl": LAUGHS.encode()}, 2, "study.ttl:"),
    "a second copy of Josserand's facts": (
        {"study.ttl": good(),
         "roles.ttl": (ROOT / "data/studies/josserand2004/roles.ttl").read_bytes()},
        1, "belongs to study josserand2004"),
}  # fmt: skip


@pytest.mark.parametrize("case", list(HOSTILE))
def test_a_hostile_bundle_is_refused_and_nothing_changes(
    project: Path, tmp_path: Path, case: str
) -> None:
    files, status, words = HOSTILE[case]
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    for name, data in files.items():
        (bundle / name).write_bytes(data)
    before = corpus_files(project)
    result = add(project, str(bundle))
    assert result.exit_code != 0, result.output
    if status is not None:
        assert result.exit_code == status, result.output
    assert isinstance(result.exception, SystemExit | None), result.exception
    assert "Traceback" not in result.output
    assert words in result.output, result.output
    assert corpus_files(project) == before
    assert not [p for p in (project / "data/studies").iterdir() if p.name != "josserand2004"]


@pytest.mark.parametrize(
    "study_id", ["../../etc", "/etc", "a\x00b", "josserand2004/../x", "..", ".", "x" * 300]
)
def test_an_id_that_is_not_a_name_is_refused(project: Path, tmp_path: Path, study_id: str) -> None:
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    (bundle / "study.ttl").write_bytes(good())
    before = corpus_files(project)
    result = add(project, "--id", study_id, str(bundle))
    assert result.exit_code == 2, result.output
    assert corpus_files(project) == before
    assert sorted(p.name for p in project.iterdir()) == ["build", "data", "ontology", "queries",
                                                        "rules"]  # fmt: skip


def test_a_file_linked_from_outside_the_bundle_is_not_copied_in(
    project: Path, tmp_path: Path
) -> None:
    """A symbolic link in a bundle to a file elsewhere (here /etc/passwd) must not bring that
    file into the corpus."""
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    (bundle / "study.ttl").write_bytes(good())
    secret = Path("/etc/passwd")
    if not secret.is_file():
        pytest.skip("no /etc/passwd to link to")
    (bundle / "extra.ttl").symlink_to(secret)
    before = corpus_files(project)
    result = add(project, str(bundle))
    assert result.exit_code != 0, result.output
    assert corpus_files(project) == before


@pytest.mark.parametrize("suffix", [".nq", ".trig"])
def test_an_export_changed_since_the_build_is_not_spliced(
    project: Path, tmp_path: Path, suffix: str
) -> None:
    """copkg add links the old export segments into the new build: a byte changed in one (the
    build no longer what its manifest says) must stop the add, not be carried into the new
    build."""
    path = next(
        p for p in sorted((project / "build/exports").glob(f"*{suffix}"))
        if b"Josserand" in p.read_bytes()
    )  # fmt: skip
    export = path.name
    data = bytearray(path.read_bytes())
    at = data.index(b"Josserand") + 1
    data[at : at + 1] = b"O"  # same size, still parses
    path.write_bytes(bytes(data))
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    (bundle / "study.ttl").write_bytes(good())
    before = corpus_files(project)
    result = add(project, str(bundle))
    assert result.exit_code == 1, result.output
    assert f"{export} is not the file its manifest names" in result.output, result.output
    assert corpus_files(project) == before
    assert not [p for p in project.iterdir() if p.name.startswith(".build-")]


def test_export_dataset_joins_only_segments_its_manifest_names(project: Path) -> None:
    """`copkg export dataset` writes copkg.nq and copkg.trig from the segments, each checked
    against the manifest: a changed segment stops it and leaves the joined files as they were."""
    export = ["export", "dataset", "--root", str(project)]
    nquads = project / "build/copkg.nq"
    whole = nquads.read_bytes()
    nquads.unlink()
    done = CliRunner().invoke(main, export)
    assert done.exit_code == 0, done.output
    assert nquads.read_bytes() == whole
    path = next(p for p in sorted((project / "build/exports").glob("*.nq")))
    path.write_bytes(path.read_bytes().replace(b"<", b"[", 1))
    before = corpus_files(project)
    done = CliRunner().invoke(main, export)
    assert done.exit_code == 1, done.output
    assert "is not the file its manifest names" in done.output, done.output
    assert corpus_files(project) == before


# -- kills -------------------------------------------------------------------------------------

#: `copkg add` (no HermiT) that SIGKILLs itself at one point (argv[3]); the functions are
#: wrapped here, in the child: the code under test has no hook for it.
KILL_AT = """
import importlib, os, shutil, signal, sys
from pathlib import Path
from copkg.config import Settings
studies = importlib.import_module("copkg.studies.add")
extend = importlib.import_module("copkg.pipeline.extend")
root, bundle, point = sys.argv[1:4]

def die():
    os.kill(os.getpid(), signal.SIGKILL)

def after(module, name):
    real = getattr(module, name)
    def wrapper(*args, **kwargs):
        result = real(*args, **kwargs)
        die()
    setattr(module, name, wrapper)

if point == "after the checks":
    after(studies, "check_bundle")
elif point == "after the new build is made":
    after(extend, "_extend_into")
elif point == "after placing the study":
    after(studies, "place")
elif point == "between the renames of the swap":
    real_rename = os.rename
    def rename(src, dst):
        real_rename(src, dst)
        if Path(src).name == "build":
            die()
    os.rename = rename
elif point == "before removing the old build":
    real_rmtree = shutil.rmtree
    def rmtree(path, *args, **kwargs):
        if ".build-old-" in str(path):
            die()
        return real_rmtree(path, *args, **kwargs)
    shutil.rmtree = rmtree
studies.add_study(Settings.load(root, environ={}), bundle, skip_owl=True)
"""


def state_after_a_kill(root: Path, before: dict[str, str]) -> str:
    """ "unchanged", "added" or "placed" (the study in the corpus, the build stale); fails on
    anything else."""
    settings = Settings.load(root, environ={})
    store = load_build(settings, rebuild="never")  # repairs a swap cut between its renames
    graphs = set(store.graphs())
    del store
    added = (root / "data/studies" / DEMO / "study.ttl").is_file()
    if not added:
        assert study_graph(DEMO) not in graphs
        assert corpus_files(root) == before, "nothing added, yet the corpus or build changed"
        return "unchanged"
    assert (root / "data/studies" / DEMO / "study.ttl").read_bytes() == good()
    if study_graph(DEMO) in graphs:
        assert build_state(settings)[0] == "fresh"
        assert Manifest.read(settings.build_dir).graphs[study_graph(DEMO)] > 0
        return "added"
    assert build_state(settings)[0] == "stale", "the study is in the corpus, the build is not"
    return "placed"


#: Where each kill leaves things, and what brings the corpus and the build together again.
#: (Killed earlier, after the checks, it is as after the new build is made; killed right after
#: placing the study, as between the renames.)
EXPECTED = {
    "after the new build is made": ("unchanged", "add again"),
    "between the renames of the swap": ("placed", "build"),
    "before removing the old build": ("added", None),
}


@pytest.mark.slow
def test_add_killed_at_each_step_loses_nothing(corpus: Path, tmp_path: Path) -> None:
    """Each kill on its own copy of the corpus, all at once (they are independent)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("COPKG_")}
    runs = {}
    for i, point in enumerate(EXPECTED):
        root = tmp_path / f"project-{i}"
        shutil.copytree(corpus, root, symlinks=True)
        bundle = tmp_path / f"bundle-{i}"
        bundle.mkdir()
        (bundle / "study.ttl").write_bytes(good())
        command = [sys.executable, "-c", KILL_AT, str(root), str(bundle), point]
        process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL,
                                   stderr=subprocess.PIPE)  # fmt: skip
        runs[point] = (root, bundle, corpus_files(corpus), process)
    for point, (root, bundle, before, process) in runs.items():
        _, errors = process.communicate(timeout=120)
        assert process.returncode == -9, f"not killed {point}: {errors.decode()[-2000:]}"
        state, then = EXPECTED[point]
        assert state_after_a_kill(root, before) == state, point
        if then == "add again":
            result = add(root, str(bundle))
            assert result.exit_code == 0, result.output
        elif then == "build":
            build(Settings.load(root, environ={}), validate=False)
        if then is not None:
            assert state_after_a_kill(root, before) == "added"
            assert not [p for p in root.iterdir() if p.name.startswith(".build-")]


# -- links, reserved terms and sizes (issue 11) ---------------------------------------------------


@pytest.mark.parametrize("name", ["notes.md", "extra.ttl"])
def test_a_symbolic_link_in_a_bundle_is_refused_by_name(
    project: Path, tmp_path: Path, name: str
) -> None:
    """A link to a readable file elsewhere (valid Turtle or a note) is refused, `file: message`,
    rather than its target copied into data/studies/."""
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    target = elsewhere / name
    target.write_text("# secret\n" if name.endswith(".md") else "", encoding="utf-8")
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    (bundle / "study.ttl").write_bytes(good())
    (bundle / name).symlink_to(target)
    before = corpus_files(project)
    result = add(project, str(bundle))
    assert result.exit_code == 2, result.output
    assert f"{bundle / name}: a symbolic link" in result.output
    assert corpus_files(project) == before


def test_a_hard_link_in_a_bundle_is_refused(project: Path, tmp_path: Path) -> None:
    elsewhere = tmp_path / "secret.md"
    elsewhere.write_text("# secret\n", encoding="utf-8")
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    (bundle / "study.ttl").write_bytes(good())
    os.link(elsewhere, bundle / "notes.md")
    result = add(project, str(bundle))
    assert result.exit_code == 2, result.output
    assert f"{bundle / 'notes.md'}: a hard link" in result.output


def test_a_bundle_redefining_rdf_type_gets_file_and_line(project: Path, tmp_path: Path) -> None:
    """`rdf:type a rdf:Property` made owlready2 raise a TypeError out of `copkg add`."""
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    text = "PREFIX rdf: <http://www.w3.org/1999/02/22-rdf-syntax-ns#>\n" + bundle_text()
    text += "\nrdf:type a rdf:Property .\n"
    (bundle / "study.ttl").write_text(text, encoding="utf-8")
    line = text.splitlines().index("rdf:type a rdf:Property .") + 1
    result = CliRunner().invoke(main, ["add", "--dry-run", str(bundle), "--root", str(project)])
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    where = f"{bundle / 'study.ttl'}:{line}"
    assert f"{where}: rdf:type: a term of the shared vocabulary" in result.output


def test_a_literal_over_the_limit_is_refused_with_its_line(
    project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COPKG_MAX_LITERAL", "1000")
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    text = bundle_text() + f'\n:study rdfs:comment "{"x" * 1001}"@en .\n'
    (bundle / "study.ttl").write_text(text, encoding="utf-8")
    before = corpus_files(project)
    result = add(project, str(bundle))
    assert result.exit_code == 2, result.output
    line = len(text.splitlines())
    assert f"{bundle / 'study.ttl'}:{line}: a literal of 1001 characters" in result.output
    assert "COPKG_MAX_LITERAL" in result.output
    assert corpus_files(project) == before


@pytest.mark.parametrize(
    ("variable", "words"),
    [("COPKG_MAX_BUNDLE_TRIPLES", "triples, more than the limit of 50"),
     ("COPKG_MAX_BUNDLE_BYTES", "bytes of Turtle, more than the limit of 50")],
)  # fmt: skip
def test_a_bundle_over_the_size_limits_is_refused(
    project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, variable: str, words: str
) -> None:
    monkeypatch.setenv(variable, "50")
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    (bundle / "study.ttl").write_bytes(good())
    result = add(project, str(bundle))
    assert result.exit_code == 2, result.output
    assert words in result.output, result.output
    assert variable in result.output
