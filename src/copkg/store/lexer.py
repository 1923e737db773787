"""SPARQL 1.1 text cut into its terminals (SPARQL 1.1 §19.8) as the query engine reads them.

The safety checks read a query through this module, never through another parser, so that they
see the text exactly as pyoxigraph (spargebra) does:

- `\\u` and `\\U` escapes are decoded only inside strings and IRIs (SPARQL 1.1 allows them
  anywhere, and rdflib decodes them over the whole text before parsing: `readings` gives both);
- strings, IRIs, prefixed names, variables and comments follow the grammar's terminals to the
  letter: a local name may hold `\\#` or `\\'` (PN_LOCAL_ESC) but never `]`, a comment ends at
  CR or LF, only space, tab, CR and LF are white space;
- text that is none of these is refused (`LexError`, with its line and column): a query the
  lexer cannot read is a query the checks cannot vouch for.

`<` opens an IRI wherever an IRI can be read from it (longest match, as JavaCC-built parsers
read it), else it is the less-than operator. An IRI holds no white space, brace or quote, so
where the engine reads an expression there instead, no SERVICE, LOAD or FROM can hide in it:
each needs a `{` or white space the IRI cannot contain.
"""

from __future__ import annotations

import functools
import re
from typing import NamedTuple

from copkg.errors import CopkgError, Problem

#: Unicode's last code point and its surrogates (code points that are not characters).
MAX_CODE_POINT = 0x10FFFF
SURROGATES = range(0xD800, 0xDFFF + 1)


def is_scalar_value(value: int) -> bool:
    """Whether a code point names a character (a Unicode scalar value)."""
    return value <= MAX_CODE_POINT and value not in SURROGATES


_BASE = (
    "A-Za-z\u00c0-\u00d6\u00d8-\u00f6\u00f8-\u02ff\u0370-\u037d\u037f-\u1fff\u200c-\u200d"
    "\u2070-\u218f\u2c00-\u2fef\u3001-\ud7ff\uf900-\ufdcf\ufdf0-\ufffd\U00010000-\U000effff"
)
_U = _BASE + "_"
_CHARS = _U + "\\-0-9\u00b7\u0300-\u036f\u203f-\u2040"
_PLX = r"%[0-9A-Fa-f]{2}|\\[_~.\-!$&'()*+,;=/?#@%]"
_PN_PREFIX = f"[{_BASE}](?:[{_CHARS}.]*[{_CHARS}])?"
_PN_LOCAL = f"(?:[{_U}:0-9]|{_PLX})(?:(?:[{_CHARS}.:]|{_PLX})*(?:[{_CHARS}:]|{_PLX}))?"
_VARNAME = f"[{_U}0-9][{_U}0-9\u00b7\u0300-\u036f\u203f-\u2040]*"
_UCHAR = r"\\u[0-9A-Fa-f]{4}|\\U[0-9A-Fa-f]{8}"
_ECHAR = r"\\[tbnrf\\\"']"
_EXP = r"[eE][+-]?[0-9]+"

#: White space and comments, which stand between terminals.
_GAP = r"(?:[ \t\r\n]++|\#[^\r\n]*+)*+"  # possessive: a gap never gives back a character

#: The terminals, one named group each.
_ALTERNATIVES = rf"""
    (?P<string>'''(?:(?:''|')?(?:[^'\\]|{_ECHAR}|{_UCHAR}))*'''
              |\"\"\"(?:(?:\"\"|\")?(?:[^"\\]|{_ECHAR}|{_UCHAR}))*\"\"\"
              |'(?:[^'\\\r\n]|{_ECHAR}|{_UCHAR})*'
              |"(?:[^"\\\r\n]|{_ECHAR}|{_UCHAR})*")
  | (?P<iri><(?:[^<>"{{}}|^`\\\x00-\x20]|{_UCHAR})*>)
  | (?P<pname>(?:{_PN_PREFIX})?:(?:{_PN_LOCAL})?)
  | (?P<bnode>_:[{_U}0-9](?:[{_CHARS}.]*[{_CHARS}])?)
  | (?P<var>[?$]{_VARNAME})
  | (?P<langtag>@[a-zA-Z]+(?:-[a-zA-Z0-9]+)*)
  | (?P<number>[0-9]+\.[0-9]*{_EXP}|\.?[0-9]+{_EXP}|[0-9]*\.[0-9]+|[0-9]+)
  | (?P<word>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<punct>\^\^|&&|\|\||!=|<=|>=|[{{}}()\[\];,.*/|^!=<>+\-?])
    """

