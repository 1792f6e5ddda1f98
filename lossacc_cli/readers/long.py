"""A long-format file read in one pass, its rows handed out epoch by epoch.

When a long-format file's row groups each hold several epochs, reading each epoch's row groups
decodes every row group once for each epoch it holds (20 epochs in one row group: 20 decodes of
the whole file). A file small enough to be kept whole is read once and kept (the Parquet reader's
grouped tables); a larger one is decoded here in one pass, a record batch at a time, and each
epoch's rows are handed out once the last of them has been decoded: rows of later epochs wait for
their epoch, and epochs before the one asked for are dropped. Epochs are asked for in increasing
order (a request for an earlier one starts a new pass), so what is held is never more than the
file holds, and in a file written epoch after epoch, about one epoch and one batch.

Where each epoch's rows end comes from the ``epoch`` column, read once per file. The rows of an
epoch keep their file order, as a filter of the file's rows would give them.
"""

from __future__ import annotations

import atexit
import os
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, ExitStack

import numpy as np
import pyarrow as pa

from lossacc_cli.readers.arrow_numpy import as_numpy
from lossacc_cli.readers.budget import memory_budget

EPOCH = "epoch"

BATCH_BYTES = 8 << 20
"""About this many decoded bytes per record batch of a pass."""

MIN_BATCH_ROWS = 1024
"""Never fewer rows per batch (each batch costs a few calls of its own)."""

Opener = Callable[[], AbstractContextManager]
"""Opens the file again (a checked ``ParquetFile`` as a context manager) for a pass of its own."""


def _stamp(info: os.stat_result) -> tuple:
    return (info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns)


class _Index:
    """Per epoch of one file (sorted), the position of its last row; and whether each epoch's rows
    are one run (the file written epoch after epoch)."""

    def __init__(self, epochs: np.ndarray) -> None:
        n = epochs.shape[0]
        self.epochs, first_from_end = np.unique(epochs[::-1], return_index=True)
        self.last = (n - 1 - first_from_end).astype(np.int64)
        runs = int(np.count_nonzero(epochs[1:] != epochs[:-1])) + 1 if n else 0
        self.contiguous = runs == self.epochs.shape[0]

    def last_row(self, epoch: int) -> int | None:
        at = int(np.searchsorted(self.epochs, epoch))
        if at == self.epochs.shape[0] or self.epochs[at] != epoch:
            return None
        return int(self.last[at])


_INDEXES: dict[str, tuple[tuple, _Index]] = {}


def _index(path: str, parquet_file) -> _Index:
    stamp = _stamp(parquet_file.file_stat)
    known = _INDEXES.get(path)
    if known is not None and known[0] == stamp:
        return known[1]
    index = _Index(as_numpy(parquet_file.read(columns=[EPOCH]).column(EPOCH)))
    _INDEXES.clear()  # the files of one run at a time
    _INDEXES[path] = (stamp, index)
    return index


def one_pass(path: str, parquet_file) -> bool:
    """True when the long-format file ``parquet_file`` (opened, checked) is best read here: its row
    groups hold more than two epochs each, and either its epochs are written one after the other
    (what waits is at most a batch) or the whole decoded file fits in half the memory budget (an
    epoch may wait for the file's last row)."""
    meta = parquet_file.metadata
    if EPOCH not in parquet_file.schema_arrow.names or meta.num_row_groups == 0:
        return False
    index = _index(path, parquet_file)
    if index.epochs.shape[0] <= 2 * meta.num_row_groups:
        return False
    if index.contiguous:
        return True
    claimed = sum(meta.row_group(g).total_byte_size for g in range(meta.num_row_groups))
    return claimed <= memory_budget() // 2


