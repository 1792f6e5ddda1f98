"""The metrics modules import one another without a cycle, at module level or inside functions,
and each imports alone."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

METRICS = Path(__file__).resolve().parents[1] / "lossacc_cli" / "metrics"


def _imports(path: Path) -> set[str]:
    """The lossacc_cli.metrics modules that ``path`` imports anywhere in it."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("lossacc_cli.metrics."):
            found.add(node.module.rsplit(".", 1)[1])
        elif isinstance(node, ast.Import):
            found.update(a.name.rsplit(".", 1)[1] for a in node.names
                         if a.name.startswith("lossacc_cli.metrics."))
    return found


def test_no_import_cycle_among_the_metrics_modules():
    graph = {p.stem: _imports(p) for p in METRICS.glob("*.py") if p.stem != "__init__"}
    state: dict[str, int] = {}

    def visit(module: str, path: list[str]) -> None:
        if state.get(module) == 2:
            return
        assert state.get(module) != 1, "import cycle: " + " -> ".join(path + [module])
        state[module] = 1
        for dep in sorted(graph.get(module, ())):
            visit(dep, path + [module])
        state[module] = 2

    for module in sorted(graph):
        visit(module, [])


@pytest.mark.parametrize("module", sorted(p.stem for p in METRICS.glob("*.py")))
def test_each_module_imports_alone(module):
    name = "lossacc_cli.metrics" if module == "__init__" else f"lossacc_cli.metrics.{module}"
    subprocess.run([sys.executable, "-c", f"import {name}"], check=True)
