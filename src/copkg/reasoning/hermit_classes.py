"""HermiT's classes kept between runs in a JVM class-data archive (AppCDS), for `copkg add`.

A JVM that starts HermiT spends most of its CPU loading and verifying the classes of HermiT
and the OWL API (about 1 s of CPU; the check itself takes a fraction of it). The first run
with a cache folder writes the classes it loaded into an archive there; later runs map the
archive instead (about a third less CPU). An archive holds classes from jar files only, so
the classes owlready2 ships beside HermiT.jar (its changes to HermiT) are put into a jar of
their own in the cache, before HermiT.jar on the class path as the folder is otherwise: the
same classes. The files are named by what they depend on (the java executable, HermiT, these
options, the cache's path); the JVM itself checks an archive against its class path and runs
without it when it does not match. `copkg add` keeps them in build/cache/ (the first run writes
them there, each add links them into the new build, which takes the same path).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import zipfile
from collections.abc import Callable
from pathlib import Path

import owlready2

#: HermiT as owlready2 ships it (its command line and the classes beside it).
HERMIT_DIR = Path(owlready2.__file__).parent / "hermit"
HERMIT_JAR = HERMIT_DIR / "HermiT.jar"
HERMIT_CLASSPATH = os.pathsep.join([str(HERMIT_DIR), str(HERMIT_JAR)])
PREFIX = "hermit-"


def _overrides() -> list[Path]:
    """The class files owlready2 puts before HermiT.jar, in a fixed order."""
    return sorted(p for p in (HERMIT_DIR / "org").rglob("*.class") if p.is_file())


def _key(cache: Path, java_exe: str, options: str) -> str:
    """What the files depend on: the JVM checks an archive against the paths of the class
    path it was written with (so the cache's own path too), the jars' sizes and times."""
    parts = [options, os.path.realpath(java_exe), os.path.realpath(cache)]
    for path in [Path(os.path.realpath(java_exe)), HERMIT_JAR, *_overrides()]:
        info = path.stat()
        parts.append(f"{path}:{info.st_size}:{info.st_mtime_ns}")
    return hashlib.sha256("\n".join(parts).encode("utf-8")).hexdigest()[:16]


def _write_jar(target: Path) -> None:
    """The override classes as a jar (written to a temporary name, then renamed)."""
    work = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        with zipfile.ZipFile(work, "w", zipfile.ZIP_STORED) as jar:
            for path in _overrides():
                jar.write(path, path.relative_to(HERMIT_DIR).as_posix())
        os.replace(work, target)
    finally:
        work.unlink(missing_ok=True)


def _nothing(_ok: bool) -> None:
    return None


def prepare(
    cache: Path | None, java_exe: str, options: str
) -> tuple[str, str, Callable[[bool], None]]:
    """The class path and the JVM options that share HermiT's classes through an archive in
    `cache` (the plain class path and no option without one), and what to call with whether
    the run succeeded (it keeps an archive the run wrote)."""
    if cache is None:
        return HERMIT_CLASSPATH, "", _nothing
    try:
        cache.mkdir(parents=True, exist_ok=True)
        key = _key(cache, java_exe, options)
        jar = cache / f"{PREFIX}{key}.jar"
        if not jar.is_file():
            _write_jar(jar)
    except OSError:  # a cache that cannot be written: run as without one
        return HERMIT_CLASSPATH, "", _nothing
    classpath = os.pathsep.join([str(jar), str(HERMIT_JAR)])
    archive = cache / f"{PREFIX}{key}.jsa"
    if archive.is_file():
        return classpath, f"-XX:SharedArchiveFile={archive}", _nothing
    written = cache / f".{archive.name}.{os.getpid()}.tmp"

    def keep(ok: bool) -> None:
        with contextlib.suppress(OSError):
            if ok and written.is_file():
                os.replace(written, archive)
            written.unlink(missing_ok=True)

    return classpath, f"-XX:ArchiveClassesAtExit={written}", keep
