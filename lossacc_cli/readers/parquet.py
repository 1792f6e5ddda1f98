"""Read one epoch from Parquet: a per-epoch file, the part files of an ``epoch=N`` folder, or
the rows of one epoch in a long-format table (one file, or a folder of ``part-*`` files).

Only the columns a layout needs are read. Score lists become an (N, K) array through the
flat Arrow values buffer (no Python objects, no copy where Arrow allows it), kept in the
input float dtype.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from functools import partial

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
# pyarrow.compute (0.05-0.1 s to import) is imported inside the filters that use it (long
# format, --split): reading a per-epoch file never needs it

from lossacc_cli.errors import InputError, input_error
from lossacc_cli.readers import long as long_pass
from lossacc_cli.readers.arrow_numpy import as_numpy, from_numpy
from lossacc_cli.readers.budget import Budget, memory_budget, parquet_claim
from lossacc_cli.readers.files import native_path, open_regular
from lossacc_cli.readers.footer import footer_bytes, unsafe_chunks
from lossacc_cli.readers.model import EpochData, ReadOptions
from lossacc_cli.readers.score_check import ScoreCheck
from lossacc_cli.readers.stream import STREAM_BATCH_BYTES, EpochStream, open_stream
from lossacc_cli.readers.validate import (
    CLASS_NAMES_KEY,
    Layout,
    RawEpoch,
    build_epoch,
    build_header,
    choose_layout,
    display_path,
    epoch_numbers,
    file_error,
)


LABEL_ALIASES = ("label", "labels", "target", "y_true", "y")
ID_ALIASES = ("sample_id", "id", "idx", "index", "uid")
EPOCH = "epoch"
SPLIT = "split"


class CheckedParquetFile(pq.ParquetFile):
    """A ParquetFile opened by :func:`open_parquet`, with the stat of the file it opened."""

    file_size: int = 0
    file_stat: os.stat_result | None = None
    file_handle = None
    _chunks_checked = False

    def column_chunk(self, group: int, leaf: int):
        """``metadata.row_group(group).column(leaf)``, after checking once that the footer lets
        Arrow build it (a damaged footer makes that abort the process: see
        :mod:`lossacc_cli.readers.footer`)."""
        stamp = _stamp(self.file_stat)
        if not self._chunks_checked and stamp not in _SAFE_FOOTERS:
            meta = self.metadata
            schema = meta.schema
            levels = [(schema.column(i).max_definition_level, schema.column(i).max_repetition_level)
                      for i in range(meta.num_columns)]
            try:
                data = footer_bytes(self.file_handle.fileno(), self.file_size)
            except Exception as exc:  # noqa: BLE001 - any failure to read the footer is damage
                problem = str(exc) or type(exc).__name__
            else:
                problem = unsafe_chunks(data, levels)
            if problem:
                raise InputError(f"{self.file_label}: cannot read Parquet file: damaged footer ({problem})")
            if len(_SAFE_FOOTERS) > 4096:
                _SAFE_FOOTERS.clear()
            _SAFE_FOOTERS.add(stamp)
        self._chunks_checked = True
        return self.metadata.row_group(group).column(leaf)

    @property
    def chunks_cheap(self) -> bool:
        """True when column chunks may be looked at for free: the footer is small (checking it
        costs well under a millisecond) or was checked already."""
        return (self._chunks_checked or _stamp(self.file_stat) in _SAFE_FOOTERS
                or self.metadata.serialized_size <= SMALL_FOOTER_BYTES)


SMALL_FOOTER_BYTES = 64 << 10
"""Footers up to this size are checked whole before a column chunk is looked at (~10 ms at most);
a larger one (a thousand wide columns) only when a chunk is needed, and its claims are bounded
from the row groups instead."""

_SAFE_FOOTERS: set[tuple] = set()  # stat stamps of files whose footers were checked


@contextmanager
def open_parquet(path: str, **kwargs: object) -> Iterator[CheckedParquetFile]:
    """A ParquetFile for ``path`` (``kwargs`` go to it), opened only when it is a regular file;
    any Arrow/OS failure inside becomes an InputError."""
    label = display_path(path)
    with open_regular(path, label) as (handle, info):
        native = native_path(handle, path)
        try:
            try:
                native.encode("utf-8")
                source: object = native
            except UnicodeEncodeError:
                # Arrow's file system wants UTF-8 paths; a Python file object takes any name.
                source = handle
            parquet_file = CheckedParquetFile(source, **kwargs)
        except (OSError, pa.ArrowException, UnicodeDecodeError) as exc:
            raise file_error(label, "Parquet file", _arrow_reason(exc, native)) from None
        parquet_file.file_size = info.st_size
        parquet_file.file_stat = info
        parquet_file.file_handle = handle
        parquet_file.file_label = label
        try:
            yield parquet_file
        except (OSError, pa.ArrowException, UnicodeDecodeError) as exc:
            # UnicodeDecodeError: a column name in the footer that is not UTF-8
            raise file_error(label, "Parquet file", _arrow_reason(exc, native)) from None
        finally:
            parquet_file.close()


def _arrow_reason(exc: BaseException, native: str) -> str:
    """Arrow's message without the name it opened the file by (``/proc/self/fd/N``)."""
    text = str(exc).strip()
    text = text.replace(f"Could not open Parquet input source '{native}': ", "")
    return text.replace(native, "the file") or type(exc).__name__


