"""Score lossacc's outliers and suspected label errors against published label-error keys.

Usage: python benchmarks/label_errors_realdata.py [REALDATA_DIR]
(default: ../shared/realdata from the project root, where CI keeps it).

Each prediction file is written as a one-epoch NPZ in a temporary folder and run through the CLI
(`lossacc outliers --format json`, `lossacc analyze --format json`), exactly as a user would.
Precision = flagged samples that are known label errors / flagged samples. For source A the key is
incomplete (unreviewed rows count as clean), so its precision is a lower bound.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def run_cli(*args: str) -> dict:
    out = subprocess.run([sys.executable, "-m", "lossacc_cli", *args, "--format", "json", "--top", "100000"],
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


def score(name: str, probs_path: Path, labels_path: Path, errors: set[int]) -> None:
    probs = np.load(probs_path)
    labels = np.load(labels_path)
    with tempfile.TemporaryDirectory() as tmp:
        np.savez(Path(tmp) / "epoch_1.npz", probs=probs, labels=labels)
        out = run_cli("outliers", tmp, "--epoch", "last")
        ana = run_cli("analyze", tmp)
    flagged = [s["id"] for s in out["outliers"]]
    suspects = [s["id"] for s in ana["suspected_label_errors"]["samples"]]
    loss = -np.log(np.maximum(probs[np.arange(len(labels)), labels].astype(np.float64), np.finfo(float).eps))
    top100 = np.argsort(-loss, kind="stable")[:100]

    def precision(ids) -> str:
        if not ids:
            return "n/a (0 flagged)"
        hits = sum(1 for i in ids if int(i) in errors)
        return f"{hits}/{len(ids)} = {hits / len(ids):.3f}"

    print(f"{name:32s} n={len(labels):6d} errors={len(errors):6d} | outliers {precision(flagged):22s} | "
          f"suspects {precision(suspects):24s} | top-100 loss {precision(list(top100))}")


def main() -> None:
    base = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT.parent / "shared" / "realdata"
    a = base / "cleanlab_label_errors"
    for name in ("cifar10", "mnist", "cifar100", "20news", "imdb"):
        key = json.loads((a / name / "label_errors.json").read_text())
        score(f"A/{name}", a / name / "pred_probs.npy", a / name / "labels.npy", set(key["label_errors"]))
    b = base / "label_error_detection_benchmarks"
    for name in ("cifar10n_aggre", "cifar10n_worst", "roman_numeral"):
        key = json.loads((b / name / "label_errors.json").read_text())
        for model in ("resnet18", "swin_base_patch4_window7_224"):
            score(f"B/{name}/{model}", b / name / f"pred_probs_{model}.npy", b / name / "labels.npy",
                  set(key["label_errors"]))


if __name__ == "__main__":
    main()
