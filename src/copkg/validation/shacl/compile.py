"""SHACL shapes as SPARQL: the focus nodes of a shape, and whether a node fails a shape."""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable
from typing import cast

from rdflib import URIRef
from rdflib.namespace import RDF, RDFS, XSD
from rdflib.term import Node

from copkg.namespaces import SH
from copkg.validation.shacl.shapes import Shape, unsupported

_MAX_DEPTH = 8


def merge_prologues(*prologues: str, shape: Node) -> str:
    """One PREFIX prologue; two meanings of one prefix are refused."""
    seen: dict[str, str] = {}
    for line in (line for p in prologues for line in p.splitlines() if line.strip()):
        prefix = line.split()[1]
        if seen.setdefault(prefix, line) != line:
            raise unsupported(f"two namespaces for the prefix {prefix}", shape)
    return "\n".join(sorted(seen.values()))


class Compiler:
    """SPARQL text for shapes; fresh variable names across one engine run.

    `subclasses(c)` gives `c` and its subclasses in the data (rdfs:subClassOf*): SHACL
    instances of `c` are then found with one rdf:type look-up, not a property path a node.
    """

    def __init__(self, subclasses: Callable[[Node], list[Node]]) -> None:
        self._counter = itertools.count()
        self._subclasses = subclasses

    def instance(self, x: str, cls: Node) -> str:
        """A pattern: `x` is a SHACL instance of `cls` (rdf:type/rdfs:subClassOf* cls)."""
        t, classes = self.var(), self._subclasses(cls)
        if not all(isinstance(c, URIRef) for c in classes):  # VALUES cannot hold blank nodes
            return f"{x} {RDF.type.n3()}/{RDFS.subClassOf.n3()}* {cls.n3()} ."
        values = " ".join(c.n3() for c in classes)
        return f"VALUES {t} {{ {values} }} {x} {RDF.type.n3()} {t} ."

    def var(self) -> str:
        return f"?_v{next(self._counter)}"

    def focus(self, shape: Shape) -> tuple[str, str | None, str]:
        """The focus nodes of a top-level shape as (a pattern binding ?this to each once,
        a FILTER testing a bound ?this or None when only the pattern will do, the prologue)."""
        parts = [f"{{ {self.instance('?this', c)} }}" for c in shape.classes]
        if shape.nodes:
            parts.append(f"{{ VALUES ?this {{ {' '.join(n.n3() for n in shape.nodes)} }} }}")
        parts += [f"{{ ?this {p.n3()} {self.var()} }}" for p in shape.subjects_of]
        parts += [f"{{ {self.var()} {p.n3()} ?this }}" for p in shape.objects_of]
        queries = [q for q in shape.target_queries if not q.deactivated]
        parts += [f"{{ {q.select} }}" for q in queries]
        union = " UNION ".join(parts) or "{ FILTER (false) }"
        enum = f"{{ SELECT DISTINCT ?this WHERE {{ {union} }} }}"
        test = None if queries else f"FILTER EXISTS {{ {union} }}"
        prologue = merge_prologues(*(q.prologue for q in queries), shape=shape.node)
        return enum, test, prologue

    def fails(self, shape: Shape, x: str, depth: int = 0) -> str:
        """A SPARQL expression: whether the node `x` fails `shape` (without its targets)."""
        if depth > _MAX_DEPTH:
            raise unsupported("shapes nested this deep (recursive shapes?)", shape.node)
        if shape.deactivated:
            return "false"
        parts: list[str] = []
        path = shape.path
        if path is None:
            parts += [self.value(key, rule, x, depth) for key, rule in shape.values]
        else:
            for key, rule in shape.values:
                v = self.var()
                parts.append(
                    f"EXISTS {{ {path.pattern(x, v)} FILTER ({self.value(key, rule, v, depth)}) }}"
                )
            parts += self._nested_counts(shape, x, depth)
        parts += [self.fails(p, x, depth + 1) for p in shape.properties]
        if shape.sparql:
            raise unsupported("sh:sparql in a shape used by another shape", shape.node)
        return "(" + " || ".join(parts) + ")" if parts else "false"

    def _nested_counts(self, shape: Shape, x: str, depth: int) -> list[str]:
        path = shape.path
        assert path is not None
        parts = []
        a, b = self.var(), self.var()
        if shape.min_count:
            if shape.min_count > 1:
                raise unsupported("sh:minCount over 1 in a shape used by another", shape.node)
            parts.append(f"NOT EXISTS {{ {path.pattern(x, a)} }}")
        if shape.max_count is not None:
            if shape.max_count == 0:
                parts.append(f"EXISTS {{ {path.pattern(x, a)} }}")
            elif shape.max_count == 1:
                parts.append(
                    f"EXISTS {{ {path.pattern(x, a)} {path.pattern(x, b)} "
                    f"FILTER (!sameTerm({a}, {b})) }}"
                )
            else:
                raise unsupported("sh:maxCount over 1 in a shape used by another", shape.node)
        if shape.unique_lang:
            parts.append(
                f"EXISTS {{ {path.pattern(x, a)} {path.pattern(x, b)} FILTER (!sameTerm({a}, {b})"
                f' && LANG({a}) != "" && LCASE(LANG({a})) = LCASE(LANG({b}))) }}'
            )
        if shape.less_or_equal:
            raise unsupported("sh:lessThanOrEquals in a shape used by another", shape.node)
        if shape.qualified is not None:
            conforms = f"!({self.fails(shape.qualified, a, depth + 1)})"
            if shape.qualified_min:
                if shape.qualified_min > 1:
                    raise unsupported("sh:qualifiedMinCount over 1 in a nested shape", shape.node)
                parts.append(f"NOT EXISTS {{ {path.pattern(x, a)} FILTER ({conforms}) }}")
            if shape.qualified_max is not None:
                if shape.qualified_max > 0:
                    raise unsupported("sh:qualifiedMaxCount over 0 in a nested shape", shape.node)
                parts.append(f"EXISTS {{ {path.pattern(x, a)} FILTER ({conforms}) }}")
        return parts

    def value(self, key: URIRef, rule: object, v: str, depth: int = 0) -> str:
        """A SPARQL expression: whether the stored value `v` fails one value constraint."""
        if key == SH.datatype:
            return _datatype(rule, v)  # type: ignore[arg-type]
        if key == SH["class"]:
            return f"NOT EXISTS {{ {self.instance(v, rule)} }}"  # type: ignore[arg-type]
        if key == SH.nodeKind:
            return _node_kind(rule, v)  # type: ignore[arg-type]
        if key == SH.pattern:
            pattern, flags = cast(tuple[str, str], rule)  # as shapes.py reads sh:pattern
            return f"(isBlank({v}) || !REGEX(STR({v}), {_string(pattern)}, {_string(flags)}))"
        if key == SH["in"]:
            same = " || ".join(f"sameTerm({v}, {m.n3()})" for m in rule)  # type: ignore[attr-defined]
            return f"!({same})" if same else "true"
        if key in (SH.maxLength, SH.minLength):
            op = ">" if key == SH.maxLength else "<"
            return f"(isBlank({v}) || STRLEN(STR({v})) {op} {rule})"
        if key == SH.languageIn:
            return _language_in(rule, v)  # type: ignore[arg-type]
        shapes = rule if isinstance(rule, list) else [rule]
        fails = [self.fails(s, v, depth + 1) for s in shapes]  # type: ignore[arg-type]
        if key == SH["or"]:
            return "(" + " && ".join(fails) + ")" if fails else "true"
        if key == SH["and"]:
            return "(" + " || ".join(fails) + ")" if fails else "false"
        return f"!{fails[0]}"  # sh:not


