"""Faults, nothing lost: `copkg build` killed (SIGKILL) at several moments leaves the previous
build intact and usable, and the next build succeeds; `copkg serve` on a damaged build says so
and refuses, never serving a half-loaded graph."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from conftest import copy_project
from web_helpers import free_port

from copkg.config import Settings
from copkg.errors import CopkgError
from copkg.pipeline import Manifest, build, load_build
from copkg.pipeline.open import check_store, inspect_store

#: What the answers of a build are compared on: quads by graph, and a query over the rules' work.
BY_GRAPH = "SELECT ?g (COUNT(*) AS ?n) WHERE { GRAPH ?g { ?s ?p ?o } } GROUP BY ?g ORDER BY ?g"
RISKY = (
    "SELECT ?role ?risk WHERE { ?a a copkg:RiskAssessment ; copkg:assessedRole ?role ; "
    "copkg:assessedRisk ?risk } ORDER BY ?role ?risk"
)
#: A build without SHACL that SIGKILLs itself at one point of the pipeline (argv[2]): the
#: step functions are wrapped here, in the child; the pipeline has no hook for it.
KILL_AT = """
import importlib, os, shutil, signal, sys
from copkg.config import Settings
build = importlib.import_module("copkg.pipeline.build")
steps = importlib.import_module("copkg.pipeline.steps")
streamed = importlib.import_module("copkg.pipeline.streamed")
point = sys.argv[2]

def die():
    os.kill(os.getpid(), signal.SIGKILL)

def after(module, name, when=lambda *a: True):
    real = getattr(module, name)
    def wrapper(*args, **kwargs):
        result = real(*args, **kwargs)
        if when(*args):
            die()
        return result
    setattr(module, name, wrapper)

if point == "after infer":
    after(steps, "infer")
elif point == "after export":
    after(streamed, "export")
elif point == "after the manifest":
    after(build, "atomic_write")
elif point == "between the renames":
    after(os, "rename")
elif point == "before removing the old build":
    real_rmtree = shutil.rmtree
    def rmtree(path, *args, **kwargs):
        if ".build-old-" in str(path):
            die()
        return real_rmtree(path, *args, **kwargs)
    shutil.rmtree = rmtree
