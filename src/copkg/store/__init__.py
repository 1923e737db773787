"""The Store protocol every query goes through (opening a build is copkg.pipeline.open's job)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Protocol, runtime_checkable

from rdflib.term import Node

from copkg.store.results import QueryResult

__all__ = ["QueryResult", "Store"]


@runtime_checkable
class Store(Protocol):
    """A dataset of named graphs that answers SPARQL; embedded or remote."""

    def query(
        self,
        sparql: str,
        *,
        bindings: Mapping[str, Node] | None = None,
        default_graphs: Sequence[str] | None = None,
        named_graphs: Sequence[str] | None = None,
        base: str | None = None,
    ) -> QueryResult: ...

    def update(self, sparql: str) -> None: ...

    def replace_graph(self, graph: str, triples: Iterable[tuple[Node, Node, Node]]) -> None: ...

    def load_dataset(self, path: Path) -> None: ...

    def graphs(self) -> list[str]: ...

    def quad_count(self, graph: str | None = None) -> int: ...
