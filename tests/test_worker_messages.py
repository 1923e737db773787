"""A sandboxed query worker's replies are read as plain data: a worker taken over through the
engine cannot run code in the service by what it sends back."""

from __future__ import annotations

import pickle
import socket
from pathlib import Path

import pytest

from copkg.querying.messages import loads_plain, receive_message, send_message


class _Runs:
    """What a taken-over worker would send: unpickling it calls a function of its choice."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (Path.touch, (str(self.marker),))  # type: ignore[return-value]


def test_plain_replies_cross_intact() -> None:
    reply = ("ok", ("select", "application/sparql-results+json", 12, 3, False))
    error = (
        "error",
        {"message": "m", "status": 400, "problems": [{"message": "m"}], "headers": {}},
    )
    for message in (reply, error, ("ready", 42, "seccomp and landlock", True), {"open": "/x"}):
        assert loads_plain(pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)) == message


def test_a_reply_that_names_a_function_runs_nothing(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    payload = pickle.dumps(("ok", _Runs(marker)))
    pickle.loads(payload)  # what reading it as any pickle did: the function ran
    assert marker.exists()
    marker.unlink()
    with pytest.raises(pickle.UnpicklingError, match="plain data only"):
        loads_plain(payload)
    parent, child = socket.socketpair()
    with parent, child:
        send_message(child, ("ok", _Runs(marker)))
        with pytest.raises(pickle.UnpicklingError):
            receive_message(parent, plain=True)
    assert not marker.exists()
