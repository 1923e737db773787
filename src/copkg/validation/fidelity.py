"""Fidelity: every quote of a study stands, verbatim, on the page it claims in the study's text."""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from rdflib import Graph, URIRef
from rdflib.term import Node

from copkg.namespaces import COPKG
from copkg.rdf_io import sorted_terms

PAGE_MARK = re.compile(r"^\[page (\d+)\]\s*$", re.MULTILINE)
FOLDS = str.maketrans(
    {
        "’": "'",
        "‘": "'",
        "“": '"',
        "”": '"',
        "«": '"',
        "»": '"',
        "—": "-",
        "–": "-",
        "…": "...",
        "\u00a0": " ",
    }
)


def normalise(text: str) -> str:
    """Fold white space, typographic quote marks and dashes; keep everything else."""
    text = unicodedata.normalize("NFC", text).translate(FOLDS)
    return " ".join(text.split())


def pages(text: str) -> dict[int, str]:
    """The normalised text of each `[page N]` section."""
    marks = list(PAGE_MARK.finditer(text))
    out = {}
    for i, mark in enumerate(marks):
        end = marks[i + 1].start() if i + 1 < len(marks) else len(text)
        out[int(mark.group(1))] = normalise(text[mark.end() : end])
    return out


@dataclass(frozen=True)
class Mismatch:
    """A quote that is not on the page it claims."""

    quote: Node  # an IRI, or a blank node a bundle may write
    page: int
    text: str
    found_on: tuple[int, ...]

    def __str__(self) -> str:
        where = (
            f"found on page(s) {', '.join(map(str, self.found_on))}"
            if self.found_on
            else ("not found anywhere in the text")
        )
        return f"{self.quote}: page {self.page} claimed, {where}: {self.text[:80]!r}"


def check_quotes(graph: Graph, study: URIRef, paper: Path) -> tuple[int, list[Mismatch]]:
    """How many quotes of `study` were checked, and those not on their page."""
    text_pages = pages(paper.read_text(encoding="utf-8"))
    checked, mismatches = 0, []
    for quote in sorted_terms(graph.subjects(COPKG.quotedIn, study)):
        text = graph.value(quote, COPKG.quoteText)
        page = graph.value(quote, COPKG.page)
        if text is None or page is None:
            continue
        checked += 1
        wanted = normalise(str(text))
        if wanted in text_pages.get(int(str(page)), ""):
            continue
        found = tuple(n for n, body in text_pages.items() if wanted in body)
        mismatches.append(Mismatch(quote, int(str(page)), str(text), found))
    return checked, mismatches


#: Where a bundle keeps the text of its study (one .txt a study, `[page N]` before each page).
SOURCE_FOLDER = "source"


def find_source(digest: str, folders: Iterable[Path]) -> Path | None:
    """The first .txt file of `folders` whose SHA-256 is `digest`, if any."""
    for folder in folders:
        if not folder.is_dir():
            continue
        for path in sorted(folder.glob("*.txt")):
            if hashlib.sha256(path.read_bytes()).hexdigest() == digest:
                return path
    return None
