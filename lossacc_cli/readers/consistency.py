"""Checks across epochs that reading one file cannot make: every sample keeps its label.

The evaluation set is fixed: a sample id whose label differs between two epochs means the files
do not describe the same samples (the validation set changed, or ids were reassigned). Without
ids, rows are paired by position; a label that changes at a position means the rows were
shuffled between epochs, and every per-sample result would pair different samples. Both are
input errors.
"""

from __future__ import annotations

import numpy as np

from lossacc_cli.errors import input_error


class LabelLedger:
    """The label of every sample seen so far (by its row in the run's id table).

    ``check(rows, labels, ...)`` is called once per epoch in reading order; it costs one gather
    and one comparison over the epoch's samples (nothing when an epoch repeats the last one's
    rows and labels).
    """

    def __init__(self) -> None:
        self.labels = np.empty(0, dtype=np.int64)
        self.origin = np.empty(0, dtype=np.int32)  # index into sources of the epoch that set it
        self.sources: list[str] = []
        self._last: tuple[np.ndarray, np.ndarray] | None = None

    def check(self, rows: np.ndarray, labels: np.ndarray, *, source: str, ids: np.ndarray,
              ids_from_rows: bool, label_field: str = "label") -> None:
        """Record one epoch's labels; raise InputError when a sample's label differs from the
        one an earlier epoch gave it."""
        last = self._last
        if last is not None and rows is last[0] and np.array_equal(labels, last[1]):
            return
        self.sources.append(source)
        size = int(rows.max()) + 1 if rows.size else 0
        if size > self.labels.size:
            grow = size - self.labels.size
            self.labels = np.concatenate([self.labels, np.full(grow, -1, dtype=np.int64)])
            self.origin = np.concatenate([self.origin, np.full(grow, -1, dtype=np.int32)])
        known = self.labels[rows]
        clash = (known >= 0) & (known != labels)
        if clash.any():
            self._refuse(clash, known, labels, ids, source, ids_from_rows, label_field, rows)
        new = known < 0
        if new.any():
            self.labels[rows[new]] = labels[new]
            self.origin[rows[new]] = len(self.sources) - 1
        self._last = (rows, labels)

    def _refuse(self, clash, known, labels, ids, source, ids_from_rows, label_field, rows) -> None:
        bad = np.flatnonzero(clash)
        first = int(bad[0])
        earlier = self.sources[int(self.origin[rows[first]])]
        example = f"{int(known[first])} -> {int(labels[first])}"
        if ids_from_rows:
            raise input_error(
                source, label_field,
                f"the label at some row positions differs from {earlier} (e.g. {example}); the files "
                "have no sample ids, so rows are paired by position, and these positions hold other "
                "samples (ids shown are row positions)",
                ids=ids[bad[:5]].tolist(), count=int(bad.size),
                hint="save a sample id column (sample_id / sample_ids) with each epoch",
            )
        raise input_error(
            source, label_field,
            f"sample ids whose label differs from {earlier} (e.g. {example}); the evaluation set "
            "must keep each sample's label in every epoch",
            ids=ids[bad[:5]].tolist(), count=int(bad.size),
        )
