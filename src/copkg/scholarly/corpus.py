"""Reading study bundles for the scholarly imports and exports."""

from __future__ import annotations

import re
from pathlib import Path

from rdflib import Graph, Literal, URIRef
from rdflib.namespace import DCTERMS, OWL, RDF, RDFS

from copkg.config import Settings
from copkg.errors import CopkgError
from copkg.namespaces import COPKG, PREFIXES, study_base
from copkg.rdf_io import parse_graph

DOI_IRI = "https://doi.org/"
PRISM = "http://prismstandard.org/namespaces/basic/2.0/"
_DOI = re.compile(r"^10\.\d{4,9}/\S+$")
_DOI_PREFIXES = (
    "https://doi.org/",
    "http://doi.org/",
    "https://dx.doi.org/",
    "http://dx.doi.org/",
    "doi.org/",
    "doi:",
)


def normalise_doi(raw: str) -> str | None:
    """The DOI in `raw` (bare, doi:, or a doi.org URL), lower-cased; None if it is not one.
    DOIs are case-insensitive, so the lower-cased form is the one compared and written."""
    text = raw.strip()
    lowered = text.lower()
    for prefix in _DOI_PREFIXES:
        if lowered.startswith(prefix):
            text = text[len(prefix) :].strip()
            break
    text = text.lower()
    return text if _DOI.match(text) else None


def study_folder(settings: Settings, study_id: str) -> Path:
    """data/studies/ID/, which must exist."""
    folder = settings.data_dir / "studies" / study_id
    if not re.fullmatch(r"[a-z0-9][a-z0-9-]*", study_id) or not folder.is_dir():
        raise CopkgError(f"no study {study_id!r}: no folder data/studies/{study_id}/", status=404)
    return folder


def study_files(settings: Settings, study_id: str, exclude: Path | None = None) -> list[Path]:
    """The Turtle files of one study bundle, sorted, without `exclude`."""
    skip = exclude.resolve() if exclude is not None else None
    return sorted(p for p in study_folder(settings, study_id).glob("*.ttl") if p.resolve() != skip)


def load_study(settings: Settings, study_id: str, exclude: Path | None = None) -> Graph:
    """One study bundle as one graph (its files merged), prefixes bound."""
    graph = Graph()
    for prefix, ns in PREFIXES.items():
        graph.bind(prefix, ns)
    for path in study_files(settings, study_id, exclude):
        parsed = parse_graph(path)
        graph += parsed
        for prefix, ns in parsed.namespaces():
            graph.bind(prefix, ns, override=False)
    return graph


def study_iri(graph: Graph, study_id: str) -> URIRef:
    """The copkg:Study the bundle of `study_id` describes (in the study's namespace)."""
    base = str(study_base(study_id))
    found = sorted(
        s
        for s in graph.subjects(RDF.type, COPKG.Study)
        if isinstance(s, URIRef) and str(s).startswith(base)
    )
    if not found:
        raise CopkgError(f"study {study_id!r} has no copkg:Study in its namespace {base}")
    return found[0]


def study_ids(settings: Settings) -> list[str]:
    """Every study folder's ID, sorted."""
    return [p.name for p in settings.study_dirs()]


def dois_of(graph: Graph) -> dict[str, URIRef]:
    """Normalised DOI -> the resource it identifies, from dcterms:identifier, prism:doi, and
    doi.org IRIs given with rdfs:seeAlso or owl:sameAs (or as the resource's own IRI)."""
    found: dict[str, set[URIRef]] = {}

    def note(doi: str | None, subject: object) -> None:
        if doi is not None and isinstance(subject, URIRef):
            found.setdefault(doi, set()).add(subject)

    for predicate in (DCTERMS.identifier, URIRef(PRISM + "doi")):
        for s, o in graph.subject_objects(predicate):
            if isinstance(o, Literal):
                note(normalise_doi(str(o)), s)
    for predicate in (RDFS.seeAlso, OWL.sameAs):
        for s, o in graph.subject_objects(predicate):
            if isinstance(o, URIRef) and "doi.org/" in str(o):
                note(normalise_doi(str(o)), s)
    for s in set(graph.subjects()):
        if isinstance(s, URIRef) and "doi.org/" in str(s):
            note(normalise_doi(str(s)), s)
    return {doi: min(subjects) for doi, subjects in found.items()}
