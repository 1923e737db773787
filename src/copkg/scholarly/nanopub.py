"""`copkg export nanopub`: a study's findings as nanopublications (TriG), one a finding.

- assertion: the finding's own statements (blank nodes it points at included), without the
  evidence, voice and study links, which are provenance;
- provenance: the assertion prov:wasDerivedFrom each quote of its evidence (text, page, the
  quote's voice, the study it is quoted in), the finding's voice and prov:hadPrimarySource the
  study (with its bibliographic citation);
- publication info: creation time, prov:wasAttributedTo the curator (or copkg), the licence.

Well-formedness is checked with the `nanopub` library, offline. Nanopublications are unsigned
unless a private key is given; then the library signs them (and gives them trusty URIs).
"""

from __future__ import annotations

import base64
import functools
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rdflib import BNode, Dataset, Graph, Literal, Namespace, URIRef
from rdflib.namespace import DCTERMS, PROV, RDF, RDFS, XSD
from rdflib.term import IdentifiedNode, Node

from copkg.config import Settings
from copkg.errors import CopkgError, Problem
from copkg.namespaces import BASE, COPKG, PREFIXES, study_base
from copkg.rdf_io import SPARQL_PARSER_LOCK, parse_graph, sorted_terms
from copkg.scholarly.corpus import load_study, study_iri

NP = Namespace("http://www.nanopub.org/nschema#")
NPX = Namespace("http://purl.org/nanopub/x/")
HEAD_LINKS = (NP.hasAssertion, NP.hasProvenance, NP.hasPublicationInfo)
NP_BASE = BASE + "np/"
TOOL = URIRef(BASE)
LICENSE = URIRef("https://creativecommons.org/licenses/by/4.0/")
#: The finding's links that go to the provenance graph rather than the assertion.
PROVENANCE_LINKS = (COPKG.hasEvidence, COPKG.voice, COPKG.reportedIn)


@dataclass(frozen=True)
class Signer:
    """An offline signing identity: an RSA private key (PEM) and who it belongs to."""

    private_key: str
    orcid: str
    name: str

    @classmethod
    def from_pem(cls, path: Path, orcid: str, name: str) -> Signer:
        """Read an RSA private key in PEM (PKCS#8 or PKCS#1) from `path`."""
        lines = path.read_text(encoding="ascii").strip().splitlines()
        body = "".join(line.strip() for line in lines if not line.startswith("-----"))
        try:
            base64.b64decode(body, validate=True)
        except ValueError as exc:
            raise CopkgError(f"{path}: not a PEM private key", status=400) from exc
        return cls(body, orcid, name)


def finding_classes(settings: Settings) -> set[URIRef]:
    """copkg:Finding and its subclasses, from the ontology."""
    ontology = Graph()
    for path in settings.ontology_files():
        ontology += parse_graph(path)
    found = {COPKG.Finding}
    for sub in ontology.transitive_subjects(RDFS.subClassOf, COPKG.Finding):
        if isinstance(sub, URIRef):
            found.add(sub)
    return found


def _describe(graph: Graph, node: URIRef | BNode, into: Graph, skip: tuple[URIRef, ...]) -> None:
    """`node`'s triples into `into`, following blank nodes (a concise bounded description)."""
    for p, o in sorted(graph.predicate_objects(node)):
        if p in skip:
            continue
        into.add((node, p, o))
        if isinstance(o, BNode):
            _describe(graph, o, into, ())


def export_nanopubs(
    settings: Settings,
    study_id: str,
    created: datetime | None = None,
    curator: str | None = None,
) -> Dataset:
    """One nanopublication a finding of the study, as a Dataset of named graphs."""
    study_graph = load_study(settings, study_id)
    study = study_iri(study_graph, study_id)
    classes = finding_classes(settings)
    base = str(study_base(study_id))
    findings = sorted(
        {
            s
            for c in classes
            for s in study_graph.subjects(RDF.type, c)
            if isinstance(s, URIRef) and str(s).startswith(base)
        }
    )
    if not findings:
        raise CopkgError(f"study {study_id!r} has no findings to publish", status=404)
    when = Literal((created or datetime.now(UTC)).isoformat(), datatype=XSD.dateTime)
    agent = URIRef(curator) if curator else TOOL
    dataset = Dataset()
    for prefix, ns in study_graph.namespaces():
        dataset.bind(prefix, ns)
    for name, iri in PREFIXES.items():
        dataset.bind(name, iri, override=False)
    dataset.bind("np", NP)
    dataset.bind("npx", NPX)
    for finding in findings:
        _nanopub(
            dataset,
            study_graph,
            study,
            finding,
            nanopub_namespace(finding, base, study_id),
            when,
            agent,
        )
    return dataset


