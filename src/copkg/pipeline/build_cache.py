"""What a build keeps for the next `copkg add` (in build/cache/), so that an add reads a small
file instead of the corpus: the corpus's papers, their creators' names and the studies' source
text digests (for the duplicate-paper check and the quotes). (Nothing is kept as a pickle:
a pickle in build/ would run as code whoever wrote it.)

The paper index is made from the store's study records as corpus_checks.study_records() reads
them, the first time an add needs it, and extended by each add with what the new graph adds to
them: an add then gives the index a full reading of the new store would. When the new graph
states something of a record already indexed (a creator's name, say), or the rules derive study
types, creators or source texts, the index is not extended (the next add reads the records
again). A full build leaves no cache: it is made again by the next add.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyoxigraph as ox
from rdflib import URIRef
from rdflib.namespace import DCTERMS, RDF, RDFS

from copkg.namespaces import COPKG
from copkg.pipeline.corpus_checks import KnownPapers, Paper, RecordGraph, papers, study_records
from copkg.pipeline.quote_checks import source_digests
from copkg.rdf_io import atomic_write

CACHE_DIR = "cache"
PAPERS = "papers.json"
PAPERS_FORMAT = 1

_FAMILY_NAME = URIRef("http://xmlns.com/foaf/0.1/familyName")
_NAME_PREDICATES = (RDFS.label, _FAMILY_NAME)
_TYPE = ox.NamedNode(str(RDF.type))
_STUDY = ox.NamedNode(str(COPKG.Study))
#: Predicates that, derived by the rules, would change which records the index holds.
_RECORD_LINKS = frozenset(str(p) for p in (DCTERMS.creator, COPKG.sourceText))
_LINKS = tuple(ox.NamedNode(p) for p in sorted(_RECORD_LINKS))


class _Name(str):
    """A creator's name as the records hold it: its text, and whether the term was true (an
    rdflib Literal is false when its value is, and papers() tests it)."""

    truthy: bool = True

    def __bool__(self) -> bool:
        return self.truthy


class _Names:
    """The first rdfs:label and foaf:familyName of each record subject (RecordGraph.value)."""

    def __init__(self, names: dict[str, dict[str, list[Any]]]) -> None:
        self.names = names

    def value(self, subject: Any, predicate: Any) -> Any:
        found = self.names.get(str(subject), {}).get(str(predicate))
        if found is None or not isinstance(subject, URIRef):
            return None
        name = _Name(found[0])
        name.truthy = bool(found[1])
        return name


@dataclass
class PaperIndex:
    """The papers of a build's study records, each study's source text digest, the names of
    the records' subjects, and those subjects (what a new graph must not describe for the
    index to be extended)."""

    papers: list[Paper]
    digests: dict[str, str]
    names: dict[str, dict[str, list[Any]]]
    subjects: set[str]

    @classmethod
    def of_records(cls, records: Sequence[ox.Quad]) -> PaperIndex:
        """The index of study records (corpus_checks.study_records())."""
        graph = RecordGraph(records)
        subjects = {q.subject.value for q in records if isinstance(q.subject, ox.NamedNode)}
        return cls(
            papers(graph),
            {str(s): d for s, d in source_digests(graph).items()},
            _names(graph, subjects),
            subjects,
        )

    def known(self) -> KnownPapers:
        """The papers as the duplicate check looks them up."""
        return KnownPapers(self.papers, _Names(self.names))

    def source_digests(self) -> dict[URIRef, str]:
        return {URIRef(s): d for s, d in self.digests.items()}

    def extended(self, store: ox.Store, graph: str, moved: Iterable[ox.Quad]) -> PaperIndex | None:
        """The index of `store` once `graph` (new in it) is loaded and the rules have run
        (`moved`: the inferences added and removed); None when it cannot be told without
        reading every record again."""
        name = ox.NamedNode(graph)
        described: set[ox.NamedNode] = set()
        for quad in store.quads_for_pattern(None, None, None, name):
            if isinstance(quad.subject, ox.NamedNode):
                if quad.subject.value in self.subjects:
                    return None
                described.add(quad.subject)
        for quad in moved:
            if quad.predicate.value in _RECORD_LINKS or (
                quad.predicate == _TYPE and quad.object == _STUDY
            ):
                return None
        # the records typed copkg:Study that the index lacks are among those the new graph
        # describes and those that link to (as creator or source text) what it describes: any
        # other was in the old store with what it links to, and was read then; a new type or
        # link comes from the new graph or from the rules (refused above). Looked up from the
        # new graph's subjects rather than by listing every study record of the corpus.
        linked = {
            q.subject
            for subject in described
            for link in _LINKS
            for q in store.quads_for_pattern(None, link, subject, None)
            if isinstance(q.subject, ox.NamedNode) and q.subject.value not in self.subjects
        }
        typed = {
            subject
            for subject in described | linked
            if next(store.quads_for_pattern(subject, _TYPE, _STUDY, None), None) is not None
        }
        if not typed:
            return PaperIndex(self.papers, self.digests, self.names, self.subjects)
        records = study_records(store, typed)
        records_graph = RecordGraph(records)
        new = {s.value for s in typed}
        found = [p for p in papers(records_graph) if str(p.study) in new]
        subjects = {q.subject.value for q in records if isinstance(q.subject, ox.NamedNode)}
        digests = {str(s): d for s, d in source_digests(records_graph).items() if str(s) in new}
        return PaperIndex(
            sorted([*self.papers, *found], key=lambda p: str(p.study)),
            self.digests | digests,
            self.names | _names(records_graph, subjects - self.subjects),
            self.subjects | subjects,
        )

    def to_json(self) -> bytes:
        data = {
            "format": PAPERS_FORMAT,
            "papers": [
                [str(p.study), sorted(p.dois), sorted(p.authors), p.year, p.title]
                for p in self.papers
            ],
            "digests": self.digests,
            "names": self.names,
            "subjects": sorted(self.subjects),
        }
        return json.dumps(data, sort_keys=True, ensure_ascii=False).encode("utf-8")

    @classmethod
    def read(cls, build_dir: Path) -> PaperIndex | None:
        """The index a build keeps, if any (None if missing or of another format)."""
        try:
            data = json.loads((build_dir / CACHE_DIR / PAPERS).read_bytes())
            if data.get("format") != PAPERS_FORMAT:
                return None
            return cls(
                [
                    Paper(URIRef(s), frozenset(d), frozenset(a), y, t)
                    for s, d, a, y, t in data["papers"]
                ],
                dict(data["digests"]),
                dict(data["names"]),
                set(data["subjects"]),
            )
        except (OSError, ValueError, TypeError, KeyError, AttributeError):
            return None

    def write(self, build_dir: Path) -> None:
        (build_dir / CACHE_DIR).mkdir(exist_ok=True)
        atomic_write(build_dir / CACHE_DIR / PAPERS, self.to_json())


def _names(graph: RecordGraph, subjects: Iterable[str]) -> dict[str, dict[str, list[Any]]]:
    names: dict[str, dict[str, list[Any]]] = {}
    for subject in subjects:
        node = URIRef(subject)
        found = {
            str(p): [str(v), bool(v)]
            for p in _NAME_PREDICATES
            if (v := graph.value(node, p)) is not None
        }
        if found:
            names[subject] = found
    return names


def carry(old_dir: Path, new_dir: Path, prefix: str) -> None:
    """Link the old build's cache files whose names start with `prefix` into the new build
    (those it does not have: HermiT's class archive, say)."""
    try:
        found = [p for p in (old_dir / CACHE_DIR).iterdir() if p.name.startswith(prefix)]
    except OSError:
        return
    for source in found:
        target = new_dir / CACHE_DIR / source.name
        (new_dir / CACHE_DIR).mkdir(exist_ok=True)
        with contextlib.suppress(OSError):  # only a head start for the next add
            if not target.exists():
                os.link(source, target)
