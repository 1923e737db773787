"""Ways into the ontology's documentation: a class tree, a search box, each class's instances
in the data, the namespaces, and how to cite the ontology (APA-like and BibTeX), all read from
the graph."""

from __future__ import annotations

import re
from collections.abc import Mapping
from html import escape
from urllib.parse import urlencode

from rdflib import Graph, URIRef
from rdflib.namespace import DCTERMS, OWL, RDFS

from copkg.namespaces import COPKG, PREFIXES
from copkg.querying.pages.overview import MAX_INSTANCES, Instances
from copkg.web.pages.links import href

__all__ = ["MAX_INSTANCES", "Instances"]


def instances_cell(cls: URIRef, instances: Instances | None) -> str:
    """The instances of a class as links to their pages, and the query that lists them all."""
    if instances is None or not instances.count:
        return ""
    links = ", ".join(
        f'<a href="{escape(href(iri))}">{escape(label)}</a>' for iri, label in instances.examples
    )
    query = f"SELECT ?instance WHERE {{ ?instance a <{cls}> }} ORDER BY ?instance"
    everything = f'<a href="/query?{escape(urlencode({"query": query}))}">'
    if instances.count > len(instances.examples):
        return f"{links} … ({everything}all {instances.count}</a>)"
    return f"{links} ({instances.count}; {everything}query</a>)"


def class_tree(graph: Graph, classes: list[URIRef]) -> str:
    """The copkg classes nested by rdfs:subClassOf (a class under each of its parents), each
    linking to its section."""
    named = set(classes)
    children: dict[URIRef, list[URIRef]] = {c: [] for c in classes}
    roots = []
    for cls in classes:
        parents = [p for p in graph.objects(cls, RDFS.subClassOf) if p in named and p != cls]
        for parent in parents:
            children[URIRef(str(parent))].append(cls)
        if not parents:
            roots.append(cls)

    def branch(cls: URIRef, seen: frozenset[URIRef]) -> str:
        local = str(cls)[len(str(COPKG)) :]
        below = [c for c in sorted(children[cls], key=str) if c not in seen]
        inner = "".join(branch(c, seen | {c}) for c in below)
        return f'<li><a href="#{escape(local)}">{escape(local)}</a>' + (
            f"<ul>{inner}</ul></li>" if inner else "</li>"
        )

    items = "".join(branch(c, frozenset({c})) for c in roots)
    return (
        '<nav class="class-tree" aria-labelledby="class-tree-heading">'
        '<h2 id="class-tree-heading">Class tree</h2>'
        f"<ul>{items}</ul></nav>"
    )


def search_box() -> str:
    """A box that filters the terms' sections (static/ontology.js; without script, no box)."""
    return (
        '<div class="term-search" role="search" hidden>'
        '<label for="term-filter">Find a term</label> '
        '<input type="search" id="term-filter" autocomplete="off" '
        'placeholder="name, label or definition"> '
        '<span id="term-filter-status" role="status"></span></div>'
    )


def namespace_table() -> str:
    """The prefixes the service, its pages and its queries use."""
    rows = "".join(
        f"<tr><td><code>{escape(prefix)}:</code></td><td><code>{escape(iri)}</code></td></tr>"
        for prefix, iri in sorted(PREFIXES.items())
    )
    return (
        '<section id="namespaces" aria-labelledby="namespaces-heading">'
        '<h2 id="namespaces-heading">Namespaces</h2>'
        '<table class="data namespaces"><thead><tr><th scope="col">Prefix</th>'
        f'<th scope="col">IRI</th></tr></thead><tbody>{rows}</tbody></table></section>'
    )


def _names(graph: Graph, ontology: URIRef) -> list[str]:
    names = []
    for creator in graph.objects(ontology, DCTERMS.creator):
        label = graph.value(creator, RDFS.label) if isinstance(creator, URIRef) else None
        names.append(str(label or creator))
    return sorted(names)


def citation(graph: Graph, ontology: URIRef) -> dict[str, str]:
    """How to cite the ontology, APA-like and as BibTeX, from its dcterms/owl metadata."""
    title = str(graph.value(ontology, DCTERMS.title) or ontology)
    names = _names(graph, ontology) or ["copkg"]
    dated = (
        graph.value(ontology, DCTERMS.issued)
        or graph.value(ontology, DCTERMS.modified)
        or graph.value(ontology, DCTERMS.created)
    )
    year = str(dated)[:4] if dated is not None else "n.d."
    version = graph.value(ontology, OWL.versionInfo)
    version_iri = graph.value(ontology, OWL.versionIRI)
    licence = graph.value(ontology, DCTERMS.license)
    apa = f"{', '.join(names[:-1]) + ' & ' if len(names) > 1 else ''}{names[-1]} ({year}). {title}"
    apa += f" (Version {version})" if version else ""
    apa += f" [Ontology]. {version_iri or ontology}."
    apa += f" Licence: {licence}." if licence else ""
    key = re.sub(r"\W", "", title.split(":", maxsplit=1)[0].lower()) + year
    fields = {
        "author": " and ".join("{" + n + "}" for n in names),
        "title": "{" + title + "}",
        "year": year,
        "version": str(version) if version else None,
        "url": str(ontology),
        "note": "Ontology"
        + (f", version IRI {version_iri}" if version_iri else "")
        + (f", licence {licence}" if licence else ""),
    }
    body = ",\n".join(f"  {k} = {{{v}}}" for k, v in fields.items() if v)
    return {"apa": apa, "bibtex": f"@misc{{{key},\n{body}\n}}"}


def cite_section(graph: Graph, ontology: URIRef) -> str:
    cite = citation(graph, ontology)
    return (
        '<section id="cite" aria-labelledby="cite-heading"><h2 id="cite-heading">Cite this</h2>'
        f'<p class="apa">{escape(cite["apa"])}</p>'
        f'<details class="bibtex"><summary>BibTeX</summary>'
        f'<pre class="bibtex">{escape(cite["bibtex"])}</pre></details></section>'
    )


def instances_row(cls: URIRef, instances: Mapping[URIRef, Instances] | None) -> str:
    cell = instances_cell(cls, (instances or {}).get(cls))
    return f"<tr><th>instances in the data</th><td>{cell}</td></tr>" if cell else ""
