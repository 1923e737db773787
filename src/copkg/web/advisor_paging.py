"""The advisor's pages of studied contexts on the web: the paging parameters read and
checked (a clear 400 otherwise), and links to the other pages as named queries give them."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from flask import request

from copkg.reasoning.advice.findings import Advice
from copkg.reasoning.advice.studied import MAX_PAGE_SIZE, PAGE_SIZE, Paging, bad_paging

#: Query-string names the advisor reads as paging, not as a factor.
PAGING = ("page", "page_size")


def _whole(value: Any, name: str, low: int, high: int | None) -> int:
    """A whole number in [low, high] from a query string's text or a JSON number; else 400."""
    text = str(value).strip() if isinstance(value, str | int) and value is not True else ""
    if (
        isinstance(value, bool)
        or not text.isdigit()
        or int(text) < low
        or (high is not None and int(text) > high)
    ):
        upto = f" to {high}" if high is not None else ""
        raise bad_paging(name, f"{name} must be a whole number from {low}{upto}, not {value!r}")
    return int(text)


def paging_from_args() -> Paging:
    """The page of studied contexts asked for: `page` (from 1), `page_size` (1 to
    MAX_PAGE_SIZE, PAGE_SIZE by default); each at most once, else 400."""
    given: dict[str, int] = {}
    for name in PAGING:
        values = request.args.getlist(name)
        if len(values) > 1:
            raise bad_paging(name, f"{name} given {len(values)} times: give it once")
        if values:
            given[name] = _whole(values[0], name, 1, MAX_PAGE_SIZE if name != "page" else None)
    return Paging(given.get("page", 1), given.get("page_size", PAGE_SIZE))


def paging_from_json(body: dict[str, Any]) -> Paging:
    """The page asked for in a JSON body: "page" and "pageSize", whole numbers."""
    page = _whole(body["page"], "page", 1, None) if "page" in body else 1
    size = (
        _whole(body["pageSize"], "pageSize", 1, MAX_PAGE_SIZE) if "pageSize" in body else PAGE_SIZE
    )
    return Paging(page, size)


def page_links(path: str, answer: Advice) -> dict[str, str]:
    """first / prev / next / last pages of the studied contexts: this request's query string
    with `page` set (and `page_size` kept)."""
    matched = answer.matched
    if matched is None:
        return {}
    kept = [(k, v) for k, v in request.args.items(multi=True) if k != "page"]

    def url(number: int) -> str:
        return f"{path}?{urlencode([*kept, ('page', str(number))], safe='@')}"

    links = {"first": url(1)}
    if matched.page > 1:
        links["prev"] = url(matched.page - 1)
    if matched.page < matched.last:
        links["next"] = url(matched.page + 1)
    links["last"] = url(matched.last)
    return links


def page_headers(links: dict[str, str], answer: Advice) -> dict[str, str]:
    """An RFC 8288 Link header to the other pages and the page's number, as named queries
    send them."""
    if answer.matched is None:
        return {}
    return {
        "Link": ", ".join(f'<{url}>; rel="{rel}"' for rel, url in links.items()),
        "X-Page": str(answer.matched.page),
        "X-Last-Page": str(answer.matched.last),
    }
