"""The checks a study's statements must pass against the rest of the corpus, one implementation
for `copkg add` (a bundle against the corpus) and `copkg build` (each study against the others):
other studies' resources not redescribed, shared vocabulary not redefined, IRIs declared,
no placeholder left, and the same paper not entered twice.
Quotes are verified against source texts in copkg.pipeline.quote_checks; what the checks see of a
study and of the corpus is in copkg.pipeline.study_view."""

from __future__ import annotations

import re
import unicodedata
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import pyoxigraph as ox
from rdflib import Graph, Literal, URIRef
from rdflib.namespace import DCTERMS, OWL, PROV, RDF, RDFS, SKOS, XSD

from copkg.errors import Problem
from copkg.namespaces import BASE, COPKG, ONTOLOGY_GRAPH, prefixed
from copkg.pipeline.quote_checks import Fidelity, find_sources, quote_problems
from copkg.pipeline.study_view import (
    DOI_PROPERTIES,
    RECORD_PREDICATES,
    STUDY_GRAPHS,
    Described,
    FileOnDisk,
    Others,
    StudyFiles,
    StudyIndex,
    study_of,
)
from copkg.rdf_io import sorted_terms
from copkg.store.terms import from_ox, quads_to_graph

#: Namespaces no study may describe a term of (besides the copkg ontology and whatever the
#: ontology graph describes: the shared vocabularies and the terms they align to).
SHARED_NAMESPACES = tuple(str(ns) for ns in (RDF, RDFS, OWL, XSD, SKOS, PROV, DCTERMS))

_DIGESTS = (ox.NamedNode(str(COPKG.sourceText)), ox.NamedNode(str(COPKG.sha256)))
_TYPE = ox.NamedNode(str(RDF.type))
_CREATOR = ox.NamedNode(str(DCTERMS.creator))
_PLACEHOLDER = re.compile(r"\bTODO\b")
_DOI = re.compile(r"10\.\d{4,9}/\S+")


def statement_problems(
    study: Described, others: Others, known: KnownPapers | None = None
) -> list[Problem]:
    """Everything a study may not state: IRIs it may not use or describe, shared vocabulary it
    redefines, placeholders left in it, and a paper another study records already (`known`:
    the corpus's papers, if indexed already)."""
    problems = iri_problems(study, others) + duplicate_problems(study, others, known)
    for subject in sorted_terms(set(study.graph.subjects(COPKG.quotesVerified, None))):
        file, line = study.locate(COPKG.quotesVerified)
        problems.append(
            Problem(
                f"{study.show(subject)} copkg:quotesVerified: only the build says a study's "
                "quotes are verified (against its copkg:sourceText): remove the statement",
                file=file,
                line=line,
            )
        )
    return sorted(problems, key=lambda p: (p.file or "", p.line or 0, p.message))


def iri_problems(bundle: Described, corpus: Others) -> list[Problem]:
    """IRIs the study may not use or describe, and placeholders left in it."""
    problems: dict[tuple[str, str], Problem] = {}
    subjects = bundle.subjects()
    vocabulary = corpus.vocabulary

    def refuse(node: Any, why: str | None, *, described: bool = False) -> None:
        key = (str(node), why or "")
        if why is not None and key not in problems:
            file, line = bundle.locate(node, subject=described)
            problems[key] = Problem(f"{bundle.show(node)}: {why}", file=file, line=line)

    for subject in subjects:
        if isinstance(subject, URIRef):
            refuse(subject, _described_problem(subject, bundle, corpus, vocabulary), described=True)
    for node in bundle.iris():
        if node not in subjects:
            refuse(node, _used_problem(node, bundle, corpus))
    for problem in _placeholders(bundle):
        problems[(problem.file or "", str(problem.line))] = problem
    return sorted(problems.values(), key=lambda p: (p.file or "", p.line or 0, p.message))


