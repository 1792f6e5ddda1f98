"""Where a run's peak memory is reached: the process's peak RSS (VmHWM) and its resident memory
(VmRSS) after each stage of ``analyze --format json``, in one process.

Usage::

    python benchmarks/peak_stages.py                     # 1 epoch of 5,000,000 x 10 (200 MB)
    python benchmarks/peak_stages.py --n 1000000 --epochs 3
    python benchmarks/peak_stages.py --path RUN_FOLDER   # a run of your own
    python benchmarks/peak_stages.py --fit               # also inside the epoch's reduction

The stages are: the run loaded (every epoch read and reduced), the analysis (``analyze_run``), each
section of the report computed on first use (the comparison by class, the calibration report, the
loss distribution), the JSON body, and the document written to the null device. A stage whose peak
is above the one before it is where the peak grows. With ``--fit`` (one process, ``--jobs 1``),
the epoch reduction is also read at the end of its streaming pass, before and after the
recalibration at T*, and after the summary. The data is seeded list-Parquet written to a temporary
folder by another process (``bench.py --generate``; ``--keep DIR`` keeps it).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
sys.path.insert(0, str(ROOT))


def memory() -> tuple[float, float]:
    """(peak RSS, resident memory) of this process in MB, from /proc/self/status."""
    found = {}
    with open("/proc/self/status") as status:
        for line in status:
            key, _, value = line.partition(":")
            if key in ("VmHWM", "VmRSS"):
                found[key] = int(value.split()[0]) / 1024
    return found["VmHWM"], found["VmRSS"]


def say(stage: str) -> None:
    peak, resident = memory()
    print(f"  {stage:<37} peak {peak:7.0f} MB   resident {resident:7.0f} MB", flush=True)


def watch_the_fit() -> None:
    """Report the memory inside each epoch's reduction (the functions wrapped, not changed)."""
    import lossacc_cli.metrics.stream as stream

    recalibrate, summary = stream.recalibrate, stream.summary_from_parts
    fit = stream.EpochReducer.fit_temperature

    def fit_temperature(self, run_pass, release=None):
        say("epoch: streaming pass done")
        return fit(self, run_pass, release)

    def recalibrated(*args, **kwargs):
        say("epoch: last pass done, scores let go")
        out = recalibrate(*args, **kwargs)
        say("epoch: recalibrated at T*")
        return out

    def summarized(*args, **kwargs):
        out = summary(*args, **kwargs)
        say("epoch: summary")
        return out

    stream.EpochReducer.fit_temperature = fit_temperature
    stream.recalibrate = recalibrated
    stream.summary_from_parts = summarized


def stages(path: str, jobs: int) -> None:
    from lossacc_cli.analysis.run import load_run
    from lossacc_cli.readers.model import ReadOptions
    from lossacc_cli.render.jsonout import document, dump_parts
    from lossacc_cli.report import analyze_run

    say("imports")
    run = load_run(path, ReadOptions(), jobs=jobs)
    say("run loaded")
    report = analyze_run(run)
    say("analysis")
    for section in ("comparison", "calibration_from", "losses_from"):
        getattr(report, section)
        say(f"report: {section}")
    body = report.json_body(top=10)
    say("JSON body")
    with open(os.devnull, "w") as sink:
        for part in dump_parts(document("analyze", body)):
            sink.write(part)
    say("JSON written")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--path", help="a run folder of your own (else seeded data is written)")
    parser.add_argument("--n", type=int, default=5_000_000)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--fit", action="store_true", help="also inside each epoch's reduction (--jobs 1)")
    parser.add_argument("--keep", help="write the data here and keep it")
    args = parser.parse_args()
    if args.fit:
        watch_the_fit()
        args.jobs = 1  # the wrapped functions run in this process
    if args.path:
        print(f"{args.path}, --jobs {args.jobs}")
        stages(args.path, args.jobs)
        return
    with tempfile.TemporaryDirectory(prefix="lossacc-peaks-") as tmp:
        folder = Path(args.keep or tmp) / f"n{args.n}_k{args.k}_e{args.epochs}"
        if not folder.exists():  # written by another process: this one's memory starts clean
            spec = {"folder": str(folder), "n": args.n, "k": args.k, "epochs": args.epochs,
                    "layout": "list", "seed": 1}
            subprocess.run([sys.executable, str(ROOT / "benchmarks" / "bench.py"), "--generate",
                            json.dumps(spec)], check=True, stdout=subprocess.DEVNULL)
        scores = args.n * args.k * 4 / 1e6
        print(f"{args.epochs} epoch(s) of {args.n:,} x {args.k} float32 (list-Parquet, {scores:.0f} MB "
              f"of scores per epoch), --jobs {args.jobs}")
        stages(str(folder), args.jobs)


if __name__ == "__main__":
    main()
