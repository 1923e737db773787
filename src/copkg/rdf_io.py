"""Parse RDF files safely into rdflib with file:line errors; write sorted Turtle atomically."""

from __future__ import annotations

import json
import os
import re
import tempfile
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import pyoxigraph as ox
from defusedxml import ElementTree as DefusedET
from defusedxml.common import DefusedXmlException
from rdflib import Dataset, Graph
from rdflib.compare import to_canonical_graph
from rdflib.plugins.parsers.notation3 import BadSyntax
from rdflib.plugins.sparql.parser import parseQuery, parseUpdate
from rdflib.term import Node

from copkg.errors import CopkgError, Problem
from copkg.namespaces import PREFIXES

#: rdflib format name by file suffix.
FORMATS: dict[str, str] = {
    ".ttl": "turtle",
    ".trig": "trig",
    ".nt": "nt",
    ".nq": "nquads",
    ".rdf": "xml",
    ".owl": "xml",
    ".xml": "xml",
    ".jsonld": "json-ld",
    ".json": "json-ld",
}
DATASET_FORMATS = {"trig", "nquads"}

_OX_FORMATS = {
    "turtle": ox.RdfFormat.TURTLE,
    "trig": ox.RdfFormat.TRIG,
    "nt": ox.RdfFormat.N_TRIPLES,
    "nquads": ox.RdfFormat.N_QUADS,
    "xml": ox.RdfFormat.RDF_XML,
    "json-ld": ox.RdfFormat.JSON_LD,
}
_DTD = re.compile(rb"<!\s*(DOCTYPE|ENTITY)", re.IGNORECASE)

#: At most this many prefix (namespace) declarations a file: rdflib binds each one in time that
#: grows with those already bound, so 10^4 of them cost seconds and 10^5 minutes.
MAX_PREFIXES = 1000
_TURTLE_PREFIX = re.compile(rb"(?:@prefix|\bprefix)\s+[^\s:<>\"']*:\s*<", re.IGNORECASE)
_XML_NAMESPACE = re.compile(rb"\sxmlns(?::[^\s=]*)?\s*=")

_BOMS = (
    (b"\x00\x00\xfe\xff", "UTF-32"),
    (b"\xff\xfe\x00\x00", "UTF-32"),
    (b"\xfe\xff", "UTF-16"),
    (b"\xff\xfe", "UTF-16"),
    (b"\xef\xbb\xbf", "UTF-8 with a byte order mark"),
)


def sorted_terms(terms: Iterable[Node]) -> list[Node]:
    """Terms in rdflib's order (its terms order themselves, but its graphs type them as Node)."""
    return sorted(terms)  # type: ignore[type-var]


def format_of(path: Path) -> str:
    """The rdflib format name of a file, from its suffix."""
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        known = ", ".join(sorted(FORMATS))
        raise CopkgError(
            f"{path}: unknown RDF file type {path.suffix!r} (known: {known})",
            status=400,
            problems=[Problem("unknown RDF file type", file=str(path))],
        )
    return fmt


def _error(
    path: Path,
    message: str,
    line: int | None = None,
    column: int | None = None,
    excerpt: str | None = None,
) -> CopkgError:
    text = message if not excerpt else f"{message} (near: {excerpt})"
    problem = Problem(text, file=str(path), line=line, column=column)
    return CopkgError(f"cannot read RDF from {path}", status=400, problems=[problem])