def _described_problem(
    subject: URIRef, bundle: Described, corpus: Others, vocabulary: set[URIRef]
) -> str | None:
    """Why the bundle may not describe `subject` (None if it may)."""
    text = str(subject)
    own = bundle.namespace
    other = study_of(subject)
    if text.startswith("file:"):
        return "a relative IRI: write the full IRI or a prefixed name"
    if text.startswith(SHARED_NAMESPACES) or (other is None and subject in vocabulary):
        return (
            "a term of the shared vocabulary: a study cannot redefine it (its statements "
            "would change every study's pages and answers); mint a term in "
            f"{own} and link it with rdfs:subPropertyOf, rdfs:subClassOf or skos:closeMatch"
        )
    if other is not None and other != bundle.study_id:
        return (
            f"this resource belongs to study {other} (another study's namespace): a bundle "
            f"only describes its own resources ({own}...); point at it as an object instead"
        )
    if text.startswith(BASE) and not text.startswith(own):
        return (
            "a bundle cannot describe the ontology or other copkg resources: propose "
            "changes to ontology/copkg.ttl instead"
        )
    if other is None and corpus.describers(text):
        studies = ", ".join(sorted(g[len(STUDY_GRAPHS) :] for g in corpus.describers(text)))
        return (
            f"already described by study {studies}: adding triples here would mix with that "
            f"study's facts; mint an IRI in {own} and link it with skos:exactMatch"
        )
    return None


def _used_problem(node: URIRef, bundle: Described, corpus: Others) -> str | None:
    """Why the bundle may not use `node` without describing it (None if it may)."""
    text = str(node)
    other = study_of(node)
    if text.startswith("file:"):
        return "a relative IRI: write the full IRI or a prefixed name"
    if text.startswith(str(COPKG)):
        if node in corpus.declared:
            return None
        return (
            "not a term of the copkg ontology: check its spelling against "
            "ontology/copkg.ttl and ontology/vocabularies.ttl"
        )
    if other == bundle.study_id:
        return (
            "used but not described in the bundle (a misspelt name?): describe it, or "
            "correct the name"
        )
    if other is not None:
        if corpus.describers(text):
            return None
        where = (
            f"study {other} has no such resource"
            if other in corpus.studies
            else f"there is no study {other} in the corpus"
        )
        return f"no study bundle describes it ({where})"
    if text.startswith(BASE) and not corpus.known(text):
        return "not a copkg resource the corpus knows"
    return None


def _placeholders(bundle: Described) -> list[Problem]:
    """Every line of the bundle's files with a TODO placeholder left outside a comment."""
    return [
        Problem(
            "a TODO placeholder is left: fill in the value (or delete the statement)",
            file=str(file.path),
            line=number,
        )
        for file in bundle.files
        for number, line in enumerate(file.text.splitlines(), 1)
        if not line.lstrip().startswith("#") and _PLACEHOLDER.search(line)
    ]


@dataclass(frozen=True)
class Paper:
    """What tells one paper from another: its DOIs, or its authors' surnames, year and title."""

    study: URIRef
    dois: frozenset[str] = field(default_factory=frozenset)
    authors: frozenset[str] = field(default_factory=frozenset)
    year: str = ""
    title: str = ""

    def same_as(self, other: Paper) -> str | None:
        """Why `other` is the same paper (None if it is not)."""
        if self.dois & other.dois:
            return f"the same DOI ({', '.join(sorted(self.dois & other.dois))})"
        if (
            self.title
            and self.year
            and self.authors
            and ((self.authors, self.year, self.title) == (other.authors, other.year, other.title))
        ):
            return "the same authors, year and title"
        return None


def _fold(text: str) -> str:
    text = unicodedata.normalize("NFKD", text)
    return " ".join(
        re.sub(r"[^\w]+", " ", "".join(c for c in text if not unicodedata.combining(c)))
        .casefold()
        .split()
    )


class RecordGraph:
    """Statements indexed for what papers() and source_digests() read of them (objects,
    subjects, a value), each triple once as in a graph: the study records of a corpus, where an
    rdflib Graph of them would cost seconds at a thousand studies."""

    def __init__(self, quads: Iterable[ox.Quad]) -> None:
        self._objects: dict[tuple[Any, Any], dict[Any, None]] = defaultdict(dict)
        self._subjects: dict[tuple[Any, Any], dict[Any, None]] = defaultdict(dict)
        self._pairs: dict[Any, dict[tuple[Any, Any], None]] = defaultdict(dict)
        for quad in quads:
            s, p, o = from_ox(quad.subject), from_ox(quad.predicate), from_ox(quad.object)
            self._objects[(s, p)][o] = None
            self._subjects[(p, o)][s] = None
            self._pairs[p][(s, o)] = None

    def objects(self, subject: Any, predicate: Any) -> Iterator[Any]:
        return iter(list(self._objects.get((subject, predicate), ())))

    def subjects(self, predicate: Any, obj: Any) -> Iterator[Any]:
        return iter(list(self._subjects.get((predicate, obj), ())))

    def subject_objects(self, predicate: Any) -> Iterator[tuple[Any, Any]]:
        return iter(list(self._pairs.get(predicate, ())))

    def value(self, subject: Any, predicate: Any) -> Any:
        return next(self.objects(subject, predicate), None)


