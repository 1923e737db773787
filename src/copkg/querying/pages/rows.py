"""A page's queries answered as pyoxigraph terms: on the embedded store, the engine's solutions
as they come, without an rdflib term for each (most of a page's cost before); elsewhere (a
remote store) through store.query, its terms converted back."""

from __future__ import annotations

import functools
import itertools
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, cast

import pyoxigraph as ox
from rdflib.term import Node

from copkg.errors import CopkgError
from copkg.namespaces import PREFIXES
from copkg.querying.named_queries.paging import kept
from copkg.store import Store
from copkg.store.embedded import OxigraphStore
from copkg.store.results import until
from copkg.store.scan import bind_values
from copkg.store.terms import from_ox, terms_as_sparql, to_ox, to_ox_subject

Row = dict[str, Any]  # variable -> pyoxigraph term (unbound ones left out)

#: Each page query with its VALUES blocks written once (scan.bind_values), a placeholder
#: where each bound term goes: the same text as store.query runs, without its lexing a page.
_templates: dict[tuple[str, tuple[str, ...]], str] = {}


def _placeholder(name: str) -> str:
    return f"<urn:copkg:bound:{name}>"


def bound_text(text: str, bindings: Mapping[str, Node | Sequence[Node]]) -> str:
    """The query with its variables bound as store.query binds them (the VALUES blocks of
    scan.bind_values); a list of terms (for one variable only) gives one VALUES row each."""
    names = tuple(sorted(bindings))
    template = _templates.get((text, names))
    if template is None:
        template = bind_values(text, {name: _placeholder(name) for name in names})
        _templates[(text, names)] = template
    for name in names:
        value = bindings[name]
        terms: Sequence[Node] = value if isinstance(value, list | tuple) else [cast(Node, value)]
        written = [terms_as_sparql({name: term})[name] for term in terms]
        # bind_values writes `(<placeholder>)`: the rows `(<a>) (<b>)` in its place
        template = template.replace(_placeholder(name), ") (".join(written))
    return template


def page_rows(
    store: Store, text: str, bindings: Mapping[str, Node | Sequence[Node]] | None = None
) -> list[Row]:
    """The solutions of one of the pages' own SELECT queries, as pyoxigraph terms, under the
    store's time and row limits (a row limit cuts the rows as store.query does)."""
    sparql = bound_text(text, bindings) if bindings else text
    if not isinstance(store, OxigraphStore):
        return [
            {name: to_ox(term) for name, term in row.items()} for row in store.query(sparql).rows
        ]
    deadline = time.monotonic() + store.timeout if store.timeout else None
    limit = store.max_rows
    rows: list[Row] = []
    try:
        answer = store.native.query(sparql, use_default_graph_as_union=True, prefixes=PREFIXES)
        assert isinstance(answer, ox.QuerySolutions)
        names = [variable.value for variable in answer.variables]
        for solution in until(answer, deadline):
            if limit is not None and len(rows) >= limit:
                break
            rows.append({n: t for n, t in zip(names, solution, strict=True) if t is not None})
    except (OSError, RuntimeError, ValueError, TypeError, SyntaxError) as exc:
        raise CopkgError(f"query failed: {exc}", status=500) from exc
    return rows


def mentioned(store: Store, iri: Node, ask: str) -> bool:
    """Whether the graph has a statement about or to `iri`: one index lookup each way on the
    embedded store, else the ASK query given (`?s` bound to the IRI)."""
    if not isinstance(store, OxigraphStore):
        return bool(store.query(ask, bindings={"s": iri}).boolean)
    term = to_ox_subject(iri)
    native = store.native
    if next(iter(native.quads_for_pattern(term, None, None)), None) is not None:
        return True
    return next(iter(native.quads_for_pattern(None, None, term)), None) is not None


def may_link(store: Store, predicates: Iterable[str], iri: Node) -> bool:
    """Whether some statement `?x p <iri>` may exist for one of the predicates: on the
    embedded store one index lookup each (in any graph: never too few), elsewhere True."""
    if not isinstance(store, OxigraphStore):
        return True
    term = to_ox(iri)
    native = store.native
    return any(
        next(iter(native.quads_for_pattern(None, ox.NamedNode(p), term)), None) is not None
        for p in predicates
    )


def lexical(term: Any) -> str:
    """A term's value as text (an IRI, a literal's lexical form)."""
    return str(term.value)


def node(term: Any) -> Node | None:
    """A pyoxigraph term as rdflib's (None stays None)."""
    return None if term is None else from_ox(term)


# -- a resource's statements and evidence read off the indexes -------------------------------

_NS_RDF = "http://www.w3.org/1999/02/22-rdf-syntax-ns#"
_NS_COPKG = "https://w3id.org/copkg/ontology#"
_LABELS = (
    ox.NamedNode("http://www.w3.org/2000/01/rdf-schema#label"),
    ox.NamedNode("http://www.w3.org/2004/02/skos/core#prefLabel"),
)
_TYPE = ox.NamedNode(_NS_RDF + "type")
_EVIDENCE = ox.NamedNode(_NS_COPKG + "hasEvidence")
_TEXTS = (ox.NamedNode(_NS_COPKG + "quoteText"), ox.NamedNode(_NS_COPKG + "evidenceText"))
_KINDS = {ox.NamedNode(_NS_COPKG + k) for k in ("Quote", "Paraphrase", "Summary")}
_QUOTED_IN = ox.NamedNode(_NS_COPKG + "quotedIn")
_VERIFIED = ox.NamedNode(_NS_COPKG + "quotesVerified")
_PAGE = ox.NamedNode(_NS_COPKG + "page")
_VOICE = ox.NamedNode(_NS_COPKG + "voice")


