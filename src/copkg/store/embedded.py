"""OxigraphStore: the Store protocol on pyoxigraph, in memory or in a directory."""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import pyoxigraph as ox
from rdflib import Graph
from rdflib.term import Node

from copkg.errors import CopkgError, Problem
from copkg.namespaces import PREFIXES
from copkg.store.results import (
    Kind,
    QueryResult,
    solutions_result,
    triples_result,
    until,
    write_answer,
)
from copkg.store.scan import bind_values, check_remote_calls
from copkg.store.terms import (
    from_ox,
    quad_from_ox,
    serialize,
    terms_as_sparql,
    to_ox_graph_name,
    triples_to_quads,
)

_DATASET_FORMATS = {
    ".trig": ox.RdfFormat.TRIG,
    ".nq": ox.RdfFormat.N_QUADS,
    ".nquads": ox.RdfFormat.N_QUADS,
}


class OxigraphStore:
    """An embedded pyoxigraph store; the default graph of a query is the union of named graphs."""

    def __init__(
        self,
        path: str | os.PathLike[str] | None = None,
        *,
        timeout: float | None = None,
        max_rows: int | None = None,
        allowed_service_endpoints: Sequence[str] = (),
        _store: ox.Store | None = None,
        _read_only: bool = False,
    ) -> None:
        self.path = Path(path) if path is not None else None
        self.read_only = _read_only
        self.timeout = timeout
        self.max_rows = max_rows
        self.allowed_service_endpoints = tuple(allowed_service_endpoints)
        #: The identity of the build this store was opened from (set by load_build), if any.
        self.build_identity: str | None = None
        self.build_id: str | None = None  # its name in answers (Copkg-Build)
        if _store is not None:
            self._store = _store
        else:
            try:
                self._store = ox.Store(str(path)) if path is not None else ox.Store()
            except OSError as exc:
                raise CopkgError(f"cannot open the store at {path}: {exc}", status=500) from exc

    @classmethod
    def open_read_only(cls, path: str | os.PathLike[str], **options: Any) -> OxigraphStore:
        """Open an on-disk store that no one writes any more (the build's)."""
        if not Path(path).is_dir():
            raise CopkgError(f"no store at {path}", status=500)
        try:
            store = ox.Store.read_only(str(path))
        except OSError as exc:
            raise CopkgError(f"cannot open the store at {path}: {exc}", status=500) from exc
        return cls(path, _store=store, _read_only=True, **options)

    # -- queries ---------------------------------------------------------------------------

    def query(
        self,
        sparql: str,
        *,
        bindings: Mapping[str, Node] | None = None,
        default_graphs: Sequence[str] | None = None,
        named_graphs: Sequence[str] | None = None,
        base: str | None = None,
    ) -> QueryResult:
        """Run a SPARQL query, its relative IRIs resolved against `base` if given.

        `bindings` fix variables to RDF terms: VALUES blocks written from the terms by
        pyoxigraph's serialiser (see scan.bind_values), never from a raw input string. Not
        pyoxigraph's `substitutions`: following SEP-0007 it refuses a SELECT that does not
        project the bound variable, and named queries bind parameters they do not return
        (`?_type_iri`); projecting them would change the answers' columns.
        """
        check_remote_calls(sparql, self.allowed_service_endpoints)
        options = self._options(default_graphs, named_graphs, base)
        if bindings:
            sparql = bind_values(sparql, terms_as_sparql(bindings))
        deadline = time.monotonic() + self.timeout if self.timeout else None
        try:
            answer = self._store.query(sparql, **options)
            result = self._collect(answer, deadline)
        except SyntaxError as exc:
            raise syntax_error(exc, sparql) from exc
        except (OSError, RuntimeError, ValueError, TypeError) as exc:
            raise CopkgError(f"query failed: {exc}", status=400) from exc
        return result

    def query_serialized(
        self,
        sparql: str,
        media_type: str,
        *,
        bindings: Mapping[str, Node] | None = None,
        default_graphs: Sequence[str] | None = None,
        named_graphs: Sequence[str] | None = None,
        base: str | None = None,
        max_rows: int | None = None,
    ) -> tuple[Kind, bytes, int, bool]:
        """Run a query as `query` does and write its answer straight in `media_type`: the
        kind, the body, the number of rows (or triples) written and whether they were cut.

        No term becomes an rdflib object: solutions are written as SPARQL TSV lines from the
        engine's own N-Triples spelling of each term (`str(term)`, escaped by pyoxigraph),
        counted for the row limit on the way, then re-read and written by pyoxigraph in the
        format asked for; triples are handed back to pyoxigraph's serialiser as they came.
        """
        check_remote_calls(sparql, self.allowed_service_endpoints)
        options = self._options(default_graphs, named_graphs, base)
        if bindings:
            sparql = bind_values(sparql, terms_as_sparql(bindings))
        deadline = time.monotonic() + self.timeout if self.timeout else None
        limits = [n for n in (self.max_rows, max_rows) if n is not None]
        limit = min(limits) if limits else None
        try:
            answer = self._store.query(sparql, **options)
            return write_answer(answer, media_type, limit, deadline)
        except SyntaxError as exc:
            raise syntax_error(exc, sparql) from exc
        except (OSError, RuntimeError, ValueError, TypeError) as exc:
            raise CopkgError(f"query failed: {exc}", status=400) from exc

    @staticmethod
    def _options(
        default_graphs: Sequence[str] | None, named_graphs: Sequence[str] | None, base: str | None
    ) -> dict[str, Any]:
        options: dict[str, Any] = {"prefixes": PREFIXES}
        if default_graphs is None and named_graphs is None:
            options["use_default_graph_as_union"] = True
        else:
            # SPARQL protocol: a dataset given by graph IRIs holds only the graphs it names.
            options["default_graph"] = [to_ox_graph_name(g) for g in default_graphs or ()]
            options["named_graphs"] = [to_ox_graph_name(g) for g in named_graphs or ()]
        if base is not None:
            options["base_iri"] = base
        return options

    def _collect(self, answer: Any, deadline: float | None) -> QueryResult:
        if isinstance(answer, ox.QueryBoolean):
            return QueryResult(kind="ask", boolean=bool(answer))
        limit = self.max_rows
        if isinstance(answer, ox.QuerySolutions):
            variables = [v.value for v in answer.variables]
            return solutions_result(until(answer, deadline), variables, from_ox, limit)
        return triples_result(until(answer, deadline), from_ox, limit)

    # -- changes ---------------------------------------------------------------------------

    def _writable(self) -> None:
        if self.read_only:
            raise CopkgError("this store is read-only", status=403)

    def update(self, sparql: str) -> None:
        """Run a SPARQL update (LOAD and SERVICE to unlisted endpoints are refused)."""
        self._writable()
        check_remote_calls(sparql, self.allowed_service_endpoints)
        try:
            self._store.update(sparql, prefixes=PREFIXES)
        except SyntaxError as exc:
            raise syntax_error(exc, sparql) from exc
        except (OSError, ValueError) as exc:
            raise CopkgError(f"update failed: {exc}", status=400) from exc

    def replace_graph(self, graph: str, triples: Iterable[tuple[Node, Node, Node]]) -> None:
        """Make `graph` hold exactly `triples`, in one transaction."""
        self._writable()
        name = to_ox_graph_name(graph)
        body = serialize(
            [ox.Triple(q.subject, q.predicate, q.object) for q in triples_to_quads(triples, None)],
            ox.RdfFormat.N_TRIPLES,
        ).decode("utf-8")
        self._store.update(
            f"DROP SILENT GRAPH {name} ; INSERT DATA {{ GRAPH {name} {{ {body} }} }}"
        )

    def add_graph(self, graph: str, data: Graph | Iterable[tuple[Node, Node, Node]]) -> None:
        """Add triples (an rdflib Graph or tuples) to a named graph."""
        self._writable()
        self._store.extend(list(triples_to_quads(data, graph)))

    def load_dataset(self, path: Path) -> None:
        """Load a TriG or N-Quads file; its graphs keep their names."""
        self._writable()
        path = Path(path)
        fmt = _DATASET_FORMATS.get(path.suffix.lower())
        if fmt is None:
            raise CopkgError(f"{path}: not a dataset file (.trig or .nq)", status=400)
        try:
            self._store.bulk_load(path=str(path), format=fmt)
        except SyntaxError as exc:
            raise CopkgError(
                f"{path}: {exc}", status=400, problems=[Problem(str(exc), file=str(path))]
            ) from exc

    def flush(self) -> None:
        if not self.read_only:
            self._store.flush()

    # -- looking -----------------------------------------------------------------------------

    def graphs(self) -> list[str]:
        """The IRIs of the named graphs, sorted."""
        return sorted(g.value for g in self._store.named_graphs() if isinstance(g, ox.NamedNode))

    def quad_count(self, graph: str | None = None) -> int:
        """How many quads the store (or one named graph) holds."""
        if graph is None:
            return len(self._store)
        return sum(
            1 for _ in self._store.quads_for_pattern(None, None, None, to_ox_graph_name(graph))
        )

    def quads(self, graph: str | None = None) -> Iterator[tuple[Node, Node, Node, str | None]]:
        """Every quad (or those of one named graph) as rdflib terms and a graph IRI."""
        name = to_ox_graph_name(graph) if graph is not None else None
        for quad in self._store.quads_for_pattern(None, None, None, name):
            yield quad_from_ox(quad)

    def graph(self, *graphs: str) -> Graph:
        """The union of some named graphs as one rdflib Graph (all of them if none named)."""
        result = Graph()
        for prefix, ns in PREFIXES.items():
            result.bind(prefix, ns)
        for name in graphs or self.graphs():
            for s, p, o, _ in self.quads(name):
                result.add((s, p, o))
        return result

    def dump(self, path: Path, fmt: ox.RdfFormat) -> None:
        """Write the whole dataset to a file (TriG or N-Quads) as pyoxigraph orders it."""
        self._store.dump(str(path), format=fmt)

    def backup(self, target: Path) -> None:
        """Copy this on-disk store to a new directory (consistent snapshot)."""
        self._store.backup(str(target))

    @property
    def native(self) -> ox.Store:
        """The underlying pyoxigraph store (for the pipeline and benchmarks)."""
        return self._store


def syntax_error(exc: SyntaxError, sparql: str = "") -> CopkgError:
    """pyoxigraph's SPARQL syntax error as a 400 saying where (line, column) and what it found."""
    message = str(exc.msg or exc)
    match = re.match(r"error at (\d+):(\d+): (.*)", message, re.DOTALL)
    if match is None:
        return CopkgError(
            f"SPARQL syntax error: {message}", status=400, problems=[Problem(message)]
        )
    line, column, why = int(match.group(1)), int(match.group(2)), match.group(3)
    found = _found_at(sparql, line, column)
    detail = f"unexpected {found}; {why}" if found else why
    return CopkgError(
        f"SPARQL syntax error at line {line}, column {column}: {detail}",
        status=400,
        problems=[Problem(detail, line=line, column=column)],
    )


def _found_at(sparql: str, line: int, column: int) -> str:
    """What stands at a line and column of the text: a word, a character, or the end."""
    lines = sparql.split("\n")
    if line > len(lines):
        return ""
    rest = lines[line - 1][column - 1 :]
    if not rest.strip():
        return "end of query" if line == len(lines) else "end of line"
    word = re.match(r"\w+|\S", rest.lstrip())
    return repr(word.group()) if word else ""
