"""How to cite a study: APA and BibTeX made of its dcterms/fabio description."""

from __future__ import annotations

import re

from rdflib import URIRef

from copkg.querying.named_queries.paging import store_identity
from copkg.querying.pages.rows import lexical, page_rows
from copkg.store import Store

_CITATION = """
SELECT ?label ?title ?issued ?partOf ?first ?last ?printed ?creator ?name ?kind WHERE {
  OPTIONAL { ?study rdfs:label ?label } OPTIONAL { ?study dcterms:title ?title }
  OPTIONAL { ?study dcterms:issued ?issued } OPTIONAL { ?study dcterms:isPartOf ?partOf }
  OPTIONAL { ?study copkg:firstPage ?first } OPTIONAL { ?study copkg:lastPage ?last }
  OPTIONAL { ?study dcterms:bibliographicCitation ?printed }
  OPTIONAL { ?study dcterms:creator ?creator . OPTIONAL { ?creator rdfs:label ?name } }
  OPTIONAL { ?study a ?kind FILTER (STRSTARTS(STR(?kind), "http://purl.org/spar/fabio/")) }
}
"""
#: From this many authors, the in-text citation is "First et al.".
ET_AL = 3
_PART_OF = re.compile(r"^(?P<journal>.+?), volume (?P<volume>\w+)(?:, issue (?P<issue>\w+))?")


#: Citations kept for the build served (a page quotes a few studies; each citation is a query).
_KEPT = 4096
_kept: dict[tuple[str, str], dict[str, str] | None] = {}


def study_citation(store: Store, study: str) -> dict[str, str] | None:
    """How to cite a study, in APA and BibTeX, made of its dcterms/fabio description (authors
    in the order the study's label names them), or None if the graph does not describe it.
    Kept per build for a store that cannot change."""
    identity = store_identity(store)
    if identity is None:
        return _citation(store, study)
    key = (identity, study)
    if key not in _kept:
        if len(_kept) >= _KEPT:
            _kept.clear()
        _kept[key] = _citation(store, study)
    return _kept[key]


def _citation(store: Store, study: str) -> dict[str, str] | None:
    rows = [
        {name: lexical(term) for name, term in row.items()}
        for row in page_rows(store, _CITATION, {"study": URIRef(study)})
    ]
    if not rows or not any(("title" in r or "label" in r) for r in rows):
        return None
    first = rows[0]
    label = str(first.get("label") or "")
    title = str(first.get("title") or label)
    year = str(first.get("issued") or "")[:4] or "n.d."
    names = sorted(
        {str(r["name"]) for r in rows if "name" in r},
        key=lambda n: (label.find(n.split()[-1]) % 10_000, n),
    )
    apa_names = [f"{n.split()[-1]}, {' '.join(p[0] + '.' for p in n.split()[:-1])}" for n in names]
    authors = (
        ", ".join(apa_names[:-1]) + ", & " + apa_names[-1]
        if len(apa_names) > 1
        else "".join(apa_names)
    )
    part = _PART_OF.match(str(first.get("partOf") or ""))
    pages = "-".join(str(first[k]) for k in ("first", "last") if k in first)
    apa = f"{authors} ({year}). {title}" + ("" if title.endswith(("?", "!", ".")) else ".")
    if part:
        issue = f"({part['issue']})" if part["issue"] else ""
        apa += f" {part['journal']}, {part['volume']}{issue}"
        apa += f", {pages}." if pages else "."
    kind = "article" if part else "book"
    key = re.sub(r"\W", "", (names[0].split()[-1] if names else "anon").lower()) + year
    fields = {
        "author": " and ".join(f"{n.split()[-1]}, {' '.join(n.split()[:-1])}" for n in names),
        "title": title,
        "journal": part["journal"] if part else None,
        "volume": part["volume"] if part else None,
        "number": part["issue"] if part else None,
        "pages": pages.replace("-", "--") if pages else None,
        "year": year,
    }
    body = ",\n".join(f"  {k} = {{{v}}}" for k, v in fields.items() if v)
    surnames = [n.split()[-1] for n in names] or ["Anon."]
    who = f"{surnames[0]} et al." if len(surnames) >= ET_AL else " & ".join(surnames)
    intext = f"{who}, {year}"
    return {
        "apa": apa,
        "intext": intext,
        "bibtex": f"@{kind}{{{key},\n{body}\n}}",
        "printed": str(first["printed"]) if "printed" in first else "",
    }
