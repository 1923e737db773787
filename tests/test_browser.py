"""End to end in a real headless browser (Debian's chromium driven by Playwright): the landing
page of a live server, a role's page, and the query page: its editor (highlighting, completion,
Ctrl+Enter), answers (labels, paging, sorting, row limit, downloads, triples, errors), named
queries with their parameter form, permalinks, axe-core and the layout at 390 px. Screenshots of
the query page at 1280x900 and 390x844 go to the folder COPKG_SCREENSHOTS names, when it is set
(pictures for a person to look at: nothing asserts on them)."""

from __future__ import annotations

import contextlib
import os
import shutil
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import requests
from test_web_pages import make_web_project

if TYPE_CHECKING:  # playwright is optional: the tests skip without it
    from playwright.sync_api import Browser, Page

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
WIDE = {"width": 1280, "height": 900}
NARROW = {"width": 390, "height": 844}

pytestmark = [pytest.mark.browser, pytest.mark.server]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, run_folder: Path) -> Iterator[str]:
    from web_helpers import LiveServer

    settings = make_web_project(tmp_path_factory.mktemp("browser") / "project", run_folder)
    with LiveServer(root=settings.root) as live:
        yield live.url


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.is_file() and shutil.which("chromium") is None:
        pytest.skip(
            "Debian's chromium is not installed (/usr/bin/chromium): apt-get install -y chromium"
        )
    sync_api = pytest.importorskip(
        "playwright.sync_api", reason="the playwright Python package is not installed"
    )
    with sync_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=str(CHROMIUM if CHROMIUM.is_file() else shutil.which("chromium")),
            args=CHROMIUM_ARGS,
            headless=True,
        )
        yield launched
        launched.close()


def _policy_violation(message) -> bool:  # noqa: ANN001 - Playwright ConsoleMessage
    """A Content-Security-Policy violation, except the one the bundled CodeMirror causes at
    load (one blocked inline style, with no visible effect: the editor styles itself through
    adopted style sheets and the CSSOM, which the policy allows)."""
    if "Content Security Policy" not in message.text:
        return False
    source = (message.location or {}).get("url", "")
    return not (
        message.text.startswith("Applying inline style")
        and source.endswith("/static/vendor/copkg-editor.js")
    )


@pytest.fixture
def page(browser: Browser, server: str) -> Iterator[Page]:
    """A fresh tab at 1280x900 that records its requests and its script errors."""
    context = browser.new_context(viewport=WIDE)
    requested: list[str] = []
    context.on("request", lambda request: requested.append(request.url))
    tab = context.new_page()
    tab.set_default_timeout(20_000)
    errors: list[str] = []
    tab.on("pageerror", lambda exc: errors.append(str(exc)))
    tab.on(
        "console",
        lambda message: errors.append(message.text) if _policy_violation(message) else None,
    )
    tab.requested = requested  # type: ignore[attr-defined]
    tab.errors = errors  # type: ignore[attr-defined]
    yield tab
    context.close()
    assert errors == [], f"script errors: {errors}"
    outside = [u for u in requested if not u.startswith(server) and not u.startswith("data:")]
    assert outside == [], f"requests left the server: {outside}"


@pytest.fixture(scope="module")
def screenshots(pytestconfig: pytest.Config) -> Path | None:
    """The folder COPKG_SCREENSHOTS names (printed), or None: no screenshot is taken."""
    given = os.environ.get("COPKG_SCREENSHOTS")
    if not given:
        return None
    folder = Path(given)
    folder.mkdir(parents=True, exist_ok=True)
    capture = pytestconfig.pluginmanager.getplugin("capturemanager")
    with capture.global_and_fixture_disabled() if capture else contextlib.nullcontext():
        print(f"\nscreenshots of the pages: {folder}")
    return folder