build.build(Settings.load(sys.argv[1], environ={}), validate=False)
"""
KILL_POINTS = [  # (killed after loading: as the clock kill, which comes later)
    "after infer",
    "after export",
    "after the manifest",
    "between the renames",
    "before removing the old build",
]


def clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("COPKG_")}


def tree_hashes(folder: Path) -> dict[str, str]:
    return {
        p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def answers(settings: Settings) -> tuple[list, list, int]:
    """What the build answers, opened as the service and `copkg query` open it."""
    store = load_build(settings, rebuild="never")
    try:
        by_graph = [(str(r["g"]), int(r["n"])) for r in store.query(BY_GRAPH).rows]
        risky = [(str(r["role"]), str(r["risk"])) for r in store.query(RISKY).rows]
        return by_graph, risky, store.quad_count()
    finally:
        del store


def leftovers(settings: Settings) -> list[str]:
    return sorted(p.name for p in settings.build_dir.parent.glob(".build-*"))


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    settings = Settings.load(copy_project(tmp_path_factory.mktemp("faults")), environ={})
    build(settings, validate=False)
    return settings


def assert_usable(settings: Settings, expected: tuple[list, list, int]) -> None:
    """The build answers as expected (opening it first repairs a swap cut short)."""
    assert answers(settings) == expected
    manifest = Manifest.read(settings.build_dir)
    assert manifest.complete and manifest.quads == expected[2]


def test_build_killed_at_any_moment_leaves_a_usable_build(
    project: Settings, tmp_path: Path
) -> None:
    """Each kill on its own copy of the built project, all at once (they are independent)."""
    expected = answers(project)
    assert expected[1], "the rules derived no risky roles: the comparison would be empty"
    # `copkg build` itself (with SHACL, a few seconds), killed by the clock while it imports,
    # loads, infers and validates; and a build that kills itself at each later step, up to and
    # through the swap
    kills = [("at 1.5 s", ["-m", "copkg.cli", "build", "--root"], 1.5)]
    kills += [(point, ["-c", KILL_AT], 60.0) for point in KILL_POINTS]
    running = []
    for i, (moment, argv, delay) in enumerate(kills):
        root = tmp_path / f"project-{i}"
        shutil.copytree(project.root, root, symlinks=True)
        settings = Settings.load(root, environ={})
        extra = [moment] if argv[0] == "-c" else []
        process = subprocess.Popen(
            [sys.executable, *argv, str(root), *extra], env=clean_env(),
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        timer = threading.Timer(delay, process.kill)
        timer.start()
        running.append((moment, settings, tree_hashes(settings.build_dir), process, timer))
    for moment, settings, before, process, timer in running:
        status = process.wait(timeout=120)
        timer.cancel()
        assert status == -9, f"{moment}: the build ended with {status}, not killed"
        assert_usable(settings, expected)  # opening it repairs a swap cut between the renames
        if moment != "before removing the old build":  # the new build was already in place
            assert tree_hashes(settings.build_dir) == before, f"{moment}: build/ changed"
    # the next build succeeds (no lock left held), and cleans up what the killed one left
    for moment, settings, *_ in running:
        if moment == "between the renames":
            start = time.monotonic()
            assert build(settings, validate=False).quads == expected[2]
            assert time.monotonic() - start < 30
            assert_usable(settings, expected)
            assert leftovers(settings) == []


# -- serving a damaged build -----------------------------------------------------------------


def damage_truncate_nq(build_dir: Path) -> None:
    with (build_dir / "copkg.nq").open("r+b") as f:
        f.truncate(1000)


def damage_delete_trig(build_dir: Path) -> None:
    (build_dir / "copkg.trig").unlink()


def damage_delete_sst(build_dir: Path) -> None:
    for path in (build_dir / "oxigraph").glob("*.sst"):
        path.unlink()


def damage_truncate_sst(build_dir: Path) -> None:
    for path in (build_dir / "oxigraph").glob("*.sst"):
        with path.open("r+b") as f:
            f.truncate(100)


def damage_flip_sst_bytes(build_dir: Path) -> None:
    for path in (build_dir / "oxigraph").glob("*.sst"):
        data = bytearray(path.read_bytes())
        for i in range(512, len(data) - 512, 4096):
            data[i] ^= 0xFF
        path.write_bytes(bytes(data))


def damage_delete_current(build_dir: Path) -> None:
    (build_dir / "oxigraph" / "CURRENT").unlink()


def damage_delete_store(build_dir: Path) -> None:
    shutil.rmtree(build_dir / "oxigraph")


def damage_corrupt_manifest(build_dir: Path) -> None:
    path = build_dir / "manifest.json"
    path.write_bytes(path.read_bytes()[:40])


def damage_manifest_quads(build_dir: Path) -> None:
    path = build_dir / "manifest.json"
    data = json.loads(path.read_text())
    data["quads"] -= 1
    path.write_text(json.dumps(data))


def damage_delete_manifest(build_dir: Path) -> None:
    (build_dir / "manifest.json").unlink()


DAMAGES = {
    "copkg.nq truncated": (damage_truncate_nq, "copkg.nq"),
    "copkg.trig deleted": (damage_delete_trig, "copkg.trig"),
    "store files deleted": (damage_delete_sst, "sst"),
    "store files truncated": (damage_truncate_sst, "sst"),
    "store bytes flipped": (damage_flip_sst_bytes, ""),
    "store CURRENT deleted": (damage_delete_current, "CURRENT"),
    "store folder deleted": (damage_delete_store, "store is missing"),
    "manifest truncated": (damage_corrupt_manifest, "manifest.json"),
    "manifest quads wrong": (damage_manifest_quads, "manifest says"),
    "manifest deleted": (damage_delete_manifest, "manifest"),
}


@pytest.fixture(scope="module")
def good_build(tmp_path_factory: pytest.TempPathFactory) -> Path:
    settings = Settings.load(copy_project(tmp_path_factory.mktemp("good")), environ={})
    build(settings, validate=False)
    return settings.build_dir


def project_with(good_build: Path, root: Path) -> Path:
    """A project folder sharing the sources of `good_build`'s project, with a copy of it."""
    root.mkdir()
    for name in ("ontology", "rules", "queries", "data"):
        (root / name).symlink_to(good_build.parent / name)
    shutil.copytree(good_build, root / "build")
    return root


