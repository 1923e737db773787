"""Every quote in data/ stands verbatim on the page it claims in the paper's text."""

from pathlib import Path

import pytest
from rdflib import Graph, URIRef

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