class _Pass:
    """One pass over a file's rows (``columns`` of them), epochs handed out in increasing order."""

    def __init__(self, path: str, stamp: tuple, columns: list[str], schema: pa.Schema, index: _Index,
                 opened: tuple[Iterator[pa.RecordBatch], ExitStack]) -> None:
        self.path, self.stamp, self.columns, self.schema, self.index = path, stamp, columns, schema, index
        self.batches, self.stack = opened
        self.decoded = 0  # rows decoded so far
        self.asked: int | None = None  # the last epoch handed out
        self.waiting: dict[int, list[pa.RecordBatch]] = {}
        self.at = columns.index(EPOCH)

    def close(self) -> None:
        self.waiting.clear()
        self.stack.close()

    def serves(self, stamp: tuple, columns: list[str], epoch: int) -> bool:
        return (self.stamp == stamp and self.columns == columns
                and (self.asked is None or epoch > self.asked))

    def rows(self, epoch: int) -> pa.Table:
        last = self.index.last_row(epoch)
        while last is not None and self.decoded <= last:
            batch = next(self.batches, None)
            if batch is None:  # the file ended early (the index says otherwise): what there is
                break
            self.decoded += batch.num_rows
            self._keep(batch, epoch)
        self.asked = epoch
        parts = self.waiting.pop(epoch, [])
        for earlier in [e for e in self.waiting if e < epoch]:
            del self.waiting[earlier]
        return pa.Table.from_batches(parts) if parts else self.schema.empty_table()

    def _keep(self, batch: pa.RecordBatch, epoch: int) -> None:
        """The batch's rows, by epoch, for the epochs still to come (``epoch`` included)."""
        epochs = as_numpy(batch.column(self.at))
        if epochs.shape[0] == 0:
            return
        first = int(epochs[0])
        if (epochs == first).all():
            if first >= epoch:
                self.waiting.setdefault(first, []).append(batch)
            return
        order = np.argsort(epochs, kind="stable")  # rows keep their file order within an epoch
        ordered = epochs[order]
        cuts = np.flatnonzero(ordered[1:] != ordered[:-1]) + 1
        for start, end in zip(np.concatenate([[0], cuts]), np.concatenate([cuts, [ordered.shape[0]]])):
            value = int(ordered[start])
            if value >= epoch:
                rows = order[start:end]
                part = batch.slice(int(rows[0]), len(rows)) if rows[-1] - rows[0] == len(rows) - 1 \
                    else batch.take(pa.array(rows))
                self.waiting.setdefault(value, []).append(part)


_PASSES: dict[str, _Pass] = {}


def _batches(opener: Opener, columns: list[str], batch_rows: int) -> tuple[Iterator[pa.RecordBatch], ExitStack]:
    """The file opened again, and its record batches; closing the stack closes the file."""
    stack = ExitStack()
    try:
        parquet_file = stack.enter_context(opener())
        return parquet_file.iter_batches(batch_size=batch_rows, columns=columns, use_threads=True), stack
    except BaseException:
        stack.close()
        raise


def epoch_rows(path: str, parquet_file, columns: list[str], epoch: int, opener: Opener) -> pa.Table:
    """The rows of ``epoch`` (``columns`` of them, file order) from the pass over ``path``; a new
    pass when there is none for these columns or the epoch was passed already."""
    stamp = _stamp(parquet_file.file_stat)
    current = _PASSES.get(path)
    if current is None or not current.serves(stamp, columns, epoch):
        _drop(path)
        meta = parquet_file.metadata
        schema = pa.schema([parquet_file.schema_arrow.field(name) for name in columns])
        claimed = sum(meta.row_group(g).total_byte_size for g in range(meta.num_row_groups))
        row_bytes = max(1, claimed // max(1, meta.num_rows))
        current = _Pass(path, stamp, columns, schema, _index(path, parquet_file),
                        _batches(opener, columns, max(MIN_BATCH_ROWS, BATCH_BYTES // row_bytes)))
        _PASSES[path] = current
    try:
        table = current.rows(epoch)
    except BaseException:
        _drop(path)  # a failed pass is not resumed
        raise
    if current.asked == current.index.epochs[-1]:
        _drop(path)  # the last epoch handed out: the file is closed
    return table


def _drop(path: str) -> None:
    old = _PASSES.pop(path, None)
    if old is not None:
        old.close()


@atexit.register
def close_passes() -> None:
    """Close the passes left open (a caller that did not ask for every epoch): their files and
    Arrow's reads ahead. Called when a run has been read, so that no open file or background read
    outlives it (nor is inherited by a worker process forked later); a later read starts a new
    pass."""
    for path in list(_PASSES):
        _drop(path)


def forget_passes() -> None:
    """In a forked worker process: drop the passes inherited from the parent without touching
    them (their reads ahead ran on the parent's threads, which the child does not have)."""
    for current in _PASSES.values():
        _ORPHANS.append(current)  # kept alive, never closed nor freed here
    _PASSES.clear()


_ORPHANS: list[_Pass] = []
