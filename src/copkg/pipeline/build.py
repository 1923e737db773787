"""`copkg build`: sources -> named graphs -> infer -> validate -> export, swapped in atomically."""

from __future__ import annotations

import contextlib
import fcntl
import gc
import hashlib
import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from importlib.metadata import version
from pathlib import Path
from typing import Any

from copkg import __version__
from copkg.config import Settings
from copkg.errors import CopkgError, Problem
from copkg.pipeline import corpus_checks, exports, quote_checks, steps, streamed, study_view
from copkg.rdf_io import atomic_write
from copkg.store.embedded import OxigraphStore
from copkg.validation.report import engine_version

MANIFEST = "manifest.json"
STORE_DIR = "oxigraph"
MANIFEST_FORMAT = 1
TMP_PREFIX = ".build-new-"
_OLD_PREFIX = ".build-old-"
BUILD_ID_LENGTH = 16

#: How many times load_build opens a build that another process swaps out meanwhile.
OPEN_ATTEMPTS = 5


@dataclass
class Manifest:
    """What a build read, what it holds and how long each step took."""

    sources: dict[str, str]
    graphs: dict[str, int]
    quads: int
    files: dict[str, str]
    timings: dict[str, float]
    created: str
    version: str = __version__
    format: int = MANIFEST_FORMAT
    complete: bool = True
    validated: bool = True
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> bytes:
        return json.dumps(self.__dict__, indent=2, sort_keys=True).encode("utf-8") + b"\n"

    @property
    def identity(self) -> str:
        """What tells this build from any other: the SHA-256 of the manifest (its sources,
        graphs, exports and time). Answers cached for a build are keyed on it."""
        return hashlib.sha256(self.to_json()).hexdigest()

    @property
    def build_id(self) -> str:
        """The build's name in answers (`Copkg-Build` header, ETags): its identity's first
        16 hex digits. manifest.json is written as to_json(), so this is also the start of
        the SHA-256 of the file."""
        return self.identity[:BUILD_ID_LENGTH]

    @classmethod
    def read(cls, build_dir: Path) -> Manifest:
        """The manifest of a build; 500 when it is missing, unreadable or not complete."""
        path = build_dir / MANIFEST
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            manifest = cls(**data)
        except FileNotFoundError as exc:
            raise _broken(build_dir, "it has no manifest.json (an incomplete build?)") from exc
        except (OSError, ValueError, TypeError) as exc:
            raise _broken(build_dir, f"its manifest.json is unreadable: {exc}") from exc
        if manifest.format != MANIFEST_FORMAT or not manifest.complete:
            raise _broken(build_dir, "its manifest.json says the build is not complete")
        return manifest


def _broken(build_dir: Path, why: str) -> CopkgError:
    return CopkgError(
        f"the build in {build_dir} cannot be used: {why}; run `copkg build` again",
        status=500,
        problems=[Problem(why, file=str(build_dir / MANIFEST))],
    )


@contextlib.contextmanager
def _build_lock(settings: Settings) -> Iterator[None]:
    """One build at a time in a project (an exclusive lock on the folder that holds build/)."""
    parent = settings.build_dir.parent
    parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(parent, os.O_RDONLY)  # lock the folder itself: no lock file to clean up
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


@contextlib.contextmanager
def locked(settings: Settings) -> Iterator[None]:
    """Hold the build lock, with any swap cut short repaired first: for changes to the corpus
    and the build that must not interleave with a build (`copkg add`)."""
    with _build_lock(settings):
        recover(settings)
        yield


def build_state(
    settings: Settings, sources: dict[str, list[Path]] | None = None
) -> tuple[str, Manifest | None]:
    """`"missing"` (no build), `"stale"` (a source changed since) or `"fresh"`, and the
    manifest when there is a build (`sources`: steps.source_files(), if at hand)."""
    if not settings.build_dir.exists():
        return "missing", None
    manifest = Manifest.read(settings.build_dir)
    return ("stale" if is_stale(settings, manifest, sources) else "fresh"), manifest


def recover(settings: Settings) -> None:
    """Restore the previous build if a swap was cut short, and remove leftovers of killed builds."""
    parent, name = settings.build_dir.parent, settings.build_dir.name
    olds = sorted(parent.glob(f"{_OLD_PREFIX}{name}-*"))
    if not settings.build_dir.exists() and olds:
        os.rename(olds.pop(), settings.build_dir)
    for leftover in [*olds, *parent.glob(f"{TMP_PREFIX}{name}-*")]:
        shutil.rmtree(leftover, ignore_errors=True)


