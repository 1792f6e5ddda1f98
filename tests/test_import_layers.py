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


_LOADED = """
import sys
command = sys.argv[3] if len(sys.argv) > 3 else "analyze"
sys.argv = ["lossacc", command, sys.argv[1], "--format", sys.argv[2], "--no-cache", *sys.argv[4:]]
from lossacc_cli.cli.entry import main
try:
    main()
except SystemExit as exc:
    assert exc.code in (0, None), exc.code
print("loaded:", *(m for m in ("pyarrow", "pyarrow.compute", "pandas", "rich", "numpy.ma")
                   if m in sys.modules))
"""


@pytest.mark.parametrize("fmt, output, loaded", [
    ("npz", "json", ""),
    ("parquet", "json", "pyarrow"),
    ("parquet", "table", "pyarrow rich"),
    ("parquet-lists", "table", "pyarrow rich"),
])
def test_a_run_imports_only_the_readers_it_reads_with(tmp_path, fmt, output, loaded):
    """An NPZ run never imports Arrow (the Parquet reader is imported by the first Parquet
    epoch); reading per-epoch Parquet files, fixed-size or variable lists, does not import
    pyarrow.compute (0.05-0.1 s of start-up); no run imports pandas or numpy.ma (np.unique's
    first call: 15-20 ms); a JSON report does not import rich (0.05-0.08 s)."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(0)
    for epoch in (1, 2):
        ids, labels = np.arange(60), np.arange(60) % 3
        logits = rng.normal(size=(60, 3)).astype(np.float32)
        if fmt == "npz":
            np.savez(tmp_path / f"epoch_{epoch:03d}.npz", sample_ids=ids, label=labels, logits=logits)
        else:
            scores = (pa.FixedSizeListArray.from_arrays(logits.ravel(), 3) if fmt == "parquet"
                      else pa.array(list(logits)))
            pq.write_table(pa.table({"sample_id": ids, "label": labels, "logits": scores}),
                           tmp_path / f"epoch_{epoch:03d}.parquet")
    done = subprocess.run([sys.executable, "-c", _LOADED, str(tmp_path), output], capture_output=True,
                          text=True, check=True)
    assert done.stdout.splitlines()[-1].split()[1:] == loaded.split(), done.stderr


@pytest.mark.parametrize("command, fmt", [("outliers", "json"), ("calibration", "json"),
                                          ("compare", "json"), ("check", "json"),
                                          ("check", "github"), ("check", "junit")])
def test_no_text_report_imports_rich(tmp_path, command, fmt):
    """Every command's JSON (and check's annotations and XML) is written without rich."""
    import numpy as np

    rng = np.random.default_rng(1)
    for epoch in (1, 2):
        np.savez(tmp_path / f"epoch_{epoch:03d}.npz", sample_ids=np.arange(60), label=np.arange(60) % 3,
                 logits=rng.normal(size=(60, 3)).astype(np.float32))
    rule = ["--min-accuracy", "0"] if command == "check" else []
    done = subprocess.run([sys.executable, "-c", _LOADED, str(tmp_path), fmt, command, *rule],
                          capture_output=True, text=True)
    assert done.stdout.splitlines()[-1] == "loaded:", (done.stdout[-300:], done.stderr)
