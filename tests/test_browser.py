"""End to end in a real headless browser (Debian's chromium driven by Playwright): the landing
page of a live server, a role's page, and the query page running an example query."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from test_web_pages import make_web_project

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]

pytestmark = [pytest.mark.browser, pytest.mark.server]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    from web_helpers import LiveServer

    settings = make_web_project(tmp_path_factory.mktemp("browser") / "project")
    with LiveServer(root=settings.root) as live:
        yield live.url


@pytest.fixture(scope="module")
def page(server: str) -> Iterator[object]:
    if not CHROMIUM.is_file() and shutil.which("chromium") is None:
        pytest.skip("Debian's chromium is not installed (/usr/bin/chromium): "
                    "apt-get install -y chromium")
    sync_api = pytest.importorskip("playwright.sync_api",
                                   reason="the playwright Python package is not installed")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM if CHROMIUM.is_file() else shutil.which("chromium")),
            args=CHROMIUM_ARGS, headless=True,
        )
        context = browser.new_context()
        requested: list[str] = []
        context.on("request", lambda request: requested.append(request.url))
        tab = context.new_page()
        tab.set_default_timeout(20_000)
        tab.requested = requested  # type: ignore[attr-defined]
        yield tab
        context.close()
        browser.close()


def test_landing_to_role_to_query(page, server: str) -> None:  # noqa: ANN001 - Playwright Page
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))

    page.goto(server + "/")
    assert "copkg" in page.title()
    role_links = page.locator("#roles a.role")
    assert role_links.count() == 5
    role_links.filter(has_text="facilitation").first.click()
    page.wait_for_url("**/id/josserand2004/facilitation")
    assert page.locator("h1").inner_text().lower() == "facilitation"
    assert page.locator("#evidence blockquote").count() >= 1

    page.goto(server + "/query")
    page.wait_for_selector("#query-form[data-ready='true']")
    options = page.locator("#examples option")
    assert options.count() > 1
    page.select_option("#examples", "role-framework")
    assert "ManagementRole" in page.locator("#sparql").input_value()
    page.click("#run")
    page.wait_for_selector("#result-table tbody tr")
    rows = page.locator("#result-table tbody tr")
    assert rows.count() >= 5
    links = page.locator("#result-table a[href^='/id/josserand2004/']")
    assert links.count() > 0
    assert "rows" in page.locator("#status").inner_text()
    assert errors == []
    outside = [u for u in page.requested if not u.startswith(server) and not u.startswith("data:")]
    assert outside == [], f"requests left the server: {outside}"