def check_claims(parquet_file: CheckedParquetFile, groups: list[int] | None, columns: list[str],
                 label: str, budget: Budget) -> None:
    """Refuse a read of ``columns`` from ``groups`` (None: all) whose footer claims more than the
    file or the budget can hold (see :mod:`lossacc_cli.readers.budget`)."""
    meta = parquet_file.metadata
    if groups is None:
        groups = list(range(meta.num_row_groups))
    parquet_claim(meta, groups, columns, parquet_file.file_size, label, budget,
                  chunk=parquet_file.column_chunk if parquet_file.chunks_cheap else None)


def epoch_values(path: str) -> np.ndarray | None:
    """Sorted distinct values of the ``epoch`` column (int64), or None without that column.

    Reads only that column.
    """
    label = display_path(path)
    with open_parquet(path) as parquet_file:
        if EPOCH not in parquet_file.schema_arrow.names:
            return None
        check_claims(parquet_file, None, [EPOCH], label, Budget(label))
        column = parquet_file.read(columns=[EPOCH]).column(EPOCH)
        stamp = _stamp(parquet_file.file_stat)
    values = _distinct_epochs(column, label)
    _EPOCH_COUNTS[path] = (stamp, int(values.size))
    return values


def _distinct_epochs(column: pa.ChunkedArray, label: str) -> np.ndarray:
    if not pa.types.is_integer(column.type):
        raise input_error(
            label, EPOCH, f"must be integers, found {column.type}", hint="cast to int64"
        )
    if column.null_count:
        raise input_error(label, EPOCH, "null epochs", count=column.null_count)
    import pyarrow.compute as pc
    return epoch_numbers(as_numpy(pc.unique(column)), label, EPOCH)


def _choose_layout(schema: pa.Schema, where: str, options: ReadOptions) -> Layout:
    return choose_layout(schema.names, source=where, options=options, label_aliases=LABEL_ALIASES,
                         id_aliases=ID_ALIASES, wide=True)


def _plan_columns(schema: pa.Schema, layout: Layout, where: str, long: bool):
    """The columns to read (layout plus epoch/split when present), their types, and the raw
    class-names metadata; checks the long-format schema first."""
    if long:
        _check_long_schema(schema, where)
    extra = tuple(n for n in (EPOCH, SPLIT) if n in schema.names)
    columns = list(dict.fromkeys(layout.columns + extra))
    types = {name: schema.field(name).type for name in columns}
    class_names = (schema.metadata or {}).get(CLASS_NAMES_KEY.encode())
    return columns, types, class_names


def read_parquet(
    paths: list[str],
    *,
    epoch: int,
    where: str,
    options: ReadOptions,
    long: bool = False,
) -> EpochData:
    """Read and validate one epoch from ``paths`` (Parquet files, combined in the given order).

    Parameters
    ----------
    paths : list of str
        One file, the parts of an ``epoch=N`` folder, or the files of a long-format table.
    epoch : int
        The epoch number; with ``long`` it selects the rows, otherwise any ``epoch`` column
        must hold only this value.
    where : str
        How the epoch is named in messages.
    options : ReadOptions
        Forced column names, score choice, split filter, renormalisation.
    """
    tables = []
    layout: Layout | None = None
    types: dict[str, pa.DataType] = {}
    columns: list[str] = []
    class_names = None
    budget = Budget(where)
    for path in paths:
        label = display_path(path)
        grouped = _GROUPED.get(path) if long else None
        if grouped is not None and grouped.current():
            # a long-format file read once already: this epoch's rows are a slice of it
            schema = grouped.schema
            if layout is None:
                layout = _choose_layout(schema, where, options)
                columns, types, class_names = _plan_columns(schema, layout, where, long)
            _check_same_columns(schema, types, label)
            if set(columns) <= grouped.columns:
                tables.append(grouped.rows(epoch, columns))
                continue
        with open_parquet(path) as parquet_file:
            schema = parquet_file.schema_arrow
            if layout is None:
                layout = _choose_layout(schema, where, options)
                columns, types, class_names = _plan_columns(schema, layout, where, long)
            _check_same_columns(schema, types, label)
            if long:
                grouped = _group_long(path, parquet_file, columns, label, budget)
                if grouped is not None:
                    table = grouped.rows(epoch, columns)
                else:
                    table = _epoch_rows(parquet_file, columns, epoch, label, budget, path)
            else:
                check_claims(parquet_file, None, columns, label, budget)
                table = parquet_file.read(columns=columns)
        tables.append(table.replace_schema_metadata(None))
    if layout is None:
        raise InputError(f"{where}: no Parquet files to read")
    table = tables[0] if len(tables) == 1 else _concat(tables, where)
    if not long and EPOCH in table.column_names:
        _check_epoch_column(table.column(EPOCH), epoch, where)
    table, split_notes = _select_split(table, options, where)
    raw = _to_raw(table, layout, where=where, epoch=epoch)
    raw.class_names = class_names
    raw.notes.extend(split_notes)
    return build_epoch(raw, options)


