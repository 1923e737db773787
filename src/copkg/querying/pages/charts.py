"""What the pictures are drawn from: an organisation's dated events (its timeline) and the
role x context risk matrix, read from the store as plain values."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from rdflib import Literal, URIRef

from copkg.errors import CopkgError
from copkg.namespaces import COPKG, ID
from copkg.querying.pages.links import curie, href
from copkg.store import Store


@dataclass(frozen=True)
class TimelineEvent:
    """One dated event to place on a timeline."""

    date: str
    label: str
    href: str | None = None
    qualifier: str | None = None
    kind: str | None = None


ROLES = """
SELECT ?role ?roleLabel ?objectiveLabel ?risk ?riskLabel ?factor ?factorLabel
       (MIN(?i) AS ?index) WHERE {
  ?role a copkg:ManagementRole .
  OPTIONAL { ?role rdfs:label ?roleLabel }
  OPTIONAL { ?role copkg:hasObjective/(rdfs:label|skos:prefLabel) ?objectiveLabel }
  OPTIONAL { ?role copkg:hasRisk ?risk . OPTIONAL { ?risk rdfs:label ?riskLabel } }
  OPTIONAL { ?role copkg:hasContingency ?factor . OPTIONAL { ?factor rdfs:label ?factorLabel } }
  OPTIONAL { ?cell copkg:cellAbout ?role ; copkg:rowIndex ?i }
} GROUP BY ?role ?roleLabel ?objectiveLabel ?risk ?riskLabel ?factor ?factorLabel
ORDER BY ?index ?roleLabel
"""

_STUDY_SLUG = re.compile(r"[A-Za-z0-9_\-]+/[A-Za-z0-9_\-]+")

#: The study whose organisations had one-segment timeline slugs before slugs named the study.
FIRST_STUDY = "josserand2004"


def timeline_slug(iri: str) -> str:
    """Where an organisation's timeline is, under /timeline/: STUDY/NAME for an organisation
    of a study (two studies may both name one `gas`), else the IRI's last segment."""
    if iri.startswith(str(ID)) and _STUDY_SLUG.fullmatch(iri[len(ID) :]):
        return iri[len(ID) :]
    return re.split(r"[#/]", iri.rstrip("/"))[-1]


ORGANISATIONS = """
SELECT ?org WHERE { ?org a copkg:Organisation . FILTER (STRENDS(STR(?org), STR(?suffix))) }
ORDER BY ?org
"""

_EVENTS = """
SELECT DISTINCT ?org ?event ?label ?date ?qualifier ?typeLabel WHERE {
  { ?event copkg:eventOf ?org } UNION { ?event copkg:affects/copkg:hostedBy ?org }
  ?event copkg:date ?date .
  OPTIONAL { ?event rdfs:label ?label }
  OPTIONAL { ?event copkg:dateQualifier ?qualifier }
  OPTIONAL { ?event copkg:eventType/(rdfs:label|skos:prefLabel) ?typeLabel }
}
ORDER BY ?date ?label ?typeLabel
"""


def organisation_events(store: Store, org: str) -> list[TimelineEvent]:
    """The dated events of an organisation (and of the collectives it hosts); an event type with
    two labels shows the first in order, whatever order the store gives equal rows in."""
    events: dict[str, TimelineEvent] = {}
    for row in store.query(_EVENTS, bindings={"org": URIRef(org)}).rows:
        key = str(row["event"])
        if key in events:
            continue
        events[key] = TimelineEvent(
            date=str(row["date"]),
            label=str(row.get("label") or curie(row["event"])),
            href=href(row["event"]),
            qualifier=str(row["qualifier"]) if "qualifier" in row else None,
            kind=str(row["typeLabel"]) if "typeLabel" in row else None,
        )
    return list(events.values())


def organisation(store: Store, slug: str) -> str | None:
    """The organisation a slug names (None if none); a one-segment slug (the form before
    slugs named the study) names Josserand's organisation, else the only one of that name."""
    rows = store.query(ORGANISATIONS, bindings={"suffix": Literal("/" + slug)}).rows
    found = sorted({str(r["org"]) for r in rows})
    exact = [iri for iri in found if timeline_slug(iri) == slug]
    if exact:
        return exact[0]
    if "/" in slug:
        return None
    first = [iri for iri in found if iri == f"{ID}{FIRST_STUDY}/{slug}"]
    if first or len(found) == 1:
        return (first or found)[0]
    if found:
        choices = ", ".join("/timeline/" + timeline_slug(iri) for iri in found)
        raise CopkgError(f"{slug!r} names organisations of several studies: {choices}", 404)
    return None


