"""The import graph of src/copkg keeps the shape docs/architecture.md draws: packages by stage,
every import pointing down, no cycle, no private name borrowed from another module, no import
hidden in a function unless it saves a measured start-up cost, and no module over 500 lines."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = SRC / "copkg"

#: The stages, lowest first: a module may import from its own stage or from any below it.
LAYERS: list[tuple[str, ...]] = [
    ("copkg", "copkg.errors", "copkg.namespaces", "copkg.config", "copkg.rdf_io"),
    ("copkg.store",),
    ("copkg.querying",),
    ("copkg.reasoning",),
    ("copkg.validation",),
    ("copkg.pipeline",),
    ("copkg.studies",),
    ("copkg.scholarly",),
    ("copkg.web",),
    ("copkg.cli",),
]

#: An import inside a function is allowed only with this said beside it (why it is deferred).
DEFERRED_MARK = "start-up cost"

MAX_LINES = 500


@dataclass(frozen=True)
class Import:
    source: str  # the importing module
    target: str  # the imported module
    names: tuple[str, ...]  # names taken from it (from-imports)
    line: int
    in_function: bool
    type_checking: bool


def module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _resolve(known: dict[str, Path], base: str, name: str | None) -> str:
    """The module `from base import name` reaches: the submodule if name is one."""
    if name is not None and f"{base}.{name}" in known:
        return f"{base}.{name}"
    return base


def imports(known: dict[str, Path]) -> list[Import]:
    found: list[Import] = []
    for module, path in known.items():
        tree = ast.parse(path.read_text(), str(path))

        def visit(
            node: ast.AST,
            in_function: bool,
            type_checking: bool,
            module: str = module,
            is_package: bool = path.name == "__init__.py",
        ) -> None:
            for child in ast.iter_child_nodes(node):
                inside = in_function or isinstance(
                    child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda
                )
                guarded = type_checking or (
                    isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test)
                )
                if isinstance(child, ast.Import):
                    for alias in child.names:
                        if alias.name.startswith("copkg"):
                            found.append(
                                Import(module, alias.name, (), child.lineno, in_function, guarded)
                            )
                elif isinstance(child, ast.ImportFrom):
                    base = child.module or ""
                    if child.level:
                        parent = module.split(".")
                        parent = parent[: len(parent) - child.level + is_package]
                        base = ".".join([*parent, *([base] if base else [])])
                    if not base.startswith("copkg"):
                        continue
                    for alias in child.names:
                        target = _resolve(known, base, alias.name)
                        names = () if target != base else (alias.name,)
                        found.append(
                            Import(module, target, names, child.lineno, in_function, guarded)
                        )
                visit(child, inside, guarded, module)

        visit(tree, False, False)
    return found


def layer(module: str) -> int:
    best, rank = -1, -1
    for index, members in enumerate(LAYERS):
        for member in members:
            if (module == member or module.startswith(member + ".")) and len(member) > best:
                best, rank = len(member), index
    if rank < 0:
        raise AssertionError(f"{module} is in no layer of tests/test_architecture.py: place it")
    return rank


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def connect(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(edges.get(node, ())):
            if target not in index:
                connect(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1 or node in edges.get(node, ()):
                found.append(sorted(component))

    for node in sorted(edges):
        if node not in index:
            connect(node)
    return found


KNOWN = modules()
IMPORTS = imports(KNOWN)


def test_every_module_has_a_layer() -> None:
    for module in KNOWN:
        layer(module)


def test_no_import_cycle() -> None:
    edges: dict[str, set[str]] = {}
    for item in IMPORTS:
        if not item.type_checking and item.target != item.source:
            edges.setdefault(item.source, set()).add(item.target)
    assert cycles(edges) == []


def test_no_import_points_up() -> None:
    upward = [
        f"{KNOWN[i.source].relative_to(SRC)}:{i.line}: {i.source} imports {i.target}"
        for i in IMPORTS
        if layer(i.target) > layer(i.source)
    ]
    assert upward == []


def test_no_private_name_from_another_module() -> None:
    private = [
        f"{KNOWN[i.source].relative_to(SRC)}:{i.line}: {name} from {i.target}"
        for i in IMPORTS
        for name in i.names
        if name.startswith("_") and not name.startswith("__") and i.target != i.source
    ]
    assert private == []


def test_imports_in_functions_say_why() -> None:
    unexplained = []
    for item in IMPORTS:
        if not item.in_function:
            continue
        lines = KNOWN[item.source].read_text().splitlines()
        near = " ".join(lines[max(0, item.line - 6) : item.line])  # the comment above a block
        if DEFERRED_MARK not in near:
            unexplained.append(f"{KNOWN[item.source].relative_to(SRC)}:{item.line}: {item.target}")
    assert unexplained == []


def test_no_importlib_in_src() -> None:
    users = [
        str(path.relative_to(SRC))
        for path in KNOWN.values()
        if any(
            (
                isinstance(node, ast.Import | ast.ImportFrom)
                and any(a.name == "importlib" for a in node.names)
            )
            or (
                isinstance(node, ast.ImportFrom)
                and node.module == "importlib"
                and any(a.name == "import_module" for a in node.names)
            )
            for node in ast.walk(ast.parse(path.read_text()))
        )
    ]
    assert users == []


@pytest.mark.parametrize("module", sorted(KNOWN))
def test_module_size(module: str) -> None:
    lines = len(KNOWN[module].read_text().splitlines())
    assert lines <= MAX_LINES, f"{KNOWN[module].relative_to(SRC)}: {lines} lines"


def test_the_checker_sees_a_cycle_and_an_upward_import() -> None:
    """The checks above could fail: a made-up graph with a cycle is reported."""
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert layer("copkg.store.scan") < layer("copkg.querying.safety") < layer("copkg.web.api")


#: Web frameworks: only copkg.web (and the CLI above it) may load them.
WEB_ONLY = ("flask", "flask_cors", "gunicorn", "werkzeug", "jinja2", "markupsafe")


def test_below_web_no_web_framework() -> None:
    """Query worker processes import copkg.querying: Flask and gunicorn would add ~1 s each."""
    found = []
    for module, path in KNOWN.items():
        if layer(module) >= layer("copkg.web"):
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            names = (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
                if isinstance(node, ast.ImportFrom)
                else []
            )
            found += [f"{module}: {n}" for n in names if n.split(".")[0] in WEB_ONLY]
    assert found == []


@pytest.mark.parametrize("process", ["copkg.querying.worker_loop", "copkg.pipeline.advice_runs"])
def test_a_query_worker_loads_no_web_framework(process: str) -> None:
    """Neither a query worker nor the advisor's process (spawned: each imports its module)."""
    code = f"import sys, {process}; print(sorted(m for m in {WEB_ONLY!r} if m in sys.modules))"
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True
    )
    assert out.stdout.strip() == "[]"


