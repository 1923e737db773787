"""The Store protocol every query goes through, and open_store(settings)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from rdflib.term import Node

from copkg.store.results import QueryResult

if TYPE_CHECKING:
    from copkg.config import Settings

__all__ = ["QueryResult", "Store", "open_store"]


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
    ) -> QueryResult: ...

    def update(self, sparql: str) -> None: ...

    def replace_graph(self, graph: str, triples: Iterable[tuple[Node, Node, Node]]) -> None: ...

    def load_dataset(self, path: Path) -> None: ...

    def graphs(self) -> list[str]: ...

    def quad_count(self, graph: str | None = None) -> int: ...


def open_store(settings: Settings) -> Store:
    """The store the settings point at: the build's on-disk store unless store_url names another.

    `store_url` may be a directory of an on-disk pyoxigraph store, `memory:` for an empty
    in-memory one, or the query URL of a SPARQL endpoint (http(s)), used read-only.
    """
    from copkg.store.embedded import OxigraphStore

    options = {
        "timeout": settings.query_timeout,
        "max_rows": settings.max_rows,
        "allowed_service_endpoints": settings.allowed_service_endpoints,
    }
    url = settings.store_url
    if url is None:
        from copkg.pipeline import load_build

        return load_build(settings, **options)
    if url == "memory:":
        return OxigraphStore(**options)
    if url.startswith(("http://", "https://")):
        from copkg.store.remote import SparqlEndpointStore

        return SparqlEndpointStore(url, **options)
    path = Path(url.removeprefix("file://")).expanduser()
    return OxigraphStore.open_read_only(path, **options)
