"""Whole-process wall time and peak memory of ``lossacc analyze`` beside three peers, in one run.

Usage::

    python benchmarks/bench.py --peer-python PEERVENV/bin/python          # every workload
    python benchmarks/bench.py --peer-python ... --only list,npz,small --repeat 5
    python benchmarks/bench.py --scale 0.2                                # smaller workloads

Seeded data is written to a temporary folder outside the repository (``--keep DIR`` keeps it there
instead). For every workload, in alternating order (lossacc, then each peer, repeated
``--repeat`` times after one untimed warm-up run of each, which also fills the page cache), each
program runs in a fresh process as a user would run it, its modules compiled to bytecode once
(as an installed package's are; see ``as_installed``):

- ``lossacc analyze DIR --format json --no-cache`` with its JSON to /dev/null (the warm-up run's
  JSON is kept to check the peers' loss and accuracy against it): every run reduces every epoch,
  as the peers do. ``--cached`` measures instead what a second look at the same run costs: the
  per-epoch cache in a private folder (filled by the warm-up run, removed afterwards);
- the peers of ``benchmarks/peer_pipeline.py`` (pandas + scikit-learn, torch + torchmetrics on the
  CPU, netcal), which compute only each epoch's loss, accuracy and one binned ECE, in the
  interpreter given by ``--peer-python`` (the ``benchpeers`` extra; a CPU build of torch);
- the layout's decode floor: pyarrow (or, for NPZ, a memory map and its CRC-32) reading the same
  files and nothing else, timed inside its process (``benchmarks/floors.py`` has more floors).

Figures are medians of the repeated runs: wall time, the work beyond start-up (wall time minus
the median of the same interpreter importing and exiting - ``lossacc --version``, a peer's
``--import-only`` - run in the same alternating rounds; lossacc's work so includes the imports
of ``analyze`` itself), and the process's peak RSS (VmHWM, sampled until it exits). The ratios
are peer / lossacc and floor / lossacc work (1.0 = at the floor). ``--growth`` also runs the first half
of each many-epoch workload to show how the peak grows per epoch.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parents[1]
PEER = Path(__file__).resolve().parent / "peer_pipeline.py"
SEED = 20240611


# --- data ----------------------------------------------------------------------------------------


def trained_logits(rng: np.random.Generator, labels: np.ndarray, k: int, sharpness: float,
                   accuracy: float) -> np.ndarray:
    """float32 logits that look like a trained classifier's: a noisy bulk, one confident class."""
    n = labels.shape[0]
    logits = rng.standard_normal((n, k), dtype=np.float32)
    logits *= 1.5
    right = rng.random(n) < accuracy
    predicted = np.where(right, labels, rng.integers(0, k, n))
    # capped so that no loss passes 36 nats, where the peer's probabilities would be clipped
    boost = np.minimum(rng.gamma(4.0, sharpness / 4.0, size=n), 22.0).astype(np.float32)
    logits[np.arange(n), predicted] += boost
    return logits


def list_column(logits: np.ndarray) -> pa.Array:
    n, k = logits.shape
    offsets = pa.array(np.arange(0, n * k + 1, k, dtype=np.int32))
    return pa.ListArray.from_arrays(offsets, pa.array(logits.reshape(-1)))


