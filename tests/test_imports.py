"""The import contracts of setup.cfg's [importlinter] sections hold: sincut's stages import only the stages
below them (the CLI on top; config, errors, interrupt and progress on the ground), no cycle at any depth,
training reaches the report only through the monitor, sincut never imports benchmarks/, and benchmarks/
scripts stand on the harness, in its layers, never importing one another. import-linter reads the source
(nothing is imported); these tests skip where it is not installed (the test extra installs it)."""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any, Iterable

import pytest

pytest.importorskip("importlinter")

from importlinter import configuration  # noqa: E402
from importlinter.adapters.building import GraphBuilder  # noqa: E402
from importlinter.application import use_cases  # noqa: E402
from importlinter.application.app_config import settings  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
CONFIG = ROOT / "setup.cfg"
SINCUT_CONTRACTS = ("sincut-layers", "sincut-acyclic", "training-report", "sincut-benchmarks")
BENCHMARK_CONTRACTS = ("benchmarks-layers", "harness-layers", "benchmarks-acyclic")

Import = tuple[str, str, int, str]  # importer, imported, line number, the line


def script_imports(folder: Path) -> list[Import]:
    """Imports of one benchmarks/ script by another by bare name (`from run import inputs_for`), at any depth
    of the file. They work when the script runs (Python puts its folder first on sys.path), but grimp
    resolves only imports that name the package, so the contracts would not see them unless added."""
    scripts = {p.stem for p in folder.glob("*.py")}
    found = []
    for path in sorted(folder.glob("*.py")):
        lines = path.read_text(encoding="utf-8").splitlines()
        for node in ast.walk(ast.parse("\n".join(lines))):
            if isinstance(node, ast.ImportFrom) and node.level == 0:
                names = [node.module or ""]
            elif isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            else:
                continue
            for top in {name.split(".")[0] for name in names} & scripts - {path.stem}:
                found.append((f"{folder.name}.{path.stem}", f"{folder.name}.{top}", node.lineno,
                              lines[node.lineno - 1].strip()))
    return found


class ScriptAwareGraphBuilder(GraphBuilder):
    """grimp's graph of the root packages, plus the benchmarks scripts' bare-name imports and `extra` ones."""

    def __init__(self, extra: Iterable[Import] = ()) -> None:
        self.extra = list(extra)

    def build(self, *args: Any, **kwargs: Any) -> Any:
        graph = super().build(*args, **kwargs)
        for importer, imported, line_number, line in script_imports(ROOT / "benchmarks") + self.extra:
            graph.add_import(importer=importer, imported=imported, line_number=line_number, line_contents=line)
        return graph


@pytest.fixture
def lint(monkeypatch: pytest.MonkeyPatch):
    """lint(contract ids, extra imports) -> whether they are kept; import-linter prints what breaks them."""
    monkeypatch.syspath_prepend(str(ROOT))  # sincut and benchmarks/ of this checkout

    def run(contracts: tuple[str, ...], extra: Iterable[Import] = ()) -> bool:
        configuration.configure()
        settings.configure(GRAPH_BUILDER=ScriptAwareGraphBuilder(extra))
        return use_cases.lint_imports(str(CONFIG), limit_to_contracts=contracts, cache_dir=None, no_logo=True)

    return run


def test_sincut_keeps_its_import_contracts(lint):
    assert lint(SINCUT_CONTRACTS)


def test_benchmarks_keep_their_import_contracts(lint):
    assert lint(BENCHMARK_CONTRACTS)


BREAKING = {  # imports each contract must refuse
    "climbing": [("sincut.data.images", "sincut.training.loop", 1, "from ..training.loop import train")],
    "cycle": [("sincut.nets.wrappers", "sincut.nets.stylegan2", 1, "from .stylegan2 import Generator"),
              ("sincut.nets.stylegan2", "sincut.nets.wrappers", 1, "from .wrappers import unwrap")],
    "report": [("sincut.training.loop", "sincut.evaluation.report", 1, "from ..evaluation.report import write_report")],
    "benchmarks": [("sincut.config", "benchmarks.harness.machine", 1, "from benchmarks.harness.machine import x")],
    "script imports script": [("benchmarks.ab", "benchmarks.run", 1, "from run import inputs_for")],
    "harness imports script": [("benchmarks.harness.steps", "benchmarks.run", 1, "from ..run import inputs_for")],
    "harness climbs": [("benchmarks.harness.paths", "benchmarks.harness.report", 1, "from .report import ROOT")],
}


@pytest.mark.parametrize("case", BREAKING)
def test_the_contracts_can_fail(lint, case: str):
    assert not lint(SINCUT_CONTRACTS + BENCHMARK_CONTRACTS, BREAKING[case])


def test_script_imports_are_found_at_any_depth(tmp_path: Path):
    folder = tmp_path / "benchmarks"
    folder.mkdir()
    (folder / "a.py").write_text("import os\nfrom b import f\n\ndef g():\n    import c.sub as s\n    return s\n")
    (folder / "b.py").write_text("def f():\n    return 1\n")
    (folder / "c.py").write_text("import a\n")
    assert sorted(script_imports(folder)) == [("benchmarks.a", "benchmarks.b", 2, "from b import f"),
                                              ("benchmarks.a", "benchmarks.c", 5, "import c.sub as s"),
                                              ("benchmarks.c", "benchmarks.a", 1, "import a")]
