"""What the corpus checks see of a study: its files and statements (`Described`, `StudyFiles`),
the rest of the corpus (`Others`, `OtherStudies`), and where in its files a node is written
(`locate`, `show`), for problems reported at file:line."""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import pyoxigraph as ox
from rdflib import Graph, Literal, URIRef
from rdflib.namespace import DCTERMS, OWL, RDF, RDFS, SKOS, XSD

from copkg.namespaces import COPKG, ID, prefixed, study_base, study_graph
from copkg.store.terms import from_ox, quads_to_graph

STUDY_GRAPHS = study_graph("")

_PREFIX_DECL = re.compile(r"^\s*(?:@prefix|PREFIX)\s+([A-Za-z][\w.-]*)?:\s*<([^>]*)>", re.I | re.M)


class SourceFile(Protocol):
    """A file a study was read from."""

    @property
    def path(self) -> Path: ...

    @property
    def text(self) -> str: ...


class Described(Protocol):
    """A study's statements and the files they were written in (a bundle being added, or a
    study of the corpus being built)."""

    study_id: str
    graph: Graph

    @property
    def files(self) -> Sequence[SourceFile]: ...

    @property
    def namespace(self) -> str: ...

    def subjects(self) -> set[Any]: ...

    def iris(self) -> list[URIRef]:
        """The IRIs the statements use (see used_iris)."""
        ...

    def locate(self, node: Any, *, subject: bool = False) -> tuple[str | None, int | None]: ...

    def show(self, node: Any) -> str: ...


class Others(Protocol):
    """The rest of the corpus: the ontology graph, its declared terms and who describes what."""

    ontology: Graph
    declared: set[URIRef]
    vocabulary: set[URIRef]  # the IRIs the ontology graph describes

    @property
    def studies(self) -> set[str]: ...

    def describers(self, iri: str) -> set[str]: ...

    def known(self, iri: str) -> bool: ...

    def records(self) -> list[ox.Quad]:
        """What the other studies write of their copkg:Study records and of those records'
        creators (and source texts)."""
        ...


def study_of(node: Any) -> str | None:
    """The study whose namespace holds an IRI (https://w3id.org/copkg/id/ID/...), if any."""
    text = str(node)
    if not isinstance(node, URIRef) or not text.startswith(str(ID)):
        return None
    head, slash, _ = text[len(ID) :].partition("/")
    return head if slash else None


def show(files: Iterable[SourceFile], node: Any) -> str:
    """An IRI as the files write it: with a prefix they declare, else prefixed()."""
    if isinstance(node, URIRef):
        iri = str(node)
        for file in files:
            for prefix, namespace in _PREFIX_DECL.findall(file.text):
                local = iri[len(namespace) :]
                if namespace and iri.startswith(namespace) and re.fullmatch(r"[\w-]+", local):
                    return f"{prefix}:{local}"
    return prefixed(node)


def locate(
    files: Sequence[SourceFile], node: Any, *, subject: bool = False
) -> tuple[str | None, int | None]:
    """The file and line where an IRI is first written (prefixed or in full); with `subject`,
    first where a line starts with it (a description), if anywhere."""
    if not isinstance(node, URIRef):
        return (str(files[0].path), None) if len(files) == 1 else (None, None)
    iri = str(node)
    found: tuple[str | None, int | None] = (None, None)
    for file in files:
        patterns = [re.escape(f"<{iri}>")]
        for prefix, namespace in _PREFIX_DECL.findall(file.text):
            local = iri[len(namespace) :]
            if namespace and iri.startswith(namespace) and re.fullmatch(r"[\w.-]*", local):
                patterns.append(
                    r"(?<![\w:.-])" + re.escape(f"{prefix}:{local}") + r"(?![\w:%-]|\.\w)"
                )
        anywhere = re.compile("|".join(patterns))
        starting = re.compile(r"^\s*(?:" + "|".join(patterns) + ")")
        for number, line in enumerate(file.text.splitlines(), 1):
            if line.lstrip().startswith("#"):
                continue
            if subject and starting.search(line):
                return str(file.path), number
            if found == (None, None) and anywhere.search(line):
                found = (str(file.path), number)
                if not subject:
                    return found
    return found


#: Where a study record may give its paper's DOI.
DOI_PROPERTIES = (
    URIRef("http://prismstandard.org/namespaces/basic/2.0/doi"),
    URIRef("http://purl.org/ontology/bibo/doi"),
    URIRef("http://purl.org/spar/datacite/hasIdentifier"),
    DCTERMS.identifier,
    OWL.sameAs,
    SKOS.exactMatch,
    RDFS.seeAlso,
)