def write_epoch(folder: Path, epoch: int, labels: np.ndarray, logits: np.ndarray, layout: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    ids = np.arange(labels.shape[0], dtype=np.int64)
    if layout == "npz":
        np.savez(folder / f"epoch_{epoch:03d}.npz", logits=logits, labels=labels, sample_ids=ids)
        return
    columns = {"sample_id": ids, "label": labels}
    if layout == "wide":
        columns.update({f"logit_{k}": logits[:, k] for k in range(logits.shape[1])})
        pq.write_table(pa.table(columns), folder / f"epoch_{epoch:03d}.parquet",
                       compression="none", use_dictionary=False)
    else:  # pyarrow's defaults: snappy, one row group up to 1Mi rows
        columns["logits"] = list_column(logits)
        pq.write_table(pa.table(columns), folder / f"epoch_{epoch:03d}.parquet")


def make_run(folder: Path, *, n: int, k: int, epochs: int, layout: str, seed: int) -> int:
    """``epochs`` epochs of one run: accuracy and confidence grow with the epoch. Returns the
    logits' bytes."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, k, n)
    for e in range(1, epochs + 1):
        progress = e / max(1, epochs)
        logits = trained_logits(rng, labels, k, sharpness=4.0 + 8.0 * progress,
                                accuracy=0.5 + 0.3 * progress)
        write_epoch(folder, e, labels, logits, layout)
    return n * k * 4 * epochs


# --- measuring a process -------------------------------------------------------------------------


@dataclass
class Measured:
    wall: float
    peak_kb: int  # the process's own peak RSS (VmHWM, read until it exits)
    tree_kb: int  # sampled peak of the summed RSS of the process and its descendants
    stdout: str


def _status_kb(pid: int, field: str) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith(field):
                return int(line.split()[1])
    return 0


def _tree_rss_kb(pid: int) -> int:
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        try:
            total += _status_kb(p, "VmRSS:")
            for task in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{task}/children") as children:
                    todo.extend(int(c) for c in children.read().split())
        except (OSError, ValueError):
            continue
    return total


def run_process(cmd: list[str], *, env: dict | None = None, stdout=subprocess.PIPE) -> Measured:
    """Run ``cmd``; wall time, and memory read from /proc every few ms while it runs.

    VmHWM (reset by exec, unlike getrusage's ru_maxrss, which would count the memory of this
    process that the child shares between fork and exec) is monotonic, so its last reading is the
    peak unless the peak falls in the last few milliseconds.
    """
    peak = [0, 0]
    done = threading.Event()
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=stdout, stderr=subprocess.PIPE, env=env)

    def sample() -> None:
        while not done.is_set():
            try:
                peak[0] = max(peak[0], _status_kb(proc.pid, "VmHWM:"))
            except OSError:
                pass
            peak[1] = max(peak[1], _tree_rss_kb(proc.pid))
            done.wait(0.002)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    out, err = proc.communicate()
    wall = time.perf_counter() - started
    done.set()
    sampler.join()
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({proc.returncode}):\n{err.decode()}")
    return Measured(wall, peak[0], max(peak[1], peak[0]), (out or b"").decode())


def median_of(runs: list[Measured]) -> Measured:
    """The median wall time and, apart, the median peak (of the same runs)."""
    walls = sorted(m.wall for m in runs)
    peaks = sorted(m.peak_kb for m in runs)
    trees = sorted(m.tree_kb for m in runs)
    mid = len(runs) // 2
    return Measured(walls[mid], peaks[mid], trees[mid], runs[0].stdout)


def best_of(cmd: list[str], repeat: int, env: dict | None = None) -> Measured:
    return median_of([run_process(cmd, env=env) for _ in range(repeat)])


# --- the workloads -------------------------------------------------------------------------------


@dataclass
class Case:
    name: str
    what: str
    n: int
    k: int
    epochs: int
    layout: str

    @property
    def epoch_bytes(self) -> int:
        return self.n * self.k * 4


def cases(scale: float) -> list[Case]:
    def n(x: int) -> int:
        return max(100, int(x * scale))

    def size(x: int) -> str:
        return f"{n(x):,}"

    return [
        Case("list", f"1 epoch {size(50_000)} x 1,000 float32, list-Parquet", n(50_000), 1_000, 1, "list"),
        Case("npz", f"1 epoch {size(50_000)} x 1,000, NPZ", n(50_000), 1_000, 1, "npz"),
        Case("wide", f"1 epoch {size(50_000)} x 1,000, wide Parquet", n(50_000), 1_000, 1, "wide"),
        Case("small", f"100 epochs x {size(10_000)} x 10, list-Parquet", n(10_000), 10, 100, "list"),
        Case("large", f"100 epochs x {size(50_000)} x 100, list-Parquet", n(50_000), 100, 100, "list"),
        Case("k10_5m", f"1 epoch {size(5_000_000)} x 10, list-Parquet", n(5_000_000), 10, 1, "list"),
        Case("k10_1m", f"1 epoch {size(1_000_000)} x 10, list-Parquet", n(1_000_000), 10, 1, "list"),
    ]


def generate(folder: Path, case: Case, seed: int, env: dict) -> int:
    """Write a case's data from a separate process, so that this one stays small (the measured
    processes are forked from it)."""
    spec = json.dumps({"folder": str(folder), "n": case.n, "k": case.k, "epochs": case.epochs,
                       "layout": case.layout, "seed": seed})
    done = subprocess.run([sys.executable, __file__, "--generate", spec], env=env, check=True,
                          capture_output=True, text=True)
    return int(done.stdout)


PER_SAMPLE_BYTES = 41
"""Bytes a record keeps per sample and epoch: float64 loss, confidence, p[label], margin; int64
prediction; bool correct."""


# --- decode floors -------------------------------------------------------------------------------


def decode_floor(folder: str, layout: str) -> float:
    """Seconds for pyarrow (NPZ: mmap + CRC-32) to decode every file of the folder, nothing else:
    the fastest of its whole-file (multi-threaded) read of the columns lossacc reads and, for a list
    column, its streaming batches at lossacc's batch size and at 65,536 rows."""
    import mmap
    import zlib

    from lossacc_cli.readers.stream import STREAM_BATCH_BYTES

    files = sorted(p for p in Path(folder).iterdir() if p.is_file())
    if layout == "npz":
        started = time.perf_counter()
        for f in files:
            with open(f, "rb") as handle, mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as view:
                zlib.crc32(view)
        return time.perf_counter() - started
    needed = [name for name in pq.ParquetFile(files[0]).schema_arrow.names if name != "sample_id"]
    started = time.perf_counter()
    for f in files:
        pq.read_table(f, columns=needed, use_threads=True)
    best = time.perf_counter() - started
    if layout != "list":
        return best
    group = pq.ParquetFile(files[0]).metadata.row_group(0)
    values = [group.column(i).num_values for i in range(group.num_columns)
              if group.column(i).path_in_schema.endswith(".element")]
    k = max(1, max(values, default=0) // max(1, group.num_rows))  # scores per row
    for batch_rows in sorted({max(1, STREAM_BATCH_BYTES // (4 * k)), 65536}):
        started = time.perf_counter()
        for f in files:
            parquet_file = pq.ParquetFile(f, pre_buffer=False, buffer_size=1 << 20)
            for _ in parquet_file.iter_batches(batch_size=batch_rows, columns=needed):
                pass
        best = min(best, time.perf_counter() - started)
    return best


def floor_cmd(folder: Path, layout: str) -> list[str]:
    return [sys.executable, __file__, "--floor", json.dumps([str(folder), layout])]


CACHED = False
"""``--cached``: lossacc runs use the per-epoch cache (in a private folder) instead of --no-cache."""


def lossacc_cmd(path: Path, jobs: int | None) -> list[str]:
    cmd = [sys.executable, "-m", "lossacc_cli", "analyze", str(path), "--format", "json"]
    if not CACHED:
        cmd.append("--no-cache")
    if jobs is not None:
        cmd += ["--jobs", str(jobs)]
    return cmd


def as_installed(env: dict, bytecode: str) -> dict:
    """``env`` with Python's bytecode cache on, kept in the folder ``bytecode``: every program then
    runs as an installed package does, its modules compiled once (pip compiles them on install).
    Where bytecode writing is turned off (PYTHONDONTWRITEBYTECODE), a source checkout would
    otherwise compile each of its modules again in every process: 0.2-0.3 s of lossacc's start-up."""
    env = dict(env)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = bytecode
    return env


def run_to_null(cmd: list[str], env: dict) -> Measured:
    """``run_process`` with stdout to /dev/null (as ``> /dev/null`` would)."""
    return run_process(cmd, env=env, stdout=subprocess.DEVNULL)


PEERS = ("sklearn", "torch", "netcal")


def fmt_ratio(x: float) -> str:
    return f"{x:.1f}x" if x >= 0.95 else f"{x:.2f}x"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=3, help="timed runs per program (medians)")
    parser.add_argument("--jobs", type=int, default=None,
                        help="pass --jobs N to lossacc (default: its own default, all cores)")
    parser.add_argument("--only", default="", help="comma-separated workload names")
    parser.add_argument("--scale", type=float, default=1.0, help="multiply every N by this")
    parser.add_argument("--peer-python", default=os.environ.get("LOSSACC_PEER_PYTHON"),
                        help="interpreter with the benchpeers extra (no peers without it)")
    parser.add_argument("--peers", default=",".join(PEERS), help="comma-separated peers to run")
    parser.add_argument("--growth", action="store_true", help="per-epoch growth of the peak RSS")
    parser.add_argument("--keep", type=Path, default=None, help="write the data here and keep it")
    parser.add_argument("--cached", action="store_true",
                        help="lossacc with its per-epoch cache (private folder), not --no-cache")
    parser.add_argument("--generate", help=argparse.SUPPRESS)
    parser.add_argument("--floor", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.generate:
        spec = json.loads(args.generate)
        print(make_run(Path(spec.pop("folder")), **spec))
        return
    if args.floor:
        print(decode_floor(*json.loads(args.floor)))
        return

    global CACHED
    CACHED = args.cached
    env = as_installed(dict(os.environ), tempfile.mkdtemp(prefix="lossacc-bench-bytecode-"))
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p)
    env.setdefault("NO_COLOR", "1")
    cache_dir = tempfile.mkdtemp(prefix="lossacc-bench-cache-")  # never the user's own cache
    env["LOSSACC_CACHE_DIR"] = cache_dir
    peers = [p for p in args.peers.split(",") if p] if args.peer_python else []
    selected = [c for c in cases(args.scale) if not args.only or c.name in args.only.split(",")]
    base = args.keep or Path(tempfile.mkdtemp(prefix="lossacc-bench-"))
    load = os.getloadavg()
    print(f"machine: {os.cpu_count()} cores, load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} "
          f"at the start; python {sys.version.split()[0]}; numpy {np.__version__}; pyarrow "
          f"{pa.__version__}; {args.repeat} timed runs each (medians), alternating; lossacc "
          f"{'with its per-epoch cache (warm)' if CACHED else 'with --no-cache'}")
    # start-up: every program importing what it needs and exiting, in alternating rounds too, and
    # again in each workload's rounds (the load of a shared machine moves between workloads)
    startup_cmds = {"lossacc": [sys.executable, "-m", "lossacc_cli", "--version"]}
    startup_cmds.update({p: [args.peer_python, str(PEER), p, "--import-only"] for p in peers})
    for cmd in startup_cmds.values():  # untimed: compiles each program's modules once
        run_to_null(cmd, env)
    rounds = [{name: run_to_null(cmd, env) for name, cmd in startup_cmds.items()}
              for _ in range(max(5, args.repeat))]
    startup = {name: median_of([r[name] for r in rounds]) for name in startup_cmds}
    print("start-up: " + "; ".join(f"{name} {m.wall:.3f} s, {m.peak_kb / 1024:.0f} MB"
                                   for name, m in startup.items()))
    rows = []
    try:
        for index, case in enumerate(selected):
            folder = base / case.name
            t0 = time.perf_counter()
            size = generate(folder, case, SEED + index, env)
            print(f"\n[{case.name}] {case.what}: {size / 1e6:.0f} MB of logits "
                  f"(generated in {time.perf_counter() - t0:.0f} s)", flush=True)
            programs = {"lossacc": lossacc_cmd(folder, args.jobs),
                        "floor": floor_cmd(folder, case.layout)}
            programs.update({p: [args.peer_python, str(PEER), p, str(folder)] for p in peers})
            warm = {name: run_process(cmd, env=env) for name, cmd in programs.items()}
            timed: dict[str, list[Measured]] = {name: [] for name in programs}
            started_up: dict[str, list[Measured]] = {name: [] for name in startup_cmds}
            for _ in range(args.repeat):
                for name, cmd in programs.items():
                    if name == "floor":
                        timed[name].append(run_process(cmd, env=env))
                    else:
                        timed[name].append(run_to_null(cmd, env))
                        started_up[name].append(run_to_null(startup_cmds[name], env))
            med = {name: median_of(runs) for name, runs in timed.items()}
            startup = {name: median_of(runs) for name, runs in started_up.items()}
            floor_s = sorted(float(m.stdout) for m in timed["floor"])[args.repeat // 2]
            ours = json.loads(warm["lossacc"].stdout)["epochs"]
            work = med["lossacc"].wall - startup["lossacc"].wall
            epoch_mb = case.epoch_bytes / 1e6
            vectors = case.n * PER_SAMPLE_BYTES * case.epochs / 1e6
            peak = med["lossacc"].peak_kb / 1024 * 1.048576
            over = (med["lossacc"].peak_kb - startup["lossacc"].peak_kb) / 1024 * 1.048576
            print(f"  lossacc: wall {med['lossacc'].wall:.3f} s, work {work:.3f} s, peak RSS "
                  f"{peak:.0f} MB ({over:.0f} MB over start-up = {over / (epoch_mb + vectors):.2f}x one "
                  f"epoch's scores {epoch_mb:.0f} MB + per-sample vectors {vectors:.0f} MB)")
            print(f"  decode floor: {floor_s:.3f} s ({size / floor_s / 1e9:.2f} GB/s); lossacc work is "
                  f"{floor_s / work:.2f}x the floor's speed")
            row = {"case": case, "lossacc": med["lossacc"], "work": work, "floor": floor_s}
            for peer in peers:
                m = med[peer]
                theirs = json.loads(warm[peer].stdout)["epochs"]
                dloss = max(abs(a["loss"] - b["loss"]) for a, b in zip(ours, theirs))
                dacc = max(abs(a["accuracy"] - b["accuracy"]) for a, b in zip(ours, theirs))
                pwork = m.wall - startup[peer].wall
                print(f"  {peer}: wall {m.wall:.3f} s ({fmt_ratio(m.wall / med['lossacc'].wall)} lossacc's), "
                      f"work {pwork:.3f} s ({fmt_ratio(pwork / work)}), peak RSS {m.peak_kb / 1024:.0f} MB; "
                      f"max |loss diff| {dloss:.1e}, |accuracy diff| {dacc:.1e} over {len(theirs)} epochs")
                row[peer] = (m, pwork)
            rows.append(row)
            if args.growth and case.epochs > 1:
                files = sorted(p for p in folder.iterdir() if p.is_file())
                half = base / f"{case.name}-half"
                half.mkdir(exist_ok=True)
                for f in files[: case.epochs // 2]:
                    (half / f.name).symlink_to(f)
                run_half = best_of(lossacc_cmd(half, args.jobs), args.repeat, env)
                grown = (med["lossacc"].peak_kb - run_half.peak_kb) * 1024 / (case.epochs - case.epochs // 2)
                print(f"  peak RSS grows {grown / 1e6:.2f} MB per epoch (per-sample vectors: "
                      f"{case.n * PER_SAMPLE_BYTES / 1e6:.2f} MB)")
                shutil.rmtree(half)
            if args.keep is None:
                shutil.rmtree(folder)
    finally:
        shutil.rmtree(cache_dir, ignore_errors=True)
        if args.keep is None:
            shutil.rmtree(base, ignore_errors=True)
    print("\n| workload | lossacc wall / work / peak | decode floor (floor/work) | "
          + " | ".join(f"{p} wall / peak (ratio)" for p in peers) + " |")
    print("|---|---|---|" + "---|" * len(peers))
    for row in rows:
        m = row["lossacc"]
        cells = [row["case"].what, f"{m.wall:.2f} s / {row['work']:.2f} s / {m.peak_kb / 1024:.0f} MB",
                 f"{row['floor']:.2f} s ({row['floor'] / row['work']:.2f})"]
        for peer in peers:
            pm, _ = row[peer]
            cells.append(f"{pm.wall:.2f} s / {pm.peak_kb / 1024:.0f} MB ({fmt_ratio(pm.wall / m.wall)})")
        print("| " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
