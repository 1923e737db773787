"""A token-level look at SPARQL text: remote calls (SERVICE, LOAD) and the SELECT projection.

Comments, strings and IRIs are skipped as whole tokens, so a keyword inside them never counts.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
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


def bind_values(sparql: str, values: Mapping[str, str | Sequence[str]]) -> str:
    """Bind variables to fixed terms with VALUES blocks: one at the start of the WHERE group
    and one at the start of every nested group that uses a bound variable.

    `values` maps a variable name to a term already written in SPARQL syntax by an RDF
    serialiser (never a raw user string), or to a list of such terms (one VALUES row each:
    the variable takes any of them; give list values for one variable only). A VALUES block
    at the head of a group is joined with everything in that group, so FILTER, BIND, BOUND and
    OPTIONAL of the group see the value, and groups evaluated on their own (UNION branches,
    sub-SELECTs) get their own block.
    A query without a WHERE group (DESCRIBE ?x) gets a trailing VALUES clause.
    """
    if not values:
        return sparql
    toks = tokens(sparql)
    forms = ("SELECT", "CONSTRUCT", "ASK", "DESCRIBE")
    form = next(
        (i for i, t in enumerate(toks) if t.depth == 0 and t.kind == "word" and t.upper in forms),
        None,
    )
    if form is None:
        return sparql
    k = form + 1
    if toks[form].upper == "CONSTRUCT" and k < len(toks) and toks[k].text == "{":
        k = next(
            (i for i in range(k + 1, len(toks)) if toks[i].depth == 0 and toks[i].text == "}"),
            len(toks),
        )
    where = next(
        (i for i in range(k, len(toks)) if toks[i].depth == 0 and toks[i].text == "{"), None
    )
    if where is None:
        return sparql.rstrip() + "\n" + _values_block(values, list(values)) + "\n"
    inserts: list[tuple[int, str]] = []
    # each open group: [index of its "{", variables it mentions, kind]
    stack: list[tuple[int, set[str], str]] = []
    data_block_next = False
    for i in range(where, len(toks)):
        tok = toks[i]
        if tok.text == "{":
            if data_block_next:
                kind = "data"
                data_block_next = False
            elif i + 1 < len(toks) and toks[i + 1].upper == "SELECT":
                kind = "subselect"
            else:
                kind = "group"
            stack.append((i, set(), kind))
        elif tok.text == "}":
            if not stack:
                break
            opened, mentioned, kind = stack.pop()
            names = [n for n in values if n in mentioned or (not stack and kind == "group")]
            if kind == "group" and names:
                inserts.append((toks[opened].end, " " + _values_block(values, names)))
            if stack:
                stack[-1][1].update(mentioned)
            else:
                break
        elif tok.kind == "word" and tok.upper == "VALUES":
            data_block_next = True
        elif tok.kind == "var" and stack:
            stack[-1][1].add(tok.text[1:])
    text = sparql
    for pos, insert in sorted(inserts, reverse=True):
        text = text[:pos] + insert + text[pos:]
    return text


def _values_block(values: Mapping[str, str | Sequence[str]], names: list[str]) -> str:
    variables = " ".join(f"?{n}" for n in names)
    rows: list[list[str]] = [[]]
    for name in names:
        value = values[name]
        terms = [value] if isinstance(value, str) else list(value)
        rows = [row + [term] for row in rows for term in terms]
    body = " ".join("(" + " ".join(row) + ")" for row in rows)
    return f"VALUES ({variables}) {{ {body} }}"
