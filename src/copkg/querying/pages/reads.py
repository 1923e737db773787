"""The page reads a query worker runs: each a function registered here by name, called with
plain arguments (no code crosses to the worker), its result plain data the web process
renders: str, bytes, numbers, None and built-in containers, pickled, and read back with
copkg.querying.messages.loads_plain (a worker taken over through the engine cannot make the
service run code). The classes the web renders are rebuilt from it (`from_plain`).

A page's data is one job for the executor (copkg.querying.executor), as a SPARQL query is: it
runs in a worker process under the time limit (killed and replaced past it), in the sandbox,
scheduled fairly by client; for a store that is not on disk, in a thread of the executor."""

from __future__ import annotations

import json
import pickle
from collections.abc import Callable
from dataclasses import astuple, dataclass
from typing import Any

from rdflib import URIRef
from rdflib.term import Node

from copkg.errors import CopkgError
from copkg.namespaces import COPKG
from copkg.querying.named_queries import FACT_READS
from copkg.querying.pages.charts import (
    TimelineEvent,
    matrix_data,
    organisation,
    organisation_events,
    timeline_slug,
)
from copkg.querying.pages.citation import study_citation
from copkg.querying.pages.explanations import Explanation, read_explanations
from copkg.querying.pages.links import TWINS, iri_of_path, split_suffix
from copkg.querying.pages.overview import (
    Instances,
    class_instances,
    graph_counts,
    graph_data,
    landing_data,
    ontology_triples,
    ontology_twin,
    rules_data,
    void_counts,
)
from copkg.querying.pages.reading import predicate_labels, read_resource, resource_twin
from copkg.querying.pages.resource import Resource, Term, term_of_rdflib
from copkg.querying.pages.rows import mentioned
from copkg.querying.pages.vocabulary import vocabulary_rows
from copkg.store import Store

#: The media type of a page read's answer: its result, pickled.
READ_MEDIA = "application/x-copkg-read"

JSON = "application/json"

#: The RDF twins of a resource (the JSON twin is the page's data).
RDF_MEDIA = frozenset(t for t in TWINS.values() if t != JSON)

_MENTIONED = "ASK { { ?s ?p ?o } UNION { ?o ?p ?s } }"


def json_body(data: Any) -> bytes:
    """A page's JSON as Flask's jsonify writes it in production: compact, keys sorted, ASCII,
    a line break at the end."""
    text = json.dumps(data, ensure_ascii=True, sort_keys=True, separators=(",", ":"))
    return (text + "\n").encode()


@dataclass
class ResourceHtml:
    """What a resource's HTML page shows besides the resource: its organisation's timeline
    (`events`, when it is one), the citations of the studies it quotes, what the rules
    derived about it."""

    resource: Resource
    organisation: bool
    events: list[TimelineEvent]
    citations: dict[str, dict[str, str] | None]
    explanations: list[Explanation]
    more_explanations: bool

    def to_plain(self) -> tuple[Any, ...]:
        return (self.resource.to_plain(), self.organisation, [astuple(e) for e in self.events],
                self.citations, [astuple(e) for e in self.explanations],
                self.more_explanations)  # fmt: skip

    @classmethod
    def from_plain(cls, data: tuple[Any, ...]) -> ResourceHtml:
        resource, organisation, events, citations, explanations, more = data
        return cls(Resource.from_plain(resource), organisation,
                   [TimelineEvent(*e) for e in events], citations,
                   [Explanation(*e) for e in explanations], more)  # fmt: skip


def resource_page(store: Store, path: str, page: int, plain_media: str | None) -> tuple[Any, ...]:
    """The page of the resource at `path` (/id/..., maybe with a twin's suffix), its
    `page`-th page of incoming links, as the media type the suffix names or else
    `plain_media` (what Accept prefers; None: nothing offered fits). An IRI that itself ends
    in a suffix is read as it is; any other as the suffix's twin.

    One of ("json", base path, body), ("rdf", base path, media type, body),
    ("html", base path, ResourceHtml.to_plain()) or ("unacceptable", base path)."""
    base_path, suffix = split_suffix(path)
    iri = iri_of_path(path)
    resource = None
    if suffix and mentioned(store, URIRef(iri), _MENTIONED):
        resource = read_resource(store, iri, page)
    if resource is None:
        iri = iri_of_path(base_path)
        resource = read_resource(store, iri, page)
    else:
        base_path, suffix = path, None
    if resource is None:
        raise CopkgError(f"no resource {iri} in the graph", status=404)
    if page > resource.incoming_pages:
        raise CopkgError(
            f"page {page} of the links to {iri} is past the end: there are "
            f"{resource.incoming_total}, {resource.incoming_page_size} a page",
            status=400,
        )
    media_type = TWINS[suffix] if suffix else plain_media
    if media_type is None:
        return ("unacceptable", base_path)
    if media_type == JSON:
        return ("json", base_path, json_body(resource.as_json()))
    if media_type in RDF_MEDIA:
        return ("rdf", base_path, media_type, resource_twin(store, iri, media_type))
    is_organisation = resource.has_type(str(COPKG.Organisation))
    events = organisation_events(store, iri) if is_organisation else []
    quoted = {q.study for q in [*resource.evidence, *resource.used_evidence] if q.study}
    citations = {study: study_citation(store, study) for study in sorted(quoted)}
    explanations, more = read_explanations(store, iri)
    html = ResourceHtml(resource, is_organisation, events, citations, explanations, more)
    return ("html", base_path, html.to_plain())