def nanopub_namespace(finding: URIRef, base: str, study_id: str) -> Namespace:
    """The namespace of the nanopublication of one finding: np/STUDY/LOCAL/."""
    return Namespace(f"{NP_BASE}{study_id}/{str(finding)[len(base) :]}/")


def _nanopub(
    dataset: Dataset,
    source: Graph,
    study: URIRef,
    finding: URIRef,
    ns: Namespace,
    when: Literal,
    agent: URIRef,
) -> None:
    np_iri = URIRef(ns)
    head = dataset.graph(ns["Head"])
    assertion = dataset.graph(ns["assertion"])
    provenance = dataset.graph(ns["provenance"])
    pubinfo = dataset.graph(ns["pubinfo"])
    head.add((np_iri, RDF.type, NP.Nanopublication))
    head.add((np_iri, NP.hasAssertion, assertion.identifier))
    head.add((np_iri, NP.hasProvenance, provenance.identifier))
    head.add((np_iri, NP.hasPublicationInfo, pubinfo.identifier))

    _describe(source, finding, assertion, PROVENANCE_LINKS)

    about = assertion.identifier
    for voice in source.objects(finding, COPKG.voice):
        provenance.add((about, COPKG.voice, voice))
    provenance.add((about, PROV.hadPrimarySource, study))
    for citation in source.objects(study, DCTERMS.bibliographicCitation):
        provenance.add((study, DCTERMS.bibliographicCitation, citation))
    for evidence in sorted_terms(source.objects(finding, COPKG.hasEvidence)):
        provenance.add((about, PROV.wasDerivedFrom, evidence))
        for p in (RDF.type, COPKG.quoteText, COPKG.page, COPKG.voice, COPKG.quotedIn):
            for o in source.objects(evidence, p):
                provenance.add((evidence, p, o))

    pubinfo.add((np_iri, DCTERMS.created, when))
    pubinfo.add((np_iri, PROV.generatedAtTime, when))
    pubinfo.add((np_iri, PROV.wasAttributedTo, agent))
    pubinfo.add((np_iri, DCTERMS.license, LICENSE))
    pubinfo.add((np_iri, NPX.introduces, finding))
    for label in source.objects(finding, RDFS.label):
        pubinfo.add((np_iri, RDFS.label, label))


def split(dataset: Dataset) -> dict[URIRef, Dataset]:
    """Each nanopublication of `dataset` (by its head graph) as a dataset of its four graphs."""
    graphs: dict[IdentifiedNode | None, list[tuple[Node, Node, Node]]] = {}
    for s, p, o, g in dataset.quads((None, None, None, None)):
        graphs.setdefault(g.identifier if isinstance(g, Graph) else g, []).append((s, p, o))
    found: dict[URIRef, Dataset] = {}
    for name, triples in graphs.items():
        for s, p, o in triples:
            if p != RDF.type or o != NP.Nanopublication:
                continue
            links = {p2: o2 for s2, p2, o2 in triples if s2 == s}
            one = Dataset()
            parts = [name] + [links.get(p) for p in HEAD_LINKS]
            for part in parts:
                if isinstance(part, IdentifiedNode):
                    target = one.graph(part)
                    for triple in graphs.get(part, []):
                        target.add(triple)
            found[URIRef(str(s))] = one
    return dict(sorted(found.items()))


@functools.cache
def _prepared(text: str) -> Any:
    from rdflib.plugins.sparql import prepareQuery

    with SPARQL_PARSER_LOCK:  # rdflib's SPARQL parser is not thread-safe
        return prepareQuery(text, initNs={"np": NP, "npx": NPX})


