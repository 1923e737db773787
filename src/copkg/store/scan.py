"""A token-level look at SPARQL text: remote calls (SERVICE, LOAD) and VALUES bindings.

The text is read by `copkg.store.lexer`, as the engine reads it: comments, strings and IRIs are
whole tokens, so a keyword inside them never counts, and nothing the lexer cannot read runs.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

from copkg.errors import CopkgError
from copkg.store.lexer import Token, iri_value, readings, tokens

__all__ = ["RemoteCall", "Token", "bind_values", "check_remote_calls", "remote_calls", "tokens"]

#: Keywords that reach outside the store. Engines built on PEG parsers (pyoxigraph's) match a
#: keyword without a word boundary (`SERVICE:x` is SERVICE then `:x`; `SERVICEe:x` is SERVICE
#: then `e:x`), so any name that begins with one of them is read as that keyword.
REMOTE_KEYWORDS = ("SERVICE", "LOAD")


@dataclass(frozen=True)
class RemoteCall:
    """One SERVICE or LOAD in a query or update, with its target if it is an absolute IRI."""

    keyword: str
    target: str | None
    text: str


def _remote_keyword(token: Token) -> str | None:
    if token.kind not in ("word", "pname"):
        return None
    return next((k for k in REMOTE_KEYWORDS if token.upper.startswith(k)), None)


def _call_at(toks: list[Token], i: int, keyword: str) -> RemoteCall:
    glued = toks[i].text[len(keyword) :]
    if glued:  # SERVICE:x, SERVICEex:y, LOADex:z: written so that only an engine can tell
        return RemoteCall(keyword, None, glued)
    j = i + 1
    if j < len(toks) and toks[j].upper == "SILENT":
        j += 1
    if j >= len(toks):
        return RemoteCall(keyword, None, "")
    target = toks[j]
    if target.kind == "iri":
        iri = iri_value(target)
        return RemoteCall(keyword, iri if urlsplit(iri).scheme else None, target.text)
    return RemoteCall(keyword, None, target.text)


#: Any of the keywords, in any case (a cheaper look than an upper-cased copy of the text).
_ANY_KEYWORD = re.compile("|".join(REMOTE_KEYWORDS), re.IGNORECASE)


def remote_calls(sparql: str) -> list[RemoteCall]:
    """Every SERVICE and LOAD of `sparql`, however an engine may read it (see lexer.readings).

    Raises LexError (400) for text the lexer cannot read, if the text holds either word (text
    without them and without escapes is not read: it can call nothing).
    """
    calls: list[RemoteCall] = []
    if "\\u" not in sparql and "\\U" not in sparql and not _ANY_KEYWORD.search(sparql):
        return calls  # no escape, so one reading, and no token can hold a keyword the text lacks
    every = readings(sparql)
    for toks in every:
        for i, token in enumerate(toks):
            keyword = _remote_keyword(token)
            if keyword is not None:
                calls.append(_call_at(toks, i, keyword))
    return calls


def check_remote_calls(sparql: str, allowed_endpoints: Sequence[str] = ()) -> None:
    """Refuse (400) text that cannot be read, LOAD, and SERVICE to anything but an allowed
    endpoint written as an absolute IRI (`SERVICE <http://...>`)."""
    for call in remote_calls(sparql):
        if call.keyword == "LOAD":
            raise CopkgError(
                "LOAD is not allowed: the service never fetches or reads files", status=400
            )
        if call.target is None or call.target not in allowed_endpoints:
            listed = ", ".join(sorted(allowed_endpoints)) or "none"
            shown = f"<{call.target}>" if call.target else call.text or "without an endpoint"
            how = (
                "a federated endpoint must be a listed IRI, written <http://...>"
                if call.target is None
                else "this endpoint queries only its own store"
            )
            raise CopkgError(
                f"SERVICE {shown} is not allowed: {how} (allowed federated endpoints: {listed})",
                status=400,
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
    sites = _value_sites(sparql, tuple(values)) if len(sparql) <= KEPT_TEXT else None
    if sites is None:
        sites = _find_value_sites(sparql, tuple(values))
    if sites == ():
        return sparql
    if sites[0][0] < 0:  # no WHERE group: a trailing VALUES clause
        return sparql.rstrip() + "\n" + _values_block(values, list(values)) + "\n"
    text = sparql
    for pos, names in reversed(sites):
        text = text[:pos] + " " + _values_block(values, list(names)) + text[pos:]
    return text


#: Texts up to this length keep where their VALUES blocks go, by the variables bound (a
#: named query is bound the same way request after request).
KEPT_TEXT = 1 << 16


@functools.lru_cache(maxsize=256)
def _value_sites(sparql: str, names: tuple[str, ...]) -> tuple[tuple[int, tuple[str, ...]], ...]:
    return _find_value_sites(sparql, names)


def _find_value_sites(
    sparql: str, names: tuple[str, ...]
) -> tuple[tuple[int, tuple[str, ...]], ...]:
    """Where bind_values puts a VALUES block for variables `names`, and for which of them, in
    text order: () for a query it leaves alone, ((-1, names),) for one without a WHERE group."""
    toks = tokens(sparql)
    forms = ("SELECT", "CONSTRUCT", "ASK", "DESCRIBE")
    form = next(
        (i for i, t in enumerate(toks) if t.depth == 0 and t.kind == "word" and t.upper in forms),
        None,
    )
    if form is None:
        return ()
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
        return ((-1, names),)
    inserts: list[tuple[int, tuple[str, ...]]] = []
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
            bound = tuple(n for n in names if n in mentioned or (not stack and kind == "group"))
            if kind == "group" and bound:
                inserts.append((toks[opened].end, bound))
            if stack:
                stack[-1][1].update(mentioned)
            else:
                break
        elif tok.kind == "word" and tok.upper == "VALUES":
            data_block_next = True
        elif tok.kind == "var" and stack:
            stack[-1][1].add(tok.text[1:])
    return tuple(sorted(inserts))


def _values_block(values: Mapping[str, str | Sequence[str]], names: list[str]) -> str:
    variables = " ".join(f"?{n}" for n in names)
    rows: list[list[str]] = [[]]
    for name in names:
        value = values[name]
        terms = [value] if isinstance(value, str) else list(value)
        rows = [[*row, term] for row in rows for term in terms]
    body = " ".join("(" + " ".join(row) + ")" for row in rows)
    return f"VALUES ({variables}) {{ {body} }}"
