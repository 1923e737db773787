"""`copkg export orkg`: studies and their findings as a CSV for ORKG's bulk paper import.

One row a contribution: each finding of a study is one contribution of the study's paper (the
paper columns repeated), so a comparison of findings can be built in ORKG. Columns: the paper
(`paper:title`, `paper:authors` separated by `;`, `paper:publication_month`,
`paper:publication_year`, `paper:published_in`, `paper:research_field`, `paper:doi`),
`contribution:research_problem`, then one column per predicate the findings use, headed by
the predicate's label; a predicate with several values gets its column repeated. IRI values
are written `resource:LABEL` (ORKG makes a resource of them), literals as text. Evidence is
given as the quote, `p. PAGE: TEXT`, and the voice by its label.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable

from rdflib import Graph, Literal, URIRef
from rdflib.namespace import DCTERMS, RDF, RDFS, SKOS, XSD
from rdflib.term import Node

from copkg.config import Settings
from copkg.namespaces import COPKG, study_base
from copkg.rdf_io import parse_graph, sorted_terms
from copkg.scholarly.corpus import dois_of, load_study, study_ids, study_iri
from copkg.scholarly.nanopub import finding_classes

PAPER_COLUMNS = [
    "paper:title",
    "paper:authors",
    "paper:publication_month",
    "paper:publication_year",
    "paper:published_in",
    "paper:research_field",
    "paper:doi",
    "contribution:research_problem",
]
DEFAULT_FIELD = "Business Administration"
DEFAULT_PROBLEM = "Communities of practice in organisations"
#: Links left out of the predicate columns (the paper columns say them, or they are internal).
SKIPPED = {COPKG.reportedIn}


def label_of(node: Node, *graphs: Graph) -> str:
    """An English (else any) rdfs:label or skos:prefLabel, else the IRI's last segment."""
    for graph in graphs:
        for predicate in (RDFS.label, SKOS.prefLabel):
            found = [v for v in graph.objects(node, predicate) if isinstance(v, Literal)]
            labels = sorted(found, key=lambda v: (v.language != "en", v))
            if labels:
                return str(labels[0])
    return re.split(r"[#/]", str(node).rstrip("/#"))[-1]


def _paper(graph: Graph, study: URIRef) -> dict[str, str]:
    title = graph.value(study, DCTERMS.title)
    authors = []
    for creator in sorted_terms(graph.objects(study, DCTERMS.creator)):
        authors.append(str(creator) if isinstance(creator, Literal) else label_of(creator, graph))
    issued = graph.value(study, DCTERMS.issued)
    year = month = ""
    if isinstance(issued, Literal):
        match = re.match(r"(\d{4})(?:-(\d{2}))?", str(issued))
        if match:
            year = match.group(1)
            month = str(int(match.group(2))) if match.group(2) else ""
    venue = graph.value(study, DCTERMS.isPartOf)
    published_in = re.split(r",\s*volume\b", str(venue))[0] if venue is not None else ""
    dois = [d for d, s in sorted(dois_of(graph).items()) if s == study]
    return {
        "paper:title": str(title) if title is not None else label_of(study, graph),
        "paper:authors": "; ".join(authors),
        "paper:publication_month": month,
        "paper:publication_year": year,
        "paper:published_in": published_in,
        "paper:doi": dois[0] if dois else "",
    }


def _value(node: Node, graphs: Iterable[Graph]) -> str:
    if isinstance(node, Literal):
        if node.datatype == XSD.boolean:
            return "true" if node.toPython() else "false"
        return " ".join(str(node).split())
    return f"resource:{label_of(node, *graphs)}"


def orkg_rows(
    settings: Settings,
    studies: list[str] | None = None,
    research_field: str = DEFAULT_FIELD,
    research_problem: str = DEFAULT_PROBLEM,
) -> tuple[list[str], list[dict[str, list[str]]]]:
    """The header and the rows (column -> values) of the CSV."""
    ontology = Graph()
    for path in settings.ontology_files():
        ontology += parse_graph(path)
    classes = finding_classes(settings)
    rows: list[dict[str, list[str]]] = []
    predicates: dict[str, int] = {}
    for study_id in studies or study_ids(settings):
        graph = load_study(settings, study_id)
        study = study_iri(graph, study_id)
        paper = _paper(graph, study)
        base = str(study_base(study_id))
        findings = sorted(
            {
                s
                for c in classes
                for s in graph.subjects(RDF.type, c)
                if isinstance(s, URIRef) and str(s).startswith(base)
            }
        )
        for finding in findings:
            row: dict[str, list[str]] = {k: [v] for k, v in paper.items()}
            row["paper:research_field"] = [research_field]
            row["contribution:research_problem"] = [research_problem]
            cells: dict[str, list[str]] = {}
            for p, o in sorted(graph.predicate_objects(finding)):
                if p in SKIPPED or (p == RDF.type and o in (COPKG.Finding,)):
                    continue
                if p == COPKG.hasEvidence:
                    page = graph.value(o, COPKG.page)
                    text = graph.value(o, COPKG.quoteText)
                    value = f"p. {page}: {' '.join(str(text).split())}" if text else _value(o, [])
                    name = "evidence"
                elif p == RDF.type:
                    name, value = "type", _value(o, [ontology])
                else:
                    name, value = label_of(p, ontology), _value(o, [graph, ontology])
                cells.setdefault(name, []).append(value)
            for name, values in cells.items():
                predicates[name] = max(predicates.get(name, 0), len(values))
            row.update(cells)
            rows.append(row)
    ordered = sorted(predicates, key=lambda n: (n not in ("type", "statement"), n))
    header = PAPER_COLUMNS + [n for n in ordered for _ in range(predicates[n])]
    return header, rows


def to_csv(header: list[str], rows: list[dict[str, list[str]]]) -> str:
    """The CSV text: a predicate with several values fills its repeated columns in order."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    for row in rows:
        used: dict[str, int] = {}
        line = []
        for column in header:
            at = used.get(column, 0)
            used[column] = at + 1
            values = row.get(column, [])
            line.append(values[at] if at < len(values) else "")
        writer.writerow(line)
    return out.getvalue()
