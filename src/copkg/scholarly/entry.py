"""One bibliography record, whatever the input format, and the cleaning of its fields (the
problems found are collected as `file:line: message`)."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

from copkg.errors import Problem
from copkg.scholarly.corpus import normalise_doi


@dataclass
class Entry:
    """One bibliography record, whatever the input format."""

    key: str
    kind: str
    line: int
    title: str | None = None
    authors: list[tuple[str, str]] = field(default_factory=list)  # (family, given)
    year: int | None = None
    month: int | None = None
    container: str | None = None
    volume: str | None = None
    issue: str | None = None
    pages: str | None = None
    publisher: str | None = None
    doi: str | None = None


def clean_text(value: object, clean: Callable[[str], str] | None = None) -> str | None:
    """The value with its whitespace collapsed, then `clean`ed; None when nothing is left."""
    if value is None:
        return None
    text = " ".join(str(value).split())
    if clean is not None:
        text = clean(text)
    return text or None


def parse_year(raw: str | None, entry: Entry, problems: list[Problem], file: str) -> int | None:
    """A four-digit year, or None (a problem noted when there was something else)."""
    if raw is None or not str(raw).strip():
        return None
    text = str(raw).strip()
    if not re.fullmatch(r"\d{4}", text):
        problems.append(
            Problem(f"entry {entry.key}: year {text!r} is not a four-digit year", file, entry.line)
        )
        return None
    return int(text)


def parse_doi(raw: object, entry: Entry, problems: list[Problem], file: str) -> str | None:
    """The normalised DOI, or None (a problem noted when the value is not a DOI)."""
    if raw is None or not str(raw).strip():
        return None
    doi = normalise_doi(str(raw))
    if doi is None:
        problems.append(
            Problem(f"entry {entry.key}: {str(raw)!r} is not a DOI (10.NNNN/...)", file, entry.line)
        )
    return doi


def page_range(text: str) -> str:
    """'220--247', '220 – 247' -> '220-247'."""
    return re.sub(r"\s*(?:-+|–|—)\s*", "-", text)
