"""`copkg cite import`: a study's bibliography from BibTeX or CSL-JSON, as FaBiO works with
DCTERMS metadata and CiTO links from the study.

A work whose DOI some study already gives is linked (`cito:cites`), not described again. New
works are typed with a FaBiO class but not copkg:CitedWork: a cited work of the corpus rests
on a quote of the paper's reference list, and an imported record has none until a curator
adds it.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path

from rdflib import Graph, Literal, Namespace, URIRef
from rdflib.namespace import DCTERMS, RDF, RDFS, XSD

from copkg.config import Settings
from copkg.errors import CopkgError, Problem
from copkg.namespaces import CITO, FABIO, PREFIXES, study_base
from copkg.rdf_io import atomic_write, sorted_turtle
from copkg.scholarly.corpus import (
    DOI_IRI,
    PRISM,
    dois_of,
    load_study,
    study_folder,
    study_ids,
    study_iri,
)
from copkg.scholarly.csl import read_csl_json
from copkg.scholarly.entry import Entry, clean_text, page_range, parse_doi, parse_year

PRISM_NS = Namespace(PRISM)
DEFAULT_NAME = "references-imported.ttl"
MONTHS = 12

#: BibTeX entry types and CSL types -> FaBiO classes (others: fabio:Work).
FABIO_TYPES: dict[str, URIRef] = {
    "article": FABIO.JournalArticle,
    "article-journal": FABIO.JournalArticle,
    "book": FABIO.Book,
    "incollection": FABIO.BookChapter,
    "inbook": FABIO.BookChapter,
    "chapter": FABIO.BookChapter,
    "inproceedings": FABIO.ConferencePaper,
    "conference": FABIO.ConferencePaper,
    "paper-conference": FABIO.ConferencePaper,
    "phdthesis": FABIO.Thesis,
    "mastersthesis": FABIO.Thesis,
    "thesis": FABIO.Thesis,
    "techreport": FABIO.ReportDocument,
    "report": FABIO.ReportDocument,
}
_MONTHS = {
    m: i
    for i, m in enumerate(
        ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"], 1
    )
}


@dataclass
class ImportOutcome:
    """What `import_bibliography` wrote."""

    path: Path
    study: URIRef
    created: list[URIRef]
    linked: list[URIRef]


# -- reading ------------------------------------------------------------------------------------


def read_entries(path: Path) -> list[Entry]:
    """The records of a .bib or CSL-JSON (.json) file; every problem as `file:line: message`."""
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise _refuse(path, [Problem(f"not UTF-8 ({exc.reason})", file=str(path))]) from exc
    except OSError as exc:
        raise CopkgError(f"{path}: cannot read: {exc.strerror}", status=400) from exc
    suffix = path.suffix.lower()
    if suffix == ".bib":
        entries, problems = _bibtex(text, str(path))
    elif suffix == ".json":
        entries, problems = read_csl_json(text, str(path))
    else:
        raise CopkgError(f"{path}: give a BibTeX (.bib) or CSL-JSON (.json) file", status=400)
    problems += _check(entries, str(path))
    if problems:
        raise _refuse(path, problems)
    return entries


def _refuse(path: Path, problems: list[Problem]) -> CopkgError:
    return CopkgError(
        f"{path}: {len(problems)} problem(s) in the bibliography; nothing written",
        status=400,
        problems=sorted(problems, key=lambda p: (p.line or 0, p.message)),
    )


def _latex(value: str) -> str:
    from pylatexenc.latex2text import LatexNodes2Text

    return " ".join(LatexNodes2Text().latex_to_text(value).split())


def _bibtex(text: str, file: str) -> tuple[list[Entry], list[Problem]]:
    import bibtexparser
    from bibtexparser.middlewares.names import (
        InvalidNameError,
        parse_single_name_into_parts,
        split_multiple_persons_names,
    )

    quiet = logging.getLogger("bibtexparser")
    level = quiet.level
    quiet.setLevel(logging.CRITICAL)  # its warnings repeat the failed blocks reported below
    try:
        library = bibtexparser.parse_string(text)
    finally:
        quiet.setLevel(level)
    problems = [
        Problem(
            f"cannot read this block: {_first_line(block.error)}",
            file=file,
            line=(block.start_line or 0) + 1,
        )
        for block in library.failed_blocks
    ]
    entries: list[Entry] = []
    for raw in library.entries:
        line = (raw.start_line or 0) + 1
        fields = {k.lower(): v.value for k, v in raw.fields_dict.items()}
        entry = Entry(key=raw.key, kind=raw.entry_type.lower(), line=line)
        entry.title = clean_text(fields.get("title"), _latex)
        for name in split_multiple_persons_names(
            fields.get("author", "") or fields.get("editor", "")
        ):
            if name.strip().lower() == "others":
                continue
            try:
                parts = parse_single_name_into_parts(name)
            except InvalidNameError as exc:
                problems.append(Problem(f"entry {raw.key}: author {name!r}: {exc}", file, line))
                continue
            family = _latex(" ".join(parts.von + parts.last + parts.jr))
            entry.authors.append((family, _latex(" ".join(parts.first))))
        entry.year = parse_year(fields.get("year"), entry, problems, file)
        month = (fields.get("month") or "").strip().lower()[:3]
        entry.month = _MONTHS.get(month) or (int(month) if month.isdigit() else None)
        entry.container = clean_text(
            fields.get("journal") or fields.get("booktitle") or fields.get("school"), _latex
        )
        entry.volume = clean_text(fields.get("volume"))
        entry.issue = clean_text(fields.get("number"))
        entry.pages = clean_text(fields.get("pages"), page_range)
        entry.publisher = clean_text(fields.get("publisher") or fields.get("institution"), _latex)
        entry.doi = parse_doi(fields.get("doi"), entry, problems, file)
        entries.append(entry)
    return entries, problems


def _first_line(error: object) -> str:
    """bibtexparser's reason, without its own (0-based) line numbers."""
    text = str(getattr(error, "abort_reason", None) or error or "").strip()
    if "\n" in text and text.startswith("Parsing of"):
        text = text.split("\n", 1)[1]
    return " ".join(text.split()).replace("`", "'") or "syntax error"


