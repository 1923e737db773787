"""The paper index an add extends (pipeline.build_cache) is what reading every study record of
the new store gives, though the add looks up only what its graph describes."""

from __future__ import annotations

import pyoxigraph as ox
from rdflib.namespace import DCTERMS, RDF, RDFS

from copkg.namespaces import COPKG, ONTOLOGY_GRAPH
from copkg.pipeline.build_cache import PaperIndex
from copkg.pipeline.corpus_checks import study_records
from copkg.pipeline.study_view import study_graph

ID = "https://w3id.org/copkg/id/"


def _quad(s: str, p: object, o: str | ox.Literal, graph: str) -> ox.Quad:
    obj = o if isinstance(o, ox.Literal) else ox.NamedNode(o)
    return ox.Quad(ox.NamedNode(s), ox.NamedNode(str(p)), obj, ox.NamedNode(graph))


def _record(study: str, creator: str, name: str, title: str, graph: str) -> list[ox.Quad]:
    return [
        _quad(study, RDF.type, str(COPKG.Study), graph),
        _quad(study, DCTERMS.title, ox.Literal(title), graph),
        _quad(study, DCTERMS.issued, ox.Literal("2001"), graph),
        _quad(study, DCTERMS.creator, creator, graph),
        _quad(creator, RDFS.label, ox.Literal(name), graph),
    ]


def _full(store: ox.Store) -> PaperIndex:
    return PaperIndex.of_records(study_records(store))


def test_an_extended_index_is_a_full_reading_of_the_new_store() -> None:
    store = ox.Store()
    one, two, three = (study_graph(s) for s in ("one2001", "two2002", "three2003"))
    # a record typed copkg:Study outside any study graph, whose creator no study names yet
    outside = f"{ID}elsewhere/study"
    store.extend(
        [
            _quad(outside, RDF.type, str(COPKG.Study), str(ONTOLOGY_GRAPH)),
            _quad(outside, DCTERMS.creator, f"{ID}elsewhere/author", str(ONTOLOGY_GRAPH)),
            *_record(f"{ID}one2001/study", f"{ID}one2001/author", "Ann One", "One", one),
        ]
    )
    index = _full(store)
    assert len(index.papers) == 1

    # a new study, and a name for the creator of the record outside the study graphs
    store.extend(
        [
            *_record(f"{ID}two2002/study", f"{ID}two2002/author", "Bo Two", "Two", two),
            _quad(f"{ID}elsewhere/author", RDFS.label, ox.Literal("Zed Zero"), two),
        ]
    )
    extended = index.extended(store, two, [])
    assert extended is not None
    assert extended == _full(store)
    assert extended.names[f"{ID}elsewhere/author"][str(RDFS.label)][0] == "Zed Zero"
    assert {str(p.study) for p in extended.papers} == {f"{ID}one2001/study", f"{ID}two2002/study"}

    # a graph without a study record leaves the papers as they were
    store.extend([_quad(f"{ID}three2003/note", RDFS.label, ox.Literal("a note"), three)])
    again = extended.extended(store, three, [])
    assert again == _full(store) == extended

    # a graph that states something of a record already indexed cannot be told: None
    four = study_graph("four2004")
    store.extend([_quad(f"{ID}one2001/author", RDFS.label, ox.Literal("Ann Uno"), four)])
    assert extended.extended(store, four, []) is None