_MATRIX_CELLS = """
SELECT ?role ?context ?voice ?assessment ?assessmentLabel ?riskLabel ?ruleLabel WHERE {
  ?context copkg:riskyRole ?role .
  OPTIONAL {
    ?explanation rdf:subject ?context ; rdf:predicate copkg:riskyRole ; rdf:object ?role ;
      copkg:weakestVoice ?voice .
  }
  OPTIONAL {
    ?assessment a copkg:RiskAssessment ; copkg:inContext ?context ; copkg:assessedRole ?role .
    OPTIONAL { ?assessment rdfs:label ?assessmentLabel }
    OPTIONAL { ?assessment copkg:assessedRisk/rdfs:label ?riskLabel }
    OPTIONAL { ?assessment copkg:derivedBy/rdfs:label ?ruleLabel }
  }
}
ORDER BY ?role ?context ?assessment
"""

_MATRIX_CONTEXTS = """
SELECT ?context (SAMPLE(?l) AS ?label) (SAMPLE(?caseL) AS ?caseLabel) (SAMPLE(?d) AS ?start)
       (SAMPLE(?f) AS ?favourability) WHERE {
  ?context a copkg:OrganisationalContext .
  OPTIONAL { ?context rdfs:label ?l }
  OPTIONAL { ?context copkg:ofCase/rdfs:label ?caseL }
  OPTIONAL { ?context copkg:startDate ?d }
  OPTIONAL { ?context copkg:favourability/(rdfs:label|skos:prefLabel) ?f }
} GROUP BY ?context ORDER BY ?caseLabel ?start ?label
"""


#: The voice of a derived cell, by its explanation's copkg:weakestVoice (the weakest premise).
VOICE_NAMES = {
    str(COPKG.AuthorVoice): "author",
    str(COPKG.CuratorVoice): "curator",
    str(COPKG.DerivedFromCuratorReading): "derived-from-curator",
}


def matrix_data(store: Store) -> dict[str, Any]:
    """Roles as rows, contexts as columns, the risky cells with their explanations."""
    rows = read_roles(store)
    columns = [
        {
            "iri": str(r["context"]),
            "href": href(r["context"]),
            "label": str(r.get("label") or curie(r["context"])),
            "case": str(r["caseLabel"]) if "caseLabel" in r else None,
            "favourability": str(r["favourability"]) if "favourability" in r else None,
        }
        for r in store.query(_MATRIX_CONTEXTS).rows
    ]
    cells: dict[tuple[str, str], dict[str, Any]] = {}
    for r in store.query(_MATRIX_CELLS).rows:
        key = (str(r["role"]), str(r["context"]))
        cell = cells.setdefault(
            key, {"role": key[0], "context": key[1], "voice": None, "assessments": []}
        )
        voice = VOICE_NAMES.get(str(r.get("voice")))
        if voice is not None and (cell["voice"] is None or voice == "author"):
            cell["voice"] = voice  # the cell holds by its strongest derivation
        if "assessment" in r and all(a["iri"] != str(r["assessment"]) for a in cell["assessments"]):
            cell["assessments"].append(
                {
                    "iri": str(r["assessment"]),
                    "href": href(r["assessment"]),
                    "label": str(r.get("assessmentLabel") or curie(r["assessment"])),
                    "risk": str(r["riskLabel"]) if "riskLabel" in r else None,
                    "rule": str(r["ruleLabel"]) if "ruleLabel" in r else None,
                }
            )
    return {"ok": True, "roles": rows, "contexts": columns, "cells": list(cells.values())}


def read_roles(store: Store) -> list[dict[str, Any]]:
    """The roles, once each, with their objective, risk and contingency (IRIs and labels)."""
    roles = []
    seen: set[str] = set()
    for r in store.query(ROLES).rows:
        if str(r["role"]) in seen:
            continue
        seen.add(str(r["role"]))
        roles.append(
            {
                "iri": str(r["role"]),
                "href": href(r["role"]),
                "label": str(r.get("roleLabel") or curie(r["role"])),
                "objective": str(r["objectiveLabel"]) if "objectiveLabel" in r else None,
                "risk": str(r["risk"]) if "risk" in r else None,
                "riskLabel": str(r["riskLabel"]) if "riskLabel" in r else None,
                "factor": str(r["factor"]) if "factor" in r else None,
                "factorLabel": str(r["factorLabel"]) if "factorLabel" in r else None,
            }
        )
    return roles
