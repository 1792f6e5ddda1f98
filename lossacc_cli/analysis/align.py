"""Aligning per-sample vectors of different epochs through the run's shared id table."""

from __future__ import annotations

import numpy as np

from lossacc_cli.analysis.run import EpochRecord


def positions(record: EpochRecord, n_ids: int) -> np.ndarray:
    """For each id of the run, its row in this epoch's file, or -1 when absent (int64, shape (n_ids,))."""
    pos = np.full(n_ids, -1, dtype=np.int64)
    pos[record.rows] = np.arange(record.rows.shape[0])
    return pos


def in_id_order(record: EpochRecord, n_ids: int) -> bool:
    """True when the epoch's file holds every id of the run, in id-table order (its rows are
    0..n-1): the usual run, whose files list the same samples in the same order."""
    rows = record.rows
    return rows.shape[0] == n_ids and bool((rows == np.arange(n_ids)).all())


def common_rows(a: EpochRecord, b: EpochRecord, n_ids: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, bool]:
    """Ids present at both epochs: (id-table rows, rows in a's file, rows in b's file), in id-table
    order, and whether all three are 0..n-1 (both files in id-table order: a per-sample vector of
    either epoch is then the population's as it is)."""
    if in_id_order(a, n_ids) and in_id_order(b, n_ids):
        every = np.arange(n_ids)
        return every, every, every, True
    pa, pb = positions(a, n_ids), positions(b, n_ids)
    both = np.flatnonzero((pa >= 0) & (pb >= 0))
    return both, pa[both], pb[both], False
