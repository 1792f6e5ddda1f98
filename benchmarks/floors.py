"""What bounds lossacc's throughput on this machine: the parts no implementation can skip, timed alone.

Usage: python benchmarks/floors.py DIR [--repeat 7]

DIR is a folder written by ``python benchmarks/bench.py --keep DIR`` (its ``list``, ``npz`` and
``small`` cases). Each figure is the median of ``--repeat`` runs in this process (its spread is
printed too: timings on a shared 2-core VM move by +-30%):

- decoding the 200 MB list-Parquet score column with pyarrow, nothing else (the batches lossacc
  reads), and the same file read whole with ``pq.read_table``;
- the CRC-32 check of the 200 MB NPZ file, memory-mapped (``np.load`` checks its member's too);
- a careful single-core NumPy pipeline on the NPZ logits already in memory: float32 row max, exp,
  sum, loss, accuracy and a 15-bin ECE, in cache-sized blocks (what the issue calls ~0.9 GB/s end to
  end) - lossacc computes this plus margins, class-wise ECE, the power sums for T*, and one or two
  temperature passes;
- reading the 100 small Parquet files with ``pq.read_table``, nothing else;
- how much two processes, each running float32 ``np.exp`` on its own arrays, get done together
  compared with one (the cores' real parallel speed-up).
"""

from __future__ import annotations

import argparse
import mmap
import statistics
import time
import zlib
from multiprocessing import Pool
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq


def timed(fn, repeat: int) -> tuple[float, float, float]:
    runs = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        runs.append(time.perf_counter() - started)
    return statistics.median(runs), min(runs), max(runs)


def decode_list(path: Path) -> None:
    parquet_file = pq.ParquetFile(path, pre_buffer=False, buffer_size=1 << 20)
    for _ in parquet_file.iter_batches(batch_size=524, columns=["logits"]):
        pass


def crc_npz(path: Path) -> None:
    with open(path, "rb") as handle, mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as view:
        zlib.crc32(view)


def numpy_pipeline(logits: np.ndarray, labels: np.ndarray) -> float:
    n, k = logits.shape
    step = max(1, (1 << 18) // k)
    loss = np.empty(n)
    conf = np.empty(n)
    correct = np.empty(n, dtype=bool)
    shifted = np.empty((step, k), dtype=np.float32)
    for start in range(0, n, step):
        z = logits[start : start + step]
        r = z.shape[0]
        s = shifted[:r]
        top = z.argmax(axis=1)
        rows = np.arange(r)
        np.subtract(z, z[rows, top][:, None], out=s)
        y = labels[start : start + step]
        d_true = s[rows, y].astype(np.float64)
        np.exp(s, out=s)
        total = s.sum(axis=1, dtype=np.float64)
        loss[start : start + r] = np.log(total) - d_true
        conf[start : start + r] = 1.0 / total
        correct[start : start + r] = top == y
    bins = np.minimum((conf * 15).astype(np.intp), 14)
    count = np.bincount(bins, minlength=15)
    gap = np.abs(np.bincount(bins, weights=correct, minlength=15)
                 - np.bincount(bins, weights=conf, minlength=15))
    return float(loss.mean()) + float(correct.mean()) + float(gap.sum() / count.sum())


def _exp_work(_: int) -> float:
    blocks = [np.random.default_rng(0).random((262, 1000), dtype=np.float32) for _ in range(200)]
    out = np.empty_like(blocks[0])
    started = time.perf_counter()
    for _ in range(5):
        for block in blocks:
            np.exp(block, out=out)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    rep = args.repeat

    def show(what: str, nbytes: int, times: tuple[float, float, float]) -> None:
        median, low, high = times
        rate = f"{nbytes / median / 1e9:.2f} GB/s" if nbytes else ""
        print(f"{what}: {median:.3f} s (min {low:.3f}, max {high:.3f}) {rate}")

    listed = next((args.folder / "list").glob("*.parquet"), None)
    if listed is not None:
        size = 50_000 * 1_000 * 4
        show("list-Parquet, pyarrow decode of the score column alone", size,
             timed(lambda: decode_list(listed), rep))
        show("list-Parquet, pq.read_table of the whole file", size,
             timed(lambda: pq.read_table(listed), rep))
    npz = next((args.folder / "npz").glob("*.npz"), None)
    if npz is not None:
        with np.load(npz) as archive:
            logits, labels = archive["logits"], archive["labels"].astype(np.int64)
        crc_npz(npz)  # once into the page cache
        show("NPZ, CRC-32 of the file", logits.nbytes, timed(lambda: crc_npz(npz), rep))
        show("NPZ logits in memory, a careful NumPy pipeline (loss, accuracy, ECE), one core",
             logits.nbytes, timed(lambda: numpy_pipeline(logits, labels), rep))
    small = sorted((args.folder / "small").glob("*.parquet"))
    if small:
        show(f"{len(small)} small Parquet files, pq.read_table each, nothing else", 0,
             timed(lambda: [pq.read_table(f) for f in small], rep))
    one = _exp_work(0)
    with Pool(2) as pool:
        both = max(pool.map(_exp_work, [0, 1]))
    print(f"two processes of float32 exp: each {both:.3f} s vs {one:.3f} s alone: the 2 cores give "
          f"{2 * one / both:.2f}x one core")


if __name__ == "__main__":
    main()
