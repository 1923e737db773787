"""A paraphrase is never shown as a quote, and a quote says whether the build verified it
against its study's text."""

from __future__ import annotations

from rdflib import URIRef

from copkg.querying.pages.reading import read_resource
from copkg.store.embedded import OxigraphStore
from copkg.web.app import create_app

DEMO = "https://w3id.org/copkg/id/demo2000/"
DATA = f"""
PREFIX copkg: <https://w3id.org/copkg/ontology#>
PREFIX rdfs: <http://www.w3.org/2000/01/rdf-schema#>
PREFIX : <{DEMO}>
GRAPH <https://w3id.org/copkg/graph/study/demo2000> {{
  :finding a copkg:Finding ; rdfs:label "a finding"@en ;
      copkg:hasEvidence :q-words , :q-restated , :q-other .
  :q-words a copkg:Quote ; copkg:quoteText "The words as printed." ; copkg:page 5 ;
      copkg:quotedIn :study .
  :q-restated a copkg:Paraphrase ; copkg:evidenceText "What page 6 says, in other words." ;
      copkg:page 6 ; copkg:quotedIn :study .
  :q-other a copkg:Quote ; copkg:quoteText "Words of a study without its text." ;
      copkg:page 7 ; copkg:quotedIn :other .
  :study a copkg:Study ; rdfs:label "Demo (2000)"@en ; copkg:quotesVerified true .
  :other a copkg:Study ; rdfs:label "Other (2001)"@en .
}}
"""


def store() -> OxigraphStore:
    store = OxigraphStore()
    store.native.load(DATA.encode(), "application/trig")
    return store


def test_evidence_says_its_kind_and_whether_it_was_verified() -> None:
    data = store()
    with create_app({"STORE": data, "QUERY_WORKERS": 0, "TESTING": True}).app_context():
        resource = read_resource(data, URIRef(DEMO + "finding"))
    assert resource is not None
    found = {str(q.iri)[len(DEMO) :]: (q.kind, q.verified) for q in resource.evidence}
    assert found == {
        "q-words": ("quote", True),
        "q-restated": ("paraphrase", False),
        "q-other": ("quote", False),
    }


def test_the_page_shows_a_paraphrase_apart_from_quotes() -> None:
    app = create_app({"STORE": store(), "QUERY_WORKERS": 0, "TESTING": True})
    page = app.test_client().get("/id/demo2000/finding").get_data(as_text=True)
    quotes = page.split("<blockquote")
    assert len(quotes) == 3  # two quotes, and the paraphrase is not one of them
    assert "What page 6 says, in other words." not in "".join(
        q.split("</blockquote>")[0] for q in quotes[1:]
    )
    assert "paraphrase, not the study's words" in page
    assert page.count(">verified</span>") == 1 and page.count(">unverified</span>") == 1
