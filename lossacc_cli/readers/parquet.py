"""Read one epoch from Parquet: a per-epoch file, the part files of an ``epoch=N`` folder, or
the rows of one epoch in a long-format table (one file, or a folder of ``part-*`` files).

Only the columns a layout needs are read. Score lists become an (N, K) array through the
flat Arrow values buffer (no Python objects, no copy where Arrow allows it), kept in the
input float dtype.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from lossacc_cli.errors import InputError, input_error
from lossacc_cli.readers.model import EpochData, ReadOptions
from lossacc_cli.readers.validate import (
    CLASS_NAMES_KEY,
    Layout,
    RawEpoch,
    build_epoch,
    choose_layout,
    display_path,
    file_error,
)

LABEL_ALIASES = ("label", "labels", "target", "y_true", "y")
ID_ALIASES = ("sample_id", "id", "idx", "index", "uid")
EPOCH = "epoch"
SPLIT = "split"


@contextmanager
def open_parquet(path: str) -> Iterator[pq.ParquetFile]:
    """A ParquetFile for ``path``; any Arrow/OS failure inside becomes an InputError."""
    label = display_path(path)
    handle = None
    try:
        try:
            path.encode("utf-8")
            source: object = path
        except UnicodeEncodeError:
            # Arrow's file system wants UTF-8 paths; a Python file object takes any name.
            handle = open(path, "rb")  # noqa: SIM115 - closed below
            source = handle
        parquet_file = pq.ParquetFile(source)
    except (OSError, pa.ArrowException) as exc:
        if handle is not None:
            handle.close()
        raise file_error(label, "Parquet file", exc) from None
    try:
        yield parquet_file
    except (OSError, pa.ArrowException) as exc:
        raise file_error(label, "Parquet file", exc) from None
    finally:
        parquet_file.close()
        if handle is not None:
            handle.close()


def epoch_values(path: str) -> np.ndarray | None:
    """Sorted distinct values of the ``epoch`` column (int64), or None without that column.

    Reads only that column.
    """
    with open_parquet(path) as parquet_file:
        if EPOCH not in parquet_file.schema_arrow.names:
            return None
        column = parquet_file.read(columns=[EPOCH]).column(EPOCH)
    return _distinct_epochs(column, display_path(path))


def _distinct_epochs(column: pa.ChunkedArray, label: str) -> np.ndarray:
    if not pa.types.is_integer(column.type):
        raise input_error(
            label, EPOCH, f"must be integers, found {column.type}", hint="cast to int64"
        )
    if column.null_count:
        raise input_error(label, EPOCH, "null epochs", count=column.null_count)
    values = pc.unique(column).to_numpy(zero_copy_only=False).astype(np.int64)
    return np.sort(values)


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
    for path in paths:
        with open_parquet(path) as parquet_file:
            schema = parquet_file.schema_arrow
            if layout is None:
                layout = choose_layout(
                    schema.names,
                    source=where,
                    options=options,
                    label_aliases=LABEL_ALIASES,
                    id_aliases=ID_ALIASES,
                    wide=True,
                )
                if long:
                    _check_long_schema(schema, where)
                extra = tuple(n for n in (EPOCH, SPLIT) if n in schema.names)
                columns = list(dict.fromkeys(layout.columns + extra))
                types = {name: schema.field(name).type for name in columns}
                class_names = (schema.metadata or {}).get(CLASS_NAMES_KEY.encode())
            _check_same_columns(schema, types, display_path(path))
            if long:
                table = _epoch_rows(parquet_file, columns, epoch)
            else:
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
    for name, dtype in types.items():
        if name not in schema.names:
            raise input_error(label, name, "column missing in this part (present in the first)")
        if schema.field(name).type != dtype:
            raise input_error(
                label,
                name,
                f"type {schema.field(name).type} differs from the first part ({dtype})",
            )


def _epoch_rows(parquet_file: pq.ParquetFile, columns: list[str], epoch: int) -> pa.Table:
    """The rows of one epoch, skipping row groups whose statistics rule it out."""
    meta = parquet_file.metadata
    leaf = next(i for i in range(meta.num_columns) if meta.schema.column(i).path == EPOCH)
    groups = []
    for group in range(meta.num_row_groups):
        stats = meta.row_group(group).column(leaf).statistics
        if stats is None or not stats.has_min_max or stats.min <= epoch <= stats.max:
            groups.append(group)
    if not groups:
        return parquet_file.schema_arrow.empty_table().select(columns)
    table = parquet_file.read_row_groups(groups, columns=columns)
    return table.filter(pc.equal(table.column(EPOCH), epoch))


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
    values = pc.unique(_as_strings(column, where)).drop_null()
    return [str(v) for v in values.to_numpy(zero_copy_only=False)[:10]]


def _to_raw(table: pa.Table, layout: Layout, *, where: str, epoch: int) -> RawEpoch:
    nulls: dict[str, np.ndarray] = {}
    labels = _flat(table, layout.label, where, nulls)
    ids = None
    if layout.id is not None:
        _check_id_type(table.column(layout.id).type, layout.id, where)
        ids = _flat(table, layout.id, where, nulls)
    raw = RawEpoch(
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
        nulls[name] = column.is_null().to_numpy(zero_copy_only=False)
    return column.to_numpy()


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
    n_rows = len(array)
    if array.null_count:
        rows = np.flatnonzero(array.is_null().to_numpy(zero_copy_only=False))
        raise input_error(where, name, "null lists", ids=_row_ids(ids, rows), count=rows.size)
    if pa.types.is_fixed_size_list(dtype):
        n_classes = dtype.list_size
        values = array.values.slice(array.offset * n_classes, n_rows * n_classes)
    else:
        offsets = array.offsets.to_numpy()  # already accounts for the array's own offset
        lengths = np.diff(offsets)
        n_classes = int(lengths[0]) if n_rows else 0
        unequal = lengths != n_classes
        if unequal.any():
            rows = np.flatnonzero(unequal)
            raise input_error(
                where,
                name,
                f"lists of unequal length (first row has {n_classes} values, others "
                f"{', '.join(str(n) for n in np.unique(lengths[unequal])[:5].tolist())})",
                ids=_row_ids(ids, rows),
                count=rows.size,
            )
        values = array.values.slice(int(offsets[0]), n_rows * n_classes)
    if values.null_count:
        positions = np.flatnonzero(values.is_null().to_numpy(zero_copy_only=False))
        rows = np.unique(positions // max(n_classes, 1))
        raise input_error(
            where, name, "null values inside lists", ids=_row_ids(ids, rows), count=rows.size
        )
    return values.to_numpy(zero_copy_only=False).reshape(n_rows, n_classes)


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
            rows = np.flatnonzero(column.is_null().to_numpy(zero_copy_only=False))
            raise input_error(where, name, "null values", ids=_row_ids(ids, rows), count=rows.size)
        out[k] = column.to_numpy()
    return out.T