def axe_violations(page) -> list[str]:  # noqa: ANN001 - Playwright Page
    """axe-core's violations on the page as it is now (rule, impact, first elements)."""
    axe = pytest.importorskip(
        "axe_playwright_python", reason="axe-playwright-python (which ships axe-core) is missing"
    )
    # evaluated through the DevTools protocol: the pages' Content-Security-Policy forbids the
    # inline <script> that add_script_tag would insert
    if not page.evaluate("() => typeof axe !== 'undefined'"):
        page.evaluate((Path(axe.__file__).parent / "axe.min.js").read_text(encoding="utf-8"))
    # resultTypes: axe reports every violation still, and passes, incomplete and inapplicable
    # results with one node each (on the ontology page's ~7,000 elements, a fifth of axe's time
    # went to reporting the nodes that pass)
    found = page.evaluate(
        "() => axe.run(document, {resultTypes: ['violations']}).then(r => r.violations.map(v =>"
        " v.id + ' (' + v.impact + '): ' + v.nodes.slice(0, 3).map(n => n.target.join(' '))"
        ".join(', ')))"
    )
    return list(found)


#: A page's screenshot stops after this many screens (the ontology's documentation is ~80 at
#: 1280 px and ~120 at 390 px: taking it whole took seconds of the browser's time for a
#: picture nobody scrolls through).
SCREENS = 8


def screenshot(page, folder: Path | None, name: str) -> None:  # noqa: ANN001 - Playwright Page
    """The page from its top, whole or its first SCREENS screens, as folder/name (if a folder)."""
    if folder is None:
        return
    viewport = page.viewport_size
    height = page.evaluate("document.documentElement.scrollHeight")
    clip = {"x": 0, "y": 0, "width": viewport["width"], "height": viewport["height"] * SCREENS}
    page.screenshot(
        path=str(folder / name), full_page=True, clip=clip if height > clip["height"] else None
    )


def too_wide(page) -> list[str]:  # noqa: ANN001 - Playwright Page
    """Elements that stick out of the viewport (the page would scroll sideways)."""
    return list(
        page.evaluate(
            """() => {
          const width = document.documentElement.clientWidth;
          const out = [];
          if (document.documentElement.scrollWidth > width) {
            out.push('document ' + document.documentElement.scrollWidth + ' > ' + width);
          }
          for (const el of document.querySelectorAll('body *')) {
            const box = el.getBoundingClientRect();
            if (box.width === 0 || box.height === 0) continue;
            let clipped = false;
            for (let p = el.parentElement; p && p !== document.body; p = p.parentElement) {
              const s = getComputedStyle(p);
              if (s.overflowX !== 'visible' && s.overflowX !== 'clip' || s.overflow === 'hidden') {
                clipped = true; break;
              }
            }
            if (!clipped && (box.right > width + 0.5 || box.left < -0.5)) {
              const name = el.className;
              const cls = typeof name === 'string' && name ? '.' + name : '';
              out.push(el.tagName.toLowerCase() + (el.id ? '#' + el.id : '') + cls +
                       ' ' + Math.round(box.left) + '..' + Math.round(box.right));
            }
          }
          return out.slice(0, 10);
        }"""
        )
    )


def open_query(page, server: str, query: str | None = None) -> None:  # noqa: ANN001
    url = server + "/query" + ("?query=" + urllib.parse.quote(query) if query else "")
    page.goto(url)
    page.wait_for_selector("#query-form[data-ready='true']")
    page.wait_for_selector(".copkg-editor .cm-content")
    page.wait_for_selector("#query-form[data-terms]")  # the ontology's terms, for completion


def type_query(page, text: str) -> None:  # noqa: ANN001 - Playwright Page
    page.click(".copkg-editor .cm-content")
    page.keyboard.press("Control+a")
    page.keyboard.press("Delete")
    page.keyboard.insert_text(text)


def test_landing_to_role_to_query(page, server: str) -> None:  # noqa: ANN001 - Playwright Page
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


