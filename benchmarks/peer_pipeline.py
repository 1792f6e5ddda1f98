"""The peer pipelines the throughput benchmark compares against: what one would write by hand.

Each peer reads every epoch of a run (one file, or a folder of per-epoch files in name order) and
computes, per epoch, the mean log loss, the accuracy and a 15-bin equal-width ECE over top-label
confidence - far less than ``lossacc analyze`` shows. It prints one JSON line: the numbers of each
epoch, and its own import and work time.

- ``sklearn``: pandas reads the file, NumPy takes the softmax (float64), scikit-learn gives the log
  loss and accuracy, and the ECE is a loop over bins;
- ``torch``: pyarrow reads the file into a CPU tensor, ``torch.nn.functional.cross_entropy`` gives the
  loss, torchmetrics the accuracy and ECE (``multiclass_calibration_error``);
- ``netcal``: pyarrow reads the file, NumPy takes the softmax, netcal's ``ECE`` gives the ECE.

Needs the ``benchpeers`` extra (in an interpreter of its own; a CPU build of torch).

Usage: python benchmarks/peer_pipeline.py {sklearn,torch,netcal} PATH
       python benchmarks/peer_pipeline.py {sklearn,torch,netcal} --import-only
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

started = time.perf_counter()
PEER = sys.argv[1] if len(sys.argv) > 1 else "sklearn"
import numpy as np  # noqa: E402

if PEER == "sklearn":
    import pandas as pd
    from sklearn.metrics import accuracy_score, log_loss
elif PEER == "torch":
    import pyarrow.parquet as pq
    import torch
    from torchmetrics.functional.classification import multiclass_accuracy, multiclass_calibration_error
elif PEER == "netcal":
    import pyarrow.parquet as pq
    from netcal.metrics import ECE
else:
    raise SystemExit(f"unknown peer {PEER!r}")

imported = time.perf_counter()


def files_of(path: Path) -> list[Path]:
    if path.is_file():
        return [path]
    return sorted(p for p in path.iterdir() if p.suffix in (".parquet", ".npz"))


def load_pyarrow(path: Path) -> tuple[np.ndarray, np.ndarray]:
    if path.suffix == ".npz":
        with np.load(path) as archive:
            return archive["logits"], archive["labels"]
    table = pq.read_table(path)
    if "logits" in table.column_names:
        column = table.column("logits").combine_chunks()
        k = len(column[0])
        logits = column.flatten().to_numpy().reshape(-1, k)
    else:
        wide = sorted((c for c in table.column_names if c.startswith("logit_")),
                      key=lambda c: int(c.split("_")[1]))
        logits = np.stack([table.column(c).to_numpy() for c in wide], axis=1)
    return logits, table.column("label").to_numpy()


def load_pandas(path: Path) -> tuple[np.ndarray, np.ndarray]:
    if path.suffix == ".npz":
        with np.load(path) as archive:
            return archive["logits"], archive["labels"]
    frame = pd.read_parquet(path)
    if "logits" in frame.columns:
        logits = np.stack(frame["logits"].to_numpy())
    else:
        wide = [c for c in frame.columns if c.startswith("logit_")]
        logits = frame[sorted(wide, key=lambda c: int(c.split("_")[1]))].to_numpy()
    return logits, frame["label"].to_numpy()


def softmax64(logits: np.ndarray) -> np.ndarray:
    # float64: log_loss clips probabilities at the eps of their dtype, which for float32 caps a
    # sample's loss at 15.9 nats (lossacc clips at float64 eps whatever the input dtype).
    shifted = logits.astype(np.float64)
    shifted -= shifted.max(axis=1, keepdims=True)
    probs = np.exp(shifted)
    probs /= probs.sum(axis=1, keepdims=True)
    return probs


def binned_ece(confidence: np.ndarray, correct: np.ndarray) -> float:
    bins = np.clip(np.searchsorted(np.linspace(0, 1, 16), confidence, side="right") - 1, 0, 14)
    ece = 0.0
    for b in range(15):
        inside = bins == b
        if inside.any():
            ece += inside.mean() * abs(correct[inside].mean() - confidence[inside].mean())
    return float(ece)


def epoch_sklearn(path: Path) -> dict:
    logits, labels = load_pandas(path)
    probs = softmax64(logits)
    loss = log_loss(labels, probs, labels=np.arange(probs.shape[1]))
    pred = probs.argmax(axis=1)
    accuracy = accuracy_score(labels, pred)
    ece = binned_ece(probs.max(axis=1), pred == labels)
    return {"loss": float(loss), "accuracy": float(accuracy), "ece": ece}


def epoch_torch(path: Path) -> dict:
    logits, labels = load_pyarrow(path)
    z = torch.from_numpy(np.ascontiguousarray(logits))
    y = torch.from_numpy(labels.astype(np.int64))
    k = z.shape[1]
    loss = torch.nn.functional.cross_entropy(z.double(), y)
    probs = torch.softmax(z, dim=1)
    accuracy = multiclass_accuracy(probs, y, num_classes=k, average="micro")
    ece = multiclass_calibration_error(probs, y, num_classes=k, n_bins=15, norm="l1")
    return {"loss": float(loss), "accuracy": float(accuracy), "ece": float(ece)}


def epoch_netcal(path: Path) -> dict:
    logits, labels = load_pyarrow(path)
    probs = softmax64(logits)
    y = labels.astype(np.int64)
    loss = float(-np.log(np.maximum(probs[np.arange(len(y)), y], np.finfo(np.float64).eps)).mean())
    accuracy = float((probs.argmax(axis=1) == y).mean())
    ece = float(ECE(bins=15).measure(probs, y))
    return {"loss": loss, "accuracy": accuracy, "ece": ece}


EPOCH = {"sklearn": epoch_sklearn, "torch": epoch_torch, "netcal": epoch_netcal}


if __name__ == "__main__":
    result: dict = {"peer": PEER}
    if sys.argv[2:] != ["--import-only"]:
        result["epochs"] = [EPOCH[PEER](f) for f in files_of(Path(sys.argv[2]))]
    result["import_seconds"] = imported - started
    result["work_seconds"] = time.perf_counter() - imported
    print(json.dumps(result))
