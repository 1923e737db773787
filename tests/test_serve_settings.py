"""`copkg serve`'s gunicorn settings: it writes gunicorn's access log line itself, cheaply (the
same line gunicorn's own logger writes for the same request), and runs a worker a core."""

from __future__ import annotations

import logging
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from gunicorn.config import Config
from gunicorn.glogging import Logger
from web_helpers import REPO, free_port

from copkg.web import server
from copkg.web.server import ACCESS_LOG_FORMAT, CopkgLogger, default_workers


class Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


def access_line(logger_class: type[Logger], environ: dict[str, Any], sent: int | None) -> str:
    cfg = Config()
    cfg.set("accesslog", "-")
    logger = logger_class(cfg)
    lines = Lines()
    logger.access_log.handlers = [lines]
    response = SimpleNamespace(status="200 OK", sent=sent, headers=[("Content-Type", "x")])
    request = SimpleNamespace(headers=[("Host", "127.0.0.1")])
    logger.access(response, request, environ, timedelta(microseconds=1500))
    assert len(lines.lines) == 1
    return lines.lines[0]


@pytest.mark.parametrize(
    "extra",
    [
        {},
        {"HTTP_REFERER": "http://e/q?x=%20", "HTTP_USER_AGENT": 'curl "8"'},
        {"HTTP_AUTHORIZATION": "Basic dXNlcjpwYXNz"},  # user:pass
    ],
)
@pytest.mark.parametrize("sent", [1234, None])
def test_the_access_line_is_gunicorns(
    extra: dict[str, str], sent: int | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    # one clock for both loggers (copkg's keeps gunicorn's stamp for the second): the two lines
    # were written a second apart once, on a busy machine
    monkeypatch.setattr(Logger, "now", lambda _self: "[07/Dec/2026:17:47:44 +0000]")
    environ = {
        "REMOTE_ADDR": "127.0.0.1",
        "REQUEST_METHOD": "GET",
        "RAW_URI": "/sparql?query=SELECT%20*%20%7B%7D&x=%25s",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "PATH_INFO": "/sparql",
        **extra,
    }
    ours = access_line(CopkgLogger, environ, sent)
    assert ours == access_line(Logger, environ, sent)
    assert '"GET /sparql?query=SELECT%20*%20%7B%7D&x=%25s HTTP/1.1" 200' in ours
    if "HTTP_AUTHORIZATION" in extra:
        assert " - user [" in ours


def test_the_format_is_gunicorns_default() -> None:
    assert Config().access_log_format == ACCESS_LOG_FORMAT


@pytest.mark.parametrize(("cores", "workers"), [(None, 1), (1, 1), (2, 2), (64, 4)])
def test_a_worker_a_core_up_to_a_bound(
    monkeypatch: pytest.MonkeyPatch, cores: int | None, workers: int
) -> None:
    monkeypatch.setattr(server.os, "cpu_count", lambda: cores)
    assert default_workers() == workers == min(cores or 1, server.MAX_DEFAULT_WORKERS)


def test_memory_store_with_several_workers_is_refused(tmp_path: Path) -> None:
    """`memory:` is one store per process: two gunicorn workers kept two stores (6 inserts
    split 4 + 2, reads alternating), so serve refuses it before it starts."""
    from copkg.config import Settings
    from copkg.errors import CopkgError
    from copkg.web.server import serve

    settings = Settings.load(REPO, environ={}, store_url="memory:")
    with pytest.raises(CopkgError, match="--workers 1"):
        serve(settings, port=free_port(), workers=2)


def test_concurrent_queries_and_updates_on_a_memory_store() -> None:
    """With `--store memory:` 4 concurrent valid queries gave 500s about half the time, and the
    worker stayed broken: rdflib's SPARQL parser (then on the query path) is not thread-safe.
    Queries are now read by copkg's lexer, and updates are parsed under one lock."""
    import threading

    from web_helpers import memory_store

    from copkg.web.app import create_app

    app = create_app(
        {"STORE": memory_store(), "TESTING": True, "UPDATE_TOKEN": "t", "QUERY_WORKERS": 4}
    )
    statuses: list[int] = []

    def work(i: int) -> None:
        client = app.test_client()
        for j in range(10):
            if (i + j) % 3:
                query = f"SELECT (COUNT(*) AS ?n) {{ ?s ?p ?o FILTER(?o != {i * 100 + j}) }}"
                statuses.append(client.get("/sparql", query_string={"query": query}).status_code)
            else:
                graph = f"<http://example.org/g{i}>"
                update = f"INSERT DATA {{ GRAPH {graph} {{ <http://a> <http://b> {j} }} }}"
                statuses.append(
                    client.post(
                        "/update",
                        data=update,
                        content_type="application/sparql-update",
                        headers={"Authorization": "Bearer t"},
                    ).status_code
                )

    try:
        threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        app.extensions["copkg"].close()
    assert statuses and set(statuses) == {200}, sorted(set(statuses))
