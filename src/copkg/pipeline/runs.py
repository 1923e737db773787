"""Subjects' runs inside an export segment, found by bisection on the bytes (pipeline.splice).

In N-Quads a subject's run is its lines; in TriG, a group that starts with a line
`\tsubject ...` (continuation lines start with two tabs; pyoxigraph escapes newlines in
literals, so every line break is one the serialiser made). Both are sorted by subject, so a
run is found without parsing the rest.
"""

from __future__ import annotations

from collections.abc import Callable

from copkg.errors import CopkgError
from copkg.namespaces import PREFIXES


class Lines:
    """Sorted lines of a file between start and end, found by bisection on a key of each line
    (`key(data, line_start)`): a subject's run, a graph's block."""

    def __init__(
        self, data: bytes, start: int, end: int, key: Callable[[bytes, int], bytes]
    ) -> None:
        self.data, self.start, self.end, self.key = data, start, end, key

    def _unit(self, pos: int) -> int:
        """The start of the unit (here a line) that holds the byte at `pos`."""
        return self.data.rfind(b"\n", self.start, pos) + 1 or self.start

    def _next(self, unit: int) -> int:
        return self.data.find(b"\n", unit) + 1

    def _first(self, key: bytes, *, after: bool) -> int:
        """The first unit whose key is above `key` (after) or not below it."""
        lo, hi = self.start, self.end
        while lo < hi:
            unit = self._unit((lo + hi) // 2)
            found = self.key(self.data, unit)
            if found < key or (after and found == key):
                lo = self._next(unit) or hi
            else:
                hi = unit
        return lo

    def run(self, key: bytes) -> tuple[int, int]:
        """Where the units with key `key` are (an empty span where they would go)."""
        first = self._first(key, after=False)
        return first, self._first(key, after=True)


class TrigRuns(Lines):
    """The runs of subjects in a TriG block: groups that start with a line `\\tsubject ...`
    (continuation lines start with two tabs; pyoxigraph escapes newlines in literals, so every
    line break is one the serialiser made)."""

    def _unit(self, pos: int) -> int:
        data = self.data
        while pos >= self.start:
            tab = data.rfind(b"\n\t", self.start - 1, pos + 1)
            if tab < 0:
                break
            if data[tab + 2 : tab + 3] != b"\t":
                return tab + 1
            pos = tab - 1
        return self.start

    def _next(self, unit: int) -> int:
        data = self.data
        tab = data.find(b"\n\t", unit + 1, self.end)
        while tab >= 0 and data[tab + 2 : tab + 3] == b"\t":
            tab = data.find(b"\n\t", tab + 1, self.end)
        return tab + 1 if tab >= 0 else self.end


def nquads_subject(data: bytes, line: int) -> bytes:
    """The subject of the N-Quads line at `line` (as N-Triples writes it)."""
    return data[line : data.find(b" ", line)]


def trig_subject(data: bytes, run: int) -> bytes:
    """The subject of the TriG run at `run` (`\\tsubject ...`) as N-Triples writes it."""
    return _expand(data[run + 1 : data.find(b" ", run + 1)])


def _expand(token: bytes) -> bytes:
    """A subject as TriG writes it (IRI, blank node or prefixed name) as N-Triples writes it."""
    if token.startswith((b"<", b"_:")):
        return token
    prefix, colon, local = token.partition(b":")
    namespace = PREFIXES.get(prefix.decode("utf-8")) if colon else None
    if namespace is None:
        raise CopkgError(f"cannot read the TriG subject {token!r}", status=500)
    plain = bytearray()
    escaped = False
    for byte in local:
        if escaped or byte != ord("\\"):
            plain.append(byte)
            escaped = False
        else:
            escaped = True
    return b"<" + namespace.encode("utf-8") + bytes(plain) + b">"
