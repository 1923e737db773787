"""Resource pages read a resource off the store's indexes (querying.pages.rows) instead of
running their queries: the rows are the queries' own, in the engine's order, for every resource
of the build (the order decides which label and which graphs a page shows first)."""

from __future__ import annotations

from typing import Any

import pyoxigraph as ox
from rdflib import URIRef
from test_web_pages import web_settings  # noqa: F401 - the session's built project

from copkg.config import Settings
from copkg.pipeline.open import open_store
from copkg.querying.pages import reading as pages
from copkg.querying.pages.rows import first_labels, incoming_rows, outgoing_rows, page_rows
from copkg.store import QueryResult
from copkg.store.embedded import OxigraphStore


class _Elsewhere:
    """The same store seen as another kind (a remote one): the pages run their queries."""

    def __init__(self, store: OxigraphStore) -> None:
        self.store = store

    def query(self, sparql: str, **options: Any) -> QueryResult:
        return self.store.query(sparql, **options)


def _parts(rows: list[dict]) -> tuple[list[dict], list[dict]]:
    """The rows of each part of the outgoing query's UNION (statements, evidence)."""
    return [r for r in rows if "p" in r], [r for r in rows if "quote" in r]


def test_outgoing_rows_are_the_querys_for_every_resource(web_settings: Settings) -> None:  # noqa: F811
    store = open_store(web_settings)
    assert isinstance(store, OxigraphStore)
    elsewhere = _Elsewhere(store)
    subjects = {
        q.subject
        for q in store.native.quads_for_pattern(None, None, None)
        if isinstance(q.subject, ox.NamedNode)
    }
    evidence = labelled = 0
    for subject in sorted(subjects, key=str):
        iri = URIRef(subject.value)
        read = _parts(outgoing_rows(store, iri, pages.OUTGOING))
        assert read == _parts(outgoing_rows(elsewhere, iri, pages.OUTGOING)), iri  # type: ignore[arg-type]
        evidence += len(read[1])
        labelled += sum("oLabel" in r for r in read[0])
    assert len(subjects) > 500 and evidence > 500 and labelled > 500


def test_incoming_rows_and_labels_are_the_querys(web_settings: Settings) -> None:  # noqa: F811
    store = open_store(web_settings)
    assert isinstance(store, OxigraphStore)
    elsewhere = _Elsewhere(store)
    objects = {
        q.object
        for q in store.native.quads_for_pattern(None, None, None)
        if isinstance(q.object, ox.NamedNode)
    }
    paged = 0
    for obj in sorted(objects, key=str):
        iri = URIRef(obj.value)
        for offset in (0, 100):
            text = f"{pages.INCOMING.strip()}\nLIMIT 101 OFFSET {offset}\n"
            rows = incoming_rows(store, iri, offset, 101, text)
            assert rows == page_rows(store, text, {"o": iri}), (iri, offset)
            subjects = [r["s"] for r in rows]
            assert first_labels(store, subjects, pages.SUBJECT_LABELS) == first_labels(
                elsewhere,  # type: ignore[arg-type]
                subjects,
                pages.SUBJECT_LABELS,
            )
            paged += offset > 0 and bool(rows)
    assert paged, "no resource has a second page of links: the offsets would be untested"


def test_explanations_skip_the_query_only_where_it_finds_nothing(web_settings: Settings) -> None:  # noqa: F811
    """Two index lookups stand for the explanations' query where no derived statement names
    the resource: the explanations are the query's for every resource of the build."""
    from copkg.querying.pages.explanations import read_explanations

    store = open_store(web_settings)
    assert isinstance(store, OxigraphStore)
    elsewhere = _Elsewhere(store)
    named = {
        t.value
        for q in store.native.quads_for_pattern(None, None, None)
        for t in (q.subject, q.object)
        if isinstance(t, ox.NamedNode)
    }
    explained = 0
    for iri in sorted(named):
        found = read_explanations(store, iri)
        assert found == read_explanations(elsewhere, iri), iri  # type: ignore[arg-type]
        explained += bool(found[0])
    assert explained > 10
