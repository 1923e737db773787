"""The terms the advisor's users may name (control modes, degrees, levels, contingency
factors), read from the graph as plain rows: a page read of the query workers; the advisor
makes its Vocabulary of them (copkg.reasoning.advice.context)."""

from __future__ import annotations

from copkg.store import Store
from copkg.store.terms import as_iri

VOCABULARY = """
SELECT ?term ?kind ?label ?rank ?definition WHERE {
  VALUES ?kind { copkg:ControlMode copkg:Degree copkg:Level copkg:ContingencyFactor }
  ?term a ?kind .
  OPTIONAL { ?term rdfs:label|skos:prefLabel ?label FILTER (LANGMATCHES(LANG(?label), "en")) }
  OPTIONAL { ?term copkg:rank ?rank }
  OPTIONAL { ?term skos:definition ?definition
             FILTER (LANGMATCHES(LANG(?definition), "en") || LANG(?definition) = "") }
}
"""

#: One term: its kind's IRI, its IRI, label, rank and definition (the last three if any).
VocabularyRow = tuple[str, str, str | None, str | None, str | None]


def vocabulary_rows(store: Store) -> list[VocabularyRow]:
    """The vocabulary's terms, in the order the engine gives them."""
    rows: list[VocabularyRow] = []
    for row in store.query(VOCABULARY).rows:
        label, rank, definition = (row.get(name) for name in ("label", "rank", "definition"))
        rows.append(
            (
                str(row["kind"]),
                str(as_iri(row["term"])),
                str(label) if label else None,
                str(rank) if rank is not None else None,
                str(definition) if definition is not None else None,
            )
        )
    return rows