def test_editor_typing_completion_and_ctrl_enter(
    page,  # noqa: ANN001 - Playwright Page
    server: str,
    screenshots: Path | None,
) -> None:
    open_query(page, server)
    # the editor is labelled, highlights SPARQL and completes the ontology's terms
    content = page.locator(".copkg-editor .cm-content")
    assert content.get_attribute("aria-labelledby") == "sparql-label"
    assert page.locator("#sparql-label").inner_text() == "SPARQL query"
    assert page.locator(".copkg-editor .tok-keyword").count() > 0
    type_query(page, "j0")  # prefixes complete
    page.keyboard.press("Control+Space")
    page.wait_for_selector(".cm-tooltip-autocomplete li")
    offered = page.locator(".cm-tooltip-autocomplete li").all_inner_texts()
    assert any(o.startswith("j04:") for o in offered), offered
    page.keyboard.press("Escape")
    type_query(page, "SELECT ?role ?label WHERE {\n  ?role a ")
    page.keyboard.type("copkg:ManagementR", delay=20)
    page.wait_for_selector(".cm-tooltip-autocomplete li")
    offered = page.locator(".cm-tooltip-autocomplete li").all_inner_texts()
    assert any(o.startswith("copkg:ManagementRole") for o in offered), offered
    page.wait_for_timeout(300)  # the completion takes Enter once it has been shown a moment
    page.keyboard.press("Enter")
    page.keyboard.type(" ; rdfs:label ?label }", delay=5)
    page.keyboard.press("Escape")
    text = page.locator("#sparql").input_value()
    assert "?role a copkg:ManagementRole ; rdfs:label ?label }" in text
    page.keyboard.press("Control+Enter")
    page.wait_for_selector("#result-table tbody tr")
    assert page.locator("#result-count").inner_text().startswith("5 rows")
    first = page.locator("#result-table tbody tr").first.locator("a").first
    assert first.get_attribute("href").startswith("/id/josserand2004/")
    page.wait_for_function(
        "() => document.querySelector('#result-table tbody .curie') !== null"
    )  # labels arrived: the link says the label, the prefixed name under it
    role_cell = page.locator("#result-table tbody tr").first.locator("td").first
    assert role_cell.locator(".curie").inner_text().startswith("j04:")
    # the permalink and the address bar carry the query
    permalink = page.locator("#permalink").get_attribute("href")
    assert permalink.startswith("/query?query=") and "ManagementRole" in urllib.parse.unquote(
        permalink
    )
    assert "query=" in page.url
    # downloads as CSV, TSV and JSON straight from /sparql
    formats = {a.inner_text(): a.get_attribute("href") for a in page.locator("a.download").all()}
    assert set(formats) == {"CSV", "TSV", "JSON"}
    csv = requests.get(server + formats["CSV"], timeout=30)
    assert csv.status_code == 200 and csv.headers["Content-Type"].startswith("text/csv")
    assert csv.text.splitlines()[0] == "role,label" and len(csv.text.splitlines()) == 6
    tsv = requests.get(server + formats["TSV"], timeout=30)
    assert tsv.headers["Content-Type"].startswith("text/tab-separated-values")
    answer = requests.get(server + formats["JSON"], timeout=30).json()
    assert len(answer["results"]["bindings"]) == 5

    assert axe_violations(page) == []
    screenshot(page, screenshots, "query-1280x900.png")
    page.set_viewport_size(NARROW)
    page.wait_for_timeout(200)
    assert too_wide(page) == []
    assert axe_violations(page) == []
    screenshot(page, screenshots, "query-390x844.png")


def test_permalink_opens_and_runs(page, server: str) -> None:  # noqa: ANN001 - Playwright Page
    open_query(page, server, "ASK { ?r a <https://w3id.org/copkg/ontology#ManagementRole> }")
    page.wait_for_selector("#ask-answer")
    assert "true" in page.locator("#ask-answer").inner_text()
    assert "ManagementRole" in page.locator("#sparql").input_value()