def papers(graph: Graph | RecordGraph, describers: Names | None = None) -> list[Paper]:
    """The copkg:Study records of `graph` as papers (creators' names looked up in
    `describers` too)."""

    def name(creator: Any, prop: URIRef) -> Any:
        found = graph.value(creator, prop)
        return found if found is not None or describers is None else describers.value(creator, prop)

    found = []
    for study in sorted(s for s in graph.subjects(RDF.type, COPKG.Study) if isinstance(s, URIRef)):
        dois = {
            match.group(0).rstrip(".").casefold()
            for prop in DOI_PROPERTIES
            for value in graph.objects(study, prop)
            if (match := _DOI.search(str(value)))
        }
        authors = set()
        for creator in graph.objects(study, DCTERMS.creator):
            label = name(creator, RDFS.label) or name(
                creator, URIRef("http://xmlns.com/foaf/0.1/familyName")
            )
            if label is None and isinstance(creator, Literal):
                label = creator
            words = _fold(str(label)).split() if label is not None else []
            authors.add(words[-1] if words else str(creator))
        year = next((str(y)[:4] for y in graph.objects(study, DCTERMS.issued)), "")
        title = next((_fold(str(t)) for t in graph.objects(study, DCTERMS.title)), "")
        found.append(Paper(study, frozenset(dois), frozenset(authors), year, title))
    return found


class Names(Protocol):
    """What papers() looks a creator's name up in: value(subject, predicate), or None."""

    def value(self, subject: Any, predicate: Any) -> Any: ...


class KnownPapers:
    """The papers of the corpus's study records, indexed by DOI and by authors, year and title,
    so that a study is compared with the few papers that may be its own, not with every one.
    `describers` gives the names of the records' creators (for a bundle's creators)."""

    def __init__(self, known: list[Paper], describers: Names) -> None:
        self.describers = describers
        self.papers = known
        self._by_doi: dict[str, list[int]] = defaultdict(list)
        self._by_name: dict[tuple[frozenset[str], str, str], list[int]] = defaultdict(list)
        for rank, paper in enumerate(self.papers):
            for doi in paper.dois:
                self._by_doi[doi].append(rank)
            if paper.title and paper.year and paper.authors:
                self._by_name[(paper.authors, paper.year, paper.title)].append(rank)

    @classmethod
    def of_records(cls, records: RecordGraph) -> KnownPapers:
        """The papers of study records (as study_records() gives them, indexed)."""
        return cls(papers(records), records)

    def same(self, paper: Paper, study_id: str) -> list[tuple[Paper, str]]:
        """The papers of studies other than `study_id` that are `paper`, with why, in the
        order of their records."""
        ranks = {r for doi in paper.dois for r in self._by_doi.get(doi, ())}
        ranks |= set(self._by_name.get((paper.authors, paper.year, paper.title), ()))
        found = []
        for rank in sorted(ranks):
            other = self.papers[rank]
            why = paper.same_as(other)
            if why is not None and study_of(other.study) != study_id:
                found.append((other, why))
        return found


def duplicate_problems(
    study: Described, others: Others, known: KnownPapers | None = None
) -> list[Problem]:
    """The study's paper if another study records it already (a second ID for one paper);
    `known` indexes the corpus's papers (else they are read from `others.records()`)."""
    known = known or KnownPapers.of_records(RecordGraph(others.records()))
    problems = []
    for paper in papers(study.graph, known.describers):
        for other, why in known.same(paper, study.study_id):
            file, line = study.locate(paper.study, subject=True)
            problems.append(
                Problem(
                    f"{study.show(paper.study)}: this paper is already in the corpus as "
                    f"study {study_of(other.study)} ({prefixed(other.study)}): {why}; "
                    "add to that study's bundle instead of entering the paper again",
                    file=file,
                    line=line,
                )
            )
    return problems


