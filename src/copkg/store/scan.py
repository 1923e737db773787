"""A token-level look at SPARQL text: remote calls (SERVICE, LOAD) and the SELECT projection.

Comments, strings and IRIs are skipped as whole tokens, so a keyword inside them never counts.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from copkg.errors import CopkgError

_TOKEN = re.compile(
    r"""
    (?P<comment>\#[^\n\r]*)
  | (?P<string>'''(?:[^'\\]|\\.|'(?!''))*'''|\"\"\"(?:[^"\\]|\\.|"(?!""))*\"\"\"
               |'(?:[^'\\\n\r]|\\.)*'|"(?:[^"\\\n\r]|\\.)*")
  | (?P<iri><[^<>"{}|^`\\\x00-\x20]*>)
  | (?P<var>[?$]\w+)
  | (?P<word>[^\W\d]\w*(?:[-.]\w+)*(?::[^\s{}()<>;,"']*)?|:[^\s{}()<>;,"']*)
  | (?P<other>\S)
    """,
    re.VERBOSE | re.DOTALL,
)

_AGGREGATES = {"COUNT", "SUM", "MIN", "MAX", "AVG", "SAMPLE", "GROUP_CONCAT"}


@dataclass(frozen=True)
class Token:
    kind: str
    text: str
    start: int
    end: int
    depth: int  # nesting of { } around the token

    @property
    def upper(self) -> str:
        return self.text.upper()


def tokens(sparql: str) -> list[Token]:
    """The tokens of `sparql` outside comments, each with its { } depth."""
    result: list[Token] = []
    depth = 0
    for m in _TOKEN.finditer(sparql):
        kind = m.lastgroup or "other"
        if kind == "comment":
            continue
        text = m.group()
        if text == "}":
            depth = max(depth - 1, 0)
        result.append(Token(kind, text, m.start(), m.end(), depth))
        if text == "{":
            depth += 1
    return result


@dataclass(frozen=True)
class RemoteCall:
    """One SERVICE or LOAD in a query or update, with its target if it is an IRI."""

    keyword: str
    target: str | None
    text: str


def remote_calls(sparql: str) -> list[RemoteCall]:
    """Every SERVICE and LOAD keyword of `sparql` with the IRI that follows it (None if not one)."""
    toks = [t for t in tokens(sparql) if t.kind != "string"]
    calls: list[RemoteCall] = []
    for i, tok in enumerate(toks):
        if tok.kind != "word" or tok.upper not in ("SERVICE", "LOAD"):
            continue
        j = i + 1
        if j < len(toks) and toks[j].upper == "SILENT":
            j += 1
        target = toks[j] if j < len(toks) else None
        iri = target.text[1:-1] if target is not None and target.kind == "iri" else None
        calls.append(RemoteCall(tok.upper, iri, target.text if target else ""))
    return calls


def check_remote_calls(sparql: str, allowed_endpoints: tuple[str, ...] = ()) -> None:
    """Refuse (403) LOAD, and SERVICE to an endpoint that is not allowed."""
    for call in remote_calls(sparql):
        if call.keyword == "LOAD":
            raise CopkgError(
                "LOAD is not allowed: the store reads no remote or local files", status=403
            )
        if call.target is None or call.target not in allowed_endpoints:
            allowed = ", ".join(allowed_endpoints) or "none"
            raise CopkgError(
                f"SERVICE {call.text} is not an allowed endpoint (allowed: {allowed})",
                status=403,
            )


def project_variables(sparql: str, names: list[str]) -> tuple[str, list[str]]:
    """Add variables to SELECT projections that lack them (and to GROUP BY if they aggregate).

    pyoxigraph substitutes a value for a variable only where the query projects it; a named
    query's parameter often is not projected. Projecting a variable whose value is fixed
    changes no solution (and grouping by a constant changes no group), so the caller runs
    the rewritten query and drops the added columns. Sub-SELECTs that use a variable get it
    projected too, so the value reaches them. Returns the text and the names added at the top.
    """
    toks = tokens(sparql)
    edits: list[tuple[int, str]] = []
    hidden: list[str] = []
    for i, tok in enumerate(toks):
        if tok.kind == "word" and tok.upper == "SELECT":
            top = not any(t.kind == "word" and t.upper == "SELECT" for t in toks[:i])
            added = _extend_select(toks, i, names, top, edits)
            if top:
                hidden = added
    text = sparql
    for pos, insert in sorted(edits, reverse=True):
        text = text[:pos] + insert + text[pos:]
    return text, hidden


def _extend_select(
    toks: list[Token], select: int, names: list[str], top: bool, edits: list[tuple[int, str]]
) -> list[str]:
    """Plan the edits that project `names` in the SELECT at toks[select]; return names added."""
    depth = toks[select].depth
    after = select + 1
    while after < len(toks) and toks[after].upper in ("DISTINCT", "REDUCED"):
        after += 1
    projection: set[str] = set()
    star = aggregated = False
    where_open = None
    parens = 0
    for k in range(after, len(toks)):
        tok = toks[k]
        if tok.text == "{" or tok.upper == "WHERE":
            where_open = k if tok.text == "{" else k + 1
            break
        parens += {"(": 1, ")": -1}.get(tok.text, 0)
        if tok.text == "*" and parens == 0:
            star = True
        if tok.kind == "var":
            projection.add(tok.text[1:])
        if tok.kind == "word" and tok.upper in _AGGREGATES:
            aggregated = True
    if star or where_open is None or where_open >= len(toks):
        return []
    where_close = next(
        (
            k
            for k in range(where_open + 1, len(toks))
            if toks[k].depth == depth and toks[k].text == "}"
        ),
        None,
    )
    if where_close is None:
        return []
    used = {t.text[1:] for t in toks[where_open:where_close] if t.kind == "var"}
    missing = [n for n in names if n not in projection and (top or n in used)]
    if not missing:
        return []
    group_by = None
    for k in range(where_close + 1, len(toks) - 1):
        if toks[k].depth < depth:
            break
        if toks[k].depth == depth and toks[k].upper == "GROUP" and toks[k + 1].upper == "BY":
            group_by = k + 1
        if toks[k].depth == depth and toks[k].kind == "word" and toks[k].upper in _AGGREGATES:
            aggregated = True
    added = " " + " ".join(f"?{n}" for n in missing)
    edits.append((toks[after - 1].end, added))
    if group_by is not None:
        edits.append((toks[group_by].end, added))
    elif aggregated:
        edits.append((toks[where_close].end, " GROUP BY" + added))
    return missing
