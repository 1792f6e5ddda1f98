"""Start-up of the CLI: wall time of ``lossacc --version``, ``--help`` and ``analyze`` of one tiny
epoch (medians of alternating runs), and the top offenders of ``python -X importtime`` for each.

Usage: python benchmarks/startup.py [--repeat 11] [--top 8]

The issue's targets: ``--version`` <= 0.15 s, ``analyze`` of one tiny epoch <= 0.4 s. The tiny
epoch (100 samples x 10 classes, list-Parquet, and the same as NPZ, whose run imports no Arrow) is
written to a temporary folder. Every module is compiled to bytecode once, before the timed runs,
as an installed package's are.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))


def importtime(cmd: list[str], env: dict, top: int) -> list[tuple[float, str]]:
    """(cumulative seconds, own seconds, module) of the ``top`` modules slowest to import by their
    own time."""
    err = subprocess.run([sys.executable, "-X", "importtime", *cmd], env=env, capture_output=True,
                         text=True).stderr
    rows = []
    for line in err.splitlines():
        if not line.startswith("import time:") or "cumulative" in line:
            continue
        self_us, cumulative, name = line[len("import time:"):].split("|")
        rows.append((int(cumulative) / 1e6, int(self_us) / 1e6, name.strip()))
    return sorted(rows, key=lambda r: -r[1])[:top]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=11)
    parser.add_argument("--top", type=int, default=8)
    args = parser.parse_args()
    from bench import as_installed, make_run

    with tempfile.TemporaryDirectory(prefix="lossacc-startup-") as tmp:
        env = as_installed(dict(os.environ, NO_COLOR="1"), str(Path(tmp) / "bytecode"))
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p)
        tiny = Path(tmp) / "tiny"
        make_run(tiny, n=100, k=10, epochs=1, layout="list", seed=1)
        tiny_npz = Path(tmp) / "tiny_npz"
        make_run(tiny_npz, n=100, k=10, epochs=1, layout="npz", seed=1)
        commands = {
            "--version": ["-m", "lossacc_cli", "--version"],
            "--help": ["-m", "lossacc_cli", "--help"],
            "analyze (1 tiny epoch)": ["-m", "lossacc_cli", "analyze", str(tiny), "--format", "json"],
            "analyze (1 tiny NPZ epoch)": ["-m", "lossacc_cli", "analyze", str(tiny_npz), "--format",
                                           "json"],
            "python -c pass": ["-c", "pass"],
        }
        for cmd in commands.values():  # untimed: compiles the modules to bytecode once
            subprocess.run([sys.executable, *cmd], env=env, stdout=subprocess.DEVNULL, check=True)
        times: dict[str, list[float]] = {name: [] for name in commands}
        for _ in range(args.repeat):
            for name, cmd in commands.items():
                started = time.perf_counter()
                subprocess.run([sys.executable, *cmd], env=env, stdout=subprocess.DEVNULL, check=True)
                times[name].append(time.perf_counter() - started)
        load = os.getloadavg()[0]
        print(f"{os.cpu_count()} cores, load average {load:.2f}; medians of {args.repeat} alternating runs")
        for name, runs in times.items():
            print(f"  {name}: {statistics.median(runs):.3f} s (min {min(runs):.3f}, max {max(runs):.3f})")
        for name in ("--version", "analyze (1 tiny epoch)", "analyze (1 tiny NPZ epoch)"):
            print(f"-X importtime, {name}: the {args.top} slowest modules by their own import time")
            for cumulative, own, module in importtime(commands[name], env, args.top):
                print(f"  {own * 1e3:7.1f} ms own, {cumulative * 1e3:7.1f} ms cumulative  {module}")


if __name__ == "__main__":
    main()
