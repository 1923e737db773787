"""Every quote in data/ stands verbatim on the page it claims in the paper's text."""

import hashlib
import re
from pathlib import Path

import pytest
from conftest import copy_project
from rdflib import Graph, URIRef

from copkg.config import Settings
from copkg.errors import CopkgError
from copkg.namespaces import COPKG
from copkg.pipeline import build, load_build
from copkg.validation.fidelity import check_quotes, normalise, pages

ROOT = Path(__file__).resolve().parents[1]
STUDY = URIRef("https://w3id.org/copkg/id/josserand2004/study")
CANDIDATES = [
    ROOT.parent / "shared/paper/josserand-2004.txt",
    ROOT.parent.parent / "shared/paper/josserand-2004.txt",
    Path("/work/shared/paper/josserand-2004.txt"),
]
PAPER = next((p for p in CANDIDATES if p.exists()), None)


def data_graph() -> Graph:
    graph = Graph()
    for path in sorted((ROOT / "data/studies").glob("*/*.ttl")):
        graph.parse(path)
    return graph


def test_normalise_folds_quote_marks_and_space() -> None:
    assert normalise("«it’s  “fine”»\n now") == '"it\'s "fine"" now'


def test_pages_split_on_page_marks() -> None:
    text = "intro\n[page 1]\nfirst  page\n[page 2]\nsecond\n"
    assert pages(text) == {1: "first page", 2: "second"}


@pytest.mark.skipif(
    PAPER is None,
    reason="the paper's text (../shared/paper/josserand-2004.txt) "
    "is absent, so the quotes cannot be checked against it",
)
def test_every_quote_is_on_its_page() -> None:
    assert PAPER is not None
    graph = data_graph()
    checked, mismatches = check_quotes(graph, STUDY, PAPER)
    assert checked > 0, "no quotes of j04:study found in data/"
    assert not mismatches, "\n".join(map(str, mismatches))


@pytest.mark.skipif(PAPER is None, reason="the paper's text is absent")
def test_a_wrong_page_is_caught() -> None:
    assert PAPER is not None
    graph = Graph().parse(
        data="""
        PREFIX copkg: <https://w3id.org/copkg/ontology#>
        <urn:q> copkg:quotedIn <https://w3id.org/copkg/id/josserand2004/study> ;
          copkg:quoteText "Five main roles to be played by the management emerge" ;
          copkg:page 330 .""",
        format="turtle",
    )
    checked, mismatches = check_quotes(graph, STUDY, PAPER)
    assert checked == 1 and [m.found_on for m in mismatches] == [(329,)]


def test_the_josserand_bundle_declares_the_paper_by_its_hash() -> None:
    graph = data_graph()
    digest = graph.value(graph.value(STUDY, COPKG.sourceText), COPKG.sha256)
    assert digest is not None and len(str(digest)) == 64
    if PAPER is not None:
        assert hashlib.sha256(PAPER.read_bytes()).hexdigest() == str(digest)


@pytest.mark.slow
@pytest.mark.skipif(PAPER is None, reason="the paper's text is absent")
def test_the_build_verifies_every_quote_against_the_paper(tmp_path: Path) -> None:
    """With the paper in COPKG_SOURCE_TEXTS the build marks Josserand's quotes verified; a
    quote moved to a wrong page refuses the build at its file and line."""
    assert PAPER is not None
    root = copy_project(tmp_path)
    settings = Settings.load(root, environ={"COPKG_SOURCE_TEXTS": str(PAPER.parent)})
    manifest = build(settings)
    assert manifest.extra["fidelity"] == {str(STUDY): "quotes verified against josserand-2004.txt"}
    store = load_build(settings)
    assert store.query(f"ASK {{ <{STUDY}> <{COPKG.quotesVerified}> true }}").boolean
    del store
    # without the text the quotes are not marked verified
    (tmp_path / "bare").mkdir()
    bare = Settings.load(copy_project(tmp_path / "bare"), environ={})
    assert "unverified" in build(bare, validate=True).extra["fidelity"][str(STUDY)]
    path = root / "data/studies/josserand2004/roles.ttl"
    text = path.read_text(encoding="utf-8")
    page = re.search(r'copkg:page "(\d+)"\^\^xsd:positiveInteger', text)
    assert page is not None
    wrong = "307" if page.group(1) != "307" else "308"
    path.write_text(text.replace(page.group(0), page.group(0).replace(page.group(1), wrong), 1))
    with pytest.raises(CopkgError) as caught:
        build(settings)
    assert any(
        p.file == str(path) and p.line and f"not on page {wrong}" in p.message
        for p in caught.value.problems
    ), caught.value.problems
