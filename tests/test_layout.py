"""The package's layout: sub-packages by responsibility, no import circle (imports inside
functions and under TYPE_CHECKING count), and no module using another module's private
names."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "python" / "sscoverage"


def _modules() -> dict[str, Path]:
    out = {}
    for path in PACKAGE.rglob("*.py"):
        name = path.relative_to(PACKAGE).with_suffix("").as_posix().replace("/", ".")
        out[name.removesuffix("__init__").rstrip(".")] = path
    return out


MODULES = _modules()
#: The compiled core, a private module of the package like any other.
EXTENSIONS = {"_core"}


def _imports(name: str, path: Path) -> list[tuple[str, list[str]]]:
    """(imported module, names imported from it) for every import of the package's own
    modules, wherever it stands in the file."""
    is_init = path.name == "__init__.py"
    here = name.split(".") if (is_init and name) else name.split(".")[:-1]
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.level:
            base = here[: len(here) - (node.level - 1)]
            target = ".".join(base + (node.module.split(".") if node.module else []))
            names = [a.name for a in node.names]
            for n in names:
                sub = f"{target}.{n}".strip(".")
                if sub in MODULES:
                    found.append((sub, []))
            found.append((target, [n for n in names if f"{target}.{n}".strip(".") not in MODULES]))
        elif isinstance(node, (ast.Import, ast.ImportFrom)) and not getattr(node, "level", 0):
            mods = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
            for m in mods:
                if m.startswith("sscoverage."):
                    found.append((m.removeprefix("sscoverage."), []))
    return [(m, n) for m, n in found if m in MODULES and m != name]


def _circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected sets of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                x = stack.pop()
                on.discard(x)
                comp.append(x)
                if x == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in graph:
        if v not in index:
            visit(v)
    return out


def test_no_import_circle():
    graph = {name: {m for m, _ in _imports(name, path) if m} for name, path in MODULES.items()}
    assert _circles(graph) == []


def test_a_circle_is_found():
    # The check itself: two modules importing each other are one circle.
    assert _circles({"a": {"b"}, "b": {"a"}, "c": {"a"}}) == [["a", "b"]]


def _own_private_names(tree: ast.AST) -> set[str]:
    """Private names a module defines: functions, classes, module and class variables,
    and attributes it assigns (on self or on an object it builds)."""
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
        elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
            names.add(node.attr)
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
    return {n for n in names if n.startswith("_") and not n.startswith("__")}


def test_no_module_uses_another_modules_private_names():
    trees = {name: ast.parse(path.read_text(encoding="utf-8")) for name, path in MODULES.items()}
    own = {name: _own_private_names(tree) for name, tree in trees.items()}
    anyone = set().union(*own.values())
    used = []
    for name, tree in trees.items():
        for module, names in _imports(name, MODULES[name]):
            used += [f"{name} imports {module}.{n}" for n in names
                     if n.startswith("_") and not n.startswith("__") and n not in EXTENSIONS]
        for node in ast.walk(tree):
            if (isinstance(node, ast.Attribute) and node.attr.startswith("_") and not node.attr.startswith("__")
                    and not (isinstance(node.value, ast.Name) and node.value.id in ("self", "cls"))
                    and node.attr in anyone and node.attr not in own[name]):
                used.append(f"{name}:{node.lineno} uses .{node.attr}")
    assert used == []


@pytest.mark.parametrize("package", ["design", "estimators", "models", "weighting", "stream", "study", "report",
                                     "results", "io"])
def test_the_layout_has_its_rooms(package):
    assert (PACKAGE / package / "__init__.py").exists()