def test_paging_sorting_and_the_row_limit(page, server: str, screenshots: Path | None) -> None:  # noqa: ANN001
    open_query(page, server, "SELECT ?s ?n WHERE { ?s ?p ?o } ORDER BY ?s LIMIT 60")
    page.locator("#results").get_by_text("60 rows").wait_for()
    info = page.locator("#page-info")
    assert info.inner_text().startswith("Rows 1–25 of 60")
    assert page.locator("#result-table tbody tr").count() == 25
    page.click("#page-next")
    assert info.inner_text().startswith("Rows 26–50 of 60")
    page.click("#page-next")
    assert info.inner_text().startswith("Rows 51–60 of 60")
    assert page.locator("#page-next").is_disabled()
    page.select_option("#page-size", "100")
    assert page.locator("#result-table tbody tr").count() == 60
    # sorting by a column, both ways
    header = page.locator("#result-table th").first
    header.locator("button").click()
    assert header.get_attribute("aria-sort") == "ascending"
    first_up = page.locator("#result-table tbody tr td").first.inner_text()
    header.locator("button").click()
    assert header.get_attribute("aria-sort") == "descending"
    first_down = page.locator("#result-table tbody tr td").first.inner_text()
    assert first_up != first_down
    assert page.locator("#truncated").count() == 0

    # an answer longer than the service's row limit says so (a product of two patterns)
    type_query(page, "SELECT ?a ?b WHERE { ?a a ?t . ?b a ?u }")
    page.keyboard.press("Control+Enter")
    page.wait_for_selector("#truncated")
    assert "incomplete" in page.locator("#truncated").inner_text()
    assert page.locator("#result-table tbody tr").count() == 25
    assert "of 400" in info.inner_text()
    screenshot(page, screenshots, "query-paging-1280x900.png")


def test_named_query_form(page, server: str, screenshots: Path | None) -> None:  # noqa: ANN001
    page.goto(server + "/query")
    page.wait_for_selector("#query-form[data-ready='true']")
    page.select_option("#examples", "risky-roles")
    text = page.locator("#sparql").input_value()
    assert "#+" not in text and text.lstrip().startswith("PREFIX")
    assert page.locator("#named-params").is_visible()
    # the form comes first: the query's text is folded away, one click from view
    assert page.locator("#sparql-box").evaluate("d => d.open") is False
    assert page.locator("label[for='param-controlMode']").inner_text().startswith("controlMode")
    page.fill("#param-controlMode", "copkg:Bureaucracy")
    voice = page.locator("select#param-voice")
    values = voice.locator("option").evaluate_all("os => os.map(o => o.value)")
    assert "author" in values and "derived-from-curator" in values
    voice.select_option("derived-from-curator")
    page.click("#run")
    page.wait_for_selector("#result-table tbody tr")
    shown = page.locator("#result-table tbody tr").count()
    params = {"controlMode": "copkg:Bureaucracy", "voice": "derived-from-curator"}
    api = requests.get(server + "/api/queries/risky-roles", params=params, timeout=60).json()
    author = requests.get(
        server + "/api/queries/risky-roles",
        params={**params, "voice": "author"},
        timeout=60,
    ).json()
    assert page.locator("#result-count").inner_text().startswith(f"{api['count']} row")
    assert min(shown, 25) == min(api["count"], 25) and api["count"] != author["count"]
    # its downloads and permalink keep the parameters
    hrefs = [a.get_attribute("href") for a in page.locator("a.download").all()]
    assert hrefs and all("voice=derived-from-curator" in h for h in hrefs)
    assert all("controlMode=copkg%3ABureaucracy" in h for h in hrefs)
    csv = requests.get(server + hrefs[0], timeout=60)
    assert len(csv.text.strip().splitlines()) - 1 >= api["count"] - 1
    permalink = page.locator("#permalink").get_attribute("href")
    assert "name=risky-roles" in permalink and "voice=derived-from-curator" in permalink
    assert axe_violations(page) == []
    screenshot(page, screenshots, "query-named-1280x900.png")

    # the permalink opens the query with its parameters and runs it
    page.goto(server + permalink)
    page.wait_for_selector("#result-table tbody tr")
    assert page.locator("select#param-voice").input_value() == "derived-from-curator"
    assert page.locator("#param-controlMode").input_value() == "copkg:Bureaucracy"
    assert page.locator("#result-count").inner_text().startswith(f"{api['count']} row")
    page.set_viewport_size(NARROW)
    page.wait_for_timeout(200)
    assert too_wide(page) == []
    screenshot(page, screenshots, "query-named-390x844.png")

    # editing the text leaves the named query: plain SPARQL, without the form
    page.click("#sparql-box > summary")
    page.click(".copkg-editor .cm-content")
    page.keyboard.press("Control+End")
    page.keyboard.type("\n# mine")
    assert page.locator("#edited-note").is_visible()
    assert not page.locator("#named-params").is_visible()
    assert page.locator("#examples").input_value() == ""


