"""Time and memory of the cross-epoch analysis (compare, training dynamics, suspects, diagnosis) at scale.

Usage: python benchmarks/attribution_scale.py [--epochs 100] [--samples 50000] [--classes 10]

The per-epoch reduction (reading files, losses) is benchmarked separately (benchmarks/bench.py); here
the run is built from in-memory logits so the figures isolate the cross-epoch work. Peak RSS is read
from the kernel (ru_maxrss) after each stage.
"""

from __future__ import annotations

import argparse
import resource
import time

import numpy as np

from lossacc_cli.analysis.compare import compare_epochs
from lossacc_cli.analysis.diagnosis import diagnose
from lossacc_cli.analysis.dynamics import suspected_label_errors, training_dynamics
from lossacc_cli.analysis.overview import overview
from lossacc_cli.analysis.run import build_run
from lossacc_cli.readers.model import EpochData


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def epochs(n_epochs: int, n: int, k: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, k, n)
    ids = rng.permutation(n).astype(np.int64) + 10_000_000
    for e in range(n_epochs):
        z = rng.normal(size=(n, k)).astype(np.float32)
        z[np.arange(n), labels] += 0.1 * e
        order = rng.permutation(n)  # rows in a different order every epoch: alignment by id is exercised
        yield EpochData(epoch=e + 1, source=f"epoch_{e + 1}", ids=ids[order], labels=labels[order], kind="logits",
                        scores=z[order], n_classes=k)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--epochs", type=int, default=100)
    ap.add_argument("--samples", type=int, default=50_000)
    ap.add_argument("--classes", type=int, default=10)
    a = ap.parse_args()
    print(f"{a.epochs} epochs x {a.samples} samples x {a.classes} classes")
    t = time.perf_counter()
    run = build_run("bench", epochs(a.epochs, a.samples, a.classes))
    print(f"build run (per-epoch reduction incl. T*): {time.perf_counter() - t:7.2f} s   peak RSS {rss_mb():8.0f} MB")
    ov = overview(run.summaries)
    t = time.perf_counter()
    compare_epochs(run, ov.best_loss_epoch, run.records[-1].epoch, top=20)
    print(f"compare best -> last:                     {time.perf_counter() - t:7.2f} s   peak RSS {rss_mb():8.0f} MB")
    t = time.perf_counter()
    dyn = training_dynamics(run)
    suspected_label_errors(run, dyn)
    print(f"training dynamics + suspects:             {time.perf_counter() - t:7.2f} s   peak RSS {rss_mb():8.0f} MB")
    t = time.perf_counter()
    diagnose(run, dyn, ov.best_loss_epoch, run.records[-1].epoch)
    print(f"diagnosis:                                {time.perf_counter() - t:7.2f} s   peak RSS {rss_mb():8.0f} MB")


if __name__ == "__main__":
    main()
