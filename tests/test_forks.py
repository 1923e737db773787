"""Query workers forked from a template process (copkg.querying.forks): cheap to start, killed
and reaped through their pidfd and their template, replaced when the template dies."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
from web_helpers import disk_store

from copkg.querying.executor import Job
from copkg.querying.forks import Template
from copkg.querying.messages import receive_message, send_message
from copkg.querying.workers import ProcessExecutor

COUNT = Job("SELECT (COUNT(*) AS ?n) { ?s ?p ?o }", media_types={"select": "text/csv"})


def _state(pid: int) -> str | None:
    """The process's state letter (Z: a zombie), None when it is gone."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return None


def _config(path: Path) -> dict[str, object]:
    return {
        "path": str(path),
        "read_paths": (str(path),),
        "timeout": 5.0,
        "max_rows": 1000,
        "allowed_service_endpoints": (),
        "memory_limit": None,
        "expect": None,
    }


def test_a_killed_worker_says_how_it_ended_and_is_reaped(tmp_path: Path) -> None:
    template = Template()
    try:
        process, sock = template.fork()
        assert process.poll() is None
        with pytest.raises(subprocess.TimeoutExpired):
            process.wait(timeout=0.1)
        process.kill()
        assert process.wait(timeout=10) == -signal.SIGKILL
        assert _state(process.pid) is None  # reaped by the template when asked
        sock.close()
    finally:
        template.close()


def test_a_worker_ends_with_its_socket_and_answers_before(tmp_path: Path) -> None:
    path = disk_store(tmp_path / "store")
    template = Template()
    try:
        process, sock = template.fork()
        send_message(sock, _config(path))
        ready = receive_message(sock, time.monotonic() + 30, plain=True)
        assert ready[0] == "ready" and ready[1] == process.pid
        sock.close()  # the pool goes: the worker ends at EOF
        assert process.wait(timeout=10) == 0
    finally:
        template.close()


def test_a_dead_template_is_started_again(tmp_path: Path) -> None:
    template = Template()
    try:
        first, sock = template.fork()
        assert template.process is not None
        old = template.process.pid
        template.process.kill()
        template.process.wait(timeout=10)
        second, other = template.fork()  # the request fails once, then a new template forks
        assert template.process.pid != old
        assert second.poll() is None
        second.kill()
        assert second.wait(timeout=10) == -signal.SIGKILL
        sock.close()
        other.close()
        first.wait(timeout=10)  # its template gone, it ended at EOF; how is not known
    finally:
        template.close()


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def test_a_new_worker_costs_little_cpu(tmp_path: Path) -> None:
    """A pool's workers, forked from a template that imported copkg once, have used a small
    part of what a fresh interpreter's imports take (~0.4 s of CPU) by the time they have
    opened the store and answered: CPU time, not wall time, so a busy machine does not
    change it."""
    path = disk_store(tmp_path / "store")
    pool = ProcessExecutor(path, timeout=10, workers=2)
    try:
        assert pool.run(COUNT).body.startswith(b"n")
        spent = {pid: _cpu_seconds(pid) for pid in pool.pids()}
    finally:
        pool.close()
    assert len(spent) == 2
    assert all(seconds < 0.15 for seconds in spent.values()), spent