def timeline_page(store: Store, slug: str) -> tuple[str, str | None, list[tuple[Any, ...]]]:
    """An organisation's timeline: (its IRI, label, events as TimelineEvent's fields); label
    None when the slug is not the organisation's own (the web redirects to it)."""
    org = organisation(store, slug)
    if org is None:
        raise CopkgError(f"no organisation {slug!r} in the graph", status=404)
    if timeline_slug(org) != slug:
        return org, None, []
    resource = read_resource(store, org)
    label = resource.label if resource else slug
    return org, label, [astuple(e) for e in organisation_events(store, org)]


def graph_page(
    store: Store, iri: str, labels: bool
) -> tuple[dict[str, Any] | None, dict[str, str] | None]:
    """A named graph's data (None: no such graph) and, for its HTML page (`labels`), the
    labels of the ontology's classes."""
    data = graph_data(store, iri)
    return data, predicate_labels(store) if labels and data is not None else None


def ontology_page(store: Store) -> tuple[list[Any], list[Any]]:
    """The ontology's graph (triples of Term fields) and the instances of each class (class,
    count, examples), documented; `ontology_from_plain` reads them back."""
    triples = [
        tuple(tuple(term_of_rdflib(t)) for t in triple) for triple in ontology_triples(store)
    ]
    instances = [
        (str(cls), found.count, [(str(iri), label) for iri, label in found.examples])
        for cls, found in class_instances(store).items()
    ]
    return triples, instances


def ontology_from_plain(
    data: tuple[list[Any], list[Any]],
) -> tuple[list[tuple[Node, Node, Node]], dict[URIRef, Instances]]:
    """The ontology's rdflib triples and each class's instances, as `ontology_page` read them."""
    triples, instances = data
    graph = [(Term(*s).rdflib(), Term(*p).rdflib(), Term(*o).rdflib()) for s, p, o in triples]
    found = {
        URIRef(cls): Instances(count, tuple((URIRef(iri), label) for iri, label in examples))
        for cls, count, examples in instances
    }
    return graph, found


#: The page reads by name. A test may add one (a read run in the test's own process, by a
#: ThreadExecutor); a worker process knows those registered when it imported this module.
READS: dict[str, Callable[..., Any]] = {
    "resource": resource_page,
    "landing": landing_data,
    "graph": graph_page,
    "graph_counts": graph_counts,
    "rules": rules_data,
    "matrix": matrix_data,
    "timeline": timeline_page,
    "void": void_counts,
    "ontology": ontology_page,
    "ontology_twin": ontology_twin,
    "vocabulary": vocabulary_rows,  # the terms the advisor's users may name
    **FACT_READS,  # what named queries read of the store before they run
}


#: The reads that count or list over the whole graph (the landing page, VoID, the matrix,
#: rules, ontology, a graph's classes): at 1,000 studies some take longer than a query may
#: (10-30 s on a busy machine), and each is read once a build (then kept), so the web gives
#: them a limit of their own (OVERVIEW_TIMEOUT): still killed past it. So are the facts named
#: queries read (a parameter's values in the data, the keys pages run over) and the advisor's
#: vocabulary, once a build.
WHOLE_GRAPH = frozenset(
    {"landing", "void", "matrix", "rules", "ontology", "ontology_twin", "graph", "graph_counts"}
) | frozenset({"vocabulary", *FACT_READS})


def run_read(store: Store, name: str, args: tuple[Any, ...]) -> bytes:
    """Run a registered page read on the store; its result pickled."""
    read = READS.get(name)
    if read is None:
        raise CopkgError(f"no page read named {name!r}", status=500)
    return pickle.dumps(read(store, *args), protocol=pickle.HIGHEST_PROTOCOL)
