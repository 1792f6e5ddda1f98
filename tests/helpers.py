"""Small builders shared by tests (no computation of expected values here)."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

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


def list_array(matrix, layout="list"):
    """Arrow list column (``list``, ``large_list`` or ``fixed_size_list``) holding the rows of
    ``matrix`` (N, K)."""
    n_rows, n_classes = matrix.shape
    flat = pa.array(matrix.reshape(-1))
    if layout == "fixed_size_list":
        return pa.FixedSizeListArray.from_arrays(flat, n_classes)
    offsets = np.arange(0, (n_rows + 1) * n_classes, n_classes)
    if layout == "large_list":
        return pa.LargeListArray.from_arrays(pa.array(offsets, pa.int64()), flat)
    return pa.ListArray.from_arrays(pa.array(offsets, pa.int32()), flat)