def test_construct_and_describe_as_triples(page, server: str) -> None:  # noqa: ANN001
    open_query(page, server, "CONSTRUCT { ?r a ?t } WHERE { ?r a copkg:ManagementRole, ?t }")
    page.wait_for_selector("#result-table[data-kind='graph'] tbody tr")
    assert [t.inner_text() for t in page.locator("#result-table th").all()] == [
        "subject",
        "predicate",
        "object",
    ]
    assert "triples" in page.locator("#result-count").inner_text()
    formats = {a.inner_text(): a.get_attribute("href") for a in page.locator("a.download").all()}
    assert {"Turtle", "JSON-LD"} <= set(formats)
    turtle = requests.get(server + formats["Turtle"], timeout=30)
    assert turtle.status_code == 200 and turtle.headers["Content-Type"].startswith("text/turtle")
    jsonld = requests.get(server + formats["JSON-LD"], timeout=30)
    assert jsonld.headers["Content-Type"].startswith("application/ld+json") and jsonld.json()

    type_query(page, "DESCRIBE j04:facilitation")
    page.keyboard.press("Control+Enter")
    facilitation = "https://w3id.org/copkg/id/josserand2004/facilitation"
    page.wait_for_selector(f"#result-table tbody td:first-child a[data-iri='{facilitation}']")
    assert page.locator("#result-table").get_attribute("data-kind") == "graph"
    assert "DESCRIBE" in urllib.parse.unquote(page.locator("#permalink").get_attribute("href"))


def test_one_error_with_line_and_column(page, server: str) -> None:  # noqa: ANN001
    open_query(page, server)
    type_query(page, "SELECT * WHERE {\n  ?s ?p ?o\n  FILTER(}")
    page.keyboard.press("Control+Enter")
    page.wait_for_selector("#query-error")
    errors = page.locator("#results .error")
    assert errors.count() == 1
    message = errors.inner_text()
    assert message.startswith("Syntax error at line 3, column ")
    assert page.locator("#status").inner_text() == "failed"
    assert axe_violations(page) == []


# -- every page: layout, accessibility, figures ---------------------------------------------

ADVISOR = (
    "/advisor?mode=InputControl@InMostTeams&institutionalization=High&decentralization=Low"
    "&resource-decentralization=Low&productivity-orientation=High&short-termism=High"
)
#: One page of each kind, by name (the name of its screenshots).
PAGES = {
    "home": "/",
    "role": "/id/josserand2004/facilitation",
    "organisation": "/id/josserand2004/gas",
    "study": "/id/josserand2004/study",
    "query": "/query",
    "advisor": ADVISOR,
    "advisor-form": "/advisor",
    "matrix": "/matrix",
    "timeline": "/timeline/josserand2004/gas",
    "rules": "/rules",
    "ontology": "/ontology",
}

#: SVG text elements whose box (in the SVG's user space, after their own transforms) leaves
#: the viewBox: the picture would cut them.
SVG_TEXT_OUTSIDE = """() => {
  const out = [];
  for (const svg of document.querySelectorAll('svg')) {
    const vb = svg.viewBox.baseVal;
    if (!vb || !vb.width) continue;
    const toSvg = svg.getScreenCTM().inverse();
    for (const text of svg.querySelectorAll('text')) {
      const box = text.getBBox();
      if (!box.width) continue;
      const m = toSvg.multiply(text.getScreenCTM());
      const xs = [], ys = [];
      for (const [x, y] of [[box.x, box.y], [box.x + box.width, box.y],
                            [box.x, box.y + box.height], [box.x + box.width, box.y + box.height]]) {
        xs.push(m.a * x + m.c * y + m.e); ys.push(m.b * x + m.d * y + m.f);
      }
      const [l, r, t, b] = [Math.min(...xs), Math.max(...xs), Math.min(...ys), Math.max(...ys)];
      if (l < vb.x - 0.5 || r > vb.x + vb.width + 0.5 || t < vb.y - 0.5 ||
          b > vb.y + vb.height + 0.5) {
        out.push(text.textContent.trim().slice(0, 40) + ' [' + [l, r, t, b].map(Math.round) +
                 '] outside [' + [vb.x, vb.x + vb.width, vb.y, vb.y + vb.height] + ']');
      }
    }
  }
  return out;
}"""