#: The next terminal after any gap (one match a terminal, not one for each gap as well).
_NEXT = re.compile(rf"{_GAP}(?:{_ALTERNATIVES})", re.VERBOSE)
_GAP_ONLY = re.compile(_GAP, re.VERBOSE)

_ESCAPE = re.compile(_UCHAR)


class LexError(CopkgError):
    """Text that is not made of SPARQL terminals (a 400 with its line and column)."""


class Token(NamedTuple):
    """One terminal: its kind, its text, where it is, and the { } nesting around it (a named
    tuple: a long query has thousands, and a tuple is made several times faster)."""

    kind: str  # iri, string, pname, bnode, var, langtag, number, word, punct
    text: str
    start: int
    end: int
    depth: int

    @property
    def upper(self) -> str:
        return self.text.upper()


def position(text: str, offset: int) -> tuple[int, int]:
    """The 1-based line and column of a character offset."""
    line = text.count("\n", 0, offset) + 1
    return line, offset - (text.rfind("\n", 0, offset) + 1) + 1


def _refuse(text: str, offset: int, why: str) -> LexError:
    line, column = position(text, offset)
    message = f"SPARQL syntax error at line {line}, column {column}: {why}"
    return LexError(message, status=400, problems=[Problem(why, line=line, column=column)])


def _check_escapes(text: str, token_start: int, token_text: str) -> None:
    """Each \\u or \\U escape names a Unicode scalar value (no surrogate, none past U+10FFFF)."""
    for match in _ESCAPE.finditer(token_text):
        value = int(match.group()[2:], 16)
        if not is_scalar_value(value):
            raise _refuse(
                text, token_start + match.start(), f"{match.group()} is not a Unicode character"
            )


#: Texts up to this length keep their tokens for the next reading of the same text (a query is
#: read by the safety check, then by the store's own check, often with no change between).
_KEPT_TEXT = 1 << 16


def tokens(text: str) -> list[Token]:
    """The terminals of `text` outside white space and comments, each with its { } depth.

    Raises LexError at the first character that starts no terminal.
    """
    if len(text) <= _KEPT_TEXT:
        return list(_kept_tokens(text))
    return _tokens(text)


@functools.lru_cache(maxsize=8)
def _kept_tokens(text: str) -> tuple[Token, ...]:
    return tuple(_tokens(text))


def _tokens(text: str) -> list[Token]:
    result: list[Token] = []
    depth = 0
    offset = 0
    size = len(text)
    append = result.append
    while offset < size:
        match = _NEXT.match(text, offset)
        if match is None:
            offset = _GAP_ONLY.match(text, offset).end()  # type: ignore[union-attr]
            if offset == size:
                break
            char = text[offset]
            raise _refuse(text, offset, f"unexpected character {char!r} (U+{ord(char):04X})")
        kind = match.lastgroup or "punct"
        start, offset = match.span(kind)
        value = match.group(kind)
        if kind in ("string", "iri"):
            _check_escapes(text, start, value)
        if value == "}":
            depth = max(depth - 1, 0)
        append(Token(kind, value, start, offset, depth))
        if value == "{":
            depth += 1
    return result


def unescape(text: str) -> str:
    """Every \\u and \\U escape decoded, over the whole text (how rdflib and the SPARQL 1.1
    text read them); an escape that names no character is left as it is."""

    def decode(match: re.Match[str]) -> str:
        value = int(match.group()[2:], 16)
        if not is_scalar_value(value):
            return match.group()
        return chr(value)

    return _ESCAPE.sub(decode, text)


def readings(text: str) -> list[list[Token]]:
    """The ways an engine may read `text`: as pyoxigraph does (escapes only in strings and
    IRIs; refused if it cannot be read) and, where the text has escapes, with every escape
    decoded first, as other engines do (left out if that text is no SPARQL)."""
    first = tokens(text)
    if "\\u" not in text and "\\U" not in text:
        return [first]
    try:
        return [first, tokens(unescape(text))]
    except LexError:
        return [first]


def iri_value(token: Token) -> str:
    """The IRI an iri token stands for, its escapes decoded."""
    return unescape(token.text[1:-1])
