"""Pictures drawn from the graph: an organisation's timeline and the role x context risk matrix."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from flask import Response, jsonify, redirect, render_template
from markupsafe import Markup
from werkzeug.wrappers import Response as BaseResponse

from copkg.errors import CopkgError
from copkg.querying.pages.charts import TimelineEvent, timeline_slug
from copkg.web import read_page
from copkg.web.pages.links import HTML, bp, href, wants
from copkg.web.pages.svg import Axis, MatrixCell, matrix_svg, timeline_svg


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
    org, label, fields = read_page("timeline", slug)
    events = [TimelineEvent(*e) for e in fields]
    if label is None:
        return redirect(f"/timeline/{timeline_slug(org)}{suffix}", 301)
    svg = timeline_svg(events, f"Timeline of {label}")
    if suffix == ".svg":
        return Response(svg, mimetype="image/svg+xml")
    if suffix == ".json" or wants(None, [HTML, "application/json"]) == "application/json":
        return jsonify(
            {
                "ok": True,
                "organisation": org,
                "label": label,
                "events": [e.__dict__ for e in events],
            }
        )
    return render_template(
        "timeline.html", org=org, label=label, events=events, svg=Markup(svg), slug=slug
    )


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
    data = read_page("matrix")
    if suffix == ".svg":
        return Response(matrix_picture(data), mimetype="image/svg+xml")
    if suffix == ".json" or wants(None, [HTML, "application/json"]) == "application/json":
        return jsonify(data)
    lookup = {(c["role"], c["context"]): c for c in data["cells"]}
    return render_template("matrix.html", d=data, svg=Markup(matrix_picture(data)), lookup=lookup)