#: What the corpus checks read of a study's graph (pipeline.corpus_checks, quote_checks): its
#: Study records (with their DOIs, creators, year, title), quotes and source texts, and the
#: quotesVerified statements it may not make. The build's view of a study holds these only.
CHECKED_PREDICATES = frozenset(
    str(p)
    for p in (
        COPKG.quotesVerified,
        COPKG.quotedIn,
        COPKG.quoteText,
        COPKG.page,
        COPKG.sourceText,
        COPKG.sha256,
        DCTERMS.creator,
        DCTERMS.issued,
        DCTERMS.title,
        *DOI_PROPERTIES,
    )
)
#: Read of a study's creators only: their names.
_NAMES = frozenset(str(p) for p in (RDFS.label, URIRef("http://xmlns.com/foaf/0.1/familyName")))
#: What the checks read of the study records of a corpus (their types too).
RECORD_PREDICATES = CHECKED_PREDICATES | _NAMES | {str(RDF.type)}
_TYPE, _STUDY, _CREATOR = str(RDF.type), str(COPKG.Study), str(DCTERMS.creator)
_STUDY_NODE = ox.NamedNode(_STUDY)
#: The datatypes of plain and language-tagged strings, which rdflib terms do not name.
_PLAIN = frozenset((str(XSD.string), str(RDF.langString)))


@dataclass
class StudyFiles:
    """A study of the corpus as the build reads it: its files, the IRIs its statements use and
    its subjects, and (`graph`) the statements the checks read (CHECKED_PREDICATES, the study
    types and the creators' names): what rdflib holds of a study is a small part of it."""

    study_id: str
    files: list[SourceFile]
    graph: Graph
    _subjects: set[Any]
    _iris: list[URIRef]

    @classmethod
    def of(cls, study_id: str, files: list[SourceFile], quads: Sequence[ox.Quad]) -> StudyFiles:
        """The view of a study whose graph holds `quads` (as written)."""
        creators = {q.object for q in quads if q.predicate.value == _CREATOR}
        checked = [
            q
            for q in quads
            if q.predicate.value in CHECKED_PREDICATES
            or (q.predicate.value == _TYPE and q.object == _STUDY_NODE)
            or (q.predicate.value in _NAMES and q.subject in creators)
        ]
        iris: dict[str, None] = {}
        for quad in quads:
            for term in (quad.subject, quad.predicate, quad.object):
                if isinstance(term, ox.NamedNode):
                    iris[term.value] = None
                elif isinstance(term, ox.Literal) and term.datatype.value not in _PLAIN:
                    iris[term.datatype.value] = None
        return cls(
            study_id,
            files,
            quads_to_graph(checked),
            {from_ox(s) for s in dict.fromkeys(q.subject for q in quads)},
            [URIRef(i) for i in iris],
        )

    @property
    def namespace(self) -> str:
        return str(study_base(self.study_id))

    def subjects(self) -> set[Any]:
        return self._subjects

    def iris(self) -> list[URIRef]:
        return self._iris

    def locate(self, node: Any, *, subject: bool = False) -> tuple[str | None, int | None]:
        return locate(self.files, node, subject=subject)

    def show(self, node: Any) -> str:
        return show(self.files, node)


def used_iris(graph: Graph) -> list[URIRef]:
    """The IRIs a graph's statements use (subjects, predicates, objects and the datatypes of
    literals), each once, in the order first met."""
    found: dict[URIRef, None] = {}
    for triple in graph:
        for term in triple:
            if isinstance(term, URIRef):
                found[term] = None
            elif isinstance(term, Literal) and term.datatype is not None:
                found[URIRef(term.datatype)] = None
    return list(found)


@dataclass(frozen=True)
class FileOnDisk:
    """A source file, read when its text is needed (to say where a problem is)."""

    path: Path

    @property
    def text(self) -> str:
        return self.path.read_text(encoding="utf-8", errors="replace")


class StudyIndex:
    """What every study of a build is checked against, indexed once for all: the ontology, its
    declared terms, who describes each IRI (`subject_graphs(iri)`: the graphs with it as a
    subject) and the study records."""

    def __init__(
        self,
        ontology: Graph,
        subject_graphs: Callable[[str], set[str]],
        graphs: Iterable[str],
        records: list[ox.Quad],
    ) -> None:
        self.ontology = ontology
        self.declared = {s for s in ontology.subjects(RDF.type, None) if isinstance(s, URIRef)}
        self.vocabulary = {s for s in ontology.subjects() if isinstance(s, URIRef)}
        self.subject_graphs = subject_graphs
        self.graphs = {g for g in graphs if g.startswith(STUDY_GRAPHS)}
        self.records = records

    def others(self, graph: str) -> OtherStudies:
        """The corpus but the study of `graph`."""
        return OtherStudies(self, graph)


class OtherStudies:
    """The corpus but one study (a view of a StudyIndex: nothing copied per study)."""

    def __init__(self, index: StudyIndex, graph: str) -> None:
        self.ontology = index.ontology
        self.declared = index.declared
        self.vocabulary = index.vocabulary
        self._index = index
        self._graph = graph

    @functools.cached_property
    def studies(self) -> set[str]:
        return {g[len(STUDY_GRAPHS) :] for g in self._index.graphs if g != self._graph}

    def describers(self, iri: str) -> set[str]:
        return {
            g
            for g in self._index.subject_graphs(iri)
            if g.startswith(STUDY_GRAPHS) and g != self._graph
        }

    def known(self, iri: str) -> bool:
        return bool(self._index.subject_graphs(iri) - {self._graph})

    def records(self) -> list[ox.Quad]:
        graph = ox.NamedNode(self._graph)
        return [q for q in self._index.records if q.graph_name != graph]
