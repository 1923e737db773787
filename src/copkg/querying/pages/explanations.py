"""What the rules derived about a resource, read as statements with their explanation.

The rules explain each derived triple with an rdf:Statement (its subject, predicate and
object, the rule, the facts used and the voice of the weakest premise). A resource page shows
those as sentences ("Comp consultants, risky role: facilitation, by rule ..., from 3 facts,
author's voice") instead of the bare `rdf:subject of` / `rdf:object of` links to the nodes.
"""

from __future__ import annotations

from dataclasses import dataclass

from rdflib import URIRef

from copkg.namespaces import COPKG
from copkg.querying.pages.rows import lexical, may_link, page_rows
from copkg.store import Store

#: How many derived statements a page shows (the rest stay reachable by SPARQL).
MAX_EXPLANATIONS = 60

#: The incoming links the explanations replace on a page.
EXPLAINED_BY = (
    "http://www.w3.org/1999/02/22-rdf-syntax-ns#subject",
    "http://www.w3.org/1999/02/22-rdf-syntax-ns#object",
)

_EXPLANATIONS = f"""
SELECT ?e ?s ?sLabel ?p ?pLabel ?o ?oLabel ?rule ?ruleLabel ?voice
       (COUNT(DISTINCT ?fact) AS ?facts) WHERE {{
  {{ ?e rdf:subject ?this }} UNION {{ ?e rdf:object ?this }}
  ?e rdf:subject ?s ; rdf:predicate ?p ; rdf:object ?o .
  OPTIONAL {{ ?s rdfs:label ?sLabel }}
  OPTIONAL {{ ?p rdfs:label ?pLabel }}
  OPTIONAL {{ ?o rdfs:label ?oLabel }}
  OPTIONAL {{ ?e copkg:derivedBy ?rule OPTIONAL {{ ?rule rdfs:label ?ruleLabel }} }}
  OPTIONAL {{ ?e copkg:weakestVoice ?voice }}
  OPTIONAL {{ ?e copkg:usedFact ?fact }}
}}
GROUP BY ?e ?s ?sLabel ?p ?pLabel ?o ?oLabel ?rule ?ruleLabel ?voice
ORDER BY ?p ?s ?o ?e
LIMIT {MAX_EXPLANATIONS + 1}
"""

#: The voice of a derived statement, by its explanation's copkg:weakestVoice.
VOICES: dict[str, str] = {
    str(COPKG.AuthorVoice): "author",
    str(COPKG.CuratorVoice): "curator",
    str(COPKG.DerivedFromCuratorReading): "derived from a curator's reading",
}


@dataclass(frozen=True)
class Explanation:
    """One derived statement about the resource, and how it was derived (terms as text: an IRI,
    a blank node's label, a literal's lexical form)."""

    node: str  # the rdf:Statement
    subject: str
    subject_label: str | None
    predicate: str
    predicate_label: str | None
    object: str
    object_label: str | None
    rule: str | None
    rule_label: str | None
    voice: str | None
    facts: int


def read_explanations(store: Store, iri: str) -> tuple[list[Explanation], bool]:
    """The derived statements whose subject or object is `iri` (at most MAX_EXPLANATIONS),
    and whether there are more. (Most resources are in no derived statement: two index
    lookups say so without the query.)"""
    if not may_link(store, EXPLAINED_BY, URIRef(iri)):
        return [], False
    rows = page_rows(store, _EXPLANATIONS, {"this": URIRef(iri)})
    found = [
        Explanation(
            node=lexical(row["e"]),
            subject=lexical(row["s"]),
            subject_label=lexical(row["sLabel"]) if "sLabel" in row else None,
            predicate=lexical(row["p"]),
            predicate_label=lexical(row["pLabel"]) if "pLabel" in row else None,
            object=lexical(row["o"]),
            object_label=lexical(row["oLabel"]) if "oLabel" in row else None,
            rule=lexical(row["rule"]) if "rule" in row else None,
            rule_label=lexical(row["ruleLabel"]) if "ruleLabel" in row else None,
            voice=VOICES.get(lexical(row["voice"])) if "voice" in row else None,
            facts=int(lexical(row["facts"])) if "facts" in row else 0,
        )
        for row in rows
    ]
    return found[:MAX_EXPLANATIONS], len(found) > MAX_EXPLANATIONS