def _objects(native: ox.Store, s: Any, p: Any) -> list[Any]:
    """The objects of (s p ?o) in the union of the graphs: each once, in the index's order."""
    return list(dict.fromkeys(q.object for q in native.quads_for_pattern(s, p, None)))


def _english(term: Any) -> bool:
    """FILTER (LANG(?l) = "" || LANGMATCHES(LANG(?l), "en")) of a label."""
    if not isinstance(term, ox.Literal):
        return False
    language = (term.language or "").lower()
    return language in ("", "en") or language.startswith("en-")


def labels_of(native: ox.Store, term: Any) -> list[Any]:
    """`term (rdfs:label|skos:prefLabel) ?l` with the pages' language filter, as the engine
    gives them: rdfs:label's values, then skos:prefLabel's."""
    if isinstance(term, ox.Literal):
        return []
    found = [v for p in _LABELS for v in _objects(native, term, p) if _english(v)]
    return list(dict.fromkeys(found))


#: Labels of IRIs kept per read-only store at most (the set starts again past it): a class, a
#: vocabulary's concept, a study are named on many pages.
LABELS_KEPT = 1 << 16


def labels_reader(store: OxigraphStore) -> Callable[[Any], list[Any]]:
    """`labels_of` on the store, its answers kept when the store cannot change."""
    native = store.native
    if not getattr(store, "read_only", False):
        return functools.partial(labels_of, native)
    found: dict[Any, list[Any]] = kept(store, "page labels", dict)

    def read(term: Any) -> list[Any]:
        labels = found.get(term)
        if labels is None:
            if len(found) >= LABELS_KEPT:
                found.clear()
            labels = found[term] = labels_of(native, term)
        return labels

    return read


def outgoing_rows(store: Store, iri: Node, query: str) -> list[Row]:
    """The rows of resource_data's outgoing `query` (`?s` bound to the IRI): on the embedded
    store read off its indexes, in the order the engine gives them (each part of the UNION in
    its order, which is all the page reads); elsewhere the query's.

    The query: each statement of the resource in a named graph with its object's English
    labels (one row each), then each piece of evidence with its text and, as OPTIONALs nested
    in that order, its kind, whether its study's quotes were verified, its page, its voice and
    its study with the study's label. Index lookups instead of the query's plan: a fifth of
    its cost."""
    if not isinstance(store, OxigraphStore):
        return page_rows(store, query, {"s": iri})
    native = store.native
    labels_of_object = labels_reader(store)
    s = to_ox(iri)
    rows: list[Row] = []
    for q in native.quads_for_pattern(s, None, None):  # type: ignore[arg-type]
        if isinstance(q.graph_name, ox.DefaultGraph):
            continue
        row = {"s": s, "g": q.graph_name, "p": q.predicate, "o": q.object}
        labels = labels_of_object(q.object)
        rows.extend([{**row, "oLabel": label} for label in labels] if labels else [row])
    for quote in _objects(native, s, _EVIDENCE):
        texts = list(dict.fromkeys(t for p in _TEXTS for t in _objects(native, quote, p)))
        if not texts:
            continue
        studies = _objects(native, quote, _QUOTED_IN)
        optionals: list[list[Row]] = [
            [{"kind": k} for k in _objects(native, quote, _TYPE) if k in _KINDS],
            [
                {"verified": v}
                for v in dict.fromkeys(v for st in studies for v in _objects(native, st, _VERIFIED))
            ],
            [{"page": v} for v in _objects(native, quote, _PAGE)],
            [{"voice": v} for v in _objects(native, quote, _VOICE)],
            [
                {"study": st, **({"studyLabel": label} if label is not None else {})}
                for st in studies
                for label in (_objects(native, st, _LABELS[0]) or [None])
            ],
        ]
        for text in texts:
            combined: list[Row] = [{"s": s, "quote": quote, "text": text}]
            for choices in optionals:
                if choices:
                    combined = [{**row, **choice} for row in combined for choice in choices]
            rows.extend(combined)
    return rows


def incoming_rows(store: Store, iri: Node, offset: int, limit: int, query: str) -> list[Row]:
    """The rows of resource_data's incoming `query` (`GRAPH ?g { ?s ?p ?o }`, `?o` bound to
    the IRI, LIMIT and OFFSET): on the embedded store read off its index, in the engine's
    order; elsewhere the query's."""
    if not isinstance(store, OxigraphStore):
        return page_rows(store, query, {"o": iri})
    quads = (
        q
        for q in store.native.quads_for_pattern(None, None, to_ox(iri))
        if not isinstance(q.graph_name, ox.DefaultGraph)
    )
    return [
        {"g": q.graph_name, "s": q.subject, "p": q.predicate}
        for q in itertools.islice(quads, offset, offset + limit)
    ]


def first_labels(store: Store, terms: Iterable[Any], query: str) -> dict[Any, str]:
    """The first English label of each IRI among the terms, as `query` (`?s ?label`, `?s`
    bound to the IRIs in N-Triples order) gives it first."""
    named = sorted({t for t in terms if isinstance(t, ox.NamedNode)}, key=str)
    if not named:
        return {}
    if isinstance(store, OxigraphStore):
        read = labels_reader(store)
        firsts = {t: read(t) for t in named}
        return {t: lexical(found[0]) for t, found in firsts.items() if found}
    labels: dict[Any, str] = {}
    for row in page_rows(store, query, {"s": [from_ox(t) for t in named]}):
        labels.setdefault(row["s"], lexical(row["label"]))
    return labels


def page_number(value: Any) -> int | None:
    """A page number (None for none or for a value that is not one)."""
    if value is None:
        return None
    text = lexical(value)
    return int(text) if text.isdigit() else None