def swap_in(new: Path, build_dir: Path) -> None:
    """Make `new` the build: two renames, recoverable if cut between them (see recover)."""
    old = None
    if build_dir.exists():
        old = build_dir.parent / f"{_OLD_PREFIX}{build_dir.name}-{time.time_ns()}"
        os.rename(build_dir, old)
    os.rename(new, build_dir)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


Step = Callable[..., Any]


def build(settings: Settings, *, validate: bool = True, owl: bool = False) -> Manifest:
    """Build the dataset into a fresh folder and swap it in for build/; raise on any failure.

    Every study is checked against the others as `copkg add` checks a bundle (always), then
    SHACL-validated and, with `owl`, checked by HermiT where Java is present (both skipped
    when the last build validated the same data). A failed or killed build leaves the
    previous build/ as it was. `validate=False` leaves every check out (the manifest says so):
    for benchmarks and tests of querying only.
    """
    with _build_lock(settings):
        recover(settings)
        return build_locked(settings, validate, owl)


def build_locked(settings: Settings, validate: bool = True, owl: bool = False) -> Manifest:
    """The build itself; the caller holds the build lock."""
    work = Path(
        tempfile.mkdtemp(
            prefix=f"{TMP_PREFIX}{settings.build_dir.name}-", dir=settings.build_dir.parent
        )
    )
    work.chmod(0o755)
    try:
        manifest = _build_into(settings, work, validate, owl)
        swap_in(work, settings.build_dir)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    return manifest


def _build_into(settings: Settings, work: Path, validate: bool, owl: bool) -> Manifest:
    timings: dict[str, float] = {}
    cpu: dict[str, float] = {}  # CPU seconds of each step (all threads: RocksDB's too)

    def timed(name: str, step: Step, *args: Any, **options: Any) -> Any:
        start, used = time.perf_counter(), time.process_time()
        result = step(*args, **options)
        timings[name] = round(time.perf_counter() - start, 4)
        cpu[name] = round(time.process_time() - used, 4)
        return result

    # everything happens in the on-disk store, a graph at a time (pipeline.streamed): load,
    # check, validate (before the rules), infer, export
    stats: dict[str, list[int]] = {}
    hashes = steps.source_hashes(settings, stats=stats)
    extra: dict[str, Any] = {"exports": exports.LAYOUT, "cpu": cpu, "source_stats": stats}
    key = validation_key(settings, hashes) if validate else None
    before = _validated_before(settings, key) if key is not None else None
    shacl = validate and (before is None or (owl and before.extra.get("owl") != "consistent"))
    store = OxigraphStore(work / STORE_DIR)
    try:
        spool = work / "shacl-batches" if shacl else None
        loaded = timed("load", streamed.load, settings, store, originals=shacl, spool=spool)
        if validate:
            extra["fidelity"] = timed("check_studies", streamed.check_studies, settings, loaded)
            if not shacl and before is not None:
                timings["validate"] = 0.0
                extra["validation"] = "the data, ontology and shapes are those of the last build"
                extra["owl"] = before.extra.get("owl", "not run")
            else:
                outcome = timed("validate", streamed.validate, settings, loaded)
                loaded.originals = None  # only validation reads them
                if not outcome.conforms:
                    raise CopkgError(
                        "the data does not conform to the shapes (build/ left as it was)",
                        status=422,
                        problems=steps.shacl_problems(outcome, loaded)
                        or [Problem(outcome.text.strip())],
                    )
                extra["owl"], problems = (
                    timed("owl", steps.owl_problems, loaded) if owl else ("not run (not asked)", [])
                )
                if problems:
                    raise CopkgError(
                        "the studies make the ontology inconsistent (build/ left as it was)",
                        status=422,
                        problems=problems,
                    )
            extra["validation_key"] = key
        timed("infer", steps.infer, settings, store)  # the derivations stay in the store
        timed("check_queries", steps.check_queries, settings)
        files, segmented = timed("export", streamed.export, loaded, work)
        extra |= segmented
        graphs = steps.graph_counts(store)
        quads = store.quad_count()
        timed("store", store.flush)
        del loaded
    finally:
        del store
        gc.collect()  # close RocksDB before the folder is renamed and reopened read-only
    manifest = Manifest(
        sources=hashes,
        graphs=graphs,
        quads=quads,
        files=files,
        timings=timings,
        created=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        validated=validate,
        extra=extra,
    )
    atomic_write(work / MANIFEST, manifest.to_json())
    return manifest