def _concat(tables: list[pa.Table], where: str) -> pa.Table:
    try:
        return pa.concat_tables(tables)
    except pa.ArrowInvalid as exc:
        raise InputError(f"{where}: part files do not combine: {exc}") from None


def _check_long_schema(schema: pa.Schema, where: str) -> None:
    if EPOCH not in schema.names:
        raise input_error(where, EPOCH, "a long-format table needs an epoch column")
    if not pa.types.is_integer(schema.field(EPOCH).type):
        raise input_error(
            where, EPOCH, f"must be integers, found {schema.field(EPOCH).type}",
            hint="cast to int64",
        )


def _check_same_columns(schema: pa.Schema, types: dict[str, pa.DataType], label: str) -> None:
    names = set(schema.names)  # schema.names builds a new list on every access
    for name, dtype in types.items():
        if name not in names:
            raise input_error(label, name, "column missing in this part (present in the first)")
        if schema.field(name).type != dtype:
            raise input_error(
                label,
                name,
                f"type {schema.field(name).type} differs from the first part ({dtype})",
            )


def _epoch_rows(parquet_file: CheckedParquetFile, columns: list[str], epoch: int, label: str,
                budget: Budget, path: str) -> pa.Table:
    """The rows of one epoch, skipping row groups whose statistics rule it out."""
    groups = _epoch_groups(parquet_file, epoch)
    if not groups:
        return parquet_file.schema_arrow.empty_table().select(columns)
    check_claims(parquet_file, groups, columns, label, budget)
    if long_pass.one_pass(path, parquet_file):  # row groups of many epochs: one pass for them all
        return long_pass.epoch_rows(path, parquet_file, columns, epoch, partial(open_parquet, path))
    table = parquet_file.read_row_groups(groups, columns=columns)
    import pyarrow.compute as pc
    return table.filter(pc.equal(table.column(EPOCH), epoch))


# --- long format: a small file is read once, its rows grouped by epoch -------------------------

LONG_GROUPED_BYTES = 256 << 20
"""A long-format file whose footer claims at most this many decoded bytes, and whose row groups
each hold several epochs, is read once and kept, its rows sorted by epoch, while its epochs are
read: each epoch is then a slice (20,000 epochs of 3 samples in one row group: one read, not
20,000). Otherwise each epoch reads (or streams) the row groups that can hold it."""

_EPOCH_COUNTS: dict[str, tuple[tuple, int]] = {}  # path -> (stat stamp, distinct epochs), from discovery


class _Grouped:
    """The columns of one long-format file, rows in epoch order, and where each epoch lies."""

    def __init__(self, path: str, stamp: tuple, schema: pa.Schema, table: pa.Table) -> None:
        self.path, self.stamp, self.schema = path, stamp, schema
        self.columns = set(table.column_names)
        epochs = as_numpy(table.column(EPOCH))
        if epochs.size > 1 and not (epochs[1:] >= epochs[:-1]).all():
            order = np.argsort(epochs, kind="stable")  # rows keep their file order within an epoch
            table, epochs = table.take(order), epochs[order]
        self.table = table.replace_schema_metadata(None)
        cuts = np.flatnonzero(epochs[1:] != epochs[:-1]) + 1
        self.starts = np.concatenate([[0], cuts]).astype(np.int64)
        self.ends = np.concatenate([cuts, [epochs.size]]).astype(np.int64)
        self.epochs = epochs[self.starts] if epochs.size else epochs

    def current(self) -> bool:
        """True while the file on disk is still the one that was read."""
        try:
            return _stamp(os.stat(self.path)) == self.stamp
        except OSError:
            return False

    def rows(self, epoch: int, columns: list[str]) -> pa.Table:
        at = int(np.searchsorted(self.epochs, epoch))
        if at == self.epochs.size or self.epochs[at] != epoch:
            return self.table.slice(0, 0).select(columns)
        return self.table.slice(int(self.starts[at]), int(self.ends[at] - self.starts[at])).select(columns)


_GROUPED: dict[str, _Grouped] = {}


def _read_grouped(path: str) -> bool:
    """True when the long-format file at ``path`` is (or will be) read once, grouped by epoch."""
    grouped = _GROUPED.get(path)
    if grouped is not None and grouped.current():
        return True
    try:
        with open_parquet(path) as parquet_file:
            return _worth_grouping(path, parquet_file)
    except InputError:
        return False  # streaming reports it


def _read_in_one_pass(path: str) -> bool:
    """True when the long-format file at ``path`` is read in one pass (:mod:`lossacc_cli.readers.long`)."""
    try:
        with open_parquet(path) as parquet_file:
            return long_pass.one_pass(path, parquet_file)
    except InputError:
        return False  # streaming reports it


