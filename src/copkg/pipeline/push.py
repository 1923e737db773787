"""`copkg push`: load the build into a remote SPARQL store, one named graph at a time, and check
that the store then holds what the build holds."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import pyoxigraph as ox

from copkg.config import Settings
from copkg.errors import CopkgError, Problem
from copkg.pipeline import Manifest, load_build
from copkg.store.remote import SparqlEndpointStore


@dataclass
class PushReport:
    """What was pushed: the triples of each graph, and graphs the server has besides."""

    target: str
    method: str
    graphs: dict[str, int] = field(default_factory=dict)
    dropped: list[str] = field(default_factory=list)
    others: list[str] = field(default_factory=list)

    @property
    def triples(self) -> int:
        return sum(self.graphs.values())


def push(
    settings: Settings,
    target: SparqlEndpointStore,
    *,
    prune: bool = False,
    progress: Callable[[str, int], None] | None = None,
) -> PushReport:
    """Replace each named graph of the build on `target` (GSP PUT, else DROP + INSERT DATA),
    then count the triples of each graph on the server and compare with the build.

    Each graph is replaced whole, so running it again gives the same store. `prune` also drops
    the server's graphs that the build does not have. Any failure raises CopkgError saying how
    far the push went; a push is only reported when the counts agree.
    """
    if target.update_url is None and target.graph_store_url is None:
        raise CopkgError(
            f"pushing to {target.query_url} needs a way to write: give --graph-store-url (the "
            "Graph Store Protocol URL, e.g. .../store for Oxigraph, .../data for Fuseki) or "
            "--update-url (the SPARQL Update URL)",
            status=400,
        )
    build = load_build(settings, rebuild="stale")
    manifest = Manifest.read(settings.build_dir)
    method = "Graph Store Protocol PUT" if target.graph_store_url else "SPARQL Update"
    report = PushReport(target.query_url, method)
    names = build.graphs()
    for number, graph in enumerate(names):
        triples = [
            ox.Triple(q.subject, q.predicate, q.object)
            for q in build.native.quads_for_pattern(None, None, None, ox.NamedNode(graph))
        ]
        try:
            target.put_graph(graph, triples)
        except CopkgError as exc:
            raise _stopped(exc, graph, number, len(names)) from exc
        report.graphs[graph] = len(triples)
        if progress is not None:
            progress(graph, len(triples))
    counts = target.graph_counts()
    extra = sorted(set(counts) - set(names))
    if prune:
        for graph in extra:
            target.drop_graph(graph)
        report.dropped = extra
        counts = target.graph_counts()
    else:
        report.others = extra
    _verify(report, manifest, counts)
    return report


def _stopped(exc: CopkgError, graph: str, done: int, total: int) -> CopkgError:
    return CopkgError(
        f"the push stopped at graph {graph} ({done} of {total} graphs pushed): {exc.message}; "
        "the store is incomplete: run `copkg push` again (each graph is replaced whole)",
        status=exc.status,
        problems=exc.problems,
        headers=exc.headers,
    )


def _verify(report: PushReport, manifest: Manifest, counts: dict[str, int]) -> None:
    """Each pushed graph holds on the server what the build says it holds."""
    problems = []
    for graph, sent in sorted(report.graphs.items()):
        expected = manifest.graphs.get(graph, sent)
        held = counts.get(graph, 0)
        if held != expected or sent != expected:
            problems.append(
                Problem(
                    f"{graph}: the server holds {held} triples, the build {expected} ({sent} sent)"
                )
            )
    if problems:
        raise CopkgError(
            f"the push to {report.target} did not give the build's graphs: run `copkg push` "
            "again, and check that the server keeps the triples as sent",
            status=502,
            problems=problems,
        )
