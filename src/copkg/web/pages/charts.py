"""Pictures drawn from the graph: an organisation's timeline and the role x context risk matrix."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from flask import Response, jsonify, redirect, render_template
from markupsafe import Markup
from rdflib import Literal
from werkzeug.wrappers import Response as BaseResponse

from copkg.errors import CopkgError
from copkg.namespaces import COPKG, ID
from copkg.store import Store
from copkg.web import get_store
from copkg.web.pages.links import HTML, bp, curie, href, wants
from copkg.web.pages.resource_data import ORGANISATIONS, organisation_events, read_resource
from copkg.web.pages.svg import Axis, MatrixCell, matrix_svg, timeline_svg

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


def _organisation(store: Store, slug: str) -> Any:
    """The organisation a slug names (None if none); a one-segment slug (the form before
    slugs named the study) names Josserand's organisation, else the only one of that name."""
    rows = store.query(ORGANISATIONS, bindings={"suffix": Literal("/" + slug)}).rows
    found = sorted({str(r["org"]): r["org"] for r in rows}.items())
    exact = [org for iri, org in found if timeline_slug(iri) == slug]
    if exact:
        return exact[0]
    if "/" in slug:
        return None
    first = [org for iri, org in found if iri == f"{ID}{FIRST_STUDY}/{slug}"]
    if first or len(found) == 1:
        return (first or [found[0][1]])[0]
    if found:
        choices = ", ".join("/timeline/" + timeline_slug(iri) for iri, _ in found)
        raise CopkgError(f"{slug!r} names organisations of several studies: {choices}", 404)
    return None


@bp.get("/timeline/<path:slug>")
def timeline(slug: str) -> BaseResponse | str:
    """An organisation's dated timeline (/timeline/STUDY/NAME): HTML page, `.svg` picture or
    `.json` events; /timeline/NAME redirects to it."""
    suffix = ""
    for candidate in (".svg", ".json"):
        if slug.endswith(candidate):
            slug, suffix = slug[: -len(candidate)], candidate
    if not re.fullmatch(r"[A-Za-z0-9_\-]+(/[A-Za-z0-9_\-]+)?", slug):
        raise CopkgError(f"no organisation {slug!r}", status=404)
    store = get_store()
    org = _organisation(store, slug)
    if org is None:
        raise CopkgError(f"no organisation {slug!r} in the graph", status=404)
    if timeline_slug(str(org)) != slug:
        return redirect(f"/timeline/{timeline_slug(str(org))}{suffix}", 301)
    resource = read_resource(store, org)
    label = resource.label if resource else slug
    events = organisation_events(store, org)
    svg = timeline_svg(events, f"Timeline of {label}")
    if suffix == ".svg":
        return Response(svg, mimetype="image/svg+xml")
    if suffix == ".json" or wants(None, [HTML, "application/json"]) == "application/json":
        return jsonify(
            {
                "ok": True,
                "organisation": str(org),
                "label": label,
                "events": [e.__dict__ for e in events],
            }
        )
    return render_template(
        "timeline.html", org=org, label=label, events=events, svg=Markup(svg), slug=slug
    )


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


def matrix_picture(data: Mapping[str, Any]) -> str:
    rows = [Axis(r["iri"], r["label"], r["href"], r.get("riskLabel")) for r in data["roles"]]
    columns = [
        Axis(
            c["iri"],
            c["label"],
            c["href"],
            " - ".join(x for x in (c["case"], c["label"], c["favourability"]) if x),
        )
        for c in data["contexts"]
    ]
    cells = []
    for cell in data["cells"]:
        first = cell["assessments"][0] if cell["assessments"] else None
        title = (
            "; ".join(
                a["label"] + (f" - risk: {a['risk']}" if a["risk"] else "")
                for a in cell["assessments"]
            )
            or "risky"
        )
        risks = list(dict.fromkeys(a["risk"] for a in cell["assessments"] if a["risk"]))
        cells.append(
            MatrixCell(
                cell["role"],
                cell["context"],
                title,
                first["href"] if first else href(cell["context"]),
                ", ".join(risks) or None,
            )
        )
    return matrix_svg(rows, columns, cells, "Management roles x organisational contexts")


@bp.get("/matrix")
@bp.get("/matrix<any('.svg', '.json'):suffix>")
def matrix(suffix: str | None = None) -> Response | str:
    """The role x context risk matrix, cells from copkg:riskyRole linked to the explanations."""
    data = matrix_data(get_store())
    if suffix == ".svg":
        return Response(matrix_picture(data), mimetype="image/svg+xml")
    if suffix == ".json" or wants(None, [HTML, "application/json"]) == "application/json":
        return jsonify(data)
    lookup = {(c["role"], c["context"]): c for c in data["cells"]}
    return render_template("matrix.html", d=data, svg=Markup(matrix_picture(data)), lookup=lookup)