def _worth_grouping(path: str, parquet_file: CheckedParquetFile) -> bool:
    """Small enough to keep, and each epoch would otherwise re-read row groups holding many
    other epochs (more than two epochs per row group)."""
    known = _EPOCH_COUNTS.get(path)
    if known is None or known[0] != _stamp(parquet_file.file_stat):
        return False
    meta = parquet_file.metadata
    if known[1] <= 2 * meta.num_row_groups:
        return False
    claimed = sum(meta.row_group(g).total_byte_size for g in range(meta.num_row_groups))
    return claimed <= min(LONG_GROUPED_BYTES, memory_budget() // 2)


def _stamp(info: os.stat_result) -> tuple:
    return (info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns)


def _group_long(path: str, parquet_file: CheckedParquetFile, columns: list[str], label: str,
                budget: Budget) -> _Grouped | None:
    """Read a long-format file whole and keep it grouped by epoch when that is worth it
    (:func:`_worth_grouping`); None otherwise."""
    if not _worth_grouping(path, parquet_file):
        return None
    check_claims(parquet_file, None, columns, label, budget)
    table = parquet_file.read(columns=columns)
    grouped = _Grouped(path, _stamp(parquet_file.file_stat), parquet_file.schema_arrow, table)
    # the files of the run being read (the parts of one long table), within the bound
    _GROUPED.pop(path, None)
    while _GROUPED and sum(g.table.nbytes for g in _GROUPED.values()) + table.nbytes > LONG_GROUPED_BYTES:
        _GROUPED.pop(next(iter(_GROUPED)))
    _GROUPED[path] = grouped
    return grouped


def _check_epoch_column(column: pa.ChunkedArray, epoch: int, where: str) -> None:
    values = _distinct_epochs(column, where)
    if values.size and (values.size > 1 or values[0] != epoch):
        shown = ", ".join(str(v) for v in values[:10].tolist())
        raise input_error(
            where, EPOCH, f"epoch column holds {shown}, expected only {epoch}"
        )


def _select_split(
    table: pa.Table, options: ReadOptions, where: str
) -> tuple[pa.Table, list[str]]:
    """Keep the rows of ``options.split``; without it, note when several splits are mixed."""
    has_split = SPLIT in table.column_names
    if options.split is None:
        if has_split:
            found = _split_values(table.column(SPLIT), where)
            if len(found) > 1:
                return table, [
                    f"{where}: column 'split' holds {', '.join(found)}; all rows are used "
                    "(pass --split to select one)"
                ]
        return table, []
    if not has_split:
        raise input_error(
            where, SPLIT, f"no split column to select '{options.split}' from",
            hint="drop --split for this input",
        )
    column = _as_strings(table.column(SPLIT), where)
    import pyarrow.compute as pc
    kept = table.filter(pc.fill_null(pc.equal(column, options.split), False))
    if kept.num_rows == 0:
        found = _split_values(column, where)
        raise input_error(
            where, SPLIT, f"no rows with split == '{options.split}' (found: {', '.join(found)})"
        )
    return kept, []


def _as_strings(column: pa.ChunkedArray, where: str) -> pa.ChunkedArray:
    if pa.types.is_string(column.type):
        return column
    try:
        return column.cast(pa.string())
    except (pa.ArrowException, ValueError) as exc:
        raise input_error(where, SPLIT, f"cannot be read as text ({exc})") from None


def _split_values(column: pa.ChunkedArray, where: str) -> list[str]:
    import pyarrow.compute as pc
    values = pc.unique(_as_strings(column, where)).drop_null()
    return [str(v) for v in as_numpy(values)[:10]]


def _to_raw(table: pa.Table, layout: Layout, *, where: str, epoch: int) -> RawEpoch:
    raw = _raw_labels_ids(table, layout, where=where, epoch=epoch)
    ids, nulls = raw.ids, raw.nulls
    if layout.kind in ("logits", "probs"):
        if len(layout.scores) == 1:
            name = layout.scores[0]
            raw.scores = list_matrix(table.column(name), where=where, name=name, ids=ids)
        else:
            raw.scores = wide_matrix(table, layout.scores, where=where, ids=ids)
    elif layout.kind in ("logit", "prob"):
        raw.scores = _flat(table, layout.scores[0], where, nulls)
    else:
        raw.stats = {name: _flat(table, name, where, nulls) for name in layout.stats}
    return raw


def _raw_labels_ids(table: pa.Table, layout: Layout, *, where: str, epoch: int) -> RawEpoch:
    """The RawEpoch of a table without its scores: labels, ids, null masks, notes."""
    nulls: dict[str, np.ndarray] = {}
    labels = _flat(table, layout.label, where, nulls)
    ids = None
    if layout.id is not None:
        _check_id_type(table.column(layout.id).type, layout.id, where)
        ids = _flat(table, layout.id, where, nulls)
    return RawEpoch(
        source=where,
        epoch=epoch,
        labels=labels,
        label_field=layout.label,
        kind=layout.kind,
        score_field=layout.score_field,
        ids=ids,
        id_field=layout.id or "sample_id",
        nulls=nulls,
        notes=list(layout.notes),
    )


def _check_id_type(dtype: pa.DataType, name: str, where: str) -> None:
    base = dtype.value_type if pa.types.is_dictionary(dtype) else dtype
    if not (
        pa.types.is_integer(base) or pa.types.is_string(base) or pa.types.is_large_string(base)
    ):
        raise input_error(
            where, name, f"ids must be integers or strings, found {dtype}",
            hint="cast the id column to int64 or string",
        )


def _flat(table: pa.Table, name: str, where: str, nulls: dict[str, np.ndarray]) -> np.ndarray:
    """One value per row as numpy; records a null mask in ``nulls`` when there are nulls."""
    column = table.column(name)
    dtype = column.type
    if pa.types.is_nested(dtype):
        raise input_error(where, name, f"expected one value per row, found {dtype}")
    if pa.types.is_dictionary(dtype):
        column = column.cast(dtype.value_type)
    if column.null_count:
        nulls[name] = as_numpy(column.is_null())
    try:
        return as_numpy(column)
    except pa.ArrowException as exc:  # e.g. string values that are not valid UTF-8
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise input_error(where, name, f"values cannot be decoded ({reason})") from None


def _row_ids(ids: np.ndarray | None, rows: np.ndarray) -> list[object]:
    shown = rows[:5]
    return (ids[shown] if ids is not None else shown).tolist()


def list_matrix(
    column: pa.ChunkedArray, *, where: str, name: str, ids: np.ndarray | None = None
) -> np.ndarray:
    """(N, K) array from a list / large_list / fixed_size_list<float> column, via its values.

    Every list must hold K values and no nulls. The result shares memory with Arrow when the
    column is one chunk (a read-only view) and keeps the input float dtype.
    """
    dtype = column.type
    if not (
        pa.types.is_list(dtype) or pa.types.is_large_list(dtype)
        or pa.types.is_fixed_size_list(dtype)
    ):
        raise input_error(
            where,
            name,
            f"expected a list of floats per row, found {dtype}",
            hint="store one list<float> per row, or wide columns logit_0..logit_{K-1}",
        )
    if not pa.types.is_floating(dtype.value_type):
        raise input_error(
            where, name, f"scores must be floating point, found {dtype}", hint="cast to float32"
        )
    array = column.chunk(0) if column.num_chunks == 1 else column.combine_chunks()
    check = _ListCheck(where, name, ids, dtype)
    matrix = check.add(array)
    check.finish()
    return matrix


def wide_matrix(
    table: pa.Table, names: tuple[str, ...], *, where: str, ids: np.ndarray | None = None
) -> np.ndarray:
    """(N, K) view of a (K, N) array filled column by column from ``logit_k``/``prob_k``."""
    for name in names:
        dtype = table.column(name).type
        if not pa.types.is_floating(dtype):
            raise input_error(
                where, name, f"scores must be floating point, found {dtype}",
                hint="cast to float32",
            )
    dtype = np.result_type(*(table.column(n).type.to_pandas_dtype() for n in names))
    out = np.empty((len(names), table.num_rows), dtype=dtype)
    for k, name in enumerate(names):
        column = table.column(name)
        if column.null_count:
            rows = np.flatnonzero(as_numpy(column.is_null()))
            raise input_error(where, name, "null values", ids=_row_ids(ids, rows), count=rows.size)
        out[k] = as_numpy(column, copy=False)
    return out.T


# --- streaming: the scores in record batches --------------------------------------------------

WIDE_READ_BYTES = 8 << 20
"""Wide columns are read this many score bytes at a time (whole columns, Arrow decoding them on
several threads), straight into the (K, N) array."""

_ROW = "__lossacc_row__"


def stream_parquet(
    paths: list[str],
    *,
    epoch: int,
    where: str,
    options: ReadOptions,
    long: bool = False,
    threads: bool = False,
) -> EpochStream | None:
    """Open one epoch for streaming its (N, K) scores; None, decided from the schema before any
    score is read, for layouts read whole (binary, compact, score columns of another type) and for
    long-format files small enough to be read once for all their epochs.

    Each file is opened once. The small columns (label, id, epoch, split) are read and validated
    first, exactly as :func:`read_parquet` would; the scores then arrive in record batches of about
    :data:`STREAM_BATCH_BYTES` (wide columns: read into one matrix before the header is checked,
    as the whole read does), checked batch by batch. Every fault raises the error
    :func:`read_parquet` raises for it.
    """
    if long and all(_read_grouped(path) or _read_in_one_pass(path) for path in paths):
        return None
    return open_stream(partial(_open_stream, paths, epoch, where, options, long, threads))


@dataclass
class _Part:
    """One file of a streamed epoch: open, the row groups read, its small columns, and which of
    their rows the epoch keeps (None: all)."""

    parquet_file: CheckedParquetFile
    groups: list[int]
    table: pa.Table
    scores: pa.Table | None = None  # a small file's score column, read with the rest
    kept: np.ndarray | None = None


def _open_stream(paths: list[str], epoch: int, where: str, options: ReadOptions, long: bool,
                 threads: bool, files: ExitStack) -> EpochStream | None:
    layout: Layout | None = None
    types: dict[str, pa.DataType] = {}
    class_names = None
    small: list[str] = []
    parts: list[_Part] = []
    budget = Budget(where)
    for path in paths:
        how = _stream_options(path)
        if how:  # a large file: its batches are decoded with the pool it is opened with
            _system_pool(files)
        parquet_file = files.enter_context(open_parquet(path, **how))
        schema = parquet_file.schema_arrow
        if layout is None:
            layout = _choose_layout(schema, where, options)
            if layout.kind not in ("logits", "probs"):
                return None
            columns, types, class_names = _plan_columns(schema, layout, where, long)
            if not _streams(layout, types):
                return None  # the whole read reports the type
            small = [name for name in columns if name not in layout.scores]
        label = display_path(path)
        _check_same_columns(schema, types, label)
        groups = list(range(parquet_file.metadata.num_row_groups))
        if long:
            groups = _epoch_groups(parquet_file, epoch)
        # the scores are kept while the epoch is reduced: they count with the rest
        check_claims(parquet_file, groups, columns, label, budget)
        part = _Part(parquet_file, groups, None)  # type: ignore[arg-type]
        if (not long and options.split is None
                and _decoded_bytes(parquet_file.metadata, groups) <= SMALL_FILE_BYTES):
            # a small file whose rows are all kept: its scores in the same read, the whole read's
            # (one read instead of two, and a damaged page met as the whole read meets it)
            both = parquet_file.read(columns=columns)
            part.table, part.scores = both.select(small), both.select(list(layout.scores))
        else:
            part.table = parquet_file.read_row_groups(groups, columns=small)
        part.table = part.table.replace_schema_metadata(None)
        parts.append(part)
    if layout is None:
        raise InputError(f"{where}: no Parquet files to read")
    table, split_notes = _kept_rows(parts, epoch, where, options, long)
    raw = _raw_labels_ids(table, layout, where=where, epoch=epoch)
    raw.class_names = class_names
    raw.notes.extend(split_notes)
    n_rows = table.num_rows
    if len(layout.scores) > 1:
        matrix = _wide_fill(parts, layout, types, where, raw.ids, n_rows, threads)
        dtype, n_classes = matrix.dtype, matrix.shape[1]
        read: Callable[[], Iterator[np.ndarray]] = partial(_wide_blocks, matrix)
    else:
        lists = _ListCheck(where, layout.scores[0], raw.ids, types[layout.scores[0]])
        if any(part.scores is None for part in parts):
            _system_pool(files)
        arrays = _list_arrays(parts, layout.scores[0], lists, threads)
        n_classes, arrays = lists.peek(arrays)
        dtype = lists.dtype
        read = partial(_list_blocks, arrays, lists)
    try:
        header = build_header(raw, (n_rows, n_classes), dtype)
    except InputError:
        # the whole read checks the lists before the header: their fault, if any, is the one
        for _ in read():
            pass
        raise
    return EpochStream(
        header, ScoreCheck(header, layout.score_field, options), dtype=dtype,
        order="F" if len(layout.scores) > 1 else "C", read=read, files=files,
        # list columns decode batch by batch (unless read with the rest); wide ones were read
        decoded=len(layout.scores) == 1 and any(part.scores is None for part in parts),
    )


def _system_pool(files: ExitStack) -> None:
    """Arrow's system allocator until the stream is closed. It hands the decode buffers back
    to the process as soon as a batch is done with; Arrow's default pool keeps them (tens of MB
    per thread, and all of an epoch's scores once they are let go), which the peak would show.
    A file's reader decodes with the pool that was Arrow's default when the file was opened, so
    it is set before a large file is opened (a 5,000,000 x 10 epoch's load peak: 1146 -> 1030 MB)."""
    if pa.default_memory_pool().backend_name != "system":
        files.callback(pa.set_memory_pool, pa.default_memory_pool())
        pa.set_memory_pool(pa.system_memory_pool())


def _stream_options(path: str) -> dict[str, object]:
    """How to open a file whose scores may stream: a large one reads its pages as the batches
    want them, through a small buffer (Arrow's pre-buffering would hold whole column chunks); a
    small one as the whole read opens it."""
    try:
        small = os.stat(path).st_size <= SMALL_FILE_BYTES
    except OSError:
        small = True  # opening it reports the problem
    return {} if small else {"pre_buffer": False, "buffer_size": 1 << 20}


def _streams(layout: Layout, types: dict[str, pa.DataType]) -> bool:
    """True when the score columns are of types the batches can be read from (a list of floats,
    or float columns); the whole read words any other."""
    if len(layout.scores) > 1:
        return all(pa.types.is_floating(types[name]) for name in layout.scores)
    dtype = types[layout.scores[0]]
    return (pa.types.is_list(dtype) or pa.types.is_large_list(dtype)
            or pa.types.is_fixed_size_list(dtype)) and pa.types.is_floating(dtype.value_type)


def _kept_rows(parts: list[_Part], epoch: int, where: str, options: ReadOptions,
               long: bool) -> tuple[pa.Table, list[str]]:
    """The small columns of the epoch's rows, as the whole read selects them; marks each part's
    kept rows when not all are."""
    tables, offset = [], 0
    for part in parts:
        rows = from_numpy(np.arange(offset, offset + part.table.num_rows))
        tables.append(part.table.append_column(_ROW, rows))
        offset += part.table.num_rows
    table = tables[0] if len(tables) == 1 else _concat(tables, where)
    if long:
        import pyarrow.compute as pc
        table = table.filter(pc.equal(table.column(EPOCH), epoch))
    elif EPOCH in table.column_names:
        _check_epoch_column(table.column(EPOCH), epoch, where)
    table, split_notes = _select_split(table, options, where)
    kept = as_numpy(table.column(_ROW))
    if kept.shape[0] != offset:
        for part, mask in zip(parts, _masks(kept, [p.table.num_rows for p in parts])):
            part.kept = mask
    return table.drop_columns([_ROW]), split_notes


SMALL_FILE_BYTES = 8 << 20
"""A file whose row groups decode to at most this many bytes is read in one go, scores included
(when every row is kept: no ``--split``, not long format); a larger one streams its scores."""


def _decoded_bytes(meta: pq.FileMetaData, groups: list[int]) -> int:
    return sum(meta.row_group(g).total_byte_size for g in groups)


def _list_arrays(parts: list[_Part], name: str, lists: _ListCheck, threads: bool) -> Iterator[pa.Array]:
    """The score lists of the epoch's rows, batch by batch: from the table already read, or
    decoded as they are asked for (Arrow's system allocator then hands each batch's buffers back
    as soon as it is done with; its default pool keeps tens of MB per thread)."""
    for part in parts:
        if part.kept is not None and not part.kept.any():
            continue
        meta = part.parquet_file.metadata
        leaf = next(i for i in range(meta.num_columns)
                    if meta.schema.column(i).path.split(".")[0] == name)
        rows = lists.batch_rows(part, leaf)
        if part.scores is not None:
            batches = iter(part.scores.to_batches(max_chunksize=rows))
        else:
            batches = part.parquet_file.iter_batches(
                batch_size=rows, row_groups=part.groups, columns=[name], use_threads=threads,
            )
        at = 0
        for batch in batches:
            array = batch.column(0)
            if part.kept is not None:
                rows = part.kept[at : at + len(array)]
                at += len(array)
                if not rows.any():
                    continue
                if not rows.all():
                    array = array.filter(pa.array(rows))
            yield array


def _list_blocks(arrays: Iterator[pa.Array], lists: _ListCheck) -> Iterator[np.ndarray]:
    """The blocks of a list column whose structure passed :class:`_ListCheck`."""
    for array in arrays:
        block = lists.add(array)
        if block is not None:
            yield block
    lists.finish()


def _wide_blocks(matrix: np.ndarray) -> Iterator[np.ndarray]:
    rows = max(1, STREAM_BATCH_BYTES // max(1, matrix.shape[1] * matrix.dtype.itemsize))
    for start in range(0, matrix.shape[0], rows):
        yield matrix[start : start + rows]


def _epoch_groups(parquet_file: pq.ParquetFile, epoch: int) -> list[int]:
    """Row groups whose ``epoch`` statistics do not rule the epoch out."""
    meta = parquet_file.metadata
    leaf = next(i for i in range(meta.num_columns) if meta.schema.column(i).path == EPOCH)
    groups = []
    for group in range(meta.num_row_groups):
        stats = parquet_file.column_chunk(group, leaf).statistics
        if stats is None or not stats.has_min_max or stats.min <= epoch <= stats.max:
            groups.append(group)
    return groups


def _masks(kept: np.ndarray, sizes: list[int]) -> list[np.ndarray]:
    """Per part, which of the rows read are kept (``kept`` indexes their concatenation)."""
    flags = np.zeros(sum(sizes), dtype=bool)
    flags[kept] = True
    return np.split(flags, np.cumsum(sizes)[:-1])


def _wide_fill(parts: list[_Part], layout: Layout, types: dict[str, pa.DataType], where: str,
               ids: np.ndarray | None, n_rows: int, threads: bool) -> np.ndarray:
    """Read the wide columns of the epoch's rows into a (K, N) array, a few columns at a time;
    returns its transpose, the (N, K) score matrix. Nulls are reported as :func:`wide_matrix`
    reports them (the first column holding any, every row of it)."""
    names = layout.scores
    dtype = np.result_type(*(types[n].to_pandas_dtype() for n in names))
    out = np.empty((len(names), n_rows), dtype=dtype)
    per_read = max(1, WIDE_READ_BYTES // max(1, n_rows * dtype.itemsize))
    nulls: dict[int, list[np.ndarray]] = {}
    at = 0
    for part in parts:
        mask = part.kept
        n = part.table.num_rows if mask is None else int(np.count_nonzero(mask))
        if n == 0:
            continue
        for first in range(0, len(names), per_read):
            chunk = list(names[first : first + per_read])
            if part.scores is not None:
                read = part.scores.select(chunk)
            else:
                read = part.parquet_file.read_row_groups(part.groups, columns=chunk,
                                                         use_threads=threads)
            for offset, name in enumerate(chunk):
                column = read.column(name)
                if mask is not None:
                    column = column.filter(pa.array(mask))
                if column.null_count:
                    rows = np.flatnonzero(as_numpy(column.is_null()))
                    nulls.setdefault(first + offset, []).append(rows + at)
                    continue
                out[first + offset, at : at + n] = as_numpy(column, copy=False)
            del read
        at += n
    if nulls:
        k = min(nulls)
        rows = np.concatenate(nulls[k])
        raise input_error(where, names[k], "null values", ids=_row_ids(ids, rows), count=rows.size)
    return out.T  # filled column by column, used through its transpose


class _ListCheck:
    """The structure checks of :func:`list_matrix` (no null lists, every list of the first row's
    length, no null values inside), batch by batch in row order: a batch that passes becomes its
    (rows, K) block; a fault is raised by :meth:`finish` with the message the whole column gives."""

    def __init__(self, where: str, name: str, ids: np.ndarray | None, dtype: pa.DataType) -> None:
        self.where, self.name, self.ids = where, name, ids
        self.fixed = pa.types.is_fixed_size_list(dtype)
        self.first: int | None = dtype.list_size if self.fixed else None
        self.dtype = np.dtype(dtype.value_type.to_pandas_dtype())
        self.at = 0
        self.null_lists: list[np.ndarray] = []
        self.unequal: list[np.ndarray] = []
        self.lengths: set[int] = set()
        self.null_values: list[np.ndarray] = []

    def batch_rows(self, part: _Part, leaf: int) -> int:
        """Rows per record batch: K from the first row once known, else as the footer of the first
        part reckons it (values per row)."""
        k = self.first
        if k is None:
            meta = part.parquet_file.metadata
            rows = sum(meta.row_group(g).num_rows for g in part.groups)
            values = sum(part.parquet_file.column_chunk(g, leaf).num_values for g in part.groups)
            k = values // rows if rows else 1
        return max(1, STREAM_BATCH_BYTES // max(1, k * self.dtype.itemsize))

    def peek(self, arrays: Iterator[pa.Array]) -> tuple[int, Iterator[pa.Array]]:
        """K (the first row's length; 0 without rows) and the arrays, none of them lost."""
        if self.fixed:
            return self.first, arrays
        seen = []
        for array in arrays:
            seen.append(array)
            if len(array):
                break
        k = 0
        if seen and len(seen[-1]):
            first = seen[-1][0]  # (not value_lengths(), which imports pyarrow.compute)
            k = len(first.values) if first.is_valid else 0  # a null first list: finish() says so
        return k, itertools.chain(seen, arrays)

    def add(self, array: pa.Array) -> np.ndarray | None:
        n, at = len(array), self.at
        self.at += n
        if array.null_count:
            self.null_lists.append(np.flatnonzero(as_numpy(array.is_null())) + at)
            return None
        if self.fixed:
            k = self.first
            values = array.values.slice(array.offset * k, n * k)
        else:
            offsets = as_numpy(array.offsets)  # already accounts for the array's own offset
            lengths = np.diff(offsets)
            if self.first is None and n:
                self.first = int(lengths[0])
            k = self.first or 0
            unequal = lengths != k
            if unequal.any():
                self.unequal.append(np.flatnonzero(unequal) + at)
                self.lengths.update(np.unique(lengths[unequal]).tolist())
                return None
            values = array.values.slice(int(offsets[0]) if n else 0, n * k)
        if values.null_count:
            positions = np.flatnonzero(as_numpy(values.is_null()))
            self.null_values.append(np.unique(positions // max(k, 1)) + at)
            return None
        if self.null_lists or self.unequal or self.null_values:
            return None
        return as_numpy(values).reshape(n, k)

    def finish(self) -> None:
        where, name, ids = self.where, self.name, self.ids
        if self.null_lists:
            rows = np.concatenate(self.null_lists)
            raise input_error(where, name, "null lists", ids=_row_ids(ids, rows), count=rows.size)
        if self.unequal:
            rows = np.concatenate(self.unequal)
            others = ", ".join(str(n) for n in sorted(self.lengths)[:5])
            raise input_error(
                where, name,
                f"lists of unequal length (first row has {self.first} values, others {others})",
                ids=_row_ids(ids, rows), count=rows.size,
            )
        if self.null_values:
            rows = np.concatenate(self.null_values)
            raise input_error(
                where, name, "null values inside lists", ids=_row_ids(ids, rows), count=rows.size
            )