def _check(entries: list[Entry], file: str) -> list[Problem]:
    """Each record has a key and a title; keys and DOIs are unique in the file."""
    problems: list[Problem] = []
    keys: dict[str, int] = {}
    dois: dict[str, str] = {}
    for entry in entries:
        if not entry.key:
            problems.append(Problem("a record without a key (id)", file, entry.line))
        elif not re.fullmatch(r"[A-Za-z0-9_:.\-]+", entry.key):
            problems.append(
                Problem(
                    f"key {entry.key!r}: use letters, digits and _ : . - only", file, entry.line
                )
            )
        elif entry.key.lower() in keys:
            problems.append(
                Problem(
                    f"key {entry.key!r} given twice (first on line {keys[entry.key.lower()]})",
                    file,
                    entry.line,
                )
            )
        else:
            keys[entry.key.lower()] = entry.line
        if not entry.title:
            problems.append(Problem(f"entry {entry.key}: no title", file, entry.line))
        if entry.doi is not None:
            if entry.doi in dois:
                problems.append(
                    Problem(
                        f"entry {entry.key}: DOI {entry.doi} also given by {dois[entry.doi]}",
                        file,
                        entry.line,
                    )
                )
            dois.setdefault(entry.doi, entry.key)
    return problems


# -- writing ------------------------------------------------------------------------------------


def slug(key: str) -> str:
    """A citation key as the local part of an IRI: lower case, runs of other characters -> -."""
    return re.sub(r"[^a-z0-9]+", "-", key.lower()).strip("-")


def creator_text(authors: list[tuple[str, str]]) -> str:
    """Authors in order, as the corpus writes them: 'Family, Given, Given Family, and ...'."""
    names = [f"{f}, {g}" if g else f for f, g in authors[:1]]
    names += [f"{g} {f}" if g else f for f, g in authors[1:]]
    match names:
        case [] | [_]:
            return "".join(names)
        case [first, second]:
            return f"{first}, and {second}"
    return ", ".join(names[:-1]) + f", and {names[-1]}"


def short_label(entry: Entry) -> str:
    """'Barley (1990)', 'Lave and Wenger (1991)', 'Wenger et al. (2002)'."""
    families = [f for f, _ in entry.authors]
    match families:
        case []:
            who = entry.title or entry.key
        case [one]:
            who = one
        case [first, second]:
            who = f"{first} and {second}"
        case _:
            who = f"{families[0]} et al."
    return f"{who} ({entry.year})" if entry.year else who


def citation_text(entry: Entry) -> str:
    """A reference-list line built from the record's fields."""
    parts = [creator_text(entry.authors) or "Anon."]
    if entry.year:
        parts.append(f"({entry.year})")
    text = " ".join(parts) + f". {entry.title}."
    if entry.container:
        text += f" {entry.container}"
        if entry.volume:
            text += f", {entry.volume}"
            if entry.issue:
                text += f"({entry.issue})"
        if entry.pages:
            text += f", {entry.pages}"
        text += "."
    elif entry.publisher:
        text += f" {entry.publisher}."
    if entry.doi:
        text += f" {DOI_IRI}{entry.doi}"
    return text


