"""Opening a build (checked against its manifest) or another store the settings name."""

from __future__ import annotations

import hashlib
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any, cast

from copkg.config import Settings
from copkg.errors import CopkgError, Problem
from copkg.pipeline import exports, segments
from copkg.pipeline.build import Manifest, load_build, locked
from copkg.pipeline.push import check_pushed
from copkg.querying.messages import error_from_dict, error_to_dict, receive_message, send_message
from copkg.store import Store
from copkg.store.embedded import OxigraphStore
from copkg.store.remote import SparqlEndpointStore
from copkg.store.temporary import TemporaryStore


def open_store(settings: Settings) -> Store:
    """The store the settings point at: the build's on-disk store unless store_url names another.

    `store_url` may be a directory of an on-disk pyoxigraph store, `memory:` for an empty
    writable one of this process (in a temporary folder that goes with it, so that query
    workers can read its snapshots: copkg.store.temporary), or the query URL of a SPARQL
    endpoint (http(s)), used read-only: refused when `copkg push` left it incomplete or it no
    longer holds what the push recorded.
    """
    options: dict[str, Any] = {
        "timeout": settings.query_timeout,
        "max_rows": settings.max_rows,
        "allowed_service_endpoints": settings.allowed_service_endpoints,
    }
    url = settings.store_url
    if url is None:
        return load_build(settings, **options)
    if url == "memory:":
        return TemporaryStore(**options)
    if url.startswith(("http://", "https://")):
        remote = SparqlEndpointStore(url, timeout_param=settings.remote_timeout_param, **options)
        check_pushed(remote)
        return remote
    path = Path(url.removeprefix("file://")).expanduser()
    return OxigraphStore.open_read_only(path, **options)


def inspect_store(settings: Settings) -> tuple[int, int]:
    """Open the store (building it if missing) and check the build's exports against its
    manifest: (named graphs, quads), or CopkgError (500) saying what is wrong."""
    try:
        store = open_store(settings)
        counts = (len(store.graphs()), store.quad_count())
    except CopkgError:
        raise
    except Exception as exc:  # RocksDB's corruption errors, say: report them, no traceback
        if settings.store_url is not None:
            raise CopkgError(f"cannot open the store: {exc}", status=500) from exc
        raise CopkgError(
            f"the build in {settings.build_dir} cannot be used: cannot open its store: {exc}; "
            "run `copkg build` again",
            status=500,
        ) from exc
    if settings.store_url is None:
        check_exports(settings.build_dir)
    return counts


def check_exports(build_dir: Path) -> None:
    """Refuse a build whose exported files (the segments under exports/, and copkg.nq and
    copkg.trig where written) are missing or differ from the hashes in its manifest (and in
    joined.json): a truncated or edited file means a damaged build."""
    manifest = Manifest.read(build_dir)
    digests = {**manifest.files, **segments.joined_digests(build_dir)}
    for name, expected in sorted(digests.items()):
        path = build_dir / name
        digest = hashlib.sha256()
        try:
            with path.open("rb") as data:
                for block in iter(lambda: data.read(1 << 20), b""):
                    digest.update(block)
        except OSError as exc:
            raise _damaged(build_dir, path, f"cannot be read ({exc.strerror or exc})") from exc
        if digest.hexdigest() != expected:
            raise _damaged(build_dir, path, "does not match the hash in manifest.json")


def _damaged(build_dir: Path, path: Path, why: str) -> CopkgError:
    return CopkgError(
        f"the build in {build_dir} cannot be used: {path.name} {why} (truncated or changed "
        "since the build?); run `copkg build` again",
        status=500,
        problems=[Problem(why, file=str(path))],
    )


def join_exports(settings: Settings) -> dict[str, str]:
    """Write build/copkg.nq and build/copkg.trig from the build's segments (`copkg export
    dataset`; each segment checked against the manifest on the way), under the build lock;
    their SHA-256. A build of an older copkg has them already."""
    with locked(settings):
        manifest = Manifest.read(settings.build_dir)
        if manifest.extra.get("exports") != exports.LAYOUT:
            return {name: manifest.files[name] for name in exports.FILES if name in manifest.files}
        layout = segments.Layout.from_json(manifest.extra.get("segments"))
        return segments.write_joined(settings.build_dir, manifest.files, layout)


def check_store(settings: Settings) -> tuple[int, int]:
    """Open the store once before serving (building first if there is no build).

    A corrupted or incomplete build raises CopkgError (500) saying what is wrong, so the server
    refuses to start rather than serve it. Returns (named graphs, quads).

    This runs in a child process: RocksDB leaves background threads in a process that opened
    an on-disk store, and gunicorn workers forked from such a process crash when they exit.
    """
    parent, child = socket.socketpair()
    with parent:
        try:
            process = subprocess.Popen(
                [sys.executable, "-c", "from copkg.pipeline.open import check_main; check_main()",
                 str(child.fileno())],
                pass_fds=(child.fileno(),),
                stdin=subprocess.DEVNULL,
            )  # fmt: skip
        finally:
            child.close()
        try:
            send_message(parent, settings)
            status, payload = receive_message(parent)
        except (EOFError, OSError) as exc:
            process.wait()
            raise CopkgError(
                f"checking the store failed (exit status {process.returncode})", status=500
            ) from exc
        process.wait()
    if status == "error":
        raise error_from_dict(payload)
    return cast(tuple[int, int], payload)


def check_main() -> None:
    """The child process of check_store: open (or build) the store and report on it."""
    sock = socket.socket(fileno=int(sys.argv[1]))
    settings = receive_message(sock)
    try:
        reply: tuple[str, Any] = ("ok", inspect_store(settings))
    except CopkgError as exc:
        reply = ("error", error_to_dict(exc))
    send_message(sock, reply)
