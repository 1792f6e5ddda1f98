"""The peer pipeline the throughput benchmark compares against: what one would write by hand.

pandas reads the file, NumPy takes the softmax, scikit-learn gives the log loss and accuracy, and a
15-bin equal-width ECE is computed by a loop over bins. It prints one JSON line with the numbers
and its own timing. Needs the ``peers`` extra (scikit-learn).

Usage: python benchmarks/peer_pipeline.py FILE          (.parquet, list or wide columns; .npz)
       python benchmarks/peer_pipeline.py --import-only (start-up cost of the same imports)
"""

from __future__ import annotations

import json
import sys
import time

started = time.perf_counter()
import numpy as np
import pandas as pd
from sklearn.metrics import accuracy_score, log_loss

imported = time.perf_counter()


def load(path: str) -> tuple[np.ndarray, np.ndarray]:
    if path.endswith(".npz"):
        with np.load(path) as archive:
            return archive["logits"], archive["labels"]
    frame = pd.read_parquet(path)
    if "logits" in frame.columns:
        logits = np.stack(frame["logits"].to_numpy())
    else:
        wide = [c for c in frame.columns if c.startswith("logit_")]
        logits = frame[sorted(wide, key=lambda c: int(c.split("_")[1]))].to_numpy()
    return logits, frame["label"].to_numpy()


def main(path: str) -> dict:
    logits, labels = load(path)
    # float64: log_loss clips probabilities at the eps of their dtype, which for float32 caps a
    # sample's loss at 15.9 nats (lossacc clips at float64 eps whatever the input dtype).
    logits = logits.astype(np.float64)
    shifted = logits - logits.max(axis=1, keepdims=True)
    probs = np.exp(shifted)
    probs /= probs.sum(axis=1, keepdims=True)
    loss = log_loss(labels, probs, labels=np.arange(probs.shape[1]))
    pred = probs.argmax(axis=1)
    accuracy = accuracy_score(labels, pred)
    confidence = probs.max(axis=1)
    correct = pred == labels
    bins = np.clip(np.searchsorted(np.linspace(0, 1, 16), confidence, side="right") - 1, 0, 14)
    ece = 0.0
    for b in range(15):
        inside = bins == b
        if inside.any():
            ece += inside.mean() * abs(correct[inside].mean() - confidence[inside].mean())
    return {"loss": float(loss), "accuracy": float(accuracy), "ece": float(ece)}


if __name__ == "__main__":
    if sys.argv[1:] == ["--import-only"]:
        result: dict = {}
    else:
        result = main(sys.argv[1])
    result["import_seconds"] = imported - started
    result["work_seconds"] = time.perf_counter() - imported
    print(json.dumps(result))