def svg_text_outside(page) -> list[str]:  # noqa: ANN001 - Playwright Page
    return list(page.evaluate(SVG_TEXT_OUTSIDE))


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(PAGES))
def test_every_page_fits_both_widths_with_no_axe_violation(
    page: Page,
    server: str,
    screenshots: Path | None,
    name: str,
) -> None:
    """axe-core finds nothing, nothing sticks out at 390 px (wide tables scroll inside
    themselves, pictures scale), every SVG text lies in its viewBox; screenshots of both."""
    page.goto(server + PAGES[name])
    page.wait_for_load_state("load")
    if name == "query":
        page.wait_for_selector("#query-form[data-ready='true']")
    assert svg_text_outside(page) == []
    assert axe_violations(page) == [], name
    screenshot(page, screenshots, f"{name}-1280x900.png")
    page.set_viewport_size(NARROW)
    page.wait_for_timeout(150)
    assert too_wide(page) == [], name
    assert axe_violations(page) == [], name
    screenshot(page, screenshots, f"{name}-390x844.png")


def test_home_leads_in_above_the_fold(page, server: str) -> None:  # noqa: ANN001
    page.goto(server + "/")
    ways = page.locator("ul.ways a")
    assert ways.count() == 3
    for index in range(3):
        box = ways.nth(index).bounding_box()
        assert box and box["y"] + box["height"] <= WIDE["height"], index
    page.set_viewport_size(NARROW)
    first = ways.first.bounding_box()
    assert first and first["y"] + first["height"] <= NARROW["height"]
    assert page.locator("link[rel='icon']").get_attribute("href") == "/static/favicon.svg"
    # the skip link is the first thing the keyboard reaches, and it leads to the content
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.className") == "skip-link"
    assert page.locator(".skip-link").is_visible()
    page.keyboard.press("Enter")
    assert page.evaluate("document.activeElement.id") == "main"


def test_advisor_leads_with_the_advice(page, server: str) -> None:  # noqa: ANN001
    """The form sends a clean address; the answer opens on the advice, above the fold; the
    roles at risk say why, their derivations fold open; the options explain themselves."""
    page.goto(server + "/advisor")
    mode = page.locator("#mode-InputControl")
    help_id = mode.get_attribute("aria-describedby")
    assert help_id and page.locator(f"#{help_id}").is_visible()
    mode.select_option("InputControl@InMostTeams")
    page.locator("#factor-short-termism").select_option("High")
    page.locator("form.advisor button[type=submit]").click()
    page.wait_for_load_state("load")
    query = urllib.parse.urlsplit(page.url).query
    assert sorted(query.split("&")) == ["mode=InputControl@InMostTeams", "short-termism=High"]
    heading = page.locator("#advice-heading")
    assert heading.inner_text() == "What to do"
    box = heading.bounding_box()
    assert box and box["y"] + box["height"] <= WIDE["height"]
    first = page.locator("#advice li.recommendation").first.bounding_box()
    assert first and first["y"] < WIDE["height"]
    control = page.locator("#role-control")
    assert "matched context" in control.inner_text()
    assert "your input" in page.locator("#role-recognition").inner_text()
    why = page.locator("details#why-control")
    assert not why.locator(".finding").first.is_visible()
    why.locator("summary").click()
    assert why.locator(".finding").first.is_visible()
    assert axe_violations(page) == []
    page.set_viewport_size(NARROW)
    page.wait_for_timeout(150)
    assert too_wide(page) == []


