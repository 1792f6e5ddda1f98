"""Throughput and memory of ``lossacc analyze``, end to end, and a peer pipeline on the same files.

Usage::

    python benchmarks/bench.py            # every case (about 5 minutes on 2 cores)
    python benchmarks/bench.py --quick    # fewer, smaller epochs for the many-epoch cases
    python benchmarks/bench.py --only list,npz --repeat 5 --jobs 1

Seeded data is written to a temporary folder (``--keep DIR`` keeps it there instead) and
``lossacc analyze DIR --format json`` runs as a user would run it, in a fresh process. For each
case the script prints the wall time, the start-up time (the same interpreter importing the CLI
and exiting: ``lossacc --version``), the work beyond start-up, the logits' bytes per second of that
work, and the peak resident memory over the start-up's (the process's own peak from ``wait4``,
and the sampled peak of the whole process tree, workers included). Times are the best of
``--repeat`` runs; memory is from the same run.

The peer pipeline (``benchmarks/peer_pipeline.py``: pandas + scikit-learn + a binned ECE; the
``peers`` extra) runs on the single-epoch files, timed the same way (its whole process minus its
import-only process), and its loss and accuracy are checked against lossacc's to 1e-6.

For the many-epoch cases it also times one epoch alone with ``--jobs 1`` (the single-epoch
throughput of one core) and compares the run with total bytes / that throughput / the cores, and
it runs the first half of the epochs to show how the peak memory grows with the number of epochs
(against the per-sample vectors each epoch adds).
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


def run_process(cmd: list[str], *, env: dict | None = None) -> Measured:
    """Run ``cmd``; wall time, and memory read from /proc every few ms while it runs.

    VmHWM (reset by exec, unlike getrusage's ru_maxrss, which would count the memory of this
    process that the child shares between fork and exec) is monotonic, so its last reading is the
    peak unless the peak falls in the last few milliseconds.
    """
    peak = [0, 0]
    done = threading.Event()
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)

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
    return Measured(wall, peak[0], max(peak[1], peak[0]), out.decode())


def best_of(cmd: list[str], repeat: int, env: dict | None = None) -> Measured:
    runs = [run_process(cmd, env=env) for _ in range(repeat)]
    return min(runs, key=lambda m: m.wall)


# --- the cases -----------------------------------------------------------------------------------


@dataclass
class Case:
    name: str
    what: str
    n: int
    k: int
    epochs: int
    layout: str
    peer: bool = False


def cases(quick: bool) -> list[Case]:
    many = 20 if quick else 100
    return [
        Case("list", "1 epoch 50,000 x 1,000 float32, list-Parquet (snappy)", 50_000, 1_000, 1,
             "list", peer=True),
        Case("wide", "1 epoch 50,000 x 1,000 float32, wide-Parquet (uncompressed)", 50_000,
             1_000, 1, "wide", peer=True),
        Case("npz", "1 epoch 50,000 x 1,000 float32, NPZ", 50_000, 1_000, 1, "npz", peer=True),
        Case("small", f"{many} epochs of 10,000 x 10, list-Parquet", 10_000, 10, many, "list"),
        Case("large", f"{many} epochs of 50,000 x 100, list-Parquet", 50_000, 100, many, "list"),
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


_LOAD_PEAK = """
import resource, sys
from lossacc_cli.analysis.run import load_run
from lossacc_cli.readers import ReadOptions
def hwm():
    with open("/proc/self/status") as status:
        return next(int(l.split()[1]) for l in status if l.startswith("VmHWM"))
