"""A private Virtuoso server for the tests: Debian's `virtuoso-opensource` (`virtuoso-t`) started
on 127.0.0.1 on free ports, with its own virtuoso.ini and database folder in a temporary folder.

Its accounts are those of the deployment README.md describes: the anonymous `SPARQL` account
behind /sparql reads only; a push account (`copkg_push`) holds SPARQL_UPDATE and writes through
/sparql-auth and /sparql-graph-crud-auth with HTTP Digest authentication.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import secrets
import shutil
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

VIRTUOSO = shutil.which("virtuoso-t")
ISQL = shutil.which("isql-vt") or shutil.which("isql")
PUSH_USER = "copkg_push"

_INI = """\
[Database]
DatabaseFile = {db}/virtuoso.db
ErrorLogFile = {db}/virtuoso.log
LockFile = {db}/virtuoso.lck
TransactionFile = {db}/virtuoso.trx
xa_persistent_file = {db}/virtuoso.pxa
ErrorLogLevel = 7
FileExtend = 200
Striping = 0
TempStorage = TempDatabase

[TempDatabase]
DatabaseFile = {db}/virtuoso-temp.db
TransactionFile = {db}/virtuoso-temp.trx
Striping = 0

[Parameters]
ServerPort = 127.0.0.1:{sql_port}
DisableUnixSocket = 1
CheckpointInterval = 60
CaseMode = 2
DirsAllowed = ., {load}
NumberOfBuffers = {buffers}
MaxDirtyBuffers = {dirty}
ThreadsPerQuery = 2
MaxClientConnections = 10

[HTTPServer]
ServerPort = 127.0.0.1:{http_port}
ServerRoot = {www}
ServerThreads = 10
MaxClientConnections = 10
Charset = UTF-8
EnabledGzipContent = 0

[SPARQL]
ResultSetMaxRows = 1000000
MaxQueryExecutionTime = 120
MaxQueryCostEstimationTime = 0
"""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclasses.dataclass
class Virtuoso:
    """A running Virtuoso: its endpoints, its folders and the push account's password."""

    base: str
    sql_port: int
    folder: Path
    load_dir: Path
    dba_password: str
    push_password: str
    process: subprocess.Popen[bytes]

    @property
    def sparql(self) -> str:
        """The public, read-only endpoint (account `SPARQL`)."""
        return self.base + "/sparql"

    @property
    def sparql_auth(self) -> str:
        """Queries and updates as an authenticated user (HTTP Digest)."""
        return self.base + "/sparql-auth"

    @property
    def graph_crud(self) -> str:
        """The Graph Store Protocol as the anonymous account (read-only here)."""
        return self.base + "/sparql-graph-crud"

    @property
    def graph_crud_auth(self) -> str:
        """The Graph Store Protocol as an authenticated user (HTTP Digest)."""
        return self.base + "/sparql-graph-crud-auth"

    def isql(self, *statements: str, timeout: float = 120) -> str:
        """Run SQL statements as dba through isql; a failing statement raises."""
        assert ISQL is not None
        script = "\n".join(s.rstrip().rstrip(";") + ";" for s in statements) + "\n"
        done = subprocess.run(
            [ISQL, f"127.0.0.1:{self.sql_port}", "dba", self.dba_password,
             "VERBOSE=OFF", "BANNER=OFF", "PROMPT=OFF", "ERRORS=STDOUT"],
            input=script.encode(), capture_output=True, timeout=timeout, check=False,
        )  # fmt: skip
        out = done.stdout.decode("utf-8", "replace") + done.stderr.decode("utf-8", "replace")
        if done.returncode != 0 or "*** Error" in out:
            raise RuntimeError(f"isql failed ({done.returncode}): {out}")
        return out

    def version(self) -> str:
        out = self.isql("SELECT sys_stat('st_dbms_ver')")
        return next(line.strip() for line in out.splitlines() if line.strip()[:1].isdigit())

    def stop(self) -> None:
        with contextlib.suppress(RuntimeError, subprocess.TimeoutExpired):
            self.isql("shutdown", timeout=30)
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def start(folder: Path, buffers: int = 20000) -> Virtuoso:
    """Start a fresh Virtuoso in `folder` (a new database) and set up its accounts; `buffers`
    pages of 8 KB of memory for its database (20,000: 160 MB)."""
    assert VIRTUOSO is not None and ISQL is not None
    db, load, www = folder / "db", folder / "load", folder / "www"
    for path in (db, load, www):
        path.mkdir(parents=True, exist_ok=True)
    http_port, sql_port = free_port(), free_port()
    ini = folder / "virtuoso.ini"
    ini.write_text(
        _INI.format(
            db=db,
            load=load,
            www=www,
            http_port=http_port,
            sql_port=sql_port,
            buffers=buffers,
            dirty=buffers * 3 // 4,
        ),
        encoding="utf-8",
    )
    log = (folder / "server.log").open("wb")
    process = subprocess.Popen(
        [VIRTUOSO, "+foreground", "+configfile", str(ini)],
        cwd=folder,
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**os.environ, "LC_ALL": "C"},
    )
    server = Virtuoso(
        base=f"http://127.0.0.1:{http_port}",
        sql_port=sql_port,
        folder=folder,
        load_dir=load,
        dba_password="dba",
        push_password=secrets.token_hex(12),
        process=process,
    )
    try:
        _wait(server)
        dba_password = secrets.token_hex(12)
        server.isql(
            f"DB.DBA.USER_CREATE('{PUSH_USER}', '{server.push_password}')",
            f'GRANT SPARQL_UPDATE TO "{PUSH_USER}"',
            f"DB.DBA.USER_PASSWORD_SET('dba', '{dba_password}')",
        )
        server.dba_password = dba_password
    except BaseException:
        process.kill()
        process.wait()
        raise
    return server


def _wait(server: Virtuoso) -> None:
    """Until the server answers a query on HTTP (90 s at most)."""
    deadline = time.monotonic() + 90
    while True:
        if server.process.poll() is not None:
            log = (server.folder / "server.log").read_text(errors="replace")
            raise RuntimeError(f"virtuoso-t stopped: {log[-2000:]}")
        try:
            with urllib.request.urlopen(server.sparql + "?query=ASK%7B%7D", timeout=2):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise RuntimeError("virtuoso-t did not answer on HTTP in 90 s") from None
            time.sleep(0.2)