def test_ontology_search_filters_the_terms(page, server: str) -> None:  # noqa: ANN001
    """The box filters the terms' sections; the class tree leads to a class, which lists its
    instances linked to their pages."""
    page.goto(server + "/ontology")
    box = page.locator("#term-filter")
    assert box.is_visible()
    total = page.locator("section.term").count()
    box.fill("management role")
    visible = page.locator("section.term:visible")
    assert 0 < visible.count() < total
    assert page.locator("section#ManagementRole").is_visible()
    assert not page.locator("section#Quote").is_visible()
    assert page.locator("#term-filter-status").inner_text() == f"{visible.count()} of {total} terms"
    box.fill("")
    assert page.locator("section.term:visible").count() == total
    page.locator("nav.class-tree a[href='#ManagementRole']").click()
    section = page.locator("section#ManagementRole")
    box_ = section.bounding_box()
    assert box_ and -2 <= box_["y"] < WIDE["height"]  # scrolled to (to a sub-pixel)
    roles = section.locator("a[href^='/id/josserand2004/']")
    assert roles.count() == 5
    # no axe-core here: with the filter emptied the page is as loaded but for its scroll (axe
    # checks the whole document wherever it is scrolled to), and axe runs on it as loaded at
    # both widths in test_every_page_fits_both_widths_with_no_axe_violation[ontology] (seconds
    # of the browser's time a run on its ~7,000 elements)
    roles.first.click()
    page.wait_for_load_state("load")
    assert "/id/josserand2004/" in page.url


@pytest.mark.parametrize(
    "path", ["/matrix.svg", "/timeline/josserand2004/gas.svg", "/timeline/josserand2004/comp.svg"]
)
def test_standalone_svg_texts_lie_inside_the_viewbox(page, server: str, path: str) -> None:  # noqa: ANN001
    page.goto(server + path)
    assert page.evaluate("document.documentElement.tagName") == "svg"
    assert page.evaluate("document.querySelectorAll('text').length") > 5
    assert svg_text_outside(page) == []


def test_matrix_cells_name_the_risk_and_the_legend_is_complete(page, server: str) -> None:  # noqa: ANN001
    page.goto(server + "/matrix")
    data = requests.get(server + "/matrix.json", timeout=30).json()
    risks = {a["risk"] for c in data["cells"] for a in c["assessments"] if a["risk"]}
    assert risks
    shown = page.locator("figure svg g.cell.risky text").evaluate_all(
        "ts => ts.map(t => [...t.querySelectorAll('tspan')].map(s => s.textContent).join(' '))"
    )
    assert shown and all(text.strip() != "risky" for text in shown)
    joined = " ".join(" ".join(t.split()) for t in shown)
    for risk in risks:
        assert risk in joined, risk
    legend = page.locator("figure svg g.legend")
    assert legend.count() == 2
    fills = legend.locator("rect").evaluate_all("rs => rs.map(r => r.getAttribute('fill'))")
    assert fills == [
        page.locator("figure svg g.cell.risky rect").first.get_attribute("fill"),
        page.locator("figure svg g.cell:not(.risky) rect").first.get_attribute("fill"),
    ]


def test_timeline_has_a_legend_of_event_types(page, server: str) -> None:  # noqa: ANN001
    page.goto(server + "/timeline/josserand2004/gas")
    events = requests.get(server + "/timeline/josserand2004/gas.json", timeout=30).json()["events"]
    kinds = {e["kind"] or "other event" for e in events}
    legend = page.locator("figure svg g.legend text").evaluate_all(
        "ts => ts.map(t => t.textContent)"
    )
    assert legend[0] == "Event types" and set(legend[1:]) == kinds
    assert page.locator("figure svg g.event").count() == len(events)


@pytest.mark.parametrize(
    ("path", "svg"),
    [
        ("/matrix", "/matrix.svg"),
        ("/timeline/josserand2004/gas", "/timeline/josserand2004/gas.svg"),
    ],
)
def test_figures_download_as_svg_and_png_twice_the_size(
    page: Page,
    server: str,
    path: str,
    svg: str,
) -> None:
    page.goto(server + path)
    link = page.locator("p.downloads a", has_text="SVG")
    assert link.get_attribute("href") == svg
    size = page.evaluate(
        f"() => fetch('{svg}').then(r => r.text()).then(t => "
        "{ const s = new DOMParser().parseFromString(t, 'image/svg+xml')"
        ".documentElement; return [+s.getAttribute('width'), "
        "+s.getAttribute('height')]; })"
    )
    button = page.locator("button.png-download")
    assert button.is_visible()
    with page.expect_download() as info:
        button.click()
    download = info.value
    assert download.suggested_filename.endswith(".png")
    data = Path(download.path()).read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    assert (width, height) == (2 * size[0], 2 * size[1])