@pytest.mark.parametrize("damage", list(DAMAGES))
def test_a_damaged_build_is_refused_with_the_reason(
    good_build: Path, tmp_path: Path, damage: str
) -> None:
    """What `copkg serve` checks before it listens (in this process, for speed)."""
    root = project_with(good_build, tmp_path / "project")
    harm, words = DAMAGES[damage]
    harm(root / "build")
    with pytest.raises(CopkgError) as error:
        inspect_store(Settings.load(root, environ={}))
    message = str(error.value)
    assert error.value.status == 500
    assert "cannot" in message and "copkg build" in message and words in message, message


@pytest.mark.server
@pytest.mark.parametrize("damage", ["copkg.nq truncated", "store bytes flipped"])
def test_serve_refuses_a_damaged_build(good_build: Path, tmp_path: Path, damage: str) -> None:
    root = project_with(good_build, tmp_path / "project")
    harm, words = DAMAGES[damage]
    harm(root / "build")
    command = [sys.executable, "-m", "copkg.cli", "serve", "--root", str(root),
               "--port", str(free_port())]  # fmt: skip
    done = subprocess.run(
        command, check=False, capture_output=True, text=True, timeout=60, env=clean_env()
    )
    output = done.stdout + done.stderr
    assert done.returncode != 0, output
    assert "Listening at" not in output
    assert "cannot" in output and "copkg build" in output and words in output, output
    assert "Traceback" not in output, output


def test_serve_recovers_a_swap_cut_short(good_build: Path, tmp_path: Path) -> None:
    """A build killed between its two renames left no build/ but the previous one aside:
    `copkg serve`'s check (in its own process, as serve runs it) puts it back, whole."""
    root = project_with(good_build, tmp_path / "project")
    os.rename(root / "build", root / ".build-old-build-123")
    (root / ".build-new-build-x").mkdir()  # the killed build's half-written folder
    expected = Manifest.read(root / ".build-old-build-123").quads
    graphs, quads = check_store(Settings.load(root, environ={}))
    assert quads == expected == Manifest.read(root / "build").quads
    assert graphs == len(Manifest.read(root / "build").graphs)
    assert sorted(p.name for p in root.glob(".build-*")) == []


# -- a remote store that is down or silent -------------------------------------------------------


@pytest.mark.parametrize("state", ["down", "silent"])
def test_serve_refuses_a_remote_store_that_is_down_or_silent(tmp_path: Path, state: str) -> None:
    """What `copkg serve` checks before it listens, with COPKG_STORE_URL a SPARQL endpoint
    on a closed port, or on a socket that accepts and never answers."""
    import socket

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    if state == "down":
        listener.close()
    else:
        listener.listen(4)
    try:
        settings = Settings.load(
            tmp_path, environ={}, store_url=f"http://127.0.0.1:{port}/query", query_timeout=1
        )
        start = time.monotonic()
        with pytest.raises(CopkgError) as error:
            inspect_store(settings)
        assert time.monotonic() - start < 10
    finally:
        listener.close()
    words = "connection refused" if state == "down" else "did not answer within 1 s"
    assert f"http://127.0.0.1:{port}/query" in str(error.value) and words in str(error.value)
