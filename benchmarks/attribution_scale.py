"""Time and memory of the cross-epoch analysis at scale: the decomposed rise, its significance,
the label-quality score, the causes and the whole ``analyze_run``.

Usage: python benchmarks/attribution_scale.py [--epochs 100] [--samples 50000] [--classes 10]

The per-epoch reduction (reading files, losses) is benchmarked separately (benchmarks/bench.py); here
the run is built from in-memory logits so the figures isolate the cross-epoch work. Each stage is
timed as the best of ``--repeat`` calls; peak RSS is read from the kernel (ru_maxrss) at the end.
"""

from __future__ import annotations

import argparse
import resource
import time

import numpy as np

from lossacc_cli.analysis.label_quality import label_quality
from lossacc_cli.analysis.overview import overview
from lossacc_cli.analysis.rise import decompose
from lossacc_cli.analysis.run import build_run
from lossacc_cli.analysis.significance import rise_significance
from lossacc_cli.readers.model import EpochData
from lossacc_cli.report import analyze_run


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def epochs(n_epochs: int, n: int, k: int, seed: int = 0):
    """A model that learns, then grows overconfident, with epoch-to-epoch noise."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, k, n)
    ids = rng.permutation(n).astype(np.int64) + 10_000_000
    base = rng.normal(size=(n, k)).astype(np.float32)
    base[np.arange(n), labels] += 1.5
    for e in range(n_epochs):
        scale = 0.5 + 0.05 * e + 0.02 * rng.normal()
        z = (base * scale).astype(np.float32)
        order = rng.permutation(n)  # rows in a different order every epoch: alignment by id is exercised
        yield EpochData(epoch=e + 1, source=f"epoch_{e + 1}", ids=ids[order], labels=labels[order], kind="logits",
                        scores=z[order], n_classes=k)


def best_of(repeat: int, fn):
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return min(times), out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--epochs", type=int, default=100)
    ap.add_argument("--samples", type=int, default=50_000)
    ap.add_argument("--classes", type=int, default=10)
    ap.add_argument("--repeat", type=int, default=5)
    a = ap.parse_args()
    print(f"{a.epochs} epochs x {a.samples} samples x {a.classes} classes (best of {a.repeat})")
    t = time.perf_counter()
    run = build_run("bench", epochs(a.epochs, a.samples, a.classes))
    print(f"build run (per-epoch reduction incl. T*):  {time.perf_counter() - t:8.3f} s")
    ov = overview(run.summaries)
    b = run.records[-1].epoch
    t_rise, rise = best_of(a.repeat, lambda: decompose(run, ov.best_loss_epoch, b))
    print(f"decomposed rise (3 parts located):         {1000 * t_rise:8.1f} ms")
    t_sig, _ = best_of(a.repeat, lambda: rise_significance(run, rise, picked=True))
    print(f"significance (pick-the-minimum draws):     {1000 * t_sig:8.1f} ms")
    t_lq, _ = best_of(a.repeat, lambda: label_quality(run))
    print(f"label quality (score, count, test):        {1000 * t_lq:8.1f} ms")
    t_all, report = best_of(a.repeat, lambda: analyze_run(run))
    print(f"analyze_run (everything analyze shows):    {1000 * t_all:8.1f} ms")
    t_json, _ = best_of(a.repeat, lambda: report.to_dict(top=10))
    print(f"to_dict (the JSON body):                   {1000 * t_json:8.1f} ms")
    print(f"peak RSS {rss_mb():.0f} MB; headline: {report.headline}")


if __name__ == "__main__":
    main()