def test_the_drawing_names_every_layer() -> None:
    """docs/architecture.md lists the layers the test enforces, in the same order."""
    text = (SRC.parent / "docs" / "architecture.md").read_text()
    line = next(x for x in text.split("\n\n") if x.startswith("The layers, lowest first"))
    names = [name.removeprefix("copkg.") for members in LAYERS[1:] for name in members]
    positions = [line.find(f"`{name}`") for name in names]
    assert -1 not in positions, f"docs/architecture.md misses a layer of {names}"
    assert positions == sorted(positions)


#: What reading the store is: running a query on it, or looking its indexes up. (Listing its
#: graphs is left to updates, which run in the web process: they write, and the workers read
#: the store read-only.)
STORE_READS = frozenset({"query", "query_serialized", "quads_for_pattern", "quad_count", "native"})


def _made_empty(node: ast.expr) -> bool:
    """An empty store made on the spot (`ox.Store()`: a syntax check), which holds nothing."""
    return (
        isinstance(node, ast.Call)
        and not node.args
        and not node.keywords
        and ast.unparse(node.func).split(".")[-1] == "Store"
    )


def store_reads_in(tree: ast.AST) -> list[tuple[int, str]]:
    """The lines that call a store's reads (`x.query(...)`, `x.quads_for_pattern(...)`, ...)
    or reach its engine (`x.native`)."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr in STORE_READS:
            if _made_empty(node.value):
                continue
            called = node.attr != "native"
            if not called or any(
                isinstance(parent, ast.Call) and parent.func is node for parent in ast.walk(tree)
            ):
                found.append((node.lineno, node.attr))
    return sorted(found)


class Readers:
    """Which functions of a set of modules read a store, directly (a call of one of its reads,
    as `store_reads_in` finds them) or through another function that does: calls are followed
    where the name says what they call (a function defined or imported by name, re-exports of
    a package included; `Class.method(...)`, `module.function(...)`, `self.method(...)`). A
    call on a value (`executor.run(job)`) is not followed: what the executor runs is a job."""

    def __init__(self, trees: dict[str, ast.Module]) -> None:
        self.trees = trees
        self.defs: dict[str, ast.AST] = {}  # "module.function", "module.Class.method"
        self.classes: set[str] = set()
        self.names: dict[str, dict[str, str]] = {}  # by module: a name -> what it imports
        for module, tree in trees.items():
            names = self.names[module] = {}
            for node in tree.body:
                if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                    self.defs[f"{module}.{node.name}"] = node
                elif isinstance(node, ast.ClassDef):
                    self.classes.add(f"{module}.{node.name}")
                    for item in node.body:
                        if isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef):
                            self.defs[f"{module}.{node.name}.{item.name}"] = item
            for node in ast.walk(tree):
                if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("copkg"):
                    for alias in node.names:
                        names[alias.asname or alias.name] = f"{node.module}.{alias.name}"
                elif isinstance(node, ast.Import):
                    for alias in node.names:
                        if alias.name.startswith("copkg"):
                            names[alias.asname or alias.name] = alias.name
        self.reading = self._reading()

    def resolve(self, target: str, depth: int = 0) -> str:
        """A function, class or module, through the package re-exports of its name."""
        if target in self.defs or target in self.classes or target in self.trees or depth > 9:
            return target
        module, _, name = target.rpartition(".")
        if module in self.trees and name in self.names[module]:
            return self.resolve(self.names[module][name], depth + 1)
        return target

    def callee(self, module: str, owner: str | None, func: ast.expr) -> str | None:
        """What a call's function names, where the name tells."""
        if isinstance(func, ast.Name):
            if f"{module}.{func.id}" in self.defs:
                return f"{module}.{func.id}"
            if func.id in self.names[module]:
                return self.resolve(self.names[module][func.id])
        elif isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name):
            base = func.value.id
            if base in ("self", "cls") and owner is not None:
                return f"{module}.{owner}.{func.attr}"
            if f"{module}.{base}" in self.classes:
                return f"{module}.{base}.{func.attr}"
            if base in self.names[module]:
                return self.resolve(f"{self.resolve(self.names[module][base])}.{func.attr}")
        return None

    def calls(self, name: str) -> list[tuple[int, str]]:
        """(line, callee) of the calls in a function whose callee is known."""
        module = next(m for m in sorted(self.trees, key=len, reverse=True) if name.startswith(m))
        owner = name[len(module) + 1 :].partition(".")[0]
        owner = owner if f"{module}.{owner}" in self.classes else None
        return self.calls_in(module, owner, self.defs[name])

    def calls_in(self, module: str, owner: str | None, node: ast.AST) -> list[tuple[int, str]]:
        found = []
        for call in ast.walk(node):
            if isinstance(call, ast.Call):
                target = self.callee(module, owner, call.func)
                if target is not None:
                    found.append((call.lineno, target))
        return found

    def _reading(self) -> set[str]:
        reading = {name for name, node in self.defs.items() if store_reads_in(node)}
        calls = {name: {t for _, t in self.calls(name)} for name in self.defs}
        grown = True
        while grown:
            more = {name for name, targets in calls.items() if targets & reading} - reading
            reading |= more
            grown = bool(more)
        return reading


