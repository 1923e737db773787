"""Reading CSL-JSON bibliographies (an array of items, or one item) into records."""

from __future__ import annotations

import json

from copkg.errors import Problem
from copkg.scholarly.entry import Entry, clean_text, page_range, parse_doi, parse_year


def read_csl_json(text: str, file: str) -> tuple[list[Entry], list[Problem]]:
    """The records of a CSL-JSON text and the problems found (`file` names it in them)."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        return [], [Problem(f"not JSON: {exc.msg}", file=file, line=exc.lineno, column=exc.colno)]
    if isinstance(data, dict):
        data = [data]
    if not isinstance(data, list):
        return [], [Problem("CSL-JSON is an array of items (objects)", file=file, line=1)]
    lines = item_lines(text, len(data))
    entries: list[Entry] = []
    problems: list[Problem] = []
    for index, item in enumerate(data):
        line = lines[index]
        if not isinstance(item, dict):
            problems.append(Problem(f"item {index + 1} is not an object", file, line))
            continue
        key = str(item.get("id") or item.get("citation-key") or "")
        entry = Entry(key=key, kind=str(item.get("type") or "").lower(), line=line)
        entry.title = clean_text(item.get("title"))
        for person in item.get("author") or item.get("editor") or []:
            if not isinstance(person, dict):
                problems.append(Problem(f"item {key}: an author is not an object", file, line))
                continue
            family = person.get("family") or person.get("literal")
            if not family:
                problems.append(Problem(f"item {key}: an author has no family name", file, line))
                continue
            particle = person.get("non-dropping-particle")
            full = f"{particle} {family}" if particle else str(family)
            entry.authors.append((full, str(person.get("given") or "")))
        parts = (
            (item.get("issued") or {}).get("date-parts")
            if isinstance(item.get("issued"), dict)
            else None
        )
        if parts and isinstance(parts, list) and parts[0]:
            first = parts[0]
            entry.year = parse_year(str(first[0]), entry, problems, file)
            if len(first) > 1 and str(first[1]).isdigit():
                entry.month = int(first[1])
        entry.container = clean_text(item.get("container-title"))
        entry.volume = clean_text(item.get("volume"))
        entry.issue = clean_text(item.get("issue"))
        entry.pages = clean_text(item.get("page"), page_range)
        entry.publisher = clean_text(item.get("publisher"))
        entry.doi = parse_doi(item.get("DOI"), entry, problems, file)
        entries.append(entry)
    return entries, problems


def item_lines(text: str, count: int) -> list[int]:
    """The line where each item of a top-level JSON array starts (1 for a single object)."""
    decoder = json.JSONDecoder()
    at = len(text) - len(text.lstrip())
    if not text[at:].startswith("["):
        return [1] * count
    at += 1
    lines: list[int] = []
    while len(lines) < count:
        while text[at] in " \t\r\n,":
            at += 1
        lines.append(text.count("\n", 0, at) + 1)
        _, at = decoder.raw_decode(text, at)
    return lines