def _excerpt(text: str, line: int | None, column: int | None = None, width: int = 70) -> str:
    """A short piece of the offending line."""
    if line is None or line < 1:
        return ""
    lines = text.splitlines()
    if line > len(lines):
        return ""
    source = lines[line - 1]
    start = max(0, (column or 1) - 1 - width // 2) if len(source) > width else 0
    piece = source[start : start + width].strip()
    return repr(piece) if piece else ""


def decode_utf8(path: Path, data: bytes) -> str:
    """The text of a file, refusing (400) bytes that are not UTF-8 with where they are, and
    UTF-16/32 or a byte order mark by name."""
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            raise _error(path, f"the file is {encoding}: save it as UTF-8 (without a BOM)", 1, 1)
    if b"\x00" in data[:4]:  # no RDF syntax starts with NUL: UTF-16 or UTF-32 without a BOM
        raise _error(path, "the file starts with NUL bytes (UTF-16 or UTF-32?): save it as UTF-8")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        column = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        raise _error(
            path,
            f"not valid UTF-8: byte 0x{data[exc.start]:02x} at byte offset {exc.start} "
            "(save the file as UTF-8)",
            line,
            column,
        ) from exc


def check_prefixes(path: Path, data: bytes, fmt: str) -> None:
    """Refuse more than MAX_PREFIXES prefix or namespace declarations (a parser DoS)."""
    if fmt in ("turtle", "trig", "n3"):
        count = len(_TURTLE_PREFIX.findall(data))
    elif fmt == "xml":
        count = len(_XML_NAMESPACE.findall(data))
    else:
        return
    if count > MAX_PREFIXES:
        raise _error(
            path,
            f"{count} prefix declarations: at most {MAX_PREFIXES} are accepted in one file",
        )


def _too_deep(path: Path) -> CopkgError:
    return _error(
        path,
        "nested too deeply to be read (blank nodes, lists, XML elements or JSON objects "
        "within one another, hundreds of levels deep)",
    )


def check_xml(path: Path, data: bytes) -> None:
    """Refuse XML with a DTD or entity declarations, before any XML parser expands them."""
    match = _DTD.search(data)
    if match:
        line = data[: match.start()].count(b"\n") + 1
        raise _error(path, "DTDs and entity declarations are not accepted in RDF/XML", line)
    try:
        DefusedET.fromstring(data, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except DefusedXmlException as exc:
        raise _error(path, f"refused XML: {exc}") from exc
    except DefusedET.ParseError as exc:
        line, column = exc.position
        raise _error(path, f"XML syntax error: {exc}", line, column + 1) from exc
    except RecursionError as exc:
        raise _too_deep(path) from exc


def check_json_ld(path: Path, text: str) -> None:
    """Refuse JSON-LD that would make the parser fetch a remote or local context."""
    try:
        doc = json.loads(text)
    except RecursionError as exc:
        raise _too_deep(path) from exc
    except json.JSONDecodeError as exc:
        raise _error(
            path,
            f"JSON syntax error: {exc.msg}",
            exc.lineno,
            exc.colno,
            _excerpt(text, exc.lineno, exc.colno),
        ) from exc
    terms = 0
    for key, value in _walk(doc):
        if key in ("@context", "@import") and _names_a_document(value):
            raise _error(
                path,
                f"JSON-LD {key} refers to a document; only inline contexts "
                "are accepted (nothing is fetched)",
            )
        if key == "@context":
            contexts = value if isinstance(value, list) else [value]
            terms += sum(len(c) for c in contexts if isinstance(c, dict))
    if terms > MAX_PREFIXES:
        raise _error(
            path, f"{terms} JSON-LD context terms: at most {MAX_PREFIXES} are accepted in one file"
        )


def _walk(node: Any) -> Iterator[tuple[str, Any]]:
    """Every (key, value) of a JSON document, at any depth (without recursion)."""
    stack = [node]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            for key, value in item.items():
                yield key, value
                stack.append(value)
        elif isinstance(item, list):
            stack.extend(item)


def _names_a_document(value: Any) -> bool:
    if isinstance(value, str):
        return True
    if isinstance(value, list):
        return any(isinstance(v, str) for v in value)
    return False


def parse_file(path: str | os.PathLike[str], fmt: str | None = None) -> Graph | Dataset:
    """Parse one file: a Dataset for TriG and N-Quads, a Graph otherwise (400 on any error)."""
    path = Path(path)
    fmt = fmt or format_of(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise _error(path, f"cannot read: {exc.strerror or exc}") from exc
    return parse_bytes(data, fmt, path)


def parse_bytes(data: bytes, fmt: str, path: Path) -> Graph | Dataset:
    """Parse bytes said to come from `path` (used in messages and as base IRI)."""
    text = decode_utf8(path, data)
    check_prefixes(path, data, fmt)
    if fmt == "xml":
        check_xml(path, data)
    elif fmt == "json-ld":
        check_json_ld(path, text)
    target: Graph | Dataset = Dataset() if fmt in DATASET_FORMATS else Graph()
    for prefix, ns in PREFIXES.items():
        target.bind(prefix, ns, override=False)
    try:
        target.parse(data=text, format=fmt, publicID=path.resolve().as_uri())
    except BadSyntax as exc:
        line = exc._str[: exc._i].count(b"\n") + 1
        column = exc._i - (exc._str.rfind(b"\n", 0, exc._i) + 1) + 1
        located = _ox_position(data, fmt, path)  # rdflib may point before skipped white space
        if located is not None:
            line, column = located
        raise _error(path, exc._why, line, column, _excerpt(text, line, column)) from exc
    except CopkgError:
        raise
    except RecursionError as exc:
        raise _too_deep(path) from exc
    except Exception as exc:  # rdflib's parsers raise many types; locate with pyoxigraph
        raise _locate(path, data, fmt, text, exc) from exc
    return target


def _ox_position(data: bytes, fmt: str, path: Path) -> tuple[int, int] | None:
    """Where pyoxigraph's parser finds the first error, if it finds one."""
    try:
        for _ in ox.parse(data, format=_OX_FORMATS[fmt], base_iri=path.resolve().as_uri()):
            pass
    except SyntaxError as exc:
        if exc.lineno is not None:
            return exc.lineno, exc.offset or 1
    except (ValueError, OSError, MemoryError):
        pass
    return None


def _locate(path: Path, data: bytes, fmt: str, text: str, exc: Exception) -> CopkgError:
    """An error with a line: pyoxigraph's parser says where rdflib's did not."""
    try:
        for _ in ox.parse(data, format=_OX_FORMATS[fmt], base_iri=path.resolve().as_uri()):
            pass
    except SyntaxError as located:
        line, column = located.lineno, located.offset
        return _error(path, located.msg or str(exc), line, column, _excerpt(text, line, column))
    except (ValueError, OSError, MemoryError):
        pass
    return _error(path, f"{type(exc).__name__}: {exc}")


def read_quads(path: str | os.PathLike[str], graph: str) -> list[ox.Quad]:
    """Parse one triples file (fast, with pyoxigraph) into quads of a named graph, with the
    same safety checks and file:line errors as parse_file; blank nodes get fresh labels.

    Literals stay exactly as written (a pyoxigraph Store would store "07"^^xsd:positiveInteger
    as "7"^^xsd:integer), so these quads are what validation and exports should see.
    """
    path = Path(path)
    fmt = format_of(path)
    if fmt in DATASET_FORMATS:
        raise _error(path, "a source of one named graph must hold triples, not a dataset")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise _error(path, f"cannot read: {exc.strerror or exc}") from exc
    text = decode_utf8(path, data)
    check_prefixes(path, data, fmt)
    if fmt == "xml":
        check_xml(path, data)
    elif fmt == "json-ld":
        check_json_ld(path, text)
    name = ox.NamedNode(graph)
    try:
        return [
            ox.Quad(q.subject, q.predicate, q.object, name)
            for q in ox.parse(
                data,
                format=_OX_FORMATS[fmt],
                base_iri=path.resolve().as_uri(),
                rename_blank_nodes=True,
            )
        ]
    except SyntaxError as exc:
        parse_bytes(data, fmt, path)  # rdflib's message when it finds the error too
        line, column = exc.lineno, exc.offset
        raise _error(path, exc.msg or str(exc), line, column, _excerpt(text, line, column)) from exc
    except MemoryError as exc:  # pyoxigraph's bound on one token (16 MiB)
        raise _error(path, f"a term too long to be read: {exc}") from exc


def parse_graph(path: str | os.PathLike[str]) -> Graph:
    """Parse one file into a single Graph (the graphs of a dataset file merged)."""
    parsed = parse_file(path)
    if isinstance(parsed, Dataset):
        merged = Graph()
        for prefix, ns in parsed.namespaces():
            merged.bind(prefix, ns, override=False)
        for s, p, o, _ in parsed.quads((None, None, None, None)):
            merged.add((s, p, o))
        return merged
    return parsed


def atomic_write(path: str | os.PathLike[str], data: bytes) -> None:
    """Write a file whole or not at all: a temp file in the same folder, then os.replace."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def sorted_turtle(graph: Graph) -> bytes:
    """Deterministic Turtle: blank nodes canonically labelled, then rdflib's longturtle."""
    canonical = Graph()
    for prefix, ns in graph.namespaces():
        canonical.bind(prefix, ns, override=True, replace=True)
    for triple in to_canonical_graph(graph):
        canonical.add(triple)
    return canonical.serialize(format="longturtle", encoding="utf-8")


def write_sorted_turtle(graph: Graph, path: str | os.PathLike[str]) -> None:
    """Write `graph` as deterministic Turtle, atomically."""
    atomic_write(path, sorted_turtle(graph))


def write_synced(path: Path, data: bytes) -> None:
    """Write a new file and flush it to disk (readable by all, as a source file is)."""
    with open(path, "wb") as out:
        out.write(data)
        out.flush()
        os.fsync(out.fileno())
    os.chmod(path, 0o644)


def fsync_dir(path: Path) -> None:
    """Flush a folder's entries (a file created or renamed in it) to disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


# -- SPARQL parse trees ------------------------------------------------------------------------

#: rdflib's SPARQL parser keeps state in module-level pyparsing objects and is not thread-safe:
#: two requests parsing at once in one process broke it for good (500s on every later query).
#: Every parse of SPARQL text by rdflib in copkg goes through this lock.
SPARQL_PARSER_LOCK = threading.RLock()


def parse_sparql_query(text: str) -> Any:
    """rdflib's parse tree of a query (pyparsing's exceptions on a syntax error)."""
    with SPARQL_PARSER_LOCK:
        return parseQuery(text)


def parse_sparql_update(text: str) -> Any:
    """rdflib's parse tree of an update (pyparsing's exceptions on a syntax error)."""
    with SPARQL_PARSER_LOCK:
        return parseUpdate(text)
