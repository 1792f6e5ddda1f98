"""One epoch -> one file, written so that a reader never sees half of it.

The bytes go to a hidden temporary file in the destination folder (readers skip names starting
with ``.``), are flushed to disk, and the file is renamed over the final name. A rename within
one folder is atomic on POSIX and Windows file systems: a reader opens either the old file or
the new one, complete, and a reader that already has the old one open keeps reading it (its
bytes are never rewritten in place, so a memory map of it stays valid).
"""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Callable, Mapping
from typing import BinaryIO

import numpy as np

CLASS_NAMES_KEY = "lossacc.class_names"
"""Parquet schema metadata key of the class names (a JSON list), as the reader expects it."""

PROVENANCE_KEY = "lossacc.provenance"
"""Parquet schema metadata key of the provenance (a JSON object)."""

NPZ_CLASS_NAMES = "class_names"
NPZ_PROVENANCE = "provenance"

ID_FIELD = {"parquet": "sample_id", "npz": "sample_ids"}
LABEL_FIELD = {"parquet": "label", "npz": "labels"}

_ROW_GROUP_BYTES = 64 << 20  # bounds what a streaming reader decodes at once


def write_atomically(path: str, write: Callable[[BinaryIO], None]) -> None:
    """Call ``write`` on a temporary file beside ``path``, then rename it to ``path``.

    On any failure the temporary file is removed and ``path`` is left as it was.
    """
    folder, name = os.path.split(path)
    temporary = os.path.join(folder, f".{name}.{secrets.token_hex(4)}.tmp")
    # O_EXCL: never follow a planted link; mode 0o666 lets the umask decide, as for any new file.
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
    try:
        with os.fdopen(fd, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        try:
            os.unlink(temporary)
        except FileNotFoundError:
            pass
        raise
    _sync_folder(folder)


def _sync_folder(folder: str) -> None:
    """Make the rename itself durable (POSIX); a no-op where folders cannot be opened."""
    try:
        fd = os.open(folder or ".", os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def parquet_writer(
    ids: np.ndarray,
    labels: np.ndarray,
    kind: str,
    scores: np.ndarray,
    *,
    class_names: tuple[str, ...] | None,
    provenance: Mapping[str, object],
) -> Callable[[BinaryIO], None]:
    """A ``write(handle)`` for :func:`write_atomically` that writes one epoch as Parquet.

    Columns ``sample_id`` (int64 or string), ``label`` (int64) and the scores under their kind's
    name: ``logits``/``probs`` as fixed_size_list<float>[K], ``logit``/``prob`` as float.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    if scores.ndim == 2:
        n_classes = scores.shape[1]
        flat = pa.array(np.ascontiguousarray(scores).reshape(-1))
        score_column = pa.FixedSizeListArray.from_arrays(flat, n_classes)
    else:
        score_column = pa.array(scores)
    metadata = {PROVENANCE_KEY: json.dumps(dict(provenance), sort_keys=True)}
    if class_names is not None:
        metadata[CLASS_NAMES_KEY] = json.dumps(list(class_names), ensure_ascii=False)
    table = pa.table(
        {
            ID_FIELD["parquet"]: pa.array(ids, pa.string() if ids.dtype.kind == "U" else pa.int64()),
            LABEL_FIELD["parquet"]: pa.array(labels, pa.int64()),
            kind: score_column,
        }
    ).replace_schema_metadata(metadata)
    row_bytes = max(1, scores.itemsize * (scores.shape[1] if scores.ndim == 2 else 1))
    row_group_size = max(1024, _ROW_GROUP_BYTES // row_bytes)

    def write(handle: BinaryIO) -> None:
        # Dictionary pages only where values repeat; scores and ids are near-unique.
        pq.write_table(table, handle, row_group_size=row_group_size, use_dictionary=[LABEL_FIELD["parquet"]])

    return write


def npz_writer(
    ids: np.ndarray,
    labels: np.ndarray,
    kind: str,
    scores: np.ndarray,
    *,
    class_names: tuple[str, ...] | None,
    provenance: Mapping[str, object],
) -> Callable[[BinaryIO], None]:
    """A ``write(handle)`` that writes one epoch as an uncompressed NPZ archive.

    Arrays ``sample_ids``, ``labels``, the scores under their kind's name, ``class_names``
    (unicode, when given) and ``provenance`` (a 0-d unicode JSON string). No array holds
    objects, so ``np.load(path, allow_pickle=False)`` reads every one of them. Uncompressed
    members let a reader memory-map the scores.
    """
    arrays: dict[str, np.ndarray] = {
        ID_FIELD["npz"]: ids,
        LABEL_FIELD["npz"]: labels,
        kind: np.ascontiguousarray(scores),
        NPZ_PROVENANCE: np.array(json.dumps(dict(provenance), sort_keys=True, ensure_ascii=False)),
    }
    if class_names is not None:
        arrays[NPZ_CLASS_NAMES] = np.array(class_names, dtype=str)

    def write(handle: BinaryIO) -> None:
        np.savez(handle, **arrays)

    return write


WRITERS = {"parquet": parquet_writer, "npz": npz_writer}
