"""Literals as written, and checks on them that a SPARQL store cannot make.

A pyoxigraph Store keeps literals of the XSD types it knows in a canonical form:
"07"^^xsd:positiveInteger is stored as "7"^^xsd:integer, "1"^^xsd:boolean as "true", and
language tags in lower case. SHACL judges the literals as written (sh:datatype sees
xsd:positiveInteger, an ill-typed literal fails), so the engine keeps the written form of every
literal the store would change, and checks XSD-typed values here, with rdflib's reading of
them, as pyshacl does.
"""

from __future__ import annotations

import re
from datetime import date, datetime, time
from decimal import Decimal
from typing import cast

import pyoxigraph as ox
from rdflib import BNode, Literal, URIRef
from rdflib.namespace import RDF, RDFS, XSD
from rdflib.term import Node

from copkg.namespaces import SH
from copkg.store.terms import from_ox

_XSD = str(XSD)
_STRING = ox.NamedNode(str(XSD.string))
_S = ox.NamedNode("urn:copkg:shacl:s")
_P = ox.NamedNode("urn:copkg:shacl:p")

#: SPARQL: whether the stored value ?v is a literal the checks here must judge.
NEEDS_PYTHON = (
    "(isLiteral({v}) && STRSTARTS(STR(DATATYPE({v})), "
    f'"{_XSD}") && DATATYPE({{v}}) != {XSD.string.n3()})'
)


class Originals:
    """The written form of the literals the store keeps in another form."""

    def __init__(self) -> None:
        self._scratch = ox.Store()
        self._normal: dict[ox.Literal, ox.Literal] = {}
        self._by_subject: dict[tuple[object, ox.Literal], list[tuple[object, object]]] = {}
        self._by_value: dict[ox.Literal, set[object]] = {}
        self._converted: dict[ox.Literal, Node] = {}

    def stored(self, literal: ox.Literal) -> ox.Literal:
        """The form the store keeps `literal` in."""
        found = self._normal.get(literal)
        if found is None:
            self._scratch.add(ox.Quad(_S, _P, literal))
            (quad,) = self._scratch.quads_for_pattern(_S, _P, None)
            self._scratch.remove(quad)
            found = self._normal[literal] = cast(ox.Literal, quad.object)  # the one just added
        return found

    def add(self, s: object, p: object, o: ox.Literal, written: Node | None = None) -> None:
        """Record the literal object of one triple, if the store changes it.

        `written` is the literal as rdflib read it, when the data came as rdflib terms (an
        explicit ^^xsd:string survives there, not in pyoxigraph terms).
        """
        if o.language:
            normal = o if o.language == o.language.lower() else self.stored(o)
        elif o.datatype == _STRING:
            normal = o
        else:
            normal = self.stored(o)
        if written is None:
            if normal == o:
                return
        elif normal == o and written.n3() == from_ox(o).n3():  # rdflib: "a"@EN == "a"@en
            return
        kept = o if written is None else written  # pyoxigraph terms become rdflib ones on use
        self._by_subject.setdefault((s, normal), []).append((p, kept))
        self._by_value.setdefault(normal, set()).add(kept)

    def written(self, subject: object, predicate: object | None, value: ox.Literal) -> list[Node]:
        """The written forms of `value` as an object of `subject` (along `predicate`)."""
        kept = self._by_subject.get((subject, value))
        if kept is None:
            return [self._rdflib(value)]
        found = {self._rdflib(w) for p, w in kept if predicate in (None, p)}
        return sorted(found, key=lambda lit: lit.n3()) or [self._rdflib(value)]

    def anywhere(self, value: ox.Literal) -> Node:
        """The written form of `value` when only one literal of the data has that stored form."""
        found = self._by_value.get(value, set())
        return self._rdflib(next(iter(found)) if len(found) == 1 else value)

    def _rdflib(self, term: object) -> Node:
        """A kept term as an rdflib term (values repeat: each converted once)."""
        if not isinstance(term, ox.Literal):
            return term  # type: ignore[return-value]
        found = self._converted.get(term)
        if found is None:
            found = self._converted[term] = from_ox(term)
        return found


def datatype_fails(value: Node, datatype: Node) -> bool:
    """sh:datatype as pyshacl judges it."""
    if not isinstance(value, Literal):
        return True
    if value.datatype == datatype:
        if getattr(value, "ill_typed", None) is True:
            return True
        return not _actual_datatype(value, datatype)
    if datatype == RDFS.Literal:
        return False
    if datatype == RDFS.Datatype and value.datatype:
        return False
    if value.datatype is None and value.language is None and datatype == XSD.string:
        return not _actual_datatype(value, datatype)
    if datatype == RDF.langString and value.language:
        return not _actual_datatype(value, datatype)
    return True


_PYTHON_TYPES: dict[Node, type | tuple[type, ...]] = {
    XSD.string: (str, bytes),
    RDF.langString: (str, bytes),
    XSD.integer: int,
    XSD.float: float,
    XSD.decimal: Decimal,
    XSD.boolean: bool,
    XSD.date: date,
    XSD.time: time,
    XSD.dateTime: datetime,
}


def _actual_datatype(value: Literal, datatype: Node) -> bool:
    kind = _PYTHON_TYPES.get(datatype)
    return True if kind is None else isinstance(value.value, kind)


def value_fails(key: URIRef, rule: object, value: Node) -> bool | None:
    """Whether `value` fails one value constraint, or None when the store must say."""
    if key == SH.datatype:
        return datatype_fails(value, rule)  # type: ignore[arg-type]
    if key == SH["class"]:
        return True if isinstance(value, Literal) else None
    if key == SH.nodeKind:
        kinds = {
            BNode: (SH.BlankNode, SH.BlankNodeOrIRI, SH.BlankNodeOrLiteral),
            Literal: (SH.Literal, SH.BlankNodeOrLiteral, SH.IRIOrLiteral),
            URIRef: (SH.IRI, SH.IRIOrLiteral, SH.BlankNodeOrIRI),
        }
        return rule not in kinds[type(value)] if type(value) in kinds else True
    if key == SH.pattern:
        pattern, flags = cast(tuple[str, str], rule)  # as shapes.py reads sh:pattern
        if isinstance(value, BNode):
            return True
        return re.search(pattern, str(value), _flags(flags)) is None
    if key == SH["in"]:
        return value not in rule  # type: ignore[operator]
    if key in (SH.maxLength, SH.minLength):
        if isinstance(value, BNode):
            return True
        length = len(str(value))
        return length > rule if key == SH.maxLength else length < rule  # type: ignore[operator]
    if key == SH.languageIn:
        return not _language_in(value, rule)  # type: ignore[arg-type]
    return None


def _language_in(value: Node, languages: list[str]) -> bool:
    if not isinstance(value, Literal) or not value.language:
        return False
    lang = str(value.language).lower()
    return "*" in languages or lang in languages or lang.split("-")[0] in languages


def _flags(flags: str) -> int:
    found = 0
    for letter, flag in (("i", re.I), ("m", re.M), ("s", re.S), ("x", re.X)):
        if letter in flags:
            found |= flag
    return found