def _datatype(datatype: URIRef, v: str) -> str:
    if datatype == RDFS.Literal:
        return f"!isLiteral({v})"
    if datatype == RDF.langString:
        return f'!(isLiteral({v}) && LANG({v}) != "")'
    if datatype == RDFS.Datatype:
        return f'!(isLiteral({v}) && LANG({v}) = "" && DATATYPE({v}) != {XSD.string.n3()})'
    return f"!(isLiteral({v}) && DATATYPE({v}) = {datatype.n3()})"


def _node_kind(kind: URIRef, v: str) -> str:
    accepted = {
        SH.IRI: f"isIRI({v})",
        SH.BlankNode: f"isBlank({v})",
        SH.Literal: f"isLiteral({v})",
        SH.BlankNodeOrIRI: f"!isLiteral({v})",
        SH.BlankNodeOrLiteral: f"!isIRI({v})",
        SH.IRIOrLiteral: f"!isBlank({v})",
    }
    if kind not in accepted:
        return "true"
    return f"!({accepted[kind]})"


def _language_in(languages: list[str], v: str) -> str:
    tagged = f'isLiteral({v}) && LANG({v}) != ""'
    if "*" in languages:
        return f"!({tagged})"
    listed = ", ".join(_string(lang) for lang in languages) or '""'
    first = f'LCASE(STRBEFORE(CONCAT(LANG({v}), "-"), "-"))'
    return f"!({tagged} && (LCASE(LANG({v})) IN ({listed}) || {first} IN ({listed})))"


def _string(text: str) -> str:
    return json.dumps(text, ensure_ascii=True)
