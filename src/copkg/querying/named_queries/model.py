"""Parse grlc-style queries/*.rq files (`#+` YAML header, `?_name` parameters) into dataclasses."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyoxigraph as ox
import yaml

from copkg.errors import CopkgError, Problem
from copkg.namespaces import PREFIXES, shorten
from copkg.querying.safety import analyse_query
from copkg.store.embedded import syntax_error
from copkg.store.scan import remote_calls, tokens

HEADER = re.compile(r"^#\+ ?(.*)$")

#: Header keys grlc knows; anything else is most likely a typo.
KNOWN_KEYS = {
    "summary",
    "description",
    "tags",
    "defaults",
    "enumerate",
    "pagination",
    "endpoint",
    "endpoint_in_url",
    "method",
    "transform",
    "title",
    "license",
    "contact",
    "page_over",  # copkg's own: pages run over the values of an IRI parameter (paging.py)
}

#: Short type suffixes (`?_year_integer`) and the XSD datatype each stands for.
XSD = "http://www.w3.org/2001/XMLSchema#"
SHORT_TYPES = {
    name.lower(): XSD + name
    for name in (
        "integer",
        "decimal",
        "double",
        "float",
        "boolean",
        "date",
        "dateTime",
        "time",
        "gYear",
        "gYearMonth",
        "string",
        "nonNegativeInteger",
        "positiveInteger",
        "anyURI",
    )
}
SHORT_TYPES["number"] = XSD + "decimal"
LANGUAGE = re.compile(r"^[a-z]{2,3}$")


@dataclass(frozen=True)
class Parameter:
    """One parameter of a named query, from a `?_name[_type]` (or optional `?__name`) variable."""

    name: str
    var: str
    required: bool
    kind: str  # "iri" or "literal"
    datatype: str | None = None
    lang: str | None = None
    enum: tuple[str, ...] | None = None  # allowed values listed in the header
    enum_from_store: bool = False  # `enumerate: [name]`: allowed values are those in the data
    default: str | None = None

    def describe_type(self) -> str:
        if self.kind == "iri":
            return "IRI"
        if self.lang:
            return f"text @{self.lang}"
        if self.datatype:
            return _short(self.datatype)
        return "text"


def _short(iri: str) -> str:
    return shorten(iri) or f"<{iri}>"


@dataclass(frozen=True)
class NamedQuery:
    """A stored query: name (file stem), header fields, parameters and SPARQL text."""

    name: str
    summary: str
    description: str
    tags: tuple[str, ...]
    parameters: tuple[Parameter, ...]
    text: str
    path: Path | None = None
    pagination: int | None = None
    #: `page_over: {study: copkg:Study}`: a page binds the parameter to `pagination` instances
    #: of the class (in IRI order) instead of cutting the solutions; (parameter name, class IRI).
    page_over: tuple[str, str] | None = None
    method: str = "GET"
    endpoint_in_url: bool = False
    header: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)

    def parameter(self, name: str) -> Parameter | None:
        return next((p for p in self.parameters if p.name == name), None)


#: name_prefix_local (a literal typed by a prefixed datatype); name_suffix (a short type or
#: a language tag).
_TYPED_PARTS = 3
_SUFFIXED_PARTS = 2


def parse_variable(var: str) -> tuple[str, str, str | None, str | None]:
    """Split a parameter variable (without `?_`/`?__`) into name, kind, datatype, language."""
    if var.endswith("_iri") and len(var) > len("_iri"):
        return var[:-4], "iri", None, None
    parts = var.split("_")
    if len(parts) >= _TYPED_PARTS and parts[-2] in PREFIXES and parts[0]:
        return "_".join(parts[:-2]), "literal", PREFIXES[parts[-2]] + parts[-1], None
    if len(parts) >= _SUFFIXED_PARTS and parts[0]:
        suffix = parts[-1]
        if suffix.lower() in SHORT_TYPES:
            return "_".join(parts[:-1]), "literal", SHORT_TYPES[suffix.lower()], None
        if LANGUAGE.match(suffix):
            return "_".join(parts[:-1]), "literal", None, suffix
    return var, "literal", None, None


def split_header(text: str) -> tuple[list[tuple[int, str]], int]:
    """The `#+` header lines (1-based line number, YAML text) before the query proper."""
    header: list[tuple[int, str]] = []
    for number, line in enumerate(text.splitlines(), start=1):
        match = HEADER.match(line)
        if match:
            header.append((number, match.group(1)))
        elif line.strip() and not line.lstrip().startswith("#"):
            return header, number
    return header, len(text.splitlines()) + 1


def parse_named_query(path: Path, text: str | None = None) -> NamedQuery:
    """Parse one .rq file; a bad header or SPARQL raises CopkgError 400 with file:line."""
    path = Path(path)
    if text is None:
        try:
            text = path.read_bytes().decode("utf-8")
        except UnicodeDecodeError as exc:
            raise _bad(path, None, f"not valid UTF-8 at byte offset {exc.start}") from exc
    header_lines, _ = split_header(text)
    header, key_lines = _read_header(path, header_lines)
    first_line = header_lines[0][0] if header_lines else 1

    def line_of(key: str) -> int:
        return key_lines.get(key, first_line)

    unknown = sorted(set(header) - KNOWN_KEYS)
    if unknown:
        raise _bad(
            path,
            line_of(unknown[0]),
            f"unknown header key {unknown[0]!r} (known: {', '.join(sorted(KNOWN_KEYS))})",
        )
    summary = _text(path, header, "summary", line_of)
    description = _text(path, header, "description", line_of)
    tags = header.get("tags") or []
    if isinstance(tags, str):
        tags = [tags]
    if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
        raise _bad(path, line_of("tags"), "tags must be a list of words")
    pagination = header.get("pagination")
    if pagination is not None and (not isinstance(pagination, int) or pagination < 1):
        raise _bad(path, line_of("pagination"), "pagination must be a positive whole number")
    method = str(header.get("method", "GET")).upper()
    if method not in ("GET", "POST"):
        raise _bad(path, line_of("method"), "method must be GET or POST")

    _check_sparql(path, text)
    variables = _parameter_variables(text)
    defaults = _mapping(path, header.get("defaults"), "defaults", line_of("defaults"))
    enums, from_store = _enumerations(path, header.get("enumerate"), line_of("enumerate"))
    parameters = []
    for var, required in variables.items():
        name, kind, datatype, lang = parse_variable(var.lstrip("_"))
        default = defaults.pop(name, None)
        enum = enums.pop(name, None)
        parameters.append(
            Parameter(
                name=name,
                var=var,
                required=required,
                kind=kind,
                datatype=datatype,
                lang=lang,
                enum=tuple(str(v) for v in enum) if enum is not None else None,
                enum_from_store=name in from_store,
                default=None if default is None else str(default),
            )
        )
        from_store.discard(name)
    for key, leftover in (
        ("defaults", defaults),
        ("enumerate", {**enums, **dict.fromkeys(from_store)}),
    ):
        if leftover:
            names = ", ".join(p.name for p in parameters) or "none"
            raise _bad(
                path,
                line_of(key),
                f"{key} names {sorted(leftover)[0]!r}, which is not a parameter of the "
                f"query (its parameters: {names})",
            )
    page_over = _page_over(path, header.get("page_over"), line_of("page_over"), parameters)
    if page_over is not None and pagination is None:
        raise _bad(path, line_of("page_over"), "page_over needs pagination: N (values a page)")
    return NamedQuery(
        name=path.stem,
        summary=summary,
        description=description,
        tags=tuple(tags),
        parameters=tuple(parameters),
        text=text,
        path=path,
        pagination=pagination,
        page_over=page_over,
        method=method,
        endpoint_in_url=bool(header.get("endpoint_in_url", False)),
        header=header,
    )


def _page_over(
    path: Path, value: Any, line: int, parameters: list[Parameter]
) -> tuple[str, str] | None:
    """`page_over: {name: class}`: an optional IRI parameter and the class its values come from."""
    if value is None:
        return None
    if not isinstance(value, dict) or len(value) != 1:
        raise _bad(path, line, "page_over must be one `parameter: class` entry")
    name, cls = next(iter(value.items()))
    param = next((p for p in parameters if p.name == str(name)), None)
    if param is None or param.kind != "iri" or param.required:
        raise _bad(
            path,
            line,
            f"page_over names {name!r}: give an optional IRI parameter "
            f"(?__{name}_iri) of the query",
        )
    text = str(cls).strip()
    if text.startswith("<") and text.endswith(">"):
        text = text[1:-1]
    prefix, sep, local = text.partition(":")
    iri = PREFIXES[prefix] + local if sep and prefix in PREFIXES else text
    try:
        ox.NamedNode(iri)
    except ValueError:
        raise _bad(path, line, f"page_over: {cls!r} is not an IRI or a known CURIE") from None
    return param.name, iri


def _bad(path: Path, line: int | None, message: str) -> CopkgError:
    problem = Problem(message, file=str(path), line=line)
    return CopkgError(f"bad named query {path.name}", status=400, problems=[problem])


def _read_header(path: Path, lines: list[tuple[int, str]]) -> tuple[dict[str, Any], dict[str, int]]:
    """The YAML header as a dict, and the file line of each top-level key."""
    if not lines:
        return {}, {}
    source = "\n".join(text for _, text in lines)
    try:
        node = yaml.compose(source, Loader=yaml.SafeLoader)
        data = yaml.safe_load(source)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = lines[min(mark.line, len(lines) - 1)][0] if mark else lines[0][0]
        raise _bad(path, line, f"header is not valid YAML: {exc.problem or exc}") from exc
    except yaml.YAMLError as exc:
        raise _bad(path, lines[0][0], f"header is not valid YAML: {exc}") from exc
    if data is None:
        return {}, {}
    if not isinstance(data, dict):
        raise _bad(path, lines[0][0], "header must be a YAML mapping (key: value lines)")
    key_lines = {}
    if isinstance(node, yaml.MappingNode):
        for key, _ in node.value:
            key_lines[str(key.value)] = lines[min(key.start_mark.line, len(lines) - 1)][0]
    return data, key_lines


def _text(path: Path, header: dict[str, Any], key: str, line_of: Any) -> str:
    value = header.get(key, "")
    if value is None:
        return ""
    if not isinstance(value, str):
        raise _bad(path, line_of(key), f"{key} must be text")
    return value.strip()


def _mapping(path: Path, value: Any, key: str, line: int) -> dict[str, Any]:
    """grlc writes defaults as a list of one-key mappings; a plain mapping is accepted too."""
    if value is None:
        return {}
    if isinstance(value, dict):
        return {str(k): v for k, v in value.items()}
    if isinstance(value, list) and all(isinstance(v, dict) for v in value):
        return {str(k): v for item in value for k, v in item.items()}
    raise _bad(path, line, f"{key} must be a list of `name: value` entries")


def _enumerations(path: Path, value: Any, line: int) -> tuple[dict[str, list[Any]], set[str]]:
    """`enumerate`: `- name` (values from the data) or `- name: [v1, v2]` (listed values)."""
    if value is None:
        return {}, set()
    if isinstance(value, dict):
        value = [value]
    if not isinstance(value, list):
        raise _bad(path, line, "enumerate must be a list of parameter names or `name: [values]`")
    listed: dict[str, list[Any]] = {}
    from_store: set[str] = set()
    for item in value:
        if isinstance(item, str):
            from_store.add(item)
        elif isinstance(item, dict):
            for name, values in item.items():
                if not isinstance(values, list) or not values:
                    raise _bad(path, line, f"enumerate {name}: give a list of allowed values")
                listed[str(name)] = values
        else:
            raise _bad(path, line, f"enumerate: cannot read {item!r}")
    return listed, from_store


def _parameter_variables(text: str) -> dict[str, bool]:
    """The `?_name` (required) and `?__name` (optional) variables, in order of appearance."""
    found: dict[str, bool] = {}
    for tok in tokens(text):
        if tok.kind == "var" and tok.text[1:].startswith("_") and len(tok.text) > len("?_"):
            var = tok.text[1:]
            found.setdefault(var, not var.startswith("__"))
    return found


def _check_sparql(path: Path, text: str) -> None:
    """Refuse SPARQL that does not parse (pyoxigraph's message, located in the file)."""
    if remote_calls(text):
        return  # parsing needs evaluation here, and SERVICE would reach out: the store checks it
    try:
        # the service's reading first (its messages: a misspelt form, an unknown prefix)
        analyse_query(text, graphs=None)
        ox.Store().query(text, prefixes=PREFIXES)
    except CopkgError as error:
        raise _located(error, path) from error
    except SyntaxError as exc:  # the service's message: line, column, what stands there
        raise _located(syntax_error(exc, text), path) from exc
    except (OSError, RuntimeError, ValueError):
        pass  # parsed; evaluating on an empty store may still complain


def _located(error: CopkgError, path: Path) -> CopkgError:
    """A syntax error of the query's text as a problem of its file."""
    problems = error.problems or [Problem(error.message)]
    for problem in problems:
        problem.file = str(path)
        if problem.line is not None:
            problem.message = f"SPARQL syntax error: {problem.message}"
    return CopkgError(f"bad named query {path.name}", status=400, problems=problems)


def load_named_queries(directory: Path) -> dict[str, NamedQuery]:
    """Every queries/*.rq file by name; all bad files reported at once (400)."""
    queries: dict[str, NamedQuery] = {}
    problems: list[Problem] = []
    for path in sorted(Path(directory).glob("*.rq")):
        try:
            queries[path.stem] = parse_named_query(path)
        except CopkgError as exc:
            problems.extend(exc.problems or [Problem(exc.message, file=str(path))])
    if problems:
        raise CopkgError("some named queries cannot be read", status=400, problems=problems)
    return queries