def _library_nanopub(one: Dataset, signer: Signer | None = None) -> Any:
    """The nanopub library's Nanopub of one nanopublication (offline: no server, no profile
    file)."""
    from nanopub import Nanopub, NanopubConf, Profile
    from rdflib import ConjunctiveGraph

    class Prepared(ConjunctiveGraph):
        """Parses the library's SPARQL once, not once a nanopublication (40 ms each)."""

        def query(self, query_object: Any, *args: Any, **kwargs: Any) -> Any:
            if isinstance(query_object, str) and not args and not kwargs:
                query_object = _prepared(query_object)
            return super().query(query_object, *args, **kwargs)

    graph = Prepared()
    for s, p, o, g in one.quads((None, None, None, None)):
        graph.add((s, p, o, graph.get_context(g)))
    conf = NanopubConf()
    if signer is not None:
        conf = NanopubConf(
            profile=Profile(signer.orcid, signer.name, private_key=signer.private_key)
        )
    return Nanopub(rdf=graph, conf=conf)


def check_nanopubs(dataset: Dataset) -> int:
    """Check every nanopublication with the `nanopub` library's well-formedness checks (four
    non-empty graphs; provenance about the assertion; publication info about the nanopub);
    return how many there are. Raise a CopkgError naming each one that fails."""
    try:
        from nanopub.utils import MalformedNanopubError
    except ImportError as exc:
        raise CopkgError(
            f"the nanopub library is needed to check nanopublications ({exc}): "
            "pip install 'copkg[scholarly]'",
            status=500,
        ) from exc
    parts = split(dataset)
    problems: list[Problem] = []
    for np_iri, one in parts.items():
        try:
            if not _library_nanopub(one).is_valid:
                problems.append(Problem("not a valid nanopublication", focus=str(np_iri)))
        except MalformedNanopubError as exc:
            message = str(exc).replace("\033[1m", "").replace("\033[0m", "")
            problems.append(Problem(message, focus=str(np_iri)))
    if problems:
        raise CopkgError("malformed nanopublications", status=500, problems=problems)
    if not parts:
        raise CopkgError("no nanopublication found", status=400)
    return len(parts)


def sign_nanopubs(dataset: Dataset, signer: Signer) -> Dataset:
    """Each nanopublication signed with `signer`'s key (offline), with its trusty URI."""
    signed = Dataset()
    for prefix, ns in dataset.namespaces():
        signed.bind(prefix, ns)
    for one in split(dataset).values():
        publication = _library_nanopub(one, signer)
        publication.sign()
        for s, p, o, g in publication.rdf.quads((None, None, None, None)):
            signed.graph(g.identifier if isinstance(g, Graph) else g).add((s, p, o))
    return signed


def to_trig(dataset: Dataset) -> bytes:
    """TriG of the nanopublications in a stable order: graphs sorted by name, each graph's
    Turtle as rdflib writes it (subjects sorted)."""
    namespaces = sorted((p, str(n)) for p, n in dataset.namespaces() if p)
    chunks: list[str] = []
    used: set[str] = set()
    for graph in sorted(dataset.graphs(), key=lambda g: str(g.identifier)):
        if len(graph) == 0 or not isinstance(graph.identifier, URIRef):
            continue
        one = Graph()
        for prefix, ns in namespaces:
            one.bind(prefix, ns, override=True, replace=True)
        for triple in graph:
            one.add(triple)
        text = one.serialize(format="turtle")
        body = []
        for line in text.splitlines():
            if line.startswith("@prefix"):
                used.add(line)
            elif line.strip():
                body.append(f"    {line}")
        chunks.append(f"<{graph.identifier}> {{\n" + "\n".join(body) + "\n}\n")
    names = [line.split()[1] for line in used]
    if len(names) != len(set(names)):
        raise CopkgError("two namespaces under one prefix: cannot write TriG", status=500)
    return ("\n".join(sorted(used)) + "\n\n" + "\n".join(chunks)).encode("utf-8")
