"""Start-up warm-up: every named query runs once with its default parameters, in a background
thread of the web process, so that their answers are kept (`copkg.querying.memo`) before the first
client asks. The graph only changes with a new build, which a new server (or a reloaded
worker) serves and warms again."""

from __future__ import annotations

import logging
import threading
import time
from http import HTTPStatus

from flask import Flask

from copkg.web import named_queries

log = logging.getLogger(__name__)

#: The media type asked for: the API's default (JSON rows, which the query worker writes).
ACCEPT = "application/json"


def warm_up(app: Flask) -> dict[str, int]:
    """Ask the app for each named query (default parameters) in turn: {name: HTTP status}."""
    with app.app_context():
        names = sorted(named_queries())
    client = app.test_client()
    statuses = {}
    start = time.perf_counter()
    for name in names:
        try:
            statuses[name] = client.get(
                f"/api/queries/{name}", headers={"Accept": ACCEPT}
            ).status_code
        except Exception:  # a warm-up never takes the worker down; the request will say why
            log.exception("warm-up: /api/queries/%s failed", name)
            statuses[name] = 500
    kept = sum(status == HTTPStatus.OK for status in statuses.values())
    log.info(
        "warm-up: %d of %d named queries answered in %.1f s", kept, len(names),
        time.perf_counter() - start,
    )  # fmt: skip
    return statuses


def start_warm_up(app: Flask) -> threading.Thread:
    """warm_up(app) in a daemon thread (it never holds up the end of the process)."""
    thread = threading.Thread(target=warm_up, args=(app,), name="copkg-warm-up", daemon=True)
    thread.start()
    return thread