def validation_key(settings: Settings, hashes: dict[str, str]) -> str:
    """What a validation outcome depends on: the data, the ontology and the shapes (their
    hashes), and the engine, code and versions that validate."""
    validated = {
        path: digest
        for path, digest in hashes.items()
        if not path.startswith((f"{settings.rules_dir.name}/", f"{settings.queries_dir.name}/"))
    }
    package = Path(__file__).resolve().parents[1]
    code = sorted((package / "validation").rglob("*.py"))
    parts = {
        "sources": validated,
        "copkg": __version__,
        "engine": engine_version(),
        "pyshacl": version("pyshacl"),
        "code": {p.relative_to(package).as_posix(): steps.sha256(p) for p in code},
        "steps.py": steps.sha256(Path(steps.__file__)),
        "corpus_checks.py": steps.sha256(Path(corpus_checks.__file__)),
        "quote_checks.py": steps.sha256(Path(quote_checks.__file__)),
        "study_view.py": steps.sha256(Path(study_view.__file__)),
        "streamed.py": steps.sha256(Path(streamed.__file__)),
    }
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()


def _validated_before(settings: Settings, key: str) -> Manifest | None:
    """The build in place if it validated (and so passed) exactly these inputs."""
    try:
        old = Manifest.read(settings.build_dir)
    except CopkgError:
        return None
    return old if old.validated and old.extra.get("validation_key") == key else None


def is_stale(
    settings: Settings, manifest: Manifest, sources: dict[str, list[Path]] | None = None
) -> bool:
    """Whether any source, rule, shape or query changed since the build (a file whose size and
    modification time are those the build recorded is taken as unchanged, not read)."""
    known = (manifest.sources, manifest.extra.get("source_stats", {}))
    return steps.source_hashes(settings, sources, known=known) != manifest.sources


def load_build(settings: Settings, *, rebuild: str = "missing", **options: Any) -> OxigraphStore:
    """Open the build's store read-only, building first if it is missing.

    `rebuild="stale"` also rebuilds when a source changed; `"never"` refuses a missing build.
    A build whose manifest is missing or incomplete, or whose store does not hold what the
    manifest says, is refused with a clear error rather than served.
    """
    build_dir = settings.build_dir
    if not build_dir.exists() or rebuild == "stale":
        # under the lock, so that processes starting together build once, not once each
        with _build_lock(settings):
            recover(settings)
            if not build_dir.exists():
                if rebuild == "never":
                    raise CopkgError(
                        f"there is no build in {build_dir}: run `copkg build`", status=500
                    )
                build_locked(settings)
            elif rebuild == "stale" and is_stale(settings, Manifest.read(build_dir)):
                build_locked(settings)
    for _ in range(OPEN_ATTEMPTS):
        store, _manifest = _open_consistent(build_dir, options)
        if store is not None:
            return store
    raise _broken(build_dir, "it was replaced again and again while it was being opened")


def _open_consistent(
    build_dir: Path, options: dict[str, Any]
) -> tuple[OxigraphStore | None, Manifest]:
    """The build's store and manifest, or (None, manifest) when a build swapped in meanwhile.

    A swap replaces the whole folder by a rename and a new build never has an old identity, so
    the same manifest read before and after opening means every file opened in between was
    that build's.
    """
    manifest = Manifest.read(build_dir)
    if not (build_dir / STORE_DIR).is_dir():
        raise _broken(build_dir, f"its {STORE_DIR}/ store is missing")
    try:
        store = OxigraphStore.open_read_only(build_dir / STORE_DIR, **options)
    except CopkgError as exc:
        if _identity_now(build_dir) != manifest.identity:
            return None, manifest
        raise _broken(build_dir, exc.message) from exc
    if _identity_now(build_dir) != manifest.identity:
        return None, manifest
    if store.quad_count() != manifest.quads:
        raise _broken(
            build_dir,
            f"its store holds {store.quad_count()} quads, the manifest says {manifest.quads}",
        )
    store.build_identity = manifest.identity
    store.build_id = manifest.build_id
    return store, manifest


def _identity_now(build_dir: Path) -> str | None:
    try:
        return Manifest.read(build_dir).identity
    except CopkgError:
        return None