def _pages(raw: str) -> tuple[str | None, str | None]:
    parts = [p.strip() for p in re.split(r"\s*(?:-+|–|—)\s*", raw) if p.strip()]
    match parts:
        case [start, end]:
            return start, end
        case [start]:
            return start, None
    return None, None


def work_triples(graph: Graph, work: URIRef, entry: Entry, source: str) -> None:
    """Describe one new work: FaBiO type, DCTERMS, PRISM volume, issue and pages, the DOI."""
    graph.add((work, RDF.type, FABIO_TYPES.get(entry.kind, FABIO.Work)))
    graph.add((work, RDFS.label, Literal(short_label(entry), lang="en")))
    graph.add(
        (
            work,
            RDFS.comment,
            Literal(
                f"Imported from the bibliography record {entry.key} ({source}); "
                "not yet backed by a quote of the study's reference list.",
                lang="en",
            ),
        )
    )
    graph.add((work, DCTERMS.title, Literal(entry.title)))
    graph.add((work, DCTERMS.bibliographicCitation, Literal(citation_text(entry))))
    if entry.authors:
        graph.add((work, DCTERMS.creator, Literal(creator_text(entry.authors))))
    if entry.year is not None:
        if entry.month is not None and 1 <= entry.month <= MONTHS:
            issued = Literal(f"{entry.year:04d}-{entry.month:02d}", datatype=XSD.gYearMonth)
        else:
            issued = Literal(f"{entry.year:04d}", datatype=XSD.gYear)
        graph.add((work, DCTERMS.issued, issued))
    if entry.container:
        graph.add((work, DCTERMS.isPartOf, Literal(entry.container)))
    if entry.publisher:
        graph.add((work, DCTERMS.publisher, Literal(entry.publisher)))
    if entry.volume:
        graph.add((work, PRISM_NS.volume, Literal(entry.volume)))
    if entry.issue:
        graph.add((work, PRISM_NS.issueIdentifier, Literal(entry.issue)))
    if entry.pages:
        graph.add((work, PRISM_NS.pageRange, Literal(entry.pages)))
        first, last = _pages(entry.pages)
        if first:
            graph.add((work, PRISM_NS.startingPage, Literal(first)))
        if last:
            graph.add((work, PRISM_NS.endingPage, Literal(last)))
    if entry.doi:
        graph.add((work, DCTERMS.identifier, Literal(entry.doi)))
        graph.add((work, RDFS.seeAlso, URIRef(DOI_IRI + entry.doi)))


def import_bibliography(
    settings: Settings, source: Path, study_id: str, output: Path | None = None
) -> ImportOutcome:
    """Read `source`, write the study's imported references (sorted Turtle), atomically.

    A record whose DOI the corpus gives already (any study; the output file itself left out)
    is linked to that work; others are new works `ID/ref-KEY`. Nothing is written on a problem.
    """
    folder = study_folder(settings, study_id)
    target = output if output is not None else folder / DEFAULT_NAME
    entries = read_entries(source)
    own = load_study(settings, study_id, exclude=target)
    study = study_iri(own, study_id)
    known: dict[str, URIRef] = {}
    for other in study_ids(settings):
        graph = own if other == study_id else load_study(settings, other, exclude=target)
        for doi, work in dois_of(graph).items():
            known.setdefault(doi, work)
    base = study_base(study_id)
    described = {s for s in own.subjects() if isinstance(s, URIRef)}
    graph = Graph()
    for prefix, ns in PREFIXES.items():
        graph.bind(prefix, ns)
    graph.bind("prism", PRISM_NS)
    for prefix, ns in own.namespaces():
        if str(ns) == str(base):
            graph.bind(prefix, ns, override=True)
    created: list[URIRef] = []
    linked: list[URIRef] = []
    problems: list[Problem] = []
    for entry in entries:
        match = known.get(entry.doi) if entry.doi else None
        if match is not None:
            if match == study:
                problems.append(
                    Problem(
                        f"entry {entry.key}: DOI {entry.doi} is the study's own",
                        str(source),
                        entry.line,
                    )
                )
                continue
            graph.add((study, CITO.cites, match))
            linked.append(match)
            continue
        work = base[f"ref-{slug(entry.key)}"]
        if work in described or work in created:
            problems.append(
                Problem(
                    f"entry {entry.key}: {work} is already described in the study's files; "
                    "rename the key",
                    str(source),
                    entry.line,
                )
            )
            continue
        work_triples(graph, work, entry, source.name)
        graph.add((study, CITO.cites, work))
        created.append(work)
    if problems:
        raise _refuse(source, problems)
    atomic_write(target, sorted_turtle(graph))
    return ImportOutcome(target, study, created, linked)