def web_store_reads(
    trees: dict[str, ast.Module], web: str = "copkg.web"
) -> list[tuple[str, int, str]]:
    """The places in `web`'s modules that read a store, as (module, line, what): a read called
    there (`.query`), or a function of a lower layer called that reads one (directly or
    through others)."""
    readers = Readers(trees)
    found: set[tuple[str, int, str]] = set()
    for module, tree in trees.items():
        if module != web and not module.startswith(web + "."):
            continue
        found |= {(module, line, f".{attr}") for line, attr in store_reads_in(tree)}
        for node in [tree, *[n for n in tree.body if isinstance(n, ast.ClassDef)]]:
            owner = node.name if isinstance(node, ast.ClassDef) else None
            for line, target in readers.calls_in(module, owner, node):
                below = not (target == web or target.startswith(web + "."))
                if below and target in readers.reading:
                    found.add((module, line, target))
    return sorted(found)


#: Calls in web/ of functions that read a store, allowed for the reason given: none of them is
#: a read for a request in the web process.
NOT_A_REQUEST_READ = {
    ("copkg.web.builds", "copkg.pipeline.open.open_store"): "opening a build checks its store "
    "against its manifest (quad counts), once, before the build's executor exists",
    ("copkg.web.server", "copkg.pipeline.open.check_store"): "the start-up check, in a child "
    "process of its own (pipeline.open.check_main)",
}