def corpus_problems(
    graphs: dict[str, list[Path]],
    store: ox.Store,
    read: Callable[[str], list[ox.Quad]],
    folders: Callable[[str], list[Path]] = lambda study_id: [],
) -> tuple[list[Problem], Fidelity]:
    """statement_problems() of every study of the corpus against the others (what `copkg add`
    checks of a bundle, checked by `copkg build` of each study), and every quote verified
    against the source text of its study where there is one (found in `folders(study_id)`).

    `store` holds the sources, each graph named (and nothing else); `read(graph)` gives a
    graph's quads as written. Who describes what, the study records and their papers, and the
    source texts are looked up in the store, once; then each study is read and checked on its
    own: the work grows with the corpus, not its square, and memory with one study."""
    ontology = quads_to_graph(read(str(ONTOLOGY_GRAPH)))

    def subject_graphs(iri: str) -> set[str]:
        found = store.quads_for_pattern(ox.NamedNode(iri), None, None, None)
        return {q.graph_name.value for q in found if isinstance(q.graph_name, ox.NamedNode)}

    study_graphs = [g for g in sorted(graphs) if g.startswith(STUDY_GRAPHS)]
    described = {g for g in study_graphs if _has_named_subject(store, g)}
    corpus = StudyIndex(ontology, subject_graphs, described, study_records(store))
    known = KnownPapers.of_records(RecordGraph(corpus.records))
    fidelity = find_sources(_digests(store, study_graphs), folders)
    problems: list[Problem] = []
    quotes: list[tuple[URIRef, int, list[Problem]]] = []
    for rank, graph in enumerate(study_graphs):
        files = [FileOnDisk(p) for p in graphs[graph]]
        study = StudyFiles.of(graph[len(STUDY_GRAPHS) :], files, read(graph))  # type: ignore[arg-type]
        problems += statement_problems(study, corpus.others(graph), known)
        for text, path in fidelity.verified.items():
            quotes.append((text, rank, quote_problems(study, {text: path})))
    fidelity.problems = [p for _text, _rank, found in sorted(quotes) for p in found]
    return problems + fidelity.problems, fidelity


def _has_named_subject(store: ox.Store, graph: str) -> bool:
    return any(
        isinstance(q.subject, ox.NamedNode)
        for q in store.quads_for_pattern(None, None, None, ox.NamedNode(graph))
    )


def study_records(store: ox.Store, studies: Iterable[ox.NamedNode] | None = None) -> list[ox.Quad]:
    """What the study graphs say of the copkg:Study records (resources typed so in any graph;
    `studies`: only these) and of the records' creators and source texts (as the store keeps
    their literals), as far as the checks read it (RECORD_PREDICATES)."""
    if studies is None:
        typed = store.quads_for_pattern(None, _TYPE, ox.NamedNode(str(COPKG.Study)), None)
        studies = {q.subject for q in typed}  # type: ignore[misc]
    studies = set(studies)
    linked = {
        q.object
        for study in studies
        for predicate in (_CREATOR, _DIGESTS[0])
        for q in store.quads_for_pattern(study, predicate, None, None)
        if not isinstance(q.object, ox.Literal)
    }
    return [
        q
        for subject in sorted(studies | linked, key=str)
        for q in store.quads_for_pattern(subject, None, None, None)
        if q.predicate.value in RECORD_PREDICATES
        and isinstance(q.graph_name, ox.NamedNode)
        and q.graph_name.value.startswith(STUDY_GRAPHS)
    ]


def _digests(store: ox.Store, graphs: list[str]) -> dict[URIRef, str]:
    """The SHA-256 of each study's source text, as the study graphs declare it (a later graph's
    declaration over an earlier one's, as source_digests() of each graph in turn)."""
    found: dict[URIRef, str] = {}
    text, sha = _DIGESTS
    declared = store.query(
        f"SELECT ?g ?study ?digest WHERE {{ GRAPH ?g {{ ?study {text} ?t . ?t {sha} ?digest }} }}"
    )
    if not isinstance(declared, ox.QuerySolutions):
        raise TypeError("a SELECT query gave no solutions")
    rank = {graph: i for i, graph in enumerate(graphs)}
    rows = [
        (rank[row["g"].value], row["study"].value, row["digest"].value)
        for row in declared
        if row["g"].value in rank and isinstance(row["study"], ox.NamedNode)
    ]
    for _rank, study, digest in sorted(rows):
        found[URIRef(study)] = digest
    return found
