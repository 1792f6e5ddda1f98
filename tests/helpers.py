"""Small builders shared by tests (no computation of expected values here)."""

from __future__ import annotations

import numpy as np

from lossacc_cli.readers.model import EpochData


def epoch(scores, labels, *, kind="logits", epoch_no=1, ids=None, n_classes=None):
    labels = np.asarray(labels, dtype=np.int64)
    scores = np.asarray(scores)
    if n_classes is None:
        n_classes = scores.shape[1] if scores.ndim == 2 else 2
    return EpochData(
        epoch=epoch_no,
        source=f"epoch_{epoch_no}.npz",
        ids=np.arange(len(labels)) if ids is None else np.asarray(ids),
        labels=labels,
        kind=kind,
        scores=scores,
        n_classes=n_classes,
    )
