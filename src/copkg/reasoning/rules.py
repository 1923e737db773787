"""Rule materialisation: the SPARQL CONSTRUCT rules of rules/*.rq, run to a fixpoint.

Why SPARQL CONSTRUCT rather than SHACL rules or SWRL: every copkg user already reads SPARQL,
the rules run on the same engine as every query (pyoxigraph, fast at 10^6 triples), they can
compute the explanation nodes they produce (rdf:Statement with copkg:derivedBy and
copkg:usedFact), and they are plain files a researcher can read, test and extend. OWL reasoning
(HermiT, for consistency and defined classes) lives in copkg.reasoning.owl.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyoxigraph as ox
import yaml
from rdflib import Graph, Literal, URIRef, Variable
from rdflib.namespace import DCTERMS, RDF, RDFS, SKOS
from rdflib.term import Node

from copkg.errors import CopkgError, Problem
from copkg.namespaces import COPKG, INFERENCE_GRAPH, PREFIXES, RULES
from copkg.reasoning.rule_shapes import Pattern, analyse
from copkg.store import Store
from copkg.store.embedded import OxigraphStore
from copkg.store.scan import check_remote_calls
from copkg.store.terms import from_ox, triples_to_quads

HEADER_LINE = re.compile(r"^#\+ ?(.*)$")
MAX_ROUNDS = 20
#: Derivations in a round from which the rules that can gain nothing are skipped in the next
#: rounds: reading which rule reads which (rdflib's parser, ~60 ms a rule) costs more below.
SCHEDULE_FROM = 10_000


@dataclass(frozen=True)
class Rule:
    """One inference rule: a SPARQL CONSTRUCT query with a `#+` YAML header."""

    name: str
    label: str
    description: str
    text: str
    path: Path

    @property
    def iri(self) -> URIRef:
        return RULES[self.name]

    def describe(self) -> Iterable[tuple[Node, Node, Node]]:
        """The rule as data, so explanations can link to it."""
        yield self.iri, RDF.type, COPKG.InferenceRule
        yield self.iri, RDFS.label, Literal(self.label, lang="en")
        yield self.iri, SKOS.definition, Literal(self.description, lang="en")
        yield self.iri, DCTERMS.source, Literal(f"rules/{self.path.name}")
        yield self.iri, RDF.value, Literal(self.text)


def parse_rule(path: Path) -> Rule:
    """Read one rule file; a missing header or a query that is not CONSTRUCT is an error."""
    text = path.read_text(encoding="utf-8")
    header = [m.group(1) for line in text.splitlines() if (m := HEADER_LINE.match(line))]
    try:
        meta: Any = yaml.safe_load("\n".join(header)) or {}
    except yaml.YAMLError as exc:
        raise CopkgError(
            f"bad rule header in {path.name}", problems=[Problem(str(exc), file=str(path))]
        ) from exc
    if not isinstance(meta, dict) or "label" not in meta:
        raise CopkgError(
            f"rule {path.name} needs a '#+ label:' header",
            problems=[
                Problem("add '#+ label: ...' and '#+ description: ...'", file=str(path), line=1)
            ],
        )
    if "CONSTRUCT" not in text.upper():
        raise CopkgError(
            f"rule {path.name} is not a CONSTRUCT query",
            problems=[Problem("a rule must be a SPARQL CONSTRUCT query", file=str(path))],
        )
    return Rule(
        name=path.stem,
        label=str(meta["label"]),
        description=" ".join(str(meta.get("description", "")).split()),
        text=text,
        path=path,
    )


def load_rules(rules_dir: Path) -> list[Rule]:
    """Every rules/*.rq file, in name order."""
    return [parse_rule(p) for p in sorted(Path(rules_dir).glob("*.rq"))]


def materialise(store: OxigraphStore, rules: Path | Sequence[Rule]) -> Graph:
    """Run the rules to a fixpoint; the result (with the rules' descriptions) is also left in
    the store's inference graph, so later rounds and later queries see it."""
    rules = load_rules(rules) if isinstance(rules, Path) else list(rules)
    fixpoint(store, rules)
    inferred = Graph()
    add = inferred.add
    graph = ox.NamedNode(str(INFERENCE_GRAPH))
    for q in store.native.quads_for_pattern(None, None, None, graph):
        add((from_ox(q.subject), from_ox(q.predicate), from_ox(q.object)))
    return inferred


def materialise_native(store: OxigraphStore, rules: Path | Sequence[Rule]) -> int:
    """Run the rules to a fixpoint into the store's inference graph (with the rules'
    descriptions), as materialise() does, without copying the result out of the store;
    return how many triples the inference graph holds."""
    rules = load_rules(rules) if isinstance(rules, Path) else list(rules)
    return fixpoint(store, rules)


def fixpoint(store: OxigraphStore, rules: Sequence[Rule]) -> int:
    """Run the rules to a fixpoint on a pyoxigraph store; return how many triples the
    inference graph then holds (the derivations and the rules' descriptions).

    Each round runs the rules on the store as it is and adds what is new to the inference
    graph (whose earlier content the first new triples replace, as replace_graph does). Once a
    round derived SCHEDULE_FROM triples, a rule runs again only if a rule that derived
    something new in the last round makes triples its body may match (see _readers):
    otherwise its answer is the last.
    """
    native: ox.Store = store.native
    graph = ox.NamedNode(str(INFERENCE_GRAPH))
    readers: list[set[int]] | None = None
    known: set[ox.Triple] = set()
    due: Sequence[int] = range(len(rules))
    for round_ in range(MAX_ROUNDS):
        fresh: dict[ox.Triple, None] = {}  # ordered: a deterministic insertion order
        derived_new: set[int] = set()
        for index in due:
            before = len(fresh)
            for triple in _run_rule_native(store, rules[index]):
                if triple not in known:
                    fresh[triple] = None
            if len(fresh) > before:
                derived_new.add(index)
        if not fresh:
            break
        if readers is None and len(fresh) >= SCHEDULE_FROM:
            readers = _readers(rules)
        if readers is not None:
            due = sorted(set().union(*(readers[i] for i in derived_new)))
        if round_ == 0 and next(native.quads_for_pattern(None, None, None, graph), None):
            native.remove_graph(graph)  # stale inferences the first round may have read
            due = range(len(rules))
        known.update(fresh)
        native.extend(ox.Quad(t.subject, t.predicate, t.object, graph) for t in fresh)
    else:
        raise CopkgError(f"the rules did not reach a fixpoint in {MAX_ROUNDS} rounds", status=500)
    if not known:
        native.remove_graph(graph)
    for rule in rules:
        for quad in triples_to_quads(rule.describe(), INFERENCE_GRAPH):
            known.add(ox.Triple(quad.subject, quad.predicate, quad.object))
            native.add(quad)
    return len(known)


_NEGATED_PATH = re.compile(r"!\s*[^=\s]")
_EXISTS = re.compile(r"\bEXISTS\b", re.IGNORECASE)
_FILTER_EXISTS = re.compile(r"\bFILTER\s*(?:NOT\s+)?EXISTS\b", re.IGNORECASE)
#: IRIs, strings and comments: what is not SPARQL keywords or punctuation
_NOT_CODE = re.compile(r'<[^<>"{}|^`\\\s]*>|"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|#[^\n]*')


def _opaque(rule: Rule, shape: Any) -> bool:
    """Whether a rule's patterns may be more than rule_shapes read: an unsupported rule, a
    `!` that may be a negated property set, an EXISTS outside a FILTER (as in a BIND)."""
    text = _NOT_CODE.sub(" ", rule.text)
    exists = len(_EXISTS.findall(text)) > len(_FILTER_EXISTS.findall(text))
    return bool(shape.unsupported) or bool(_NEGATED_PATH.search(text)) or exists


def _readers(rules: Sequence[Rule]) -> list[set[int]]:
    """For each rule, the rules whose body may match a triple it derives: a pattern of the
    body (negated ones too) and a triple of the template agree on every constant. A rule the
    analysis cannot read, a property path with a negated property set (or any `!` that could
    be one) or an EXISTS outside a FILTER is read by, and reads, every rule."""
    shapes = [analyse(rule.name, rule.text) for rule in rules]
    everyone = set(range(len(rules)))

    def agree(want: Any, got: Any) -> bool:
        wild = (Variable, ox.BlankNode)
        return isinstance(want, wild) or isinstance(got, wild) or want == got

    def may_match(pattern: Pattern, made: tuple[Any, Any, Any]) -> bool:
        if pattern.predicate is None:  # a property path: any of its IRIs
            return (
                not pattern.path_iris
                or not isinstance(made[1], ox.NamedNode)
                or (made[1].value in pattern.path_iris)
            )
        return all(
            agree(w, g)
            for w, g in zip((pattern.subject, pattern.predicate, pattern.object), made, strict=True)
        )

    opaque = {
        i for i, (rule, shape) in enumerate(zip(rules, shapes, strict=True)) if _opaque(rule, shape)
    }
    readers = []
    for i, shape in enumerate(shapes):
        if i in opaque:
            readers.append(everyone)
            continue
        readers.append(
            {
                j
                for j, other in enumerate(shapes)
                if j in opaque
                or any(may_match(p, t) for p in other.patterns for t in shape.template)
            }
        )
    return readers


def _run_rule_native(store: Any, rule: Rule) -> Iterable[ox.Triple]:
    """The triples one rule constructs, as pyoxigraph triples (what store.query would give)."""
    try:
        check_remote_calls(rule.text, store.allowed_service_endpoints)
        return list(
            store.native.query(rule.text, use_default_graph_as_union=True, prefixes=PREFIXES)
        )
    except CopkgError as exc:
        message = exc.message
    except SyntaxError as exc:
        message = f"SPARQL syntax error: {exc.msg or exc}"
    except (OSError, RuntimeError, ValueError, TypeError) as exc:
        message = f"query failed: {exc}"
    raise CopkgError(
        f"rule {rule.name} failed: {message}",
        status=500,
        problems=[Problem(message, file=str(rule.path))],
    )


def apply_rules(store: Store, extra: Graph, rules: Path | Sequence[Rule]) -> Graph:
    """The inferences the rules draw from the store's facts plus some hypothetical ones.

    The store is left untouched: facts are copied into a scratch in-memory store."""
    scratch = OxigraphStore()
    native = scratch.native
    source = getattr(store, "native", None)
    inference = ox.NamedNode(str(INFERENCE_GRAPH))
    if source is not None:
        native.extend(
            q for q in source.quads_for_pattern(None, None, None) if q.graph_name != inference
        )
    elif callable(getattr(store, "facts", None)):  # a remote store: every fact, no row limit
        scratch.add_graph("urn:copkg:facts", store.facts(without=[inference.value]))  # type: ignore[attr-defined]
    else:
        everything = store.query("CONSTRUCT { ?s ?p ?o } WHERE { ?s ?p ?o }")
        scratch.add_graph("urn:copkg:facts", everything.triples)
    native.extend(triples_to_quads(extra, "urn:copkg:hypothesis"))
    return materialise(scratch, rules)
