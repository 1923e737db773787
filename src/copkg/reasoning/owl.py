"""OWL 2 DL consistency and classification with HermiT (bundled with owlready2)."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import owlready2
from rdflib import Graph, Literal, URIRef
from rdflib.collection import Collection
from rdflib.namespace import OWL, RDF, RDFS, XSD
from rdflib.term import IdentifiedNode, Node

from copkg.errors import CopkgError
from copkg.namespaces import prefixed
from copkg.rdf_io import sorted_terms
from copkg.reasoning import hermit_classes

CHECK_ONTOLOGY = "https://w3id.org/copkg/consistency-check"
JAVA_HINT = "HermiT needs a Java runtime; install default-jre-headless"
#: JVM options for HermiT's short run (read by the java launcher from $JDK_JAVA_OPTIONS): the
#: quick compiler only and one GC thread start it about twice as fast on 2 busy cores.
JVM_OPTIONS = "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC"
_JAVA_OPTIONS = "JDK_JAVA_OPTIONS"

# Datatypes whose literals fall in the value space of a property's range (XSD derivation).
_DERIVED_FROM: dict[URIRef, set[URIRef]] = {
    XSD.decimal: {XSD.decimal, XSD.integer, XSD.nonNegativeInteger, XSD.positiveInteger},
    XSD.integer: {XSD.integer, XSD.nonNegativeInteger, XSD.positiveInteger},
    XSD.nonNegativeInteger: {XSD.nonNegativeInteger, XSD.positiveInteger},
}


class JavaMissingError(CopkgError):
    """No Java runtime to run HermiT."""

    def __init__(self, detail: str = "") -> None:
        super().__init__(f"{JAVA_HINT}{': ' + detail if detail else ''}", status=500)


@dataclass
class ConsistencyResult:
    """Whether the graph is consistent, why not, and the class memberships HermiT added."""

    consistent: bool
    message: str
    inferred: list[tuple[URIRef, URIRef]] = field(default_factory=list)

    def text(self) -> str:
        lines = [self.message]
        lines += [f"  {prefixed(i)} a {prefixed(c)}" for i, c in self.inferred]
        return "\n".join(lines)

    def as_dict(self) -> dict[str, object]:
        return {
            "consistent": self.consistent,
            "message": self.message,
            "inferred": [{"individual": str(i), "class": str(c)} for i, c in self.inferred],
        }


def find_java(environ: Mapping[str, str] | None = None) -> str:
    """The java executable: $JAVA, else $JAVA_HOME/bin/java, else java on the PATH."""
    env = os.environ if environ is None else environ
    candidates = [env.get("JAVA")]
    if env.get("JAVA_HOME"):
        candidates.append(str(Path(env["JAVA_HOME"]) / "bin" / "java"))
    candidates.append(shutil.which("java", path=env.get("PATH")))
    for candidate in candidates:
        if candidate and Path(candidate).is_file() and os.access(candidate, os.X_OK):
            return candidate
    raise JavaMissingError("no java on the PATH, in $JAVA or in $JAVA_HOME/bin")


def check_consistency(
    graphs: Iterable[Graph],
    *,
    java: str | None = None,
    classify: bool = True,
    classes: Path | None = None,
) -> ConsistencyResult:
    """Run HermiT over the union of `graphs` (ontology, vocabularies and data).

    owl:imports are dropped first, so owlready2 and HermiT never fetch anything. With
    `classify=False` HermiT only checks that the union is consistent (owl:Thing satisfiable),
    several times faster than classifying it, and no class memberships are reported; then
    `classes` is a folder where the JVM keeps HermiT's classes between runs (hermit_classes).
    """
    java_exe = java or find_java()
    merged = Graph()
    for graph in graphs:
        for triple in graph:
            if triple[1] != OWL.imports:
                merged.add(triple)
    before = _entailed_types(merged) if classify else {}
    world = owlready2.World()
    try:
        if classify:
            consistent = _run_hermit(world, merged, java_exe)
        else:
            consistent = _check_hermit(world, merged, java_exe, classes)
        if not consistent:
            return ConsistencyResult(False, _explain_inconsistency(merged))
        if not classify:
            return ConsistencyResult(True, f"consistent ({len(merged)} triples)")
        inferred = _new_memberships(world, before)
    finally:
        world.close()
    message = f"consistent ({len(merged)} triples); {len(inferred)} class memberships inferred"
    return ConsistencyResult(True, message, inferred)


def _run_hermit(world: owlready2.World, graph: Graph, java_exe: str) -> bool:
    """Load `graph` into `world` and classify it with HermiT; False when inconsistent."""
    with tempfile.TemporaryDirectory(prefix="copkg-hermit-") as tmp:
        path = Path(tmp) / "merged.nt"
        graph.serialize(path, format="nt", encoding="utf-8")
        with path.open("rb") as handle:
            world.get_ontology(CHECK_ONTOLOGY).load(fileobj=handle, format="ntriples")
    previous_java = owlready2.JAVA_EXE
    owlready2.JAVA_EXE = java_exe
    previous_options = os.environ.get(_JAVA_OPTIONS)
    if previous_options is None:  # the user's own options win
        os.environ[_JAVA_OPTIONS] = JVM_OPTIONS
    try:
        owlready2.sync_reasoner_hermit(
            world, infer_property_values=False, debug=0, ignore_unsupported_datatypes=True
        )
    except owlready2.OwlReadyInconsistentOntologyError:
        return False
    except owlready2.OwlReadyJavaError as exc:
        raise CopkgError(f"HermiT failed: {exc}", status=500) from exc
    except (FileNotFoundError, PermissionError) as exc:
        raise JavaMissingError(str(exc)) from exc
    finally:
        owlready2.JAVA_EXE = previous_java
        if previous_options is None:
            os.environ.pop(_JAVA_OPTIONS, None)
    return True


def _check_hermit(
    world: owlready2.World, graph: Graph, java_exe: str, classes: Path | None = None
) -> bool:
    """Load `graph` into `world` (which refuses what OWL 2 DL does not allow, as _run_hermit
    does) and ask HermiT whether it is consistent, without classifying it: what owlready2's
    sync_reasoner_hermit runs, with `-k` for its `-c -O -D -I`."""
    with tempfile.TemporaryDirectory(prefix="copkg-hermit-") as tmp:
        path = Path(tmp) / "merged.nt"
        graph.serialize(path, format="nt", encoding="utf-8")
        with path.open("rb") as handle:
            world.get_ontology(CHECK_ONTOLOGY).load(fileobj=handle, format="ntriples")
        saved = Path(tmp) / "owl.nt"
        with saved.open("wb") as handle:
            world.save(handle, format="ntriples")
        environ = dict(os.environ)
        if _JAVA_OPTIONS in environ:  # the user's own options win (and no class archive)
            classes = None
        classpath, shared, finish = hermit_classes.prepare(classes, java_exe, JVM_OPTIONS)
        environ.setdefault(_JAVA_OPTIONS, f"{JVM_OPTIONS} {shared}".strip())
        command = [
            java_exe,
            f"-Xmx{owlready2.reasoning.JAVA_MEMORY}M",
            "-cp",
            classpath,
            "org.semanticweb.HermiT.cli.CommandLine",
            "-k",
            "--ignoreUnsupportedDatatypes",
            saved.as_uri(),
        ]
        try:
            done = subprocess.run(
                command, capture_output=True, env=environ, stdin=subprocess.DEVNULL, check=False
            )
        except (FileNotFoundError, PermissionError) as exc:
            finish(False)
            raise JavaMissingError(str(exc)) from exc
        finish(done.returncode == 0 and b"is satisfiable" in done.stdout)
    output = done.stdout + done.stderr
    if done.returncode == 1 and b"Inconsistent ontology" in output:
        return False
    if done.returncode != 0 or b"is satisfiable" not in done.stdout:
        text = output.decode("utf-8", "replace").strip()[-2000:]
        raise CopkgError(f"HermiT failed: {text}", status=500)
    return True


def _superclasses(graph: Graph) -> dict[Node, set[Node]]:
    """Each named class with all its named superclasses (itself included)."""
    direct: dict[Node, set[Node]] = defaultdict(set)
    for sub, sup in graph.subject_objects(RDFS.subClassOf):
        if isinstance(sub, URIRef) and isinstance(sup, URIRef):
            direct[sub].add(sup)
    closure: dict[Node, set[Node]] = {}

    def supers(cls: Node) -> set[Node]:
        if cls not in closure:
            closure[cls] = {cls}
            for parent in direct.get(cls, ()):
                closure[cls] |= supers(parent)
        return closure[cls]

    for cls in list(direct):
        supers(cls)
    return defaultdict(set, closure)


def _entailed_types(graph: Graph) -> dict[Node, dict[Node, str]]:
    """Named types each resource has by assertion, domain or range, up the class hierarchy,
    each with the reason it holds."""
    supers = _superclasses(graph)
    reasons: dict[Node, dict[Node, str]] = defaultdict(dict)

    def add(node: Node, cls: Node, why: str) -> None:
        for sup in supers.get(cls) or {cls}:
            reasons[node].setdefault(sup, why if sup == cls else f"{why}, a {prefixed(cls)}")

    for node, cls in graph.subject_objects(RDF.type):
        if isinstance(cls, URIRef) and not str(cls).startswith(str(OWL)):
            add(node, cls, "asserted")
    for prop, domain in graph.subject_objects(RDFS.domain):
        if isinstance(domain, URIRef):
            for node in graph.subjects(prop, None):
                add(node, domain, f"it has {prefixed(prop)} (domain)")
    for prop, range_ in graph.subject_objects(RDFS.range):
        if isinstance(range_, URIRef) and (prop, RDF.type, OWL.ObjectProperty) in graph:
            for node in graph.objects(None, prop):
                if not isinstance(node, Literal):
                    add(node, range_, f"it is a value of {prefixed(prop)} (range)")
    return reasons


def _disjoint_pairs(graph: Graph) -> set[tuple[Node, Node]]:
    pairs: set[tuple[Node, Node]] = set()
    for a, b in graph.subject_objects(OWL.disjointWith):
        pairs.add((a, b))
    for axiom in graph.subjects(RDF.type, OWL.AllDisjointClasses):
        head = graph.value(axiom, OWL.members)
        if head is None:
            continue
        members = list(Collection(graph, head))
        pairs |= {(a, b) for i, a in enumerate(members) for b in members[i + 1 :]}
    return pairs


def _explain_inconsistency(graph: Graph) -> str:
    """HermiT says only 'inconsistent': look for the usual causes to say where."""
    causes: list[str] = []
    types = _entailed_types(graph)
    for a, b in sorted(_disjoint_pairs(graph)):
        for node, held in sorted(types.items()):
            if a in held and b in held:
                causes.append(
                    f"{prefixed(node)} is both {prefixed(a)} ({held[a]}) and {prefixed(b)} "
                    f"({held[b]}), which are disjoint"
                )
    for prop in sorted_terms(graph.subjects(RDF.type, OWL.FunctionalProperty)):
        if (prop, RDF.type, OWL.DatatypeProperty) not in graph:
            continue
        for node in sorted_terms(set(graph.subjects(prop, None))):
            values = {
                v.toPython()
                for v in graph.objects(node, prop)
                if isinstance(v, Literal | IdentifiedNode)
            }
            if len(values) > 1:
                causes.append(
                    f"{prefixed(node)} has {len(values)} values of the functional property "
                    f"{prefixed(prop)}"
                )
    for prop, datatype in sorted(graph.subject_objects(RDFS.range)):
        if not isinstance(datatype, URIRef) or not str(datatype).startswith(str(XSD)):
            continue
        accepted = _DERIVED_FROM.get(datatype, {datatype})
        for node, value in sorted(graph.subject_objects(prop)):
            if isinstance(value, Literal) and (
                (value.datatype or (RDF.langString if value.language else XSD.string))
                not in accepted
                or value.ill_typed
            ):
                causes.append(
                    f"{prefixed(node)} {prefixed(prop)} {value.n3()}: not a valid "
                    f"{prefixed(datatype)}, the range of {prefixed(prop)}"
                )
    if not causes:
        causes.append(
            "no simple cause found: look for individuals whose types (asserted or implied by "
            "domains, ranges and defined classes) are disjoint, and for cardinality restrictions"
        )
    return "inconsistent: " + "; ".join(causes)


def _new_memberships(
    world: owlready2.World, before: Mapping[Node, Mapping[Node, str]]
) -> list[tuple[URIRef, URIRef]]:
    """Named classes HermiT put individuals in that assertions, domains and ranges did not."""
    found: set[tuple[URIRef, URIRef]] = set()
    for node in before:
        if not isinstance(node, URIRef):
            continue
        entity = world[str(node)]
        if not isinstance(entity, owlready2.Thing):
            continue
        for cls in entity.is_a:
            if isinstance(cls, owlready2.ThingClass):
                iri = URIRef(cls.iri)
                if iri not in before[node] and iri != OWL.Thing:
                    found.add((node, iri))
    return sorted(found)
