"""Aligning per-sample vectors of different epochs through the run's shared id table."""

from __future__ import annotations

import numpy as np

from lossacc_cli.analysis.run import EpochRecord


def positions(record: EpochRecord, n_ids: int) -> np.ndarray:
    """For each id of the run, its row in this epoch's file, or -1 when absent (int64, shape (n_ids,))."""
    pos = np.full(n_ids, -1, dtype=np.int64)
    pos[record.rows] = np.arange(record.rows.shape[0])
    return pos


def common_rows(a: EpochRecord, b: EpochRecord, n_ids: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Ids present at both epochs: (id-table rows, rows in a's file, rows in b's file), in id-table order."""
    pa, pb = positions(a, n_ids), positions(b, n_ids)
    both = np.flatnonzero((pa >= 0) & (pb >= 0))
    return both, pa[both], pb[both]
