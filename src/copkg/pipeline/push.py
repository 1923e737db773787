"""`copkg push`: load the build into a remote SPARQL store, one named graph at a time, and check
that the store then holds what the build holds.

A push never leaves half a graph served: with an update URL each graph is written into a
temporary graph and moved into place by one MOVE; with the Graph Store Protocol alone, each
graph is one PUT. And a push killed between graphs is never taken for a build: the push first
records on the server (in PUSH_MANIFEST_GRAPH) that a push of its build began, and only once
every graph is in place and counted records the build's id and each graph's triples.
`check_pushed` (run by `serve --store` and `query --store`) refuses a store whose record says a
push did not finish, or whose counts differ from it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import pyoxigraph as ox

from copkg.config import Settings
from copkg.errors import CopkgError, Problem
from copkg.namespaces import PUSH_MANIFEST_GRAPH, PUSH_TMP_GRAPH, PUSH_TMP_PREFIX
from copkg.pipeline import Manifest, load_build
from copkg.store.embedded import OxigraphStore
from copkg.store.remote import SparqlEndpointStore


@dataclass
class PushReport:
    """What was pushed: the triples of each graph, and graphs the server has besides."""

    target: str
    method: str
    graphs: dict[str, int] = field(default_factory=dict)
    dropped: list[str] = field(default_factory=list)
    others: list[str] = field(default_factory=list)
    replaced: list[str] = field(default_factory=list)  # moved again, not atomically

    @property
    def triples(self) -> int:
        return sum(self.graphs.values())

    @property
    def notes(self) -> list[str]:
        """What the push did besides replacing each graph, a line each."""
        return [f"dropped {graph} (not in the build)" for graph in self.dropped] + [
            f"dropped {graph} and moved it in again: the server had kept its numbers in their "
            "old datatypes"
            for graph in self.replaced
        ]


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
    try:
        _record(target, manifest.build_id, None)  # a push began: not a build until it ends
        _drop_temporary_graphs(target)  # of a push killed earlier
    except CopkgError as exc:
        raise _stopped(exc, str(PUSH_MANIFEST_GRAPH), 0, len(names)) from exc
    numbers: dict[tuple[str, str], int] = {}  # (graph, datatype): numeric literals sent
    for number, graph in enumerate(names):
        triples = _triples(build, graph)
        for triple in triples:
            if isinstance(triple.object, ox.Literal) and triple.object.datatype.value in NUMERIC:
                key = (graph, triple.object.datatype.value)
                numbers[key] = numbers.get(key, 0) + 1
        try:
            if target.update_url is not None:
                # PUSH_TMP_GRAPH: a name queries leave out before any listing has seen it
                target.put_graph(PUSH_TMP_GRAPH, triples)
                target.move_graph(PUSH_TMP_GRAPH, graph)
            else:  # one PUT: the graph as it was, or as it is to be
                target.put_graph(graph, triples)
        except CopkgError as exc:
            raise _stopped(exc, graph, number, len(names)) from exc
        report.graphs[graph] = len(triples)
        if progress is not None:
            progress(graph, len(triples))
    if target.update_url is not None:
        report.replaced = _replace_kept_numbers(target, build, numbers)
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
    try:
        _record(target, manifest.build_id, dict(report.graphs))  # as verified
    except CopkgError as exc:
        raise _stopped(exc, str(PUSH_MANIFEST_GRAPH), len(names), len(names)) from exc
    return report


VOID = "http://rdfs.org/ns/void#"
RDF_TYPE = ox.NamedNode("http://www.w3.org/1999/02/22-rdf-syntax-ns#type")
DCTERMS_IDENTIFIER = ox.NamedNode("http://purl.org/dc/terms/identifier")
RDFS_COMMENT = ox.NamedNode("http://www.w3.org/2000/01/rdf-schema#comment")
XSD_INTEGER = ox.NamedNode("http://www.w3.org/2001/XMLSchema#integer")
UNFINISHED = "a push of this build began and has not finished"


XSD = "http://www.w3.org/2001/XMLSchema#"
#: The datatypes SPARQL's isNumeric() holds true for.
NUMERIC = frozenset(
    XSD + name
    for name in ("integer", "decimal", "float", "double", "long", "int", "short", "byte",
                 "nonPositiveInteger", "negativeInteger", "nonNegativeInteger", "positiveInteger",
                 "unsignedLong", "unsignedInt", "unsignedShort", "unsignedByte")
)  # fmt: skip


def _triples(build: OxigraphStore, graph: str) -> list[ox.Triple]:
    return [
        ox.Triple(q.subject, q.predicate, q.object)
        for q in build.native.quads_for_pattern(None, None, None, ox.NamedNode(graph))
    ]


def _replace_kept_numbers(
    target: SparqlEndpointStore, build: OxigraphStore, sent: dict[tuple[str, str], int]
) -> list[str]:
    """Move again, after dropping them on their own, the graphs in which the server kept a
    number in another datatype than the one sent; the graphs moved again.

    Virtuoso 7.2 keys a number by its value: a MOVE (or a DROP and an INSERT in one request)
    that replaces "5"^^xsd:positiveInteger (say, from a bulk load of copkg.nq) by
    "5"^^xsd:integer keeps the old datatype. Dropped in a request of its own first, the graph
    takes the new one, at the cost of a moment without the graph."""
    rows = target.select(
        "SELECT ?g ?d (COUNT(*) AS ?n) "
        "WHERE { GRAPH ?g { ?s ?p ?o FILTER (isNumeric(?o)) } } GROUP BY ?g (DATATYPE(?o) AS ?d)"
    )
    held = {  # Virtuoso's isNumeric() also holds for its booleans
        (str(row["g"]), str(row["d"])): int(str(row["n"]))
        for row in rows
        if str(row.get("d")) in NUMERIC
    }
    pushed = set(build.graphs())
    graphs = sorted({graph for graph, _ in sent} | {graph for graph, _ in held if graph in pushed})
    wrong = [
        graph
        for graph in graphs
        if {d: n for (g, d), n in held.items() if g == graph}
        != {d: n for (g, d), n in sent.items() if g == graph}
    ]
    for graph in wrong:
        target.put_graph(PUSH_TMP_GRAPH, _triples(build, graph))
        target.drop_graph(graph)
        target.move_graph(PUSH_TMP_GRAPH, graph)
    return wrong


def _record(target: SparqlEndpointStore, build_id: str, counts: dict[str, int] | None) -> None:
    """Write the push record in one request: the build's id, and each graph's triples once the
    push is complete (`counts`), or that the push has not finished (None)."""
    record = ox.NamedNode(str(PUSH_MANIFEST_GRAPH))
    triples = [
        ox.Triple(record, RDF_TYPE, ox.NamedNode(VOID + "Dataset")),
        ox.Triple(record, DCTERMS_IDENTIFIER, ox.Literal(build_id)),
    ]
    if counts is None:
        triples.append(ox.Triple(record, RDFS_COMMENT, ox.Literal(UNFINISHED)))
    else:
        total = ox.Literal(str(sum(counts.values())), datatype=XSD_INTEGER)
        triples.append(ox.Triple(record, ox.NamedNode(VOID + "triples"), total))
        for graph, count in sorted(counts.items()):
            triples.append(ox.Triple(record, ox.NamedNode(VOID + "subset"), ox.NamedNode(graph)))
            triples.append(
                ox.Triple(
                    ox.NamedNode(graph),
                    ox.NamedNode(VOID + "triples"),
                    ox.Literal(str(count), datatype=XSD_INTEGER),
                )
            )
    target.put_graph(str(PUSH_MANIFEST_GRAPH), triples)


def _drop_temporary_graphs(target: SparqlEndpointStore) -> None:
    if target.update_url is None:
        return  # without an update URL a push writes no temporary graph
    rows = target.select(
        "SELECT DISTINCT ?g WHERE { GRAPH ?g { ?s ?p ?o } "
        f'FILTER (STRSTARTS(STR(?g), "{PUSH_TMP_PREFIX}")) }}'
    )
    for row in rows:
        target.drop_graph(str(row["g"]))


def pushed_record(store: SparqlEndpointStore) -> tuple[str, dict[str, int] | None] | None:
    """The push record on a store: (build id, triples per graph, or None for a push that has
    not finished), or None when no `copkg push` wrote to it."""
    record = f"<{PUSH_MANIFEST_GRAPH}>"
    rows = store.select(
        f"SELECT ?id ?total WHERE {{ GRAPH {record} {{ {record} <{DCTERMS_IDENTIFIER.value}> ?id "
        f"OPTIONAL {{ {record} <{VOID}triples> ?total }} }} }}"
    )
    if not rows or "id" not in rows[0]:
        return None
    build_id = str(rows[0]["id"])
    if "total" not in rows[0]:
        return build_id, None
    rows = store.select(
        f"SELECT ?g ?n WHERE {{ GRAPH {record} {{ {record} <{VOID}subset> ?g . "
        f"?g <{VOID}triples> ?n }} }}"
    )
    return build_id, {str(row["g"]): int(str(row["n"])) for row in rows}


def check_pushed(store: SparqlEndpointStore) -> str | None:
    """Refuse (CopkgError 500, saying why) a store whose push record says a push did not
    finish or whose graphs no longer hold the counts it recorded; the pushed build's id, or None
    for a store no `copkg push` wrote to."""
    record = pushed_record(store)
    if record is None:
        return None
    build_id, counts = record
    where = store.query_url
    if counts is None:
        raise CopkgError(
            f"the store at {where} is incomplete: a `copkg push` of build {build_id} began and "
            "did not finish (stopped or killed part-way), so some graphs may be of another "
            "build; run `copkg push` again",
            status=500,
        )
    held = store.graph_counts()
    problems = [
        Problem(f"{graph}: the store holds {held.get(graph, 0)} triples, the push left {count}")
        for graph, count in sorted(counts.items())
        if held.get(graph, 0) != count
    ]
    if problems:
        raise CopkgError(
            f"the store at {where} does not hold what the `copkg push` of build {build_id} "
            f"left there ({len(problems)} of {len(counts)} graphs differ): it was changed since "
            "or a write was cut short; run `copkg push` again",
            status=500,
            problems=problems,
        )
    return build_id


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