def test_the_web_reads_the_store_only_through_the_executor() -> None:
    """Every read of the store from the web is a job of the executor (a SPARQL query or a page
    read of copkg.querying.pages.reads): in a worker process it runs under the time limit, is
    killed past it, and stays in the sandbox. No module of web/ queries the store or looks
    its indexes up itself, nor calls a function of a lower layer that does (a named query's
    values in the data, the keys of its pages, the advisor's vocabulary)."""
    trees = {module: ast.parse(path.read_text()) for module, path in KNOWN.items()}
    found = [
        f"{KNOWN[module].relative_to(SRC)}:{line}: {what}"
        for module, line, what in web_store_reads(trees)
        if (module, what) not in NOT_A_REQUEST_READ
    ]
    assert found == []


def test_the_store_read_scan_could_fail() -> None:
    """The scan above finds a query, an index lookup and the engine in made-up code, and a
    store read two calls away, through a re-export; not an empty store made to check syntax,
    nor what an executor is asked to run."""
    code = "store.query('ASK {}')\nx = s.native\nlist(s.quads_for_pattern(None, None, None))\n"
    assert [attr for _, attr in store_reads_in(ast.parse(code))] == [
        "query",
        "native",
        "quads_for_pattern",
    ]
    assert store_reads_in(ast.parse("request.query_string\nurl.query\n")) == []
    assert store_reads_in(ast.parse("ox.Store().query('ASK {}')\n")) == []
    made_up = {
        "copkg.store.low": "def count(s):\n    return s.quad_count()\n",
        "copkg.reasoning": "from copkg.store.low import count\n",
        "copkg.reasoning.vocab": (
            "from copkg.reasoning import count\n"
            "class Vocabulary:\n"
            "    @classmethod\n"
            "    def read(cls, s):\n"
            "        return cls.counted(s)\n"
            "    @classmethod\n"
            "    def counted(cls, s):\n"
            "        return count(s)\n"
            "def syntax(text):\n"
            "    return ox.Store().query(text)\n"
        ),
        "copkg.web.page": (
            "from copkg.reasoning.vocab import Vocabulary, syntax\n"
            "def view(store, executor, job):\n"
            "    syntax('ASK {}')\n"
            "    executor.run(job)\n"
            "    return Vocabulary.read(store)\n"
        ),
    }
    trees = {module: ast.parse(code) for module, code in made_up.items()}
    assert web_store_reads(trees) == [
        ("copkg.web.page", 5, "copkg.reasoning.vocab.Vocabulary.read")
    ]