before = hwm()
load_run(sys.argv[1], ReadOptions(), jobs=int(sys.argv[2]))
print((hwm() - before) * 1024)
"""


def load_peak(path: Path, jobs: int | None, env: dict) -> int:
    """Peak RSS added by ``load_run`` alone (reading and reducing the epochs), in bytes."""
    out = subprocess.run([sys.executable, "-c", _LOAD_PEAK, str(path), str(jobs or 0)], env=env,
                         check=True, capture_output=True, text=True)
    return int(out.stdout)


def lossacc_cmd(path: Path, jobs: int | None) -> list[str]:
    cmd = [sys.executable, "-m", "lossacc_cli", "analyze", str(path), "--format", "json"]
    if jobs is not None:
        cmd += ["--jobs", str(jobs)]
    return cmd


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="20 epochs instead of 100")
    parser.add_argument("--repeat", type=int, default=3, help="runs per case (best time counts)")
    parser.add_argument("--jobs", type=int, default=None,
                        help="pass --jobs N to lossacc (default: its own default, all cores)")
    parser.add_argument("--only", default="", help="comma-separated case names")
    parser.add_argument("--keep", type=Path, default=None, help="write the data here and keep it")
    parser.add_argument("--generate", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.generate:
        spec = json.loads(args.generate)
        print(make_run(Path(spec.pop("folder")), **spec))
        return

    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p)
    env.setdefault("NO_COLOR", "1")
    selected = [c for c in cases(args.quick) if not args.only or c.name in args.only.split(",")]
    base = args.keep or Path(tempfile.mkdtemp(prefix="lossacc-bench-"))
    print(f"machine: {os.cpu_count()} cores; python {sys.version.split()[0]}; numpy "
          f"{np.__version__}; pyarrow {pa.__version__}; data in {base}")
    # start-up time varies more than anything measured here: take the best of more runs
    startup = best_of([sys.executable, "-m", "lossacc_cli", "--version"], max(5, args.repeat), env)
    peer_startup = None
    print(f"start-up (lossacc --version): {startup.wall:.3f} s, peak RSS {startup.peak_kb / 1024:.0f} MB")
    try:
        for index, case in enumerate(selected):
            folder = base / case.name
            t0 = time.perf_counter()
            size = generate(folder, case, SEED + index, env)
            generated = time.perf_counter() - t0
            run = best_of(lossacc_cmd(folder, args.jobs), args.repeat, env)
            doc = json.loads(run.stdout)
            work = run.wall - startup.wall
            over = (run.peak_kb - startup.peak_kb) * 1024
            tree = (run.tree_kb - startup.peak_kb) * 1024
            print(f"\n[{case.name}] {case.what}: {size / 1e6:.0f} MB of logits "
                  f"(generated in {generated:.0f} s)")
            print(f"  lossacc analyze: wall {run.wall:.3f} s, work beyond start-up {work:.3f} s, "
                  f"{size / work / 1e9:.2f} GB/s")
            print(f"  peak RSS over start-up: {over / 1e6:.0f} MB = {over / (size / case.epochs):.2f}x "
                  f"one epoch's logits (process tree, sampled: {tree / 1e6:.0f} MB)")
            if case.peer:
                files = sorted(p for p in folder.iterdir() if p.is_file())
                if peer_startup is None:
                    peer_startup = best_of([sys.executable, str(PEER), "--import-only"],
                                           max(5, args.repeat), env)
                peer = best_of([sys.executable, str(PEER), str(files[0])], args.repeat, env)
                result = json.loads(peer.stdout)
                peer_work = peer.wall - peer_startup.wall
                ours = doc["epochs"][0]
                print(f"  peer (pandas + scikit-learn): wall {peer.wall:.3f} s, work {peer_work:.3f} s, "
                      f"peak RSS {(peer.peak_kb - peer_startup.peak_kb) / 1024:.0f} MB over its start-up; "
                      f"lossacc is {peer_work / work:.1f}x faster")
                print(f"  loss {ours['loss']:.9f} vs {result['loss']:.9f} "
                      f"(diff {abs(ours['loss'] - result['loss']):.1e}); accuracy {ours['accuracy']:.6f} vs "
                      f"{result['accuracy']:.6f} (diff {abs(ours['accuracy'] - result['accuracy']):.1e})")
            if case.epochs > 1:
                files = sorted(p for p in folder.iterdir() if p.is_file())
                one = best_of(lossacc_cmd(files[0], 1), args.repeat, env)
                per_core = size / case.epochs / (one.wall - startup.wall)
                cores = args.jobs or os.cpu_count() or 1
                expected = size / per_core / cores
                print(f"  one epoch alone, --jobs 1: work {one.wall - startup.wall:.3f} s = "
                      f"{per_core / 1e9:.3f} GB/s per core; the run took {work / expected:.2f}x "
                      f"(total bytes / that / {cores} cores) = {expected:.3f} s")
                half = base / f"{case.name}-half"
                half.mkdir(exist_ok=True)
                for f in files[: case.epochs // 2]:
                    if not (half / f.name).exists():
                        (half / f.name).symlink_to(f)
                run_half = best_of(lossacc_cmd(half, args.jobs), args.repeat, env)
                added = case.epochs - case.epochs // 2
                grown = (run.peak_kb - run_half.peak_kb) * 1024 / added
                loads = [load_peak(f, args.jobs, env) for f in (half, folder)]
                print(f"  {case.epochs // 2} epochs: peak RSS {(run_half.peak_kb - startup.peak_kb) / 1024:.0f} "
                      f"MB over start-up; {grown / 1e6:.2f} MB more per epoch for the whole analysis, "
                      f"{(loads[1] - loads[0]) / added / 1e6:.2f} MB for reading the epochs (load_run); "
                      f"the per-sample vectors are {case.n * PER_SAMPLE_BYTES / 1e6:.2f} MB")
                shutil.rmtree(half)
            if args.keep is None:
                shutil.rmtree(folder)
    finally:
        if args.keep is None:
            shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
