"""Reading only what a command needs: single-epoch commands on a many-epoch run, and long-format
files (one Parquet file with an ``epoch`` column), whole-process wall time and peak RSS.

Usage::

    python benchmarks/read_needs.py                          # both workloads, this checkout
    python benchmarks/read_needs.py --only shown --repeat 5
    python benchmarks/read_needs.py --baseline OTHER_CHECKOUT # A/B: another source tree, alternating

Workloads (seeded data in a temporary folder; ``--keep DIR`` keeps it):

- ``shown``: a run of 50 epochs of 50,000 x 100 float32 logits (list-Parquet, 1 GB): ``outliers
  --epoch 50``, ``calibration --epoch 50``, ``compare --from 49 --to 50``, beside ``outliers`` of a
  folder holding epoch 50 alone (the floor: that epoch read and reduced, nothing else);
- ``long``: one long-format file of 20,000 epochs x 3 samples (3 classes; ``analyze`` and
  ``calibration --epoch last``), and one of 20 epochs x 50,000 x 100 (400 MB in one row group, so
  that each epoch's rows lie in a row group shared with all the others).

Each command runs in a fresh process with ``--format json --no-cache``, stdout to a pipe (its JSON
is compared between the trees: the same bytes), in alternating order between the trees after one
untimed warm-up run (which also fills the page cache). Figures are medians of ``--repeat`` runs;
peak RSS is the process's VmHWM, sampled until it exits (``bench.run_process``).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench import list_column, make_run, run_process, trained_logits, write_epoch  # noqa: E402


def long_file(path: Path, *, epochs: int, n: int, k: int, seed: int) -> None:
    """A long-format file, epochs in order, pyarrow's default row groups (up to 1Mi rows)."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, k, n)
    logits = np.concatenate([trained_logits(rng, labels, k, sharpness=4.0 + 8.0 * e / epochs,
                                            accuracy=0.5 + 0.3 * e / epochs) for e in range(1, epochs + 1)])
    table = pa.table({"epoch": np.repeat(np.arange(1, epochs + 1), n),
                      "sample_id": np.tile(np.arange(n), epochs), "label": np.tile(labels, epochs),
                      "logits": list_column(logits)})
    pq.write_table(table, path)


def generate(folder: Path, only: set[str]) -> list[tuple[str, list[str]]]:
    """The workloads' data and their commands: (name, lossacc arguments)."""
    commands = []
    if "shown" in only:
        run = folder / "run50"
        if not run.exists():
            make_run(run, n=50_000, k=100, epochs=50, layout="list", seed=11)
        alone = folder / "epoch50"
        if not alone.exists():
            rng = np.random.default_rng(11)
            labels = rng.integers(0, 100, 50_000)
            write_epoch(alone, 50, labels, trained_logits(rng, labels, 100, 12.0, 0.8), "list")
        commands += [
            ("50 x 50k x 100: outliers --epoch 50", ["outliers", str(run), "--epoch", "50"]),
            ("50 x 50k x 100: calibration --epoch 50", ["calibration", str(run), "--epoch", "50"]),
            ("50 x 50k x 100: compare --from 49 --to 50", ["compare", str(run), "--from", "49", "--to", "50"]),
            ("that epoch alone: outliers", ["outliers", str(alone)]),
        ]
    if "long" in only:
        small = folder / "long_20000x3.parquet"
        if not small.exists():
            long_file(small, epochs=20_000, n=3, k=3, seed=12)
        large = folder / "long_20x50000x100.parquet"
        if not large.exists():
            long_file(large, epochs=20, n=50_000, k=100, seed=13)
        commands += [
            ("long 20,000 x 3: analyze", ["analyze", str(small)]),
            ("long 20,000 x 3: calibration --epoch last", ["calibration", str(small), "--epoch", "last"]),
            ("long 20 x 50k x 100: analyze", ["analyze", str(large)]),
            ("long 20 x 50k x 100: calibration --epoch 20", ["calibration", str(large), "--epoch", "20"]),
        ]
    return commands


LAUNCH = ("import runpy, sys; "
          # an editable install's finder would import the installed tree whatever PYTHONPATH says
          "sys.meta_path[:] = [f for f in sys.meta_path if '__editable__' not in repr(f)]; "
          "sys.path[:] = [p for p in sys.path if p]; "  # nor the working directory
          "sys.argv[0] = 'lossacc'; runpy.run_module('lossacc_cli', run_name='__main__', alter_sys=True)")
"""Runs ``python -m lossacc_cli`` from the tree at the front of PYTHONPATH."""


def tree_env(tree: Path) -> dict:
    env = dict(os.environ, NO_COLOR="1")
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(tree), env.get("PYTHONPATH", "")) if p)
    return env


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--only", default="shown,long", help="comma-separated: shown, long")
    parser.add_argument("--baseline", type=Path, default=None,
                        help="another lossacc source tree, timed in the same alternating rounds")
    parser.add_argument("--keep", type=Path, default=None, help="write the data here and keep it")
    args = parser.parse_args()
    trees = {"this": ROOT} | ({"baseline": args.baseline.resolve()} if args.baseline else {})
    envs = {name: tree_env(tree) for name, tree in trees.items()}
    for name, env in envs.items():  # each tree imports its own package
        probe = LAUNCH.split("sys.argv")[0] + "import lossacc_cli; print(lossacc_cli.__file__)"
        out = run_process([sys.executable, "-c", probe], env=env)
        assert Path(out.stdout.strip()).resolve().is_relative_to(trees[name]), (name, out.stdout)
    with tempfile.TemporaryDirectory(prefix="lossacc-reads-") as tmp:
        folder = args.keep or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        commands = generate(folder, set(args.only.split(",")))
        print(f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f}; medians of {args.repeat} "
              "alternating runs (after one warm-up), --format json --no-cache")
        for label, cmd in commands:
            full = [sys.executable, "-c", LAUNCH, *cmd, "--format", "json", "--no-cache"]
            outputs = {name: run_process(full, env=env).stdout for name, env in envs.items()}  # warm-up
            if len(set(outputs.values())) != 1:
                print(f"  {label}: the trees' JSON differ")
            walls: dict[str, list[float]] = {name: [] for name in envs}
            peaks: dict[str, list[int]] = {name: [] for name in envs}
            for _ in range(args.repeat):
                for name, env in envs.items():
                    measured = run_process(full, env=env)
                    walls[name].append(measured.wall)
                    peaks[name].append(measured.peak_kb)
            shown = "; ".join(f"{name} {statistics.median(walls[name]):.2f} s, "
                              f"{statistics.median(peaks[name]) / 1024:.0f} MB" for name in envs)
            ratio = ""
            if "baseline" in envs:
                ratio = f"  ({statistics.median(walls['baseline']) / statistics.median(walls['this']):.2f}x)"
            print(f"  {label}: {shown}{ratio}", flush=True)


if __name__ == "__main__":
    main()
