"""The package layout stays readable: no import cycles, short modules, benchmarks on public names only.
Checked from the source text (ast), so nothing is imported. Which stage may import which is the import
contract of setup.cfg (tests/test_imports.py); the module-level cycle check here also catches a cycle
between a module and its own package's __init__, which the contract's sibling cycles do not."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "sincut"
MAX_LINES = 400
LONG_REASON = "longer than 400 lines because"


def module_name(path: Path, package_root: Path) -> str:
    parts = list(path.relative_to(package_root.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(path: Path, package_root: Path, known: set[str]) -> set[str]:
    """Every module of the package that `path` imports, at any depth of the file (functions and
    TYPE_CHECKING blocks too). `from .pkg import name` counts as pkg.name where that is a module."""
    name = module_name(path, package_root)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            for alias in node.names:
                sub = f"{target}.{alias.name}"
                found.add(sub if sub in known else target)
        elif isinstance(node, ast.Import):
            for alias in node.names:
                found.add(alias.name)
    return {m for m in found if m in known and m != name}


def import_graph(package_root: Path) -> dict[str, set[str]]:
    files = sorted(package_root.rglob("*.py"))
    known = {module_name(f, package_root) for f in files}
    return {module_name(f, package_root): imported_modules(f, package_root, known) for f in files}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle as a list of modules (first == last), or None: depth-first search with colours."""
    state: dict[str, int] = {}  # 1 on the current path, 2 done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        path.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state and (cycle := visit(start)):
            return cycle
    return None


def test_the_checker_finds_a_cycle_through_a_function_level_import(tmp_path: Path):
    pkg = tmp_path / "pkg"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "sub" / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from .sub.b import f\n")
    (pkg / "sub" / "b.py").write_text("def f():\n    from ..c import g\n    return g\n")
    (pkg / "c.py").write_text("from . import a\n")
    graph = import_graph(pkg)
    assert graph["pkg.a"] == {"pkg.sub.b"} and graph["pkg.sub.b"] == {"pkg.c"} and graph["pkg.c"] == {"pkg.a"}
    assert find_cycle(graph) == ["pkg.a", "pkg.sub.b", "pkg.c", "pkg.a"]
    (pkg / "c.py").write_text("import os\n")
    assert find_cycle(import_graph(pkg)) is None


def test_no_import_cycles_among_sincut_modules():
    graph = import_graph(PACKAGE)
    assert "sincut.training.loop" in graph and "sincut.inference.translator" in graph["sincut.training.trainer"]
    cycle = find_cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_modules_are_short_or_say_why():
    long = []
    for path in sorted(PACKAGE.rglob("*.py")):
        text = path.read_text(encoding="utf-8")
        if len(text.splitlines()) > MAX_LINES and LONG_REASON not in (ast.get_docstring(ast.parse(text)) or ""):
            long.append(f"{path.relative_to(ROOT)} ({len(text.splitlines())} lines)")
    assert not long, f"modules over {MAX_LINES} lines whose docstring does not say why: {long}"


def _private_names_used(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    modules = set()  # local names bound to sincut modules (import sincut.x as m)
    used = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("sincut"):
            used += [f"{node.module}.{a.name}" for a in node.names if a.name.startswith("_")]
            modules.update(a.asname or a.name for a in node.names)
        elif isinstance(node, ast.Import):
            modules.update(a.asname or a.name.split(".")[0] for a in node.names if a.name.startswith("sincut"))
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr.startswith("_") and not node.attr.startswith("__"):
            base = node.value
            while isinstance(base, ast.Attribute):
                base = base.value
            if isinstance(base, ast.Name) and base.id in modules:
                used.append(ast.unparse(node))
    return used


@pytest.mark.parametrize("path", sorted((ROOT / "benchmarks").rglob("*.py")),
                         ids=lambda p: p.relative_to(ROOT).as_posix())
def test_benchmarks_use_only_public_names(path: Path):
    assert _private_names_used(path) == []


def test_the_private_name_check_can_fail(tmp_path: Path):
    script = tmp_path / "b.py"
    script.write_text("import sincut.evaluation.style as s\nfrom sincut.x import ok, _hidden\ns._secret(1)\n")
    assert _private_names_used(script) == ["sincut.x._hidden", "s._secret"]
